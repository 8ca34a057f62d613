//! Issue 15 end to end: `get_incidents` over a real page error (headless Chromium through a
//! proxy), an upstream 500, a process exiting 3 and an `alerts` pattern line; pushes
//! (`notifications/claude/channel`) read by a raw JSON-RPC client over `agnt mcp` (the Python
//! SDK drops notifications it does not know); `channel_reply` toasts; answer budgets on a full
//! project; `tools/list` annotations and schema portability, also through the MCP Inspector's
//! strict check.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    browser::{launch, launch_cdp, require_chromium},
    daemon::{Env, McpChild, Rpc},
    proxy::{Req, Upstream, respond},
    support::wait_until,
};

/// The largest default answer a read action may give.
const BUDGET: usize = 8 * 1024;

const ERROR_PAGE: &str = "<!doctype html><html><head><title>boom</title></head><body><h1>boom</h1>\
<script>function agntBoom() { throw new Error('agnt-incident-boom'); }\
setTimeout(agntBoom, 300); setTimeout(agntBoom, 600);</script></body></html>";
const PLAIN_PAGE: &str =
    "<!doctype html><html><head><title>plain</title></head><body><h1>plain</h1></body></html>";

fn upstream() -> Upstream {
    Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        let html = [("Content-Type", "text/html; charset=utf-8")];
        match req.path.as_str() {
            "/" => respond(s, "200 OK", &html, ERROR_PAGE.as_bytes()),
            "/plain" => respond(s, "200 OK", &html, PLAIN_PAGE.as_bytes()),
            "/api/fail" => respond(s, "500 Internal Server Error", &[], b"db down"),
            p if p.starts_with("/item/") => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/json")],
                br#"{"ok":true}"#,
            ),
            _ => respond(s, "404 Not Found", &[], b"no"),
        }
    }))
}

/// One GET through `base` (a proxy URL); returns the status.
fn http_get(base: &str, path: &str, accept: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// `agnt mcp` (the bridge to a private daemon) after `initialize` for the env's project.
fn bridge(env: &Env) -> McpChild {
    let mut m = McpChild::spawn(env, &[]);
    let init = m.rpc.initialize(&env.project);
    assert_eq!(
        init["result"]["capabilities"]["experimental"]["claude/channel"],
        json!({}),
        "{init}"
    );
    m
}

fn start_proxy(rpc: &mut Rpc, id: &str, target: &str) -> String {
    let v = rpc.ok(
        "proxy",
        json!({"action": "start", "id": id, "target_url": target, "port": 0}),
    );
    v["url"].as_str().unwrap().to_string()
}

fn run_exit(rpc: &mut Rpc, id: &str, script: &str) {
    rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", script], "id": id}),
    );
    let done = wait_until(Duration::from_secs(20), || {
        rpc.ok("proc", json!({"action": "status", "process_id": id}))["state"] == "failed"
    });
    assert!(done, "{id} did not fail");
}

fn incidents(rpc: &mut Rpc, args: Value) -> Value {
    rpc.ok("get_incidents", args)
}

fn of_source<'a>(ans: &'a Value, source: &str) -> Vec<&'a Value> {
    ans["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["source"] == source)
        .collect()
}

/// Size of a `tools/call` answer: the larger of its text and its structured content.
fn answer_size(result: &Value) -> usize {
    let text = result["content"][0]["text"].as_str().unwrap_or("").len();
    let structured = serde_json::to_string(&result["structuredContent"])
        .unwrap()
        .len();
    text.max(structured)
}

