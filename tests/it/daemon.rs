//! The daemon through the real binary: socket permissions, single instance, stop and SIGTERM
//! leave no child behind, SIGKILL then a new daemon cleans orphans, processes outlive clients,
//! proxies come back after a restart, two bridges start one daemon, the bridge survives a
//! daemon restart, the HTTP face refuses foreign origins. Also the helpers the MCP and CLI
//! tests share: a private daemon environment ([`Env`]) and a line-level JSON-RPC client.

#![allow(clippy::disallowed_methods)] // tests spawn the binary under test directly

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

use crate::support::{KillGroups, announced_proxy, bin, printed_pid, wait_until};

/// A private daemon world: its own socket and state dir; Drop stops any daemon that lives there.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state: PathBuf,
    pub project: PathBuf,
    foreground: Option<Child>,
}

impl Env {
    pub fn new() -> Env {
        // Short base path: Unix socket paths are limited to ~108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("agnt-t")
            .tempdir_in("/tmp")
            .unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir_all(&project).unwrap();
        Env {
            socket: dir.path().join("run").join("agnt.sock"),
            state: dir.path().join("state"),
            project: project.canonicalize().unwrap(),
            dir,
            foreground: None,
        }
    }

    /// `agnt ARGS` with this world's env, run in the project dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("AGNT_SOCKET", &self.socket)
            .env("AGNT_STATE_DIR", &self.state)
            .env_remove("AGNT_PROJECT_PATH")
            .env_remove("AGNT_HTTP_PORT")
            .current_dir(&self.project);
        c
    }

    /// Runs `agnt ARGS` to completion: (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `agnt daemon start --foreground` (extra args appended) and waits for the socket.
    pub fn start_foreground(&mut self, extra: &[&str]) {
        let mut args = vec!["daemon", "start", "--foreground"];
        args.extend_from_slice(extra);
        let child = self
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.foreground = Some(child);
        assert!(
            wait_until(Duration::from_secs(10), || UnixStream::connect(
                &self.socket
            )
            .is_ok()),
            "daemon did not come up"
        );
    }

    /// The live daemon's pid, from its pid file.
    pub fn daemon_pid(&self) -> Option<i32> {
        let mut p = self.socket.clone().into_os_string();
        p.push(".pid");
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }

    /// A JSON-RPC client on the socket.
    pub fn connect(&self) -> Rpc {
        let s = UnixStream::connect(&self.socket).unwrap();
        let r = s.try_clone().unwrap();
        let mut rpc = Rpc::new(Box::new(r), Box::new(s.try_clone().unwrap()));
        rpc.closer = Some(s);
        rpc
    }

    /// A client on the socket that has done `initialize` for this project.
    pub fn session(&self) -> Rpc {
        let mut c = self.connect();
        c.initialize(&self.project);
        c
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid()
            && alive(pid)
        {
            let _ = self
                .cmd(&["daemon", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !wait_until(Duration::from_secs(15), || !alive(pid)) {
                kill(pid, rustix::process::Signal::KILL);
            }
        }
        if let Some(mut c) = self.foreground.take() {
            if !wait_until(Duration::from_secs(10), || {
                c.try_wait().ok().flatten().is_some()
            }) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

pub fn alive(pid: i32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    // A zombie still "exists"; treat it as dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

pub fn kill(pid: i32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Line-level JSON-RPC: raw writes, and a reader thread delivering lines on a channel.
pub struct Rpc {
    pub w: Box<dyn Write + Send>,
    lines: mpsc::Receiver<Vec<u8>>,
    next: i64,
    /// Notifications seen while waiting for responses.
    pub notifications: Vec<Value>,
    closer: Option<UnixStream>,
}

impl Drop for Rpc {
    fn drop(&mut self) {
        if let Some(s) = &self.closer {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Rpc {
    pub fn new(r: Box<dyn Read + Send>, w: Box<dyn Write + Send>) -> Rpc {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Rpc {
            w,
            lines: rx,
            next: 1,
            notifications: Vec::new(),
            closer: None,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
        self.w.flush().unwrap();
    }

    pub fn send(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// The next message (panics after 60 s or at EOF).
    pub fn recv(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("no message within 60s");
        serde_json::from_slice(&line)
            .unwrap_or_else(|e| panic!("bad line {:?}: {e}", String::from_utf8_lossy(&line)))
    }

    /// The next message within `t`, if any.
    pub fn try_recv(&mut self, t: Duration) -> Option<Value> {
        self.lines
            .recv_timeout(t)
            .ok()
            .map(|l| serde_json::from_slice(&l).unwrap())
    }

    /// The next response (notifications are collected).
    pub fn response(&mut self) -> Value {
        loop {
            let v = self.recv();
            if v.get("method").is_some() && v.get("id").is_none() {
                self.notifications.push(v);
                continue;
            }
            return v;
        }
    }

    pub fn start(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and returns the full response object with that id.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start(method, params);
        loop {
            let v = self.response();
            if v["id"] == id {
                return v;
            }
        }
    }

    pub fn initialize(&mut self, project: &Path) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "0"},
                   "_meta": {"dev.agnt/project": project}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    /// `tools/call`; returns the `CallToolResult` (panics on a JSON-RPC error).
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        assert!(r.get("error").is_none(), "{tool} {r}");
        r["result"].clone()
    }

    /// `tools/call` that must succeed; returns `structuredContent`.
    pub fn ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args.clone());
        assert_eq!(r["isError"], false, "{tool} {args} -> {r}");
        r["structuredContent"].clone()
    }

    /// `tools/call` that must fail; returns the error text.
    pub fn err(&mut self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args.clone());
        assert_eq!(r["isError"], true, "{tool} {args} -> {r}");
        r["content"][0]["text"].as_str().unwrap().to_string()
    }
}

/// `agnt mcp [ARGS]` as a child with piped stdio, killed on drop.
pub struct McpChild {
    pub child: Child,
    pub rpc: Rpc,
}

impl McpChild {
    pub fn spawn(env: &Env, args: &[&str]) -> McpChild {
        let mut all = vec!["mcp"];
        all.extend_from_slice(args);
        let mut child = env
            .cmd(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rpc = Rpc::new(
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stdin.take().unwrap()),
        );
        McpChild { child, rpc }
    }
}

impl Drop for McpChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sleeper(c: &mut Rpc, id: &str) -> i32 {
    let v = c.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "sleep 300"], "id": id}),
    );
    v["pid"].as_i64().unwrap() as i32
}

#[test]
fn socket_is_private_and_a_second_daemon_is_refused() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.socket), 0o600);
    assert_eq!(mode(env.socket.parent().unwrap()), 0o700);
    let (code, _, err) = env.run(&["daemon", "start", "--foreground"]);
    assert_ne!(code, 0);
    assert!(err.contains("already running"), "{err}");
    // The first one still answers.
    let mut c = env.session();
    assert_eq!(
        c.ok("daemon", json!({"action": "info"}))["version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn stop_leaves_no_child_alive_and_removes_the_socket() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut c = env.session();
    let pid = sleeper(&mut c, "sleepy");
    assert!(alive(pid));
    drop(c);
    let (code, out, err) = env.run(&["daemon", "stop"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "child {pid} survived daemon stop"
    );
    assert!(!env.socket.exists());
    let (code, out, _) = env.run(&["daemon", "status"]);
    assert_eq!(code, 3);
    assert!(out.contains("not running"), "{out}");
}

#[test]
fn sigterm_is_a_normal_shutdown() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let pid = sleeper(&mut env.session(), "s1");
    kill(env.daemon_pid().unwrap(), rustix::process::Signal::TERM);
    assert!(
        wait_until(Duration::from_secs(15), || !env.socket.exists()),
        "socket not removed on SIGTERM"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "child survived SIGTERM"
    );
}

#[test]
fn sigkill_then_a_new_daemon_cleans_orphans() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let pid = sleeper(&mut env.session(), "orphan");
    let daemon = env.daemon_pid().unwrap();
    kill(daemon, rustix::process::Signal::KILL);
    assert!(wait_until(Duration::from_secs(10), || !alive(daemon)));
    assert!(
        alive(pid),
        "the child should outlive a SIGKILLed daemon until cleanup"
    );
    if let Some(mut c) = env.foreground.take() {
        let _ = c.wait();
    }
    env.start_foreground(&[]);
    assert!(
        wait_until(Duration::from_secs(15), || !alive(pid)),
        "orphan {pid} not cleaned by the next daemon"
    );
}

