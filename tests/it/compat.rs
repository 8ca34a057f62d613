//! The Go original's `.agnt.kdl` users, end to end: a broken config is the same error from
//! `agnt up`, `detect` and `run`; a coloured Vite banner matched through `{url}` links its proxy;
//! `url-pattern` picks one of two printed URLs; `fallback-port` starts a proxy when no URL is
//! printed; a proxy-only config runs until Ctrl+C; a Vite served over HTTPS with a self-signed
//! certificate (made here with rcgen) is proxied as plain HTTP with no option.

#![allow(clippy::disallowed_methods)] // tests spawn the binary under test directly

use std::time::Duration;

use rustix::process::Signal;

use crate::{
    daemon::Env,
    support::{announced_proxy, wait_until},
    up::{Mode, World, http_get},
};

/// A dev server on a free loopback port serving the project dir; it prints a banner naming its
/// port, in the style the first argument picks.
const SERVE_PY: &str = r#"
import http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
port = srv.server_address[1]
if sys.argv[1] == "vite-https":
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain("cert.pem", "key.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttps://localhost:\x1b[1m{port}\x1b[22m/\x1b[39m", flush=True)
elif sys.argv[1] == "vite":
    print(f"\n  \x1b[32m\x1b[1mVITE\x1b[22m v5.0.0\x1b[39m  ready in 120 ms\n", flush=True)
    print(f"  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m{port}\x1b[22m/\x1b[39m", flush=True)
elif sys.argv[1] == "two":
    print("  Frontend: http://localhost:1/", flush=True)
    print(f"  Backend:  http://127.0.0.1:{port}/", flush=True)
srv.serve_forever()
"#;

fn world_with_site(mode: Mode, config: &str) -> World {
    let w = World::new(mode, config);
    std::fs::write(w.dir().join("serve.py"), SERVE_PY).unwrap();
    std::fs::write(
        w.dir().join("index.html"),
        "<html><head><title>t</title></head><body>hello compat</body></html>",
    )
    .unwrap();
    w
}

/// Waits for `names` to be announced; returns their proxy URLs.
fn announced(up: &crate::support::Spawned, names: &[&str]) -> Vec<String> {
    assert!(
        wait_until(Duration::from_secs(30), || names
            .iter()
            .all(|n| announced_proxy(&up.stdout(), n).is_some())),
        "proxies {names:?} were not announced: {}{}",
        up.stdout(),
        up.stderr()
    );
    let out = up.stdout();
    names
        .iter()
        .map(|n| announced_proxy(&out, n).unwrap())
        .collect()
}

fn stop(mut up: crate::support::Spawned) {
    up.signal(Signal::INT);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
}

#[test]
fn a_broken_config_is_the_same_error_from_up_detect_and_run() {
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  dev {\n    autostart maybe\n    run \"true\"\n  }\n}\n",
    )
    .unwrap();
    let want = ".agnt.kdl:3:5: autostart expects true or false";
    for args in [&["up"][..], &["detect"], &["run", "dev"]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 1, "agnt {args:?}: {out} {err}");
        assert!(err.contains(want), "agnt {args:?}: {err}");
    }
}

#[test]
fn unknown_keys_are_warnings_with_their_position() {
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  dev {\n    run \"true\"\n    sparkle true\n  }\n}\n",
    )
    .unwrap();
    let (code, out, err) = env.run(&["detect"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        out.contains(".agnt.kdl:4:5: unknown key \"sparkle\" in script \"dev\""),
        "{out}"
    );
}

#[test]
fn error_pattern_flips_health_and_healthy_pattern_flips_it_back() {
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "scripts {\n  flaky {\n    run \"echo booting; echo 'FATAL: db gone'; while [ ! -f go ]; do sleep 0.05; done; echo 'recovered ok'; exec sleep 1000\"\n    error-pattern \"^FATAL\"\n    healthy-pattern \"recovered ok\"\n  }\n}\n",
    )
    .unwrap();
    let (code, out, err) = env.run(&["run", "flaky"]);
    assert_eq!(code, 0, "{out} {err}");
    let status = || {
        let (_, out, _) = env.run(&["proc", "status", "flaky", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(20), || status()["healthy"] == false),
        "{}",
        status()
    );
    assert_eq!(status()["health_line"], "FATAL: db gone");
    std::fs::write(env.project.join("go"), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || status()["healthy"] == true),
        "{}",
        status()
    );
    assert_eq!(status()["health_line"], "recovered ok");
    let (code, _, err) = env.run(&["proc", "stop", "flaky"]);
    assert_eq!(code, 0, "{err}");
}

