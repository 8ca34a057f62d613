//! The renderings on the exact structured results the tools return: what the user asked for is
//! shown, hints appear where they help, and nothing from a page reaches the terminal raw.

use serde_json::{Value, json};

use super::{Human, escape, human};

fn out(tool: &str, args: Value, v: Value) -> String {
    let h = human(tool, &args, &v);
    assert!(h.stderr.is_empty(), "unexpected stderr: {}", h.stderr);
    h.stdout
}

/// No ESC, BEL, CR or C1 control anywhere in what we print.
fn assert_inert(s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control character in {s:?}"
    );
}

#[test]
fn escape_keeps_layout_and_neutralises_controls() {
    assert_eq!(escape("a\tb\nc"), "a\tb\nc");
    assert_eq!(
        escape("\x1b[31mred\x07\r\u{9b}x"),
        "\\x1b[31mred\\x07\\r\\u{9b}x"
    );
    assert_eq!(super::cell(&json!("a\nb")), "a\\nb");
    assert_eq!(super::cell(&Value::Null), "-");
}

#[test]
fn exec_prints_the_value() {
    let args = json!({"action": "exec", "id": "app", "code": "document.title"});
    let v = json!({"duration_ms": 0, "error": null, "execution_id": "exec-2",
        "message": "JavaScript executed in 0 ms", "page_id": "tab-1", "result": "Hello agnt",
        "success": true});
    assert_eq!(out("proxy", args.clone(), v), "Hello agnt\n");
    let v = json!({"success": true, "result": {"a": 1, "s": "\u{1b}]0;pwned\u{7}"}});
    let s = out("proxy", args.clone(), v);
    assert!(s.contains("\"a\": 1"), "{s}");
    assert_inert(&s);
    let s = out(
        "proxy",
        args.clone(),
        json!({"success": true, "result": null}),
    );
    assert_eq!(s, "null\n");
    let s = out(
        "proxy",
        args,
        json!({"success": true, "result": "\u{1b}[2Jgone"}),
    );
    assert_eq!(s, "\\x1b[2Jgone\n");
}

#[test]
fn exec_error_goes_to_stderr_once() {
    let args = json!({"action": "exec", "id": "app", "code": "nope.x"});
    let v = json!({"duration_ms": 0, "execution_id": "exec-3", "result": null, "success": false,
        "error": "ReferenceError: nope is not defined\nReferenceError: nope is not defined\n    at eval (<anonymous>)",
        "message": "JavaScript failed: ReferenceError: nope is not defined"});
    let h = human("proxy", &args, &v);
    assert_eq!(h.stdout, "");
    assert_eq!(
        h.stderr,
        "agnt proxy exec: JavaScript error: ReferenceError: nope is not defined\n    at eval (<anonymous>)\n"
    );
}

#[test]
fn exec_cut_result_says_where_the_whole_is() {
    let args = json!({"action": "exec", "id": "app", "code": "big()"});
    let v = json!({"success": true, "execution_id": "exec-4", "result": "\"xxxx", "result_truncated": true,
        "result_bytes": 40002, "result_file": "/state/exec-results/exec-4-1.json",
        "note": "result is 40002 bytes, over the 16384-byte budget"});
    let h = human("proxy", &args, &v);
    assert_eq!(h.stdout, "\"xxxx\n");
    assert!(
        h.stderr.contains("40002 bytes") && h.stderr.contains("/state/exec-results/exec-4-1.json"),
        "{}",
        h.stderr
    );
}

#[test]
fn exec_api_and_describe_are_readable() {
    let v = json!({"api": "window.__devtool", "count": 1, "usage": "…",
        "functions": [{"name": "inspect", "signature": "__devtool.inspect(selector)", "summary": "Everything about one element."}]});
    let s = out("proxy", json!({"action": "exec", "help": true}), v);
    assert!(s.starts_with("window.__devtool: 1 function"), "{s}");
    assert!(
        s.contains("  __devtool.inspect(selector)\n      Everything about one element.\n"),
        "{s}"
    );
    let v = json!({"name": "inspect", "signature": "__devtool.inspect(selector)",
        "description": "Everything.", "defined_in": "src/proxy/script/03-inspect.js"});
    let s = out("proxy", json!({"action": "exec", "describe": "inspect"}), v);
    assert!(
        s.starts_with("__devtool.inspect(selector)\n\nEverything.\n"),
        "{s}"
    );
}