#[test]
fn processes_outlive_client_disconnects_and_ids_are_scoped() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut c = env.session();
    let pid = sleeper(&mut c, "keep");
    drop(c);
    let mut c2 = env.session();
    let st = c2.ok("proc", json!({"action": "status", "process_id": "keep"}));
    assert_eq!(st["state"], "running");
    assert_eq!(st["pid"], pid);
    // Another project does not see it, unless global.
    let other = env.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let list = c2.ok("proc", json!({"action": "list", "path": other}));
    assert_eq!(list["count"], 0);
    let list = c2.ok(
        "proc",
        json!({"action": "list", "path": other, "global": true}),
    );
    assert!(list["count"].as_u64().unwrap() >= 1);
    let msg = c2.err(
        "proc",
        json!({"action": "status", "process_id": "keep", "path": other}),
    );
    assert!(msg.contains("pass it as \"path\""), "{msg}");
    c2.ok(
        "proc",
        json!({"action": "stop", "process_id": "keep", "force": true}),
    );
}

#[test]
fn unknown_ids_name_the_known_ones() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut c = env.session();
    sleeper(&mut c, "alpha");
    for action in ["status", "output", "stop", "restart"] {
        let msg = c.err("proc", json!({"action": action, "process_id": "nope"}));
        assert!(msg.contains("known ids: alpha"), "{action}: {msg}");
    }
    let msg = c.err(
        "wait",
        json!({"for": "log", "process_id": "nope", "pattern": "x"}),
    );
    assert!(msg.contains("alpha"), "{msg}");
    c.ok(
        "proxy",
        json!({"action": "start", "id": "front", "target_url": "http://127.0.0.1:9", "port": 0}),
    );
    for (tool, args) in [
        ("proxy", json!({"action": "status", "id": "nope"})),
        ("proxylog", json!({"proxy_id": "nope"})),
        ("currentpage", json!({"proxy_id": "nope"})),
    ] {
        let msg = c.err(tool, args);
        assert!(msg.contains("front"), "{tool}: {msg}");
    }
    let msg = c.err(
        "currentpage",
        json!({"proxy_id": "front", "action": "get", "session_id": "page-9"}),
    );
    assert!(msg.contains("not found"), "{msg}");
    let msg = c.err(
        "proxylog",
        json!({"proxy_id": "front", "action": "get", "entry_id": "zzz"}),
    );
    assert!(msg.contains("not found"), "{msg}");
    let msg = c.err("run", json!({"script_name": "nosuch"}));
    assert!(
        msg.contains("unknown script") && msg.contains("Available"),
        "{msg}"
    );
}

