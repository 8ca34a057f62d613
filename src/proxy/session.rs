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
//! is buffered (bounded by `exchange::INJECT_LIMIT` and the proxy's injection budget). Deadlines
//! live in `deadline`; what a connection holds of the shared budgets, in `budget` leases.

use std::{
    collections::HashMap,
    io,
    net::{Shutdown, SocketAddr},
    sync::atomic::Ordering,
    time::Instant,
};

use mio::{Token, net::TcpStream};

use super::{
    Shared, answers,
    budget::Lease,
    channel::{ExecMeta, WsPage},
    exchange::Exchange,
    half::{BACKPRESSURE, Half, Upstream},
    http::{self, BodyFraming, RequestHead},
};

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
    /// Bytes moved on this connection (read from either socket, written to the client).
    pub(super) moved: u64,
    /// The body-progress window (see `deadline`): since when, and `moved` then.
    pub(super) window_start: Instant,
    pub(super) window_moved: u64,
    /// This client socket's share of the connection budget.
    _fd: Lease,
    /// An injected page queued for the client, still counted in the injection budget.
    pub(super) held_out: Option<Lease>,
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
    pub fn new(id: usize, client: TcpStream, peer: SocketAddr, fd: Lease) -> Conn {
        let now = Instant::now();
        Conn {
            id,
            client: Half::new(client, true),
            peer,
            up: None,
            mode: Mode::Http,
            ex: None,
            close_after: false,
            closed: false,
            last_activity: now,
            head_started: None,
            ws: None,
            moved: 0,
            window_start: now,
            window_moved: 0,
            _fd: fd,
            held_out: None,
        }
    }

    /// Starts a new body-progress window (an exchange starts, a response head arrives).
    pub(super) fn reset_window(&mut self, now: Instant) {
        self.window_start = now;
        self.window_moved = self.moved;
    }

    /// The connection is gone (closed, or the loop is dropping it): an exchange not yet logged
    /// is logged now, with why it ended.
    pub fn on_close(&mut self, cx: &mut Ctx<'_>) {
        let Some(ex) = &mut self.ex else { return };
        if ex.logged || self.mode != Mode::Http {
            return;
        }
        let why = ex.cut.take().unwrap_or_else(|| "client closed".to_string());
        let page = ex.page_id.clone();
        let mut rec = ex.take_record();
        rec.error = Some(why);
        cx.shared.log.push_http(page, rec);
        self.ex = None;
        self.up = None;
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
                    self.moved += got.bytes as u64;
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
        let before = self.client.pending() + data.len();
        if self.client.send(data).is_err() {
            self.closed = true;
        }
        self.moved += (before - self.client.pending()) as u64;
    }

    /// Queues bytes for the client without a syscall (a head whose body follows at once).
    pub(super) fn queue_client(&mut self, data: &[u8]) {
        self.client.queue(data);
    }

    fn write_client(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let before = self.client.pending();
        match self.client.flush() {
            Ok(progress) => {
                self.moved += (before - self.client.pending()) as u64;
                if self.held_out.is_some() && self.client.flushed() {
                    self.held_out = None;
                }
                progress
            }
            Err(_) => {
                self.closed = true;
                true
            }
        }
    }

    /// Queues bytes for the upstream (written by `write_upstream`).
    pub(super) fn send_upstream(&mut self, data: &[u8]) {
        if let Some(up) = &mut self.up
            && !up.write_dead
        {
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
        if up.write_dead {
            return false;
        }
        let mut progress = match up.half.flush() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::WriteZero => false,
            Err(e) if self.mode == Mode::Http && self.ex.is_some() => {
                // The upstream stopped reading (it may have answered early and closed): stop
                // writing, and read what it said — its response, or the end that fails it.
                up.write_dead = true;
                up.half.discard_queued();
                up.read_err.get_or_insert_with(|| e.to_string());
                return true;
            }
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
        // Read at most one 64 KiB step at a time, and only while what the client has unsent
        // stays under BACKPRESSURE, so a client that does not read pins ~320 KiB, not the page.
        let cap = (BACKPRESSURE + 1 - cpending).min(64 * 1024);
        match up.half.read(cx.scratch, cap, false) {
            Ok(got) => {
                if got.bytes > 0 {
                    self.moved += got.bytes as u64;
                    if self.mode == Mode::Tunnel || self.ex.as_ref().is_some_and(|x| x.stream) {
                        self.last_activity = Instant::now();
                    }
                }
                got.progress()
            }
            Err(e) => {
                if self.mode == Mode::Http && self.ex.is_some() {
                    // A reset: what was read before it is still processed (an early answer, or
                    // the part of a body that gets through); the end then fails the exchange.
                    up.half.eof = true;
                    up.read_err.get_or_insert_with(|| e.to_string());
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
        let fd = cx.shared.fds.lease(1).ok_or_else(|| {
            cx.shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            io::Error::other("agnt's connection budget is in use")
        })?;
        let up = Upstream::connect(
            cx.shared.target.addr,
            cx.shared.target.tls.as_ref(),
            cx.registry,
            upstream_token(self.id),
            fd,
        )?;
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
                    let _ = self.client.sock.tcp().shutdown(Shutdown::Write);
                    self.closed = true;
                    return true;
                }
                if self.client.eof {
                    if self.mode == Mode::Http && self.ex.is_some() {
                        // The client hung up with an exchange open (as nginx, a FIN counts):
                        // abandon it; `on_close` logs "client closed", the upstream goes.
                        self.closed = true;
                        return true;
                    }
                    if flushed {
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
