//! The CLI of the tools around the page, through the real binary and a real private daemon:
//! `agnt incidents` over a process that really exits 3 (table, filters, cursor, `--json`),
//! `agnt channel reply`'s failures (no proxy, unknown proxy, no page) and, with a real
//! headless Chromium, `agnt browser …` (start on a URL, click, screenshot to a real PNG),
//! `agnt channel reply` shown in that page and `agnt snapshot baseline|compare|list|delete`
//! (a pass, then a failure exiting 1 once the page's CSS changes).

use std::{
    net::TcpStream,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;

use crate::{
    browser::{decode_png, require_chromium},
    daemon::Env,
    proxy::{Req, Upstream, respond},
    support::wait_until,
};

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `agnt ARGS` that must succeed; its stdout.
fn ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = env.run(args);
    assert_eq!(code, 0, "agnt {args:?}: {out} {err}");
    out
}

#[test]
fn cli_incidents_lists_a_real_crash_and_filters() {
    let env = Env::new();
    ok(
        &env,
        &[
            "run",
            "--id",
            "crashy",
            "--",
            "sh",
            "-c",
            "echo agnt-cli-last-words; exit 3",
        ],
    );
    let failed = wait_until(Duration::from_secs(20), || {
        json_of(&ok(&env, &["proc", "status", "crashy", "--json"]))["state"] == "failed"
    });
    assert!(failed, "crashy did not fail");

    let table = ok(&env, &["incidents"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SEVERITY  LAST SEEN"), "{table}");
    let row = lines
        .iter()
        .find(|l| l.contains("process_crash"))
        .unwrap_or_else(|| panic!("no crash row: {table}"));
    assert!(
        row.starts_with("ERROR ")
            && row.contains("process crashy exited with code 3")
            && row.contains("agnt-cli-last-words"),
        "{row}"
    );

    let ans = json_of(&ok(
        &env,
        &["incidents", "--source", "process_crash", "--json"],
    ));
    assert_eq!(ans["incidents"][0]["context"]["exit_code"], 3, "{ans}");
    let cursor = ans["replay_cursor"].as_str().unwrap().to_string();
    assert!(
        table.contains(&format!("agnt incidents --since {cursor}")),
        "{table}"
    );
    // Filters reach the tool: no info-level incident, nothing new since the cursor.
    let info = json_of(&ok(&env, &["incidents", "--severity", "info", "--json"]));
    assert_eq!(info["count"], 0, "{info}");
    assert_eq!(
        ok(&env, &["incidents", "--since", &cursor]).lines().next(),
        Some("nothing new since then")
    );
    let other = json_of(&ok(
        &env,
        &["incidents", "--process-id", "someone-else", "--json"],
    ));
    assert_eq!(other["count"], 0, "{other}");
    // mark_read: the crash is read afterwards.
    let read = json_of(&ok(
        &env,
        &["incidents", "--mark-read", "--limit", "5", "--json"],
    ));
    assert!(read["count"].as_u64().unwrap() >= 1, "{read}");
    let again = json_of(&ok(&env, &["incidents", "--json"]));
    assert_eq!(again["incidents"][0]["read"], true, "{again}");

    // Malformed input is clap's error (exit 2), not a call.
    let (code, _, err) = env.run(&["incidents", "--limit", "0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn cli_channel_reply_fails_when_no_page_sees_it() {
    let env = Env::new();
    let (code, out, err) = env.run(&["channel", "reply", "Fixed,", "reload"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("no running proxy in this project"), "{err}");

    let (code, out, err) = env.run(&["channel", "reply", "hi", "--proxy-id", "nope", "--json"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        json_of(&out)["error"].as_str().unwrap().contains("nope"),
        "{out}"
    );

    let up = Upstream::start(Arc::new(|_: &Req, s: &mut TcpStream| {
        respond(s, "200 OK", &[], b"ok")
    }));
    ok(
        &env,
        &[
            "proxy",
            "start",
            "app",
            "--target",
            &up.url(),
            "--port",
            "0",
        ],
    );
    let (code, _, err) = env.run(&["channel", "reply", "hi"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no page connected to app (0)"), "{err}");
    let (code, out, _) = env.run(&["channel", "reply", "hi", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["delivered"], 0, "{out}");
}

const PAGE: &str = r#"<!doctype html><html><head><title>cli shop</title>
<style>body { margin: 0; font: 16px sans-serif; background: #fff; } HERO</style></head>
<body><div id="hero"></div><h1>Shop</h1>
<button id="buy" onclick="document.getElementById('out').textContent = 'bought'">Buy now</button>
<p id="out"></p></body></html>"#;

#[test]
fn cli_browser_screenshot_and_snapshot_drive_a_real_chromium() {
    if !require_chromium() {
        eprintln!("skipped: no Chromium (AGNT_SKIP_BROWSER=1)");
        return;
    }
    let env = Env::new();
    let hero = Arc::new(Mutex::new(
        "#hero { height: 120px; background: #2a6; }".to_string(),
    ));
    let css = hero.clone();
    let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let html = [("Content-Type", "text/html; charset=utf-8")];
        match req.path.as_str() {
            "/" => {
                let page = PAGE.replace("HERO", &css.lock().unwrap());
                respond(s, "200 OK", &html, page.as_bytes())
            }
            _ => respond(s, "404 Not Found", &[], b"no"),
        }
    }));
    ok(
        &env,
        &[
            "proxy",
            "start",
            "shop",
            "--target",
            &up.url(),
            "--port",
            "0",
        ],
    );
    // A dev-server URL: the browser goes through the proxy in front of it.
    let started = ok(
        &env,
        &["browser", "start", "--url", &format!("{}/", up.url())],
    );
    assert!(
        started.starts_with("browser shop started (pid ")
            && started.contains("through proxy shop")
            && started.trim_end().ends_with("— cli shop"),
        "{started}"
    );
    let st = json_of(&ok(&env, &["browser", "status", "--json"]));
    assert_eq!(st["page"]["title"], "cli shop", "{st}");
    let listed = ok(&env, &["browser", "list"]);
    assert!(
        listed.starts_with("ID") && listed.contains("shop"),
        "{listed}"
    );

    let clicked = ok(&env, &["browser", "click", "--text", "Buy now"]);
    assert_eq!(
        clicked, "clicked <button> #buy \"Buy now\" (1 visible match)\n",
        "{clicked}"
    );
    let met = ok(
        &env,
        &["browser", "wait-for", "--text", "bought", "--timeout", "10"],
    );
    assert!(met.starts_with("met after "), "{met}");

    // The screenshot's path alone on stdout, naming a real PNG of the viewport.
    let path = ok(&env, &["browser", "screenshot"]);
    let path = path.trim_end();
    assert!(!path.contains('\n') && path.ends_with(".png"), "{path}");
    let (w, h, px) = decode_png(&std::fs::read(path).unwrap());
    assert_eq!((w, h), (1280, 800));
    assert_eq!(px[10 * 1280 + 10], [0x22, 0xaa, 0x66], "the hero is green");

    // The page's panel is connected, so a reply is shown there.
    let mut shown = String::new();
    let delivered = wait_until(Duration::from_secs(20), || {
        let (code, out, _) = env.run(&["channel", "reply", "Fixed,", "reload"]);
        shown = out;
        code == 0
    });
    assert!(delivered, "no page showed the reply");
    assert!(shown.starts_with("shown in 1 page(s): shop (1)"), "{shown}");

    // Baseline, compare (pass), change the CSS, compare (fail, exit 1, a diff image).
    let base = ok(&env, &["snapshot", "baseline", "home", "/"]);
    assert!(
        base.contains("1 page(s) captured") && base.contains("1280x800"),
        "{base}"
    );
    let same = ok(&env, &["snapshot", "compare", "home"]);
    assert_eq!(same, "home: PASS (threshold 1%)\n  ok   /  0% changed\n");
    *hero.lock().unwrap() = "#hero { height: 120px; background: #c33; }".to_string();
    let (code, diff, err) = env.run(&["snapshot", "compare", "home"]);
    assert_eq!(code, 1, "{diff} {err}");
    assert!(
        diff.starts_with("home: FAIL (threshold 1%)\n  FAIL /  ")
            && diff.contains("changed in 1 region: 1280x120 at 0,0"),
        "{diff}"
    );
    let diff_path = diff
        .lines()
        .find_map(|l| l.trim().strip_prefix("diff: "))
        .unwrap_or_else(|| panic!("no diff path: {diff}"));
    let (_, _, px) = decode_png(&std::fs::read(diff_path).unwrap());
    assert_eq!(px[10 * 1280 + 10], [255, 0, 0], "changes are red");
    assert!(ok(&env, &["snapshot", "list"]).contains("home"));
    ok(&env, &["snapshot", "delete", "home"]);
    let (code, _, err) = env.run(&["snapshot", "get", "home"]);
    assert_eq!(code, 1);
    assert!(err.contains("no snapshot \"home\""), "{err}");

    assert_eq!(ok(&env, &["browser", "stop"]), "browser shop closed\n");
    let (code, _, err) = env.run(&["browser", "status"]);
    assert_eq!(code, 1);
    assert!(err.contains("no browser is running"), "{err}");
}
