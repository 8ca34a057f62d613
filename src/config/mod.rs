//! `.agnt.kdl`: finding the project's config file and turning it into typed settings.
//!
//! The schema is the Go original's (KDL v1 files keep working through `kdl`'s `v1-fallback`):
//!
//! ```kdl
//! scripts {
//!     dev {
//!         run "npm run dev"            // or: command "npm" "run" "dev" / command "npm"; args "run" "dev"
//!         autostart true
//!         env { PORT "3000"; }
//!         cwd "web"                    // relative to the config file's directory
//!         url-matchers "Local:\\s+(\\S+)"
//!         ready "ready in"             // ours: a log regex; or ready-port 3000; or ready-url "http://..."
//!         ready-timeout 60             // seconds (default 60), or a string like "90s"
//!     }
//! }
//! proxies {
//!     app { target "http://localhost:3000"; port 12345; autostart true; max-log-size 1000; }
//!     api { target "http://localhost:8080"; response-timeout "5m"; stream-idle-timeout 3600; }
//!     web { script "dev"; }           // started when the script prints a localhost URL
//!     raw { target "http://localhost:4000"; redact false; }  // ours: keep secrets in the log
//!     tls { target "https://dev.example.test"; verify-tls false; }  // default: loopback only
//! }
//! alerts {                             // output lines that become `process_alert` incidents
//!     patterns { db-down { pattern "ECONNREFUSED .*:5432"; severity "error"; } }
//!     disable "node-uncaught"          // built-in patterns apply when none are configured
//! }
//! channel { events "panel" "crash" "incident"; rate 10; }   // pushes to agents, per minute
//! redact-names "otp" "pin"            // ours: more secret names, for every proxy (also per proxy)
//! ```
//!
//! Every key of the Go original's contract is read into the model (`project`, `hooks`, `toast`,
//! `depends-on`, `ports`, ...; see `sections.rs`), and `url-matchers` take its `{url}` placeholder.
//! Parsing does no IO beyond reading the one file; [`parse`] is pure. Unlike the original, `env`
//! and `cwd` are applied (see [`ScriptConfig::to_spec`]). A key we do not know is a warning with
//! its `file:line:col` (in [`Config::warnings`], and logged), never an error, so users' existing
//! files load; `ai { … }` (the original's terminal overlay) is accepted and ignored. A value of
//! the wrong type is an error naming the file, line and column.

mod script;
mod sections;

pub use script::ScriptConfig;

pub use sections::{
    DEFAULT_DEPENDENCY_TIMEOUT, Dependency, HooksConfig, PortConflict, ProjectConfig,
    TOAST_POSITIONS, ToastConfig,
};

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    time::Duration,
};

use kdl::{KdlDocument, KdlNode, KdlValue};

use crate::{Error, Result};

/// The config file's name.
pub const FILE_NAME: &str = ".agnt.kdl";

/// Default time `agnt up` waits for a script to become ready.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed `.agnt.kdl`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The directory holding it: the project root, and the base of relative `cwd`s.
    pub root: PathBuf,
    /// Scripts in file order.
    pub scripts: Vec<ScriptConfig>,
    /// Proxies in file order.
    pub proxies: Vec<ProxyEntry>,
    /// `alerts { ... }`: output patterns that raise incidents.
    pub alerts: AlertsConfig,
    /// `channel { ... }`: what is pushed to agents' sessions, and how often.
    pub channel: ChannelConfig,
    /// `project { name; type; port-conflict }`.
    pub project: ProjectConfig,
    /// `hooks { on-response { ... } }`.
    pub hooks: HooksConfig,
    /// `toast { ... }`.
    pub toast: ToastConfig,
    /// `file:line:col: ...` for each key that was ignored (unknown, or meaningless here).
    pub warnings: Vec<String>,
}

/// `alerts { enabled; patterns { ID { pattern; severity } }; disable "builtin-id" ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// `enabled false` turns every output pattern off.
    pub enabled: bool,
    /// Configured patterns, in file order; when empty, the built-in ones apply.
    pub patterns: Vec<AlertPattern>,
    /// Built-in pattern ids turned off.
    pub disable: Vec<String>,
    /// `batch-window` (default 3 s): how long alerts collect before delivery.
    pub batch_window: Duration,
    /// `dedupe-window` (default 60 s): how long a repeat is suppressed.
    pub dedupe_window: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            patterns: Vec::new(),
            disable: Vec::new(),
            batch_window: Duration::from_secs(3),
            dedupe_window: Duration::from_secs(60),
        }
    }
}

