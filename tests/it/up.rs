//! `agnt up` end to end: the real binary, a real `.agnt.kdl`, real children.

use std::{path::Path, time::Duration};

use rustix::process::Signal;

use crate::support::{
    KillGroups, Spawned, agnt, announced_proxy, live_group_members, printed_pid, wait_until,
};

fn project(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".agnt.kdl"), config).unwrap();
    dir
}

fn up(dir: &Path, args: &[&str]) -> Spawned {
    let mut cmd = agnt();
    cmd.arg("up")
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("AGNT_SOCKET", dir.join("agnt.sock"))
        .env_remove("RUST_LOG");
    Spawned::new(cmd)
}

#[test]
fn cmd_exit_status_is_returned_and_scripts_are_torn_down() {
    let dir = project(
        "scripts {\n  web {\n    run \"echo pid=$$; exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    let mut up = up(dir.path(), &["--", "sh", "-c", "exit 3"]);
    let status = up
        .wait_timeout(Duration::from_secs(30))
        .expect("agnt up exits");
    assert_eq!(status.code(), Some(3), "stderr: {}", up.stderr());
    let pid = printed_pid(&up.stdout(), "web").expect("web printed its pid with a prefix");
    assert!(
        live_group_members(pid).is_empty(),
        "web's group survived agnt up"
    );
}

#[test]
fn cmd_without_config_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = up(dir.path(), &["--", "sh", "-c", "echo from-cmd; exit 0"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "stderr: {}", up.stderr());
    assert!(up.stdout().contains("from-cmd"));
}

#[test]
fn cmd_waits_for_ready_log_line() {
    // The script only creates the flag file right before it prints READY; CMD fails without it.
    let dir = project(
        "scripts {\n  srv {\n    run \"echo booting; sleep 0.5; touch ready.flag; echo READY; exec sleep 1000\"\n    autostart true\n    ready \"^READY$\"\n  }\n}\n",
    );
    let mut up = up(
        dir.path(),
        &["--", "sh", "-c", "test -f ready.flag && echo saw-flag"],
    );
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(
        status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        up.stdout(),
        up.stderr()
    );
    let out = up.stdout();
    assert!(out.contains("srv | booting"), "{out}");
    assert!(out.contains("saw-flag"), "{out}");
}

#[test]
fn script_dying_before_ready_fails_with_its_output() {
    let dir = project(
        "scripts {\n  db {\n    run \"echo cannot bind port 5432 >&2; exit 2\"\n    autostart true\n    ready-port 1\n  }\n}\n",
    );
    let mut up = up(dir.path(), &["--", "true"]);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_ne!(status.code(), Some(0));
    let err = up.stderr();
    assert!(
        err.contains("\"db\"") && err.contains("cannot bind port 5432"),
        "{err}"
    );
}

#[test]
fn sigterm_stops_everything_including_grandchildren() {
    let dir = project(
        "scripts {\n  a {\n    run \"echo pid=$$; sleep 1000 & sleep 1000\"\n    autostart true\n  }\n  b {\n    command \"sh\" \"-c\" \"echo pid=$$; exec sleep 1000\"\n    autostart true\n  }\n}\n",
    );
    let mut up = up(dir.path(), &[]);
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
    assert!(!live_group_members(a).is_empty());
    up.signal(Signal::TERM);
    let status = up
        .wait_timeout(Duration::from_secs(30))
        .expect("agnt up exits on SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", up.stderr());
    assert!(
        wait_until(Duration::from_secs(5), || live_group_members(a).is_empty()
            && live_group_members(b).is_empty()),
        "process groups survived: {:?} {:?}",
        live_group_members(a),
        live_group_members(b)
    );
}

#[test]
fn second_signal_kills_at_once() {
    // The script ignores TERM, so the graceful stop would wait out its grace period.
    let dir = project(
        "scripts {\n  stubborn {\n    run \"trap '' TERM; echo pid=$$; while :; do sleep 1; done\"\n    autostart true\n  }\n}\n",
    );
    let mut up = up(dir.path(), &[]);
    assert!(wait_until(Duration::from_secs(20), || printed_pid(
        &up.stdout(),
        "stubborn"
    )
    .is_some()));
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

#[test]
fn no_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = up(dir.path(), &[]);
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
    let dir = project("scripts {\n  web {\n    autostart maybe\n  }\n}\n");
    let mut up = up(dir.path(), &[]);
    let status = up.wait_timeout(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(up.stderr().contains(".agnt.kdl:3:"), "{}", up.stderr());
}

/// A one-shot HTTP/1.0 GET; returns the whole response (head and body).
fn http_get(url: &str) -> String {
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

#[test]
fn proxies_start_from_config_and_on_the_script_url() {
    let dir = project("");
    std::fs::create_dir(dir.path().join("site")).unwrap();
    std::fs::write(
        dir.path().join("site/index.html"),
        "<html><head><title>t</title></head><body>hello</body></html>",
    )
    .unwrap();
    // A fixed upstream for the `target` proxy: the test's own listener.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let config = format!(
        "scripts {{\n  site {{\n    run \"python3 -u -m http.server 0 --bind 127.0.0.1 --directory site\"\n    autostart true\n  }}\n}}\nproxies {{\n  web {{\n    script \"site\"\n    port 0\n  }}\n  fixed {{\n    target \"http://127.0.0.1:{upstream_port}\"\n    port 0\n    autostart true\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join(".agnt.kdl"), config).unwrap();
    let mut up = up(dir.path(), &[]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = up.stdout();
            announced_proxy(&out, "web").is_some() && announced_proxy(&out, "fixed").is_some()
        }),
        "proxies were not announced: {}{}",
        up.stdout(),
        up.stderr()
    );
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
    assert!(out.contains("-> http://127.0.0.1:"), "{out}");
    up.signal(Signal::TERM);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    // The proxy is gone with `agnt up`.
    let addr = web.strip_prefix("http://").unwrap().to_string();
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&addr).is_err()
    }));
}
