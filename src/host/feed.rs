//! What feeds the incident inbox and the push channel: the proxies' traffic-log entries (through
//! the `ProxyManager` tap, on each proxy's loop: cheap, never blocking), process exits (through
//! the `ProcessManager` exit hook, on the waiter thread) and output lines matching `alerts`
//! patterns (scanned from a per-process cursor when a process exits — by one scan thread, as
//! waiter threads have small stacks — and when `get_incidents` asks; no thread polls output).
//! Only whole lines are scanned while a process runs: an unfinished last line waits for its end
//! (or its exit, or 64 KiB) so a line being written is never matched in pieces.
//!
//! Pushed: every page-panel message, every crash or non-zero exit, and the first occurrence of
//! each new fingerprint at `error` or worse (crashes are pushed once, as crashes).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use crossbeam_channel::Sender;

use regex::Regex;
use serde_json::{Value, json};

use super::{
    channel::{Channel, Event},
    incidents::{Incidents, Report, Severity},
};
use crate::{
    config::{AlertPattern, AlertsConfig},
    proxy::{
        ProxyConfig,
        traffic::{Entry, EntryBody},
    },
    supervisor::{ManagedProcess, OutputRequest, Stream},
};

/// Bytes of output scanned per process and call at most (the newest are kept).
const SCAN_MAX: usize = 256 * 1024;
/// Longest summary line.
const SUMMARY_MAX: usize = 160;
/// Longest unfinished last line held back for its end while its process runs (a longer one is
/// scanned as it is, so a never-ending line cannot stall scanning).
const PARTIAL_MAX: usize = 64 * 1024;

/// The inbox and the channel, shared by the feeds' closures.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    pub incidents: Arc<Incidents>,
    pub channel: Arc<Channel>,
    /// One alert scan at a time (an exit scan and a `get_incidents` scan of the same output
    /// must not both count it).
    scan_lock: Arc<parking_lot::Mutex<()>>,
    /// Output claimed at exits, for the scan thread.
    scans: Arc<OnceLock<Sender<Claim>>>,
}

/// A stretch of one process's output, claimed for one scan.
#[derive(Debug)]
struct Claim {
    project: PathBuf,
    id: String,
    /// Output offset of `text`'s first byte.
    start: u64,
    text: String,
}