#[test]
fn get_incidents_end_to_end() {
    if !require_chromium() {
        return;
    }
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "alerts {\n  patterns {\n    db-down { pattern \"AGNT-ALERT-[0-9]+ database\"; severity \"error\"; }\n  }\n}\n",
    )
    .unwrap();
    let mut m = bridge(&env);
    let up = upstream();
    let url = start_proxy(&mut m.rpc, "app", &up.url());

    // A page that throws the same error twice, in a real browser.
    let profile = tempfile::tempdir().unwrap();
    let _browser = launch(&format!("{url}/"), profile.path());
    // An upstream 500, twice.
    assert_eq!(http_get(&url, "/api/fail", "*/*"), 500);
    assert_eq!(http_get(&url, "/api/fail", "*/*"), 500);
    // A process that prints two alert lines and exits 3, run twice.
    let script = "echo 'AGNT-ALERT-1 database unreachable'; echo 'AGNT-ALERT-2 database unreachable'; exit 3";
    run_exit(&mut m.rpc, "worker", script);
    run_exit(&mut m.rpc, "worker", script);

    let mut ans = Value::Null;
    let all_in = wait_until(Duration::from_secs(60), || {
        ans = incidents(&mut m.rpc, json!({"limit": 100}));
        let count = |src: &str| {
            of_source(&ans, src)
                .iter()
                .map(|i| i["count"].as_u64().unwrap())
                .sum::<u64>()
        };
        count("browser_js") >= 2
            && count("http_5xx") >= 2
            && count("process_crash") >= 2
            && count("process_alert") >= 4
    });
    assert!(all_in, "not every failure arrived: {ans:#}");
    // Each failure is one incident, with its repeats counted.
    let js = of_source(&ans, "browser_js");
    assert_eq!(js.len(), 1, "{ans:#}");
    assert!(
        js[0]["summary"]
            .as_str()
            .unwrap()
            .contains("agnt-incident-boom")
    );
    assert_eq!(js[0]["count"], 2);
    assert_eq!(js[0]["severity"], "error");
    assert!(
        js[0]["remediation"]
            .as_str()
            .unwrap()
            .starts_with("currentpage "),
        "{ans:#}"
    );
    let http = of_source(&ans, "http_5xx");
    assert_eq!(http.len(), 1, "{ans:#}");
    assert_eq!(http[0]["count"], 2);
    assert_eq!(http[0]["context"]["status"], 500);
    assert!(
        http[0]["remediation"]
            .as_str()
            .unwrap()
            .contains("\"action\":\"get\""),
        "{ans:#}"
    );
    let crash = of_source(&ans, "process_crash");
    assert_eq!(crash.len(), 1, "{ans:#}");
    assert_eq!(crash[0]["count"], 2);
    assert!(
        crash[0]["summary"]
            .as_str()
            .unwrap()
            .contains("worker exited with code 3")
    );
    assert!(
        crash[0]["remediation"]
            .as_str()
            .unwrap()
            .contains("\"action\":\"output\""),
        "{ans:#}"
    );
    let alert = of_source(&ans, "process_alert");
    assert_eq!(alert.len(), 1, "{ans:#}");
    assert_eq!(alert[0]["count"], 4);
    assert_eq!(alert[0]["context"]["pattern"], "db-down");
    // The remediation's offset reads the alert line.
    let rem = alert[0]["remediation"].as_str().unwrap();
    let args: Value = serde_json::from_str(rem.strip_prefix("proc ").unwrap()).unwrap();
    let out = m.rpc.ok("proc", args);
    assert!(
        out["output"]
            .as_str()
            .unwrap()
            .starts_with("AGNT-ALERT-2 database"),
        "{out:#}"
    );
    // Newest first.
    let seen: Vec<&str> = ans["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["last_seen"].as_str().unwrap())
        .collect();
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "{seen:?}");

    // The cursor: nothing new since.
    let cursor = ans["replay_cursor"].as_str().unwrap().to_string();
    let again = incidents(&mut m.rpc, json!({"since": cursor}));
    assert_eq!(again["incidents"], json!([]), "{again:#}");
    // A new failure after the cursor shows up alone.
    assert_eq!(http_get(&url, "/api/fail", "*/*"), 500);
    let mut newer = Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        newer = incidents(&mut m.rpc, json!({"since": cursor}));
        newer["count"] == 1
    }));
    assert_eq!(newer["incidents"][0]["source"], "http_5xx");
    assert_eq!(newer["incidents"][0]["count"], 3);

    // limit: at most that many, and the cut is said.
    let two = incidents(&mut m.rpc, json!({"limit": 2}));
    assert_eq!(two["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(two["truncated"], true);
    assert!(
        two["note"].as_str().unwrap().contains("left out"),
        "{two:#}"
    );
    assert!(
        m.rpc
            .err("get_incidents", json!({"limit": 101}))
            .contains("101")
    );
    // Filters.
    let errors = incidents(&mut m.rpc, json!({"sources": ["process_crash"]}));
    assert_eq!(errors["count"], 1);

    // mark_read: the returned ones leave the unread inbox.
    let before = incidents(&mut m.rpc, json!({}));
    assert!(
        before["inbox_after"]["new"].as_u64().unwrap() >= 4,
        "{before:#}"
    );
    let read = incidents(&mut m.rpc, json!({"mark_read": true, "limit": 100}));
    assert_eq!(read["inbox_after"]["new"], 0, "{read:#}");
    assert_eq!(read["inbox_after"]["error"], 0);
    let after = incidents(&mut m.rpc, json!({}));
    assert!(
        after["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["read"] == true),
        "{after:#}"
    );
    // Another project sees none of them.
    let other = env.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let none = incidents(&mut m.rpc, json!({"path": other}));
    assert_eq!(none["incidents"], json!([]), "{none:#}");
}

#[test]
fn an_alert_line_written_in_two_parts_is_matched_whole_once() {
    let env = Env::new();
    std::fs::write(
        env.project.join(".agnt.kdl"),
        "alerts {\n  patterns {\n    split { pattern \"^AGNT-SPLIT [0-9]+ database down$\"; severity \"error\"; }\n  }\n}\n",
    )
    .unwrap();
    let mut m = bridge(&env);
    // Half a line, then (when the test says so through a fifo) the rest; it keeps running.
    let fifo = env.dir.path().join("go");
    let script = format!(
        "mkfifo {f}; printf 'AGNT-SPLIT 1 data'; read x < {f}; printf 'base down\\n'; read y < {f}",
        f = fifo.display()
    );
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", script], "id": "splitter"}),
    );
    let output = |rpc: &mut Rpc| {
        rpc.ok(
            "proc",
            json!({"action": "output", "process_id": "splitter"}),
        )["output"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(wait_until(Duration::from_secs(20), || output(&mut m.rpc)
        .ends_with("AGNT-SPLIT 1 data")));
    // Scanned while the line is half written: nothing yet.
    let ans = incidents(&mut m.rpc, json!({}));
    assert!(of_source(&ans, "process_alert").is_empty(), "{ans:#}");
    // The rest of the line (a non-blocking open fails until the script opens its end).
    let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK;
    let mut fd = None;
    assert!(wait_until(Duration::from_secs(20), || {
        fd = rustix::fs::open(&fifo, flags, rustix::fs::Mode::empty()).ok();
        fd.is_some()
    }));
    rustix::io::write(fd.as_ref().unwrap(), b"go\n").unwrap();
    drop(fd);
    assert!(wait_until(Duration::from_secs(20), || output(&mut m.rpc)
        .ends_with("database down\n")));
    let mut ans = Value::Null;
    let matched = wait_until(Duration::from_secs(10), || {
        ans = incidents(&mut m.rpc, json!({}));
        !of_source(&ans, "process_alert").is_empty()
    });
    assert!(matched, "the whole line was never matched: {ans:#}");
    let again = incidents(&mut m.rpc, json!({}));
    let alert = of_source(&again, "process_alert");
    assert_eq!(alert.len(), 1, "{again:#}");
    assert_eq!(alert[0]["count"], 1, "{again:#}");
    assert_eq!(
        alert[0]["summary"], "splitter: AGNT-SPLIT 1 database down",
        "{again:#}"
    );
    // An unfinished last line counts once its process has exited.
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "printf 'AGNT-SPLIT 2 database down'"], "id": "tail"}),
    );
    let mut ans = Value::Null;
    let tail = wait_until(Duration::from_secs(20), || {
        ans = incidents(&mut m.rpc, json!({}));
        of_source(&ans, "process_alert")
            .iter()
            .any(|i| i["summary"] == "tail: AGNT-SPLIT 2 database down")
    });
    assert!(
        tail,
        "an exited process's last line was not matched: {ans:#}"
    );
}

