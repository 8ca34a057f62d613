//! The daemon and supervisor under faults (issue 12), through the real binary: a client that
//! pipelines requests and reads nothing, the over-limit client, the HTTP face under a long
//! `wait` and a stalled upload, descendants that `setsid` away or keep the output pipe, and a
//! supervised `agnt mcp` whose auto-started daemon must survive its parent's stop. Bounded and
//! outcome-based: deadlines here are generous "answered before its timeout" bounds.

#![allow(clippy::disallowed_methods)] // tests spawn the binary under test directly

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    daemon::{Env, alive, kill},
    support::wait_until,
};

/// Starts `agnt daemon start --foreground ARGS` with extra environment; the `Env` stops it.
fn start(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Reap {
    let mut all = vec!["daemon", "start", "--foreground"];
    all.extend_from_slice(args);
    let mut cmd = env.cmd(&all);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || UnixStream::connect(&env.socket)
            .is_ok()
            && env.daemon_pid().is_some()),
        "daemon did not come up"
    );
    Reap(child)
}

/// Reaps a foreground daemon child after the `Env` (dropped first) stopped it.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if !wait_until(Duration::from_secs(10), || {
            self.0.try_wait().ok().flatten().is_some()
        }) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A field of `/proc/<pid>/status` (`VmRSS` in kB, `Threads`).
fn proc_status(pid: i32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The first `key=N` a process printed.
fn printed(c: &mut crate::daemon::Rpc, id: &str, key: &str) -> i32 {
    let mut found = None;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let out = c.ok("proc", json!({"action": "output", "process_id": id}));
            found = out["output"]
                .as_str()
                .unwrap_or("")
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}="))?.trim().parse().ok());
            found.is_some()
        }),
        "{id} never printed {key}="
    );
    found.unwrap()
}

