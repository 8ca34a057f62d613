//! `wait`: block until a log line matches, a port accepts, a URL answers with a status, or a
//! proxy logs a matching entry — with a deadline, cancellable, reporting progress. A timeout is a
//! result (`matched: false`) that says what was last seen.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    Annotations, Call, Host, Tool, ToolError, input, object, proc, timeout_arg, timeout_schema,
};
use crate::supervisor::{
    ManagedProcess, OutputRequest,
    ready::{HttpTarget, probe_port},
};

/// How many lines of a process's last output an "ended before ..." error shows.
const LAST_LINES: usize = 20;
/// One port probe (a loopback connect) takes at most this long.
const PORT_PROBE: Duration = Duration::from_millis(500);
/// One HTTP probe takes at most this long (a dev server may compile on its first request).
const HTTP_PROBE: Duration = Duration::from_secs(5);

/// The tool.
pub static TOOL: Tool = Tool {
    name: "wait",
    description: "Wait instead of polling, `for`: `log` (process_id's output matches regex \
`pattern`), `port` (open on loopback), `http` (GET url answers `status`, else below 500), \
`proxylog` (proxy_id logs `types`, URL containing `pattern`). Fails if process_id exits; else \
matched: false after `timeout`. Example: {\"for\": \"port\", \"port\": 3000}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Wait for a condition",
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "for": {"type": "string", "enum": ["log", "port", "http", "proxylog"], "description": "What to wait for"},
            "process_id": {"type": "string", "description": "log: the process; port/http: its server"},
            "pattern": {"type": "string", "description": "log: regex; proxylog: URL substring"},
            "since": {"type": "integer", "minimum": 0, "description": "log: output offset; proxylog: entry seq (default: from now)"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "port: TCP port on loopback"},
            "url": {"type": "string", "description": "http: http(s):// URL to GET"},
            "verify_tls": {"type": "boolean", "description": "http: check the https certificate (default: not on loopback)"},
            "status": {"type": "integer", "minimum": 100, "maximum": 599, "description": "http: expected status"},
            "proxy_id": {"type": "string", "description": "proxylog: the proxy"},
            "types": {"type": "array", "items": {"type": "string"}, "description": "proxylog: entry types"},
            "timeout": timeout_schema("Seconds or \"2m\" (default 30, max 3600)"),
            "path": {"type": "string", "description": "Project directory"},
        }),
        &["for"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "matched": {"type": "boolean"},
        "for": {"type": "string"},
        "waited_ms": {"type": "integer"},
        "last_seen": {"type": "object", "additionalProperties": true, "description": "timeout: what the last check saw"},
    }))
}

struct Waiter<'a, 'b> {
    call: &'a Call<'b>,
    start: Instant,
    deadline: Instant,
    last_progress: Instant,
}

enum Step {
    Done(Value),
    Again(Value),
}

