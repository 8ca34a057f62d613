//! The argv → tool-argument mapping of `agnt incidents`, `agnt channel reply`, `agnt browser …`
//! and `agnt snapshot …`: each argv sends exactly the `tools/call` an agent would, every
//! parameter of those tools' input schemas has a flag, and malformed input is a clap error.

use serde_json::{Value, json};

use super::{call, check, parse_error};

#[test]
fn incidents_maps_every_parameter() {
    check(&["incidents"], "get_incidents", json!({}));
    check(
        &[
            "incidents",
            "--severity",
            "error,critical",
            "--since",
            "5m",
            "--source",
            "browser_js",
            "--sources",
            "process_crash,http_5xx",
            "--fingerprint",
            "ab12",
            "--proxy-id",
            "app",
            "--process-id",
            "dev",
            "--detail",
            "full",
            "--mark-read",
            "--limit",
            "50",
            "--raw",
            "--path",
            "/p",
            "--json",
        ],
        "get_incidents",
        json!({
            "severity": ["error", "critical"], "since": "5m",
            "sources": ["browser_js", "process_crash", "http_5xx"], "fingerprints": ["ab12"],
            "proxy_id": "app", "process_id": "dev", "detail": "full", "mark_read": true,
            "limit": 50, "raw": true, "path": "/p",
        }),
    );
    // Every source the tool knows is accepted.
    for s in crate::host::incidents::SOURCES {
        check(
            &["incidents", "--source", s],
            "get_incidents",
            json!({"sources": [s]}),
        );
    }
}

#[test]
fn channel_reply_joins_the_words() {
    check(
        &["channel", "reply", "Fixed,", "reload", "please"],
        "channel_reply",
        json!({"content": "Fixed, reload please"}),
    );
    check(
        &[
            "channel",
            "reply",
            "--proxy-id",
            "app",
            "--severity",
            "warning",
            "--title",
            "agnt",
            "--path",
            "/p",
            "done",
        ],
        "channel_reply",
        json!({"content": "done", "proxy_id": "app", "severity": "warning", "title": "agnt", "path": "/p"}),
    );
}

#[test]
fn browser_actions() {
    let b = |argv: &[&str], arguments: Value| {
        let mut full = vec!["browser"];
        full.extend_from_slice(argv);
        check(&full, "browser", arguments);
    };
    b(
        &["start", "--url", "http://localhost:3000/"],
        json!({"action": "start", "url": "http://localhost:3000/"}),
    );
    b(
        &[
            "open",
            "--proxy-id",
            "app",
            "--id",
            "b1",
            "--headed",
            "--binary-path",
            "/usr/bin/chromium",
            "--profile",
            "persistent",
            "--path",
            "/p",
        ],
        json!({"action": "start", "proxy_id": "app", "id": "b1", "headless": false,
            "binary_path": "/usr/bin/chromium", "profile": "persistent", "path": "/p"}),
    );
    b(&["stop"], json!({"action": "stop"}));
    b(
        &["close", "--id", "b1"],
        json!({"action": "stop", "id": "b1"}),
    );
    b(
        &["status", "--proxy-id", "app"],
        json!({"action": "status", "proxy_id": "app"}),
    );
    b(
        &["list", "--global"],
        json!({"action": "list", "global": true}),
    );
    b(
        &["navigate", "/settings", "--timeout", "2m"],
        json!({"action": "navigate", "url": "/settings", "timeout": "2m"}),
    );
    b(
        &["reload", "--timeout", "5"],
        json!({"action": "reload", "timeout": 5.0}),
    );
    b(&["back"], json!({"action": "back"}));
    b(
        &["resize", "mobile"],
        json!({"action": "resize", "preset": "mobile"}),
    );
    b(
        &["resize", "--width", "400", "--height", "700"],
        json!({"action": "resize", "width": 400, "height": 700}),
    );
    b(
        &["click", "--text", "Buy now"],
        json!({"action": "click", "text": "Buy now"}),
    );
    b(
        &["hover", "--selector", "#menu", "--id", "b1"],
        json!({"action": "hover", "selector": "#menu", "id": "b1"}),
    );
    b(
        &["fill", "--selector", "input[name=q]", "shoes"],
        json!({"action": "fill", "selector": "input[name=q]", "value": "shoes"}),
    );
    b(
        &["select", "--selector", "#size", "XL"],
        json!({"action": "select", "selector": "#size", "value": "XL"}),
    );
    b(
        &["press", "Enter"],
        json!({"action": "press", "key": "Enter"}),
    );
    b(
        &["press", "Tab", "--selector", "#q"],
        json!({"action": "press", "key": "Tab", "selector": "#q"}),
    );
    b(
        &["upload", "--selector", "#f", "a.png", "b.png"],
        json!({"action": "upload", "selector": "#f", "files": ["a.png", "b.png"]}),
    );
    b(
        &["wait-for", "--text", "Saved", "--timeout", "20"],
        json!({"action": "wait_for", "text": "Saved", "timeout": 20.0}),
    );
    b(
        &["wait-for", "--url", "/done"],
        json!({"action": "wait_for", "url": "/done"}),
    );
    b(
        &["wait-for", "--network-idle"],
        json!({"action": "wait_for", "network_idle": true}),
    );
    b(&["screenshot"], json!({"action": "screenshot"}));
    b(
        &["screenshot", "--full-page", "--inline"],
        json!({"action": "screenshot", "full_page": true, "inline": true}),
    );
    b(
        &["screenshot", "--selector", "#hero"],
        json!({"action": "screenshot", "selector": "#hero"}),
    );
    b(
        &["console", "--since", "7"],
        json!({"action": "console", "since": 7}),
    );
    b(&["dialog"], json!({"action": "dialog"}));
    b(
        &["dialog", "--dismiss"],
        json!({"action": "dialog", "accept": false}),
    );
    b(
        &["dialog", "--text", "Ada"],
        json!({"action": "dialog", "text": "Ada"}),
    );
}

