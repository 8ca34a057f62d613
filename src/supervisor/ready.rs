//! Readiness: [`ManagedProcess::wait_ready`] blocks until a process's `ReadyCheck` holds while
//! it runs, and the one port/HTTP probe ([`probe_port`], [`probe_http`]) that it and the `wait`
//! tool share.
//!
//! `Log` follows the combined output with `wait_output` cursors (no polling). `Port` and `Url`
//! must ask the socket, so they retry every 50 ms, sleeping on the process's condition
//! variable so an exit ends the wait at once; any status below 500 counts as ready.
//!
//! The probes are a tiny HTTP/1.1 GET over a std `TcpStream` — through [`crate::tls`] for
//! `https://`, verified by `tls::should_verify` (loopback not, other hosts against the system's
//! roots, an explicit choice wins) — bounded by one deadline for connect, TLS handshake, request
//! and status line: every socket read and write gets the time left as its timeout.
//! `localhost` means 127.0.0.1 and ::1 (dev servers bind either), other names try every address
//! they resolve to, and IPv6 literals are bracketed in the `Host` header. They never panic,
//! whatever the URL or the answer.

use std::{
    fmt,
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use regex::Regex;

use super::{ManagedProcess, ReadyCheck, State, Stream};
use crate::{Error, Result, tls};

const RETRY: Duration = Duration::from_millis(50);
/// One probe of `wait_ready` takes at most this long.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const LAST_LINES: usize = 10;
/// The status line must fit in this many bytes (longer reason phrases are cut, not refused).
const STATUS_LINE_MAX: usize = 512;
/// Both loopback addresses: what `localhost` and a bare port mean.
const LOOPBACK: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

impl ManagedProcess {
    /// Blocks until the spec's `ready` check holds (or, without one, until Running).
    /// Errors with `Timeout` or with a message naming the process and its last output lines
    /// when it exits first.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        wait_ready(self, timeout)
    }
}

/// Connects to `port` on loopback (127.0.0.1, then ::1) within `timeout`.
pub fn probe_port(port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let deadline = Deadline::after(timeout);
    connect_any(&LOOPBACK.map(|ip| SocketAddr::new(ip, port)), deadline).map(drop)
}

/// GETs an `http://` or `https://` URL and returns the answer's status code (any code 100-599;
/// the caller decides which count). Connect, TLS handshake, request and status line share one
/// `timeout` (name resolution does not: `localhost` and IP addresses need none). `verify_tls`
/// says whether an `https://` server's certificate is checked (`None`: [`tls::should_verify`]'s
/// default for the host); plain `http://` ignores it.
pub fn probe_http(
    url: &str,
    timeout: Duration,
    verify_tls: Option<bool>,
) -> Result<u16, ProbeError> {
    HttpTarget::parse(url)?.probe(timeout, verify_tls)
}

/// Why a probe got no status (or no connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The URL cannot be probed: not `http(s)://`, no host, a bad port, a space in the path...
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// TLS failed: the certificate did not verify, the handshake broke, the server does not
    /// speak TLS, or no client could be set up (no trusted roots, a bad server name).
    Tls {
        /// The URL probed.
        url: String,
        /// What went wrong (names certificate verification when that is the cause).
        reason: String,
        /// The server's certificate was refused, or verification cannot run (no trusted
        /// roots): asking again will not help.
        lasting: bool,
    },
    /// The host name resolved to no address.
    Resolve {
        /// The name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// No address accepted a connection: `addr: error` for each address tried.
    Connect(String),
    /// The answer did not start with an HTTP/1.0 or HTTP/1.1 status line (its start, lossy).
    NotHttp(String),
    /// Sending the request or reading the answer failed.
    Io(String),
    /// No answer within the probe's timeout.
    Timeout(Duration),
}