fn channel_notes(rpc: &Rpc) -> Vec<Value> {
    rpc.notifications
        .iter()
        .filter(|n| n["method"] == "notifications/claude/channel")
        .cloned()
        .collect()
}

/// Waits until a channel notification matching `pred` arrived (pinging to read the stream).
fn wait_note(rpc: &mut Rpc, pred: impl Fn(&Value) -> bool) -> bool {
    wait_until(Duration::from_secs(30), || {
        rpc.request("ping", json!({}));
        channel_notes(rpc).iter().any(&pred)
    })
}

#[test]
fn pushes_reach_a_raw_client_over_agnt_mcp_and_replies_toast() {
    if !require_chromium() {
        return;
    }
    let env = Env::new();
    let mut m = bridge(&env);

    // A process exiting 3: one notification naming it.
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "exit 3"], "id": "crasher"}),
    );
    let crash = |n: &Value| n["params"]["meta"]["source"] == "process_crash";
    assert!(wait_note(&mut m.rpc, crash), "no crash push");
    m.rpc.ok("daemon", json!({"action": "info"}));
    let crashes: Vec<Value> = channel_notes(&m.rpc).into_iter().filter(crash).collect();
    assert_eq!(crashes.len(), 1, "{crashes:#?}");
    let p = &crashes[0]["params"];
    assert!(p["content"].as_str().unwrap().contains("crasher"), "{p}");
    assert!(!p["content"].as_str().unwrap().contains('\n'));
    assert_eq!(p["meta"]["severity"], "error");
    assert_eq!(p["meta"]["project"], env.project.display().to_string());
    assert!(p["meta"]["id"].as_str().unwrap().starts_with("inc-"));
    assert!(
        p["meta"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );

    // A message typed in the page panel of a real page: one notification.
    let up = upstream();
    let url = start_proxy(&mut m.rpc, "app", &up.url());
    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch_cdp(profile.path());
    cdp.call("Page.navigate", json!({"url": format!("{url}/plain")}));
    let has_panel = wait_until(Duration::from_secs(30), || {
        cdp.eval("!!document.querySelector('agnt-panel')") == true
    });
    assert!(has_panel, "no panel in the page");
    cdp.eval(
        "(() => { const r = document.querySelector('agnt-panel').shadowRoot; r.getElementById('fab').click(); \
         r.getElementById('msg').value = 'the buy button does nothing'; r.getElementById('send').click(); return true })()",
    );
    let panel = |n: &Value| n["params"]["meta"]["source"] == "panel";
    assert!(wait_note(&mut m.rpc, panel), "no panel push");
    let panels: Vec<Value> = channel_notes(&m.rpc).into_iter().filter(panel).collect();
    assert_eq!(panels.len(), 1, "{panels:#?}");
    let p = &panels[0]["params"];
    assert!(
        p["content"]
            .as_str()
            .unwrap()
            .contains("the buy button does nothing")
    );
    assert_eq!(p["meta"]["proxy_id"], "app");
    assert!(
        p["meta"]["page"].as_str().unwrap().contains("/plain"),
        "{p}"
    );

    // channel_reply: a toast element in the page.
    let r = m.rpc.ok(
        "channel_reply",
        json!({"content": "fixed it, reload please", "title": "agent", "severity": "info"}),
    );
    assert_eq!(r["delivered"], 1, "{r}");
    let shown = wait_until(Duration::from_secs(10), || {
        cdp.eval("(document.querySelector('agnt-toast') || {shadowRoot: {textContent: ''}}).shadowRoot.textContent")
            .as_str()
            .is_some_and(|t| t.contains("fixed it, reload please") && t.contains("agent"))
    });
    assert!(shown, "no toast in the page");
    let r = m
        .rpc
        .ok("channel_reply", json!({"content": "x", "proxy_id": "app"}));
    assert_eq!(r["delivered"], 1, "{r}");
    assert!(m.rpc.err("channel_reply", json!({})).contains("content"));
}

