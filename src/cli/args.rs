//! The clap types of the `agnt` subcommands below the top level. A tool subcommand's type also
//! derives `Serialize`, and serializing it yields exactly the `tools/call` an agent would send:
//! `{"tool": NAME, "arguments": {...}}` (see [`ToolCommand::call`]). CLI-only options (`--json`,
//! `--socket`) are skipped; the few conversions clap cannot express as renames live here too
//! (`--env KEY=VALUE`, `--timeout 30` vs `2m`, `run`'s raw vs script mode). Nothing here does IO.

use std::{collections::BTreeMap, path::PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

mod page;
pub use page::{
    BrowserAction, ChannelAction, Element, IncidentsArgs, MaybeElement, Pick, ReplyArgs,
    SnapshotAction,
};

/// Options every tool subcommand takes.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Print the tool's structured result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Daemon socket (default: $AGNT_SOCKET, else $XDG_RUNTIME_DIR/agnt/agnt.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// One subcommand per tool; each sends one `tools/call` to the daemon.
#[derive(Debug, Subcommand, Serialize)]
#[serde(tag = "tool", content = "arguments", rename_all = "lowercase")]
pub enum ToolCommand {
    /// Detect the project type, package manager and scripts.
    Detect(DetectArgs),
    /// Run a script (or, with --raw or after `--`, a command) as a supervised process.
    Run(RunArgs),
    /// Inspect and control processes.
    #[command(subcommand)]
    Proc(ProcAction),
    /// Manage instrumenting reverse proxies.
    #[command(subcommand)]
    Proxy(ProxyAction),
    /// Read a proxy's traffic log.
    Proxylog(ProxylogArgs),
    /// Inspect the browser page sessions seen by a proxy.
    Currentpage(CurrentpageArgs),
    /// Wait for a log line, a port, an HTTP status or a proxylog entry.
    Wait(WaitArgs),
    /// What is broken now: page errors, failed requests, crashes, alert lines (newest first).
    #[serde(rename = "get_incidents")]
    Incidents(IncidentsArgs),
    /// Answer the user in the page.
    #[command(subcommand)]
    #[serde(rename = "channel_reply")]
    Channel(ChannelAction),
    /// Drive a headless Chromium through a proxy.
    #[command(subcommand)]
    Browser(BrowserAction),
    /// Visual baselines and pixel comparisons of pages.
    #[command(subcommand)]
    Snapshot(SnapshotAction),
}

/// `agnt detect`.
#[derive(Debug, Args, Serialize)]
pub struct DetectArgs {
    /// Directory (default: current).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
}

/// `agnt run`: a script by name, or (with `--raw`, or with no script) the command after `--`.
#[derive(Debug, Clone, Args, Serialize)]
#[serde(into = "RunCall")]
pub struct RunArgs {
    /// Script name (see `agnt detect`).
    pub script: Option<String>,
    /// Process id (default: the script or program name).
    #[arg(long)]
    pub id: Option<String>,
    /// Project directory.
    #[arg(long)]
    pub path: Option<String>,
    /// background (default), foreground or foreground-raw.
    #[arg(long)]
    pub mode: Option<String>,
    /// Extra environment, KEY=VALUE (repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Foreground timeout (seconds or 2m).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Timeout>,
    /// Treat the words after `--` as the command even when a script is named.
    #[arg(long)]
    pub raw: bool,
    /// Command after `--` (raw), or arguments appended to the script.
    #[arg(last = true)]
    pub cmd: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `agnt proc …`.
#[derive(Debug, Subcommand, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProcAction {
    /// List processes of this project (--global: all).
    List {
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        global: bool,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// One process's state.
    Status {
        process_id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// A process's output.
    Output {
        process_id: String,
        /// stdout, stderr or combined.
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        tail: Option<u64>,
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        head: Option<u64>,
        /// Regex.
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        grep: Option<String>,
        /// Invert --grep.
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        grep_v: bool,
        /// Offset from a previous read's next_offset.
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Stop a process.
    Stop {
        process_id: String,
        /// Kill now (no grace period).
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        force: bool,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Restart a process with the same command, env and cwd.
    Restart {
        process_id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Kill whatever listens on a port.
    CleanupPort {
        port: u16,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Answer a port conflict waiting for a decision (port-conflict prompt): kill the port's
    /// holder and restart the process once (`proc stop` declines instead).
    ResolveConflict {
        process_id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
}

/// `agnt proxy …`.
#[derive(Debug, Subcommand, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProxyAction {
    /// Start a proxy in front of a dev server.
    Start {
        id: String,
        /// The dev server URL, e.g. http://localhost:3000.
        #[arg(long)]
        #[serde(rename = "target_url")]
        target: String,
        /// Listen port (default: stable, derived from the target; 0 = any).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        max_log_size: Option<u64>,
        /// Listen address (default 127.0.0.1); anything else needs --allow-lan.
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        bind_address: Option<String>,
        /// Accept a non-loopback --bind-address: hosts on that network can reach the dev server.
        #[arg(long)]
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        allow_lan: bool,
        /// A Host name (besides localhost) the proxy accepts, e.g. myapp.test; repeatable.
        #[arg(long = "allowed-host", value_name = "HOST")]
        #[serde(rename = "allowed_hosts", skip_serializing_if = "Vec::is_empty")]
        allowed_hosts: Vec<String>,
        /// Hide secrets before they are logged (default true; `--redact false` = raw traffic).
        #[arg(long)]
        #[serde(skip_serializing_if = "Option::is_none")]
        redact: Option<bool>,
        /// One more name to treat as a secret (repeatable).
        #[arg(long = "redact-name")]
        #[serde(skip_serializing_if = "Vec::is_empty")]
        redact_names: Vec<String>,
        /// Check an https:// target's certificate (default: not on loopback, yes elsewhere).
        #[arg(long, value_name = "true|false")]
        #[serde(skip_serializing_if = "Option::is_none")]
        verify_tls: Option<bool>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Stop a proxy.
    Stop {
        id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Restart a proxy on the same port.
    Restart {
        id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// A proxy's status.
    Status {
        id: String,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// List proxies (--global: all projects).
    List {
        #[arg(long)]
        #[serde(skip_serializing_if = "is_false")]
        global: bool,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
    /// Run JavaScript in the page the proxy serves and print its value (`--api`: the
    /// `__devtool` overview; `--describe NAME`: one function's doc).
    Exec {
        /// The proxy id (not needed with --api or --describe).
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The JavaScript to run, e.g. `__devtool.auditAccessibility()`.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Print the window.__devtool API overview instead of running code.
        #[arg(long = "api")]
        #[serde(rename = "help", skip_serializing_if = "is_false")]
        api: bool,
        /// Print one __devtool function's doc, e.g. `inspect`.
        #[arg(long, value_name = "NAME")]
        #[serde(skip_serializing_if = "Option::is_none")]
        describe: Option<String>,
        /// Results whose JSON is longer are cut and saved whole to a file (default 16384).
        #[arg(long, value_name = "BYTES")]
        #[serde(skip_serializing_if = "Option::is_none")]
        max_result_bytes: Option<u64>,
        #[command(flatten)]
        #[serde(skip)]
        common: Common,
    },
}

/// `agnt proxylog`.
#[derive(Debug, Args, Serialize)]
pub struct ProxylogArgs {
    /// The proxy id.
    pub proxy_id: String,
    /// query (default), summary, stats, clear, get.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Entry types, comma-separated (http,error,...).
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// HTTP methods, comma-separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// URL substring.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_pattern: Option<String>,
    /// Status codes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status_codes: Vec<u16>,
    /// Only newer entries: 5m, 30s or RFC 3339.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only older entries.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Only entries after this sequence number.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_seq: Option<u64>,
    /// Maximum entries.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// summary: sections to expand, comma-separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// get: entry id.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
}

/// `agnt currentpage`.
#[derive(Debug, Args, Serialize)]
pub struct CurrentpageArgs {
    /// The proxy id.
    pub proxy_id: String,
    /// list (default), get, summary, clear.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Page session id (get, summary).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// summary: sections to expand, comma-separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// summary: items per section.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
}

/// `agnt wait FOR`.
#[derive(Debug, Args, Serialize)]
pub struct WaitArgs {
    /// log, port, http or proxylog.
    #[arg(value_name = "FOR")]
    #[serde(rename = "for")]
    pub what: String,
    /// log: the process id.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// log: regex; proxylog: URL substring.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// port: the TCP port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// http: the URL.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// http: expected status.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// http: check an https:// certificate (default: not on loopback, yes elsewhere).
    #[arg(long, value_name = "true|false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// proxylog: the proxy id.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_id: Option<String>,
    /// proxylog: entry types, comma-separated.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Seconds (or 2m); default 30.
    #[arg(long, value_parser = parse_timeout)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
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
        /// Serve /healthz, /metrics and POST /mcp on 127.0.0.1:PORT (also $AGNT_HTTP_PORT);
        /// every request but /healthz needs the bearer token `agnt daemon info` shows.
        #[arg(long, value_name = "PORT")]
        http_port: Option<u16>,
        /// A browser origin (e.g. http://localhost:5173) allowed to call the HTTP face;
        /// repeatable. Requests with any other Origin are refused.
        #[arg(long, value_name = "ORIGIN")]
        http_allow_origin: Vec<String>,
    },
    /// Stop the daemon and everything it runs.
    Stop {
        #[command(flatten)]
        common: Common,
    },
    /// Show whether a daemon runs, its version, uptime, counters and HTTP face.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Like status (HTTP face and its token included), and list the connected clients (kind,
    /// pid, connected for, idle for).
    Info {
        #[command(flatten)]
        common: Common,
    },
    /// Stop the daemon (and its processes) and start this version.
    Restart {
        #[command(flatten)]
        common: Common,
    },
}

/// A `--timeout`: a plain number is sent as seconds, anything else (`2m`) as the string the
/// tool parses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Timeout {
    Seconds(f64),
    Text(String),
}

impl ToolCommand {
    /// The tool's name and its `arguments`, exactly as an agent would send them.
    pub fn call(&self) -> serde_json::Result<(String, Value)> {
        let mut v = serde_json::to_value(self)?;
        let tool = v["tool"].as_str().unwrap_or_default().to_string();
        let args = v
            .get_mut("arguments")
            .map(Value::take)
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()));
        Ok((tool, args))
    }

    /// The CLI-only options of the subcommand.
    pub fn common(&self) -> &Common {
        match self {
            ToolCommand::Detect(a) => &a.common,
            ToolCommand::Run(a) => &a.common,
            ToolCommand::Proc(
                ProcAction::List { common, .. }
                | ProcAction::Status { common, .. }
                | ProcAction::Output { common, .. }
                | ProcAction::Stop { common, .. }
                | ProcAction::Restart { common, .. }
                | ProcAction::CleanupPort { common, .. }
                | ProcAction::ResolveConflict { common, .. },
            ) => common,
            ToolCommand::Proxy(
                ProxyAction::Start { common, .. }
                | ProxyAction::Stop { common, .. }
                | ProxyAction::Restart { common, .. }
                | ProxyAction::Status { common, .. }
                | ProxyAction::List { common, .. }
                | ProxyAction::Exec { common, .. },
            ) => common,
            ToolCommand::Proxylog(a) => &a.common,
            ToolCommand::Currentpage(a) => &a.common,
            ToolCommand::Wait(a) => &a.common,
            ToolCommand::Incidents(a) => &a.common,
            ToolCommand::Channel(a) => a.common(),
            ToolCommand::Browser(a) => a.common(),
            ToolCommand::Snapshot(a) => a.common(),
        }
    }
}

/// The `run` tool's arguments: a script by name, or a raw command line.
#[derive(Serialize)]
struct RunCall {
    #[serde(skip_serializing_if = "is_false")]
    raw: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<Timeout>,
}

impl From<RunArgs> for RunCall {
    fn from(a: RunArgs) -> RunCall {
        // Without a script name, or with --raw, the words after `--` are the command; a script
        // name given with --raw becomes the default id.
        let (raw, command, script_name, args, id) = if a.raw || a.script.is_none() {
            let mut words = a.cmd.into_iter();
            let command = words.next();
            (true, command, None, words.collect(), a.id.or(a.script))
        } else {
            (false, None, a.script, a.cmd, a.id)
        };
        RunCall {
            raw,
            command,
            script_name,
            args,
            id,
            path: a.path,
            mode: a.mode,
            env: a.env.into_iter().collect(),
            timeout: a.timeout,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `--env KEY=VALUE` (the value may contain `=`; the key may not).
fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// `--timeout 30` (seconds) or `--timeout 2m` (passed on for the tool to parse).
fn parse_timeout(s: &str) -> Result<Timeout, String> {
    Ok(match s.parse::<f64>() {
        Ok(n) if n.is_finite() => Timeout::Seconds(n),
        _ => Timeout::Text(s.to_string()),
    })
}
