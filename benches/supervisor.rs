//! Run: `cargo bench --bench supervisor` (divan). Registry, manager and ring-buffer hot paths.
//!
//! The registry is benched with cheap values (`Arc<u64>`, `Arc<str>` keys like Go strings) so
//! it measures the map; `manager_*` go through the real `ProcessManager` holding real
//! (idle) children. `benches/run-supervisor.sh` prints the same operations beside Go's
//! `sync.Map`; numbers are in BENCHMARKS.md.

use std::{path::Path, sync::Arc};

use agnt::{
    RingBuffer,
    supervisor::{CommandLine, ManagerConfig, ProcessManager, ProcessSpec, Registry},
};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

fn key(i: usize) -> Arc<str> {
    Arc::from(format!("/home/user/project\0proc-{i}"))
}

/// A registry like the process registry: values listed in start order.
fn filled(n: usize) -> Registry<Arc<str>, Arc<u64>> {
    let r = Registry::with_order(|v: &Arc<u64>| **v);
    for i in 0..n {
        let _ = r.insert_new(key(i), Arc::new(i as u64));
    }
    r
}

#[divan::bench]
fn registry_get(b: Bencher<'_, '_>) {
    let r = filled(100);
    let k = key(50);
    b.bench(|| r.get(black_box(&*k)));
}

#[divan::bench]
fn registry_insert_remove(b: Bencher<'_, '_>) {
    let r = filled(100);
    let k = key(1000);
    let v = Arc::new(7u64);
    b.bench(|| {
        let _ = r.insert_new(Arc::clone(&k), Arc::clone(&v));
        r.remove(black_box(&*k))
    });
}

#[divan::bench(args = [10, 100, 1000])]
fn registry_list(b: Bencher<'_, '_>, n: usize) {
    let r = filled(n);
    b.bench(|| r.values());
}

#[divan::bench(args = [10, 100, 1000])]
fn registry_write_then_list(b: Bencher<'_, '_>, n: usize) {
    let r = filled(n);
    let k = key(n + 1);
    let v = Arc::new(0u64);
    b.bench(|| {
        let _ = r.insert_new(Arc::clone(&k), Arc::clone(&v));
        r.remove(&*k);
        r.values()
    });
}

#[divan::bench]
fn manager_get_and_list_10(b: Bencher<'_, '_>) {
    let pm = ProcessManager::new(ManagerConfig::default()).unwrap();
    let project = Path::new("/tmp");
    for i in 0..10 {
        pm.start(ProcessSpec::new(
            format!("p{i}"),
            project,
            CommandLine::Argv(vec!["sleep".into(), "1000".into()]),
        ))
        .unwrap();
    }
    b.bench(|| {
        (
            pm.get(black_box(project), black_box("p5")),
            pm.list(Some(project)).len(),
        )
    });
    pm.shutdown(std::time::Duration::ZERO);
}

#[divan::bench]
fn manager_get(b: Bencher<'_, '_>) {
    let pm = ProcessManager::new(ManagerConfig::default()).unwrap();
    let project = Path::new("/tmp");
    for i in 0..10 {
        pm.start(ProcessSpec::new(
            format!("p{i}"),
            project,
            CommandLine::Argv(vec!["sleep".into(), "1000".into()]),
        ))
        .unwrap();
    }
    b.bench(|| pm.get(black_box(project), black_box("p5")));
    pm.shutdown(std::time::Duration::ZERO);
}

#[divan::bench(bytes_count = 4096u64)]
fn ring_write_4k(b: Bencher<'_, '_>) {
    let ring = RingBuffer::default();
    let data = vec![b'x'; 4096];
    b.bench(|| ring.write(black_box(&data)));
}

#[divan::bench(bytes_count = 65536u64)]
fn ring_tail_64k(b: Bencher<'_, '_>) {
    let ring = RingBuffer::default();
    ring.write(&vec![b'x'; 300 * 1024]);
    b.bench(|| ring.tail(black_box(64 * 1024)));
}