#[test]
fn proxies_are_restored_by_the_next_daemon() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let v = env.session().ok(
        "proxy",
        json!({"action": "start", "id": "keepme", "target_url": "http://127.0.0.1:9", "port": 0}),
    );
    let url = v["url"].as_str().unwrap().to_string();
    let (code, _, err) = env.run(&["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
    if let Some(mut c) = env.foreground.take() {
        let _ = c.wait();
    }
    env.start_foreground(&[]);
    let list = env
        .session()
        .ok("proxy", json!({"action": "list", "global": true}));
    let urls: Vec<&str> = list["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["url"].as_str())
        .collect();
    assert!(urls.contains(&url.as_str()), "{url} not in {urls:?}");
}

#[test]
fn two_bridges_start_one_daemon() {
    let env = Env::new();
    let mut a = McpChild::spawn(&env, &[]);
    let mut b = McpChild::spawn(&env, &[]);
    a.rpc.initialize(&env.project);
    b.rpc.initialize(&env.project);
    let pa = a.rpc.ok("daemon", json!({"action": "info"}))["pid"].clone();
    let pb = b.rpc.ok("daemon", json!({"action": "info"}))["pid"].clone();
    assert_eq!(pa, pb);
    assert_eq!(Some(pa.as_i64().unwrap() as i32), env.daemon_pid());
}

#[test]
fn bridge_survives_a_daemon_restart() {
    let env = Env::new();
    let mut m = McpChild::spawn(&env, &[]);
    m.rpc.initialize(&env.project);
    let first = m.rpc.ok("daemon", json!({"action": "info"}))["pid"]
        .as_i64()
        .unwrap();
    let (code, _, err) = env.run(&["daemon", "restart"]);
    assert_eq!(code, 0, "{err}");
    let mut second = None;
    let ok = wait_until(Duration::from_secs(20), || {
        let r = m.rpc.request(
            "tools/call",
            json!({"name": "daemon", "arguments": {"action": "info"}}),
        );
        if let Some(pid) = r["result"]["structuredContent"]["pid"].as_i64() {
            second = Some(pid);
            return true;
        }
        false
    });
    assert!(ok, "bridge did not recover");
    assert_ne!(second, Some(first));
    // The session still works after the replayed handshake.
    assert!(m.rpc.request("ping", json!({}))["result"].is_object());
}

/// A client that is slow to read still gets the answer to its `shutdown` call: the daemon
/// flushes every queued answer before it exits. The client queues far more answers than the
/// socket buffers hold and reads nothing until the daemon is stopping (or, before the fix, gone).
#[test]
fn shutdown_answer_reaches_a_client_that_reads_late() {
    let env = Env::new();
    let mut child = env
        .cmd(&["daemon", "start", "--foreground"])
        .env("RUST_LOG", "agnt=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    assert!(
        wait_until(Duration::from_secs(10), || UnixStream::connect(&env.socket)
            .is_ok()),
        "daemon did not come up"
    );
    let mut s = UnixStream::connect(&env.socket).unwrap();
    let mut burst = String::new();
    // Fewer than the outbound queue holds: a client that reads nothing at all is pushed back
    // on (and, after the stall timeout, disconnected) — see daemon_faults.rs.
    for id in 1..=10 {
        burst.push_str(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#
        ));
        burst.push('\n');
    }
    burst.push_str(
        r#"{"jsonrpc":"2.0","id":999,"method":"tools/call","params":{"name":"daemon","arguments":{"action":"shutdown"}}}"#,
    );
    burst.push('\n');
    s.write_all(burst.as_bytes()).unwrap();
    let mut child = Reap(child);
    // The daemon is stopping (it says so) or already gone.
    assert!(
        wait_until(Duration::from_secs(20), || {
            log.lock().unwrap().contains("closing ") || child.0.try_wait().ok().flatten().is_some()
        }),
        "daemon neither stopped nor exited"
    );
    let mut got_shutdown = None;
    let mut answers = 0;
    for line in BufReader::new(&s).lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap();
        answers += 1;
        if v["id"] == 999 {
            got_shutdown = Some(v);
        }
    }
    let v = got_shutdown.unwrap_or_else(|| {
        panic!(
            "no answer to shutdown after {answers} answers; log:\n{}",
            log.lock().unwrap()
        )
    });
    assert_eq!(v["result"]["structuredContent"]["success"], true, "{v}");
    assert_eq!(answers, 11);
    assert!(
        wait_until(Duration::from_secs(15), || child
            .0
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "daemon did not exit"
    );
}

#[test]
fn http_face_serves_health_metrics_and_guards_mcp() {
    let mut env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.start_foreground(&[
        "--http-port",
        &port.to_string(),
        "--http-allow-origin",
        "http://localhost:5173",
    ]);
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_until(Duration::from_secs(10), || ureq::get(format!(
        "{base}/healthz"
    ))
    .call()
    .is_ok()));
    let mut token_file = env.socket.clone().into_os_string();
    token_file.push(".http-token");
    let token = std::fs::read_to_string(token_file).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let metrics = ureq::get(format!("{base}/metrics"))
        .header("Authorization", &bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("agnt_processes_active "), "{metrics}");
    assert!(metrics.contains("# TYPE agnt_tool_calls_total counter"));
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"daemon","arguments":{"action":"info"}}}"#;
    let mut resp = ureq::post(format!("{base}/mcp"))
        .header("Content-Type", "application/json")
        .header("Authorization", &bearer)
        .send(body)
        .unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(
        v["result"]["structuredContent"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let ok = ureq::post(format!("{base}/mcp"))
        .header("Origin", "http://localhost:5173")
        .header("Authorization", &bearer)
        .send(body);
    assert!(ok.is_ok());
    for (h, v) in [
        ("Origin", "http://evil.example"),
        ("Origin", "http://localhost:3000"),
        ("Origin", "null"),
        ("Host", "evil.example"),
        ("Host", "localhost"),
    ] {
        let r = ureq::post(format!("{base}/mcp"))
            .header(h, v)
            .header("Authorization", &bearer)
            .config()
            .http_status_as_error(false)
            .build()
            .send(body)
            .unwrap();
        assert_eq!(r.status(), 403, "{h}: {v}");
    }
    let r = ureq::post(format!("{base}/mcp"))
        .header("Authorization", &bearer)
        .config()
        .http_status_as_error(false)
        .build()
        .send("{nope")
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn up_serves_the_socket_while_no_daemon_runs() {
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  web {\n    run \"exec sleep 1000\"\n    autostart true\n  }\n}\n",
    )
    .unwrap();
    let mut up = env
        .cmd(&["up"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || UnixStream::connect(&env.socket)
            .is_ok()),
        "agnt up did not serve the socket"
    );
    let mut c = env.session();
    let mut state = Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = c.call("proc", json!({"action": "status", "process_id": "web"}));
            state = r["structuredContent"]["state"].clone();
            state == "running"
        }),
        "{state}"
    );
    let pid = c.ok("proc", json!({"action": "status", "process_id": "web"}))["pid"]
        .as_i64()
        .unwrap() as i32;
    drop(c);
    kill(up.id() as i32, rustix::process::Signal::INT);
    assert!(
        wait_until(Duration::from_secs(15), || up
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "agnt up did not exit"
    );
    assert!(!env.socket.exists(), "socket left behind by agnt up");
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
}

