//! The MCP protocol through `agnt mcp --standalone` (tools in-process): negotiation, tool
//! listing, framing faults (bad JSON, non-UTF-8, a 10 MB line) that leave the connection
//! working, bad input for every tool, cancellation, progress, concurrent calls, foreground runs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon::{Env, McpChild};

fn standalone() -> (Env, McpChild) {
    let env = Env::new();
    let m = McpChild::spawn(&env, &["--standalone"]);
    (env, m)
}

#[test]
fn initialize_negotiates_and_lists_tools_with_schemas() {
    let (_env, mut m) = standalone();
    for (asked, want) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let r = m.rpc.request("initialize", json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
        assert_eq!(r["result"]["protocolVersion"], want, "{r}");
        assert_eq!(r["result"]["serverInfo"]["name"], "agnt");
        assert!(r["result"]["capabilities"]["tools"].is_object());
    }
    let d = m
        .rpc
        .request("server/discover", json!({"_meta": {"anything": 1}}));
    assert!(
        d["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    let r = m
        .rpc
        .request("tools/list", json!({"_meta": {"progressToken": 1}}));
    let tools = r["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "detect",
            "run",
            "proc",
            "proxy",
            "proxylog",
            "currentpage",
            "wait",
            "browser",
            "snapshot",
            "get_incidents",
            "channel_reply",
            "daemon"
        ]
    );
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(t["outputSchema"]["type"], "object");
    }
    assert_eq!(m.rpc.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn framing_faults_get_errors_and_the_connection_keeps_working() {
    let (_env, mut m) = standalone();
    m.rpc.send_raw(b"{this is not json\n");
    let r = m.rpc.response();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert!(r["id"].is_null());
    m.rpc
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\xfe\"}\n");
    let r = m.rpc.response();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    let mut big = Vec::with_capacity(10 * 1024 * 1024 + 64);
    big.extend_from_slice(
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{\"pad\":\"",
    );
    big.resize(10 * 1024 * 1024, b'a');
    big.extend_from_slice(b"\"}}\n");
    m.rpc.send_raw(&big);
    let r = m.rpc.response();
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("limit"));
    m.rpc.send_raw(b"[1,2]\n");
    assert_eq!(m.rpc.response()["error"]["code"], -32600);
    m.rpc.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":3}\n");
    assert_eq!(m.rpc.response()["error"]["code"], -32600);
    let r = m.rpc.request("nope/nothing", json!({}));
    assert_eq!(r["error"]["code"], -32601);
    let r = m.rpc.request("initialize", json!({"capabilities": {}}));
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(m.rpc.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn bad_input_for_every_tool_names_the_fix() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    let r = m
        .rpc
        .request("tools/call", json!({"name": "nosuchtool", "arguments": {}}));
    assert_eq!(r["error"]["code"], -32602);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("available tools: detect, run")
    );
    let r = m.rpc.request("tools/call", json!({"arguments": {}}));
    assert_eq!(r["error"]["code"], -32602);

    let tools = m.rpc.request("tools/list", json!({}))["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    for t in &tools {
        let name = t["name"].as_str().unwrap();
        let schema = &t["inputSchema"];
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        // A valid base argument set so only the fault under test fails.
        let mut base = serde_json::Map::new();
        for r in &required {
            let v = match schema["properties"][r]["enum"].as_array() {
                Some(e) => e[0].clone(),
                None => json!("x"),
            };
            base.insert(r.clone(), v);
        }
        let with = |k: &str, v: Value| {
            let mut a = base.clone();
            a.insert(k.into(), v);
            Value::Object(a)
        };
        // Unknown parameter.
        let msg = m.rpc.err(name, with("bogus_param", json!(1)));
        assert!(
            msg.contains("unknown parameter \"bogus_param\"") && msg.contains("valid parameters"),
            "{name}: {msg}"
        );
        // Wrong type for every declared property.
        for (k, p) in schema["properties"].as_object().unwrap() {
            let wrong = match p["type"].as_str() {
                Some("string") => json!(12),
                Some("integer") | Some("number") => json!("twelve"),
                Some("boolean") => json!("yes"),
                Some("array") => json!({"a": 1}),
                Some("object") => json!([1]),
                _ => json!({"weird": true}),
            };
            let msg = m.rpc.err(name, with(k, wrong));
            assert!(
                msg.contains(&format!("{k:?} must be of type")),
                "{name}.{k}: {msg}"
            );
        }
        // Unknown action / enum value.
        if let Some(actions) = schema["properties"]["action"]["enum"].as_array() {
            let msg = m.rpc.err(name, with("action", json!("fly")));
            let first = actions[0].as_str().unwrap();
            assert!(
                msg.contains("valid values") && msg.contains(first),
                "{name}: {msg}"
            );
        }
        // Missing required parameters.
        for r in &required {
            let mut a = base.clone();
            a.remove(r);
            let msg = m.rpc.err(name, Value::Object(a));
            assert!(
                msg.contains(&format!("missing required parameter {r:?}")),
                "{name}: {msg}"
            );
        }
    }
    // Action-specific required parameters.
    for (tool, args, want) in [
        ("proc", json!({"action": "status"}), "process_id"),
        ("proc", json!({"action": "cleanup_port"}), "port"),
        ("proxy", json!({"action": "start", "id": "a"}), "target_url"),
        ("proxy", json!({"action": "stop"}), "\"id\""),
        ("proxy", json!({"action": "exec", "id": "a"}), "code"),
        ("run", json!({"raw": true}), "command"),
        ("run", json!({}), "script_name"),
        ("wait", json!({"for": "port"}), "port"),
        ("wait", json!({"for": "http"}), "url"),
        ("wait", json!({"for": "log"}), "process_id"),
    ] {
        let msg = m.rpc.err(tool, args.clone());
        assert!(msg.contains(want), "{tool} {args}: {msg}");
    }
    let msg = m.rpc.err("detect", json!({"path": "/definitely/not/here"}));
    assert!(msg.contains("/definitely/not/here"), "{msg}");
    let msg = m.rpc.err(
        "proc",
        json!({"action": "output", "process_id": "x", "grep": "("}),
    );
    assert!(msg.contains("not found"), "{msg}");
    let msg = m.rpc.err("wait", json!({"for": "http", "url": "ftp://x"}));
    assert!(msg.contains("invalid url"), "{msg}");
    let msg = m.rpc.err(
        "wait",
        json!({"for": "port", "port": 1, "timeout": "forever"}),
    );
    assert!(msg.contains("invalid timeout"), "{msg}");
}

