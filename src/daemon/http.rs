//! The daemon's HTTP face on 127.0.0.1 (tiny_http): `GET /healthz`, `GET /metrics` (Prometheus
//! text from the atomic counters) and MCP Streamable HTTP at `POST /mcp` (JSON responses only).
//! Who may call is decided in one place, `http_auth` (loopback `Host` with our port, no
//! foreign browser `Origin`, a bearer token on everything but `/healthz`).
//!
//! Concurrency: one dispatcher thread takes requests from tiny_http and answers the cheap ones
//! itself (`/healthz`, `/metrics`, refusals); each `POST /mcp` goes to one of [`WORKERS`] pool
//! threads, or is answered 503 when all are busy. Bodies are limited to [`MAX_BODY`] bytes and
//! read under deadlines (every socket read [`READ_TIMEOUT`], the whole body [`BODY_DEADLINE`]),
//! so a long `wait` or a stalled upload never blocks `/healthz` or another client.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    Error, Result,
    mcp::{
        Session, Toolbox,
        jsonrpc::{Message, code},
    },
    thread::JoinOnDrop,
};

use super::{clients::Clients, http_auth::HttpAuth};

/// Largest `/mcp` body accepted.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// `POST /mcp` requests served at once; more are answered 503.
pub const WORKERS: usize = 4;
/// Longest a socket read (a request head, a piece of a body) or write may block.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a whole request body may take to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// A running HTTP face.
pub struct HttpHandle {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinOnDrop<()>>,
    /// The bound port.
    pub port: u16,
    /// What `daemon info` shows (URL, token, token file, allowed origins).
    pub info: Value,
}

impl std::fmt::Debug for HttpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandle")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl HttpHandle {
    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves on `127.0.0.1:port` (0 = any free port), admitting requests `auth` accepts; `clients`
/// lists requests in progress.
pub fn serve(
    tools: Arc<Toolbox>,
    port: u16,
    mut auth: HttpAuth,
    clients: Option<Arc<Clients>>,
) -> Result<HttpHandle> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| Error::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    // Accepted sockets inherit these (Linux copies the listener's options): no read or write on
    // a connection blocks longer, whatever tiny_http's connection threads do.
    for which in [
        rustix::net::sockopt::Timeout::Recv,
        rustix::net::sockopt::Timeout::Send,
    ] {
        rustix::net::sockopt::set_socket_timeout(&listener, which, Some(READ_TIMEOUT))
            .map_err(|e| Error::io("setting the http socket timeouts", None, e.into()))?;
    }
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .unwrap_or(port);
    auth.port = port;
    let info = auth.info();
    log::info!("http face on http://127.0.0.1:{port}");
    let server = Arc::new(server);
    // Rendezvous: a request is handed over only to a worker waiting for one.
    let (tx, rx) = crossbeam_channel::bounded::<tiny_http::Request>(0);
    for i in 0..WORKERS {
        let (rx, tools, clients) = (rx.clone(), tools.clone(), clients.clone());
        // Detached: a worker may be inside a long `wait` call; it ends when the dispatcher
        // drops the channel, after its current request.
        crate::thread::spawn(format!("daemon-http-{i}"), 512 * 1024, move || {
            for req in rx {
                let _listed = clients.as_ref().map(|c| c.admit_http());
                serve_mcp(&tools, req);
            }
        })
        .map_err(|e| Error::io("starting an http worker", None, e))?;
    }
    let s = server.clone();
    let thread = crate::thread::spawn("daemon-http", 256 * 1024, move || {
        for req in s.incoming_requests() {
            if let Some(req) = handle(&tools, &auth, req) {
                match tx.try_send(req) {
                    Ok(()) => {}
                    Err(e) => respond(
                        e.into_inner(),
                        503,
                        "text/plain",
                        format!("busy: {WORKERS} /mcp requests are in progress; retry shortly\n"),
                    ),
                }
            }
        }
    })
    .map_err(|e| Error::io("starting the http thread", None, e))?;
    Ok(HttpHandle {
        server,
        thread: Some(JoinOnDrop::new(thread)),
        port,
        info,
    })
}

fn header<'a>(req: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// Whether `host` (a Host header or the authority of an Origin) names the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            })
            .unwrap_or(host)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// Whether an `Origin` header value is a loopback origin (`null` is not).
pub fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| !r.contains('/') && is_loopback_host(r))
}

fn respond(req: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let ct = tiny_http::Header::from_bytes("Content-Type", content_type).expect("static header");
    let _ = req.respond(
        tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(ct),
    );
}

