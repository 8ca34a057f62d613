//! Issue 9 played as an attacker: each test is one finding (or one promise of SECURITY.md) and
//! fails on the code before the trust work. Other-user cases run a copy of the binary as test
//! users made with `useradd` (root, as CI runs; skipped with a message only outside CI when not
//! root).

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    daemon::Env,
    proxy::{Px, Req, Upstream, respond},
    support::{self, wait_until},
};

// ---------------------------------------------------------------------------------------------
// Other users.

/// A local user made for these tests, and a copy of the binary it can run.
struct OtherUser {
    uid: u32,
    gid: u32,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The test user `name` (created if missing) with a copy of `agnt` in a fresh 0755 directory;
/// `None` (with a message) when not root outside CI.
fn other_user(name: &'static str) -> Option<OtherUser> {
    if rustix::process::getuid().as_raw() != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the other-user tests as root"
        );
        eprintln!("skipping: other-user tests need root (useradd, setpriv)");
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let o = support::command("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let o = support::command("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", name])
            .output()
            .unwrap();
        // Another test may have created it meanwhile.
        assert!(
            o.status.success() || id("-u").is_some(),
            "useradd {name}: {o:?}"
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("agnt-sec-bin")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("agnt");
    std::fs::copy(support::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(OtherUser {
        uid: id("-u").unwrap(),
        gid: id("-g").unwrap(),
        bin,
        _dir: dir,
    })
}

impl OtherUser {
    /// `program args` run as this user (environment cleared but for `env`).
    fn cmd(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = support::command("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/tmp")
            .current_dir("/tmp")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// This user's copy of agnt.
    fn agnt(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.cmd(self.bin.to_str().unwrap(), args, env)
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A directory other users may enter, for their state.
fn shared_tmp() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("agnt-sec")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// Finding 2: another user who reaches the daemon socket (a loosened directory) is refused by
/// the daemon (SO_PEERCRED) and its own client refuses our daemon too.
#[test]
fn another_user_cannot_use_the_daemon_socket() {
    let Some(eve) = other_user("agnt-sec-eve") else {
        return;
    };
    let mut env = Env::new();
    env.start_foreground(&[]);
    // Loosen what the file system would otherwise stop, so the peer checks are what is tested.
    let run_dir = env.socket.parent().unwrap();
    for p in [env.dir.path(), run_dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A raw MCP request from eve: the daemon closes the connection without an answer.
    let py = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
              try:\n  s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\\n')\n  \
              s.settimeout(10)\n  r=s.recv(65536)\nexcept (BrokenPipeError, ConnectionResetError):\n  \
              r=b''\nprint('closed' if r==b'' else repr(r))";
    let o = eve
        .cmd(
            "/usr/bin/python3",
            &["-c", py, env.socket.to_str().unwrap()],
            &[],
        )
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "closed",
        "{}",
        text(&o)
    );
    // Eve's agnt refuses a daemon of another uid before sending anything.
    let marker = shared_tmp();
    let m = marker.path().join("eve-ran");
    let o = eve
        .agnt(
            &["run", "--id", "x", "--", "touch", m.to_str().unwrap()],
            &[
                ("AGNT_SOCKET", env.socket.to_str().unwrap()),
                ("AGNT_STATE_DIR", marker.path().join("st").to_str().unwrap()),
            ],
        )
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!m.exists(), "eve's command ran in our daemon");
    // And our daemon still serves us.
    let (code, out, err) = env.run(&["proc", "list"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Finding 2: the fallback `/tmp/agnt-$UID` squatted by another user: the victim gets a clear
/// error naming the path and the owner, and never talks to the squatter's daemon.
#[test]
fn a_squatted_fallback_directory_is_refused_with_a_clear_error() {
    let (Some(eve), Some(bob)) = (other_user("agnt-sec-eve"), other_user("agnt-sec-bob")) else {
        return;
    };
    let squat = PathBuf::from(format!("/tmp/agnt-{}", bob.uid));
    let _ = std::fs::remove_dir_all(&squat);
    let tmp = shared_tmp();
    let eve_state = tmp.path().join("eve-state");
    let sock = squat.join("agnt.sock");
    // Eve creates bob's fallback directory and serves a daemon there, then opens it to all.
    let o = eve
        .cmd("/bin/mkdir", &["-m", "700", squat.to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut squatter = crate::support::Spawned::new(eve.agnt(
        &[
            "daemon",
            "start",
            "--foreground",
            "--socket",
            sock.to_str().unwrap(),
        ],
        &[("AGNT_STATE_DIR", eve_state.to_str().unwrap())],
    ));
    assert!(
        wait_until(Duration::from_secs(10), || sock.exists()),
        "squatter daemon did not start: {}",
        squatter.stderr()
    );
    std::fs::set_permissions(&squat, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Bob, without XDG_RUNTIME_DIR, uses the fallback.
    let marker = tmp.path().join("bob-ran");
    let o = bob
        .agnt(
            &["run", "--id", "x", "--", "touch", marker.to_str().unwrap()],
            &[(
                "AGNT_STATE_DIR",
                tmp.path().join("bob-state").to_str().unwrap(),
            )],
        )
        .output()
        .unwrap();
    let _ = squatter.child.kill();
    let _ = squatter.child.wait();
    let _ = std::fs::remove_dir_all(&squat);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!marker.exists(), "bob's command ran in eve's daemon");
    assert!(
        err.contains(squat.to_str().unwrap())
            && err.contains(&format!("uid {}", eve.uid))
            && err.contains("rm -rf"),
        "{}",
        text(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTP face.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /mcp` with `body` and extra headers; (status, body).
fn post_mcp(port: u16, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = ureq::post(format!("http://127.0.0.1:{port}/mcp"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req
        .config()
        .http_status_as_error(false)
        .build()
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn run_call(marker: &Path) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run", "arguments": {
        "raw": true, "command": "touch", "args": [marker], "id": "pwn", "mode": "foreground"}}})
    .to_string()
}

/// Finding 1: `agnt daemon start --http-port` (detached) serves the face; `/mcp` needs the
/// bearer token `agnt daemon info` shows; another local user gets 401.
#[test]
fn http_face_needs_the_token_and_http_port_works_on_daemon_start() {
    let env = Env::new();
    let port = free_port();
    let (code, out, err) = env.run(&["daemon", "start", "--http-port", &port.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        wait_until(Duration::from_secs(10), || ureq::get(format!(
            "http://127.0.0.1:{port}/healthz"
        ))
        .call()
        .is_ok()),
        "--http-port was ignored"
    );
    let marker = env.dir.path().join("marker");
    let (status, body) = post_mcp(port, &run_call(&marker), &[]);
    assert_eq!(status, 401, "{body}");
    assert!(!marker.exists());
    let (status, _) = post_mcp(port, &run_call(&marker), &[("Authorization", "Bearer 00")]);
    assert_eq!(status, 401);
    // The token, as `agnt daemon info` shows it (human and JSON).
    let (code, human, _) = env.run(&["daemon", "info"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&env.run(&["daemon", "info", "--json"]).1).unwrap();
    let token = v["http"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(
        human.contains(&token) && human.contains(&format!("http://127.0.0.1:{port}/mcp")),
        "{human}"
    );
    let token_file = PathBuf::from(v["http"]["token_file"].as_str().unwrap());
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let bearer = format!("Bearer {token}");
    let (status, body) = post_mcp(port, &run_call(&marker), &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    assert!(
        wait_until(Duration::from_secs(10), || marker.exists()),
        "{body}"
    );
    // Another local user, even knowing the URL, gets 401.
    if let Some(eve) = other_user("agnt-sec-eve") {
        let o = eve
            .cmd(
                "/usr/bin/curl",
                &[
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-X",
                    "POST",
                    "--data",
                    &run_call(Path::new("/tmp/agnt-sec-eve-ran")),
                    &format!("http://127.0.0.1:{port}/mcp"),
                ],
                &[],
            )
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "401", "{}", text(&o));
    }
    env.run(&["daemon", "stop"]);
}

/// Finding 1: a page served through an agnt proxy fires a `no-cors` POST at the HTTP face (no
/// preflight, loopback Origin): nothing runs.
#[test]
fn a_browser_page_cannot_drive_the_http_face() {
    if crate::browser::chromium().is_none() {
        if std::env::var("AGNT_SKIP_BROWSER").as_deref() == Ok("1") {
            return;
        }
        panic!("chromium not found: install it or set AGNT_SKIP_BROWSER=1");
    }
    let mut env = Env::new();
    let port = free_port();
    env.start_foreground(&["--http-port", &port.to_string()]);
    assert!(wait_until(Duration::from_secs(10), || ureq::get(format!(
        "http://127.0.0.1:{port}/healthz"
    ))
    .call()
    .is_ok()));
    let marker = env.dir.path().join("page-ran");
    let call = run_call(&marker);
    let page = format!(
        "<!doctype html><html><head><title>attack</title></head><body><script>\
         fetch('http://127.0.0.1:{port}/mcp', {{mode: 'no-cors', method: 'POST', body: {call:?}}})\
         .then(() => fetch('/done?sent'), () => fetch('/done?failed'));</script></body></html>"
    );
    let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            if req.path == "/" {
                page.as_bytes()
            } else {
                b"ok"
            },
        )
    }));
    let px = Px::start(&up.url(), |_| {});
    let profile = tempfile::tempdir().unwrap();
    let _browser = crate::browser::launch(&format!("{}/", px.p.url()), profile.path());
    let done = wait_until(Duration::from_secs(60), || {
        px.query(|q| q.url_pattern = Some("/done".into()))["count"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    assert!(done, "the page never reported; log {:#}", px.query(|_| {}));
    assert!(
        !marker.exists(),
        "a web page ran a command through the HTTP face"
    );
    // The same call with the token does run: the page's request was valid but for the token.
    let token = std::fs::read_to_string(format!("{}.http-token", env.socket.display())).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let (status, body) = post_mcp(port, &call, &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    assert!(wait_until(Duration::from_secs(10), || marker.exists()));
}

// ---------------------------------------------------------------------------------------------
// The proxy listener and the page channel.

/// A raw request to `addr`; the status of the answer (`None` = closed without one).
fn raw_status(addr: std::net::SocketAddr, head: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

fn ws_head(addr: std::net::SocketAddr, host: &str, origin: Option<&str>, key: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let _ = addr;
    format!(
        "GET /__agnt/ws{key} HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \
         dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// Finding 3: the page channel refuses a handshake without Origin, with a foreign Origin (also
/// when Host is foreign too), without the page key or with a wrong one, and another user's
/// handshake even when it carries everything.
#[test]
fn page_channel_refuses_strangers() {
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(s, "200 OK", &[("Content-Type", "text/plain")], b"x")
    }));
    let px = Px::start(&up.url(), |c| c.allowed_hosts.clear());
    let addr = px.p.listen_addr();
    let own = format!("127.0.0.1:{}", addr.port());
    let origin = format!("http://{own}");
    let key = format!("?key={}", px.p.page_key());
    let st = |host: &str, origin: Option<&str>, key: &str| {
        raw_status(addr, &ws_head(addr, host, origin, key))
    };
    assert_eq!(st(&own, None, &key), Some(403), "no Origin");
    assert_eq!(st(&own, Some("http://evil.example"), &key), Some(403));
    assert_eq!(st(&own, Some("http://localhost:3000"), &key), Some(403));
    assert_eq!(
        st("evil.example", Some("http://evil.example"), &key),
        Some(403),
        "foreign Host and Origin"
    );
    assert_eq!(st(&own, Some(&origin), ""), Some(403), "no key");
    assert_eq!(st(&own, Some(&origin), "?key=0123"), Some(403), "wrong key");
    assert_eq!(st(&own, Some(&origin), &key), Some(101));
    assert_eq!(
        st(
            &format!("localhost:{}", addr.port()),
            Some(&format!("http://localhost:{}", addr.port())),
            &key
        ),
        Some(101)
    );
    // Another user with the Origin and the key (anyone who loads the page can read it).
    if let Some(eve) = other_user("agnt-sec-eve") {
        let head = ws_head(addr, &own, Some(&origin), &key).replace("\r\n", "\\r\\n");
        let py = format!(
            "import socket\ns=socket.create_connection(('127.0.0.1',{}))\ns.sendall(b'{head}')\n\
             s.settimeout(10)\nprint(s.recv(12).decode())",
            addr.port()
        );
        let o = eve
            .cmd("/usr/bin/python3", &["-c", &py], &[])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "HTTP/1.1 403",
            "{}",
            text(&o)
        );
    }
}

/// Finding 4: `Host: evil.example` (DNS rebinding) gets 403 and an error entry saying how to
/// allow it; loopback names and an allowed host pass, a WebSocket upgrade (HMR) included.
#[test]
fn foreign_host_is_refused_and_hmr_websockets_still_pass() {
    // A tiny upstream: `/hmr` upgrades and echoes bytes (like Vite's HMR socket).
    let up = Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        if req.path == "/hmr" {
            let _ = s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            );
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            return false;
        }
        respond(s, "200 OK", &[("Content-Type", "text/plain")], b"app")
    }));
    let px = Px::start(&up.url(), |c| c.allowed_hosts = vec!["myapp.test".into()]);
    let addr = px.p.listen_addr();
    let port = addr.port();
    let get = |host: &str| raw_status(addr, &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    assert_eq!(get("evil.example"), Some(403));
    assert_eq!(get(&format!("evil.example:{port}")), Some(403));
    let errors = px.query(|q| q.types = vec!["error".into()]);
    let msg = errors["entries"][0]["data"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        msg.contains("evil.example")
            && msg.contains("allowed_hosts")
            && msg.contains("allowed-hosts"),
        "{errors:#}"
    );
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "myapp.test".to_string(),
        format!("myapp.test:{port}"),
    ] {
        assert_eq!(get(&host), Some(200), "{host}");
        // The HMR socket through the proxy.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!(
                "GET /hmr HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{host}: {}",
            String::from_utf8_lossy(&head)
        );
        s.write_all(b"hot-update").unwrap();
        let mut echo = [0u8; 10];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"hot-update", "{host}");
    }
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /hmr HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 403");
}

/// Finding 5: a proxy whose target is itself is refused at start; two proxies pointing at each
/// other answer 508 at once instead of looping.
#[test]
fn self_targeting_proxies_are_refused_and_loops_end_with_508() {
    let port = free_port();
    let mgr = agnt::proxy::ProxyManager::new();
    let mut cfg =
        agnt::proxy::ProxyConfig::new("self", format!("http://localhost:{port}"), "/tmp/p");
    cfg.port = Some(port);
    let e = mgr.start(cfg).unwrap_err().to_string();
    assert!(e.contains("own listener"), "{e}");
    let (pa, pb) = (free_port(), free_port());
    for (id, me, other) in [("a", pa, pb), ("b", pb, pa)] {
        let mut cfg =
            agnt::proxy::ProxyConfig::new(id, format!("http://127.0.0.1:{other}"), "/tmp/p");
        cfg.port = Some(me);
        mgr.start(cfg).unwrap();
    }
    let a: std::net::SocketAddr = format!("127.0.0.1:{pa}").parse().unwrap();
    assert_eq!(
        raw_status(a, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        Some(508)
    );
    let b = mgr.get("b").unwrap();
    assert!(b.status().total_requests <= 2, "{:?}", b.status());
    mgr.shutdown(Duration::from_secs(5));
}

/// Finding 5: a LAN bind needs the opt-in and says what it exposes; `max_log_size` is bounded.
#[test]
fn lan_binds_need_an_opt_in_and_log_sizes_are_bounded() {
    let env = Env::new();
    let (code, _, err) = env.run(&[
        "proxy",
        "start",
        "lan",
        "--target",
        "http://127.0.0.1:9",
        "--port",
        "0",
        "--bind-address",
        "0.0.0.0",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("allow_lan") && err.contains("--allow-lan"),
        "{err}"
    );
    let (code, out, err) = env.run(&[
        "proxy",
        "start",
        "lan",
        "--target",
        "http://127.0.0.1:9",
        "--port",
        "0",
        "--bind-address",
        "0.0.0.0",
        "--allow-lan",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning") && out.contains("every network"),
        "{out}"
    );
    let (code, _, err) = env.run(&[
        "proxy",
        "start",
        "big",
        "--target",
        "http://127.0.0.1:9",
        "--port",
        "0",
        "--max-log-size",
        "100001",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("100000"), "{err}");
    env.run(&["daemon", "stop"]);
}

/// Finding 5: ESC sequences a page sends print escaped in `agnt proxylog`; process output keeps
/// its colours but loses OSC (retitle) and screen-clearing sequences.
#[test]
fn escape_sequences_from_a_page_or_a_process_print_harmlessly() {
    let env = Env::new();
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(
            s,
            "200 OK",
            &[("Content-Type", "text/html")],
            b"<html><head></head><body>x</body></html>",
        )
    }));
    let (code, out, err) = env.run(&[
        "proxy",
        "start",
        "esc",
        "--target",
        &up.url(),
        "--port",
        "0",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let addr: std::net::SocketAddr = v["listen_addr"].as_str().unwrap().parse().unwrap();
    // The page's view: the key is in the tag it was served.
    let html = ureq::get(format!("http://{addr}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let key = html
        .split("data-agnt-key=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/__agnt/ws?key={key}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", format!("http://{addr}").parse().unwrap());
    let (mut ws, _) = tungstenite::connect(req).unwrap();
    ws.send(tungstenite::Message::text(
        json!({"type": "error", "data": {"message": "boom \u{1b}]0;pwned\u{7} \u{1b}[2J gone"}})
            .to_string(),
    ))
    .unwrap();
    let mut log = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        log = env.run(&["proxylog", "esc", "--types", "error"]).1;
        log.contains("boom")
    }));
    assert!(!log.contains('\u{1b}') && !log.contains('\u{7}'), "{log:?}");
    // A process's output: SGR kept, OSC and clear-screen dropped.
    let script = r"printf '\033[31mred\033[0m \033]0;pwned\007\033[2Jtail\n'";
    let (code, out, err) = env.run(&["run", "--id", "esc", "--", "sh", "-c", script]);
    assert_eq!(code, 0, "{out}{err}");
    let mut output = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        output = env.run(&["proc", "output", "esc"]).1;
        output.contains("tail")
    }));
    assert!(output.contains("\u{1b}[31mred\u{1b}[0m"), "{output:?}");
    assert!(
        !output.contains("\u{1b}]") && !output.contains("\u{1b}[2J"),
        "{output:?}"
    );
    env.run(&["daemon", "stop"]);
}

/// Finding 3: a page's screenshots are capped per minute (no unlimited 12 MiB writes).
#[test]
fn page_screenshots_are_rate_limited() {
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        respond(s, "200 OK", &[("Content-Type", "text/plain")], b"x")
    }));
    let shots = tempfile::tempdir().unwrap();
    let dir = shots.path().to_path_buf();
    let px = Px::start(&up.url(), move |c| c.screenshot_dir = Some(dir));
    let mut ws = px.page_ws();
    let png = agnt::util::base64::base64(b"\x89PNG\r\n\x1a\nxxxx");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let (mut saved, mut refused) = (0, 0);
    for i in 0..25 {
        ws.send(tungstenite::Message::text(
            json!({"type": "screenshot", "req": format!("r{i}"), "data": {"name": format!("s{i}"), "data_url": format!("data:image/png;base64,{png}")}})
                .to_string(),
        ))
        .unwrap();
        // One at a time: the writer's queue is not what is tested.
        loop {
            let msg = ws.read().expect("an answer to each screenshot");
            let Ok(t) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(t).unwrap();
            if v["type"] != "screenshot_saved" {
                continue;
            }
            if v["error"].is_string() {
                refused += 1;
            } else {
                saved += 1;
            }
            break;
        }
    }
    assert_eq!((saved, refused), (20, 5));
    assert_eq!(std::fs::read_dir(shots.path()).unwrap().count(), 20);
}
