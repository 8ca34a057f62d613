//! The CLI argument → tool argument mapping: each subcommand's argv must produce exactly the
//! `tools/call` an agent would send, and malformed input must be a clap error, not a panic.

use clap::Parser;
use serde_json::{Value, json};

use super::{Cli, Command};

mod page;

/// The `{"tool", "arguments"}` a tool subcommand's argv sends.
fn call(argv: &[&str]) -> Value {
    let cli = Cli::try_parse_from(std::iter::once("agnt").chain(argv.iter().copied()))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Tool(cmd) = cli.command else {
        panic!("{argv:?} is not a tool subcommand");
    };
    let (tool, arguments) = cmd.call().unwrap();
    json!({"tool": tool, "arguments": arguments})
}

fn check(argv: &[&str], tool: &str, arguments: Value) {
    assert_eq!(
        call(argv),
        json!({"tool": tool, "arguments": arguments}),
        "{argv:?}"
    );
}

fn parse_error(argv: &[&str]) -> String {
    match Cli::try_parse_from(std::iter::once("agnt").chain(argv.iter().copied())) {
        Ok(cli) => panic!("{argv:?} parsed: {cli:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn detect() {
    check(&["detect"], "detect", json!({}));
    check(
        &["detect", "web", "--json"],
        "detect",
        json!({"path": "web"}),
    );
}

#[test]
fn run_raw_script_env_and_timeout() {
    check(
        &["run", "--", "python3", "-m", "http.server"],
        "run",
        json!({"raw": true, "command": "python3", "args": ["-m", "http.server"]}),
    );
    check(
        &["run", "dev", "--", "--port", "3000"],
        "run",
        json!({"script_name": "dev", "args": ["--port", "3000"]}),
    );
    check(
        &["run", "--raw", "web", "--", "sleep", "1"],
        "run",
        json!({"raw": true, "command": "sleep", "args": ["1"], "id": "web"}),
    );
    check(
        &[
            "run",
            "test",
            "--id",
            "t",
            "--path",
            "/p",
            "--mode",
            "foreground",
            "-e",
            "A=1",
            "--env",
            "B=x=y",
            "-e",
            "A=2",
            "--timeout",
            "30",
            "--socket",
            "/s",
            "--json",
        ],
        "run",
        json!({"script_name": "test", "id": "t", "path": "/p", "mode": "foreground",
               "env": {"A": "2", "B": "x=y"}, "timeout": 30.0}),
    );
    check(
        &[
            "run",
            "--mode",
            "foreground",
            "--timeout",
            "2m",
            "--",
            "make",
        ],
        "run",
        json!({"raw": true, "command": "make", "mode": "foreground", "timeout": "2m"}),
    );
    check(&["run", "--raw"], "run", json!({"raw": true}));
}

#[test]
fn proc_actions() {
    check(&["proc", "list"], "proc", json!({"action": "list"}));
    check(
        &["proc", "list", "--global", "--json"],
        "proc",
        json!({"action": "list", "global": true}),
    );
    check(
        &["proc", "status", "web"],
        "proc",
        json!({"action": "status", "process_id": "web"}),
    );
    check(
        &["proc", "output", "web"],
        "proc",
        json!({"action": "output", "process_id": "web"}),
    );
    check(
        &[
            "proc",
            "output",
            "web",
            "--stream",
            "stderr",
            "--tail",
            "5",
            "--head",
            "9",
            "--grep",
            "err",
            "--grep-v",
            "--since",
            "10",
            "--max-bytes",
            "100",
        ],
        "proc",
        json!({"action": "output", "process_id": "web", "stream": "stderr", "tail": 5, "head": 9,
               "grep": "err", "grep_v": true, "since": 10, "max_bytes": 100}),
    );
    check(
        &["proc", "stop", "web", "--force"],
        "proc",
        json!({"action": "stop", "process_id": "web", "force": true}),
    );
    check(
        &["proc", "stop", "web"],
        "proc",
        json!({"action": "stop", "process_id": "web"}),
    );
    check(
        &["proc", "restart", "web"],
        "proc",
        json!({"action": "restart", "process_id": "web"}),
    );
    check(
        &["proc", "cleanup-port", "3000"],
        "proc",
        json!({"action": "cleanup_port", "port": 3000}),
    );
    check(
        &["proc", "resolve-conflict", "web"],
        "proc",
        json!({"action": "resolve_conflict", "process_id": "web"}),
    );
}

#[test]
fn proxy_actions() {
    check(
        &["proxy", "start", "app", "--target", "http://localhost:3000"],
        "proxy",
        json!({"action": "start", "id": "app", "target_url": "http://localhost:3000"}),
    );
    check(
        &[
            "proxy",
            "start",
            "app",
            "--target",
            "http://x",
            "--port",
            "0",
            "--max-log-size",
            "50",
            "--bind-address",
            "0.0.0.0",
        ],
        "proxy",
        json!({"action": "start", "id": "app", "target_url": "http://x", "port": 0,
               "max_log_size": 50, "bind_address": "0.0.0.0"}),
    );
    check(
        &[
            "proxy",
            "start",
            "app",
            "--target",
            "http://x",
            "--redact",
            "false",
            "--redact-name",
            "otp",
            "--redact-name",
            "pin",
        ],
        "proxy",
        json!({"action": "start", "id": "app", "target_url": "http://x", "redact": false,
               "redact_names": ["otp", "pin"]}),
    );
    for verify in [true, false] {
        check(
            &[
                "proxy",
                "start",
                "app",
                "--target",
                "https://x",
                "--verify-tls",
                &verify.to_string(),
            ],
            "proxy",
            json!({"action": "start", "id": "app", "target_url": "https://x",
                   "verify_tls": verify}),
        );
    }
    for action in ["stop", "restart", "status"] {
        check(
            &["proxy", action, "app"],
            "proxy",
            json!({"action": action, "id": "app"}),
        );
    }
    check(&["proxy", "list"], "proxy", json!({"action": "list"}));
    check(
        &["proxy", "list", "--global"],
        "proxy",
        json!({"action": "list", "global": true}),
    );
    check(
        &[
            "proxy",
            "exec",
            "app",
            "document.title",
            "--max-result-bytes",
            "300",
        ],
        "proxy",
        json!({"action": "exec", "id": "app", "code": "document.title", "max_result_bytes": 300}),
    );
    check(
        &["proxy", "exec", "--api"],
        "proxy",
        json!({"action": "exec", "help": true}),
    );
    check(
        &["proxy", "exec", "--describe", "inspect"],
        "proxy",
        json!({"action": "exec", "describe": "inspect"}),
    );
}

#[test]
fn proxylog_and_currentpage() {
    check(&["proxylog", "app"], "proxylog", json!({"proxy_id": "app"}));
    check(
        &[
            "proxylog",
            "app",
            "--action",
            "query",
            "--types",
            "http,error",
            "--methods",
            "GET",
            "--url-pattern",
            "/api",
            "--status-codes",
            "404,500",
            "--since",
            "5m",
            "--until",
            "1m",
            "--since-seq",
            "7",
            "--limit",
            "20",
        ],
        "proxylog",
        json!({"proxy_id": "app", "action": "query", "types": ["http", "error"],
               "methods": ["GET"], "url_pattern": "/api", "status_codes": [404, 500],
               "since": "5m", "until": "1m", "since_seq": 7, "limit": 20}),
    );
    check(
        &[
            "proxylog",
            "app",
            "--action",
            "summary",
            "--detail",
            "errors,http",
        ],
        "proxylog",
        json!({"proxy_id": "app", "action": "summary", "detail": ["errors", "http"]}),
    );
    check(
        &["proxylog", "app", "--action", "get", "--entry-id", "req-1"],
        "proxylog",
        json!({"proxy_id": "app", "action": "get", "entry_id": "req-1"}),
    );
    check(
        &["currentpage", "app"],
        "currentpage",
        json!({"proxy_id": "app"}),
    );
    check(
        &[
            "currentpage",
            "app",
            "--action",
            "summary",
            "--session-id",
            "page-1",
            "--detail",
            "errors,interactions",
            "--limit",
            "3",
        ],
        "currentpage",
        json!({"proxy_id": "app", "action": "summary", "session_id": "page-1",
               "detail": ["errors", "interactions"], "limit": 3}),
    );
}

#[test]
fn wait_for() {
    check(
        &[
            "wait",
            "log",
            "--process-id",
            "web",
            "--pattern",
            r"port \d+",
            "--timeout",
            "30",
        ],
        "wait",
        json!({"for": "log", "process_id": "web", "pattern": r"port \d+", "timeout": 30.0}),
    );
    check(
        &["wait", "port", "--port", "3000", "--timeout", "0.2"],
        "wait",
        json!({"for": "port", "port": 3000, "timeout": 0.2}),
    );
    check(
        &[
            "wait",
            "http",
            "--url",
            "http://x/",
            "--status",
            "200",
            "--timeout",
            "2m",
        ],
        "wait",
        json!({"for": "http", "url": "http://x/", "status": 200, "timeout": "2m"}),
    );
    check(
        &[
            "wait",
            "http",
            "--url",
            "https://x/",
            "--verify-tls",
            "true",
        ],
        "wait",
        json!({"for": "http", "url": "https://x/", "verify_tls": true}),
    );
    check(
        &[
            "wait",
            "proxylog",
            "--proxy-id",
            "app",
            "--types",
            "error",
            "--pattern",
            "/api",
        ],
        "wait",
        json!({"for": "proxylog", "proxy_id": "app", "types": ["error"], "pattern": "/api"}),
    );
}

#[test]
fn malformed_input_is_a_clear_error() {
    let e = parse_error(&["run", "-e", "NOEQUALS", "--", "true"]);
    assert!(e.contains("KEY=VALUE") && e.contains("NOEQUALS"), "{e}");
    let e = parse_error(&["proc", "list", "--bogus"]);
    assert!(e.contains("--bogus"), "{e}");
    let e = parse_error(&["proc", "cleanup-port", "99999"]);
    assert!(e.contains("99999"), "{e}");
    let e = parse_error(&["proxy", "start", "app"]);
    assert!(e.contains("--target"), "{e}");
    let e = parse_error(&["proxylog", "app", "--status-codes", "4xx"]);
    assert!(e.contains("4xx"), "{e}");
    let e = parse_error(&[
        "proxy",
        "start",
        "a",
        "--target",
        "https://x",
        "--verify-tls",
        "yes",
    ]);
    assert!(e.contains("--verify-tls"), "{e}");
    let e = parse_error(&["wait"]);
    assert!(e.contains("FOR"), "{e}");
}

#[test]
fn non_tool_subcommands_still_parse() {
    for argv in [
        &["daemon", "status", "--json"][..],
        &["daemon", "start", "--foreground", "--http-port", "0"],
        &["mcp", "--standalone"],
        &["up", "--", "true"],
        &["completions", "bash"],
    ] {
        let cli = Cli::try_parse_from(std::iter::once("agnt").chain(argv.iter().copied()));
        assert!(cli.is_ok(), "{argv:?}: {cli:?}");
    }
}

#[test]
fn the_clap_definition_is_consistent() {
    // Catches conflicting names, groups and `requires` that point at nothing.
    <Cli as clap::CommandFactory>::command().debug_assert();
}