#[test]
fn unread_pipelined_requests_keep_memory_bounded_and_a_stalled_peer_is_dropped() {
    let env = Env::new();
    let _d = start(&env, &[("AGNT_STALL_TIMEOUT_MS", "3000")], &[]);
    let daemon = env.daemon_pid().unwrap();
    let mut warm = env.session();
    warm.request("tools/list", json!({}));
    let base = proc_status(daemon, "VmRSS");

    // 15,000 pipelined `tools/list` and no reading: the writer blocks once the daemon pushes
    // back (its write timeout ends the attempt).
    let s = UnixStream::connect(&env.socket).unwrap();
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let writer = std::thread::spawn(move || {
        let line = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let mut sent = 0;
        for _ in 0..15_000 {
            if w.write_all(line).and_then(|_| w.write_all(b"\n")).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    // The daemon's memory while the client is still connected and reads nothing.
    let mut peak = base;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        peak = peak.max(proc_status(daemon, "VmRSS"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = writer.join().unwrap();
    let grew_mb = (peak.saturating_sub(base)) / 1024;
    assert!(
        grew_mb < 64,
        "daemon RSS grew by {grew_mb} MB with {sent} unread requests pending (goal < 64 MB)"
    );

    // A peer that reads nothing while answers wait is disconnected after the stall timeout:
    // reading now drains what was sent before, then meets the end of the stream.
    let mut r = s.try_clone().unwrap();
    r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut eof = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(eof, "the stalled client was never disconnected");
    // The daemon serves others all along.
    let v = warm.ok("daemon", json!({"action": "info"}));
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_over_limit_client_reads_why_at_once_in_the_cli_and_the_bridge() {
    let env = Env::new();
    let _d = start(&env, &[("AGNT_MAX_CLIENTS", "2")], &[]);
    let mut a = env.session();
    // `start` probed the socket with bare connects: each holds a slot until the daemon has read
    // its EOF. Wait until `a` is the only client, so `_b` takes the last slot.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let info = a.ok("daemon", json!({"action": "info"}));
            info["clients"].as_array().is_some_and(|c| c.len() == 1)
        }),
        "the socket probes of `start` still hold slots"
    );
    let _b = env.session();

    let began = Instant::now();
    let (code, out, err) = env.run(&["proc", "list"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the CLI waited for a timeout"
    );
    for want in [
        "too many clients",
        "at most 2",
        "2 are connected",
        "agnt daemon info",
    ] {
        assert!(err.contains(want), "CLI stderr lacks {want:?}: {err}");
    }

    // `agnt mcp`: the refusal is the first thing on stderr and the answer to `initialize`.
    let mut child = env
        .cmd(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let elapsed = began.elapsed();
    let v: Value = serde_json::from_str(&line).unwrap();
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    drop(stdin);
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        msg.contains("too many clients") && msg.contains("agnt daemon info"),
        "{v}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "agnt mcp took {elapsed:?} to fail"
    );
    assert!(
        first.contains("too many clients"),
        "first stderr line: {first}"
    );

    // With a slot free, `daemon info` lists the clients: kind, pid, connected and idle time.
    let info = a.ok("daemon", json!({"action": "info"}));
    let clients = info["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 2, "{info}");
    assert!(
        clients
            .iter()
            .all(|c| c["name"] == "it" && c["pid"].is_u64() && c["idle_secs"].is_u64()),
        "{info}"
    );
    drop(_b);
    let (code, out, err) = env.run(&["daemon", "info"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(limit 2)") && out.contains("cli"), "{out}");
}

/// A raw HTTP/1.1 exchange with a deadline; returns the response text.
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn healthz_answers_while_a_long_wait_runs_and_an_upload_stalls() {
    let env = Env::new();
    let port = free_port();
    let _d = start(&env, &[], &["--http-port", &port.to_string()]);
    let mut c = env.session();
    // Everything but /healthz needs the face's bearer token (SECURITY.md).
    let token = std::fs::read_to_string(format!("{}.http-token", env.socket.display()))
        .unwrap()
        .trim()
        .to_string();
    c.ok(
        "run",
        json!({"raw": true, "command": "sleep", "args": ["300"], "id": "quiet"}),
    );
    // A `wait` that will not match for 20 s, over HTTP.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait",
        "arguments": {"for": "log", "process_id": "quiet", "pattern": "never", "timeout": 20}}})
    .to_string();
    let long = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).unwrap();
    waiting.write_all(long.as_bytes()).unwrap();
    // A 1 MB upload that stalls after 10 bytes.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(
            format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000000\r\n\r\n0123456789")
                .as_bytes(),
        )
        .unwrap();
    // The long wait has reached a worker once the daemon lists it as an HTTP client.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let info = c.ok("daemon", json!({"action": "info"}));
            info["clients"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["kind"] == "http"))
        }),
        "the long wait never reached a worker"
    );

    let began = Instant::now();
    let health = http(
        port,
        &format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let other = http(
        port,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ping}",
            ping.len()
        ),
    );
    assert!(other.contains("\"id\":2"), "{other:?}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "blocked behind the wait or the upload"
    );
    // The long wait is listed as an HTTP client meanwhile.
    let info = c.ok("daemon", json!({"action": "info"}));
    assert!(
        info["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "http"),
        "{info}"
    );
    drop(stalled);
    drop(waiting);
}

#[test]
fn daemon_start_detached_honours_http_port() {
    let env = Env::new();
    let port = free_port();
    let (code, out, err) = env.run(&["daemon", "start", "--http-port", &port.to_string()]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        wait_until(Duration::from_secs(10), || http(
            port,
            &format!(
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            )
        )
        .starts_with("HTTP/1.1 200")),
        "no HTTP face on {port} after `agnt daemon start --http-port {port}`"
    );
}

const SETSID_GRANDCHILD: &str =
    "setsid sleep 300 >/dev/null 2>&1 </dev/null & echo gc=$!; sleep 300";

#[test]
fn a_setsid_grandchild_dies_with_proc_stop_and_after_a_daemon_kill9() {
    let env = Env::new();
    let d = start(&env, &[], &[]);
    let mut c = env.session();
    c.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", SETSID_GRANDCHILD], "id": "esc"}),
    );
    let gc = printed(&mut c, "esc", "gc");
    assert!(alive(gc));
    c.ok("proc", json!({"action": "stop", "process_id": "esc"}));
    assert!(
        wait_until(Duration::from_secs(10), || !alive(gc)),
        "setsid grandchild {gc} survived proc stop"
    );

    // Again, then SIGKILL the daemon: the next one cleans up by marker.
    c.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", SETSID_GRANDCHILD], "id": "esc2"}),
    );
    let gc = printed(&mut c, "esc2", "gc");
    drop(c);
    let daemon = env.daemon_pid().unwrap();
    kill(daemon, rustix::process::Signal::KILL);
    assert!(wait_until(Duration::from_secs(10), || !alive(daemon)));
    drop(d);
    assert!(
        alive(gc),
        "the grandchild should outlive a SIGKILLed daemon"
    );
    let _d = start(&env, &[], &[]);
    assert!(
        wait_until(Duration::from_secs(15), || !alive(gc)),
        "setsid grandchild {gc} not cleaned by the next daemon"
    );
}

