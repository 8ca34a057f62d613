//! The supervisor library with real children: state machine, output capture and reads,
//! stopping process groups, restart, concurrency, shutdown, cleanup_port, orphans, readiness
//! and bad input. Every manager is dropped at the end of its test, which kills its groups.

use std::{
    collections::BTreeMap,
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use agnt::{
    Error,
    supervisor::{
        AtomicState, CommandLine, ManagerConfig, OutputRequest, ProcessManager, ProcessSpec,
        ReadyCheck, StartOutcome, State, Stream, orphans, procfs, spawn,
    },
};
use tempfile::TempDir;

use crate::support::wait_until;

const LONG: Duration = Duration::from_secs(10);

fn manager() -> Arc<ProcessManager> {
    ProcessManager::new(ManagerConfig {
        grace: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap()
}

fn sh(id: &str, project: &Path, line: &str) -> ProcessSpec {
    ProcessSpec::new(id, project, CommandLine::Shell(line.to_string()))
}

fn project() -> TempDir {
    tempfile::tempdir().unwrap()
}

/// Waits until the combined output contains `needle`.
fn wait_for_output(p: &agnt::ManagedProcess, needle: &str) -> bool {
    let deadline = Instant::now() + LONG;
    let mut end = 0;
    loop {
        let text = String::from_utf8_lossy(&p.ring(Stream::Combined).snapshot().data).into_owned();
        if text.contains(needle) {
            return true;
        }
        if Instant::now() >= deadline
            || (p.state().is_terminal() && p.output_end(Stream::Combined) == end)
        {
            return false;
        }
        end = p.output_end(Stream::Combined);
        p.wait_output(end, deadline - Instant::now());
    }
}

/// Kills a process group we spawned by hand, even when the test fails.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = spawn::signal_group(self.0, rustix::process::Signal::KILL);
    }
}

/// A process (or its zombie) is gone.
fn dead(pid: u32) -> bool {
    procfs::stat(pid).is_none_or(|s| !s.is_alive())
}

fn text(p: &agnt::ManagedProcess, req: OutputRequest) -> String {
    p.output(&req).unwrap().text
}

#[test]
fn state_machine_edges_through_the_public_type() {
    for from in State::ALL {
        for to in State::ALL {
            let m = AtomicState::new(from);
            match m.transition(from, to) {
                Ok(()) => assert!(State::can_transition(from, to)),
                Err(Error::InvalidTransition { from: f, to: t }) => {
                    assert!(!State::can_transition(from, to));
                    assert_eq!((f, t), (from.as_str(), to.as_str()));
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}

#[test]
fn lifecycle_passed_failed_stopped() {
    let pm = manager();
    let dir = project();
    let ok = pm.start(sh("ok", dir.path(), "exit 0")).unwrap();
    assert_eq!(ok.wait(Some(LONG)), State::Stopped);
    assert_eq!(ok.summary(), "passed");
    assert_eq!(ok.exit_code(), Some(0));
    assert!(ok.ended_at().is_some() && ok.started_at().is_some());
    assert!(ok.ended_at() >= ok.started_at());

    let bad = pm.start(sh("bad", dir.path(), "exit 2")).unwrap();
    assert_eq!(bad.wait(Some(LONG)), State::Failed);
    assert_eq!(bad.summary(), "failed (exit 2)");

    let run = pm.start(sh("run", dir.path(), "sleep 1000")).unwrap();
    assert_eq!(run.state(), State::Running);
    assert_eq!(run.summary(), "running");
    assert!(run.pid().is_some());
    let rt = run.runtime();
    pm.stop(dir.path(), "run", false).unwrap();
    assert_eq!(run.state(), State::Stopped);
    assert_eq!(run.summary(), "stopped (signal 15)");
    assert_eq!(run.exit_signal(), Some(15));
    let frozen = run.runtime();
    assert!(frozen >= rt);
    assert_eq!(run.runtime(), frozen, "runtime is frozen at exit");

    // Stopping a finished process succeeds and leaves it as is.
    let again = pm.stop(dir.path(), "ok", false).unwrap();
    assert_eq!(again.summary(), "passed");

    let s = pm.stats();
    assert_eq!((s.active, s.total_started, s.total_failed), (0, 3, 1));
}

#[test]
fn captures_both_streams_and_interleaves_combined() {
    let pm = manager();
    let dir = project();
    let gate = dir.path().join("go");
    // Each step waits for a file the test creates once the previous line was captured, so
    // the arrival order is known.
    let line = format!(
        "echo out1; while [ ! -f {g}1 ]; do sleep 0.01; done; echo err1 >&2; \
         while [ ! -f {g}2 ]; do sleep 0.01; done; echo out2; \
         while [ ! -f {g}3 ]; do sleep 0.01; done; printf 'err2' >&2",
        g = gate.display()
    );
    let p = pm.start(sh("io", dir.path(), &line)).unwrap();
    for (i, seen) in ["out1", "err1", "out2"].iter().enumerate() {
        assert!(wait_for_output(&p, seen), "never saw {seen}");
        fs::write(format!("{}{}", gate.display(), i + 1), "").unwrap();
    }
    assert_eq!(p.wait(Some(LONG)), State::Stopped);
    assert_eq!(
        text(
            &p,
            OutputRequest {
                stream: Stream::Stdout,
                ..Default::default()
            }
        ),
        "out1\nout2\n"
    );
    assert_eq!(
        text(
            &p,
            OutputRequest {
                stream: Stream::Stderr,
                ..Default::default()
            }
        ),
        "err1\nerr2"
    );
    assert_eq!(text(&p, OutputRequest::default()), "out1\nerr1\nout2\nerr2");
    assert_eq!(p.output_end(Stream::Stdout), 10);
    assert_eq!(p.output_end(Stream::Combined), 19);
}

#[test]
fn combined_lines_never_mix() {
    let pm = manager();
    let dir = project();
    let line = "for i in $(seq 1 300); do echo \"out-$i-aaaaaaaaaaaaaaaaaaaaaaaaa\"; echo \"err-$i-bbbbbbbbbbbbbbbbbbbbbbbbbbbb\" >&2; done";
    let p = pm.start(sh("mix", dir.path(), line)).unwrap();
    p.wait(Some(LONG));
    let all = text(&p, OutputRequest::default());
    assert_eq!(all.lines().count(), 600);
    for l in all.lines() {
        assert!(
            (l.starts_with("out-") && l.ends_with("-aaaaaaaaaaaaaaaaaaaaaaaaa"))
                || (l.starts_with("err-") && l.ends_with("-bbbbbbbbbbbbbbbbbbbbbbbbbbbb")),
            "mixed line {l:?}"
        );
    }
}

#[test]
fn overflow_keeps_tail_and_reports_loss() {
    let pm = manager();
    let dir = project();
    // 2 MiB of numbered 16-byte lines, the last one known.
    let line = "awk 'BEGIN { for (i = 1; i <= 131072; i++) printf \"line %010d\\n\", i }'";
    let p = pm.start(sh("flood", dir.path(), line)).unwrap();
    assert_eq!(p.wait(Some(LONG)), State::Stopped);
    let ring = p.ring(Stream::Stdout);
    assert_eq!(ring.total(), 2 * 1024 * 1024);
    assert!(
        ring.allocated() <= 256 * 1024,
        "memory is bounded: {}",
        ring.allocated()
    );
    let r = p
        .output(&OutputRequest {
            stream: Stream::Stdout,
            tail: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.text, "line 0000131072\n");
    assert!(r.overflowed);
    assert_eq!(r.lost_bytes, 2 * 1024 * 1024 - 256 * 1024);
    let all = p
        .output(&OutputRequest {
            stream: Stream::Stdout,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.lines, 256 * 1024 / 16);
    assert!(
        all.text.starts_with("line 0000114689\n"),
        "{}",
        &all.text[..32]
    );
    // A cursor inside the kept window loses nothing.
    let r = p
        .output(&OutputRequest {
            stream: Stream::Stdout,
            since: Some(ring.total() - 32),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        (r.text.as_str(), r.lost_bytes),
        ("line 0000131071\nline 0000131072\n", 0)
    );
}

#[test]
fn grep_head_tail_since_and_budget() {
    let pm = manager();
    let dir = project();
    let p = pm.start(sh("seq", dir.path(), "seq 1 100")).unwrap();
    p.wait(Some(LONG));
    let r = p
        .output(&OutputRequest {
            grep: Some("^1".into()),
            head: Some(5),
            tail: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.text.as_str(), r.lines), ("12\n13\n", 2));
    assert_eq!(r.next_offset, p.output_end(Stream::Combined));
    let r = p
        .output(&OutputRequest {
            grep: Some("0$".into()),
            grep_v: true,
            tail: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.text, "99\n");
    // since: skip "1\n".."9\n" (18 bytes).
    let r = p
        .output(&OutputRequest {
            since: Some(18),
            head: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.text.as_str(), r.lost_bytes), ("10\n", 0));
    let end = p.output_end(Stream::Combined);
    let r = p
        .output(&OutputRequest {
            since: Some(end),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.text.as_str(), r.next_offset), ("", end));
    let r = p
        .output(&OutputRequest {
            max_bytes: Some(10),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.text, "98\n99\n100\n");
    assert!(r.truncated);
    let e = p
        .output(&OutputRequest {
            grep: Some("[".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("invalid grep regex"),
        "{e}"
    );
}

#[test]
fn wait_output_wakes_on_new_output_with_cursor() {
    let pm = manager();
    let dir = project();
    let gate = dir.path().join("gate");
    let line = format!(
        "echo first; while [ ! -f {} ]; do sleep 0.01; done; echo second; sleep 1000",
        gate.display()
    );
    let p = pm.start(sh("cursor", dir.path(), &line)).unwrap();
    assert!(wait_for_output(&p, "first\n"));
    let r1 = p.output(&OutputRequest::default()).unwrap();
    assert_eq!(r1.text, "first\n");
    // Nothing new: wait_output times out at the same offset.
    assert_eq!(
        p.wait_output(r1.next_offset, Duration::from_millis(50)),
        r1.next_offset
    );
    fs::write(&gate, "").unwrap();
    let end = p.wait_output(r1.next_offset, LONG);
    assert!(end > r1.next_offset);
    let r2 = p
        .output(&OutputRequest {
            since: Some(r1.next_offset),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r2.text, "second\n");
}

#[test]
fn graceful_stop_kills_a_child_that_ignores_term_after_grace() {
    let pm = manager(); // grace 300 ms
    let dir = project();
    let p = pm
        .start(sh(
            "stubborn",
            dir.path(),
            "trap '' TERM; echo armed; while :; do sleep 1; done",
        ))
        .unwrap();
    assert!(wait_for_output(&p, "armed"));
    let t = Instant::now();
    pm.stop(dir.path(), "stubborn", false).unwrap();
    let took = t.elapsed();
    assert_eq!(p.state(), State::Stopped);
    assert_eq!(p.exit_signal(), Some(9));
    assert_eq!(p.summary(), "stopped (signal 9)");
    assert!(
        took >= Duration::from_millis(300),
        "killed before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn force_stop_kills_at_once() {
    let pm = ProcessManager::new(ManagerConfig::default()).unwrap(); // grace 5 s
    let dir = project();
    let p = pm
        .start(sh("f", dir.path(), "trap '' TERM; sleep 1000"))
        .unwrap();
    let t = Instant::now();
    pm.stop(dir.path(), "f", true).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "force waited for the grace: {:?}",
        t.elapsed()
    );
    assert_eq!(p.exit_signal(), Some(9));
    assert_eq!(p.state(), State::Stopped);
}

#[test]
fn grandchildren_die_with_the_group() {
    let pm = manager();
    let dir = project();
    let p = pm
        .start(sh("tree", dir.path(), "sleep 1000 & echo $!; sleep 1000"))
        .unwrap();
    assert!(wait_for_output(&p, "\n"));
    let grandchild: u32 = text(&p, OutputRequest::default()).trim().parse().unwrap();
    assert!(!dead(grandchild));
    assert_eq!(procfs::stat(grandchild).unwrap().pgrp, p.pgid().unwrap());
    pm.stop(dir.path(), "tree", false).unwrap();
    assert!(
        wait_until(LONG, || dead(grandchild)),
        "grandchild {grandchild} survived"
    );
    // The leftovers' SIGKILL is delivered asynchronously: under load a member may still be dying.
    assert!(wait_until(LONG, || !procfs::group_alive(p.pgid().unwrap())));
}

#[test]
fn subreaper_reaps_orphaned_grandchildren() {
    let pm = ProcessManager::new(ManagerConfig {
        subreaper: true,
        grace: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let dir = project();
    let p = pm
        .start(sh("orph", dir.path(), "sleep 1000 & echo $!; exit 0"))
        .unwrap();
    assert_eq!(p.wait(Some(LONG)), State::Stopped);
    let grandchild: u32 = text(&p, OutputRequest::default()).trim().parse().unwrap();
    // Its parent died: we adopted it.
    assert!(wait_until(LONG, || procfs::stat(grandchild)
        .is_some_and(|s| s.ppid == std::process::id())));
    pm.stop(dir.path(), "orph", false).unwrap(); // kills the group's leftovers
    assert!(
        wait_until(LONG, || procfs::stat(grandchild).is_none()),
        "the zombie was not reaped"
    );
}

#[test]
fn restart_keeps_env_and_cwd() {
    let pm = manager();
    let dir = project();
    let work = dir.path().join("work dir");
    fs::create_dir(&work).unwrap();
    let mut spec = sh("env", dir.path(), "echo \"FOO=$FOO\"; pwd; sleep 1000");
    spec.env = BTreeMap::from([("FOO".to_string(), "bar baz".to_string())]);
    spec.cwd = Some(work.clone());
    let first = pm.start(spec).unwrap();
    let expected = format!("FOO=bar baz\n{}\n", work.canonicalize().unwrap().display());
    assert!(wait_for_output(&first, &expected));
    let second = pm.restart(dir.path(), "env").unwrap();
    assert_eq!(first.state(), State::Stopped);
    assert_ne!(first.pid(), second.pid());
    assert!(
        wait_for_output(&second, &expected),
        "{}",
        text(&second, OutputRequest::default())
    );
    assert!(Arc::ptr_eq(&pm.get(dir.path(), "env").unwrap(), &second));
    assert_eq!(pm.list(Some(dir.path())).len(), 1);
}

#[test]
fn registry_rules_and_start_or_reuse() {
    let pm = manager();
    let a = project();
    let b = project();
    let p = pm.start(sh("web", a.path(), "sleep 1000")).unwrap();
    let e = pm.start(sh("web", a.path(), "sleep 1000")).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    // Same id in another project is another process.
    pm.start(sh("web", b.path(), "sleep 1000")).unwrap();
    let (q, outcome) = pm
        .start_or_reuse(sh("web", a.path(), "sleep 1000"))
        .unwrap();
    assert_eq!(outcome, StartOutcome::Reused);
    assert!(Arc::ptr_eq(&p, &q));
    pm.stop(a.path(), "web", true).unwrap();
    let (r, outcome) = pm
        .start_or_reuse(sh("web", a.path(), "sleep 1000"))
        .unwrap();
    assert_eq!(outcome, StartOutcome::Replaced);
    assert!(!Arc::ptr_eq(&p, &r));
    let (_, outcome) = pm
        .start_or_reuse(sh("new", a.path(), "sleep 1000"))
        .unwrap();
    assert_eq!(outcome, StartOutcome::Started);
    let ids: Vec<_> = pm
        .list(Some(a.path()))
        .iter()
        .map(|p| p.id().to_string())
        .collect();
    assert_eq!(ids, ["web", "new"]);
    assert_eq!(pm.list(None).len(), 3);
    let e = pm.stop(a.path(), "nope", false).unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }) && e.to_string().contains("known: web, new"),
        "{e}"
    );
    pm.remove(a.path(), "new").unwrap();
    assert!(pm.get(a.path(), "new").is_none());
    assert_eq!(pm.stats().active, 2);
}

#[test]
fn concurrent_start_get_list_stop_from_16_threads() {
    let pm = manager();
    let dir = project();
    let root = dir.path().to_path_buf();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let pm = Arc::clone(&pm);
            let root = root.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                for k in 0..100 {
                    let i = (k * 7 + t * 13) % 100;
                    let id = format!("p{i}");
                    let (p, _) = pm.start_or_reuse(sh(&id, &root, "sleep 1000")).unwrap();
                    assert_eq!(p.id(), id);
                    assert!(pm.get(&root, &id).is_some());
                    assert!(!pm.list(Some(&root)).is_empty());
                }
                barrier.wait();
                for k in 0..100 {
                    let i = (k * 11 + t * 3) % 100;
                    let p = pm.stop(&root, &format!("p{i}"), true).unwrap();
                    assert!(p.state().is_terminal());
                    pm.list(None);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let all = pm.list(Some(&root));
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|p| p.state() == State::Stopped));
    assert!(
        all.windows(2).all(|w| w[0].seq() < w[1].seq()),
        "sorted by start order"
    );
    let s = pm.stats();
    assert_eq!((s.active, s.total_started, s.total_failed), (0, 100, 0));
}

#[test]
fn aggressive_shutdown_of_20_groups() {
    let pm = manager();
    let dir = project();
    let procs: Vec<_> = (0..20)
        .map(|i| {
            pm.start(sh(&format!("s{i}"), dir.path(), "sleep 1000 & sleep 1000"))
                .unwrap()
        })
        .collect();
    let groups: Vec<u32> = procs.iter().map(|p| p.pgid().unwrap()).collect();
    // Both members of each group exist before we shut down.
    assert!(wait_until(LONG, || groups
        .iter()
        .all(|&g| procfs::group_members(g).len() >= 2)));
    let t = Instant::now();
    pm.shutdown(Duration::ZERO);
    let took = t.elapsed();
    eprintln!("aggressive shutdown of 20 groups: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(procs.iter().all(|p| p.state().is_terminal()));
    assert!(
        groups.iter().all(|&g| !procfs::group_alive(g)),
        "a group survived"
    );
    assert!(pm.is_shutting_down());
    assert!(matches!(
        pm.start(sh("late", dir.path(), "true")),
        Err(Error::ShuttingDown)
    ));
    pm.shutdown(Duration::ZERO); // idempotent
}

#[test]
fn normal_shutdown_terms_then_kills() {
    let pm = manager(); // grace 300 ms
    let dir = project();
    let polite = pm.start(sh("polite", dir.path(), "sleep 1000")).unwrap();
    let stubborn = pm
        .start(sh(
            "stubborn",
            dir.path(),
            "trap '' TERM; echo armed; while :; do sleep 1; done",
        ))
        .unwrap();
    assert!(wait_for_output(&stubborn, "armed"));
    let t = Instant::now();
    pm.shutdown(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(polite.exit_signal(), Some(15));
    assert_eq!(stubborn.exit_signal(), Some(9));
    assert_eq!(pm.stats().active, 0);
}

#[test]
fn cleanup_port_frees_a_port_held_by_a_child() {
    let pm = manager();
    let dir = project();
    let listener = "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\ntime.sleep(1000)";
    let spec = ProcessSpec::new(
        "listen",
        dir.path(),
        CommandLine::Argv(vec!["python3".into(), "-c".into(), listener.into()]),
    );
    let p = pm.start(spec).unwrap();
    assert!(
        wait_for_output(&p, "\n"),
        "{}",
        text(&p, OutputRequest::default())
    );
    let port: u16 = text(&p, OutputRequest::default()).trim().parse().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    let killed = pm.cleanup_port(port).unwrap();
    assert_eq!(killed, vec![p.pid().unwrap()]);
    assert!(p.wait(Some(LONG)).is_terminal());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(pm.cleanup_port(port).unwrap().is_empty());
}

fn unix_micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[test]
fn orphan_entry_whose_pid_was_reused_is_left_alone() {
    let state = tempfile::tempdir().unwrap();
    // A live group leader that started now, recorded as if it had started long ago: the pid
    // belongs to someone else, whose group must survive.
    let mut other = spawn::command("sleep")
        .arg("1000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pgid = other.id();
    let _guard = GroupGuard(pgid);
    let record = orphans::OrphanRecord {
        instance: String::new(),
        owner_pid: u32::MAX,
        processes: vec![orphans::OrphanEntry {
            id: "old".into(),
            project: PathBuf::from("/x"),
            pid: pgid,
            pgid,
            started_at: unix_micros_now() - 3_600_000_000,
        }],
    };
    fs::write(
        state.path().join(orphans::FILE_NAME),
        serde_json::to_string(&record).unwrap(),
    )
    .unwrap();
    let _pm = ProcessManager::new(ManagerConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    assert!(
        other.try_wait().unwrap().is_none(),
        "an unrelated group was killed"
    );
    assert!(procfs::group_alive(pgid));
}

#[test]
fn orphan_file_from_a_dead_owner_is_cleaned_up() {
    let state = tempfile::tempdir().unwrap();
    // A group "left behind": a child of ours in its own group.
    let mut leftover = spawn::command("sh")
        .args(["-c", "sleep 1000 & sleep 1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pgid = leftover.id();
    let _guard = GroupGuard(pgid);
    assert!(wait_until(LONG, || procfs::group_members(pgid).len() >= 2));
    // An owner that is certainly dead: a child we already reaped.
    let mut gone = spawn::command("true")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dead_owner = gone.id();
    gone.wait().unwrap();
    let record = orphans::OrphanRecord {
        instance: String::new(),
        owner_pid: dead_owner,
        processes: vec![orphans::OrphanEntry {
            id: "dev".into(),
            project: PathBuf::from("/x"),
            pid: pgid,
            pgid,
            started_at: unix_micros_now(),
        }],
    };
    let file = state.path().join(orphans::FILE_NAME);
    fs::write(&file, serde_json::to_string(&record).unwrap()).unwrap();

    let pm = ProcessManager::new(ManagerConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    leftover.wait().unwrap();
    assert!(
        wait_until(LONG, || !procfs::group_alive(pgid)),
        "the orphaned group survived"
    );
    let now: orphans::OrphanRecord =
        serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(now.owner_pid, std::process::id());
    assert!(now.processes.is_empty());

    // The file tracks live processes and a clean shutdown removes it.
    let dir = project();
    let p = pm.start(sh("tracked", dir.path(), "sleep 1000")).unwrap();
    let now: orphans::OrphanRecord =
        serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(now.processes.len(), 1);
    assert_eq!(now.processes[0].pgid, p.pgid().unwrap());
    pm.shutdown(Duration::from_secs(3));
    assert!(!file.exists());
}

#[test]
fn readiness_log_port_and_early_exit() {
    let pm = manager();
    let dir = project();
    let mut spec = sh(
        "log",
        dir.path(),
        "echo booting; echo 'listening on 3000'; sleep 1000",
    );
    spec.ready = Some(ReadyCheck::Log(
        regex::Regex::new("listening on \\d+").unwrap(),
    ));
    pm.start(spec).unwrap().wait_ready(LONG).unwrap();

    let mut spec = sh("never", dir.path(), "sleep 1000");
    spec.ready = Some(ReadyCheck::Log(regex::Regex::new("ready").unwrap()));
    let e = pm
        .start(spec)
        .unwrap()
        .wait_ready(Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");

    let mut spec = sh("dies", dir.path(), "echo 'fatal: no config' >&2; exit 3");
    spec.ready = Some(ReadyCheck::Port(1));
    let e = pm.start(spec).unwrap().wait_ready(LONG).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"dies\"") && msg.contains("fatal: no config") && msg.contains("exit 3"),
        "{msg}"
    );

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut spec = sh("port", dir.path(), "sleep 1000");
    spec.ready = Some(ReadyCheck::Port(port));
    pm.start(spec).unwrap().wait_ready(LONG).unwrap();

    pm.start(sh("plain", dir.path(), "sleep 1000"))
        .unwrap()
        .wait_ready(LONG)
        .unwrap();
}

#[test]
fn readiness_url() {
    let pm = manager();
    let dir = project();
    let server = "import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(204); self.end_headers()\n    def log_message(self, *a): pass\ns = h.HTTPServer(('127.0.0.1', 0), H)\nprint(s.server_address[1], flush=True)\ns.serve_forever()";
    let spec = ProcessSpec::new(
        "srv",
        dir.path(),
        CommandLine::Argv(vec!["python3".into(), "-c".into(), server.into()]),
    );
    let srv = pm.start(spec).unwrap();
    assert!(wait_for_output(&srv, "\n"));
    let port: u16 = text(&srv, OutputRequest::default()).trim().parse().unwrap();
    let mut spec = sh("client", dir.path(), "sleep 1000");
    spec.ready = Some(ReadyCheck::Url(format!("http://127.0.0.1:{port}/health")));
    pm.start(spec).unwrap().wait_ready(LONG).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let pm = manager();
    let dir = project();
    let spec = ProcessSpec::new(
        "ghost",
        dir.path(),
        CommandLine::Argv(vec!["/nonexistent/agnt-no-such-program".into()]),
    );
    let e = pm.start(spec).unwrap_err();
    assert!(matches!(e, Error::Spawn { .. }), "{e}");
    assert!(e.to_string().contains("agnt-no-such-program"), "{e}");
    let p = pm.get(dir.path(), "ghost").unwrap();
    assert_eq!(p.state(), State::Failed);
    assert!(
        p.summary().starts_with("failed (cannot start"),
        "{}",
        p.summary()
    );
    assert_eq!(pm.stats().total_failed, 1);
    assert_eq!(pm.stats().active, 0);

    let e = pm
        .start(ProcessSpec::new(
            "empty",
            dir.path(),
            CommandLine::Argv(vec![]),
        ))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(pm.get(dir.path(), "empty").is_none());
    let e = pm.start(sh("blank", dir.path(), "  ")).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

    // A missing working directory is named.
    let mut spec = sh("nowhere", dir.path(), "true");
    spec.cwd = Some(dir.path().join("missing"));
    let e = pm.start(spec).unwrap_err().to_string();
    assert!(
        e.contains("working directory") && e.contains("missing"),
        "{e}"
    );

    // A failed id can be started again.
    let ok = pm.start(sh("ghost", dir.path(), "true")).unwrap();
    assert_eq!(ok.wait(Some(LONG)), State::Stopped);
}

#[test]
fn health_thread_exits_promptly_on_shutdown() {
    let pm = ProcessManager::new(ManagerConfig {
        health_period: Duration::from_secs(3600),
        ..Default::default()
    })
    .unwrap();
    let t = Instant::now();
    pm.shutdown(Duration::ZERO);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The checks themselves leave healthy processes alone.
    let pm = manager();
    let dir = project();
    let p = pm.start(sh("ok", dir.path(), "sleep 1000")).unwrap();
    pm.health_check();
    assert_eq!(p.state(), State::Running);
}

#[test]
fn auto_restart_restarts_with_backoff_until_a_requested_stop() {
    let pm = manager();
    let dir = project();
    // Each run appends a line to `runs`; the third run stays up.
    let mut spec = sh(
        "flappy",
        dir.path(),
        "echo run >> runs; [ $(wc -l < runs) -ge 3 ] && exec sleep 1000; exit 3",
    );
    spec.restart.enabled = true;
    let first = pm.start(spec).unwrap();
    let started = Instant::now();
    let current = || pm.get(dir.path(), "flappy").unwrap();
    assert!(
        wait_until(LONG, || {
            let p = current();
            p.spec().restart.restarts == 2 && p.state() == State::Running
        }),
        "{:?} {}",
        current().spec().restart,
        current().summary()
    );
    // Two backoffs: 0.5 s, then 1 s.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let p = current();
    assert_ne!(p.seq(), first.seq());
    assert_eq!(
        p.spec().restart.last_exit.as_deref(),
        Some("failed (exit 3)")
    );
    // "Running" means spawned: the third run's shell may not have written its line yet.
    let runs = || {
        std::fs::read_to_string(dir.path().join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert!(wait_until(LONG, || runs() == 3), "runs: {}", runs());
    let p = pm.stop(dir.path(), "flappy", false).unwrap();
    assert!(p.state().is_terminal());
    assert_eq!(runs(), 3, "a run after the requested stop");
    pm.shutdown(Duration::from_secs(2));
}