#[test]
fn version_mismatch_tells_the_user_to_restart_the_daemon() {
    let env = Env::new();
    std::fs::create_dir_all(env.socket.parent().unwrap()).unwrap();
    // A fake daemon of another version.
    let listener = std::os::unix::net::UnixListener::bind(&env.socket).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    let v: Value = serde_json::from_str(&line).unwrap();
                    if v.get("id").is_some() {
                        let r = json!({"jsonrpc": "2.0", "id": v["id"], "result": {"serverInfo": {"name": "agnt", "version": "0.0.1-old"}, "supportedVersions": []}});
                        let _ = writeln!(w, "{r}");
                    }
                }
            });
        }
    });
    let mut m = McpChild::spawn(&env, &[]);
    let r = m.rpc.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let msg = r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("0.0.1-old") && msg.contains("agnt daemon restart"),
        "{r}"
    );
    let (code, _, err) = env.run(&["proc", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("agnt daemon restart"), "{err}");
}

#[test]
fn the_client_limit_is_enforced_with_a_message() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = env.connect();
        assert_eq!(c.request("ping", json!({}))["result"], json!({}));
        held.push(c);
    }
    let mut extra = env.connect();
    let v = extra.recv();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many clients"),
        "{v}"
    );
    held.pop();
    assert!(wait_until(Duration::from_secs(10), || {
        let mut c = env.connect();
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
        // A refused connection may already be closed: a failed write just means "not yet".
        c.w.write_all(line).is_ok()
            && c.try_recv(Duration::from_secs(2))
                .is_some_and(|v| v["result"] == json!({}))
    }));
}