fn vite_banner_links_its_proxy_through_the_url_placeholder(mode: Mode) {
    let w = world_with_site(
        mode,
        "scripts {\n  dev {\n    run \"python3 -u serve.py vite\"\n    autostart true\n    url-matchers \"(Local|Network):\\\\s*{url}\"\n  }\n}\nproxies {\n  app {\n    script \"dev\"\n    port 0\n  }\n}\n",
    );
    let up = w.up(&[]);
    let app = &announced(&up, &["app"])[0];
    w.assert_mode(&up);
    assert!(
        up.stdout().contains(&format!(
            "agnt: proxy app listening on {app} -> http://localhost:"
        )),
        "{}",
        up.stdout()
    );
    let page = http_get(&format!("{app}/index.html"));
    assert!(
        page.contains(" 200 OK") && page.contains("hello compat"),
        "{page}"
    );
    stop(up);
}

fn vite_over_https_with_a_self_signed_certificate_is_proxied(mode: Mode) {
    let w = world_with_site(
        mode,
        "scripts {\n  dev {\n    run \"python3 -u serve.py vite-https\"\n    autostart true\n    url-matchers \"(Local|Network):\\\\s*{url}\"\n  }\n}\nproxies {\n  app {\n    script \"dev\"\n    port 0\n  }\n}\n",
    );
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(w.dir().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(w.dir().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let up = w.up(&[]);
    let app = &announced(&up, &["app"])[0];
    w.assert_mode(&up);
    assert!(
        up.stdout().contains(&format!(
            "agnt: proxy app listening on {app} -> https://localhost:"
        )),
        "{}",
        up.stdout()
    );
    let page = http_get(&format!("{app}/index.html"));
    assert!(
        page.contains(" 200 OK") && page.contains("hello compat"),
        "{page}"
    );
    assert!(page.contains("/__agnt/agnt.js"), "not injected: {page}");
    stop(up);
}

fn url_pattern_picks_the_matching_url_of_two(mode: Mode) {
    let w = world_with_site(
        mode,
        "scripts {\n  desk {\n    run \"python3 -u serve.py two\"\n    autostart true\n    url-matchers \"(Frontend|Backend):\\\\s*{url}\"\n  }\n}\nproxies {\n  back {\n    script \"desk\"\n    url-pattern \"127\\\\.0\\\\.0\\\\.1\"\n    port 0\n  }\n  front {\n    script \"desk\"\n    port 0\n  }\n}\n",
    );
    let up = w.up(&[]);
    let urls = announced(&up, &["back", "front"]);
    let out = up.stdout();
    assert!(
        out.contains(&format!(
            "agnt: proxy back listening on {} -> http://127.0.0.1:",
            urls[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "agnt: proxy front listening on {} -> http://localhost:1",
            urls[1]
        )),
        "{out}"
    );
    let page = http_get(&format!("{}/index.html", urls[0]));
    assert!(page.contains("hello compat"), "{page}");
    stop(up);
}

fn fallback_port_starts_the_proxy_when_no_url_is_printed(mode: Mode) {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let w = World::new(
        mode,
        &format!(
            "scripts {{\n  quiet {{\n    run \"echo starting; exec sleep 1000\"\n    autostart true\n  }}\n}}\nproxies {{\n  app {{\n    script \"quiet\"\n    fallback-port {port}\n    port 0\n  }}\n}}\n"
        ),
    );
    let up = w.up(&[]);
    let app = &announced(&up, &["app"])[0];
    let out = up.stdout();
    assert!(
        out.contains(&format!(
            "agnt: proxy app listening on {app} -> http://localhost:{port}"
        )),
        "{out}"
    );
    assert!(out.contains("using its fallback-port"), "{out}");
    stop(up);
}

fn a_proxy_only_config_runs_until_ctrl_c(mode: Mode) {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let w = World::new(
        mode,
        &format!(
            "proxies {{\n  app {{\n    url \"http://127.0.0.1:{port}\"\n    port 0\n    autostart true\n  }}\n}}\n"
        ),
    );
    let mut up = w.up(&[]);
    let app = announced(&up, &["app"]).remove(0);
    // Still running: the proxy answers (the upstream accepts but never answers, so only the
    // connection is checked).
    let addr = app.strip_prefix("http://").unwrap().to_string();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    assert!(up.child.try_wait().unwrap().is_none(), "{}", up.stderr());
    up.signal(Signal::INT);
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&addr).is_err()
    }));
}