impl Feeds {
    /// Claims `p`'s output not scanned yet (from its cursor to its end) and hands it to the
    /// scan thread, which matches it against the project's patterns (started on first use; it
    /// ends when every clone of these feeds is gone). Reading is cheap enough for a waiter's
    /// small stack; loading the config and compiling patterns is not.
    fn queue_scan(&self, p: &ManagedProcess) {
        let Some(claim) = self.claim(p) else {
            return;
        };
        let tx = self.scans.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<Claim>();
            let feeds = self.clone_without_scans();
            // Detached: it owns nothing but the receiver and ends when the senders are dropped.
            let spawned = crate::thread::spawn("agnt-alert-scan", 1024 * 1024, move || {
                for claim in rx {
                    let alerts = alerts_of(&claim.project);
                    feeds.match_lines(&claim, &alerts);
                }
            });
            if let Err(e) = spawned {
                log::warn!("cannot start the alert scan thread: {e}");
            }
            tx
        });
        let _ = tx.send(claim);
    }

    /// A copy whose scan queue is its own (the scan thread must not keep itself alive).
    fn clone_without_scans(&self) -> Feeds {
        Feeds {
            incidents: self.incidents.clone(),
            channel: self.channel.clone(),
            scan_lock: self.scan_lock.clone(),
            scans: Arc::new(OnceLock::new()),
        }
    }

    /// One traffic-log entry of proxy `cfg`.
    pub fn on_entry(&self, cfg: &ProxyConfig, e: &Arc<Entry>) {
        if e.kind == "panel_message" {
            self.channel.publish(&panel_event(cfg, e));
            return;
        }
        if let Some(r) = entry_report(cfg, e) {
            self.record(r);
        }
    }

    /// A process's exit was recorded; `failed` = it crashed or exited non-zero.
    pub fn on_exit(&self, p: &ManagedProcess, failed: bool) {
        self.queue_scan(p);
        if !failed || p.stop_requested() {
            return;
        }
        let r = exit_report(p);
        let (inc, _) = self.incidents.record(r.clone());
        let mut meta = BTreeMap::new();
        meta.insert("source".into(), "process_crash".into());
        meta.insert("severity".into(), r.severity.as_str().into());
        meta.insert("id".into(), inc.id.clone());
        meta.insert("process_id".into(), p.id().into());
        self.channel.publish(&Event {
            kind: "crash",
            project: p.project().to_path_buf(),
            content: r.summary,
            meta,
        });
    }

    /// Scans the output of every process of `processes` for alert patterns (new output only).
    pub fn scan_all(&self, project: &Path, processes: &[Arc<ManagedProcess>]) {
        let alerts = alerts_of(project);
        for p in processes {
            self.scan(p, &alerts);
        }
    }

    /// Records a report; pushes the first occurrence of a new fingerprint at `error` or worse.
    pub fn record(&self, r: Report) {
        let (inc, new) = self.incidents.record(r);
        if !new || inc.report.severity < Severity::Error {
            return;
        }
        let r = &inc.report;
        let mut meta = BTreeMap::new();
        meta.insert("source".into(), r.source.into());
        meta.insert("severity".into(), r.severity.as_str().into());
        meta.insert("id".into(), inc.id.clone());
        if let Some(p) = &r.proxy_id {
            meta.insert("proxy_id".into(), p.clone());
        }
        if let Some(p) = &r.process_id {
            meta.insert("process_id".into(), p.clone());
        }
        self.channel.publish(&Event {
            kind: "incident",
            project: r.project.clone(),
            content: format!("[{}] {}: {}", r.severity.as_str(), r.source, r.summary),
            meta,
        });
    }

    fn scan(&self, p: &ManagedProcess, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        if let Some(claim) = self.claim(p) {
            self.match_lines(&claim, alerts);
        }
    }

    /// Takes the output of `p` after its scan cursor and moves the cursor past it, under one
    /// lock, so no stretch is claimed twice. While `p` runs, an unfinished last line (shorter
    /// than [`PARTIAL_MAX`]) is left for a later claim, so a line is never matched in pieces.
    fn claim(&self, p: &ManagedProcess) -> Option<Claim> {
        let _one = self.scan_lock.lock();
        let end = p.output_end(Stream::Combined);
        let from = self.incidents.scanned(p.project(), p.id(), p.seq());
        if from == Some(end) {
            return None;
        }
        let mut read = p
            .output(&OutputRequest {
                since: from,
                max_bytes: Some(SCAN_MAX),
                ..OutputRequest::default()
            })
            .ok()?;
        let start = read.next_offset.saturating_sub(read.text.len() as u64);
        let whole = read.text.rfind('\n').map_or(0, |nl| nl + 1);
        let partial = &read.text[whole..];
        let mut next = read.next_offset;
        // A lossy (U+FFFD) tail has no exact byte length to step back by: it is scanned as is.
        if !p.state().is_terminal() && partial.len() < PARTIAL_MAX && !partial.contains('\u{fffd}')
        {
            next -= partial.len() as u64;
            read.text.truncate(whole);
        }
        self.incidents
            .set_scanned(p.project(), p.id(), p.seq(), next);
        (!read.text.is_empty()).then(|| Claim {
            project: p.project().to_path_buf(),
            id: p.id().to_string(),
            start,
            text: read.text,
        })
    }

    fn match_lines(&self, claim: &Claim, alerts: &[Alert]) {
        let id = &claim.id;
        let mut offset = claim.start;
        for line in claim.text.split_inclusive('\n') {
            let at = offset;
            offset += line.len() as u64;
            let line = line.trim_end();
            let Some(a) = alerts.iter().find(|a| a.re.is_match(line)) else {
                continue;
            };
            let norm: String = line
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(200)
                .collect();
            let source = if a.id == "port-in-use" {
                "port_conflict"
            } else {
                "process_alert"
            };
            self.record(Report {
                project: claim.project.clone(),
                source,
                severity: a.severity,
                key: format!("{id}\0{}\0{norm}", a.id),
                summary: cut(&format!("{id}: {line}"), SUMMARY_MAX),
                context: json!({"process_id": id, "pattern": a.id, "offset": at}),
                payload: json!({"line": cut(line, 2000)}),
                remediation: format!(
                    "proc {}",
                    json!({"action": "output", "process_id": id, "since": at, "head": 40})
                ),
                proxy_id: None,
                process_id: Some(id.clone()),
            });
        }
    }
}

/// A compiled alert pattern.
#[derive(Debug, Clone)]
struct Alert {
    id: String,
    re: Regex,
    severity: Severity,
}

