//! `agnt up` end to end: the real binary, a real `.agnt.kdl`, real children. Every behaviour test
//! runs twice: `alone` (no daemon: the session serves its own host, on a private socket) and
//! `with_daemon` (a daemon runs on the private socket: the session drives it). Both must behave
//! the same; each world's daemon is stopped when the test ends, even when it fails.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use rustix::process::Signal;

use crate::{
    daemon::Env,
    support::{KillGroups, Spawned, announced_proxy, live_group_members, printed_pid, wait_until},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No daemon: `agnt up` runs its own host.
    Alone,
    /// A daemon of this version runs on the world's socket.
    WithDaemon,
}

/// A private world for one test: project, socket and state dir in a temp dir, and (with a
/// daemon) a daemon there; dropping it stops any daemon that lives there.
pub(crate) struct World {
    env: Env,
    mode: Mode,
}

impl World {
    pub(crate) fn new(mode: Mode, config: &str) -> World {
        let mut env = Env::new();
        if !config.is_empty() {
            std::fs::write(env.project.join(".agnt.kdl"), config).unwrap();
        }
        if mode == Mode::WithDaemon {
            env.start_foreground(&[]);
        }
        World { env, mode }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.env.project
    }

    /// The world's socket, state dir and project.
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    /// `agnt up ARGS` in the project, with this world's socket and state dir.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let mut c = self.env.cmd(&all);
        c.env_remove("RUST_LOG");
        c
    }

    pub(crate) fn up(&self, args: &[&str]) -> Spawned {
        Spawned::new(self.cmd(args))
    }

    /// Asserts the session ran where this world says (in the daemon, or on its own).
    pub(crate) fn assert_mode(&self, up: &Spawned) {
        let err = up.stderr();
        assert_eq!(
            err.contains("daemon runs"),
            self.mode == Mode::WithDaemon,
            "{:?}: {err}",
            self.mode
        );
    }
}

/// Runs each named `fn(Mode)` as two tests: `alone::NAME` and `with_daemon::NAME`.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod alone {
            $(#[test] fn $name() { super::$name(super::Mode::Alone) })*
        }
        mod with_daemon {
            $(#[test] fn $name() { super::$name(super::Mode::WithDaemon) })*
        }
    };
}

in_both_modes!(
    cmd_exit_status_is_returned_and_scripts_are_torn_down,
    cmd_statuses_follow_the_shell,
    cmd_without_config_runs,
    cmd_waits_for_ready_log_line,
    script_dying_before_its_ready_port_fails_at_once_with_its_output,
    scripts_get_the_callers_environment_under_the_config_env,
    cmd_runs_on_the_callers_terminal,
    sigterm_stops_everything_including_grandchildren,
    second_signal_kills_at_once,
    proxies_start_from_config_and_on_the_script_url,
    config_flag_runs_scripts_of_another_file,
);

