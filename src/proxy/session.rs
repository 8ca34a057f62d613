//! One client connection and its upstream connection: the per-connection state machine the
//! event loop drives (`Conn::drive`) whenever either socket is ready. This file coordinates; the
//! parts live beside it: `half` (a socket and its buffers, for either side), `forward` (the
//! HTTP exchange flow), `exchange` (body framing and what is captured), `headers` (pure head
//! rewrites), `answers` (responses the proxy makes itself) and `channel` (the page's
//! `/__agnt/ws`).
//!
//! Modes: `Http` (request/response exchanges, keep-alive on both sides, the upstream connection
//! reused across exchanges), `Tunnel` (after any 101: bytes both ways until both sides close) and
//! `Ws` (the page channel). Bodies stream through in both directions; only HTML being injected
//! is buffered (bounded by `exchange::INJECT_LIMIT`).

use std::{
    collections::HashMap,
    io,
    net::{Shutdown, SocketAddr},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use mio::{Token, net::TcpStream};

use super::{
    Shared, answers,
    channel::{ExecMeta, WsPage},
    exchange::Exchange,
    half::{BACKPRESSURE, Half, Upstream},
    http::{self, BodyFraming, RequestHead},
};

/// An upstream connect that has not completed after this fails with 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Http,
    Tunnel,
    Ws,
}

/// What a drive step may touch besides the connection.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub registry: &'a mio::Registry,
    pub scratch: &'a mut [u8],
    pub exec_meta: &'a mut HashMap<String, ExecMeta>,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub id: usize,
    pub(super) client: Half,
    pub(super) peer: SocketAddr,
    pub(super) up: Option<Upstream>,
    pub mode: Mode,
    pub(super) ex: Option<Exchange>,
    /// Close once what is queued for the client is written (reads are drained and dropped).
    pub(super) close_after: bool,
    pub closed: bool,
    pub last_activity: Instant,
    /// A request head has started arriving (slowloris guard).
    pub(super) head_started: Option<Instant>,
    pub ws: Option<WsPage>,
}

/// Token of a connection's client socket.
pub(crate) fn client_token(id: usize) -> Token {
    Token(2 + 2 * id)
}

/// Token of a connection's upstream socket.
pub(crate) fn upstream_token(id: usize) -> Token {
    Token(3 + 2 * id)
}