#[test]
fn a_burst_of_crashes_is_rate_limited_per_connection() {
    let env = Env::new();
    let mut m = bridge(&env);
    let set = m.rpc.ok(
        "daemon",
        json!({"action": "channel", "rate": 10, "events": ["crash", "incident", "panel"]}),
    );
    assert_eq!(set["rate"], 10, "{set}");
    for i in 0..100 {
        m.rpc.ok(
            "run",
            json!({"raw": true, "command": "sh", "args": ["-c", "exit 1"], "id": format!("c{i}")}),
        );
    }
    let all_failed = wait_until(Duration::from_secs(60), || {
        let info = m.rpc.ok("daemon", json!({"action": "info"}));
        info["process_info"]["total_failed"].as_u64() >= Some(100)
    });
    assert!(all_failed);
    assert!(wait_until(Duration::from_secs(10), || {
        m.rpc.request("ping", json!({}));
        channel_notes(&m.rpc).len() >= 10
    }));
    m.rpc.ok("daemon", json!({"action": "info"}));
    let notes = channel_notes(&m.rpc);
    assert!(notes.len() <= 11, "{} pushes: {notes:#?}", notes.len());
    let info = m.rpc.ok("daemon", json!({"action": "info"}));
    assert!(
        info["channel"]["folded"].as_u64().unwrap() >= 89,
        "{info:#}"
    );
    // Another connection of the project has its own budget; rate 0 turns pushes off.
    let mut quiet = bridge(&env);
    quiet
        .rpc
        .ok("daemon", json!({"action": "channel", "rate": 0}));
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "exit 1"], "id": "late"}),
    );
    quiet.rpc.ok("daemon", json!({"action": "info"}));
    assert!(channel_notes(&quiet.rpc).is_empty());
}