/// One output pattern: a regex (already checked) and the incident severity of a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPattern {
    pub id: String,
    pub pattern: String,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: String,
}

/// `channel { events "panel" "crash" "incident"; rate 10 }`: which events are pushed to agent
/// sessions and at most how many a minute (the rest fold into one summary line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelConfig {
    /// `None` = every kind.
    pub events: Option<Vec<String>>,
    /// `None` = the default (10 a minute); 0 = nothing is pushed.
    pub rate: Option<u32>,
}

/// Event kinds a `channel { events ... }` block may name.
pub const CHANNEL_EVENTS: &[&str] = &["panel", "crash", "incident"];

/// One entry of `proxies { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEntry {
    pub name: String,
    /// Fixed upstream URL (`target` or `url`).
    pub target: Option<String>,
    /// Or: the script whose printed localhost URL becomes the target.
    pub script: Option<String>,
    pub port: Option<u16>,
    pub autostart: bool,
    pub max_log_size: Option<usize>,
    /// `allowed-hosts "a.test" "b.test"`: extra `Host` names the proxy accepts.
    pub allowed_hosts: Vec<String>,
    /// `allow-lan true`: the opt-in to a non-loopback bind.
    pub allow_lan: bool,
    /// Redact secrets before logging (`redact false` turns it off). Default true.
    pub redact: bool,
    /// Extra secret names: the proxy's own `redact-names`, then the top-level ones.
    pub redact_names: Vec<String>,
    /// Deadline keys (unset: the proxy's defaults).
    pub deadlines: ProxyDeadlines,
    /// `url-pattern`: a regex (checked) a detected URL must match to become this proxy's target.
    pub url_pattern: Option<String>,
    /// `fallback-port`: target `http://localhost:PORT` when the script prints no URL in time.
    pub fallback_port: Option<u16>,
    /// `bind`: the listen address (default loopback).
    pub bind: Option<String>,
    /// `websocket`: the original's switch; upgrades are always proxied here.
    pub websocket: Option<bool>,
    /// `wait-for`: scripts whose readiness gates this proxy (the original's later key).
    pub wait_for: Vec<String>,
    /// `verify-tls`: check an `https://` target's certificate (unset: not on loopback, yes for
    /// other hosts).
    pub verify_tls: Option<bool>,
}

/// A proxy entry's deadline keys: seconds (`30`) or a duration (`"90s"`, `"5m"`); see the
/// proxy's `LIFECYCLE.md` for what each bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyDeadlines {
    /// `connect-timeout` (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// `response-timeout`: waiting for a response head (default 60 s).
    pub response_timeout: Option<Duration>,
    /// `body-timeout`: the body-progress window (default 30 s).
    pub body_timeout: Option<Duration>,
    /// `body-min-bytes`: what must move per window (default 1024).
    pub body_min_bytes: Option<u64>,
    /// `stream-idle-timeout`: WebSocket tunnels and event streams (default: no limit).
    pub stream_idle_timeout: Option<Duration>,
}

impl Config {
    /// A script by name.
    pub fn script(&self, name: &str) -> Option<&ScriptConfig> {
        self.scripts.iter().find(|s| s.name == name)
    }
}

/// Walks up from `start` to the filesystem root looking for `.agnt.kdl`.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Finds and loads the project's config: `Ok(None)` when there is none, and a broken file is an
/// error (every entry point reports it the same way: `agnt up`, `detect`, `run`, the daemon).
pub fn discover(start: &Path) -> Result<Option<Config>> {
    find(start).map(|p| load(&p)).transpose()
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("reading config", Some(path.to_path_buf()), e))?;
    parse(&text, path)
}

