//! Run: `cargo bench --bench supervisor_io` (or `benches/run-supervisor.sh` for the Go side by
//! side). Plain timing loops, no harness: registry ops (the same as
//! `benches/go/syncmap/main.go`), ring buffer ops, capture throughput of a child flooding
//! stdout beside raw pipe bandwidth measured in the same run, and the RSS cost of 100 idle
//! supervised children. Prints `name<TAB>value<TAB>unit` lines; set `AGNT_BENCH_BYTES` to
//! change the flood size (default 1 GiB).

use std::{
    hint::black_box,
    io::Read,
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use agnt::{
    RingBuffer,
    supervisor::{
        CommandLine, ManagerConfig, ProcessManager, ProcessSpec, Registry, State, Stream, spawn,
    },
};

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if want("registry") {
        registry();
    }
    if want("ring") {
        ring();
    }
    if want("manager") {
        manager_ops();
    }
    if want("throughput") {
        throughput();
    }
    if want("rss") {
        rss();
    }
    if want("copies") {
        copies();
    }
}

/// Where capture time goes: a Rust reader on `dd bs=64k` with several read-buffer and pipe
/// sizes and 0 or 2 ring copies per read (no supervisor threads, no wakeups).
fn copies() {
    let bytes = flood_bytes() / 65536 * 65536;
    let flood = format!(
        "dd if=/dev/zero bs=65536 count={} status=none",
        bytes / 65536
    );
    for (bufk, pipek, rings) in [
        (64, 0, 0),
        (64, 0, 2),
        (64, 1024, 2),
        (256, 1024, 2),
        (256, 0, 2),
        (128, 0, 2),
    ] {
        let a = RingBuffer::default();
        let b = RingBuffer::default();
        let t = Instant::now();
        let mut child = spawn::command("sh")
            .args(["-c", &flood])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        if pipek > 0 {
            let _ = rustix::pipe::fcntl_setpipe_size(&out, pipek * 1024);
        }
        let mut buf = vec![0u8; bufk * 1024];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if rings >= 1 {
                        a.write(&buf[..n]);
                    }
                    if rings >= 2 {
                        b.write(&buf[..n]);
                    }
                }
            }
        }
        child.wait().unwrap();
        report(
            &format!("reader_buf{bufk}k_pipe{pipek}k_{rings}_ring_copies_dd64k"),
            gbps(bytes, t.elapsed()),
            "GB/s",
        );
    }
}

#[allow(clippy::print_stdout)] // a bench binary reports on stdout
fn report(name: &str, value: f64, unit: &str) {
    println!("{name}\t{value:.1}\t{unit}");
}