#[test]
fn read_answers_stay_under_8kb_on_a_full_project() {
    let env = Env::new();
    let mut m = McpChild::spawn(&env, &["--standalone"]);
    m.rpc.initialize(&env.project);
    let up = upstream();
    let url = start_proxy(&mut m.rpc, "app", &up.url());
    for i in 0..1200 {
        let accept = if i % 100 == 0 { "text/html" } else { "*/*" };
        let path = if i % 100 == 0 {
            "/plain".to_string()
        } else if i % 7 == 0 {
            "/api/fail".to_string()
        } else {
            format!("/item/{i}?q=some-longer-query-string-{i}")
        };
        http_get(&url, &path, accept);
    }
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "id": "busy", "args": ["-c",
            "i=0; while [ $i -lt 20000 ]; do echo \"line $i of a busy dev server: GET /api/items?page=$i 200 in 12ms\"; i=$((i+1)); done; sleep 300"]}),
    );
    let printed = wait_until(Duration::from_secs(60), || {
        let o = m.rpc.ok(
            "proc",
            json!({"action": "output", "process_id": "busy", "tail": 1}),
        );
        o["output"].as_str().unwrap().contains("line 19999")
    });
    assert!(printed);
    let logged = wait_until(Duration::from_secs(10), || {
        m.rpc
            .ok("proxylog", json!({"proxy_id": "app", "action": "stats"}))["total_entries"]
            .as_u64()
            >= Some(1200)
    });
    assert!(logged);
    let session = m.rpc.ok("currentpage", json!({"proxy_id": "app"}))["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reads = [
        ("proc", json!({"action": "output", "process_id": "busy"})),
        ("proc", json!({"action": "list"})),
        ("proxylog", json!({"proxy_id": "app"})),
        ("proxylog", json!({"proxy_id": "app", "action": "summary"})),
        ("currentpage", json!({"proxy_id": "app"})),
        (
            "currentpage",
            json!({"proxy_id": "app", "action": "summary", "session_id": session}),
        ),
        ("get_incidents", json!({})),
    ];
    let mut report = Vec::new();
    for (tool, args) in &reads {
        let r = m.rpc.call(tool, args.clone());
        assert_eq!(r["isError"], false, "{tool} {args}: {r}");
        report.push((format!("{tool} {args}"), answer_size(&r), r));
    }
    for (what, size, _) in &report {
        eprintln!("answer size: {size:>6} B  {what}");
    }
    for (what, size, r) in &report {
        assert!(
            *size <= BUDGET,
            "{what}: {size} bytes > {BUDGET}: {}",
            &r["content"][0]["text"].as_str().unwrap_or("")[..400]
        );
    }
    // Cut answers say what was left out and how to get it.
    let out = &report[0].2["structuredContent"];
    assert_eq!(out["truncated"], true);
    assert!(out["note"].as_str().unwrap().contains("since"), "{out:#}");
    let q = &report[2].2["structuredContent"];
    assert_eq!(q["truncated"], true, "{q:#}");
    assert!(q["note"].as_str().unwrap().contains("since_seq"), "{q:#}");
}