impl ProbeError {
    /// The URL itself is the problem: retrying cannot help.
    pub fn is_invalid_url(&self) -> bool {
        matches!(self, ProbeError::InvalidUrl { .. })
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::InvalidUrl { url, reason } => {
                write!(
                    f,
                    "invalid url {url:?}: {reason}; expected http(s)://host[:port]/path"
                )
            }
            ProbeError::Tls { url, reason, .. } => write!(f, "cannot probe {url}: {reason}"),
            ProbeError::Resolve { host, reason } => write!(f, "cannot resolve {host:?}: {reason}"),
            ProbeError::Connect(tried) => write!(f, "cannot connect: {tried}"),
            ProbeError::NotHttp(start) => write!(f, "not an HTTP/1.x answer: {start:?}"),
            ProbeError::Io(msg) => f.write_str(msg),
            ProbeError::Timeout(t) => write!(f, "no answer within {t:?}"),
        }
    }
}

impl std::error::Error for ProbeError {}

impl ProbeError {
    /// Asking again cannot succeed: the certificate was refused (or cannot be verified here).
    /// Waits end at once on such an error instead of retrying until their timeout.
    pub fn is_lasting(&self) -> bool {
        matches!(self, ProbeError::Tls { lasting: true, .. })
    }
}

/// A parsed `http://` or `https://` URL: what a probe connects to and asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `https://`: the probe speaks TLS.
    pub tls: bool,
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// Port (80, or 443 for `https://`, when the URL names none).
    pub port: u16,
    /// Request target: path and query, never empty (`/`), without the fragment.
    pub path: String,
}

impl HttpTarget {
    /// Parses `http(s)://host[:port][/path][?query][#fragment]`; hosts may be names, IPv4 or
    /// bracketed IPv6 addresses (`http://[::1]:3000/`).
    pub fn parse(url: &str) -> Result<HttpTarget, ProbeError> {
        let bad = |reason: &'static str| ProbeError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("no scheme"));
        };
        let tls = scheme.eq_ignore_ascii_case("https");
        if !tls && !scheme.eq_ignore_ascii_case("http") {
            return Err(bad("only http:// and https:// URLs can be probed"));
        }
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let tail = tail.split('#').next().unwrap_or_default();
        let path = match tail {
            "" => "/".to_string(),
            t if t.starts_with('/') => t.to_string(),
            t => format!("/{t}"),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces and control characters must be percent-encoded"));
        }
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let Some((host, after)) = v6.split_once(']') else {
                    return Err(bad("unclosed [ in the host"));
                };
                if host.parse::<Ipv6Addr>().is_err() {
                    return Err(bad("bad IPv6 address"));
                }
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(bad("unexpected text after ]")),
                    },
                }
            }
            None => match authority.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(bad("IPv6 addresses need brackets, e.g. http://[::1]:3000/"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
        {
            return Err(bad("bad host"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(port) if port != 0 => port,
                    _ => return Err(bad("bad port")),
                }
            }
            Some(_) => return Err(bad("bad port")),
        };
        Ok(HttpTarget {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port`, with an IPv6 address in brackets (what the `Host` header carries).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `http(s)://authority/path`: the URL probed, for messages.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }

    /// GETs the target and returns the answer's status code; see [`probe_http`].
    pub fn probe(&self, timeout: Duration, verify_tls: Option<bool>) -> Result<u16, ProbeError> {
        let deadline = Deadline::after(timeout);
        let sock = Timed {
            sock: connect_any(&self.addrs()?, deadline)?,
            deadline,
        };
        if !self.tls {
            return self.exchange(sock, timeout);
        }
        let tls_err = |reason: String, lasting: bool| ProbeError::Tls {
            url: self.url(),
            reason,
            lasting,
        };
        let verify = tls::should_verify(&self.host, verify_tls);
        let connector =
            tls::Connector::new(&self.host, verify).map_err(|e| tls_err(e.to_string(), true))?;
        let mut stream = connector
            .wrap(sock)
            .map_err(|e| tls_err(e.to_string(), false))?;
        // The handshake runs inside the first write and read, under the same deadline.
        match self.exchange(&mut stream, timeout) {
            Err(ProbeError::Io(msg)) if !stream.is_established() => Err(tls_err(
                format!("the handshake did not finish: {msg}"),
                false,
            )),
            done => done,
        }
    }

    /// Sends the request and reads the status line.
    fn exchange(
        &self,
        mut stream: impl Read + Write,
        timeout: Duration,
    ) -> Result<u16, ProbeError> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: agnt-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path,
            self.authority()
        );
        let io_err = |what: &str, e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProbeError::Timeout(timeout),
            // Only TLS says InvalidData: a certificate that did not verify, a broken handshake.
            io::ErrorKind::InvalidData => ProbeError::Tls {
                url: self.url(),
                reason: e.to_string(),
                lasting: tls::is_certificate_refusal(&e),
            },
            _ => ProbeError::Io(format!("{what}: {e}")),
        };
        stream
            .write_all(request.as_bytes())
            .map_err(|e| io_err("sending the request", e))?;
        let mut buf = [0u8; STATUS_LINE_MAX];
        let mut n = 0;
        let line = loop {
            if let Some(end) = buf[..n].iter().position(|&b| b == b'\n') {
                break &buf[..end];
            }
            if n == buf.len() {
                break &buf[..n];
            }
            match stream.read(&mut buf[n..]) {
                Ok(0) if n == 0 => {
                    return Err(ProbeError::Io(
                        "the server closed the connection without an answer".into(),
                    ));
                }
                Ok(0) => break &buf[..n],
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("reading the answer", e)),
            }
        };
        parse_status_line(line).ok_or_else(|| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let start = &line[..line.len().min(64)];
            ProbeError::NotHttp(String::from_utf8_lossy(start).into_owned())
        })
    }

    /// Where to connect, in order: the address itself, both loopbacks for `localhost`, else
    /// every address the name resolves to.
    fn addrs(&self) -> Result<Vec<SocketAddr>, ProbeError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        if self.host.eq_ignore_ascii_case("localhost") {
            return Ok(LOOPBACK.map(|ip| SocketAddr::new(ip, self.port)).to_vec());
        }
        let resolve_err = |reason: String| ProbeError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| resolve_err(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_err("no address".into()));
        }
        Ok(addrs)
    }
}