#[test]
fn proc_list_points_at_other_projects() {
    let args = json!({"action": "list"});
    let v = json!({"count": 0, "processes": [], "project_path": "/p2", "global": false,
        "total_in_daemon": 2, "other_projects_processes": 2});
    assert_eq!(
        out("proc", args.clone(), v),
        "no processes in /p2\n2 processes in other projects: `agnt proc list --global` lists them\n"
    );
    let v = json!({"count": 1, "project_path": "/p1", "global": false, "total_in_daemon": 1,
        "other_projects_processes": 0, "processes": [{"id": "web", "summary": "running",
        "pid": 7, "runtime": "1s", "command": "python3 -m http.server", "project_path": "/p1"}]});
    assert_eq!(
        out("proc", args, v),
        "ID   STATE    PID  RUNTIME  COMMAND\nweb  running  7    1s       python3 -m http.server\n"
    );
    let v = json!({"count": 1, "project_path": "/p2", "global": true, "total_in_daemon": 1,
        "other_projects_processes": 0, "processes": [{"id": "web", "summary": "running",
        "pid": 7, "runtime": "1s", "command": "x", "project_path": "/p1"}]});
    let s = out("proc", json!({"action": "list", "global": true}), v);
    assert!(
        s.starts_with("ID   STATE    PID  RUNTIME  PROJECT  COMMAND\n"),
        "{s}"
    );
}

#[test]
fn proxy_list_points_at_other_projects() {
    let v = json!({"count": 0, "proxies": [], "project_path": "/p2", "global": false,
        "total_in_daemon": 1, "other_projects_proxies": 1});
    assert_eq!(
        out("proxy", json!({"action": "list"}), v),
        "no proxies in /p2\n1 proxy in other projects: `agnt proxy list --global` lists them\n"
    );
}

#[test]
fn proc_status_is_fields_not_json() {
    let v = json!({"command": "sleep 9", "exit_code": null, "id": "sl", "pid": 42,
        "process_id": "sl", "project_path": "/p", "runtime": "2s", "state": "running",
        "summary": "running"});
    assert_eq!(
        out("proc", json!({"action": "status", "process_id": "sl"}), v),
        "sl: running\n  pid      42\n  command  sleep 9\n  runtime  2s\n  project  /p\n"
    );
}

#[test]
fn proxylog_lines_are_one_per_entry_and_inert() {
    let v = json!({"count": 2, "total_matched": 5, "truncated": true, "last_seq": 6, "entries": [
        {"data": {"duration_ms": 1.6, "id": "req-1", "method": "GET", "status_code": 200, "url": "/"},
         "id": "req-1", "seq": 1, "timestamp": "2026-11-30T16:53:23.225Z", "type": "http"},
        {"data": {"message": "Uncaught Error: boom \u{1b}[31mred", "source": "http://x/i.html",
         "lineno": 1, "colno": 190, "stack": "Error: boom\n at x"},
         "id": "error-6", "seq": 6, "timestamp": "2026-11-30T16:53:31.147Z", "type": "error"}]});
    let s = out("proxylog", json!({"proxy_id": "app"}), v);
    assert_eq!(
        s,
        "16:53:23.225  req-1             GET 200 / (1.6 ms)\n\
         16:53:31.147  error-6           Uncaught Error: boom \\x1b[31mred at http://x/i.html:1:190\n\
         (the newest 2 of 5 matching entries; --limit N shows more)\n"
    );
    let s = out(
        "proxylog",
        json!({"proxy_id": "app"}),
        json!({"count": 0, "entries": []}),
    );
    assert_eq!(s, "no entries\n");
}