/// Per tool: its actions as (action, writes, destructive, idempotent, open world).
type Table = &'static [(
    &'static str,
    &'static [(&'static str, bool, bool, bool, bool)],
)];
const ACTIONS: Table = &[
    ("detect", &[("detect", false, false, true, false)]),
    ("run", &[("run", true, false, false, true)]),
    (
        "proc",
        &[
            ("list", false, false, true, false),
            ("status", false, false, true, false),
            ("output", false, false, true, false),
            ("stop", true, true, true, false),
            ("restart", true, true, false, true),
            ("cleanup_port", true, true, true, true),
            ("resolve_conflict", true, true, false, true),
        ],
    ),
    (
        "proxy",
        &[
            ("start", true, false, false, true),
            ("stop", true, true, true, false),
            ("restart", true, true, false, false),
            ("status", false, false, true, false),
            ("list", false, false, true, false),
            ("exec", true, true, false, true),
        ],
    ),
    (
        "proxylog",
        &[
            ("query", false, false, true, false),
            ("summary", false, false, true, false),
            ("stats", false, false, true, false),
            ("clear", true, true, true, false),
            ("get", false, false, true, false),
        ],
    ),
    (
        "currentpage",
        &[
            ("list", false, false, true, false),
            ("get", false, false, true, false),
            ("summary", false, false, true, false),
            ("clear", true, true, true, false),
        ],
    ),
    ("wait", &[("wait", false, false, true, false)]),
    (
        "browser",
        &[
            ("start", true, false, false, true),
            ("open", true, false, false, true),
            ("stop", true, true, true, false),
            ("close", true, true, true, false),
            ("status", false, false, true, false),
            ("list", false, false, true, false),
            ("navigate", true, true, false, true),
            ("reload", true, true, false, true),
            ("back", true, true, false, true),
            ("resize", true, false, true, false),
            // A click, a key or a form fill may do anything the app does.
            ("click", true, true, false, true),
            ("hover", true, false, false, true),
            ("fill", true, true, false, true),
            ("select", true, true, false, true),
            ("press", true, true, false, true),
            ("upload", true, true, false, true),
            ("wait_for", false, false, true, false),
            ("screenshot", true, false, false, false),
            ("console", false, false, true, false),
            ("dialog", true, false, true, false),
        ],
    ),
    (
        "snapshot",
        &[
            ("baseline", true, true, false, true),
            ("compare", true, false, false, true),
            ("list", false, false, true, false),
            ("delete", true, true, true, false),
            ("get", false, false, true, false),
        ],
    ),
    (
        "get_incidents",
        &[
            ("read", false, false, true, false),
            ("mark_read", true, false, true, false),
        ],
    ),
    ("channel_reply", &[("reply", true, false, false, true)]),
    (
        "daemon",
        &[
            ("status", false, false, true, false),
            ("info", false, false, true, false),
            ("stop_all", true, true, true, false),
            ("shutdown", true, true, true, false),
            ("channel", true, false, true, false),
        ],
    ),
];