impl Conn {
    /// A freshly accepted client (already registered by the loop).
    pub fn new(id: usize, client: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            id,
            client: Half::new(client, true),
            peer,
            up: None,
            mode: Mode::Http,
            ex: None,
            close_after: false,
            closed: false,
            last_activity: Instant::now(),
            head_started: None,
            ws: None,
        }
    }

    /// Readiness reported for the client socket (`closed` = the peer's FIN was seen).
    pub fn client_ready(&mut self, readable: bool, writable: bool, closed: bool) {
        self.client.ready(readable, writable, closed);
    }

    /// Readiness reported for the upstream socket.
    pub fn upstream_ready(&mut self, readable: bool, writable: bool, closed: bool) {
        if let Some(up) = &mut self.up {
            up.half.ready(readable, writable, closed);
        }
    }

    /// Runs the state machine until no step makes progress.
    pub fn drive(&mut self, cx: &mut Ctx<'_>) {
        loop {
            if self.closed {
                return;
            }
            let mut progress = self.read_client(cx);
            progress |= self.process_client(cx);
            progress |= self.write_upstream(cx);
            progress |= self.read_upstream(cx);
            progress |= self.process_upstream(cx);
            progress |= self.write_client();
            progress |= self.check_ends();
            if !progress {
                return;
            }
        }
    }

    fn up_pending(&self) -> usize {
        self.up.as_ref().map_or(0, |u| u.half.pending())
    }

    fn read_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        if self.closed {
            return false;
        }
        let cap = match self.mode {
            Mode::Http if self.close_after => usize::MAX, // draining: read and discard
            Mode::Http if self.ex.is_some() => {
                if self.up_pending() > BACKPRESSURE || self.client.inb.len() > BACKPRESSURE {
                    return false;
                }
                BACKPRESSURE
            }
            Mode::Http => {
                // Answers the proxy makes itself (agnt.js, 404s, 502s) queue for the client: a
                // client that sends requests without reading them is not read either.
                if self.client.pending() > BACKPRESSURE {
                    return false;
                }
                http::MAX_HEAD + 1
            }
            Mode::Tunnel => {
                if self.up_pending() > BACKPRESSURE {
                    return false;
                }
                BACKPRESSURE
            }
            Mode::Ws => {
                if self.client.pending() > 4 * BACKPRESSURE {
                    return false;
                }
                BACKPRESSURE
            }
        };
        // Discard what a rejected client keeps sending.
        let discard = self.close_after && self.mode == Mode::Http;
        match self.client.read(cx.scratch, cap, discard) {
            Ok(got) => {
                if got.bytes > 0 {
                    self.last_activity = Instant::now();
                }
                got.progress()
            }
            Err(_) => {
                self.closed = true;
                true
            }
        }
    }

    /// Sends bytes to the client: written right away together with anything queued (one
    /// `writev`), and whatever the socket does not take is queued.
    pub(super) fn send_client(&mut self, data: &[u8]) {
        if data.is_empty() || self.closed {
            return;
        }
        if self.client.send(data).is_err() {
            self.closed = true;
        }
    }

    /// Queues bytes for the client without a syscall (a head whose body follows at once).
    pub(super) fn queue_client(&mut self, data: &[u8]) {
        self.client.queue(data);
    }

    fn write_client(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match self.client.flush() {
            Ok(progress) => progress,
            Err(_) => {
                self.closed = true;
                true
            }
        }
    }

    /// Queues bytes for the upstream (written by `write_upstream`).
    pub(super) fn send_upstream(&mut self, data: &[u8]) {
        if let Some(up) = &mut self.up {
            up.half.queue(data);
        }
    }

    fn write_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let Some(up) = &mut self.up else { return false };
        match up.poll_connect() {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                self.fail_upstream(cx, &e);
                return true;
            }
        }
        let mut progress = match up.half.flush() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::WriteZero => false,
            Err(e) => {
                self.fail_upstream(cx, &e);
                return true;
            }
        };
        // Client half-closed a tunnel: pass the FIN on once everything is written.
        if self.mode == Mode::Tunnel
            && self.client.eof
            && self.client.inb.is_empty()
            && up.half.flushed()
            && !up.half.write_shut
        {
            up.half.shutdown_write();
            progress = true;
        }
        progress
    }

    fn read_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let cpending = self.client.pending();
        let Some(up) = &mut self.up else { return false };
        if !up.connected || cpending > BACKPRESSURE {
            return false;
        }
        match up.half.read(cx.scratch, BACKPRESSURE + 1, false) {
            Ok(got) => got.progress(),
            Err(e) => {
                if self.mode == Mode::Http && self.ex.as_ref().is_some_and(|x| x.resp_started) {
                    // Mid-body reset: treat like a close so what we have is flushed.
                    up.half.eof = true;
                    return true;
                }
                self.fail_upstream(cx, &e);
                true
            }
        }
    }

    /// Opens a fresh upstream connection (dropping any previous one).
    pub(super) fn connect_upstream(&mut self, cx: &mut Ctx<'_>) -> io::Result<()> {
        self.up = None;
        let up = Upstream::connect(cx.shared.target.addr, cx.registry, upstream_token(self.id))?;
        cx.shared
            .stats
            .upstream_connects
            .fetch_add(1, Ordering::Relaxed);
        self.up = Some(up);
        Ok(())
    }

    /// Closes and half-closes once buffers are flushed.
    fn check_ends(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let flushed = self.client.flushed();
        match self.mode {
            Mode::Http | Mode::Ws => {
                if self.close_after && flushed {
                    let _ = self.client.sock.shutdown(Shutdown::Write);
                    self.closed = true;
                    return true;
                }
                if self.client.eof {
                    let busy = self.mode == Mode::Http
                        && self.ex.as_ref().is_some_and(|x| x.req_body.is_none());
                    if !busy && flushed {
                        self.closed = true;
                        return true;
                    }
                    if self.ex.as_ref().is_some_and(|x| x.req_body.is_some()) {
                        // The client went away mid-request.
                        self.closed = true;
                        return true;
                    }
                }
            }
            Mode::Tunnel => {
                let up_done = self
                    .up
                    .as_ref()
                    .is_none_or(|u| u.half.eof && u.half.inb.is_empty());
                if up_done && flushed {
                    self.client.shutdown_write();
                }
                if (self.close_after && flushed) || (self.client.write_shut && self.client.eof) {
                    self.closed = true;
                    return true;
                }
            }
        }
        false
    }

    /// Periodic check: header/idle/connect timeouts. Returns whether anything changed.
    pub fn check_timeouts(&mut self, cx: &mut Ctx<'_>, now: Instant) -> bool {
        if self.closed {
            return false;
        }
        let cfg = &cx.shared.config;
        if let Some(up) = &self.up
            && !up.connected
            && now.duration_since(up.connect_started) > CONNECT_TIMEOUT
        {
            self.fail_upstream(cx, &"connecting to the upstream timed out");
            return true;
        }
        if self.mode != Mode::Http || self.ex.is_some() {
            return false;
        }
        if self.close_after {
            // Already answered and closing: a client that does not read its answer gets until
            // the idle timeout, then it is dropped (no second answer is ever queued).
            if now.duration_since(self.last_activity) > cfg.idle_timeout {
                self.closed = true;
                return true;
            }
            return false;
        }
        if let Some(t) = self.head_started {
            if now.duration_since(t) > cfg.header_timeout {
                cx.shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                self.bad_request(
                    cx,
                    408,
                    "Request Timeout",
                    "request head not received in time",
                );
                self.closed = self.client.flushed();
                return true;
            }
        } else if now.duration_since(self.last_activity) > cfg.idle_timeout {
            self.closed = true;
            return true;
        }
        false
    }

    fn process_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        match self.mode {
            Mode::Ws => {
                if self.client.inb.is_empty() {
                    return false;
                }
                let data = std::mem::take(&mut self.client.inb);
                self.feed_ws(cx, &data);
                true
            }
            Mode::Tunnel => {
                if self.client.inb.is_empty() || self.up.is_none() {
                    return false;
                }
                let data = std::mem::take(&mut self.client.inb);
                self.send_upstream(&data);
                true
            }
            Mode::Http => self.process_http_client(cx),
        }
    }

    fn process_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        match self.mode {
            Mode::Ws => false,
            Mode::Tunnel => {
                let Some(up) = &mut self.up else { return false };
                if up.half.inb.is_empty() {
                    return false;
                }
                let data = std::mem::take(&mut up.half.inb);
                self.send_client(&data);
                true
            }
            Mode::Http => self.process_http_upstream(cx),
        }
    }

    /// The proxy's own routes under `/__agnt/`.
    pub(super) fn local_route(&mut self, cx: &mut Ctx<'_>, head: &RequestHead) {
        let path = head.target.split('?').next().unwrap_or("");
        let has_body = !matches!(http::request_framing(head), Ok(BodyFraming::None));
        match path {
            "/__agnt/ws" => self.open_channel(cx, head),
            "/__agnt/agnt.js" => self.send_client(&answers::script(&head.target, has_body)),
            "/__agnt/headers" => self.send_client(&answers::document_headers(
                &cx.shared.log,
                &head.target,
                has_body,
            )),
            p if p.starts_with("/__agnt/m/") => {
                self.send_client(&answers::module(&head.target, has_body))
            }
            _ => self.send_client(&answers::unknown_route(has_body)),
        }
        if has_body || !http::keep_alive(head.version, &head.headers) {
            self.close_after = self.mode == Mode::Http;
        }
    }

    /// Answers with a short error and closes once it is written.
    pub(super) fn bad_request(&mut self, cx: &mut Ctx<'_>, status: u16, reason: &str, why: &str) {
        cx.shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        self.send_client(&answers::client_error(status, reason, why));
        self.client.inb.clear();
        self.close_after = true;
        self.head_started = None;
        self.up = None;
    }
}