#[test]
fn proxylog_stats_summary_and_get() {
    let v = json!({"available_entries": 2, "dropped": 0, "last_seq": 2, "max_size": 1000, "total_entries": 2});
    assert_eq!(
        out("proxylog", json!({"proxy_id": "a", "action": "stats"}), v),
        "2 entries in the log (capacity 1000); 2 logged since the last clear, 0 dropped; last seq 2\n"
    );
    let v = json!({"total_entries": 2, "entries_by_type": {"http": 2},
        "time_range": {"start": "2026-11-30T16:53:23.225Z", "end": "2026-11-30T16:53:23.339Z"},
        "error_count": 0, "unique_errors": [], "recent_errors": [], "http_count": 2,
        "http_failures": 0, "http_by_status": {"2xx": 1, "4xx": 1}, "http_by_method": {"GET": 2},
        "recent_http": [{"id": "req-2", "method": "GET", "status_code": 404, "url": "/nope", "duration_ms": 3.6}],
        "performance_count": 0, "avg_load_time_ms": null, "interaction_count": 0,
        "mutation_count": 0, "other_count": 0, "detail_sections": [], "detail_limit": 10});
    let s = out("proxylog", json!({"proxy_id": "a", "action": "summary"}), v);
    assert!(
        s.starts_with("2 entries from 16:53:23.225 to 16:53:23.339 (http 2)\n"),
        "{s}"
    );
    assert!(
        s.contains("http          2 requests, 0 failed; 2xx 1, 4xx 1; GET 2\n"),
        "{s}"
    );
    assert!(
        s.contains("Recent requests:\n  req-2  GET 404 /nope (3.6 ms)\n"),
        "{s}"
    );
    let v = json!({"id": "req-2", "seq": 2, "timestamp": "2026-11-30T16:53:23.339Z", "type": "http",
        "data": {"method": "POST", "url": "/x", "status_code": 501, "duration_ms": 1.0,
        "request_headers": {"Host": "h"}, "response_headers": {"X-Evil": "\u{1b}]52;c;x\u{7}"},
        "request_body": {"size": 3, "encoding": "utf-8", "text": "a=1", "truncated": false},
        "response_body": {"size": 0, "encoding": "utf-8", "text": "", "truncated": false}}});
    let s = out(
        "proxylog",
        json!({"proxy_id": "a", "action": "get", "entry_id": "req-2"}),
        v,
    );
    assert!(
        s.contains("POST 501 /x (1.0 ms)") && s.contains("Request body (3 bytes, utf-8):\na=1\n"),
        "{s}"
    );
    assert_inert(&s);
}

#[test]
fn currentpage_list_and_summary() {
    let args = json!({"proxy_id": "app"});
    let s = out(
        "currentpage",
        args.clone(),
        json!({"count": 0, "sessions": []}),
    );
    assert!(s.contains("open the proxy's URL in a browser"), "{s}");
    let v = json!({"count": 1, "sessions": [{"id": "page-3", "page_title": "Hi \u{1b}[5m", "url": "/",
        "error_count": 1, "request_count": 2, "interaction_count": 0,
        "last_activity": "2026-11-30T16:53:44.449Z"}]});
    let s = out("currentpage", args, v);
    assert!(
        s.contains("page-3  Hi \\x1b[5m  /    1       2         0             16:53:44.449"),
        "{s}"
    );
    let v = json!({"id": "page-3", "page_title": "Hello", "url": "/", "active": true,
        "start_time": "2026-11-30T16:53:30.955Z", "last_activity": "2026-11-30T16:53:44.449Z",
        "request_count": 2, "error_count": 1, "interaction_count": 1, "mutation_count": 0,
        "resource_count": 0, "performance": {"load_time_ms": 179, "ttfb_ms": 126},
        "unique_errors": [{"count": 1, "message": "Uncaught Error: boom"}],
        "recent_interactions": [{"event_type": "click", "target": "#b", "text": "x"}]});
    let s = out(
        "currentpage",
        json!({"proxy_id": "app", "action": "summary", "session_id": "page-3"}),
        v,
    );
    assert!(s.starts_with("page-3: Hello (/)\n"), "{s}");
    assert!(
        s.contains("  load         load 179 ms, TTFB 126 ms\n"),
        "{s}"
    );
    assert!(
        s.contains("Distinct errors:\n  1× Uncaught Error: boom\n"),
        "{s}"
    );
    assert!(s.contains("Recent interactions:\n  click #b x\n"), "{s}");
}