fn type_arrays(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type").is_some_and(Value::is_array) {
                out.push(path.to_string());
            }
            if m.is_empty() && !path.ends_with("properties") {
                out.push(format!("{path} (constrains nothing)"));
            }
            for (k, x) in m {
                type_arrays(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| type_arrays(x, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

#[test]
fn tools_list_carries_annotations_true_for_every_action() {
    let env = Env::new();
    let mut m = McpChild::spawn(&env, &["--standalone"]);
    m.rpc.initialize(&env.project);
    let r = m.rpc.request("tools/list", json!({}));
    let size = serde_json::to_string(&r["result"]).unwrap().len();
    eprintln!("tools/list: {size} bytes");
    assert!(size < 20 * 1024, "tools/list is {size} bytes");
    let tools = r["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let table: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, table, "the table lists every tool");
    let mut bad = Vec::new();
    for t in tools {
        let name = t["name"].as_str().unwrap();
        type_arrays(t, name, &mut bad);
        let a = &t["annotations"];
        let (_, actions) = ACTIONS.iter().find(|(n, _)| *n == name).unwrap();
        let schema_actions: Vec<&str> = t["inputSchema"]["properties"]["action"]["enum"]
            .as_array()
            .map(|e| e.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        for s in &schema_actions {
            assert!(
                actions.iter().any(|(act, ..)| act == s),
                "{name}: action {s} missing from the table"
            );
        }
        assert!(a["title"].as_str().is_some_and(|s| !s.is_empty()), "{name}");
        let want = (
            !actions.iter().any(|x| x.1),
            actions.iter().any(|x| x.2),
            actions.iter().all(|x| x.3),
            actions.iter().any(|x| x.4),
        );
        let got = (
            a["readOnlyHint"].as_bool().unwrap(),
            a["destructiveHint"].as_bool().unwrap(),
            a["idempotentHint"].as_bool().unwrap(),
            a["openWorldHint"].as_bool().unwrap(),
        );
        assert_eq!(
            got, want,
            "{name}: (readOnly, destructive, idempotent, openWorld)"
        );
    }
    assert!(bad.is_empty(), "type arrays or empty schemas: {bad:#?}");
}

#[test]
fn mcp_inspector_strict_check_is_clean() {
    let inspector = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/inspector/node_modules/.bin/mcp-inspector");
    if !inspector.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the MCP Inspector (.ci/run does): {} is missing",
            inspector.display()
        );
        eprintln!(
            "SKIPPED: MCP Inspector not installed at {}; run .ci/run or `npm install --prefix .tools/inspector @modelcontextprotocol/inspector@2.12.0`",
            inspector.display()
        );
        return;
    }
    let env = Env::new();
    // The inspector passes the server only the environment named with -e (plus a default
    // few), so the private daemon world goes there; HOME is the temp dir, so nothing it saves
    // lands in the user's home.
    let out = crate::support::command(inspector.to_str().unwrap())
        .arg("--cli")
        .arg("-e")
        .arg(format!("AGNT_SOCKET={}", env.socket.display()))
        .arg("-e")
        .arg(format!("AGNT_STATE_DIR={}", env.state.display()))
        .arg("--cwd")
        .arg(&env.project)
        .args([crate::support::bin().to_str().unwrap(), "mcp"])
        .args(["--method", "tools/list", "--strict"])
        .env("AGNT_SOCKET", &env.socket)
        .env("AGNT_STATE_DIR", &env.state)
        .env("HOME", env.dir.path())
        .current_dir(&env.project)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "inspector failed: {stderr}\n{stdout}");
    assert!(
        stdout.contains("\"tools\""),
        "no tool list from the inspector: {stdout}"
    );
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Error"),
        "inspector strict check: {stderr}"
    );
    if let Some(line) = stderr.lines().find(|l| l.contains("across")) {
        assert!(line.starts_with("0 errors, 0 warnings"), "{line}");
    }
    // It talked to this world's daemon, not the user's.
    assert!(
        wait_until(Duration::from_secs(10), || env.daemon_pid().is_some()),
        "the inspector's agnt mcp did not use the private socket"
    );
}