impl Waiter<'_, '_> {
    /// Runs `probe` until it reports done, the deadline passes or the call is cancelled.
    fn run(
        &mut self,
        what: &str,
        pause: Duration,
        mut probe: impl FnMut(Duration) -> Result<Step, ToolError>,
    ) -> Result<Value, ToolError> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let last = match probe(left.min(pause))? {
                Step::Done(mut v) => {
                    v["matched"] = true.into();
                    v["for"] = what.into();
                    v["waited_ms"] = (self.start.elapsed().as_millis() as u64).into();
                    return Ok(v);
                }
                Step::Again(last) => last,
            };
            if self.call.cancelled() {
                return Err(ToolError::new(format!("wait for {what} cancelled")));
            }
            if Instant::now() >= self.deadline {
                return Ok(json!({
                    "matched": false, "for": what, "timed_out": true,
                    "waited_ms": self.start.elapsed().as_millis() as u64, "last_seen": last,
                }));
            }
            if self.last_progress.elapsed() >= Duration::from_secs(1) {
                self.last_progress = Instant::now();
                let s = self.start.elapsed().as_secs_f64();
                self.call
                    .progress(s, None, &format!("waiting for {what} ({s:.0}s)"));
            }
            if !pause.is_zero() {
                std::thread::sleep(
                    pause.min(self.deadline.saturating_duration_since(Instant::now())),
                );
            }
        }
    }
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let timeout = timeout_arg(c, Duration::from_secs(30), Duration::from_secs(3600))?;
    let start = Instant::now();
    let mut w = Waiter {
        call: c,
        start,
        deadline: start + timeout,
        last_progress: start,
    };
    match c.str("for").unwrap_or("") {
        "log" => {
            let pm = host.pm()?;
            let p = proc::lookup(
                pm,
                &c.project(),
                c.need_str("process_id", "the process whose output to watch")?,
            )?;
            let pattern = c.need_str(
                "pattern",
                "the regex a line must match, e.g. \"listening on\"",
            )?;
            regex::Regex::new(pattern)
                .map_err(|e| ToolError::new(format!("invalid regex {pattern:?}: {e}")))?;
            let mut since = c.u64("since").unwrap_or(0);
            w.run("log", Duration::ZERO, |left| {
                let req = OutputRequest { since: Some(since), grep: Some(pattern.into()), head: Some(1), ..Default::default() };
                let read = p.output(&req)?;
                if read.lines > 0 {
                    return Ok(Step::Done(json!({"process_id": p.id(), "line": read.text.trim_end(), "next_offset": read.next_offset})));
                }
                since = read.next_offset;
                if p.state().is_terminal() && p.output_end(crate::supervisor::Stream::Combined) <= since {
                    return Err(ended_early(&p, &format!("printing a line matching {pattern:?}")));
                }
                p.wait_output(since, left.min(Duration::from_millis(500)));
                let tail = p.output(&OutputRequest { tail: Some(3), max_bytes: Some(2048), ..Default::default() })?;
                Ok(Step::Again(json!({"state": p.state().as_str(), "last_lines": tail.text})))
            })
        }
        "port" => {
            let port = c
                .u64("port")
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| {
                    ToolError::new("missing required parameter \"port\" (1-65535) for for: port")
                })? as u16;
            let watched = watched_process(host, c)?;
            let deadline = w.deadline;
            w.run("port", Duration::from_millis(100), |_| {
                check_alive(
                    watched.as_deref(),
                    &format!("port {port} accepted connections"),
                )?;
                match probe_port(port, probe_timeout(deadline, PORT_PROBE)) {
                    Ok(()) => Ok(Step::Done(json!({"port": port}))),
                    Err(e) => Ok(Step::Again(json!({"port": port, "error": e.to_string()}))),
                }
            })
        }
        "http" => {
            let url = c.need_str(
                "url",
                "the http(s):// URL to GET, e.g. \"http://127.0.0.1:3000/\"",
            )?;
            let target = HttpTarget::parse(url).map_err(|e| ToolError::new(e.to_string()))?;
            let verify = c.opt_bool("verify_tls");
            let want = c.u64("status");
            let watched = watched_process(host, c)?;
            let deadline = w.deadline;
            w.run("http", Duration::from_millis(200), |_| {
                check_alive(watched.as_deref(), &format!("{url} answered"))?;
                match target.probe(probe_timeout(deadline, HTTP_PROBE), verify) {
                    Ok(status) if want.map_or(status < 500, |w| w == status as u64) => {
                        Ok(Step::Done(json!({"url": url, "status": status})))
                    }
                    Ok(status) => Ok(Step::Again(json!({"url": url, "status": status}))),
                    // A refused certificate stays refused: say so now, not at the timeout.
                    Err(e) if e.is_lasting() => Err(ToolError::new(e.to_string())),
                    Err(e) => Ok(Step::Again(json!({"url": url, "error": e.to_string()}))),
                }
            })
        }
        "proxylog" => {
            let proxy = host
                .proxies()
                .get(c.need_str("proxy_id", "the proxy whose log to watch")?)?;
            let types = c.strs("types");
            let pattern = c.str("pattern").map(String::from);
            // Only entries logged from now on (or after `since`, an explicit seq cursor).
            let seq = c.u64("since").unwrap_or_else(|| proxy.log_stats().last_seq);
            w.run("proxylog", Duration::from_millis(100), |_| {
                let q = crate::proxy::LogQuery {
                    types: types.clone(),
                    url_pattern: pattern.clone(),
                    since_seq: Some(seq),
                    limit: Some(1),
                    ..Default::default()
                };
                let v = proxy.log_query(&q)?;
                if let Some(e) = v
                    .get("entries")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                {
                    return Ok(Step::Done(json!({"proxy_id": proxy.id(), "entry": e})));
                }
                Ok(Step::Again(
                    json!({"proxy_id": proxy.id(), "log_stats": proxy.log_stats()}),
                ))
            })
        }
        "" => Err(ToolError::new(
            "missing required parameter \"for\"; valid values: log, port, http, proxylog",
        )),
        other => Err(ToolError::new(format!(
            "unknown for {other:?}; valid values: log, port, http, proxylog"
        ))),
    }
}

/// `process_id` of a port or http wait: the process whose exit ends the wait.
fn watched_process(
    host: &Host,
    c: &Call<'_>,
) -> Result<Option<std::sync::Arc<ManagedProcess>>, ToolError> {
    match c.str("process_id") {
        Some(id) => Ok(Some(proc::lookup(host.pm()?, &c.project(), id)?)),
        None => Ok(None),
    }
}

/// An error once the watched process has ended.
fn check_alive(p: Option<&ManagedProcess>, what: &str) -> Result<(), ToolError> {
    match p {
        Some(p) if p.state().is_terminal() => Err(ended_early(p, what)),
        _ => Ok(()),
    }
}

/// "process "dev" ended (failed (exit 3)) before port 3000 accepted connections; last output: ..."
fn ended_early(p: &ManagedProcess, what: &str) -> ToolError {
    let last = p.last_lines(LAST_LINES);
    let last = if last.trim().is_empty() {
        "(no output)"
    } else {
        last.trim_end()
    };
    ToolError::new(format!(
        "process {:?} ended ({}) before {what}; last output:\n{last}",
        p.id(),
        p.summary()
    ))
}

/// At most `cap`, and not past the wait's deadline (but never zero: the waiter checks the
/// deadline itself).
fn probe_timeout(deadline: Instant, cap: Duration) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    cap.min(left).max(Duration::from_millis(50))
}
