//! EADDRINUSE recovery: a holder process (a Python listener started by the test, so agnt does
//! not manage it) takes a script's declared port *after* `agnt up`'s pre-flight check: the
//! script waits for a `go` file the test writes once the holder listens, then fails to bind.
//! Each `port-conflict` policy is checked end to end with the real binary: `auto-kill` kills
//! the holder and the restarted script listens; `fail` and `prompt` without a terminal fail
//! naming port, holder pid, its command and the policy; `skip` warns and kills nothing; `prompt`
//! on a terminal (util-linux `script`) asks, and `y` kills the holder. Through the daemon, an
//! agent sees the `prompt` clash in `proc status` and resolves it with `proc resolve_conflict`.

#![allow(clippy::disallowed_methods)] // tests spawn helper processes directly

use std::{
    io::{BufRead, Write},
    os::unix::process::CommandExt,
    process::{Child, Stdio},
    time::Duration,
};

use rustix::process::Signal;
use serde_json::json;

use crate::{
    daemon::Env,
    support::{Spawned, wait_until},
    up::{Mode, World},
};

/// Binds 127.0.0.1:PORT and serves nothing; a failed bind prints Python's error and exits 1.
const BIND_PY: &str = r#"
import socket, sys, time
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print(f"bind failed: {e}", flush=True)
    sys.exit(1)
s.listen()
print("listening", flush=True)
time.sleep(1000)
"#;

const WAIT: Duration = Duration::from_secs(30);

/// A port free right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The holder: a child of the test (never of agnt) listening on `port`; returns once it listens.
struct Holder(Child);

