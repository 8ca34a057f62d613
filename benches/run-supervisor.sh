#!/bin/sh
# Run: benches/run-supervisor.sh   (from the repository root)
#
# Runs the supervisor benchmarks (benches/supervisor_io.rs, release build) and, when `go` is
# installed, the same registry operations on Go's sync.Map (benches/go/syncmap), then prints
# them side by side with the ratio Go/Rust (above 1 = we are faster).
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp)
gout=$(mktemp)
trap 'rm -f "$out" "$gout"' EXIT
cargo bench --bench supervisor_io -- "$@" | tee "$out"
if command -v go >/dev/null 2>&1; then
    (cd benches/go/syncmap && GOPROXY=off GOFLAGS=-mod=mod go run main.go) > "$gout"
    echo
    printf '%-28s %12s %12s %8s\n' operation "rust ns/op" "go ns/op" "go/rust"
    awk -F'\t' 'NR==FNR { go[$1] = $2; next }
        ($1 in go) { printf "%-28s %12.1f %12.1f %8.2f\n", $1, $2, go[$1], go[$1] / $2 }' "$gout" "$out"
else
    echo "go not installed: skipping the sync.Map baseline (apt-get install golang-go)"
fi
