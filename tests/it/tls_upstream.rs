//! A local HTTPS dev server for the proxy's TLS tests (`proxy_tls`): a self-signed certificate
//! made in the test with rcgen (SANs `localhost` and `127.0.0.1`), a rustls `ServerConfig` with
//! ALPN `http/1.1`, a listener on 127.0.0.1:0, a thread per connection over
//! `rustls::StreamOwned`, the keep-alive request loop of `proxy::read_request`, and counters of
//! the TCP connections accepted and the TLS handshakes completed.
//!
//! Fixed routes: `/` (an HTML page), `/chunked` (chunks of several sizes, each written on its
//! own), `/sse` (one event, then the second only once the test calls [`TlsUpstream::release_sse`]),
//! `/big` ([`BIG`]: 8 MiB written over a non-blocking socket, reporting when the proxy holds it
//! back — [`TlsUpstream::big_stalled`]), `/redirect` (a 302 to `https://localhost:PORT/next`),
//! `/page-abs`, `/app.js` and `/style.css` (absolute `https://`/`wss://` URLs of this server in
//! HTML, JavaScript and CSS), `/ws` (a WebSocket echo over the TLS stream) and `/close` (a body
//! ended by a TCP close with no `close_notify`: [`CLOSE_BODY`]), `/last` and `/last-abrupt` (a
//! keep-alive answer, then the server closes the connection, with or without `close_notify`);
//! `/sink?len=N` (a 101, then the raw tunnel read in steps the test releases); any `POST` is
//! answered with the length and checksum of the body it carried.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use rustls::{
    ServerConfig, ServerConnection, StreamOwned,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};

use crate::proxy::{Req, read_request, respond};

/// The server side of one connection.
pub type Tls = StreamOwned<ServerConnection, TcpStream>;

/// The `/` page.
pub const PAGE: &str = "<html><head></head><body><h1>hello over tls</h1></body></html>";

/// The chunks `/chunked` sends, each as its own chunk and its own write.
pub fn chunks() -> Vec<Vec<u8>> {
    vec![
        b"a".to_vec(),
        b"0123456789".to_vec(),
        vec![b'x'; 100],
        (0..20_000u32).map(|i| (i % 251) as u8).collect(),
        b"the end".to_vec(),
    ]
}

/// `/close`'s body (spans many TLS records).
pub static CLOSE_BODY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    (0..25_000u32)
        .flat_map(|i| format!("{i:07}\n").into_bytes())
        .collect()
});

/// `/big`'s body: 8 MiB of pseudo-random bytes, and its checksum.
pub static BIG: LazyLock<(Vec<u8>, u64)> = LazyLock::new(|| {
    let mut data = vec![0u8; 8 * 1024 * 1024];
    let mut x: u32 = 0x2545_f491;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let sum = checksum(&data);
    (data, sum)
});

/// FNV-1a (64 bit), incrementally: feed with [`Fnv::feed`].
#[derive(Debug, Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn feed(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The FNV-1a checksum of `data`.
pub fn checksum(data: &[u8]) -> u64 {
    let mut f = Fnv::default();
    f.feed(data);
    f.0
}

/// What the connection threads share with the test.
#[derive(Debug)]
struct State {
    port: u16,
    accepted: AtomicUsize,
    handshakes: AtomicUsize,
    sse_go: crossbeam_channel::Receiver<()>,
    /// `/big` is waiting for the socket to take more (the proxy stopped reading).
    big_stalled: AtomicBool,
    big_stalls: AtomicUsize,
    big_done: AtomicUsize,
    /// Steps `/sink` may read (one per `release_sink`).
    sink_go: crossbeam_channel::Receiver<()>,
    sink_read: AtomicUsize,
    sink_sum: AtomicU64,
}