/// Best of 3 rounds of ~200 ms each, in ns per call.
fn ns_per_op(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut iters = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..256 {
                f();
            }
            iters += 256;
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
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

fn registry() {
    let r = filled(100);
    let k = key(50);
    report(
        "registry_get",
        ns_per_op(|| drop(black_box(r.get(black_box(&*k))))),
        "ns",
    );
    let k2 = key(1000);
    let v = Arc::new(7u64);
    report(
        "registry_insert_remove",
        ns_per_op(|| {
            let _ = r.insert_new(Arc::clone(&k2), Arc::clone(&v));
            drop(black_box(r.remove(black_box(&*k2))));
        }),
        "ns",
    );
    for n in [10, 100, 1000] {
        let r = filled(n);
        // Sorted by start order already (the snapshot keeps it), so both names measure the
        // same call; Go's side sorts explicitly for `_sorted_`.
        let list = ns_per_op(|| drop(black_box(r.values())));
        report(&format!("registry_list_{n}"), list, "ns");
        report(&format!("registry_list_sorted_{n}"), list, "ns");
        // The uncached cost: a write before every list forces a rebuild from the map.
        let k = key(n + 1);
        let v = Arc::new(0u64);
        let rebuild = ns_per_op(|| {
            let _ = r.insert_new(Arc::clone(&k), Arc::clone(&v));
            r.remove(&*k);
            drop(black_box(r.values()));
        });
        report(&format!("registry_write_then_list_{n}"), rebuild, "ns");
    }
}

fn ring() {
    let ring = RingBuffer::default();
    let data = vec![b'x'; 4096];
    report(
        "ring_write_4k",
        ns_per_op(|| {
            black_box(ring.write(black_box(&data)));
        }),
        "ns",
    );
    report(
        "ring_tail_64k",
        ns_per_op(|| drop(black_box(ring.tail(black_box(64 * 1024))))),
        "ns",
    );
}

fn sleeper(id: String, project: &Path) -> ProcessSpec {
    ProcessSpec::new(
        id,
        project,
        CommandLine::Argv(vec!["sleep".into(), "1000".into()]),
    )
}

fn manager_ops() {
    let pm = ProcessManager::new(ManagerConfig::default()).unwrap();
    let project = Path::new("/tmp");
    for i in 0..10 {
        pm.start(sleeper(format!("p{i}"), project)).unwrap();
    }
    report(
        "manager_get",
        ns_per_op(|| drop(black_box(pm.get(black_box(project), black_box("p5"))))),
        "ns",
    );
    report(
        "manager_list_10",
        ns_per_op(|| drop(black_box(pm.list(Some(project))))),
        "ns",
    );
    pm.shutdown(Duration::ZERO);
}

fn flood_bytes() -> u64 {
    std::env::var("AGNT_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

fn gbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}

fn throughput() {
    let bytes = flood_bytes();
    // Two producers: `head` (what the issue names; it writes small blocks) and `dd bs=64k`
    // (one pipe-full per write), to show where the producer, not the reader, is the limit.
    let producers = [
        ("head", format!("head -c {bytes} /dev/zero")),
        (
            "dd64k",
            format!(
                "dd if=/dev/zero bs=65536 count={} status=none",
                bytes / 65536
            ),
        ),
    ];
    for (name, flood) in producers {
        let bytes = if name == "head" {
            bytes
        } else {
            bytes / 65536 * 65536
        };
        // Raw pipe: the same producer into `cat > /dev/null`.
        let t = Instant::now();
        let status = spawn::command("sh")
            .args(["-c", &format!("{flood} | cat > /dev/null")])
            .status()
            .unwrap();
        assert!(status.success());
        let raw_cat = gbps(bytes, t.elapsed());
        report(&format!("pipe_raw_cat_{name}"), raw_cat, "GB/s");
        // Raw pipe read by Rust with a 64 KiB buffer and no ring.
        let t = Instant::now();
        let mut child = spawn::command("sh")
            .args(["-c", &flood])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        child.wait().unwrap();
        let raw_rust = gbps(got, t.elapsed());
        report(&format!("pipe_raw_rust_reader_{name}"), raw_rust, "GB/s");
        // Captured by the supervisor: stdout ring + combined ring.
        let pm = ProcessManager::new(ManagerConfig::default()).unwrap();
        let t = Instant::now();
        let p = pm
            .start(ProcessSpec::new(name, "/tmp", CommandLine::Shell(flood)))
            .unwrap();
        assert_eq!(p.wait(None), State::Stopped);
        let took = t.elapsed();
        assert_eq!(p.output_end(Stream::Stdout), bytes);
        let ours = gbps(bytes, took);
        report(&format!("agnt_capture_{name}"), ours, "GB/s");
        report(
            &format!("agnt_capture_{name}_vs_raw_cat"),
            100.0 * ours / raw_cat,
            "%",
        );
        report(
            &format!("agnt_capture_{name}_vs_raw_rust_reader"),
            100.0 * ours / raw_rust,
            "%",
        );
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss() {
    let pm = ProcessManager::new(ManagerConfig::default()).unwrap();
    let project = Path::new("/tmp");
    let before = vm_rss_kib();
    let procs: Vec<_> = (0..100)
        .map(|i| pm.start(sleeper(format!("idle{i}"), project)).unwrap())
        .collect();
    // Every pump thread is up and blocked in read.
    let t = Instant::now();
    while threads() < 1 + 3 * 100 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = vm_rss_kib();
    report("rss_empty_manager", before as f64 / 1024.0, "MiB");
    report("rss_100_idle_children", after as f64 / 1024.0, "MiB");
    report(
        "rss_delta_100_idle",
        (after.saturating_sub(before)) as f64 / 1024.0,
        "MiB",
    );
    report("threads_100_idle", threads() as f64, "threads");
    assert!(procs.iter().all(|p| p.state() == State::Running));
    let t = Instant::now();
    pm.shutdown(Duration::ZERO);
    report(
        "aggressive_shutdown_100",
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
}
