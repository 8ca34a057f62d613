//! One client connection and its upstream connection: the per-connection state machine the
//! event loop drives (`Conn::drive`) whenever either socket is ready.
//!
//! Modes: `Http` (request/response exchanges, keep-alive on both sides, the upstream connection
//! reused across exchanges), `Tunnel` (after any 101: bytes both ways until both sides close) and
//! `Ws` (the page's `/__agnt/ws` channel). Bodies stream through in both directions; only HTML
//! being injected is buffered (bounded by `INJECT_LIMIT`). Sockets are non-blocking and
//! edge-triggered: the readable/writable flags remember readiness until a call says WouldBlock.

use std::{
    collections::HashMap,
    io::{self, IoSlice, Read, Write},
    net::{Shutdown, SocketAddr},
    sync::atomic::Ordering,
    time::Instant,
};

use mio::{Interest, Token, net::TcpStream};
use serde_json::{Value, json};

use super::{
    AGNT_JS, ExecOutcome, Shared,
    http::{self, BodyFraming, ChunkedDecoder, HeadError, Header, RequestHead, ResponseHead},
    inject, pages,
    traffic::{HttpRecord, capture},
    ws::{WsConn, handshake_response},
};

/// Buffered-but-unsent bytes above which we stop reading from the other side.
const BACKPRESSURE: usize = 256 * 1024;
/// Largest HTML body we buffer for injection; bigger pages pass through uninjected.
pub const INJECT_LIMIT: usize = 8 * 1024 * 1024;
/// An upstream connect that has not completed after this fails with 502.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Http,
    Tunnel,
    Ws,
}

/// Bookkeeping for an `exec` in flight (kept by the loop for the `execution` log entry).
#[derive(Debug)]
pub(crate) struct ExecMeta {
    pub code: String,
    pub started: Instant,
}

/// What a drive step may touch besides the connection.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub registry: &'a mio::Registry,
    pub scratch: &'a mut [u8],
    pub exec_meta: &'a mut HashMap<String, ExecMeta>,
}