#[test]
fn cancel_stops_a_waiting_call_while_other_calls_proceed() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slow = m.rpc.start(
        "tools/call",
        json!({"name": "wait", "arguments": {"for": "port", "port": port, "timeout": 120}, "_meta": {"progressToken": "tok"}}),
    );
    // Another call answers while the first waits.
    let t = Instant::now();
    assert_eq!(m.rpc.request("ping", json!({}))["result"], json!({}));
    let info = m.rpc.ok("daemon", json!({}));
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(t.elapsed() < Duration::from_secs(20));
    // Progress arrives for the waiting call.
    let got_progress = crate::support::wait_until(Duration::from_secs(20), || {
        if let Some(v) = m.rpc.try_recv(Duration::from_millis(100)) {
            m.rpc.notifications.push(v);
        }
        m.rpc.notifications.iter().any(|n| {
            n["method"] == "notifications/progress" && n["params"]["progressToken"] == "tok"
        })
    });
    assert!(got_progress, "{:?}", m.rpc.notifications);
    // A second call reusing the running call's id is refused; the first one is unaffected.
    m.rpc.send(&json!({"jsonrpc": "2.0", "id": slow, "method": "tools/call", "params": {"name": "daemon", "arguments": {}}}));
    let dup = m.rpc.response();
    assert_eq!(dup["id"], slow);
    assert_eq!(dup["error"]["code"], -32600, "{dup}");
    let t = Instant::now();
    m.rpc.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": slow, "reason": "test"}}));
    let r = m.rpc.response();
    assert_eq!(r["id"], slow);
    assert_eq!(r["result"]["isError"], true);
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        t.elapsed()
    );
}

#[test]
fn wait_times_out_with_what_it_last_saw() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let v = m
        .rpc
        .ok("wait", json!({"for": "port", "port": port, "timeout": 0.3}));
    assert_eq!(v["matched"], false);
    assert_eq!(v["timed_out"], true);
    assert!(v["last_seen"]["error"].is_string(), "{v}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let v = m
        .rpc
        .ok("wait", json!({"for": "port", "port": port, "timeout": 10}));
    assert_eq!(v["matched"], true);
}

#[test]
fn run_base_env_replaces_the_servers_environment() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    // HOME is in the server's environment, not in base_env: the process must not see it.
    let path = std::env::var("PATH").unwrap();
    let v = m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "echo \"$AGNT_T_BASE $AGNT_T_BOTH ${HOME-unset}\""], "mode": "foreground-raw",
            "base_env": {"PATH": path, "AGNT_T_BASE": "base", "AGNT_T_BOTH": "base"}, "env": {"AGNT_T_BOTH": "call"}}),
    );
    assert_eq!(v["stdout"], "base call unset\n", "{v}");
}