#[test]
fn snapshot_actions() {
    check(
        &[
            "snapshot",
            "baseline",
            "home",
            "/",
            "/cart",
            "--proxy-id",
            "app",
        ],
        "snapshot",
        json!({"action": "baseline", "name": "home", "pages": ["/", "/cart"], "proxy_id": "app"}),
    );
    check(
        &["snapshot", "baseline", "here"],
        "snapshot",
        json!({"action": "baseline", "name": "here"}),
    );
    check(
        &[
            "snapshot",
            "compare",
            "home",
            "--diff-threshold",
            "0.05",
            "--id",
            "b1",
        ],
        "snapshot",
        json!({"action": "compare", "baseline": "home", "diff_threshold": 0.05, "id": "b1"}),
    );
    check(&["snapshot", "list"], "snapshot", json!({"action": "list"}));
    check(
        &["snapshot", "get", "home", "--path", "/p"],
        "snapshot",
        json!({"action": "get", "name": "home", "path": "/p"}),
    );
    check(
        &["snapshot", "delete", "home"],
        "snapshot",
        json!({"action": "delete", "name": "home"}),
    );
}

/// Every parameter of `tool`'s input schema is reachable from some argv in `argvs` (the
/// `aliases` are the tool's alternative spellings the CLI does not need).
fn covers(tool: &crate::tools::Tool, argvs: &[&[&str]], aliases: &[&str]) {
    let mut seen = std::collections::BTreeSet::new();
    for argv in argvs {
        let v = call(argv);
        assert_eq!(v["tool"], tool.name, "{argv:?}");
        seen.extend(v["arguments"].as_object().unwrap().keys().cloned());
    }
    let schema = (tool.input_schema)();
    let missing: Vec<&String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !seen.contains(*k) && !aliases.contains(&k.as_str()))
        .collect();
    assert!(missing.is_empty(), "{}: no flag for {missing:?}", tool.name);
    if let Some(actions) = schema["properties"]["action"]["enum"].as_array() {
        for a in actions {
            let a = a.as_str().unwrap();
            let reached = argvs
                .iter()
                .any(|argv| call(argv)["arguments"]["action"] == a);
            // `open` and `close` are the tool's aliases of start and stop (clap aliases here).
            assert!(
                reached || a == "open" || a == "close",
                "{}: no subcommand for {a}",
                tool.name
            );
        }
    }
}