/// The page side of a `/__agnt/ws` connection.
#[derive(Debug)]
pub(crate) struct WsPage {
    pub ws: WsConn,
    pub page_id: Option<String>,
    pub url: Option<String>,
    pub last_active: Instant,
    /// The script runs in a frame, not a top-level page (from its `hello`); `exec` prefers
    /// top-level pages.
    pub frame: bool,
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl BodyState {
    fn from(f: BodyFraming) -> Option<BodyState> {
        match f {
            BodyFraming::None => None,
            BodyFraming::Length(n) => Some(BodyState::Length(n)),
            BodyFraming::Chunked => Some(BodyState::Chunked(ChunkedDecoder::new())),
            BodyFraming::UntilClose => Some(BodyState::UntilClose),
        }
    }

    /// Consumes body bytes from `input`: returns (raw bytes consumed, body complete), passing
    /// decoded data to `data`.
    fn take(
        &mut self,
        input: &[u8],
        eof: bool,
        mut data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), String> {
        match self {
            BodyState::Length(left) => {
                let n = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                data(&input[..n]);
                *left -= n as u64;
                Ok((n, *left == 0))
            }
            BodyState::Chunked(d) => {
                let n = d.feed(input, data).map_err(|e| e.to_string())?;
                Ok((n, d.is_done()))
            }
            BodyState::UntilClose => {
                data(input);
                Ok((input.len(), eof))
            }
        }
    }
}

#[derive(Debug)]
enum Resp {
    AwaitHead,
    Body(BodyState),
}

#[derive(Debug)]
struct InjectBuf {
    head: ResponseHead,
    raw: Vec<u8>,
    decoded: Vec<u8>,
}

#[derive(Debug)]
struct Exchange {
    start: Instant,
    method: String,
    url: String,
    req_headers: Vec<Header>,
    client_host: Option<String>,
    page_id: Option<String>,
    client_keep_alive: bool,
    req_body: Option<BodyState>,
    req_cap: Vec<u8>,
    req_trunc: bool,
    /// The upstream head, kept (for requests without a body) to retry once when a pooled
    /// upstream connection turns out to be closed.
    retry_head: Option<Vec<u8>>,
    retried: bool,
    resp: Resp,
    resp_started: bool,
    status: u16,
    resp_headers: Vec<Header>,
    resp_cap: Vec<u8>,
    resp_trunc: bool,
    upstream_keep_alive: bool,
    /// The response is streamed until the upstream closes: the client connection must close too.
    raw_until_close: bool,
    inject: Option<InjectBuf>,
    injected: bool,
    /// The log entry is written (before the last bytes reach the client).
    logged: bool,
    /// HTTP/1.0 client: a chunked response is sent de-chunked, delimited by close.
    client_http10: bool,
    dechunk: bool,
}

#[derive(Debug)]
struct Upstream {
    sock: TcpStream,
    connected: bool,
    connect_started: Instant,
    readable: bool,
    rdhup: bool,
    writable: bool,
    eof: bool,
    write_shut: bool,
    out: Vec<u8>,
    out_pos: usize,
    inb: Vec<u8>,
    served: u32,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub id: usize,
    client: TcpStream,
    peer: SocketAddr,
    c_readable: bool,
    /// The peer's FIN was reported (EPOLLRDHUP): read until EOF, no short-read shortcut.
    c_rdhup: bool,
    c_writable: bool,
    c_eof: bool,
    c_write_shut: bool,
    cin: Vec<u8>,
    cout: Vec<u8>,
    cout_pos: usize,
    up: Option<Upstream>,
    pub mode: Mode,
    ex: Option<Exchange>,
    close_after: bool,
    pub closed: bool,
    pub last_activity: Instant,
    head_started: Option<Instant>,
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

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page_cookie(headers: &[Header]) -> Option<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .find_map(|(_, v)| {
            let v = std::str::from_utf8(v).ok()?;
            v.split(';').find_map(|kv| {
                let (k, val) = kv.trim().split_once('=')?;
                (k == "__agnt_page"
                    && !val.is_empty()
                    && val.len() <= 64
                    && val
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                .then(|| val.to_string())
            })
        })
}

/// A handshake without `Origin` (not a browser page) or whose `Origin` is `http://<Host>`.
fn same_origin(headers: &[Header]) -> bool {
    match (
        http::header(headers, "origin"),
        http::header(headers, "host"),
    ) {
        (None, _) => true,
        (Some(o), Some(h)) => o
            .strip_prefix(b"http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(h)),
        (Some(_), None) => false,
    }
}

fn valid_page_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Conn {
    /// A freshly accepted client (already registered by the loop).
    pub fn new(id: usize, client: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            id,
            client,
            peer,
            c_readable: true,
            c_rdhup: false,
            c_writable: true,
            c_eof: false,
            c_write_shut: false,
            cin: Vec::new(),
            cout: Vec::new(),
            cout_pos: 0,
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
        self.c_readable |= readable;
        self.c_rdhup |= closed;
        self.c_writable |= writable;
    }

    /// Readiness reported for the upstream socket.
    pub fn upstream_ready(&mut self, readable: bool, writable: bool, closed: bool) {
        if let Some(up) = &mut self.up {
            up.readable |= readable;
            up.rdhup |= closed;
            up.writable |= writable;
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
        self.up.as_ref().map_or(0, |u| u.out.len() - u.out_pos)
    }

    fn read_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        if !self.c_readable || self.c_eof || self.closed {
            return false;
        }
        let cap = match self.mode {
            Mode::Http if self.close_after => usize::MAX, // draining: read and discard
            Mode::Http if self.ex.is_some() => {
                if self.up_pending() > BACKPRESSURE || self.cin.len() > BACKPRESSURE {
                    return false;
                }
                BACKPRESSURE
            }
            Mode::Http => {
                // Answers the proxy makes itself (agnt.js, 404s, 502s) queue in `cout`: a client
                // that sends requests without reading them is not read either.
                if self.cout.len() - self.cout_pos > BACKPRESSURE {
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
                if self.cout.len() - self.cout_pos > 4 * BACKPRESSURE {
                    return false;
                }
                BACKPRESSURE
            }
        };
        if self.cin.len() >= cap {
            return false;
        }
        let mut progress = false;
        loop {
            match self.client.read(cx.scratch) {
                Ok(0) => {
                    self.c_eof = true;
                    return true;
                }
                Ok(n) => {
                    progress = true;
                    self.last_activity = Instant::now();
                    if self.close_after && self.mode == Mode::Http {
                        continue; // discard what a rejected client keeps sending
                    }
                    self.cin.extend_from_slice(&cx.scratch[..n]);
                    if self.cin.len() >= cap {
                        return true;
                    }
                    if n < cx.scratch.len() && !self.c_rdhup {
                        // A short read drained the socket; epoll (edge-triggered) reports the
                        // next arrival, so skip the read that would only say WouldBlock. Not
                        // after a read-closed event: the FIN may already sit behind the data.
                        self.c_readable = false;
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.c_readable = false;
                    return progress;
                }
                Err(_) => {
                    self.closed = true;
                    return true;
                }
            }
        }
    }

    /// Sends bytes to the client: written right away together with anything queued (one
    /// `writev`), and whatever the socket does not take is queued.
    fn send_client(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut off = 0;
        while off < data.len() && self.c_writable && !self.closed {
            let pending = &self.cout[self.cout_pos..];
            let r = if pending.is_empty() {
                self.client.write(&data[off..])
            } else {
                self.client
                    .write_vectored(&[IoSlice::new(pending), IoSlice::new(&data[off..])])
            };
            match r {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    let from_pending = pending.len().min(n);
                    self.cout_pos += from_pending;
                    off += n - from_pending;
                    if self.cout_pos == self.cout.len() {
                        self.cout.clear();
                        self.cout_pos = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.c_writable = false,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
        self.cout.extend_from_slice(&data[off..]);
    }

    /// Queues bytes for the client without a syscall (a head whose body follows at once).
    fn queue_client(&mut self, data: &[u8]) {
        self.cout.extend_from_slice(data);
    }

    fn write_client(&mut self) -> bool {
        let mut progress = false;
        while self.cout_pos < self.cout.len() && self.c_writable && !self.closed {
            match self.client.write(&self.cout[self.cout_pos..]) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.cout_pos += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.c_writable = false,
                Err(_) => self.closed = true,
            }
        }
        if self.cout_pos == self.cout.len() && !self.cout.is_empty() {
            self.cout.clear();
            self.cout_pos = 0;
            if self.cout.capacity() > 4 * BACKPRESSURE {
                self.cout.shrink_to(64 * 1024);
            }
        }
        progress
    }

    fn send_upstream(&mut self, data: &[u8]) {
        if let Some(up) = &mut self.up {
            up.out.extend_from_slice(data);
        }
    }

    fn write_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let Some(up) = &mut self.up else { return false };
        if !up.connected {
            if !up.writable {
                return false;
            }
            match up.sock.take_error() {
                Ok(Some(e)) | Err(e) => {
                    self.fail_upstream(cx, &e);
                    return true;
                }
                Ok(None) => {}
            }
            match up.sock.peer_addr() {
                Ok(_) => {
                    up.connected = true;
                    let _ = up.sock.set_nodelay(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected || is_transient(&e) => {
                    up.writable = false;
                    return false;
                }
                Err(e) => {
                    self.fail_upstream(cx, &e);
                    return true;
                }
            }
        }
        let mut progress = false;
        while up.out_pos < up.out.len() && up.writable {
            match up.sock.write(&up.out[up.out_pos..]) {
                Ok(0) => break,
                Ok(n) => {
                    up.out_pos += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => up.writable = false,
                Err(e) => {
                    self.fail_upstream(cx, &e);
                    return true;
                }
            }
        }
        if up.out_pos == up.out.len() && !up.out.is_empty() {
            up.out.clear();
            up.out_pos = 0;
            if up.out.capacity() > 4 * BACKPRESSURE {
                up.out.shrink_to(64 * 1024);
            }
        }
        // Client half-closed a tunnel: pass the FIN on once everything is written.
        if self.mode == Mode::Tunnel
            && self.c_eof
            && self.cin.is_empty()
            && up.out.is_empty()
            && !up.write_shut
        {
            up.write_shut = true;
            let _ = up.sock.shutdown(Shutdown::Write);
            progress = true;
        }
        progress
    }

    fn read_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let cpending = self.cout.len() - self.cout_pos;
        let Some(up) = &mut self.up else { return false };
        if !up.connected
            || !up.readable
            || up.eof
            || cpending > BACKPRESSURE
            || up.inb.len() > BACKPRESSURE
        {
            return false;
        }
        let mut progress = false;
        loop {
            match up.sock.read(cx.scratch) {
                Ok(0) => {
                    up.eof = true;
                    return true;
                }
                Ok(n) => {
                    progress = true;
                    up.inb.extend_from_slice(&cx.scratch[..n]);
                    if up.inb.len() > BACKPRESSURE {
                        return true;
                    }
                    if n < cx.scratch.len() && !up.rdhup {
                        up.readable = false;
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    up.readable = false;
                    return progress;
                }
                Err(e) => {
                    if self.mode == Mode::Http && self.ex.as_ref().is_some_and(|x| x.resp_started) {
                        // Mid-body reset: treat like a close so what we have is flushed.
                        up.eof = true;
                        return true;
                    }
                    self.fail_upstream(cx, &e);
                    return true;
                }
            }
        }
    }

    /// Opens a fresh upstream connection (dropping any previous one).
    fn connect_upstream(&mut self, cx: &mut Ctx<'_>) -> io::Result<()> {
        self.up = None;
        let mut sock = TcpStream::connect(cx.shared.target.addr)?;
        cx.registry.register(
            &mut sock,
            upstream_token(self.id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        cx.shared
            .stats
            .upstream_connects
            .fetch_add(1, Ordering::Relaxed);
        self.up = Some(Upstream {
            sock,
            connected: false,
            connect_started: Instant::now(),
            readable: false,
            rdhup: false,
            writable: false,
            eof: false,
            write_shut: false,
            out: Vec::new(),
            out_pos: 0,
            inb: Vec::new(),
            served: 0,
        });
        Ok(())
    }

    fn bad_request(&mut self, cx: &mut Ctx<'_>, status: u16, reason: &str, why: &str) {
        cx.shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        let body = format!("{status} {reason}: {why}\n");
        let resp = http::simple_response(
            status,
            reason,
            "text/plain; charset=utf-8",
            body.as_bytes(),
            true,
        );
        self.send_client(&resp);
        self.cin.clear();
        self.close_after = true;
        self.head_started = None;
        self.up = None;
    }

    fn process_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        match self.mode {
            Mode::Ws => {
                if self.cin.is_empty() {
                    return false;
                }
                let data = std::mem::take(&mut self.cin);
                self.feed_ws(cx, &data);
                true
            }
            Mode::Tunnel => {
                if self.cin.is_empty() || self.up.is_none() {
                    return false;
                }
                let data = std::mem::take(&mut self.cin);
                self.send_upstream(&data);
                true
            }
            Mode::Http => self.process_http_client(cx),
        }
    }

    fn process_http_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.close_after || self.closed || self.mode != Mode::Http {
                return progress;
            }
            if self.ex.is_none() {
                if self.cin.is_empty() || self.cout.len() - self.cout_pos > BACKPRESSURE {
                    return progress;
                }
                if self.head_started.is_none() {
                    self.head_started = Some(Instant::now());
                }
                match http::parse_request(&self.cin) {
                    Err(HeadError::TooLarge) => {
                        self.bad_request(
                            cx,
                            431,
                            "Request Header Fields Too Large",
                            "request head over 64 KiB",
                        );
                        return true;
                    }
                    Err(HeadError::Malformed(m)) => {
                        self.bad_request(cx, 400, "Bad Request", &m);
                        return true;
                    }
                    Ok(None) => return progress,
                    Ok(Some((head, n))) => {
                        self.cin.drain(..n);
                        self.head_started = None;
                        progress = true;
                        self.start_exchange(cx, head);
                        continue;
                    }
                }
            }
            // Forward the request body as it arrives (wire bytes unchanged; decoded for capture).
            let Some(ex) = &mut self.ex else {
                return progress;
            };
            let Some(body) = &mut ex.req_body else {
                return progress;
            };
            if self.cin.is_empty() || self.up.is_none() {
                return progress;
            }
            let (req_cap, req_trunc) = (&mut ex.req_cap, &mut ex.req_trunc);
            match body.take(&self.cin, false, |d| capture(req_cap, req_trunc, d)) {
                Ok((n, done)) => {
                    let bytes: Vec<u8> = self.cin.drain(..n).collect();
                    if done {
                        ex.req_body = None;
                    }
                    self.send_upstream(&bytes);
                    progress |= n > 0;
                    if !done {
                        return progress;
                    }
                }
                Err(e) => {
                    // The head already went upstream; the exchange cannot be completed.
                    let mut rec = self.record();
                    rec.error = Some(format!("bad request body: {e}"));
                    cx.shared
                        .log
                        .push_http(self.ex.as_ref().and_then(|x| x.page_id.clone()), rec);
                    self.ex = None;
                    self.bad_request(cx, 400, "Bad Request", &e);
                    return true;
                }
            }
        }
    }

    fn start_exchange(&mut self, cx: &mut Ctx<'_>, head: RequestHead) {
        cx.shared
            .stats
            .total_requests
            .fetch_add(1, Ordering::Relaxed);
        self.last_activity = Instant::now();
        if head.target.starts_with("/__agnt/") {
            self.local_route(cx, &head);
            return;
        }
        let framing = match http::request_framing(&head) {
            Ok(f) => f,
            Err(e) => {
                self.bad_request(cx, 400, "Bad Request", &e.to_string());
                return;
            }
        };
        let client_host = http::header_str(&head.headers, "host");
        let page_id = page_cookie(&head.headers);
        let client_keep_alive = http::keep_alive(head.version, &head.headers);
        let mut up_head = head.clone();
        self.rewrite_request(cx, &mut up_head);
        let mut bytes = Vec::with_capacity(512);
        http::write_request(&up_head, &mut bytes);
        let reuse = self
            .up
            .as_ref()
            .is_some_and(|u| !u.eof && u.connected && u.inb.is_empty());
        if !reuse && let Err(e) = self.connect_upstream(cx) {
            self.ex = Some(self.new_exchange(
                head,
                client_host,
                page_id,
                client_keep_alive,
                None,
                framing,
            ));
            self.fail_upstream(cx, &e);
            return;
        }
        self.send_upstream(&bytes);
        let retry = (framing == BodyFraming::None).then_some(bytes);
        self.ex = Some(self.new_exchange(
            head,
            client_host,
            page_id,
            client_keep_alive,
            retry,
            framing,
        ));
    }

    fn new_exchange(
        &self,
        head: RequestHead,
        client_host: Option<String>,
        page_id: Option<String>,
        client_keep_alive: bool,
        retry_head: Option<Vec<u8>>,
        framing: BodyFraming,
    ) -> Exchange {
        Exchange {
            start: Instant::now(),
            method: head.method,
            url: head.target,
            req_headers: head.headers,
            client_host,
            page_id,
            client_keep_alive,
            req_body: BodyState::from(framing),
            req_cap: Vec::new(),
            req_trunc: false,
            retry_head,
            retried: false,
            resp: Resp::AwaitHead,
            resp_started: false,
            status: 0,
            resp_headers: Vec::new(),
            resp_cap: Vec::new(),
            resp_trunc: false,
            upstream_keep_alive: false,
            raw_until_close: false,
            inject: None,
            injected: false,
            logged: false,
            client_http10: head.version == 0,
            dechunk: false,
        }
    }

    fn rewrite_request(&self, cx: &Ctx<'_>, h: &mut RequestHead) {
        let t = &cx.shared.target;
        let orig_host = http::header(&h.headers, "host").map(<[u8]>::to_vec);
        http::set(&mut h.headers, "Host", t.host_header.as_bytes());
        let ip = self.peer.ip().to_string();
        let xff = match http::header_str(&h.headers, "x-forwarded-for") {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
            _ => ip,
        };
        http::set(&mut h.headers, "X-Forwarded-For", xff);
        if let Some(oh) = orig_host {
            http::set(&mut h.headers, "X-Forwarded-Host", oh);
        }
        http::set(&mut h.headers, "X-Forwarded-Proto", "http");
        // Navigations: only ask for encodings we can decode for injection.
        let accept = http::header_str(&h.headers, "accept").unwrap_or_default();
        if accept.contains("text/html")
            && let Some(ae) = http::header_str(&h.headers, "accept-encoding")
        {
            let kept: Vec<&str> = ae
                .split(',')
                .map(str::trim)
                .filter(|t| {
                    let c = t
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    matches!(
                        c.as_str(),
                        "gzip" | "x-gzip" | "deflate" | "br" | "identity"
                    )
                })
                .collect();
            if kept.is_empty() {
                http::remove(&mut h.headers, "accept-encoding");
            } else {
                http::set(&mut h.headers, "Accept-Encoding", kept.join(", "));
            }
        }
    }

    fn local_route(&mut self, cx: &mut Ctx<'_>, head: &RequestHead) {
        let path = head.target.split('?').next().unwrap_or("");
        let has_body = !matches!(http::request_framing(head), Ok(BodyFraming::None));
        match path {
            "/__agnt/ws" if !same_origin(&head.headers) => {
                // Another site's page in the user's browser must not read the agent's code
                // or feed the log: browsers always send Origin on WebSocket handshakes.
                self.bad_request(cx, 403, "Forbidden", "cross-origin WebSocket to /__agnt/ws");
            }
            "/__agnt/ws" => match handshake_response(&head.headers) {
                Some(resp) => {
                    self.send_client(&resp);
                    self.mode = Mode::Ws;
                    self.up = None;
                    cx.shared.stats.ws_clients.fetch_add(1, Ordering::Relaxed);
                    self.ws = Some(WsPage {
                        ws: WsConn::new(),
                        page_id: page_cookie(&head.headers),
                        url: None,
                        last_active: Instant::now(),
                        frame: false,
                    });
                    // The script waits for this before it shows the user's panel.
                    let cfg = json!({"type": "config", "panel": cx.shared.config.panel});
                    self.ws_send(cfg.to_string());
                }
                None => self.bad_request(cx, 400, "Bad Request", "expected a WebSocket upgrade"),
            },
            "/__agnt/agnt.js" => {
                let resp = script_response(&head.target, has_body);
                self.send_client(&resp);
            }
            _ => {
                let resp = http::simple_response(
                    404,
                    "Not Found",
                    "text/plain; charset=utf-8",
                    b"unknown agnt route\n",
                    has_body,
                );
                self.send_client(&resp);
            }
        }
        if has_body || !http::keep_alive(head.version, &head.headers) {
            self.close_after = self.mode == Mode::Http;
        }
    }

    /// Moves the exchange's captured data into a log record (the exchange ends right after).
    fn record(&mut self) -> HttpRecord {
        let Some(ex) = &mut self.ex else {
            return HttpRecord::default();
        };
        HttpRecord {
            method: ex.method.clone(),
            url: ex.url.clone(),
            status: ex.status,
            duration_ms: ex.start.elapsed().as_secs_f64() * 1000.0,
            request_headers: std::mem::take(&mut ex.req_headers),
            response_headers: std::mem::take(&mut ex.resp_headers),
            request_body: std::mem::take(&mut ex.req_cap),
            request_truncated: ex.req_trunc,
            response_body: std::mem::take(&mut ex.resp_cap),
            response_truncated: ex.resp_trunc,
            error: None,
            injected: ex.injected,
        }
    }

    /// The upstream connection failed (connect refused, reset, garbage, early close).
    fn fail_upstream(&mut self, cx: &mut Ctx<'_>, e: &dyn std::fmt::Display) {
        let served = self.up.as_ref().map_or(0, |u| u.served);
        self.up = None;
        if self.mode == Mode::Tunnel {
            self.close_after = true;
            return;
        }
        let Some(ex) = &mut self.ex else { return };
        // A pooled connection the upstream had already closed: retry once on a fresh one.
        if !ex.resp_started
            && !ex.retried
            && served > 0
            && let Some(head) = ex.retry_head.clone()
        {
            ex.retried = true;
            if self.connect_upstream(cx).is_ok() {
                self.send_upstream(&head);
                return;
            }
        }
        let Some(ex) = &self.ex else { return };
        cx.shared
            .stats
            .upstream_errors
            .fetch_add(1, Ordering::Relaxed);
        let cause = e.to_string();
        let ex_started = ex.resp_started;
        let req_done = ex.req_body.is_none();
        let mut rec = self.record();
        rec.error = Some(cause.clone());
        if !ex_started {
            rec.status = 502;
            let target = &cx.shared.config.target_url;
            let body = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>502 Bad Gateway</title></head><body>\
                 <h1>502 Bad Gateway</h1><p>agnt could not reach <code>{}</code>: {}.</p>\
                 <p>Is the dev server running? Reload once it is up.</p></body></html>\n",
                html_escape(target),
                html_escape(&cause)
            );
            let resp = http::simple_response(
                502,
                "Bad Gateway",
                "text/html; charset=utf-8",
                body.as_bytes(),
                !req_done,
            );
            rec.response_headers = vec![
                ("Content-Type".into(), b"text/html; charset=utf-8".to_vec()),
                ("Content-Length".into(), body.len().to_string().into_bytes()),
            ];
            rec.response_body = body.into_bytes();
            let page = self.ex.as_ref().and_then(|x| x.page_id.clone());
            cx.shared.log.push_http(page, rec);
            self.send_client(&resp);
            if !req_done {
                self.close_after = true;
            }
        } else {
            // Part of the response already went out: all we can do is close.
            self.close_after = true;
            let page = self.ex.as_ref().and_then(|x| x.page_id.clone());
            cx.shared.log.push_http(page, rec);
        }
        self.ex = None;
        self.last_activity = Instant::now();
    }

    fn rewrite_response(&self, cx: &Ctx<'_>, h: &mut ResponseHead) {
        let ex = self.ex.as_ref();
        let proxy_origin = match ex.and_then(|x| x.client_host.as_deref()) {
            Some(host)
                if !host.is_empty() && !host.bytes().any(|b| b.is_ascii_control() || b == b' ') =>
            {
                format!("http://{host}")
            }
            _ => cx.shared.url.clone(),
        };
        let t = &cx.shared.target;
        for (name, value) in h.headers.iter_mut() {
            if name.eq_ignore_ascii_case("location") {
                let v = String::from_utf8_lossy(value).into_owned();
                for o in &t.origins {
                    if let Some(rest) = v.strip_prefix(o.as_str())
                        && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
                    {
                        *value = format!("{proxy_origin}{rest}").into_bytes();
                        break;
                    }
                }
            } else if name.eq_ignore_ascii_case("set-cookie") {
                let v = String::from_utf8_lossy(value).into_owned();
                let parts: Vec<&str> = v
                    .split(';')
                    .filter(|p| {
                        let p = p.trim();
                        match p.split_once('=') {
                            Some((k, d)) if k.trim().eq_ignore_ascii_case("domain") => {
                                let d = d.trim().trim_start_matches('.');
                                !(d.eq_ignore_ascii_case(&t.host)
                                    || d.eq_ignore_ascii_case("localhost")
                                    || d == "127.0.0.1")
                            }
                            _ => true,
                        }
                    })
                    .collect();
                *value = parts.join(";").into_bytes();
            }
        }
    }

    fn process_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        match self.mode {
            Mode::Ws => false,
            Mode::Tunnel => {
                let Some(up) = &mut self.up else { return false };
                if up.inb.is_empty() {
                    return false;
                }
                let data = std::mem::take(&mut up.inb);
                self.send_client(&data);
                true
            }
            Mode::Http => self.process_http_upstream(cx),
        }
    }

    fn process_http_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.closed || self.mode != Mode::Http {
                return progress;
            }
            let Some(up) = &mut self.up else {
                return progress;
            };
            let Some(ex) = &mut self.ex else {
                // Idle: the upstream closing (or chattering) ends this pooled connection.
                if up.eof || !up.inb.is_empty() {
                    self.up = None;
                    return true;
                }
                return progress;
            };
            match &mut ex.resp {
                Resp::AwaitHead => {
                    if up.inb.is_empty() {
                        if up.eof {
                            self.fail_upstream(
                                cx,
                                &"upstream closed the connection without responding",
                            );
                            return true;
                        }
                        return progress;
                    }
                    match http::parse_response(&up.inb) {
                        Err(e) => {
                            self.fail_upstream(cx, &format!("invalid response from upstream: {e}"));
                            return true;
                        }
                        Ok(None) => {
                            if up.eof {
                                self.fail_upstream(cx, &"upstream closed the connection mid-head");
                                return true;
                            }
                            return progress;
                        }
                        Ok(Some((head, n))) => {
                            up.inb.drain(..n);
                            progress = true;
                            self.on_response_head(cx, head);
                        }
                    }
                }
                Resp::Body(state) => {
                    let eof = up.eof;
                    if up.inb.is_empty() && !eof {
                        return progress;
                    }
                    let mut decoded = Vec::new();
                    let keep_decoded = ex.inject.is_some() || ex.dechunk;
                    let (cap, trunc) = (&mut ex.resp_cap, &mut ex.resp_trunc);
                    let r = state.take(&up.inb, eof, |d| {
                        if !keep_decoded || cap.len() < 10 * 1024 {
                            capture(cap, trunc, d);
                        } else {
                            *trunc = true;
                        }
                        if keep_decoded {
                            decoded.extend_from_slice(d);
                        }
                    });
                    match r {
                        Err(e) => {
                            self.fail_upstream(cx, &format!("bad response body: {e}"));
                            return true;
                        }
                        Ok((n, done)) => {
                            if !done && n == 0 {
                                if eof {
                                    // Upstream closed before the body ended.
                                    self.fail_upstream(
                                        cx,
                                        &"upstream closed the connection mid-body",
                                    );
                                    return true;
                                }
                                return progress;
                            }
                            progress = true;
                            // Move the buffer out so its bytes can be sent without a copy.
                            let mut inb = std::mem::take(&mut up.inb);
                            let raw = &inb[..n];
                            if let Some(ib) = &mut ex.inject {
                                ib.raw.extend_from_slice(raw);
                                ib.decoded.extend_from_slice(&decoded);
                                if ib.raw.len() > INJECT_LIMIT && !done {
                                    // Too big to buffer: send what we have and stream the rest.
                                    let ib = ex.inject.take().unwrap_or_else(|| unreachable!());
                                    let mut out = Vec::with_capacity(ib.raw.len() + 512);
                                    http::write_response(&ib.head, &mut out);
                                    out.extend_from_slice(&ib.raw);
                                    ex.resp_headers = ib.head.headers;
                                    inb.drain(..n);
                                    up.inb = inb;
                                    self.send_client(&out);
                                    continue;
                                }
                                inb.drain(..n);
                                up.inb = inb;
                                if done {
                                    self.finish_inject(cx);
                                }
                            } else {
                                if done {
                                    self.log_exchange(cx);
                                }
                                let dechunk = self.ex.as_ref().is_some_and(|x| x.dechunk);
                                self.send_client(if dechunk { &decoded } else { raw });
                                inb.drain(..n);
                                if let Some(up) = &mut self.up {
                                    up.inb = inb;
                                }
                            }
                            if done {
                                self.finish_exchange(cx);
                            }
                        }
                    }
                }
            }
        }
    }

    fn on_response_head(&mut self, cx: &mut Ctx<'_>, mut head: ResponseHead) {
        self.rewrite_response(cx, &mut head);
        let Some(ex) = &mut self.ex else { return };
        if head.status == 101 {
            ex.status = 101;
            ex.resp_headers = head.headers.clone();
            let mut out = Vec::new();
            http::write_response(&head, &mut out);
            let mut rec = self.record();
            rec.status = 101;
            cx.shared
                .log
                .push_http(self.ex.as_ref().and_then(|x| x.page_id.clone()), rec);
            self.ex = None;
            self.mode = Mode::Tunnel;
            self.send_client(&out);
            return;
        }
        if head.status < 200 {
            // 100 Continue and friends: pass on, keep waiting for the real head.
            let mut out = Vec::new();
            http::write_response(&head, &mut out);
            self.send_client(&out);
            return;
        }
        let framing = match http::response_framing(&head, &ex.method) {
            Ok(f) => f,
            Err(e) => {
                self.fail_upstream(cx, &format!("invalid response from upstream: {e}"));
                return;
            }
        };
        ex.resp_started = true;
        ex.status = head.status;
        ex.upstream_keep_alive =
            http::keep_alive(head.version, &head.headers) && framing != BodyFraming::UntilClose;
        let ct = http::header(&head.headers, "content-type");
        let ce = http::header(&head.headers, "content-encoding");
        let injectable = framing != BodyFraming::None
            && inject::is_html(ct)
            && inject::Encoding::parse(ce).is_some()
            && http::header(&head.headers, "content-range").is_none();
        match BodyState::from(framing) {
            None => {
                ex.resp_headers = head.headers.clone();
                let mut out = Vec::new();
                http::write_response(&head, &mut out);
                self.log_exchange(cx);
                self.send_client(&out);
                self.finish_exchange(cx);
            }
            Some(state) => {
                if injectable {
                    ex.inject = Some(InjectBuf {
                        head,
                        raw: Vec::new(),
                        decoded: Vec::new(),
                    });
                } else {
                    ex.raw_until_close = framing == BodyFraming::UntilClose;
                    if ex.client_http10 && framing == BodyFraming::Chunked {
                        http::remove(&mut head.headers, "transfer-encoding");
                        ex.dechunk = true;
                        ex.raw_until_close = true;
                    }
                    ex.resp_headers = head.headers.clone();
                    let mut out = Vec::new();
                    http::write_response(&head, &mut out);
                    // Sent together with the first body bytes (or by write_client).
                    self.queue_client(&out);
                }
                if let Some(ex) = &mut self.ex {
                    ex.resp = Resp::Body(state);
                }
            }
        }
    }

    /// The buffered HTML body is complete: inject and send it with a `Content-Length`.
    fn finish_inject(&mut self, cx: &mut Ctx<'_>) {
        let Some(ex) = &mut self.ex else { return };
        let Some(ib) = ex.inject.take() else { return };
        let mut head = ib.head;
        let ce = http::header(&head.headers, "content-encoding").map(<[u8]>::to_vec);
        http::remove(&mut head.headers, "transfer-encoding");
        let body = match inject::inject_body(ce.as_deref(), &ib.decoded) {
            Some(new) => {
                http::remove(&mut head.headers, "content-encoding");
                ex.injected = true;
                cx.shared.stats.injected.fetch_add(1, Ordering::Relaxed);
                ex.resp_cap.clear();
                ex.resp_trunc = false;
                capture(&mut ex.resp_cap, &mut ex.resp_trunc, &new);
                new
            }
            None => ib.decoded,
        };
        http::set(&mut head.headers, "Content-Length", body.len().to_string());
        ex.resp_headers = head.headers.clone();
        let mut out = Vec::with_capacity(body.len() + 512);
        http::write_response(&head, &mut out);
        out.extend_from_slice(&body);
        self.log_exchange(cx);
        self.send_client(&out);
    }

    /// Writes the exchange's log entry and page attribution (once).
    fn log_exchange(&mut self, cx: &mut Ctx<'_>) {
        let Some(ex) = &self.ex else { return };
        if ex.logged {
            return;
        }
        let accept = http::header_str(&ex.req_headers, "accept").unwrap_or_default();
        let xhr = http::header_str(&ex.req_headers, "x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
        let rtype = http::header_str(&ex.resp_headers, "content-type").unwrap_or_default();
        let document = pages::is_document(&ex.method, &ex.url, &accept, xhr, &rtype);
        let referer = http::header_str(&ex.req_headers, "referer");
        cx.shared
            .pages
            .on_http(&ex.url, document, referer.as_deref(), ex.page_id.as_deref());
        let page = ex.page_id.clone();
        let rec = self.record();
        cx.shared.log.push_http(page, rec);
        if let Some(ex) = &mut self.ex {
            ex.logged = true;
        }
    }

    fn finish_exchange(&mut self, cx: &mut Ctx<'_>) {
        self.log_exchange(cx);
        let Some(ex) = &self.ex else { return };
        let keep_client = ex.client_keep_alive && !ex.raw_until_close && ex.req_body.is_none();
        let keep_up = ex.upstream_keep_alive && ex.req_body.is_none();
        self.ex = None;
        self.last_activity = Instant::now();
        if !keep_client {
            self.close_after = true;
        }
        if keep_up {
            if let Some(up) = &mut self.up {
                up.served += 1;
                if up.inb.capacity() > 4 * BACKPRESSURE {
                    up.inb.shrink_to(64 * 1024);
                }
            }
        } else {
            self.up = None;
        }
        if self.cin.is_empty() && self.cin.capacity() > 64 * 1024 {
            self.cin.shrink_to(0);
        }
    }

    /// Closes and half-closes once buffers are flushed.
    fn check_ends(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let flushed = self.cout_pos == self.cout.len();
        match self.mode {
            Mode::Http | Mode::Ws => {
                if self.close_after && flushed {
                    let _ = self.client.shutdown(Shutdown::Write);
                    self.closed = true;
                    return true;
                }
                if self.c_eof {
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
                let up_done = self.up.as_ref().is_none_or(|u| u.eof && u.inb.is_empty());
                if up_done && flushed && !self.c_write_shut {
                    self.c_write_shut = true;
                    let _ = self.client.shutdown(Shutdown::Write);
                }
                if (self.close_after && flushed) || (self.c_write_shut && self.c_eof) {
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
                self.closed = self.cout_pos == self.cout.len();
                return true;
            }
        } else if now.duration_since(self.last_activity) > cfg.idle_timeout {
            self.closed = true;
            return true;
        }
        false
    }

    fn feed_ws(&mut self, cx: &mut Ctx<'_>, data: &[u8]) {
        let Some(page) = &mut self.ws else { return };
        let feed = page.ws.feed(data);
        page.last_active = Instant::now();
        for text in feed.texts {
            if !self.handle_ws_text(cx, &text) {
                cx.shared.stats.ws_errors.fetch_add(1, Ordering::Relaxed);
                self.close_after = true;
                break;
            }
        }
        if feed.error.is_some() {
            cx.shared.stats.ws_errors.fetch_add(1, Ordering::Relaxed);
        }
        if feed.closed {
            self.close_after = true;
        }
        self.flush_ws();
    }

    fn flush_ws(&mut self) {
        if let Some(page) = &mut self.ws {
            let out = page.ws.take_output();
            self.send_client(&out);
        }
    }

    /// Sends a text message to the page; false if this is not a live page connection.
    pub fn ws_send(&mut self, text: String) -> bool {
        if self.closed || self.close_after {
            return false;
        }
        let Some(page) = &mut self.ws else {
            return false;
        };
        let ok = page.ws.send_text(text);
        self.flush_ws();
        ok
    }

    /// One JSON message from the page. False = malformed (the connection is closed).
    fn handle_ws_text(&mut self, cx: &mut Ctx<'_>, text: &str) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        let Some(obj) = v.as_object() else {
            return false;
        };
        let Some(page) = &mut self.ws else {
            return false;
        };
        let typ = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("custom")
            .to_string();
        if let Some(pid) = obj
            .get("page_id")
            .and_then(Value::as_str)
            .filter(|p| valid_page_id(p))
        {
            page.page_id = Some(pid.to_string());
        }
        let url = obj
            .get("url")
            .and_then(Value::as_str)
            .map(|u| u.chars().take(2048).collect::<String>());
        if url.is_some() {
            page.url.clone_from(&url);
        }
        let page_id = page.page_id.clone();
        match typ.as_str() {
            "response" => self.exec_response(cx, obj, page_id),
            "batch" => {
                let Some(events) = obj.get("events").and_then(Value::as_array) else {
                    return false;
                };
                for ev in events.iter().take(MAX_BATCH) {
                    let Some(ev) = ev.as_object() else { continue };
                    let t = ev.get("type").and_then(Value::as_str).unwrap_or("custom");
                    if matches!(t, "response" | "batch" | "screenshot" | "hello") {
                        continue;
                    }
                    let eurl = ev
                        .get("url")
                        .and_then(Value::as_str)
                        .map(|u| u.chars().take(2048).collect::<String>())
                        .or_else(|| url.clone());
                    let data = ev.get("data").cloned().unwrap_or(Value::Null);
                    record_event(cx, t, data, eurl.as_deref(), page_id.clone());
                }
            }
            "screenshot" => {
                let data = obj.get("data").cloned().unwrap_or(Value::Null);
                let req = obj.get("req").and_then(Value::as_str).unwrap_or("");
                let ack = match save_screenshot(cx, data, url.as_deref(), page_id) {
                    Ok(v) => v,
                    Err(e) => json!({"error": e}),
                };
                let mut ack = ack;
                ack["type"] = json!("screenshot_saved");
                ack["req"] = json!(req.chars().take(64).collect::<String>());
                self.ws_send(ack.to_string());
            }
            "hello" => {
                let data = obj.get("data").cloned().unwrap_or(Value::Null);
                if let Some(p) = &mut self.ws {
                    p.frame = data.get("frame").and_then(Value::as_bool) == Some(true);
                }
                cx.shared
                    .pages
                    .on_event("hello", page_id.as_deref(), url.as_deref(), &data);
            }
            other => {
                let data = obj.get("data").cloned().unwrap_or(Value::Null);
                record_event(cx, other, data, url.as_deref(), page_id);
            }
        }
        true
    }

    fn exec_response(
        &mut self,
        cx: &mut Ctx<'_>,
        obj: &serde_json::Map<String, Value>,
        page_id: Option<String>,
    ) {
        let Some(id) = obj.get("id").and_then(Value::as_str) else {
            return;
        };
        let success = obj.get("success").and_then(Value::as_bool).unwrap_or(false);
        let result = obj.get("result").cloned();
        let error = obj.get("error").and_then(Value::as_str).map(str::to_string);
        let meta = cx.exec_meta.remove(id);
        let duration_ms = obj
            .get("duration_ms")
            .and_then(Value::as_u64)
            .or_else(|| {
                meta.as_ref()
                    .map(|m| m.started.elapsed().as_millis() as u64)
            })
            .unwrap_or(0);
        let outcome = ExecOutcome {
            execution_id: id.to_string(),
            success,
            result: if success { result.clone() } else { None },
            error: error.clone(),
            duration_ms,
            page_id: page_id.clone(),
        };
        let code = meta.map(|m| m.code).unwrap_or_default();
        cx.shared.log.push_event(
            "execution",
            page_id,
            json!({"id": id, "code": code.chars().take(2000).collect::<String>(), "success": success, "result": result, "error": error, "duration_ms": duration_ms}),
        );
        let tx = cx.shared.pending.lock().remove(id);
        if let Some(tx) = tx {
            let _ = tx.try_send(Ok(outcome));
        }
    }
}

/// Most events one `batch` message may carry.
const MAX_BATCH: usize = 200;
/// Largest screenshot (PNG bytes) accepted from a page.
const MAX_SCREENSHOT: usize = 12 * 1024 * 1024;

/// One browser event → page session + traffic-log entry. Unknown types become `custom` with
/// `event_type`; `console` becomes `custom` too (its `level` says which console method).
fn record_event(
    cx: &mut Ctx<'_>,
    typ: &str,
    data: Value,
    url: Option<&str>,
    page_id: Option<String>,
) {
    let kind = match typ {
        "error" => "error",
        "performance" => "performance",
        "interaction" | "interactions" => "interaction",
        "mutation" | "mutations" => "mutation",
        "panel_message" => "panel_message",
        "execution" => "execution",
        _ => "custom",
    };
    let mut data = match data {
        Value::Object(m) => Value::Object(m),
        Value::Null => json!({}),
        other => json!({ "value": other }),
    };
    if kind == "custom" && typ != "custom" {
        data["event_type"] = json!(typ.chars().take(64).collect::<String>());
    }
    if let Some(u) = url
        && data.get("url").is_none()
    {
        data["url"] = json!(u);
    }
    let session = cx
        .shared
        .pages
        .on_event(kind, page_id.as_deref(), url, &data);
    data["session_id"] = json!(session);
    cx.shared.log.push_event(kind, page_id, data);
}

fn file_part(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if out.is_empty() { "x".into() } else { out }
}

/// Decodes the page's PNG data URL, writes it under the screenshot dir and logs a `screenshot`
/// entry; returns `{file_path, bytes, entry_id}` for the page.
fn save_screenshot(
    cx: &mut Ctx<'_>,
    data: Value,
    url: Option<&str>,
    page_id: Option<String>,
) -> Result<Value, String> {
    let du = data
        .get("data_url")
        .and_then(Value::as_str)
        .ok_or("screenshot without data_url")?;
    let b64 = du
        .strip_prefix("data:image/png;base64,")
        .ok_or("screenshot data_url is not a base64 PNG")?;
    let png = crate::util::base64::base64_decode(b64).ok_or("screenshot data_url: bad base64")?;
    if png.len() > MAX_SCREENSHOT || !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("screenshot is not a PNG (or too large)".into());
    }
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("screenshot");
    let dir = cx
        .shared
        .config
        .screenshot_dir
        .clone()
        .unwrap_or_else(|| crate::paths::state_dir().join("screenshots"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let path = dir.join(format!(
        "{}-{}-{stamp}.png",
        file_part(&cx.shared.config.id, 40),
        file_part(name, 60)
    ));
    std::fs::write(&path, &png).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let file_path = path.display().to_string();
    let mut entry = json!({
        "name": name.chars().take(200).collect::<String>(),
        "file_path": file_path,
        "format": "png",
        "width": data.get("width").and_then(Value::as_u64),
        "height": data.get("height").and_then(Value::as_u64),
        "selector": data.get("selector").and_then(Value::as_str),
        "bytes": png.len(),
    });
    if let Some(u) = url {
        entry["url"] = json!(u);
    }
    let session = cx
        .shared
        .pages
        .on_event("screenshot", page_id.as_deref(), url, &entry);
    entry["session_id"] = json!(session);
    let (_, id) = cx.shared.log.push_event("screenshot", page_id, entry);
    Ok(json!({"file_path": file_path, "bytes": png.len(), "entry_id": id}))
}

/// `/__agnt/agnt.js`: cacheable forever when asked for by the current version
/// (`?v=VERSION`, as the injected tag does), else `no-cache`.
fn script_response(target: &str, close: bool) -> Vec<u8> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let current = query
        .split('&')
        .any(|kv| kv.strip_prefix("v=") == Some(super::script::VERSION.as_str()));
    let body = AGNT_JS.as_bytes();
    let mut headers: Vec<Header> = vec![
        (
            "Content-Type".into(),
            b"application/javascript; charset=utf-8".to_vec(),
        ),
        ("Content-Length".into(), body.len().to_string().into_bytes()),
        (
            "Cache-Control".into(),
            if current {
                b"public, max-age=31536000, immutable".to_vec()
            } else {
                b"no-cache".to_vec()
            },
        ),
        ("X-Content-Type-Options".into(), b"nosniff".to_vec()),
    ];
    if close {
        headers.push(("Connection".into(), b"close".to_vec()));
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    http::write_response(
        &ResponseHead {
            version: 1,
            status: 200,
            reason: "OK".into(),
            headers,
        },
        &mut out,
    );
    out.extend_from_slice(body);
    out
}