#[test]
fn a_grandchild_holding_the_pipe_does_not_keep_daemon_threads() {
    let env = Env::new();
    let _d = start(&env, &[], &[]);
    let daemon = env.daemon_pid().unwrap();
    let mut c = env.session();
    c.ok("proc", json!({"action": "list"}));
    let base = proc_status(daemon, "Threads");
    let mut gcs = Vec::new();
    for i in 0..5 {
        let id = format!("holder{i}");
        c.ok("run", json!({"raw": true, "command": "sh", "args": ["-c", "setsid sleep 300 & echo gc=$!"], "id": id}));
        gcs.push((id.clone(), printed(&mut c, &id, "gc")));
    }
    for (id, _) in &gcs {
        assert!(
            wait_until(Duration::from_secs(10), || {
                c.ok("proc", json!({"action": "status", "process_id": id}))["state"] != "running"
            }),
            "{id} did not end"
        );
    }
    let mut now = 0;
    let settled = wait_until(Duration::from_secs(15), || {
        now = proc_status(daemon, "Threads");
        now <= base + 2
    });
    assert!(
        settled,
        "daemon threads {base} -> {now} with 5 ended processes whose grandchildren hold the pipe"
    );
    for (id, gc) in &gcs {
        // The settle bound above leaves room for a pump or two still at its deadline.
        let mut st = Value::Null;
        assert!(
            wait_until(Duration::from_secs(10), || {
                st = c.ok("proc", json!({"action": "status", "process_id": id}));
                st["escaped_pids"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(gc)))
            }),
            "status does not name {gc}: {st}"
        );
        c.ok("proc", json!({"action": "stop", "process_id": id}));
        assert!(
            wait_until(Duration::from_secs(10), || !alive(*gc)),
            "{gc} survived"
        );
    }
}

#[test]
fn a_supervised_agnt_mcp_daemon_survives_the_stop_of_its_parent() {
    let env = Env::new();
    let _d = start(&env, &[], &[]);
    let inner = tempfile::Builder::new()
        .prefix("agnt-i")
        .tempdir_in("/tmp")
        .unwrap();
    // A socket directory must be private (0700) or the client refuses it (SECURITY.md).
    std::fs::set_permissions(
        inner.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let socket = inner.path().join("agnt.sock");
    let state = inner.path().join("state");
    let bin = crate::support::bin();
    let line = format!(
        "sleep 300 | AGNT_SOCKET={} AGNT_STATE_DIR={} {} mcp",
        socket.display(),
        state.display(),
        bin.display()
    );
    let mut c = env.session();
    c.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", line], "id": "agent"}),
    );
    let pid_file = Path::new(&format!("{}.pid", socket.display())).to_path_buf();
    let mut inner_pid = 0;
    assert!(
        wait_until(Duration::from_secs(20), || {
            inner_pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            inner_pid > 0 && UnixStream::connect(&socket).is_ok()
        }),
        "the supervised agnt mcp did not start a daemon"
    );
    c.ok("proc", json!({"action": "stop", "process_id": "agent"}));
    std::thread::sleep(Duration::from_millis(500));
    let survived = alive(inner_pid);
    // Stop the inner daemon whatever happened.
    let _ = env
        .cmd(&["daemon", "stop"])
        .env("AGNT_SOCKET", &socket)
        .env("AGNT_STATE_DIR", &state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if alive(inner_pid) {
        kill(inner_pid, rustix::process::Signal::KILL);
    }
    assert!(
        survived,
        "stopping the supervised agnt mcp killed the daemon it started"
    );
}