#[test]
fn wait_for_http_and_proxylog_entries() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut c = env.session();
    c.ok("run", json!({"raw": true, "command": "python3", "args": ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], "id": "srv"}));
    let w = c.ok(
        "wait",
        json!({"for": "log", "process_id": "srv", "pattern": r"port \d+", "timeout": 30}),
    );
    let line = w["line"].as_str().unwrap();
    let port: u16 = line
        .split("port ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let h = c.ok("wait", json!({"for": "http", "url": format!("http://127.0.0.1:{port}/"), "status": 200, "timeout": 30}));
    assert_eq!(h["status"], 200, "{h}");
    let h = c.ok("wait", json!({"for": "http", "url": format!("http://127.0.0.1:{port}/nope"), "status": 200, "timeout": 0.3}));
    assert_eq!(h["matched"], false);
    assert_eq!(h["last_seen"]["status"], 404, "{h}");
    let px = c.ok("proxy", json!({"action": "start", "id": "w", "target_url": format!("http://127.0.0.1:{port}"), "port": 0}));
    let url = px["url"].as_str().unwrap().to_string();
    let stats = c.ok("proxylog", json!({"proxy_id": "w", "action": "stats"}));
    let since = stats["last_seq"].as_u64().unwrap();
    let waiting = c.start("tools/call", json!({"name": "wait", "arguments": {"for": "proxylog", "proxy_id": "w", "types": ["http"], "pattern": "/hello", "since": since, "timeout": 30}}));
    let _ = ureq::get(format!("{url}/hello")).call();
    let r = loop {
        let v = c.response();
        if v["id"] == waiting {
            break v;
        }
    };
    let e = &r["result"]["structuredContent"]["entry"];
    assert!(e["data"]["url"].as_str().unwrap().contains("/hello"), "{r}");
    c.ok("proc", json!({"action": "stop", "process_id": "srv"}));
}