/// Built-in output patterns for common Go, Node, Python and .NET failures: `(id, regex,
/// severity)`. They apply when `.agnt.kdl` configures no `alerts { patterns { ... } }`.
pub const BUILTIN_ALERTS: &[(&str, &str, &str)] = &[
    ("go-panic", r"^(panic: |fatal error: )", "error"),
    ("go-build", r"^\S+\.go:\d+:\d+: ", "error"),
    (
        "node-uncaught",
        r"(Uncaught |Unhandled ?Promise ?Rejection|^\s*(TypeError|ReferenceError|SyntaxError|RangeError): )",
        "error",
    ),
    ("node-module", r"Error: Cannot find module ", "error"),
    (
        "python-traceback",
        r"^Traceback \(most recent call last\):",
        "error",
    ),
    (
        "dotnet-unhandled",
        r"(Unhandled exception\.|error CS\d{4}:)",
        "error",
    ),
    (
        "port-in-use",
        r"(EADDRINUSE|address already in use)",
        "error",
    ),
    ("fatal", r"\b(FATAL|Fatal error)\b", "error"),
];

fn builtin() -> &'static [Alert] {
    static B: OnceLock<Vec<Alert>> = OnceLock::new();
    B.get_or_init(|| {
        BUILTIN_ALERTS
            .iter()
            .filter_map(|(id, re, sev)| {
                Some(Alert {
                    id: id.to_string(),
                    re: Regex::new(re).ok()?,
                    severity: Severity::parse(sev)?,
                })
            })
            .collect()
    })
}

/// The project's alert patterns: configured ones, else the built-ins minus `disable`.
fn alerts_of(project: &Path) -> Vec<Alert> {
    let cfg: AlertsConfig = match crate::config::discover(project) {
        Ok(c) => c.map(|c| c.alerts).unwrap_or_default(),
        Err(e) => {
            log::warn!("{e} (alerts use the built-in patterns)");
            AlertsConfig::default()
        }
    };
    if !cfg.enabled {
        return Vec::new();
    }
    if cfg.patterns.is_empty() {
        return builtin()
            .iter()
            .filter(|a| !cfg.disable.contains(&a.id))
            .cloned()
            .collect();
    }
    cfg.patterns
        .iter()
        .filter_map(
            |AlertPattern {
                 id,
                 pattern,
                 severity,
             }| {
                Some(Alert {
                    id: id.clone(),
                    re: Regex::new(pattern).ok()?,
                    severity: Severity::parse(severity).unwrap_or(Severity::Error),
                })
            },
        )
        .collect()
}

fn panel_event(cfg: &ProxyConfig, e: &Entry) -> Event {
    let EntryBody::Event(d) = &e.body else {
        unreachable!("panel messages are events")
    };
    let message = d.get("message").and_then(Value::as_str).unwrap_or("");
    let page = d
        .get("url")
        .and_then(Value::as_str)
        .or(e.page_id.as_deref())
        .unwrap_or("");
    let mut meta = BTreeMap::new();
    meta.insert("source".into(), "panel".into());
    meta.insert("severity".into(), "info".into());
    meta.insert("id".into(), e.id.clone());
    meta.insert("proxy_id".into(), cfg.id.clone());
    meta.insert("page".into(), cut(page, 300));
    let one_line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    Event {
        kind: "panel",
        project: cfg.project.clone(),
        content: cut(&format!("user in page panel: {one_line}"), 500),
        meta,
    }
}

