//! `wait`: block until a log line matches, a port accepts, a URL answers with a status, or a
//! proxy logs a matching entry — with a deadline, cancellable, reporting progress. A timeout is a
//! result (`matched: false`) that says what was last seen.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Call, Ctx, Tool, ToolError, input, object, proc, timeout_arg, timeout_schema};
use crate::supervisor::OutputRequest;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "wait",
    description: "Wait for something instead of polling: `for: log` (a line of process_id's output \
matches the regex `pattern`), `port` (127.0.0.1:port accepts connections), `http` (GET url answers; \
with `status`, exactly that status, else any status below 500), `proxylog` (proxy_id logs an entry \
of `types`, optionally whose URL contains `pattern`). Returns what matched, or matched: false with \
what was last seen when `timeout` (default 30 s) passes. Example: {\"for\": \"log\", \"process_id\": \
\"dev\", \"pattern\": \"ready|listening\", \"timeout\": 60}",
    input_schema,
    output_schema,
    call,
};

fn input_schema() -> Value {
    input(
        json!({
            "for": {"type": "string", "enum": ["log", "port", "http", "proxylog"], "description": "What to wait for"},
            "process_id": {"type": "string", "description": "log: the process whose output to watch"},
            "pattern": {"type": "string", "description": "log: regex to match a line; proxylog: URL substring"},
            "since": {"type": "integer", "minimum": 0, "description": "log: only output after this offset (default: all buffered output); proxylog: only entries after this seq (default: entries logged from now on)"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "port: TCP port on 127.0.0.1"},
            "url": {"type": "string", "description": "http: http:// URL to GET"},
            "status": {"type": "integer", "minimum": 100, "maximum": 599, "description": "http: expected status (default any below 500)"},
            "proxy_id": {"type": "string", "description": "proxylog: the proxy"},
            "types": {"type": "array", "items": {"type": "string"}, "description": "proxylog: entry types (default any)"},
            "timeout": timeout_schema("Seconds (or \"2m\") to wait; default 30, at most 3600"),
            "path": {"type": "string", "description": "Project directory that scopes process ids (default: the caller's project)"},
        }),
        &["for"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "matched": {"type": "boolean"},
        "for": {"type": "string"},
        "waited_ms": {"type": "integer"},
        "last_seen": {},
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

fn call(ctx: &Ctx, c: &Call<'_>) -> Result<Value, ToolError> {
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
            let pm = ctx.pm()?;
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
                    let tail = p.output(&OutputRequest { tail: Some(5), ..Default::default() })?;
                    return Err(ToolError::new(format!(
                        "process {:?} ended ({}) before printing a line matching {pattern:?}; last output:\n{}",
                        p.id(), p.summary(), tail.text
                    )));
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
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            w.run(
                "port",
                Duration::from_millis(100),
                |_| match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                    Ok(_) => Ok(Step::Done(json!({"port": port}))),
                    Err(e) => Ok(Step::Again(json!({"port": port, "error": e.to_string()}))),
                },
            )
        }
        "http" => {
            let url = c.need_str(
                "url",
                "the http:// URL to GET, e.g. \"http://127.0.0.1:3000/\"",
            )?;
            let target = parse_http_url(url)?;
            let want = c.u64("status");
            w.run("http", Duration::from_millis(200), |_| {
                match http_status(&target) {
                    Ok(status) if want.map_or(status < 500, |w| w == status as u64) => {
                        Ok(Step::Done(json!({"url": url, "status": status})))
                    }
                    Ok(status) => Ok(Step::Again(json!({"url": url, "status": status}))),
                    Err(e) => Ok(Step::Again(json!({"url": url, "error": e}))),
                }
            })
        }
        "proxylog" => {
            let proxy = ctx
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

/// Host, port, path of an `http://` URL.
#[derive(Debug, PartialEq)]
struct HttpTarget {
    host: String,
    port: u16,
    path: String,
}

fn parse_http_url(url: &str) -> Result<HttpTarget, ToolError> {
    let bad = || {
        ToolError::new(format!(
            "invalid url {url:?}; expected http://host[:port]/path"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest
        .find('/')
        .map(|i| (&rest[..i], &rest[i..]))
        .unwrap_or((rest, "/"));
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port or [v6]
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        match tail.strip_prefix(':') {
            Some(p) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None if tail.is_empty() => (h, 80),
            None => return Err(bad()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(HttpTarget {
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        path: path.to_string(),
    })
}

fn http_status(t: &HttpTarget) -> Result<u16, String> {
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nUser-Agent: agnt-wait\r\n\r\n",
        t.path, t.host, t.port
    )
    .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/x?y").unwrap(),
            HttpTarget {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/x?y".into()
            }
        );
        assert_eq!(parse_http_url("http://localhost").unwrap().port, 80);
        assert!(parse_http_url("https://x").is_err());
        assert!(parse_http_url("http://:80/").is_err());
        assert!(parse_http_url("http://h:notaport/").is_err());
        assert_eq!(parse_http_url("http://[::1]:8080/").unwrap().host, "::1");
        assert_eq!(parse_http_url("http://[::1]").unwrap().port, 80);
        assert!(parse_http_url("http://[::1/").is_err());
    }
}