#[test]
fn wait_says_what_happened() {
    let v = json!({"for": "port", "matched": true, "port": 8765, "waited_ms": 3});
    assert_eq!(
        out("wait", json!({"for": "port"}), v),
        "port 8765 is open (after 3 ms)\n"
    );
    let v = json!({"for": "port", "matched": false, "timed_out": true, "waited_ms": 300,
        "last_seen": {"error": "Connection refused (os error 111)", "port": 1}});
    let h = human("wait", &json!({"for": "port"}), &v);
    assert_eq!(h.stdout, "");
    assert_eq!(
        h.stderr,
        "agnt wait: timed out after 300 ms waiting for port; last seen: Connection refused (os error 111)\n"
    );
}

#[test]
fn run_foreground_keeps_the_streams_apart() {
    let v = json!({"process_id": "sh", "exit_code": 7, "summary": "failed (exit 7)",
        "runtime": "0.01s", "stdout": "hi", "stderr": "oops\n", "state": "failed"});
    assert_eq!(
        human("run", &json!({}), &v),
        Human {
            stdout: "hi\nsh: failed (exit 7) in 0.01s\n".into(),
            stderr: "oops\n".into()
        }
    );
    let v = json!({"process_id": "web", "pid": 9, "command": "npm run dev", "state": "running"});
    assert_eq!(
        out("run", json!({}), v),
        "web started (pid 9): npm run dev\n"
    );
}

#[test]
fn detect_without_scripts_says_so() {
    let v =
        json!({"type": "unknown", "path": "/p", "scripts": [], "script_names": [], "config": null});
    assert_eq!(
        out("detect", json!({}), v),
        "/p: unknown\nno scripts found (run a command with `agnt run -- CMD ARGS…`)\n"
    );
}

#[test]
fn unknown_shapes_fall_back_to_message_or_json() {
    let s = out(
        "proxy",
        json!({"action": "stop"}),
        json!({"message": "proxy app stopped", "success": true}),
    );
    assert_eq!(s, "proxy app stopped\n");
    let s = out("daemon", json!({}), json!({"x": "\u{9b}31m"}));
    assert_inert(&s);
}

#[test]
fn an_upstream_cut_short_shows_as_truncated() {
    let entry = |status: u16| {
        json!({"data": {"duration_ms": 2.0, "id": "req-1", "method": "GET", "status_code": status, "url": "/big",
         "error": "upstream closed the connection mid-body"},
         "id": "req-1", "seq": 1, "timestamp": "2026-11-30T16:53:23.225Z", "type": "http"})
    };
    let v = json!({"count": 2, "entries": [entry(200), entry(504)]});
    let s = out("proxylog", json!({"proxy_id": "app"}), v);
    assert!(s.contains("GET 200 (truncated) /big"), "{s}");
    assert!(s.contains("GET 504 /big"), "{s}");
}

#[test]
fn incidents_are_a_table_with_the_next_cursor() {
    let v = json!({
        "count": 2, "matched": 2, "truncated": false, "replay_cursor": "42",
        "inbox_after": {"unread": 2},
        "incidents": [
            {"id": "inc-2", "fingerprint": "f2", "severity": "critical", "source": "process_crash",
             "count": 1, "summary": "dev exited with code 3\u{1b}[2J", "first_seen": "2026-11-30T19:33:04.123Z",
             "last_seen": "2026-11-30T19:33:04.123Z", "read": false, "remediation": "proc {}", "context": {}},
            {"id": "inc-1", "fingerprint": "f1", "severity": "error", "source": "browser_js",
             "count": 7, "summary": "Error: agnt-boom at app.js:1:2", "first_seen": "2026-11-30T19:30:00.000Z",
             "last_seen": "2026-11-30T19:31:00.500Z", "read": false, "remediation": "proxylog {}", "context": {}},
        ],
    });
    let s = out("get_incidents", json!({}), v);
    assert_inert(&s);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[0], "SEVERITY  LAST SEEN            SOURCE         COUNT  SUMMARY",
        "{s}"
    );
    assert_eq!(
        lines[1],
        "CRITICAL  2026-11-30 19:33:04  process_crash  1      dev exited with code 3\\x1b[2J",
        "{s}"
    );
    assert!(
        lines[2]
            .starts_with("ERROR     2026-11-30 19:31:00  browser_js     7      Error: agnt-boom"),
        "{s}"
    );
    assert_eq!(
        lines[3], "only newer ones: agnt incidents --since 42",
        "{s}"
    );

    // Nothing: the tool's note, and still the cursor.
    let v = json!({"count": 0, "incidents": [], "replay_cursor": "42", "note": "nothing new since then"});
    assert_eq!(
        out("get_incidents", json!({"since": "42"}), v),
        "nothing new since then\nonly newer ones: agnt incidents --since 42\n"
    );
    // Cut answers keep the tool's note under the table; long summaries are cut.
    let long = "x".repeat(300);
    let v = json!({"count": 1, "incidents": [{"severity": "warning", "source": "proxy_diag", "count": 2,
        "summary": long, "last_seen": "2026-11-30T19:31:00.500Z"}],
        "note": "3 older matching incident(s) left out", "replay_cursor": "9"});
    let s = out("get_incidents", json!({}), v);
    assert!(s.contains(&format!("{}…", "x".repeat(100))), "{s}");
    assert!(!s.contains(&"x".repeat(101)), "{s}");
    assert!(s.contains("3 older matching incident(s) left out\n"), "{s}");
}