/// A running TLS upstream; stopped when dropped.
#[derive(Debug)]
pub struct TlsUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    sse_go: crossbeam_channel::Sender<()>,
    sink_go: crossbeam_channel::Sender<()>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl TlsUpstream {
    /// A server that sends no TLS 1.3 session tickets (like a TLS 1.2 server): nothing arrives
    /// after the handshake unless asked for, so no stray readable event wakes the proxy.
    pub fn start() -> TlsUpstream {
        TlsUpstream::with_tickets(0)
    }

    /// A server that sends `tickets` session tickets after each handshake (rustls' default is
    /// 2, as most TLS 1.3 servers do).
    pub fn with_tickets(tickets: usize) -> TlsUpstream {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key)
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.send_tls13_tickets = tickets;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (sink_tx, sink_rx) = crossbeam_channel::unbounded();
        let state = Arc::new(State {
            port: addr.port(),
            accepted: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            sse_go: rx,
            big_stalled: AtomicBool::new(false),
            big_stalls: AtomicUsize::new(0),
            big_done: AtomicUsize::new(0),
            sink_go: sink_rx,
            sink_read: AtomicUsize::new(0),
            sink_sum: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, s) = (state.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let (st, config) = (st.clone(), config.clone());
                thread::spawn(move || serve(stream, config, st));
            }
        });
        TlsUpstream {
            addr,
            state,
            sse_go: tx,
            sink_go: sink_tx,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT` (what a dev server prints).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port())
    }

    /// TCP connections accepted (a failed handshake counts here too).
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.state.handshakes.load(Ordering::SeqCst)
    }

    /// Lets a waiting `/sse` send its second event.
    pub fn release_sse(&self) {
        let _ = self.sse_go.send(());
    }

    /// A `/big` is blocked writing: the proxy stopped reading it for now.
    pub fn big_stalled(&self) -> bool {
        self.state.big_stalled.load(Ordering::SeqCst)
    }

    /// How many times a `/big` found the socket full.
    pub fn big_stalls(&self) -> usize {
        self.state.big_stalls.load(Ordering::SeqCst)
    }

    /// Lets `/sink` read one more step.
    pub fn release_sink(&self) {
        let _ = self.sink_go.send(());
    }

    /// Bytes `/sink` has read after its 101, and their checksum.
    pub fn sink(&self) -> (usize, u64) {
        (
            self.state.sink_read.load(Ordering::SeqCst),
            self.state.sink_sum.load(Ordering::SeqCst),
        )
    }

    /// `/big` bodies written completely.
    pub fn big_done(&self) -> usize {
        self.state.big_done.load(Ordering::SeqCst)
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, st: Arc<State>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        // A client that refuses the certificate ends here (its alert is the error).
        if s.conn.complete_io(&mut s.sock).is_err() {
            return;
        }
    }
    st.handshakes.fetch_add(1, Ordering::SeqCst);
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut s, &mut buf) {
        if !route(&req, &mut s, &st) {
            return;
        }
    }
}

/// Answers one request; false closes the connection.
fn route(req: &Req, s: &mut Tls, st: &State) -> bool {
    let port = st.port;
    let html = ("Content-Type", "text/html; charset=utf-8");
    if req.method == "POST" {
        let text = format!("len={} sum={:016x}", req.body.len(), checksum(&req.body));
        return respond(
            s,
            "200 OK",
            &[("Content-Type", "text/plain")],
            text.as_bytes(),
        );
    }
    match req.path.as_str() {
        "/" => respond(s, "200 OK", &[html], PAGE.as_bytes()),
        "/chunked" => {
            let mut ok = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                )
                .is_ok();
            for c in chunks() {
                let mut out = format!("{:x}\r\n", c.len()).into_bytes();
                out.extend_from_slice(&c);
                out.extend_from_slice(b"\r\n");
                ok = ok && s.write_all(&out).is_ok() && s.flush().is_ok();
            }
            ok && s.write_all(b"0\r\n\r\n").is_ok() && s.flush().is_ok()
        }
        "/sse" => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
            let _ = s.write_all(b"d\r\ndata: first\n\n\r\n");
            let _ = s.flush();
            // The second event only after the test has seen the first one.
            let _ = st.sse_go.recv_timeout(Duration::from_secs(20));
            s.write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n").is_ok() && s.flush().is_ok()
        }
        "/big" => send_big(s, st).is_ok(),
        "/redirect" => respond(
            s,
            "302 Found",
            &[("Location", &format!("https://localhost:{port}/next"))],
            b"",
        ),
        "/page-abs" => {
            let page = format!(
                "<html><head><script src=\"https://localhost:{port}/app.js\"></script></head>\
                 <body><script>const ws = new WebSocket(\"wss://localhost:{port}/ws\");</script>\
                 </body></html>"
            );
            respond(s, "200 OK", &[html], page.as_bytes())
        }
        "/app.js" => {
            let js = format!("fetch(\"https://127.0.0.1:{port}/api\").then(r => r.json());\n");
            respond(
                s,
                "200 OK",
                &[("Content-Type", "application/javascript")],
                js.as_bytes(),
            )
        }
        "/style.css" => {
            let css = format!("body {{ background: url(https://localhost:{port}/img.png); }}\n");
            respond(s, "200 OK", &[("Content-Type", "text/css")], css.as_bytes())
        }
        "/ws" => {
            ws_echo(req, s);
            false
        }
        path if path.starts_with("/sink?len=") => {
            let len = path["/sink?len=".len()..].parse().unwrap_or(0);
            sink(req, s, st, len);
            false
        }
        "/close" => {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
            );
            let _ = s.write_all(&CLOSE_BODY);
            let _ = s.flush();
            // The end of the body is the TCP FIN, with no close_notify before it; then wait
            // for the proxy to close its side.
            let _ = s.sock.shutdown(Shutdown::Write);
            let mut tmp = [0u8; 4096];
            while matches!(s.sock.read(&mut tmp), Ok(n) if n > 0) {}
            false
        }
        "/last" | "/last-abrupt" => {
            // A keep-alive answer, then the server closes the idle connection (an idle timeout):
            // with close_notify, or (`-abrupt`) with only a FIN.
            respond(s, "200 OK", &[("Content-Type", "text/plain")], b"last");
            if req.path == "/last" {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            let _ = s.sock.shutdown(Shutdown::Write);
            let mut tmp = [0u8; 4096];
            while matches!(s.sock.read(&mut tmp), Ok(n) if n > 0) {}
            false
        }
        _ => respond(s, "404 Not Found", &[], b"no such route"),
    }
}

/// `/big` over the socket made non-blocking: every time the socket is full, `big_stalled` is
/// set until it takes more.
fn send_big(s: &mut Tls, st: &State) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let (data, sum) = &*BIG;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nX-Checksum: {sum:016x}\r\n\r\n",
        data.len()
    );
    // A small send buffer, so a proxy that stops reading shows here soon.
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s.sock, 64 * 1024);
    s.sock.set_nonblocking(true)?;
    let push = |s: &mut Tls| -> std::io::Result<()> {
        while s.conn.wants_write() {
            match s.conn.write_tls(&mut s.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    st.big_stalls.fetch_add(1, Ordering::SeqCst);
                    st.big_stalled.store(true, Ordering::SeqCst);
                    let mut fds = [PollFd::new(&s.sock, PollFlags::OUT)];
                    let waited = poll(
                        &mut fds,
                        Some(&Timespec {
                            tv_sec: 30,
                            tv_nsec: 0,
                        }),
                    );
                    st.big_stalled.store(false, Ordering::SeqCst);
                    if waited? == 0 {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    for piece in std::iter::once(head.as_bytes()).chain(data.chunks(64 * 1024)) {
        let mut off = 0;
        while off < piece.len() {
            off += s.conn.writer().write(&piece[off..])?;
            push(s)?;
        }
    }
    s.sock.set_nonblocking(false)?;
    st.big_done.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Answers a WebSocket upgrade with its 101 (the request is already read).
fn switch(req: &Req, s: &mut Tls) -> bool {
    let key = req.header("sec-websocket-key").unwrap_or("").to_string();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).is_ok() && s.flush().is_ok()
}

/// `/sink?len=N`: after the 101, reads the raw tunnel in steps of at most 256 KiB, one per
/// [`TlsUpstream::release_sink`], until `len` bytes came.
fn sink(req: &Req, s: &mut Tls, st: &State, len: usize) {
    if !switch(req, s) {
        return;
    }
    let mut f = Fnv::default();
    let mut read = 0;
    let mut tmp = vec![0u8; 64 * 1024];
    while read < len && st.sink_go.recv_timeout(Duration::from_secs(30)).is_ok() {
        let step_end = (read + 256 * 1024).min(len);
        while read < step_end {
            let want = tmp.len().min(step_end - read);
            match s.read(&mut tmp[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    f.feed(&tmp[..n]);
                    read += n;
                }
            }
        }
        st.sink_sum.store(f.0, Ordering::SeqCst);
        st.sink_read.store(read, Ordering::SeqCst);
    }
}

/// The WebSocket handshake by hand (the request is already read), then echo until close.
fn ws_echo(req: &Req, s: &mut Tls) {
    if !switch(req, s) {
        return;
    }
    let mut ws =
        tungstenite::WebSocket::from_raw_socket(s, tungstenite::protocol::Role::Server, None);
    while let Ok(m) = ws.read() {
        if m.is_text() || m.is_binary() {
            if ws.send(m).is_err() {
                return;
            }
        } else if m.is_close() {
            let _ = ws.flush();
            return;
        }
    }
}