/// Parses config text; `path` names the file in errors and gives the root for relative `cwd`s.
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    let doc = KdlDocument::parse(text).map_err(|e| {
        let diag = e.diagnostics.first();
        let offset = diag.map_or(0, |d| d.span.offset());
        let mut message = diag
            .and_then(|d| d.message.clone())
            .unwrap_or_else(|| "invalid KDL".to_string());
        if let Some(help) = diag.and_then(|d| d.help.as_ref()) {
            message.push_str(&format!(" ({help})"));
        }
        let (line, column) = line_col(text, offset);
        Error::Config {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let cx = Cx {
        text,
        path,
        root: &root,
        warnings: RefCell::default(),
    };
    let mut config = Config {
        path: path.to_path_buf(),
        root: root.clone(),
        scripts: vec![],
        proxies: vec![],
        alerts: AlertsConfig::default(),
        channel: ChannelConfig::default(),
        project: ProjectConfig::default(),
        hooks: HooksConfig::default(),
        toast: ToastConfig::default(),
        warnings: Vec::new(),
    };
    let mut redact_names = Vec::new();
    for node in doc.nodes() {
        match node.name().value() {
            "scripts" => {
                for child in children(node) {
                    config.scripts.push(cx.script(child)?);
                }
            }
            "proxies" => {
                for child in children(node) {
                    config.proxies.push(cx.proxy(child)?);
                }
            }
            "alerts" => config.alerts = cx.alerts(node)?,
            "channel" => config.channel = cx.channel(node)?,
            "redact-names" => redact_names.extend(cx.strings(node)?),
            "project" => config.project = cx.project(node)?,
            "hooks" => config.hooks = cx.hooks(node)?,
            "toast" => config.toast = cx.toast(node)?,
            "ai" => log::info!(
                "{}: ignoring ai {{ ... }} (the Go original's terminal overlay; agents bring their own)",
                path.display()
            ),
            _ => cx.unknown(node, "the file"),
        }
    }
    config.warnings = cx.warnings.take();
    for proxy in &mut config.proxies {
        proxy.redact_names.extend(redact_names.iter().cloned());
    }
    let undefined = |what: String, script: &str| Error::Config {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("{what} names script {script:?}, which is not defined"),
    };
    for proxy in &config.proxies {
        if let Some(script) = &proxy.script
            && config.script(script).is_none()
        {
            return Err(undefined(format!("proxy {:?}", proxy.name), script));
        }
    }
    // A dependency that is not defined never becomes ready: the dependent starts anyway, as it
    // would after a dependency died (the original's rule), with this warning.
    let mut missing = Vec::new();
    for script in &config.scripts {
        for dep in &script.depends_on {
            if config.script(&dep.script).is_none() {
                let what = format!("script {:?} depends-on", script.name);
                missing.push(undefined(what, &dep.script).to_string());
            }
        }
    }
    config.warnings.extend(missing);
    Ok(config)
}

/// 1-based line and column of a byte offset (clamped to the text).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn children(node: &KdlNode) -> impl Iterator<Item = &KdlNode> {
    node.children().into_iter().flat_map(|d| d.nodes())
}

/// Parsing context: the source text (for positions), the file, the root.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
    root: &'a Path,
    warnings: RefCell<Vec<String>>,
}