#[test]
fn channel_reply_says_where_or_why_not_on_stderr() {
    let shown = json!({"delivered": 2, "message": "shown in 2 page(s): app (2)"});
    assert_eq!(
        out("channel_reply", json!({"content": "hi"}), shown),
        "shown in 2 page(s): app (2)\n"
    );
    let none = json!({"delivered": 0, "message": "no running proxy in this project: start one with proxy start"});
    let h = human("channel_reply", &json!({"content": "hi"}), &none);
    assert_eq!(h.stdout, "");
    assert_eq!(
        h.stderr,
        "agnt channel reply: no running proxy in this project: start one with proxy start\n"
    );
}

#[test]
fn browser_answers_are_one_or_two_lines() {
    let b = |action: &str, v: Value| out("browser", json!({"action": action}), v);
    let started = json!({"id": "shop", "proxy_id": "shop", "pid": 4242, "running": true,
        "url": "http://127.0.0.1:9/", "page": {"url": "http://127.0.0.1:9/", "title": "shop\u{7}"},
        "message": "browser shop started on http://127.0.0.1:9/ through proxy shop; ..."});
    let s = b("start", started);
    assert_eq!(
        s,
        "browser shop started (pid 4242) through proxy shop: http://127.0.0.1:9/ — shop\\x07\n"
    );
    let again = json!({"id": "shop", "message": "browser shop is already running"});
    assert_eq!(b("start", again), "browser shop is already running\n");

    let hit = |n: u64| {
        json!({"id": "shop", "matched": n, "message": "…",
            "hit": {"tag": "button", "selector": "#buy", "text": "Buy now", "count": n}})
    };
    assert_eq!(
        b("click", hit(1)),
        "clicked <button> #buy \"Buy now\" (1 visible match)\n"
    );
    assert_eq!(
        b("fill", hit(3)),
        "filled <button> #buy \"Buy now\" (3 visible matches)\n  the first was used; narrow it with --selector\n"
    );
    let press = json!({"hit": {"tag": "input"}, "matched": 1, "message": "pressed Enter in input"});
    assert_eq!(b("press", press), "pressed Enter in input\n");

    // The screenshot's path alone, so `$(agnt browser screenshot)` is the file.
    let shot = json!({"id": "shop", "path": "/s/shop-1.png", "width": 1280, "height": 800,
        "bytes": 9, "message": "1280x800 PNG written to /s/shop-1.png"});
    assert_eq!(b("screenshot", shot), "/s/shop-1.png\n");

    let nav = json!({"id": "shop", "page": {"url": "http://127.0.0.1:9/settings", "title": ""}, "message": "loaded"});
    assert_eq!(b("navigate", nav), "http://127.0.0.1:9/settings\n");
    assert_eq!(
        b(
            "wait_for",
            json!({"met": true, "waited_ms": 120, "message": "Url(\"/x\") met"})
        ),
        "met after 120 ms\n"
    );
    let console = json!({"count": 1, "cursor": 3, "entries": [
        {"seq": 3, "level": "error", "text": "boom\nat x", "time": "2026-11-30T19:31:00.500Z"}]});
    assert_eq!(
        b("console", console),
        "2026-11-30 19:31:00 error   boom\\nat x\nnewer ones: agnt browser console --since 3\n"
    );
    let status = json!({"id": "shop", "proxy_id": "shop", "running": true, "pid": 4242,
        "headless": true, "profile": "throwaway", "viewport": {"width": 1280, "height": 800},
        "uptime_s": 5, "page": {"url": "http://127.0.0.1:9/", "title": "shop"}, "console_cursor": 3});
    let s = b("status", status);
    assert!(s.starts_with("shop: running, pid 4242\n"), "{s}");
    assert!(
        s.contains("viewport  1280x800") && s.contains("page      http://127.0.0.1:9/ — shop"),
        "{s}"
    );
    assert_eq!(
        b("list", json!({"count": 0, "browsers": [], "global": false})),
        "no browsers (start one: agnt browser start --url URL)\n"
    );
    let list = json!({"count": 1, "global": false, "browsers": [{"id": "shop", "proxy_id": "shop", "pid": 1, "running": true}]});
    assert_eq!(
        b("list", list),
        "ID    PROXY  PID  RUNNING\nshop  shop   1    true\n"
    );
    assert_eq!(
        b(
            "stop",
            json!({"success": true, "message": "browser shop closed"})
        ),
        "browser shop closed\n"
    );
    // A start whose page did not load: the browser runs, the reason goes to stderr.
    let h = human(
        "browser",
        &json!({"action": "start"}),
        &json!({"id": "x", "pid": 1, "proxy_id": "x", "url": "http://a/", "page": null, "warning": "timed out\u{1b}"}),
    );
    assert_eq!(h.stderr, "agnt browser: timed out\\x1b\n");
}