/// Answers what the dispatcher answers itself; returns a `POST /mcp` for a worker.
fn handle(
    tools: &Arc<Toolbox>,
    auth: &HttpAuth,
    req: tiny_http::Request,
) -> Option<tiny_http::Request> {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    if let Err((status, why)) = auth.check(
        &path,
        header(&req, "Host"),
        header(&req, "Origin"),
        header(&req, "Authorization"),
    ) {
        respond(req, status, "text/plain", format!("{why}\n"));
        return None;
    }
    match (req.method(), path.as_str()) {
        (tiny_http::Method::Get, "/healthz") => respond(req, 200, "text/plain", "ok\n".into()),
        (tiny_http::Method::Get, "/metrics") => {
            respond(req, 200, "text/plain; version=0.0.4", metrics(tools))
        }
        (tiny_http::Method::Post, "/mcp") => {
            if req.body_length().is_some_and(|n| n > MAX_BODY) {
                respond(
                    req,
                    413,
                    "text/plain",
                    format!("request body too large (limit {MAX_BODY} bytes)\n"),
                );
                return None;
            }
            return Some(req);
        }
        (_, "/mcp") => respond(
            req,
            405,
            "text/plain",
            "use POST for /mcp (JSON responses; no SSE stream)\n".into(),
        ),
        _ => respond(
            req,
            404,
            "text/plain",
            "not found: try /healthz, /metrics or POST /mcp\n".into(),
        ),
    }
    None
}

/// Reads a body of at most [`MAX_BODY`] bytes within [`BODY_DEADLINE`].
fn read_body(req: &mut tiny_http::Request) -> std::result::Result<Vec<u8>, (u16, &'static str)> {
    let deadline = Instant::now() + BODY_DEADLINE;
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let reader = req.as_reader();
    loop {
        if Instant::now() >= deadline {
            return Err((408, "request body too slow\n"));
        }
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(body),
            Ok(n) if body.len() + n > MAX_BODY => return Err((413, "request body too large\n")),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err((408, "request body stalled\n"));
            }
            Err(_) => return Err((400, "request body unreadable\n")),
        }
    }
}

/// A worker's `POST /mcp`: read the body under its deadlines, answer the message.
fn serve_mcp(tools: &Arc<Toolbox>, mut req: tiny_http::Request) {
    let body = match read_body(&mut req) {
        Ok(b) => b,
        Err((status, why)) => return respond(req, status, "text/plain", why.into()),
    };
    let answer = match Message::parse_line(&body) {
        Err(resp) => Some(resp),
        Ok(Message::Request(r)) => {
            let (tx, _rx) = crossbeam_channel::unbounded();
            Some(Session::new(tools.clone(), tx).handle_sync(r))
        }
        Ok(_) => None,
    };
    match answer {
        Some(resp) => {
            let status = match &resp.outcome {
                Err(e) if e.code == code::PARSE_ERROR || e.code == code::INVALID_REQUEST => 400,
                _ => 200,
            };
            let body =
                serde_json::to_string(&Message::Response(resp).to_value()).unwrap_or_default();
            respond(req, status, "application/json", body)
        }
        None => {
            let _ = req.respond(tiny_http::Response::empty(202));
        }
    }
}

/// Prometheus text exposition of the counters.
pub fn metrics(tools: &Toolbox) -> String {
    let (host, server) = (tools.host(), tools.server());
    let info = crate::tools::daemon::info(host, server);
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: i64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "agnt_processes_active",
        "gauge",
        "Supervised processes alive",
        n(&info["process_info"]["active"]),
    );
    metric(
        "agnt_processes_started_total",
        "counter",
        "Processes started",
        n(&info["process_info"]["total_started"]),
    );
    metric(
        "agnt_processes_failed_total",
        "counter",
        "Processes that failed",
        n(&info["process_info"]["total_failed"]),
    );
    metric(
        "agnt_proxies_active",
        "gauge",
        "Proxies listening",
        n(&info["proxy_info"]["active"]),
    );
    metric(
        "agnt_proxies_started_total",
        "counter",
        "Proxies started",
        n(&info["proxy_info"]["total_started"]),
    );
    let (mut logged, mut dropped) = (0i64, 0i64);
    if let Some(px) = host.proxies_if_started() {
        for p in px.list(None) {
            let s = p.log_stats();
            logged += s.total_entries as i64;
            dropped += s.dropped as i64;
        }
    }
    metric(
        "agnt_proxy_log_entries_total",
        "counter",
        "Traffic entries logged",
        logged,
    );
    metric(
        "agnt_proxy_log_dropped_total",
        "counter",
        "Traffic entries dropped",
        dropped,
    );
    metric(
        "agnt_clients",
        "gauge",
        "Connected MCP clients",
        server.clients() as i64,
    );
    metric(
        "agnt_tool_calls_total",
        "counter",
        "Tool calls served",
        host.calls() as i64,
    );
    metric(
        "agnt_uptime_seconds",
        "gauge",
        "Daemon uptime",
        host.uptime().as_secs() as i64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_checks() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.com",
            "evil.com:80",
            "localhost.evil.com",
            "127.0.0.2",
            "",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
        assert!(is_loopback_origin("http://localhost:3000"));
        assert!(is_loopback_origin("https://127.0.0.1"));
        assert!(!is_loopback_origin("http://evil.com"));
        assert!(!is_loopback_origin("null"));
        assert!(!is_loopback_origin("http://localhost.evil.com"));
        assert!(!is_loopback_origin("http://localhost/x"));
    }
}
