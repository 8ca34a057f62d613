//! The CLI over the daemon socket: the acceptance flow (run a server, read its output, proxy it,
//! fetch through the proxy, read the traffic log, stop it), error exits, completions, and the
//! Python MCP SDK end-to-end script (`tests/py/e2e.py`).

#![allow(clippy::disallowed_methods)]

use std::process::Command;

use serde_json::{Value, json};

use crate::daemon::Env;

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn cli_flow_runs_proxies_and_reads_logs() {
    let env = Env::new();
    let ok = |args: &[&str]| {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "agnt {args:?}: {out} {err}");
        out
    };
    ok(&[
        "run",
        "--id",
        "web",
        "--",
        "python3",
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
    ]);
    let w = json_of(&ok(&[
        "wait",
        "log",
        "--process-id",
        "web",
        "--pattern",
        r"port \d+",
        "--timeout",
        "30",
        "--json",
    ]));
    assert_eq!(w["matched"], true);
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
    let out = ok(&["proc", "output", "web", "--grep", "Serving", "--tail", "1"]);
    assert!(out.starts_with("Serving HTTP"), "{out}");
    let list = ok(&["proc", "list"]);
    assert!(
        list.contains("ID") && list.contains("web") && list.contains("running"),
        "{list}"
    );
    let target = format!("http://127.0.0.1:{port}");
    let px = json_of(&ok(&[
        "proxy", "start", "app", "--target", &target, "--port", "0", "--json",
    ]));
    let url = px["url"].as_str().unwrap().to_string();
    let body = ureq::get(format!("{url}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(body.contains("Directory listing"));
    let q = json_of(&ok(&["proxylog", "app", "--types", "http", "--json"]));
    assert!(q["count"].as_u64().unwrap() >= 1, "{q}");
    assert!(q["entries"][0]["data"].is_object());
    let human = ok(&["proxylog", "app"]);
    assert!(human.contains("GET 200"), "{human}");
    let s = json_of(&ok(&["proxylog", "app", "--action", "summary", "--json"]));
    assert!(s["http_count"].as_u64().unwrap() >= 1, "{s}");
    assert!(ok(&["proxy", "list"]).contains("app"));
    ok(&["proc", "stop", "web"]);
    let st = json_of(&ok(&["proc", "status", "web", "--json"]));
    assert_ne!(st["state"], "running");
    ok(&["proxy", "stop", "app"]);
    let d = json_of(&ok(&["detect", "--json"]));
    assert_eq!(d["type"], "unknown");
    assert!(ok(&["daemon", "status"]).contains("running"));
    ok(&["daemon", "stop"]);
}

#[test]
fn cli_errors_exit_nonzero_with_the_fix() {
    let env = Env::new();
    let (code, _, err) = env.run(&["proc", "status", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not found") && err.contains("known ids"),
        "{err}"
    );
    let (code, out, err) = env.run(&["proc", "status", "nope", "--json"]);
    assert_eq!(code, 1);
    assert!(json_of(&out)["error"].is_string(), "{out} {err}");
    let (code, _, err) = env.run(&["run", "nosuchscript"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown script"), "{err}");
    let (code, _, err) = env.run(&["run", "-e", "NOEQUALS", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = env.run(&[
        "run",
        "--mode",
        "foreground-raw",
        "--",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(code, 7);
    assert!(out.starts_with("hi\n") && out.contains("exit 7"), "{out}");
    let (code, out, _) = env.run(&["wait", "port", "--port", "1", "--timeout", "0.2", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["matched"], false);
}

#[test]
fn proxy_exec_discovers_the_devtool_api() {
    let env = Env::new();
    let (code, out, err) = env.run(&["proxy", "exec", "--api", "--json"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = json_of(&out)["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.iter().any(|n| n == "auditAccessibility"), "{names:?}");
    let (code, out, err) = env.run(&["proxy", "exec", "--describe", "inspect", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["name"], "inspect");
    let (code, _, err) = env.run(&["proxy", "exec", "--describe", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("known: log"), "{err}");
}

#[test]
fn completions_cover_the_tool_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(crate::support::bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for word in [
            "proxylog",
            "cleanup-port",
            "incidents",
            "reply",
            "wait-for",
            "screenshot",
            "snapshot",
            "diff-threshold",
        ] {
            assert!(text.contains(word), "{shell}: no {word}");
        }
    }
}

#[test]
fn python_sdk_end_to_end() {
    if std::env::var_os("AGNT_SKIP_PY").is_some() {
        eprintln!("AGNT_SKIP_PY set: skipping the Python MCP SDK e2e");
        return;
    }
    let probe = Command::new("python3")
        .args(["-c", "import mcp, jsonschema"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "the Python MCP SDK is not importable: run `pip install mcp==2.3.0` (or set AGNT_SKIP_PY=1)"
        ),
    }
    let env = Env::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/e2e.py");
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("python3")
        .arg(script)
        .arg(crate::support::bin())
        .env("AGNT_HTTP_PORT", http_port.to_string())
        .env("AGNT_SOCKET", &env.socket)
        .env("AGNT_STATE_DIR", &env.state)
        .env_remove("AGNT_PROJECT_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e.py failed:\n{stdout}\n{stderr}");
    let v = json_of(stdout.trim());
    assert_eq!(v["ok"], true);
    assert_eq!(v["auto"], "2026-07-28");
    assert_eq!(v["legacy"], "2025-11-25");
    assert_eq!(v["http_auto"], "2026-07-28");
    assert_eq!(v["http_legacy"], "2025-11-25");
}

#[test]
fn proc_list_outside_the_project_points_at_other_projects() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", "--id", "nap", "--", "sleep", "30"]);
    assert_eq!(code, 0, "{err}");
    let other = env.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let in_other = |args: &[&str]| {
        let out = env.cmd(args).current_dir(&other).output().unwrap();
        assert!(out.status.success(), "agnt {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = in_other(&["proc", "list"]);
    assert!(
        list.starts_with("no processes in ")
            && list.contains("1 process in other projects")
            && list.contains("agnt proc list --global"),
        "{list}"
    );
    let v = json_of(&in_other(&["proc", "list", "--json"]));
    assert_eq!(v["count"], 0, "{v}");
    assert_eq!(v["other_projects_processes"], 1, "{v}");
    assert_eq!(v["total_in_daemon"], 1, "{v}");
    let global = in_other(&["proc", "list", "--global"]);
    assert!(
        global.contains("PROJECT") && global.contains("nap") && !global.contains("other projects"),
        "{global}"
    );
    let mine = json_of(&env.run(&["proc", "list", "--json"]).1);
    assert_eq!(mine["count"], 1, "{mine}");
    assert_eq!(mine["other_projects_processes"], 0, "{mine}");
    env.run(&["daemon", "stop"]);
}

#[test]
fn proxy_exec_prints_the_value_the_error_and_where_a_cut_result_went() {
    if crate::browser::chromium().is_none() {
        if std::env::var("AGNT_SKIP_BROWSER").as_deref() == Ok("1") {
            return;
        }
        panic!(
            "chromium not found: install it (apt-get install chromium) or set AGNT_SKIP_BROWSER=1"
        );
    }
    let up = crate::proxy::Upstream::start(std::sync::Arc::new(
        |_: &crate::proxy::Req, s: &mut std::net::TcpStream| {
            crate::proxy::respond(
                s,
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8")],
                b"<!doctype html><html><head><title>agnt cli exec</title></head><body>hi</body></html>",
            )
        },
    ));
    let env = Env::new();
    let (code, out, err) = env.run(&[
        "proxy",
        "start",
        "app",
        "--target",
        &up.url(),
        "--port",
        "0",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let url = json_of(&out)["url"].as_str().unwrap().to_string();
    let profile = tempfile::tempdir().unwrap();
    let _browser = crate::browser::launch(&format!("{url}/"), profile.path());
    let mut last = (0, String::new(), String::new());
    let connected = crate::support::wait_until(std::time::Duration::from_secs(60), || {
        last = env.run(&["proxy", "exec", "app", "document.title"]);
        last.0 == 0
    });
    assert!(connected, "exec never succeeded: {last:?}");
    assert_eq!(last.1, "agnt cli exec\n", "{last:?}");
    let (code, out, err) = env.run(&["proxy", "exec", "app", "nope.x"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        out.is_empty() && err.contains("JavaScript error: ReferenceError: nope is not defined"),
        "{out} {err}"
    );
    let (code, out, err) = env.run(&[
        "proxy",
        "exec",
        "app",
        "'x'.repeat(1000)",
        "--max-result-bytes",
        "300",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("\"xxx") && out.len() <= 302, "{out}");
    let file = err
        .split("the whole result is in ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("no file named: {err}"));
    let saved = std::fs::read_to_string(file).unwrap();
    assert_eq!(saved.len(), 1002, "{saved}");
    env.run(&["daemon", "stop"]);
}

/// `verify_tls` from `agnt proxy start --verify-tls` shows in the tool's JSON (start, status,
/// list) and the human status line, is accepted and ignored for an `http://` target, and a
/// restarted daemon restores each proxy with the same choice. No upstream is needed: nothing
/// connects to it.
#[test]
fn proxy_verify_tls_shows_in_status_and_survives_a_daemon_restart() {
    let env = Env::new();
    let ok = |args: &[&str]| {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "agnt {args:?}: {out} {err}");
        out
    };
    let start = |id: &str, target: &str, verify: Option<&str>| {
        let mut args = vec![
            "proxy", "start", id, "--target", target, "--port", "0", "--json",
        ];
        if let Some(v) = verify {
            args.extend(["--verify-tls", v]);
        }
        json_of(&ok(&args))
    };
    let want = [
        ("strict", Some(true)),
        ("lax", Some(false)),
        ("dflt", Some(false)),
        ("plain", None),
    ];
    assert_eq!(
        start("strict", "https://127.0.0.1:9", Some("true"))["tls"],
        json!({"verify": true})
    );
    assert_eq!(
        start("lax", "https://localhost:9", Some("false"))["tls"],
        json!({"verify": false})
    );
    // Loopback is not verified by default.
    assert_eq!(
        start("dflt", "https://127.0.0.1:9", None)["tls"],
        json!({"verify": false})
    );
    // Accepted and ignored for a plain target: no tls at all.
    assert!(
        start("plain", "http://127.0.0.1:9", Some("true"))
            .get("tls")
            .is_none()
    );

    let check = |when: &str| {
        for (id, verify) in want {
            let st = json_of(&ok(&["proxy", "status", id, "--json"]));
            assert_eq!(st["tls"]["verify"].as_bool(), verify, "{when}: {id}: {st}");
            let human = ok(&["proxy", "status", id]);
            let line = human.lines().find(|l| l.trim_start().starts_with("tls "));
            match verify {
                Some(true) => assert!(
                    line.is_some_and(|l| l.ends_with("certificate verified")),
                    "{when}: {human}"
                ),
                Some(false) => assert!(
                    line.is_some_and(|l| l.ends_with("certificate not verified")),
                    "{when}: {human}"
                ),
                None => assert!(line.is_none(), "{when}: {human}"),
            }
        }
        let list = json_of(&ok(&["proxy", "list", "--json"]));
        let listed: Vec<(String, Option<bool>)> = list["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["tls"]["verify"].as_bool(),
                )
            })
            .collect();
        for (id, verify) in want {
            assert!(
                listed.contains(&(id.to_string(), verify)),
                "{when}: {id} {verify:?} not in {listed:?}"
            );
        }
    };
    check("started");
    ok(&["daemon", "restart"]);
    check("restored");
    ok(&["daemon", "stop"]);
}

/// `agnt wait http` probes an `https://` dev server (Python's http.server behind a self-signed
/// certificate from rcgen): loopback is not verified by default, `--verify-tls true` refuses
/// the certificate and says so in what the wait last saw.
#[test]
fn wait_http_probes_an_https_server_and_verify_tls_refuses_a_self_signed_one() {
    let env = Env::new();
    let ok = |args: &[&str]| {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "agnt {args:?}: {out} {err}");
        out
    };
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = env.dir.path().join("cert.pem");
    let key = env.dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let server = format!(
        "import http.server, ssl\n\
         srv = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain({:?}, {:?})\n\
         srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
         print('tls port', srv.server_address[1], flush=True)\n\
         srv.serve_forever()\n",
        cert.to_str().unwrap(),
        key.to_str().unwrap()
    );
    ok(&["run", "--id", "tls", "--", "python3", "-u", "-c", &server]);
    let w = json_of(&ok(&[
        "wait",
        "log",
        "--process-id",
        "tls",
        "--pattern",
        r"tls port \d+",
        "--timeout",
        "30",
        "--json",
    ]));
    assert_eq!(w["matched"], true, "{w}");
    let port = w["line"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let url = format!("https://127.0.0.1:{port}/");
    let got = json_of(&ok(&[
        "wait",
        "http",
        "--url",
        &url,
        "--process-id",
        "tls",
        "--timeout",
        "30",
        "--json",
    ]));
    assert_eq!(got["matched"], true, "{got}");
    assert_eq!(got["status"], 200, "{got}");
    // A refused certificate stays refused: the wait fails at once (not after its 10 minutes)
    // with an error naming verification.
    let (code, out, err) = env.run(&[
        "wait",
        "http",
        "--url",
        &url,
        "--verify-tls",
        "true",
        "--timeout",
        "600",
    ]);
    assert_ne!(code, 0, "{out} {err}");
    assert!(
        err.contains("certificate verification failed")
            || err.contains("no trusted root certificates"),
        "{out} {err}"
    );
    ok(&["proc", "stop", "tls"]);
    ok(&["daemon", "stop"]);
}