#[test]
fn snapshot_compare_shows_pass_fail_fraction_regions_and_diff() {
    let v = json!({"name": "home", "pass": false, "diff_threshold": 0.01, "message": "1 page(s) differ",
    "pages": [
        {"page": "/", "changed_fraction": 0.1171875, "changed_pixels": 120000, "pass": false,
         "regions": [{"x": 0, "y": 0, "width": 1280, "height": 120}, {"x": 5, "y": 300, "width": 10, "height": 10}],
         "diff_path": "/s/home/diff-0.png", "current_path": "/s/home/cur-0.png", "size": [1280, 800]},
        {"page": "/cart", "changed_fraction": 0.0, "changed_pixels": 0, "pass": true, "regions": [],
         "diff_path": "/s/home/diff-1.png", "current_path": "/s/home/cur-1.png", "size": [1280, 800]},
    ]});
    let s = out(
        "snapshot",
        json!({"action": "compare", "baseline": "home"}),
        v,
    );
    assert_eq!(
        s,
        "home: FAIL (threshold 1%)\n  FAIL /  11.72% changed in 2 regions: 1280x120 at 0,0, 10x10 at 5,300\n       diff: /s/home/diff-0.png\n  ok   /cart  0% changed\n"
    );
    let v = json!({"name": "home", "pass": true, "diff_threshold": 0.05, "pages": [
        {"page": "/", "changed_fraction": 0.00001, "pass": true, "regions": [{"x": 1, "y": 2, "width": 3, "height": 4}],
         "diff_path": "/d.png"}]});
    let s = out("snapshot", json!({"action": "compare"}), v);
    assert_eq!(
        s,
        "home: PASS (threshold 5%)\n  ok   /  <0.01% changed in 1 region: 3x4 at 1,2\n       diff: /d.png\n"
    );
    let base = json!({"name": "home", "created": "2026-11-30T19:00:00Z", "message": "baseline \"home\": 1 page(s) captured",
        "pages": [{"page": "/", "url": "http://x/", "file": "/s/home/0.png", "width": 1280, "height": 800}]});
    assert_eq!(
        out("snapshot", json!({"action": "baseline"}), base),
        "baseline \"home\": 1 page(s) captured\n  /  1280x800  /s/home/0.png\n"
    );
    let list = json!({"count": 1, "snapshots": [{"name": "home", "created": "2026-11-30T19:00:00Z", "pages": 2}]});
    assert_eq!(
        out("snapshot", json!({"action": "list"}), list),
        "NAME  CREATED               PAGES\nhome  2026-11-30T19:00:00Z  2\n"
    );
    assert_eq!(
        out(
            "snapshot",
            json!({"action": "list"}),
            json!({"count": 0, "snapshots": []})
        ),
        "no snapshots (take one: agnt snapshot baseline NAME [PAGE…])\n"
    );
}