fn depends_on_waits_then_starts_and_survives_a_dead_dependency(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  db {\n    run \"echo db-up; while [ ! -f go ]; do sleep 0.05; done; echo DB-READY; exec sleep 1000\"\n    autostart true\n    ready \"^DB-READY$\"\n  }\n  crashy {\n    run \"echo bye; exit 3\"\n    autostart true\n    ready \"^NEVER$\"\n  }\n  app {\n    run \"echo app-started; exec sleep 1000\"\n    autostart true\n    depends-on {\n      db timeout=60\n      crashy\n    }\n  }\n}\n",
    );
    let up = w.up(&[]);
    assert!(
        wait_until(Duration::from_secs(20), || up.stdout().contains("| db-up")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    assert!(!up.stdout().contains("app-started"), "{}", up.stdout());
    std::fs::write(w.dir().join("go"), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || up
            .stdout()
            .contains("| app-started")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    let out = up.stdout();
    let ready_at = out.find("| DB-READY").expect("db became ready");
    assert!(ready_at < out.find("| app-started").unwrap(), "{out}");
    assert!(
        up.stderr()
            .contains("script \"app\" starts without \"crashy\" being ready"),
        "{}",
        up.stderr()
    );
    stop(up);
}

fn probe_port_is_the_readiness_check(mode: Mode) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = World::new(
        mode,
        &format!(
            "scripts {{\n  worker {{\n    run \"echo waiting; while [ ! -f go ]; do sleep 0.05; done; exec python3 -c 'import socket,time; s=socket.socket(); s.bind((\\\"127.0.0.1\\\", {port})); s.listen(); time.sleep(1000)'\"\n    autostart true\n    ports {port}\n    probe-port true\n  }}\n}}\n"
        ),
    );
    let mut up = w.up(&["--", "sh", "-c", "touch cmd-ran"]);
    assert!(
        wait_until(Duration::from_secs(20), || up
            .stdout()
            .contains("worker | waiting")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    assert!(
        !w.dir().join("cmd-ran").exists(),
        "CMD ran before the port opened"
    );
    std::fs::write(w.dir().join("go"), "").unwrap();
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "{}{}", up.stdout(), up.stderr());
    assert!(w.dir().join("cmd-ran").exists());
}

fn auto_restart_is_followed_across_restarts(mode: Mode) {
    let w = World::new(
        mode,
        "scripts {\n  flappy {\n    run \"echo run >> runs; echo run-$(wc -l < runs); [ $(wc -l < runs) -ge 3 ] && exec sleep 1000; exit 3\"\n    autostart true\n    auto-restart true\n  }\n}\n",
    );
    let up = w.up(&[]);
    assert!(
        wait_until(Duration::from_secs(30), || up.stdout().contains("| run-3")),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    let out = up.stdout();
    assert_eq!(
        out.matches("[agnt: restarted (auto-restart)]").count(),
        2,
        "{out}"
    );
    assert!(out.contains("[agnt: exited, failed (exit 3)]"), "{out}");
    stop(up);
}

/// A listener agnt did not start: a child of the test (never the test itself, which
/// `auto-kill` would kill); returns it and its port.
fn unmanaged_listener() -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new("python3")
        .args([
            "-u",
            "-c",
            "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1]); time.sleep(1000)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

/// `agnt up` with `policy` and a script declaring the held port; returns the session's outcome
/// once it exited or started the script.
fn port_conflict(policy: &str) -> (std::process::Child, crate::support::Spawned, World) {
    let (holder, port) = unmanaged_listener();
    let w = World::new(
        Mode::Alone,
        &format!(
            "project {{\n  port-conflict \"{policy}\"\n}}\nscripts {{\n  web {{\n    run \"echo web-started; exec sleep 1000\"\n    autostart true\n    ports {port}\n  }}\n}}\n"
        ),
    );
    let mut up = w.up(&[]);
    assert!(
        wait_until(Duration::from_secs(30), || up
            .stdout()
            .contains("web-started")
            || up.child.try_wait().unwrap().is_some()),
        "{}{}",
        up.stdout(),
        up.stderr()
    );
    (holder, up, w)
}

#[test]
fn port_conflict_fail_aborts_and_lists_the_holder() {
    let (mut holder, mut up, _w) = port_conflict("fail");
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(1));
    let err = up.stderr();
    assert!(
        err.contains(&format!("held by pid [{}]", holder.id())),
        "{err}"
    );
    assert!(err.contains("port-conflict fail"), "{err}");
    assert!(!up.stdout().contains("web-started"));
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the holder was killed"
    );
    holder.kill().unwrap();
}

#[test]
fn port_conflict_prompt_without_a_terminal_fails_with_the_list() {
    let (mut holder, mut up, _w) = port_conflict("prompt");
    let status = up.wait_timeout(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(1));
    let err = up.stderr();
    assert!(err.contains("no terminal to ask on"), "{err}");
    assert!(
        err.contains(&format!("held by pid [{}]", holder.id())),
        "{err}"
    );
    holder.kill().unwrap();
}

#[test]
fn port_conflict_skip_warns_and_starts() {
    let (mut holder, up, _w) = port_conflict("skip");
    assert!(up.stdout().contains("web-started"), "{}", up.stderr());
    assert!(up.stderr().contains("starting anyway"), "{}", up.stderr());
    assert!(holder.try_wait().unwrap().is_none());
    holder.kill().unwrap();
    stop(up);
}

#[test]
fn port_conflict_auto_kill_kills_the_holder_then_starts() {
    let (mut holder, up, _w) = port_conflict("auto-kill");
    assert!(up.stdout().contains("web-started"), "{}", up.stderr());
    let pid = holder.id();
    assert!(
        up.stderr()
            .contains(&format!("held by pid [{pid}]: killed")),
        "{}",
        up.stderr()
    );
    let status = holder.wait().unwrap();
    assert!(!status.success());
    stop(up);
}

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
    vite_banner_links_its_proxy_through_the_url_placeholder,
    vite_over_https_with_a_self_signed_certificate_is_proxied,
    url_pattern_picks_the_matching_url_of_two,
    fallback_port_starts_the_proxy_when_no_url_is_printed,
    a_proxy_only_config_runs_until_ctrl_c,
    depends_on_waits_then_starts_and_survives_a_dead_dependency,
    probe_port_is_the_readiness_check,
    auto_restart_is_followed_across_restarts,
);