fn cmd_exit_status_is_returned_and_scripts_are_torn_down(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  web {\n    run \"echo pid=$$; exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    let mut up = w.up(&["--", "sh", "-c", "exit 3"]);
    let status = up
        .wait_timeout(Duration::from_secs(30))
        .expect("agnt up exits");
    assert_eq!(status.code(), Some(3), "stderr: {}", up.stderr());
    w.assert_mode(&up);
    let pid = printed_pid(&up.stdout(), "web").expect("web printed its pid with a prefix");
    assert!(
        wait_until(Duration::from_secs(5), || live_group_members(pid)
            .is_empty()),
        "web's group survived agnt up"
    );
}

fn cmd_statuses_follow_the_shell(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  web {\n    run \"exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    for (args, code) in [
        (&["--", "sh", "-c", "kill -TERM $$"][..], 128 + 15),
        (&["--", "/nonexistent/agnt-test-cmd"][..], 127),
        (&["--", "true"][..], 0),
    ] {
        let mut up = w.up(args);
        let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
        assert_eq!(status.code(), Some(code), "{args:?}: {}", up.stderr());
    }
}

fn cmd_without_config_runs(mode: Mode) {
    let w = World::new(mode, "");
    let mut up = w.up(&["--", "sh", "-c", "echo from-cmd; exit 0"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "stderr: {}", up.stderr());
    assert!(up.stdout().contains("from-cmd"));
}

fn cmd_waits_for_ready_log_line(mode: Mode) {
    // The script only creates the flag file right before it prints READY; CMD fails without it.
    let w = World::new(
        mode,
        "scripts {\n  srv {\n    run \"echo booting; sleep 0.5; touch ready.flag; echo READY; exec sleep 1000\"\n    autostart true\n    ready \"^READY$\"\n  }\n}\n",
    );
    let mut up = w.up(&["--", "sh", "-c", "test -f ready.flag && echo saw-flag"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(
        status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        up.stdout(),
        up.stderr()
    );
    w.assert_mode(&up);
    let out = up.stdout();
    assert!(out.contains("srv | booting"), "{out}");
    assert!(out.contains("srv | READY"), "{out}");
    assert!(out.contains("saw-flag"), "{out}");
}

fn script_dying_before_its_ready_port_fails_at_once_with_its_output(mode: Mode) {
    // Port 1 never opens and the ready timeout is long: only the script's exit can end the wait.
    let w = World::new(
        mode,
        "scripts {\n  db {\n    run \"echo starting db; echo cannot bind port 5432 >&2; exit 2\"\n    autostart true\n    ready-port 1\n    ready-timeout 120\n  }\n}\n",
    );
    let started = Instant::now();
    let mut up = w.up(&["--", "true"]);
    let status = up
        .wait_timeout(Duration::from_secs(30))
        .expect("agnt up fails long before the 120 s ready timeout");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_ne!(status.code(), Some(0), "{}", up.stderr());
    w.assert_mode(&up);
    let err = up.stderr();
    assert!(err.contains("script \"db\""), "{err}");
    assert!(
        err.contains("starting db") && err.contains("cannot bind port 5432"),
        "{err}"
    );
}

fn scripts_get_the_callers_environment_under_the_config_env(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  envy {\n    run \"echo caller=$AGNT_T_CALLER both=$AGNT_T_BOTH home=${HOME-unset}; echo READY; exec sleep 1000\"\n    env {\n      AGNT_T_BOTH \"from-config\"\n    }\n    autostart true\n    ready \"^READY$\"\n  }\n}\n",
    );
    // HOME is in the daemon's environment but not the caller's: the script must not see it.
    let mut cmd = w.cmd(&["--", "true"]);
    cmd.env("AGNT_T_CALLER", "from-caller")
        .env("AGNT_T_BOTH", "from-caller")
        .env_remove("HOME");
    let mut up = Spawned::new(cmd);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    w.assert_mode(&up);
    let out = up.stdout();
    assert!(
        out.contains("envy | caller=from-caller both=from-config home=unset"),
        "{out}"
    );
}

fn cmd_runs_on_the_callers_terminal(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  web {\n    run \"exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    // Without a terminal (stdin is /dev/null), CMD sees none: the check below can fail.
    let mut up = w.up(&["--", "sh", "-c", "test -t 0"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(1), "{}", up.stderr());
    if !Path::new("/usr/bin/script").exists() && !Path::new("/bin/script").exists() {
        eprintln!("skipping the terminal half: util-linux `script` is not installed");
        return;
    }
    // Under a pseudo-terminal (util-linux `script`), CMD inherits it.
    let bin = crate::support::bin();
    let line = format!("'{}' up -- sh -c 'test -t 0'", bin.display());
    let mut script = crate::support::command("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .env("AGNT_SOCKET", &w.env.socket)
        .env("AGNT_STATE_DIR", &w.env.state)
        .env_remove("AGNT_PROJECT_PATH")
        .env_remove("RUST_LOG")
        .current_dir(w.dir());
    let mut up = Spawned::new(script);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}\n{}", up.stdout(), up.stderr());
}

fn sigterm_stops_everything_including_grandchildren(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  a {\n    run \"echo pid=$$; sleep 1000 & sleep 1000\"\n    autostart true\n  }\n  b {\n    command \"sh\" \"-c\" \"echo pid=$$; exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    let mut up = w.up(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = up.stdout();
            printed_pid(&out, "a").is_some() && printed_pid(&out, "b").is_some()
        }),
        "scripts did not start: {}{}",
        up.stdout(),
        up.stderr()
    );
    let out = up.stdout();
    let (a, b) = (
        printed_pid(&out, "a").unwrap(),
        printed_pid(&out, "b").unwrap(),
    );
    let _guard = KillGroups(vec![a, b]);
    assert!(!live_group_members(a).is_empty());
    up.signal(Signal::TERM);
    let status = up
        .wait_timeout(Duration::from_secs(30))
        .expect("agnt up exits on SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", up.stderr());
    w.assert_mode(&up);
    assert!(
        wait_until(Duration::from_secs(5), || live_group_members(a).is_empty()
            && live_group_members(b).is_empty()),
        "process groups survived: {:?} {:?}",
        live_group_members(a),
        live_group_members(b)
    );
    let out = up.stdout();
    assert!(out.contains("a | [agnt: exited"), "{out}");
}

fn second_signal_kills_at_once(mode: Mode) {
    // The script ignores TERM, so the graceful stop would wait out its grace period.
    let w = World::new(
        mode,
        "scripts {\n  stubborn {\n    run \"trap '' TERM; echo pid=$$; while :; do sleep 1; done\"\n    autostart true\n  }\n}\n",
    );
    let mut up = w.up(&[]);
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
    up.signal(Signal::INT);
    assert!(
        wait_until(Duration::from_secs(5), || up.stderr().contains("stopping")),
        "{}",
        up.stderr()
    );
    // Keep pressing Ctrl+C (signals within 200 ms of the first count as one): it must exit well
    // before the 5 s grace the stubborn script would otherwise get.
    assert!(
        wait_until(Duration::from_secs(4), || {
            up.signal(Signal::INT);
            up.child.try_wait().ok().flatten().is_some()
        }),
        "a second Ctrl+C did not exit at once: {}",
        up.stderr()
    );
    assert!(up.stderr().contains("second signal"), "{}", up.stderr());
    assert!(wait_until(Duration::from_secs(5), || live_group_members(
        pid
    )
    .is_empty()));
}

fn config_flag_runs_scripts_of_another_file(mode: Mode) {
    let w = World::new(mode, "");
    std::fs::write(
        w.dir().join("dev.kdl"),
        "scripts {\n  other {\n    run \"echo from-dev-kdl; echo READY; exec sleep 1000\"\n    autostart true\n    ready \"^READY$\"\n  }\n}\n",
    )
    .unwrap();
    let mut up = w.up(&["--config", "dev.kdl", "--", "true"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    assert!(
        up.stdout().contains("other | from-dev-kdl"),
        "{}",
        up.stdout()
    );
}

#[test]
fn no_config_is_a_clear_error() {
    let w = World::new(Mode::Alone, "");
    let mut up = w.up(&[]);
    let status = up.wait_timeout(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        up.stderr().contains("no .agnt.kdl found"),
        "{}",
        up.stderr()
    );
}

#[test]
fn config_error_names_line_and_column() {
    let w = World::new(
        Mode::Alone,
        "scripts {\n  web {\n    autostart maybe\n  }\n}\n",
    );
    let mut up = w.up(&[]);
    let status = up.wait_timeout(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(up.stderr().contains(".agnt.kdl:3:"), "{}", up.stderr());
}

/// A one-shot HTTP/1.0 GET; returns the whole response (head and body).
pub(crate) fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn proxies_start_from_config_and_on_the_script_url(mode: Mode) {
    // A fixed upstream for the `target` proxy: the test's own listener.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let config = format!(
        "scripts {{\n  site {{\n    run \"python3 -u -m http.server 0 --bind 127.0.0.1 --directory site\"\n    autostart true\n  }}\n}}\nproxies {{\n  web {{\n    script \"site\"\n    port 0\n  }}\n  fixed {{\n    target \"http://127.0.0.1:{upstream_port}\"\n    port 0\n    autostart true\n  }}\n}}\n"
    );
    let w = World::new(mode, &config);
    std::fs::create_dir(w.dir().join("site")).unwrap();
    std::fs::write(
        w.dir().join("site/index.html"),
        "<html><head><title>t</title></head><body>hello</body></html>",
    )
    .unwrap();
    let mut up = w.up(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = up.stdout();
            announced_proxy(&out, "web").is_some() && announced_proxy(&out, "fixed").is_some()
        }),
        "proxies were not announced: {}{}",
        up.stdout(),
        up.stderr()
    );
    w.assert_mode(&up);
    let out = up.stdout();
    let web = announced_proxy(&out, "web").unwrap();
    let page = http_get(&format!("{web}/index.html"));
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 OK"),
        "{page}"
    );
    assert!(page.contains("hello"), "{page}");
    assert!(
        page.contains("/__agnt/agnt.js"),
        "script not injected: {page}"
    );
    assert!(
        out.contains(&format!(
            "agnt: proxy web listening on {web} -> http://127.0.0.1:"
        )),
        "{out}"
    );
    up.signal(Signal::TERM);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    // The proxy is gone with `agnt up`.
    let addr = web.strip_prefix("http://").unwrap().to_string();
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&addr).is_err()
    }));
}