#[test]
fn restart_cleanup_port_stop_all_and_log_actions() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    let mut c = env.session();
    // proc restart: same id, new pid, same command.
    let pid = sleeper(&mut c, "re");
    let r = c.ok("proc", json!({"action": "restart", "process_id": "re"}));
    assert_eq!(r["state"], "running");
    assert_ne!(r["pid"], pid);
    assert!(wait_until(Duration::from_secs(10), || !alive(pid)));
    // cleanup_port kills the listener on a port.
    c.ok("run", json!({"raw": true, "command": "python3", "args": ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], "id": "lsn"}));
    let w = c.ok(
        "wait",
        json!({"for": "log", "process_id": "lsn", "pattern": r"port \d+", "timeout": 30}),
    );
    let port: u64 = w["line"]
        .as_str()
        .unwrap()
        .split("port ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let px = c.ok("proxy", json!({"action": "start", "id": "rp", "target_url": format!("http://127.0.0.1:{port}"), "port": 0}));
    let url = px["url"].as_str().unwrap().to_string();
    // proxy restart keeps the port; the log actions work.
    let rr = c.ok("proxy", json!({"action": "restart", "id": "rp"}));
    assert_eq!(rr["url"], url.as_str());
    ureq::get(format!("{url}/")).call().unwrap();
    let q = c.ok("proxylog", json!({"proxy_id": "rp", "types": ["http"]}));
    let entry_id = q["entries"][0]["id"].as_str().unwrap().to_string();
    let full = c.ok(
        "proxylog",
        json!({"proxy_id": "rp", "action": "get", "entry_id": entry_id}),
    );
    assert!(full.to_string().contains("GET"), "{full}");
    let stats = c.ok("proxylog", json!({"proxy_id": "rp", "action": "stats"}));
    assert!(stats["total_entries"].as_u64().unwrap() >= 1);
    c.ok("proxylog", json!({"proxy_id": "rp", "action": "clear"}));
    let q = c.ok("proxylog", json!({"proxy_id": "rp"}));
    assert_eq!(q["count"], 0);
    let pages = c.ok("currentpage", json!({"proxy_id": "rp"}));
    assert!(pages.is_object(), "{pages}");
    let k = c.ok("proc", json!({"action": "cleanup_port", "port": port}));
    assert_eq!(k["success"], true);
    assert!(!k["killed_pids"].as_array().unwrap().is_empty(), "{k}");
    // stop_all stops every process and proxy; the daemon keeps serving.
    let all = c.ok("daemon", json!({"action": "stop_all"}));
    assert!(all["processes_stopped"].as_u64().unwrap() >= 1, "{all}");
    assert!(all["proxies_stopped"].as_u64().unwrap() >= 1, "{all}");
    let list = c.ok("proc", json!({"action": "list"}));
    assert!(
        list["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] != "running"),
        "{list}"
    );
    assert!(c.request("ping", json!({}))["result"].is_object());
}

#[test]
fn up_with_a_daemon_running_runs_the_scripts_there() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  web {\n    run \"echo booting; echo READY; exec sleep 1000\"\n    autostart true\n    ready \"^READY$\"\n  }\n}\n",
    )
    .unwrap();
    let out = env
        .cmd(&["up", "--", "sh", "-c", "exit 3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("daemon runs"), "{stderr}");
    let mut c = env.session();
    let st = c.ok("proc", json!({"action": "status", "process_id": "web"}));
    assert_ne!(
        st["state"], "running",
        "agnt up left its script running in the daemon: {st}"
    );
    assert!(!alive(st["pid"].as_i64().unwrap() as i32));
    // Output was streamed with the prefix (it may be cut short by the teardown, but the ready
    // line came before CMD ran).
    assert!(stdout.contains("web | READY"), "{stdout}");
}

#[test]
fn up_with_a_daemon_running_starts_script_proxies_there() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    std::fs::create_dir(env.project.join("site")).unwrap();
    std::fs::write(
        env.project.join("site/index.html"),
        "<html><body>hello-remote</body></html>",
    )
    .unwrap();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        format!(
            "scripts {{\n  site {{\n    run \"python3 -u -m http.server 0 --bind 127.0.0.1 --directory site\"\n    autostart true\n  }}\n}}\nproxies {{\n  web {{\n    script \"site\"\n    port 0\n  }}\n  fixed {{\n    target \"http://127.0.0.1:{upstream_port}\"\n    port 0\n    autostart true\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let mut up = crate::support::Spawned::new(env.cmd(&["up"]));
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = up.stdout();
            announced_proxy(&out, "web").is_some() && announced_proxy(&out, "fixed").is_some()
        }),
        "proxies were not announced: {}{}",
        up.stdout(),
        up.stderr()
    );
    assert!(up.stderr().contains("daemon runs"), "{}", up.stderr());
    let out = up.stdout();
    let web = announced_proxy(&out, "web").unwrap();
    assert!(
        out.contains(&format!(
            "agnt: proxy web listening on {web} -> http://127.0.0.1:"
        )),
        "{out}"
    );
    // The proxy lives in the daemon: agents see it, and it serves the script's site.
    let mut c = env.session();
    let st = c.ok("proxy", json!({"action": "status", "id": "web"}));
    assert_eq!(st["url"].as_str(), Some(web.as_str()), "{st}");
    let addr = web.strip_prefix("http://").unwrap().to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /index.html HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    assert!(
        page.contains(" 200 OK") && page.contains("hello-remote"),
        "{page}"
    );
    up.signal(rustix::process::Signal::TERM);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    // Everything agnt up started in the daemon is gone with it.
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(&addr).is_err()
    }));
    let list = c.ok("proxy", json!({"action": "list"}));
    assert!(
        !list.to_string().contains("\"fixed\"") && !list.to_string().contains("\"web\""),
        "{list}"
    );
}

