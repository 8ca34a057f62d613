// Run: go run ./benches/go/syncmap   (stdlib only; prints "name<TAB>ns/op" lines)
//
// The Go baseline for benches/supervisor_io.rs: the same registry operations on sync.Map,
// which the Go agnt uses for its process registry. Keys look like ours: project path, NUL, id.
package main

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
)

type proc struct{ seq uint64 }

var sink interface{}

func key(i int) string { return "/home/user/project\x00proc-" + strconv.Itoa(i) }

func filled(n int) *sync.Map {
	m := &sync.Map{}
	for i := 0; i < n; i++ {
		m.Store(key(i), &proc{uint64(i)})
	}
	return m
}

func report(name string, f func(b *testing.B)) {
	best := 0.0
	for round := 0; round < 3; round++ {
		r := testing.Benchmark(f)
		ns := float64(r.T.Nanoseconds()) / float64(r.N)
		if best == 0 || ns < best {
			best = ns
		}
	}
	fmt.Printf("%s\t%.1f\n", name, best)
}

func main() {
	m := filled(100)
	k := key(50)
	report("registry_get", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v, _ := m.Load(k)
			sink = v
		}
	})
	k2 := key(1000)
	p := &proc{7}
	report("registry_insert_remove", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m.LoadOrStore(k2, p)
			m.Delete(k2)
		}
	})
	for _, n := range []int{10, 100, 1000} {
		mn := filled(n)
		report("registry_list_"+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out := make([]*proc, 0, n)
				mn.Range(func(_, v any) bool { out = append(out, v.(*proc)); return true })
				sink = out
			}
		})
		report("registry_list_sorted_"+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out := make([]*proc, 0, n)
				mn.Range(func(_, v any) bool { out = append(out, v.(*proc)); return true })
				sort.Slice(out, func(a, c int) bool { return out[a].seq < out[c].seq })
				sink = out
			}
		})
	}
}