impl Cx<'_> {
    /// Records (and logs) an ignored key with its `file:line:col`.
    fn unknown(&self, node: &KdlNode, within: &str) {
        let (line, column) = line_col(self.text, node.span().offset());
        let warning = format!(
            "{}:{line}:{column}: unknown key {:?} in {within}: ignored",
            self.path.display(),
            node.name().value()
        );
        log::warn!("{warning}");
        self.warnings.borrow_mut().push(warning);
    }

    fn error(&self, node: &KdlNode, message: String) -> Error {
        let (line, column) = line_col(self.text, node.span().offset());
        Error::Config {
            path: self.path.to_path_buf(),
            line,
            column,
            message,
        }
    }

    /// The node's positional arguments.
    fn args<'n>(&self, node: &'n KdlNode) -> impl Iterator<Item = &'n KdlValue> {
        node.entries()
            .iter()
            .filter(|e| e.name().is_none())
            .map(|e| e.value())
    }

    fn string(&self, node: &KdlNode) -> Result<String> {
        match self.args(node).next() {
            Some(KdlValue::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.error(
                node,
                format!("{} expects a string, found {v}", node.name().value()),
            )),
            None => Err(self.error(
                node,
                format!("{} expects a string value", node.name().value()),
            )),
        }
    }

    fn strings(&self, node: &KdlNode) -> Result<Vec<String>> {
        self.args(node)
            .map(|v| match v {
                KdlValue::String(s) => Ok(s.clone()),
                other => Ok(other.to_string()),
            })
            .collect()
    }

    fn bool(&self, node: &KdlNode) -> Result<bool> {
        match self.args(node).next() {
            None => Ok(true), // a bare `autostart` means yes
            Some(KdlValue::Bool(b)) => Ok(*b),
            Some(KdlValue::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(v) => Err(self.error(
                node,
                format!("{} expects true or false, found {v}", node.name().value()),
            )),
        }
    }

    /// A positive duration: seconds, or a string such as `"90s"`.
    fn duration(&self, node: &KdlNode) -> Result<Duration> {
        let key = node.name().value();
        match self.args(node).next() {
            Some(KdlValue::Integer(s)) if *s > 0 => Ok(Duration::from_secs(*s as u64)),
            Some(KdlValue::Float(f)) if *f > 0.0 => Ok(Duration::from_secs_f64(*f)),
            Some(KdlValue::String(s)) => crate::util::duration::parse(s).ok_or_else(|| {
                self.error(
                    node,
                    format!("{key}: cannot read {s:?} as a duration (try \"90s\")"),
                )
            }),
            _ => Err(self.error(node, format!("{key} expects seconds, e.g. 30"))),
        }
    }

    /// A string value that must compile as a regex.
    fn regex(&self, node: &KdlNode) -> Result<String> {
        let pattern = self.string(node)?;
        regex::Regex::new(&pattern).map_err(|e| {
            self.error(node, format!("{}: invalid regex: {e}", node.name().value()))
        })?;
        Ok(pattern)
    }

    fn int(&self, node: &KdlNode, min: i128, max: i128) -> Result<i128> {
        let name = node.name().value();
        match self.args(node).next() {
            Some(KdlValue::Integer(i)) if (min..=max).contains(i) => Ok(*i),
            Some(v) => Err(self.error(
                node,
                format!("{name} expects an integer in {min}..={max}, found {v}"),
            )),
            None => Err(self.error(node, format!("{name} expects an integer value"))),
        }
    }

    fn alerts(&self, node: &KdlNode) -> Result<AlertsConfig> {
        let mut out = AlertsConfig::default();
        for child in children(node) {
            match child.name().value() {
                "enabled" => out.enabled = self.bool(child)?,
                "disable" => out.disable.extend(self.strings(child)?),
                "patterns" => {
                    for p in children(child) {
                        let id = p.name().value().to_string();
                        let (mut pattern, mut severity) = (None, "error".to_string());
                        for field in children(p) {
                            match field.name().value() {
                                "pattern" => pattern = Some(self.string(field)?),
                                "severity" => severity = self.string(field)?,
                                _ => self.unknown(field, "an alerts pattern"),
                            }
                        }
                        let Some(pattern) = pattern else {
                            return Err(self.error(
                                p,
                                format!("alert pattern {id:?} needs `pattern \"REGEX\"`"),
                            ));
                        };
                        if let Err(e) = regex::Regex::new(&pattern) {
                            return Err(
                                self.error(p, format!("alert pattern {id:?}: invalid regex: {e}"))
                            );
                        }
                        if !["critical", "error", "warning", "info"].contains(&severity.as_str()) {
                            return Err(self.error(p, format!("alert pattern {id:?}: severity {severity:?} is not one of critical, error, warning, info")));
                        }
                        out.patterns.push(AlertPattern {
                            id,
                            pattern,
                            severity,
                        });
                    }
                }
                "batch-window" => out.batch_window = self.duration(child)?,
                "dedupe-window" => out.dedupe_window = self.duration(child)?,
                _ => self.unknown(child, "alerts"),
            }
        }
        Ok(out)
    }

    fn channel(&self, node: &KdlNode) -> Result<ChannelConfig> {
        let mut out = ChannelConfig::default();
        for child in children(node) {
            match child.name().value() {
                "events" => {
                    let events = self.strings(child)?;
                    if let Some(bad) = events
                        .iter()
                        .find(|e| !CHANNEL_EVENTS.contains(&e.as_str()))
                    {
                        return Err(self.error(
                            child,
                            format!(
                                "channel events: unknown {bad:?}; valid: {}",
                                CHANNEL_EVENTS.join(", ")
                            ),
                        ));
                    }
                    out.events = Some(events);
                }
                "rate" => out.rate = Some(self.int(child, 0, 10_000)? as u32),
                _ => self.unknown(child, "channel"),
            }
        }
        Ok(out)
    }

    fn proxy(&self, node: &KdlNode) -> Result<ProxyEntry> {
        let name = node.name().value().to_string();
        let mut entry = ProxyEntry {
            name: name.clone(),
            target: None,
            script: None,
            port: None,
            autostart: prop_bool(node, &["autostart", "auto-start"]).unwrap_or(false),
            max_log_size: None,
            allowed_hosts: Vec::new(),
            allow_lan: false,
            redact: true,
            redact_names: Vec::new(),
            deadlines: ProxyDeadlines::default(),
            url_pattern: None,
            fallback_port: None,
            bind: None,
            websocket: None,
            wait_for: Vec::new(),
            verify_tls: None,
        };
        let mut host: Option<String> = None;
        for child in children(node) {
            match child.name().value() {
                "target" | "url" => entry.target = Some(self.string(child)?),
                "script" => entry.script = Some(self.string(child)?),
                "port" => entry.port = Some(self.int(child, 0, 65535)? as u16),
                "host" => host = Some(self.string(child)?),
                "autostart" | "auto-start" => entry.autostart = self.bool(child)?,
                "max-log-size" => entry.max_log_size = Some(self.int(child, 1, 100_000)? as usize),
                "allowed-hosts" | "allowed-host" => {
                    for arg in child.entries().iter().filter(|e| e.name().is_none()) {
                        match arg.value().as_string() {
                            Some(h) => entry.allowed_hosts.push(h.to_string()),
                            None => {
                                return Err(self.error(
                                    child,
                                    "allowed-hosts takes host names as strings".into(),
                                ));
                            }
                        }
                    }
                }
                "allow-lan" => entry.allow_lan = self.bool(child)?,
                "redact" => entry.redact = self.bool(child)?,
                "redact-names" => entry.redact_names.extend(self.strings(child)?),
                "connect-timeout" => entry.deadlines.connect_timeout = Some(self.duration(child)?),
                "response-timeout" => {
                    entry.deadlines.response_timeout = Some(self.duration(child)?)
                }
                "body-timeout" => entry.deadlines.body_timeout = Some(self.duration(child)?),
                "body-min-bytes" => {
                    entry.deadlines.body_min_bytes = Some(self.int(child, 0, 1 << 40)? as u64)
                }
                "stream-idle-timeout" => {
                    entry.deadlines.stream_idle_timeout = Some(self.duration(child)?)
                }
                "url-pattern" => entry.url_pattern = Some(self.regex(child)?),
                "fallback-port" => entry.fallback_port = Some(self.int(child, 1, 65535)? as u16),
                "bind" => entry.bind = Some(self.string(child)?),
                "websocket" => entry.websocket = Some(self.bool(child)?),
                "wait-for" => entry.wait_for.extend(self.strings(child)?),
                "verify-tls" => entry.verify_tls = Some(self.bool(child)?),
                _ => self.unknown(child, &format!("proxy {name:?}")),
            }
        }
        if entry.target.is_none() && entry.script.is_none() {
            // The original's shorthand: `port N` (and `host "h"`, default localhost) names the
            // upstream when there is no `url`/`target`/`script`.
            match entry.port {
                Some(port) if port > 0 => {
                    let host = host.unwrap_or_else(|| "localhost".into());
                    entry.target = Some(format!("http://{host}:{port}"));
                    entry.port = None;
                }
                _ => {
                    return Err(self.error(
                        node,
                        format!("proxy {name:?} needs target \"http://...\" or script \"...\""),
                    ));
                }
            }
        }
        if entry.target.is_some() && entry.script.is_some() {
            return Err(self.error(
                node,
                format!("proxy {name:?} has both target and script: keep one"),
            ));
        }
        Ok(entry)
    }
}

fn prop_bool(node: &KdlNode, keys: &[&str]) -> Option<bool> {
    node.entries().iter().find_map(|e| {
        let key = e.name()?.value();
        keys.contains(&key).then(|| e.value().as_bool()).flatten()
    })
}

fn value_string(v: &KdlValue) -> String {
    match v {
        KdlValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod compat;
#[cfg(test)]
mod tests;