#[test]
fn up_with_a_daemon_running_kills_at_once_on_a_second_signal() {
    let mut env = Env::new();
    env.start_foreground(&[]);
    // The script ignores TERM, so the graceful stop would wait out the daemon's 5 s grace.
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  stubborn {\n    run \"trap '' TERM; echo pid=$$; while :; do sleep 1; done\"\n    autostart true\n  }\n}\n",
    )
    .unwrap();
    let mut up = crate::support::Spawned::new(env.cmd(&["up"]));
    assert!(
        wait_until(Duration::from_secs(20), || printed_pid(
            &up.stdout(),
            "stubborn"
        )
        .is_some()),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    let pid = printed_pid(&up.stdout(), "stubborn").unwrap();
    let _guard = KillGroups(vec![pid]);
    up.signal(rustix::process::Signal::INT);
    assert!(
        wait_until(Duration::from_secs(5), || up.stderr().contains("stopping")),
        "{}",
        up.stderr()
    );
    // Keep pressing Ctrl+C (signals within 200 ms of the first count as one): it must exit
    // well before the 5 s grace the stubborn script would otherwise get.
    assert!(
        wait_until(Duration::from_secs(4), || {
            up.signal(rustix::process::Signal::INT);
            up.child.try_wait().ok().flatten().is_some()
        }),
        "a second Ctrl+C did not exit at once: {}",
        up.stderr()
    );
    assert!(up.stderr().contains("second signal"), "{}", up.stderr());
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let mut c = env.session();
    let st = c.ok(
        "proc",
        json!({"action": "status", "process_id": "stubborn"}),
    );
    assert_ne!(st["state"], "running", "{st}");
}