#[test]
fn foreground_runs_return_exit_code_runtime_and_output() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    let v = m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "echo out; echo err >&2; exit 3"], "mode": "foreground-raw", "env": {"X": "1"}}),
    );
    assert_eq!(v["exit_code"], 3, "{v}");
    assert_eq!(v["stdout"], "out\n");
    assert_eq!(v["stderr"], "err\n");
    assert!(v["runtime"].as_str().unwrap().ends_with('s'));
    let v = m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sh", "args": ["-c", "echo $AGNT_T_VAR"], "id": "envy", "mode": "foreground-raw", "env": {"AGNT_T_VAR": "hello"}}),
    );
    assert_eq!(v["stdout"], "hello\n");
    let v = m.rpc.ok("run", json!({"raw": true, "command": "sleep", "args": ["30"], "id": "slow", "mode": "foreground", "timeout": 0.5}));
    assert_eq!(v["timed_out"], true, "{v}");
    // A foreground run never attaches to (and so never stops) a process someone else started.
    m.rpc.ok(
        "run",
        json!({"raw": true, "command": "sleep", "args": ["30"], "id": "bg"}),
    );
    let e = m.rpc.err("run", json!({"raw": true, "command": "sleep", "args": ["30"], "id": "bg", "mode": "foreground", "timeout": 0.5}));
    assert!(e.contains("already running"), "{e}");
    assert_eq!(
        m.rpc
            .ok("proc", json!({"action": "status", "process_id": "bg"}))["state"],
        "running"
    );
    m.rpc.ok(
        "proc",
        json!({"action": "stop", "process_id": "bg", "force": true}),
    );
    // detect + script resolution through package.json.
    std::fs::write(
        env.project.join("package.json"),
        r#"{"name":"demo","scripts":{"hello":"echo hi-from-script"}}"#,
    )
    .unwrap();
    let d = m.rpc.ok("detect", json!({}));
    assert_eq!(d["type"], "node");
    assert!(
        d["script_names"]
            .as_array()
            .unwrap()
            .contains(&json!("hello"))
    );
    let v = m.rpc.ok(
        "run",
        json!({"script_name": "hello", "mode": "foreground-raw"}),
    );
    assert!(
        v["stdout"].as_str().unwrap().contains("hi-from-script\n"),
        "{v}"
    );
    let msg = m.rpc.err("run", json!({"script_name": "nope"}));
    assert!(msg.contains("Available: hello"), "{msg}");
}

#[test]
fn wait_fails_at_once_when_its_process_exits_first() {
    let (env, mut m) = standalone();
    m.rpc.initialize(&env.project);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    // One process has exited before the wait begins, one exits while it waits.
    for (id, script) in [
        ("doomed", "echo boom; exit 3"),
        ("late", "sleep 1; echo boom; exit 3"),
    ] {
        for args in [
            json!({"for": "port", "port": port}),
            json!({"for": "http", "url": url}),
            json!({"for": "log", "pattern": "never printed"}),
        ] {
            m.rpc.ok(
                "run",
                json!({"raw": true, "command": "sh", "args": ["-c", script], "id": id}),
            );
            let mut args = args;
            args["process_id"] = id.into();
            args["timeout"] = 60.into();
            // Well before the wait's own 60 s timeout.
            let r = response_within(&mut m, &args, Duration::from_secs(20));
            assert_eq!(r["result"]["isError"], true, "{args} -> {r}");
            let text = r["result"]["content"][0]["text"].as_str().unwrap();
            assert!(
                text.contains(&format!("process {id:?} ended"))
                    && text.contains("exit 3")
                    && text.contains("boom"),
                "{args} -> {text}"
            );
        }
    }
    let e = m.rpc.err(
        "wait",
        json!({"for": "port", "port": port, "process_id": "ghost", "timeout": 60}),
    );
    assert!(e.contains("not found"), "{e}");
}

/// Calls `wait` with `args` and returns its response, which must come within `limit`.
fn response_within(m: &mut McpChild, args: &Value, limit: Duration) -> Value {
    let id = m
        .rpc
        .start("tools/call", json!({"name": "wait", "arguments": args}));
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = m
            .rpc
            .try_recv(left)
            .unwrap_or_else(|| panic!("wait {args} did not return within {limit:?}"));
        if v["id"] == id {
            return v;
        }
    }
}