/// The status code of an HTTP/1.0 or HTTP/1.1 status line (`HTTP/1.1 200 OK`, with or without
/// reason phrase and `\r`); `None` for anything else, including codes outside 100-599.
pub fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let (code, after) = rest.split_at_checked(3)?;
    if !code.iter().all(u8::is_ascii_digit) || !(after.is_empty() || after[0] == b' ') {
        return None;
    }
    let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    (100..=599).contains(&code).then_some(code)
}

/// The end of a probe's time budget.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn after(budget: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now
                .checked_add(budget)
                .unwrap_or(now + Duration::from_secs(3600)),
            budget,
        }
    }

    /// Time left; `Timeout` once it is up (so no socket timeout is ever zero).
    fn left(self) -> Result<Duration, ProbeError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ProbeError::Timeout(self.budget))
        } else {
            Ok(left)
        }
    }
}

/// A probe's socket: every read and write gets the time left as its timeout, so a server that
/// drips bytes (or stalls a TLS handshake) cannot stretch the probe past its deadline.
struct Timed {
    sock: TcpStream,
    deadline: Deadline,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        self.deadline
            .left()
            .map_err(|_| io::ErrorKind::TimedOut.into())
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.set_read_timeout(Some(self.left()?))?;
        self.sock.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.set_write_timeout(Some(self.left()?))?;
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Connects to the first address that accepts; the error lists every address tried.
fn connect_any(addrs: &[SocketAddr], deadline: Deadline) -> Result<TcpStream, ProbeError> {
    let mut tried = Vec::new();
    for addr in addrs {
        match TcpStream::connect_timeout(addr, deadline.left()?) {
            Ok(s) => return Ok(s),
            Err(e) => tried.push(format!("{addr}: {e}")),
        }
    }
    Err(ProbeError::Connect(tried.join("; ")))
}

fn wait_ready(p: &ManagedProcess, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    // First: Running (or finished).
    p.wait_until(timeout, || {
        !matches!(p.state(), State::Pending | State::Starting)
    });
    match p.spec().ready.clone() {
        None => check_running(p, deadline, timeout),
        Some(ReadyCheck::Log(re)) => wait_log(p, &re, deadline, timeout),
        Some(ReadyCheck::Port(port)) => {
            wait_probe(p, deadline, timeout, |t| Ok(probe_port(port, t).is_ok()))
        }
        Some(ReadyCheck::Url(url)) => {
            let target = HttpTarget::parse(&url).map_err(|e| Error::invalid(e.to_string()))?;
            wait_probe(p, deadline, timeout, |t| match target.probe(t, None) {
                Ok(status) => Ok(status < 500),
                Err(e) if e.is_lasting() => Err(Error::invalid(format!(
                    "process {:?} cannot become ready: {e}",
                    p.id()
                ))),
                Err(_) => Ok(false),
            })
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
        // Dev servers colour their banners: a line matches with or without its ANSI codes.
        let matches = |l: &str| re.is_match(l) || re.is_match(&crate::urlwatch::strip_ansi(l));
        if text.split('\n').any(matches) {
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
    mut probe: impl FnMut(Duration) -> Result<bool>,
) -> Result<()> {
    loop {
        if p.state() != State::Running {
            return Err(exited_early(p));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if probe(PROBE_TIMEOUT.min(left).max(Duration::from_millis(1)))? {
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

#[cfg(test)]
mod tls_tests;

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn target(host: &str, port: u16, path: &str) -> HttpTarget {
        HttpTarget {
            tls: false,
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn parses_http_urls() {
        for (url, want) in [
            (
                "http://127.0.0.1:8080/health?x=1",
                target("127.0.0.1", 8080, "/health?x=1"),
            ),
            ("http://localhost", target("localhost", 80, "/")),
            ("HTTP://Example.com:81", target("Example.com", 81, "/")),
            ("http://[::1]:9/", target("::1", 9, "/")),
            ("http://[::1]", target("::1", 80, "/")),
            ("http://h?q=1#frag", target("h", 80, "/?q=1")),
            ("http://h/a#b", target("h", 80, "/a")),
            ("http://h#b", target("h", 80, "/")),
            ("http://h:65535/a/b/", target("h", 65535, "/a/b/")),
            (
                "https://h/x",
                HttpTarget {
                    tls: true,
                    ..target("h", 443, "/x")
                },
            ),
            (
                "HTTPS://[::1]:8443",
                HttpTarget {
                    tls: true,
                    ..target("::1", 8443, "/")
                },
            ),
        ] {
            assert_eq!(HttpTarget::parse(url), Ok(want), "{url}");
        }
        assert_eq!(target("::1", 9, "/").authority(), "[::1]:9");
        assert_eq!(target("localhost", 80, "/").authority(), "localhost:80");
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "",
            "x",
            "ftp://x",
            "http://",
            "http:///p",
            "http://:80/",
            "http://h:/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:+80/",
            "http://h:8a/",
            "http://u@h/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[nope]:80/",
            "http://::1:80/",
            "http://h/a b",
            "http://h/\r\nX: y",
            "http://h\u{e9}/",
            "http://h h/",
            "http://[]:80/",
        ] {
            match HttpTarget::parse(bad) {
                Err(e @ ProbeError::InvalidUrl { .. }) => {
                    assert!(e.to_string().contains("invalid url"), "{bad}: {e}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(HttpTarget::parse("https://").unwrap_err().is_invalid_url());
        assert_eq!(
            HttpTarget::parse("https://[::1]/a?b").map(|t| t.url()),
            Ok("https://[::1]:443/a?b".to_string())
        );
    }

    #[test]
    fn status_lines() {
        for (line, want) in [
            (&b"HTTP/1.1 200 OK\r"[..], Some(200)),
            (b"HTTP/1.1 200 OK", Some(200)),
            (b"HTTP/1.0 404 Not Found", Some(404)),
            (b"HTTP/1.1 204", Some(204)),
            (b"HTTP/1.1 204\r", Some(204)),
            (b"HTTP/1.1 503 Busy", Some(503)),
            (b"HTTP/1.1 101 Switching Protocols", Some(101)),
            (b"HTTP/1.1 099 Low", None),
            (b"HTTP/1.1 600 High", None),
            (b"HTTP/1.1 2", None),
            (b"HTTP/1.1 20", None),
            (b"HTTP/1.1 2000", None),
            (b"HTTP/1.1 20x OK", None),
            (b"HTTP/1.1  200 OK", None),
            (b"HTTP/2 200", None),
            (b"HTTP/1.1", None),
            (b"http/1.1 200 OK", None),
            (b"ICY 200 OK", None),
            (b"SSH-2.0-OpenSSH", None),
            (b"", None),
            (&[0xff; 12], None),
            (b"HTTP/1.1 \xff\xff\xff", None),
        ] {
            assert_eq!(
                parse_status_line(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Serves one connection with `answer` and returns the request it read.
    fn serve_once(
        listener: TcpListener,
        answer: &'static [u8],
    ) -> crate::thread::JoinOnDrop<String> {
        let h = crate::thread::spawn("test-http", 64 * 1024, move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(answer);
            String::from_utf8_lossy(&req).into_owned()
        })
        .unwrap();
        crate::thread::JoinOnDrop::new(h)
    }

    #[test]
    fn probes_v4_v6_and_localhost() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = serve_once(l, b"HTTP/1.0 204 No Content\r\n\r\n");
        let t = Duration::from_secs(10);
        assert_eq!(
            probe_http(&format!("http://localhost:{port}/h?x"), t, None),
            Ok(204)
        );
        let req = srv.join().unwrap();
        assert!(
            req.starts_with(&format!("GET /h?x HTTP/1.1\r\nHost: localhost:{port}\r\n")),
            "{req}"
        );
        // IPv6 may be off in a container: only probe it when we can listen there.
        if let Ok(l) = TcpListener::bind("[::1]:0") {
            let port = l.local_addr().unwrap().port();
            let srv = serve_once(l, b"HTTP/1.1 500 Oops\r\n\r\n");
            assert_eq!(
                probe_http(&format!("http://[::1]:{port}/"), t, Some(true)),
                Ok(500)
            );
            let req = srv.join().unwrap();
            assert!(
                req.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
                "{req}"
            );
            // localhost tries ::1 after 127.0.0.1 refuses.
            let l = TcpListener::bind(("::1", port)).unwrap();
            let _srv = serve_once(l, b"HTTP/1.1 200 OK\r\n\r\n");
            assert_eq!(probe_port(port, t), Ok(()));
        }
    }

    #[test]
    fn probe_errors_are_values() {
        let t = Duration::from_secs(10);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let _srv = serve_once(l, b"SSH-2.0-OpenSSH\r\n");
        let e = probe_http(&format!("http://127.0.0.1:{port}/"), t, None).unwrap_err();
        assert!(
            matches!(e, ProbeError::NotHttp(ref s) if s == "SSH-2.0-OpenSSH"),
            "{e}"
        );

        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let _srv = serve_once(l, b"");
        let e = probe_http(&format!("http://127.0.0.1:{port}/"), t, None).unwrap_err();
        assert!(matches!(e, ProbeError::Io(_)), "{e}");

        // Accepts but never answers: the read deadline ends the probe.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let e = probe_http(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(200),
            None,
        )
        .unwrap_err();
        assert_eq!(e, ProbeError::Timeout(Duration::from_millis(200)));
        drop(silent);

        let e = probe_port(port, t).unwrap_err();
        assert!(
            matches!(e, ProbeError::Connect(ref s) if s.contains("127.0.0.1")),
            "{e}"
        );
        assert!(
            probe_http("ftp://127.0.0.1/", t, None)
                .unwrap_err()
                .is_invalid_url()
        );
    }
}