impl Holder {
    fn start(port: u16) -> Holder {
        let mut child = crate::support::command("python3")
            .args([
                "-u",
                "-c",
                "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',int(sys.argv[1]))); s.listen(); print('held'); time.sleep(1000)",
                &port.to_string(),
            ])
            .stdout(Stdio::piped())
            // Its own group, like any process the user started elsewhere (the test's own group
            // is the daemon's, which agnt never kills).
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held", "the holder did not bind port {port}");
        Holder(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `text` names the holder: port, pid and command line (whose program may be a full
/// path, e.g. under pyenv).
fn names_holder(text: &str, port: u16, pid: u32) -> bool {
    text.contains(&format!("port {port} is held by pid {pid} ("))
        && text.contains("python3 -u -c import socket")
}

/// A config whose script `web` declares `port` and binds it once `go` exists.
fn config(policy: &str, port: u16) -> String {
    format!(
        "project {{\n  port-conflict \"{policy}\"\n}}\nscripts {{\n  web {{\n    run \"echo waiting; while [ ! -f go ]; do sleep 0.05; done; exec python3 -u bind.py {port}\"\n    autostart true\n    ports {port}\n  }}\n}}\n"
    )
}

fn world(mode: Mode, policy: &str, port: u16) -> World {
    let w = World::new(mode, &config(policy, port));
    std::fs::write(w.dir().join("bind.py"), BIND_PY).unwrap();
    w
}

/// Starts `agnt up`, waits until the script runs (the pre-flight check is behind it), then
/// starts the holder and lets the script bind.
fn race(w: &World, port: u16) -> (Spawned, Holder) {
    let up = w.up(&[]);
    assert!(
        wait_until(WAIT, || up.stdout().contains("web | waiting")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    let holder = Holder::start(port);
    std::fs::write(w.dir().join("go"), "").unwrap();
    (up, holder)
}

fn auto_kill_kills_the_holder_and_restarts_once(mode: Mode) {
    let port = free_port();
    let w = world(mode, "auto-kill", port);
    let (mut up, mut holder) = race(&w, port);
    assert!(
        wait_until(WAIT, || up.stdout().contains("web | listening")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    assert!(wait_until(WAIT, || !holder.alive()), "the holder lives");
    let (out, err) = (up.stdout(), up.stderr());
    let pid = holder.pid();
    assert!(
        names_holder(&err, port, pid)
            && err.contains("killed it and restarted \"web\" once (port-conflict auto-kill)"),
        "{err}"
    );
    assert_eq!(
        out.matches("[agnt: restarted (port conflict)]").count(),
        1,
        "{out}"
    );
    assert_eq!(out.matches("web | listening").count(), 1, "{out}");
    // The restarted script holds the port now.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    up.signal(Signal::INT);
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
}

fn fail_names_port_holder_and_policy(mode: Mode) {
    let port = free_port();
    let w = world(mode, "fail", port);
    let (mut up, mut holder) = race(&w, port);
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(1), "{}{}", up.stdout(), up.stderr());
    let err = up.stderr();
    let pid = holder.pid();
    assert!(
        err.contains("agnt up: script \"web\": port ")
            && names_holder(&err, port, pid)
            && err.contains("(port-conflict fail)"),
        "{err}"
    );
    assert!(holder.alive(), "fail killed the holder");
    assert!(!up.stdout().contains("web | listening"));
}

#[test]
fn auto_kill_restarts_only_once_per_start() {
    let port = free_port();
    // Each run waits for its own `go` (it removes it), so a second holder can come in between.
    let cfg = config("auto-kill", port).replace("done; exec", "done; rm go; exec");
    let w = World::new(Mode::Alone, &cfg);
    std::fs::write(w.dir().join("bind.py"), BIND_PY).unwrap();
    let (mut up, mut first) = race(&w, port);
    assert!(
        wait_until(WAIT, || up.stdout().matches("web | waiting").count() == 2),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    assert!(
        wait_until(WAIT, || !first.alive()),
        "the first holder lives"
    );
    let mut second = Holder::start(port);
    std::fs::write(w.dir().join("go"), "").unwrap();
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(1), "{}{}", up.stdout(), up.stderr());
    let err = up.stderr();
    assert!(
        names_holder(&err, port, second.pid())
            && err.contains("was already restarted once for a port conflict, not again (port-conflict auto-kill)"),
        "{err}"
    );
    assert!(second.alive(), "the second holder was killed too");
    assert_eq!(
        up.stdout()
            .matches("[agnt: restarted (port conflict)]")
            .count(),
        1
    );
}

#[test]
fn with_cmd_the_readiness_wait_follows_the_restarted_run() {
    let port = free_port();
    let cfg = config("auto-kill", port).replace(
        "    autostart true\n",
        "    autostart true\n    ready \"^listening\"\n",
    );
    let w = World::new(Mode::Alone, &cfg);
    std::fs::write(w.dir().join("bind.py"), BIND_PY).unwrap();
    // CMD connects to the port: it succeeds only once the restarted script listens.
    let probe = format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}))' && echo cmd-ran"
    );
    let mut up = w.up(&["--", "sh", "-c", &probe]);
    assert!(
        wait_until(WAIT, || up.stdout().contains("web | waiting")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    let mut holder = Holder::start(port);
    std::fs::write(w.dir().join("go"), "").unwrap();
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(0), "{}{}", up.stdout(), up.stderr());
    let out = up.stdout();
    assert!(out.contains("cmd-ran"), "{out}");
    assert!(wait_until(WAIT, || !holder.alive()), "the holder lives");
}

#[test]
fn skip_warns_and_kills_nothing() {
    let port = free_port();
    let w = world(Mode::Alone, "skip", port);
    let (mut up, mut holder) = race(&w, port);
    // The script fails to bind and ends; nothing restarts it.
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(1), "{}{}", up.stdout(), up.stderr());
    let (out, err) = (up.stdout(), up.stderr());
    let pid = holder.pid();
    assert!(
        err.contains("warning: port ")
            && names_holder(&err, port, pid)
            && err.contains("leaving it (port-conflict skip)"),
        "{err}"
    );
    assert!(out.contains("Address already in use"), "{out}");
    assert!(!out.contains("restarted"), "{out}");
    assert!(holder.alive(), "skip killed the holder");
}

#[test]
fn prompt_without_a_terminal_fails_like_fail() {
    let port = free_port();
    let w = world(Mode::Alone, "prompt", port);
    let (mut up, mut holder) = race(&w, port);
    let status = up.wait_timeout(WAIT).expect("exits");
    assert_eq!(status.code(), Some(1), "{}{}", up.stdout(), up.stderr());
    let err = up.stderr();
    let pid = holder.pid();
    assert!(
        names_holder(&err, port, pid)
            && err.contains("(port-conflict prompt, no terminal to ask on)"),
        "{err}"
    );
    assert!(holder.alive(), "the holder was killed without asking");
}

#[test]
fn prompt_on_a_terminal_asks_and_yes_kills_the_holder() {
    if !std::path::Path::new("/usr/bin/script").exists()
        && !std::path::Path::new("/bin/script").exists()
    {
        eprintln!("skipping: util-linux `script` is not installed");
        return;
    }
    let port = free_port();
    let w = world(Mode::Alone, "prompt", port);
    // `agnt up` on a pseudo-terminal; the test types into it through `script`'s stdin.
    let line = format!("'{}' up", crate::support::bin().display());
    let mut script = crate::support::command("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .env("AGNT_SOCKET", &w.env().socket)
        .env("AGNT_STATE_DIR", &w.env().state)
        .env_remove("AGNT_PROJECT_PATH")
        .env_remove("RUST_LOG")
        .current_dir(w.dir());
    // On a terminal the prefixes are coloured: match the lines' text only.
    let (up, mut tty) = Spawned::with_stdin(script);
    assert!(
        wait_until(WAIT, || up.stdout().contains("waiting")),
        "{}",
        up.stdout()
    );
    let mut holder = Holder::start(port);
    std::fs::write(w.dir().join("go"), "").unwrap();
    let question = format!("port {port} is held by pid {} (", holder.pid());
    assert!(
        wait_until(WAIT, || {
            let out = up.stdout();
            out.contains(&question)
                && out.contains("python3 -u -c import socket")
                && out.contains("kill it and restart web? [y/N]")
        }),
        "{}",
        up.stdout()
    );
    tty.write_all(b"y\n").unwrap();
    tty.flush().unwrap();
    assert!(wait_until(WAIT, || !holder.alive()), "{}", up.stdout());
    assert!(
        wait_until(WAIT, || up.stdout().contains("listening")),
        "{}",
        up.stdout()
    );
    assert!(up.stdout().contains("[agnt: restarted (port conflict)]"));
    // Ctrl+C through the terminal ends the session.
    tty.write_all(b"\x03").unwrap();
    tty.flush().unwrap();
    let mut up = up;
    assert!(up.wait_timeout(WAIT).is_some(), "{}", up.stdout());
}

#[test]
fn an_agent_sees_a_prompt_clash_in_status_and_resolves_it() {
    let port = free_port();
    let mut env = Env::new();
    std::fs::write(env.project.join(".agnt.kdl"), config("prompt", port)).unwrap();
    std::fs::write(env.project.join("bind.py"), BIND_PY).unwrap();
    env.start_foreground(&[]);
    let mut rpc = env.session();
    let root = env.project.clone();
    rpc.ok("run", json!({"script_name": "web", "path": root}));
    let mut holder = Holder::start(port);
    std::fs::write(env.project.join("go"), "").unwrap();
    let mut status = json!(null);
    assert!(
        wait_until(WAIT, || {
            status = rpc.ok(
                "proc",
                json!({"action": "status", "process_id": "web", "path": root}),
            );
            status["port_conflict"]["outcome"] == "asking"
        }),
        "{status}"
    );
    let clash = &status["port_conflict"];
    assert_eq!(clash["port"], port);
    assert_eq!(clash["pid"], holder.pid());
    assert_eq!(clash["policy"], "prompt");
    assert!(
        clash["message"]
            .as_str()
            .unwrap()
            .contains("resolve_conflict"),
        "{clash}"
    );
    assert!(holder.alive(), "prompt killed without an answer");
    let v = rpc.ok(
        "proc",
        json!({"action": "resolve_conflict", "process_id": "web", "path": root}),
    );
    assert_eq!(v["killed_pids"], json!([holder.pid()]), "{v}");
    assert!(!holder.alive() || wait_until(WAIT, || !holder.alive()));
    let mut status = json!(null);
    assert!(
        wait_until(WAIT, || {
            status = rpc.ok(
                "proc",
                json!({"action": "output", "process_id": "web", "path": root}),
            );
            status["output"]
                .as_str()
                .unwrap_or("")
                .contains("listening")
        }),
        "{status}"
    );
    let st = rpc.ok(
        "proc",
        json!({"action": "status", "process_id": "web", "path": root}),
    );
    assert_eq!(
        st["restarted_for_port_conflict"]["outcome"], "restarted",
        "{st}"
    );
    // Asking again is an error: nothing waits for a decision.
    let e = rpc.err(
        "proc",
        json!({"action": "resolve_conflict", "process_id": "web", "path": root}),
    );
    assert!(e.contains("no port conflict waiting"), "{e}");
    drop(env);
}

mod alone {
    #[test]
    fn auto_kill_kills_the_holder_and_restarts_once() {
        super::auto_kill_kills_the_holder_and_restarts_once(super::Mode::Alone)
    }
    #[test]
    fn fail_names_port_holder_and_policy() {
        super::fail_names_port_holder_and_policy(super::Mode::Alone)
    }
}

mod with_daemon {
    #[test]
    fn auto_kill_kills_the_holder_and_restarts_once() {
        super::auto_kill_kills_the_holder_and_restarts_once(super::Mode::WithDaemon)
    }
    #[test]
    fn fail_names_port_holder_and_policy() {
        super::fail_names_port_holder_and_policy(super::Mode::WithDaemon)
    }
}

#[test]
fn an_agent_declines_a_prompt_clash_by_stopping_the_process() {
    let port = free_port();
    let env = Env::new();
    std::fs::write(env.project.join(".agnt.kdl"), config("prompt", port)).unwrap();
    std::fs::write(env.project.join("bind.py"), BIND_PY).unwrap();
    let mut env = env;
    env.start_foreground(&[]);
    let mut rpc = env.session();
    let root = env.project.clone();
    rpc.ok("run", json!({"script_name": "web", "path": root}));
    let mut holder = Holder::start(port);
    std::fs::write(env.project.join("go"), "").unwrap();
    let status = |rpc: &mut crate::daemon::Rpc| {
        rpc.ok(
            "proc",
            json!({"action": "status", "process_id": "web", "path": root}),
        )
    };
    assert!(
        wait_until(WAIT, || status(&mut rpc)["port_conflict"]["outcome"]
            == "asking"),
        "{}",
        status(&mut rpc)
    );
    rpc.ok(
        "proc",
        json!({"action": "stop", "process_id": "web", "path": root}),
    );
    let st = status(&mut rpc);
    assert_eq!(st["port_conflict"]["outcome"], "failed", "{st}");
    let message = st["port_conflict"]["message"].as_str().unwrap();
    assert!(
        names_holder(message, port, holder.pid())
            && message.contains("(port-conflict prompt, declined)"),
        "{message}"
    );
    assert!(holder.alive(), "declining killed the holder");
}