/// The report a traffic-log entry makes, if it is a failure.
fn entry_report(cfg: &ProxyConfig, e: &Entry) -> Option<Report> {
    let base = |source, severity, key: String, summary: String, context, payload, remediation| {
        Some(Report {
            project: cfg.project.clone(),
            source,
            severity,
            key,
            summary: cut(&summary, SUMMARY_MAX),
            context,
            payload,
            remediation,
            proxy_id: Some(cfg.id.clone()),
            process_id: None,
        })
    };
    let get = format!(
        "proxylog {}",
        json!({"action": "get", "proxy_id": cfg.id, "entry_id": e.id})
    );
    match &e.body {
        EntryBody::Http(h) => {
            let path = h.url.split('?').next().unwrap_or("");
            let (source, severity) = match (h.status, &h.error) {
                (0, _) | (_, Some(_)) => ("transport_err", Severity::Error),
                (500.., _) => ("http_5xx", Severity::Error),
                (400..=499, _) => ("http_4xx", Severity::Warning),
                _ => return None,
            };
            let what = match &h.error {
                Some(err) => format!("{} {path}: {err}", h.method),
                None => format!("{} {path} → {}", h.method, h.status),
            };
            base(
                source,
                severity,
                format!("{} {path} {}", h.method, h.status),
                what,
                json!({"url": cut(&h.url, 300), "status": h.status, "method": h.method, "entry_id": e.id}),
                json!({"error": h.error, "duration_ms": h.duration_ms}),
                get,
            )
        }
        // The proxy's own diagnostics (deadlines, refused hosts, skipped injection, dropped page
        // messages) are `error` events too: they are `proxy_diag` warnings, keyed without
        // their numbers (elapsed times, sizes, ports), so repeats fold into one incident.
        EntryBody::Event(d)
            if e.kind == "error"
                && d.get("source").and_then(Value::as_str) == Some("agnt proxy") =>
        {
            let message = d.get("message").and_then(Value::as_str).unwrap_or("");
            let key: String = message
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            base(
                "proxy_diag",
                Severity::Warning,
                key,
                cut(message, 200),
                json!({"proxy_id": cfg.id, "entry_id": e.id}),
                d.clone(),
                get,
            )
        }
        EntryBody::Event(d) if e.kind == "error" => {
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
            let message = s("message");
            let stack = s("stack");
            let top = stack
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("at ") || l.contains('@'))
                .unwrap_or("");
            let file = s("source").rsplit('/').next().unwrap_or("");
            let line = d.get("lineno").and_then(Value::as_u64).unwrap_or(0);
            let location = if file.is_empty() {
                String::new()
            } else {
                format!(" ({file}:{line})")
            };
            let session = s("session_id");
            let remediation = if session.is_empty() {
                get
            } else {
                format!(
                    "currentpage {}",
                    json!({"action": "summary", "proxy_id": cfg.id, "session_id": session, "detail": ["errors"]})
                )
            };
            base(
                "browser_js",
                Severity::Error,
                format!("{message}\0{top}"),
                format!("{message}{location}"),
                json!({"url": cut(s("url"), 300), "stack_top": cut(top, 200), "session_id": session, "entry_id": e.id}),
                d.clone(),
                remediation,
            )
        }
        _ => None,
    }
}

/// The report of a crashed or non-zero exit.
fn exit_report(p: &ManagedProcess) -> Report {
    let end = p.output_end(Stream::Combined);
    let since = end.saturating_sub(4096);
    let last: String = p.last_lines(1).trim().chars().take(100).collect::<String>();
    let how = match (p.exit_code(), p.exit_signal()) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), _) => format!("exited with code {code}"),
        _ => p.summary(),
    };
    let mut summary = format!("process {} {how}", p.id());
    if !last.is_empty() {
        summary.push_str(&format!(" (last line: {last})"));
    }
    Report {
        project: p.project().to_path_buf(),
        source: "process_crash",
        severity: Severity::Error,
        key: format!("{}\0{how}", p.id()),
        summary: cut(&summary, SUMMARY_MAX),
        context: json!({"process_id": p.id(), "exit_code": p.exit_code(), "exit_signal": p.exit_signal(), "state": p.state().as_str()}),
        payload: json!({"summary": p.summary()}),
        remediation: format!(
            "proc {}",
            json!({"action": "output", "process_id": p.id(), "since": since})
        ),
        proxy_id: None,
        process_id: Some(p.id().to_string()),
    }
}

/// At most `max` chars, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patterns_compile_and_match_common_failures() {
        assert_eq!(builtin().len(), BUILTIN_ALERTS.len());
        let hit = |line: &str| {
            builtin()
                .iter()
                .find(|a| a.re.is_match(line))
                .map(|a| a.id.clone())
        };
        assert_eq!(
            hit("panic: runtime error: index out of range").as_deref(),
            Some("go-panic")
        );
        assert_eq!(
            hit("./main.go:12:3: undefined: foo").as_deref(),
            Some("go-build")
        );
        assert_eq!(
            hit("TypeError: x is not a function").as_deref(),
            Some("node-uncaught")
        );
        assert_eq!(
            hit("Traceback (most recent call last):").as_deref(),
            Some("python-traceback")
        );
        assert_eq!(
            hit("Unhandled exception. System.Exception: x").as_deref(),
            Some("dotnet-unhandled")
        );
        assert_eq!(
            hit("Error: listen EADDRINUSE: address already in use :::3000").as_deref(),
            Some("port-in-use")
        );
        assert_eq!(hit("compiled successfully in 120 ms"), None);
    }
}