#[test]
fn every_tool_parameter_has_a_flag() {
    use crate::tools;
    covers(
        &tools::incidents::TOOL,
        &[&[
            "incidents",
            "--severity",
            "error",
            "--since",
            "1",
            "--source",
            "browser_js",
            "--fingerprint",
            "f",
            "--proxy-id",
            "p",
            "--process-id",
            "q",
            "--detail",
            "full",
            "--mark-read",
            "--limit",
            "1",
            "--raw",
            "--path",
            "/p",
        ]],
        &[],
    );
    covers(
        &tools::channel_reply::TOOL,
        &[&[
            "channel",
            "reply",
            "x",
            "--proxy-id",
            "p",
            "--severity",
            "info",
            "--title",
            "t",
            "--path",
            "/p",
        ]],
        // The tool's alias of proxy_id.
        &["id"],
    );
    covers(
        &tools::browser::TOOL,
        &[
            &[
                "browser",
                "start",
                "--url",
                "u",
                "--headed",
                "--binary-path",
                "b",
                "--profile",
                "throwaway",
                "--id",
                "i",
                "--proxy-id",
                "p",
                "--path",
                "/p",
            ],
            &["browser", "stop"],
            &["browser", "status"],
            &["browser", "list", "--global"],
            &["browser", "navigate", "/", "--timeout", "1"],
            &["browser", "reload"],
            &["browser", "back"],
            &["browser", "resize", "mobile"],
            &["browser", "resize", "--width", "1", "--height", "1"],
            &["browser", "click", "--text", "t"],
            &["browser", "hover", "--selector", "s"],
            &["browser", "fill", "--selector", "s", "v"],
            &["browser", "select", "--selector", "s", "v"],
            &["browser", "press", "Enter"],
            &["browser", "upload", "--selector", "s", "f"],
            &["browser", "wait-for", "--network-idle"],
            &["browser", "screenshot", "--full-page", "--inline"],
            &["browser", "console", "--since", "1"],
            &["browser", "dialog", "--dismiss"],
        ],
        &[],
    );
    covers(
        &tools::snapshot::TOOL,
        &[
            &[
                "snapshot",
                "baseline",
                "n",
                "/",
                "--id",
                "i",
                "--proxy-id",
                "p",
                "--path",
                "/p",
            ],
            &["snapshot", "compare", "n", "--diff-threshold", "0.1"],
            &["snapshot", "list"],
            &["snapshot", "get", "n"],
            &["snapshot", "delete", "n"],
        ],
        &[],
    );
}

#[test]
fn malformed_page_commands_are_clap_errors() {
    for (argv, needle) in [
        (&["incidents", "--severity", "fatal"][..], "fatal"),
        (&["incidents", "--source", "nowhere"], "nowhere"),
        (&["incidents", "--limit", "0"], "0"),
        (&["incidents", "--limit", "101"], "101"),
        (&["incidents", "--limit", "many"], "many"),
        (&["incidents", "--detail", "everything"], "everything"),
        (&["channel", "reply"], "TEXT"),
        (&["channel", "reply", "hi", "--severity", "loud"], "loud"),
        (&["channel"], "reply"),
        (&["browser"], "start"),
        (&["browser", "fly"], "fly"),
        (&["browser", "start"], "--url"),
        (
            &["browser", "start", "--url", "http://x", "--profile", "mine"],
            "mine",
        ),
        (&["browser", "navigate"], "URL"),
        (&["browser", "click"], "--selector"),
        (
            &["browser", "click", "--selector", "#a", "--text", "b"],
            "--text",
        ),
        (&["browser", "fill", "--selector", "#q"], "VALUE"),
        (&["browser", "press"], "KEY"),
        (&["browser", "upload", "--selector", "#f"], "FILE"),
        (&["browser", "resize"], "PRESET"),
        (&["browser", "resize", "huge"], "huge"),
        (&["browser", "resize", "--width", "400"], "--height"),
        (
            &[
                "browser", "resize", "mobile", "--width", "1", "--height", "1",
            ],
            "--width",
        ),
        (
            &["browser", "screenshot", "--full-page", "--selector", "#a"],
            "--selector",
        ),
        (
            &["browser", "wait-for", "--url", "/x", "--text", "a"],
            "--text",
        ),
        (&["browser", "console", "--since", "-1"], "-1"),
        (&["snapshot", "baseline"], "NAME"),
        (
            &["snapshot", "compare", "home", "--diff-threshold", "2"],
            "fraction",
        ),
        (
            &["snapshot", "compare", "home", "--diff-threshold", "NaN"],
            "fraction",
        ),
        (&["snapshot", "delete"], "NAME"),
        (&["snapshot", "rollback", "x"], "rollback"),
    ] {
        let e = parse_error(argv);
        assert!(e.contains(needle), "{argv:?}: {e}");
    }
}
