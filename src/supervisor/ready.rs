//! Readiness: `wait_ready` blocks until a process's `ReadyCheck` holds while it runs.
//!
//! `Log` follows the combined output with `wait_output` cursors (no polling). `Port` and `Url`
//! must ask the socket, so they retry every 50 ms, sleeping on the process's condition
//! variable so an exit ends the wait at once. `Url` is a tiny HTTP/1.0 GET over a std
//! `TcpStream` (plain `http://` only); any status below 500 counts as ready.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use regex::Regex;

use super::{ManagedProcess, OutputRequest, ReadyCheck, State, Stream};
use crate::{Error, Result};

const RETRY: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const LAST_LINES: usize = 10;

pub(crate) fn wait_ready(p: &ManagedProcess, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    // First: Running (or finished).
    p.wait_until(timeout, || {
        !matches!(p.state(), State::Pending | State::Starting)
    });
    match p.spec().ready.clone() {
        None => check_running(p, deadline, timeout),
        Some(ReadyCheck::Log(re)) => wait_log(p, &re, deadline, timeout),
        Some(ReadyCheck::Port(port)) => wait_probe(p, deadline, timeout, || {
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), CONNECT_TIMEOUT)
                .is_ok()
        }),
        Some(ReadyCheck::Url(url)) => {
            let target = parse_http_url(&url)?;
            wait_probe(p, deadline, timeout, || http_ok(&target))
        }
    }
}

fn check_running(p: &ManagedProcess, deadline: Instant, timeout: Duration) -> Result<()> {
    match p.state() {
        State::Running => Ok(()),
        s if s.is_terminal() || s == State::Stopping => Err(exited_early(p)),
        _ if Instant::now() >= deadline => Err(timed_out(p, timeout)),
        _ => Err(timed_out(p, timeout)),
    }
}

fn wait_log(p: &ManagedProcess, re: &Regex, deadline: Instant, timeout: Duration) -> Result<()> {
    let mut line_start = 0u64;
    loop {
        let chunk = p.ring(Stream::Combined).read_since(line_start);
        let text = String::from_utf8_lossy(&chunk.data);
        if text.split('\n').any(|l| re.is_match(l)) {
            return if p.state() == State::Running
                || p.state().is_terminal() && p.exit_code() == Some(0)
            {
                // A process that printed the line and finished cleanly was ready, too.
                Ok(())
            } else {
                Err(exited_early(p))
            };
        }
        // Next time start at the last unfinished line.
        let done = chunk
            .data
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        line_start = chunk.start + done as u64;
        if p.state().is_terminal() && p.open_pumps() == 0 {
            return Err(exited_early(p));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(p, timeout));
        }
        let end = chunk.end;
        p.wait_output_until(deadline - now, || {
            p.output_end(Stream::Combined) > end || p.state().is_terminal() && p.open_pumps() == 0
        });
    }
}

fn wait_probe(
    p: &ManagedProcess,
    deadline: Instant,
    timeout: Duration,
    mut probe: impl FnMut() -> bool,
) -> Result<()> {
    loop {
        if p.state() != State::Running {
            return Err(exited_early(p));
        }
        if probe() {
            return if p.state() == State::Running {
                Ok(())
            } else {
                Err(exited_early(p))
            };
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(p, timeout));
        }
        p.wait_until(RETRY.min(deadline - now), || p.state() != State::Running);
    }
}

fn exited_early(p: &ManagedProcess) -> Error {
    let last = p.last_lines(LAST_LINES);
    let last = if last.trim().is_empty() {
        "(no output)".to_string()
    } else {
        last.trim_end().to_string()
    };
    Error::Other(format!(
        "process {:?} ended before it was ready ({}); last output:\n{last}",
        p.id(),
        p.summary()
    ))
}

fn timed_out(p: &ManagedProcess, timeout: Duration) -> Error {
    let what = match &p.spec().ready {
        None => "running".to_string(),
        Some(ReadyCheck::Log(re)) => format!("a log line matching {:?}", re.as_str()),
        Some(ReadyCheck::Port(port)) => format!("port {port} to accept"),
        Some(ReadyCheck::Url(u)) => format!("{u} to answer"),
    };
    Error::Timeout(format!(
        "process {:?} not ready after {timeout:?}: waited for {what} ({})",
        p.id(),
        p.summary()
    ))
}

/// Host, port and path of a plain `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpTarget {
    host: String,
    port: u16,
    path: String,
}

fn parse_http_url(url: &str) -> Result<HttpTarget> {
    let bad = |why: &str| Error::invalid(format!("ready-url {url:?}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("missing or unsupported host"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad("missing host or port"));
    }
    Ok(HttpTarget {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

fn http_ok(t: &HttpTarget) -> bool {
    let Ok(mut addrs) = (t.host.as_str(), t.port).to_socket_addrs() else {
        return false;
    };
    let Some(addr) = addrs.next() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(CONNECT_TIMEOUT));
    let _ = s.set_write_timeout(Some(CONNECT_TIMEOUT));
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
        t.path, t.host, t.port
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    status_below_500(&head[..n])
}

/// `HTTP/1.1 204 ...` → true; 5xx, garbage or a short answer → false.
fn status_below_500(head: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(&head[..head.len().min(12)]) else {
        return false;
    };
    let mut parts = text.split(' ');
    let (Some(proto), Some(code)) = (parts.next(), parts.next()) else {
        return false;
    };
    proto.starts_with("HTTP/")
        && code.len() == 3
        && code.parse::<u16>().is_ok_and(|c| (100..500).contains(&c))
}

#[allow(dead_code)]
fn _assert_request_type(_: &OutputRequest) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/health?x=1").unwrap(),
            HttpTarget {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/health?x=1".into()
            }
        );
        assert_eq!(parse_http_url("http://localhost").unwrap().port, 80);
        assert_eq!(parse_http_url("http://[::1]:9/").unwrap().host, "::1");
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://:80/",
            "http://h:99999/",
            "http://u@h/",
            "x",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert!(status_below_500(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_below_500(b"HTTP/1.0 404 Not"));
        assert!(!status_below_500(b"HTTP/1.1 503 Busy"));
        assert!(!status_below_500(b"SSH-2.0"));
        assert!(!status_below_500(b""));
        assert!(!status_below_500(b"HTTP/1.1 2"));
        assert!(!status_below_500(&[0xff; 12]));
    }
}
