//! The CLI face of the tools: `agnt mcp`, `agnt daemon …` and one subcommand per tool (`agnt
//! detect`, `agnt run`, `agnt proc …`, `agnt proxy …`, `agnt proxylog`, `agnt currentpage`,
//! `agnt wait`). Each tool subcommand sends the same `tools/call` over the daemon socket that an
//! agent sends (starting the daemon if needed) and prints the result: a table or text for humans,
//! the `structuredContent` with `--json`. Like `cli`, this module prints to stdout.

#![allow(clippy::print_stdout)]

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::daemon::{self, client};

/// Options every tool subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Print the tool's structured result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Daemon socket (default: $AGNT_SOCKET, else $XDG_RUNTIME_DIR/agnt/agnt.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// The MCP, daemon and tool subcommands (flattened into the top-level `Command`).
#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// Serve MCP on stdio for an agent: a bridge to the per-user daemon (started if needed).
    Mcp {
        /// Run the tools in this process instead (no daemon; state dies with the process).
        #[arg(long)]
        standalone: bool,
        /// Daemon socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Control the per-user daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// Detect the project type, package manager and scripts.
    Detect {
        /// Directory (default: current).
        path: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Run a script (or, with --raw or after `--`, a command) as a supervised process.
    Run {
        /// Script name (see `agnt detect`).
        script: Option<String>,
        /// Process id (default: the script or program name).
        #[arg(long)]
        id: Option<String>,
        /// Project directory.
        #[arg(long)]
        path: Option<String>,
        /// background (default), foreground or foreground-raw.
        #[arg(long)]
        mode: Option<String>,
        /// Extra environment, KEY=VALUE (repeatable).
        #[arg(long, short = 'e', value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Foreground timeout (seconds or 2m).
        #[arg(long)]
        timeout: Option<String>,
        /// Treat the words after `--` as the command even when a script is named.
        #[arg(long)]
        raw: bool,
        /// Command after `--` (raw), or arguments appended to the script.
        #[arg(last = true)]
        cmd: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Inspect and control processes.
    Proc {
        #[command(subcommand)]
        action: ProcAction,
    },
    /// Manage instrumenting reverse proxies.
    Proxy {
        #[command(subcommand)]
        action: ProxyAction,
    },
    /// Read a proxy's traffic log.
    Proxylog {
        /// The proxy id.
        proxy_id: String,
        /// query (default), summary, stats, clear, get.
        #[arg(long)]
        action: Option<String>,
        /// Entry types, comma-separated (http,error,...).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// HTTP methods, comma-separated.
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// URL substring.
        #[arg(long)]
        url_pattern: Option<String>,
        /// Status codes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        status_codes: Vec<u16>,
        /// Only newer entries: 5m, 30s or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Only older entries.
        #[arg(long)]
        until: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long)]
        since_seq: Option<u64>,
        /// Maximum entries.
        #[arg(long)]
        limit: Option<u64>,
        /// summary: sections to expand, comma-separated.
        #[arg(long, value_delimiter = ',')]
        detail: Vec<String>,
        /// get: entry id.
        #[arg(long)]
        entry_id: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Inspect the browser page sessions seen by a proxy.
    Currentpage {
        /// The proxy id.
        proxy_id: String,
        /// list (default), get, summary, clear.
        #[arg(long)]
        action: Option<String>,
        /// Page session id (get, summary).
        #[arg(long)]
        session_id: Option<String>,
        /// summary: sections to expand, comma-separated.
        #[arg(long, value_delimiter = ',')]
        detail: Vec<String>,
        /// summary: items per section.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Wait for a log line, a port, an HTTP status or a proxylog entry.
    Wait {
        /// log, port, http or proxylog.
        #[arg(value_name = "FOR")]
        what: String,
        /// log: the process id.
        #[arg(long)]
        process_id: Option<String>,
        /// log: regex; proxylog: URL substring.
        #[arg(long)]
        pattern: Option<String>,
        /// port: the TCP port.
        #[arg(long)]
        port: Option<u16>,
        /// http: the URL.
        #[arg(long)]
        url: Option<String>,
        /// http: expected status.
        #[arg(long)]
        status: Option<u16>,
        /// proxylog: the proxy id.
        #[arg(long)]
        proxy_id: Option<String>,
        /// proxylog: entry types, comma-separated.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Seconds (or 2m); default 30.
        #[arg(long)]
        timeout: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// `agnt daemon …`.
#[derive(Debug, Subcommand)]
pub enum DaemonAction {
    /// Start the daemon (detached unless --foreground).
    Start {
        /// Run in this process (logs to stderr) instead of detaching.
        #[arg(long)]
        foreground: bool,
        /// Socket to serve.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Serve /healthz, /metrics and POST /mcp on 127.0.0.1:PORT (also $AGNT_HTTP_PORT).
        #[arg(long, value_name = "PORT")]
        http_port: Option<u16>,
    },
    /// Stop the daemon and everything it runs.
    Stop {
        #[command(flatten)]
        common: Common,
    },
    /// Show whether a daemon runs, its version, uptime and counters.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Stop the daemon (and its processes) and start this version.
    Restart {
        #[command(flatten)]
        common: Common,
    },
}

/// `agnt proc …`.
#[derive(Debug, Subcommand)]
pub enum ProcAction {
    /// List processes of this project (--global: all).
    List {
        #[arg(long)]
        global: bool,
        #[command(flatten)]
        common: Common,
    },
    /// One process's state.
    Status {
        process_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// A process's output.
    Output {
        process_id: String,
        /// stdout, stderr or combined.
        #[arg(long)]
        stream: Option<String>,
        #[arg(long)]
        tail: Option<u64>,
        #[arg(long)]
        head: Option<u64>,
        /// Regex.
        #[arg(long)]
        grep: Option<String>,
        /// Invert --grep.
        #[arg(long)]
        grep_v: bool,
        /// Offset from a previous read's next_offset.
        #[arg(long)]
        since: Option<u64>,
        #[arg(long)]
        max_bytes: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Stop a process.
    Stop {
        process_id: String,
        /// Kill now (no grace period).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Restart a process with the same command, env and cwd.
    Restart {
        process_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Kill whatever listens on a port.
    CleanupPort {
        port: u16,
        #[command(flatten)]
        common: Common,
    },
}

/// `agnt proxy …`.
#[derive(Debug, Subcommand)]
pub enum ProxyAction {
    /// Start a proxy in front of a dev server.
    Start {
        id: String,
        /// The dev server URL, e.g. http://localhost:3000.
        #[arg(long)]
        target: String,
        /// Listen port (default: stable, derived from the target; 0 = any).
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        max_log_size: Option<u64>,
        #[arg(long)]
        bind_address: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Stop a proxy.
    Stop {
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Restart a proxy on the same port.
    Restart {
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// A proxy's status.
    Status {
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// List proxies (--global: all projects).
    List {
        #[arg(long)]
        global: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run JavaScript in the page the proxy serves (`--api`: the `__devtool` overview;
    /// `--describe NAME`: one function's doc).
    Exec {
        /// The proxy id (not needed with --api or --describe).
        id: Option<String>,
        /// The JavaScript to run, e.g. `__devtool.auditAccessibility()`.
        code: Option<String>,
        /// Print the window.__devtool API overview instead of running code.
        #[arg(long = "api")]
        api: bool,
        /// Print one __devtool function's doc, e.g. `inspect`.
        #[arg(long, value_name = "NAME")]
        describe: Option<String>,
        /// Results whose JSON is longer are cut and saved whole to a file (default 16384).
        #[arg(long, value_name = "BYTES")]
        max_result_bytes: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
}

fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    let v = v.into();
    let empty = match &v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    };
    if !empty {
        m.insert(k.to_string(), v);
    }
}

fn timeout_value(t: Option<String>) -> Value {
    match t {
        None => Value::Null,
        Some(s) => s
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(Value::String(s)),
    }
}

/// Runs a tool subcommand.
pub fn run(cmd: ToolCommand) -> ExitCode {
    let mut a = Map::new();
    let (tool, common) = match cmd {
        ToolCommand::Mcp { standalone, socket } => {
            let r = if standalone {
                crate::daemon::bridge::standalone()
            } else {
                crate::daemon::bridge::bridge(&socket.unwrap_or_else(crate::paths::socket_path))
            };
            return match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("agnt mcp: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        ToolCommand::Daemon { action } => return daemon_cmd(action),
        ToolCommand::Detect { path, common } => {
            put(&mut a, "path", path);
            ("detect", common)
        }
        ToolCommand::Run {
            script,
            id,
            path,
            mode,
            env,
            timeout,
            raw,
            cmd,
            common,
        } => {
            let mut envs = Map::new();
            for kv in env {
                match kv.split_once('=') {
                    Some((k, v)) => {
                        envs.insert(k.into(), v.into());
                    }
                    None => {
                        eprintln!("agnt run: --env expects KEY=VALUE, got {kv:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            if raw || script.is_none() {
                let mut it = cmd.into_iter();
                put(&mut a, "raw", true);
                put(&mut a, "command", it.next());
                put(&mut a, "args", it.collect::<Vec<_>>());
                put(&mut a, "id", id.or(script));
            } else {
                put(&mut a, "script_name", script);
                put(&mut a, "args", cmd);
                put(&mut a, "id", id);
            }
            put(&mut a, "path", path);
            put(&mut a, "mode", mode);
            if !envs.is_empty() {
                a.insert("env".into(), Value::Object(envs));
            }
            put(&mut a, "timeout", timeout_value(timeout));
            ("run", common)
        }
        ToolCommand::Proc { action } => {
            let common = match action {
                ProcAction::List { global, common } => {
                    put(&mut a, "action", "list");
                    put(&mut a, "global", global);
                    common
                }
                ProcAction::Status { process_id, common } => {
                    put(&mut a, "action", "status");
                    put(&mut a, "process_id", process_id);
                    common
                }
                ProcAction::Output {
                    process_id,
                    stream,
                    tail,
                    head,
                    grep,
                    grep_v,
                    since,
                    max_bytes,
                    common,
                } => {
                    put(&mut a, "action", "output");
                    put(&mut a, "process_id", process_id);
                    put(&mut a, "stream", stream);
                    put(&mut a, "tail", tail);
                    put(&mut a, "head", head);
                    put(&mut a, "grep", grep);
                    put(&mut a, "grep_v", grep_v);
                    put(&mut a, "since", since);
                    put(&mut a, "max_bytes", max_bytes);
                    common
                }
                ProcAction::Stop {
                    process_id,
                    force,
                    common,
                } => {
                    put(&mut a, "action", "stop");
                    put(&mut a, "process_id", process_id);
                    put(&mut a, "force", force);
                    common
                }
                ProcAction::Restart { process_id, common } => {
                    put(&mut a, "action", "restart");
                    put(&mut a, "process_id", process_id);
                    common
                }
                ProcAction::CleanupPort { port, common } => {
                    put(&mut a, "action", "cleanup_port");
                    put(&mut a, "port", port);
                    common
                }
            };
            ("proc", common)
        }
        ToolCommand::Proxy { action } => {
            let common = match action {
                ProxyAction::Start {
                    id,
                    target,
                    port,
                    max_log_size,
                    bind_address,
                    common,
                } => {
                    put(&mut a, "action", "start");
                    put(&mut a, "id", id);
                    put(&mut a, "target_url", target);
                    put(&mut a, "port", port);
                    put(&mut a, "max_log_size", max_log_size);
                    put(&mut a, "bind_address", bind_address);
                    common
                }
                ProxyAction::Stop { id, common } => {
                    put(&mut a, "action", "stop");
                    put(&mut a, "id", id);
                    common
                }
                ProxyAction::Restart { id, common } => {
                    put(&mut a, "action", "restart");
                    put(&mut a, "id", id);
                    common
                }
                ProxyAction::Status { id, common } => {
                    put(&mut a, "action", "status");
                    put(&mut a, "id", id);
                    common
                }
                ProxyAction::List { global, common } => {
                    put(&mut a, "action", "list");
                    put(&mut a, "global", global);
                    common
                }
                ProxyAction::Exec {
                    id,
                    code,
                    api,
                    describe,
                    max_result_bytes,
                    common,
                } => {
                    put(&mut a, "action", "exec");
                    put(&mut a, "id", id);
                    put(&mut a, "code", code);
                    put(&mut a, "help", api);
                    put(&mut a, "describe", describe);
                    put(&mut a, "max_result_bytes", max_result_bytes);
                    common
                }
            };
            ("proxy", common)
        }
        ToolCommand::Proxylog {
            proxy_id,
            action,
            types,
            methods,
            url_pattern,
            status_codes,
            since,
            until,
            since_seq,
            limit,
            detail,
            entry_id,
            common,
        } => {
            put(&mut a, "proxy_id", proxy_id);
            put(&mut a, "action", action);
            put(&mut a, "types", types);
            put(&mut a, "methods", methods);
            put(&mut a, "url_pattern", url_pattern);
            put(&mut a, "status_codes", status_codes);
            put(&mut a, "since", since);
            put(&mut a, "until", until);
            put(&mut a, "since_seq", since_seq);
            put(&mut a, "limit", limit);
            put(&mut a, "detail", detail);
            put(&mut a, "entry_id", entry_id);
            ("proxylog", common)
        }
        ToolCommand::Currentpage {
            proxy_id,
            action,
            session_id,
            detail,
            limit,
            common,
        } => {
            put(&mut a, "proxy_id", proxy_id);
            put(&mut a, "action", action);
            put(&mut a, "session_id", session_id);
            put(&mut a, "detail", detail);
            put(&mut a, "limit", limit);
            ("currentpage", common)
        }
        ToolCommand::Wait {
            what,
            process_id,
            pattern,
            port,
            url,
            status,
            proxy_id,
            types,
            timeout,
            common,
        } => {
            put(&mut a, "for", what);
            put(&mut a, "process_id", process_id);
            put(&mut a, "pattern", pattern);
            put(&mut a, "port", port);
            put(&mut a, "url", url);
            put(&mut a, "status", status);
            put(&mut a, "proxy_id", proxy_id);
            put(&mut a, "types", types);
            put(&mut a, "timeout", timeout_value(timeout));
            ("wait", common)
        }
    };
    call_and_print(tool, Value::Object(a), &common)
}

/// A version-checked connection: the running daemon if one answers, else a freshly started one.
fn connect_checked(socket: &Path) -> crate::Result<client::Client> {
    client::Client::connect_checked(socket, client::caller_project())
}

fn socket_of(common: &Common) -> PathBuf {
    common
        .socket
        .clone()
        .unwrap_or_else(crate::paths::socket_path)
}

/// Calls a tool over the daemon socket (starting the daemon) and prints the result.
fn call_and_print(tool: &str, args: Value, common: &Common) -> ExitCode {
    let socket = socket_of(common);
    let result = connect_checked(&socket).and_then(|mut c| c.call_tool(tool, args));
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agnt {tool}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if result["isError"].as_bool().unwrap_or(false) {
        let msg = result["content"][0]["text"]
            .as_str()
            .unwrap_or("unknown error");
        if common.json {
            println!("{}", json!({"error": msg}));
        }
        eprintln!("agnt {tool}: {msg}");
        return ExitCode::FAILURE;
    }
    let v = &result["structuredContent"];
    if common.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        print!("{}", human(tool, v));
    }
    if tool == "wait" && v["matched"] == false {
        return ExitCode::FAILURE;
    }
    // A foreground run exits with the child's status.
    if tool == "run"
        && let Some(code) = v["exit_code"].as_i64().filter(|c| *c != 0)
    {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if tool == "run" && v["state"] == "failed" {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A left-aligned table.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// The human rendering of a tool result.
pub fn human(tool: &str, v: &Value) -> String {
    let rows = |key: &str, cols: &[&str]| -> Vec<Vec<String>> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| cols.iter().map(|c| cell(&x[*c])).collect())
                    .collect()
            })
            .unwrap_or_default()
    };
    if tool == "proc" && v.get("processes").is_some() {
        if v["count"] == 0 {
            return "no processes\n".into();
        }
        return table(
            &["ID", "STATE", "PID", "RUNTIME", "COMMAND"],
            &rows("processes", &["id", "summary", "pid", "runtime", "command"]),
        );
    }
    if tool == "proc" && v.get("output").is_some() {
        let mut s = v["output"].as_str().unwrap_or("").to_string();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        return s;
    }
    if tool == "proxy" && v.get("proxies").is_some() {
        if v["count"] == 0 {
            return "no proxies\n".into();
        }
        return table(
            &["ID", "URL", "TARGET", "REQUESTS"],
            &rows("proxies", &["id", "url", "target_url", "total_requests"]),
        );
    }
    if tool == "detect" {
        let mut s = format!("type: {}\n", cell(&v["type"]));
        if let Some(pm) = v["package_manager"].as_str() {
            s.push_str(&format!("package manager: {pm}\n"));
        }
        s.push_str(&table(
            &["SCRIPT", "COMMAND"],
            &rows("scripts", &["name", "command"]),
        ));
        return s;
    }
    if tool == "proxylog" && v.get("entries").is_some() {
        let mut out = String::new();
        for e in v["entries"].as_array().into_iter().flatten() {
            let d = &e["data"];
            let what = if e["type"] == "http" {
                format!(
                    "{} {} {}",
                    cell(&d["method"]),
                    cell(&d["status_code"]),
                    cell(&d["url"])
                )
            } else {
                d.get("message").map(cell).unwrap_or_else(|| d.to_string())
            };
            out.push_str(&format!(
                "{:>5} {} {:<11} {}\n",
                cell(&e["seq"]),
                cell(&e["timestamp"]),
                cell(&e["type"]),
                what
            ));
        }
        if out.is_empty() {
            out.push_str("no entries\n");
        }
        return out;
    }
    if tool == "run" {
        let id = cell(&v["process_id"]);
        if v.get("exit_code").is_some() {
            let mut s = String::new();
            for k in ["stdout", "stderr"] {
                if let Some(t) = v[k].as_str().filter(|t| !t.is_empty()) {
                    s.push_str(t);
                    if !t.ends_with('\n') {
                        s.push('\n');
                    }
                }
            }
            s.push_str(&format!(
                "{id}: {} in {}\n",
                cell(&v["summary"]),
                cell(&v["runtime"])
            ));
            return s;
        }
        let how = if v["reused"] == true {
            "already running"
        } else {
            "started"
        };
        return format!(
            "{id} {how} (pid {}): {}\n",
            cell(&v["pid"]),
            cell(&v["command"])
        );
    }
    if let Some(m) = v.get("message").and_then(Value::as_str) {
        return format!("{m}\n");
    }
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn daemon_cmd(action: DaemonAction) -> ExitCode {
    match action {
        DaemonAction::Start {
            foreground,
            socket,
            http_port,
        } => {
            let mut opts = daemon::DaemonOptions::from_env();
            if let Some(s) = socket {
                opts.socket = s;
            }
            if http_port.is_some() {
                opts.http_port = http_port;
            }
            if foreground {
                return match daemon::run(opts) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("agnt daemon: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            if client::probe(&opts.socket, Duration::from_secs(2)).is_some() {
                println!("agnt daemon already running on {}", opts.socket.display());
                return ExitCode::SUCCESS;
            }
            match client::ensure_daemon(&opts.socket) {
                Ok(()) => {
                    println!("agnt daemon started on {}", opts.socket.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("agnt daemon: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        DaemonAction::Stop { common } => stop(&socket_of(&common), common.json),
        DaemonAction::Status { common } => {
            let socket = socket_of(&common);
            let info = client::Client::connect(&socket, PathBuf::from("/"))
                .and_then(|mut c| c.call_tool("daemon", json!({"action": "status"})));
            match info {
                Ok(r) => {
                    let v = &r["structuredContent"];
                    if common.json {
                        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
                    } else {
                        println!(
                            "agnt daemon {} running (pid {}, up {}) on {}\nprocesses: {} active, {} started; proxies: {} active; clients: {}",
                            cell(&v["version"]),
                            cell(&v["pid"]),
                            cell(&v["uptime"]),
                            socket.display(),
                            cell(&v["process_info"]["active"]),
                            cell(&v["process_info"]["total_started"]),
                            cell(&v["proxy_info"]["active"]),
                            cell(&v["client_count"]),
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(_) => {
                    if common.json {
                        println!("{}", json!({"running": false, "socket_path": socket}));
                    } else {
                        println!("agnt daemon not running ({})", socket.display());
                    }
                    ExitCode::from(3)
                }
            }
        }
        DaemonAction::Restart { common } => {
            let socket = socket_of(&common);
            let code = stop(&socket, false);
            if code != ExitCode::SUCCESS {
                return code;
            }
            match client::ensure_daemon(&socket) {
                Ok(()) => {
                    println!(
                        "agnt daemon {} started on {}",
                        env!("CARGO_PKG_VERSION"),
                        socket.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("agnt daemon: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Asks the daemon to shut down and waits until its socket is gone.
fn stop(socket: &Path, json_out: bool) -> ExitCode {
    let Ok(mut c) = client::Client::connect(socket, PathBuf::from("/")) else {
        if json_out {
            println!("{}", json!({"running": false, "stopped": false}));
        } else {
            println!("agnt daemon not running");
        }
        return ExitCode::SUCCESS;
    };
    let pid = c
        .call_tool("daemon", json!({"action": "info"}))
        .ok()
        .and_then(|v| v["structuredContent"]["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .or_else(|| {
            std::fs::read_to_string(daemon::pid_path(socket))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(0);
    match c.call_tool("daemon", json!({"action": "shutdown"})) {
        Ok(_) => {}
        // We asked it to go: a daemon that closes the connection before its answer arrives is
        // doing what we asked, as long as it then exits (checked below).
        Err(crate::Error::DaemonClosed) if pid > 0 => {
            log::debug!("daemon closed the connection after the shutdown request");
        }
        Err(e) => {
            eprintln!("agnt daemon stop: {e}");
            return ExitCode::FAILURE;
        }
    }
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        // Wait for that daemon process to exit (a bridge may already have started the next one).
        if !pid_alive(pid) {
            if json_out {
                println!("{}", json!({"running": false, "stopped": true}));
            } else {
                println!("agnt daemon stopped");
            }
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("agnt daemon stop: the daemon did not exit within 15s");
    ExitCode::FAILURE
}

/// Whether `pid` is a live (non-zombie) process.
fn pid_alive(pid: i32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(true)
}
