//! The reverse proxy against real upstream servers on 127.0.0.1 (a small threaded std
//! `TcpListener` server below) with real client sockets.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use agnt::proxy::{
    FileStore, LogQuery, ProxyConfig, ProxyManager, ProxyManagerOptions, ProxyServer,
    ScreenshotStore, http::ChunkedDecoder,
};

use crate::support::wait_until;

/// A request as the test upstream saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes the response on the stream; returns false to close the connection afterwards.
pub type Handler = Arc<dyn Fn(&Req, &mut TcpStream) -> bool + Send + Sync>;

/// A threaded test upstream: one thread per connection, keep-alive, CL and chunked bodies.
pub struct Upstream {
    pub addr: SocketAddr,
    pub conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start(handler: Handler) -> Upstream {
        Upstream::on(TcpListener::bind("127.0.0.1:0").unwrap(), handler)
    }

    pub fn on(listener: TcpListener, handler: Handler) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (conns.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let h = handler.clone();
                thread::spawn(move || serve_conn(stream, h));
            }
        });
        Upstream {
            addr,
            conns,
            stop,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn serve_conn(mut s: TcpStream, h: Handler) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut s, &mut buf) else {
            return;
        };
        if !h(&req, &mut s) {
            return;
        }
    }
}

fn read_more(s: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 16384];
    match s.read(&mut tmp) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            true
        }
    }
}

/// Reads one request (head and CL or chunked body) from `s`, buffering extra bytes in `buf`;
/// `None` at end of file or on an error. Any stream will do (the TLS upstream uses it too).
pub fn read_request(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<Req> {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut hs);
        if let Ok(httparse::Status::Complete(n)) = r.parse(buf) {
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let mut req = Req {
                method: r.method?.to_string(),
                path: r.path?.to_string(),
                headers,
                body: Vec::new(),
            };
            buf.drain(..n);
            if req
                .header("transfer-encoding")
                .is_some_and(|v| v.contains("chunked"))
            {
                let mut d = ChunkedDecoder::new();
                loop {
                    let mut body = Vec::new();
                    let used = d.feed(buf, |b| body.extend_from_slice(b)).ok()?;
                    req.body.extend_from_slice(&body);
                    buf.drain(..used);
                    if d.is_done() {
                        break;
                    }
                    if !read_more(s, buf) {
                        return None;
                    }
                }
            } else if let Some(cl) = req
                .header("content-length")
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                while buf.len() < cl {
                    if !read_more(s, buf) {
                        return None;
                    }
                }
                req.body = buf.drain(..cl).collect();
            }
            return Some(req);
        }
        if !read_more(s, buf) {
            return None;
        }
    }
}

/// Writes a complete response with Content-Length.
pub fn respond(s: &mut impl Write, status: &str, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len()).into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    s.write_all(&out).is_ok()
}

/// Writes a chunked response.
pub fn respond_chunked(s: &mut impl Write, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n".to_vec();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for c in body.chunks(1000) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&out).is_ok()
}

/// A started proxy that is stopped when the test ends (also on failure).
pub struct Px {
    pub mgr: Arc<ProxyManager>,
    pub p: Arc<ProxyServer>,
}

impl Px {
    pub fn start(target: &str, f: impl FnOnce(&mut ProxyConfig)) -> Px {
        let mgr = ProxyManager::new();
        let mut cfg = ProxyConfig::new("test", target, "/tmp/agnt-test");
        cfg.port = Some(0);
        // The Host names these tests' raw requests send (anything else gets 403).
        cfg.allowed_hosts = vec!["a".into(), "proxy.test".into(), "myproxy".into()];
        f(&mut cfg);
        let p = mgr.start(cfg).unwrap();
        Px { mgr, p }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.p.listen_addr())
    }

    /// A page channel as the agnt script opens it: the proxy's Origin and its page key.
    pub fn page_ws(
        &self,
    ) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
        use tungstenite::client::IntoClientRequest;
        let addr = self.p.listen_addr();
        let url = format!("ws://{addr}/__agnt/ws?key={}", self.p.page_key());
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Origin", format!("http://{addr}").parse().unwrap());
        tungstenite::connect(req).unwrap().0
    }

    pub fn query(&self, f: impl FnOnce(&mut LogQuery)) -> serde_json::Value {
        let mut q = LogQuery::default();
        f(&mut q);
        self.p.log_query(&q).unwrap()
    }
}

impl Drop for Px {
    fn drop(&mut self) {
        self.mgr.shutdown(Duration::from_secs(5));
    }
}

/// A raw HTTP/1.1 client on one connection.
pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

/// A response as the client read it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client { s, buf: Vec::new() }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.s.write_all(raw).unwrap();
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.send(
            format!("GET {path} HTTP/1.1\r\nHost: proxy.test\r\nAccept: text/html\r\n\r\n")
                .as_bytes(),
        );
        self.read_response("GET").expect("response")
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self, method: &str) -> Option<Resp> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut hs);
            if let Ok(httparse::Status::Complete(n)) = r.parse(&self.buf) {
                let status = r.code.unwrap();
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                let mut resp = Resp {
                    status,
                    headers,
                    body: Vec::new(),
                };
                if method == "HEAD"
                    || status == 101
                    || status == 304
                    || status == 204
                    || status < 200
                {
                    return Some(resp);
                }
                if resp
                    .header("transfer-encoding")
                    .is_some_and(|v| v.contains("chunked"))
                {
                    let mut d = ChunkedDecoder::new();
                    loop {
                        let mut body = Vec::new();
                        let used = d.feed(&self.buf, |b| body.extend_from_slice(b)).ok()?;
                        resp.body.extend_from_slice(&body);
                        self.buf.drain(..used);
                        if d.is_done() {
                            return Some(resp);
                        }
                        if !read_more(&mut self.s, &mut self.buf) {
                            return None;
                        }
                    }
                } else if let Some(cl) = resp
                    .header("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                {
                    while self.buf.len() < cl {
                        if !read_more(&mut self.s, &mut self.buf) {
                            return None;
                        }
                    }
                    resp.body = self.buf.drain(..cl).collect();
                    return Some(resp);
                } else {
                    while read_more(&mut self.s, &mut self.buf) {}
                    resp.body = std::mem::take(&mut self.buf);
                    return Some(resp);
                }
            }
            if !read_more(&mut self.s, &mut self.buf) {
                return None;
            }
        }
    }

    /// True once the server has closed the connection (reads EOF or reset).
    pub fn closed_by_server(&mut self) -> bool {
        let mut tmp = [0u8; 4096];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    }
}

/// Echo upstream: body echoed; `X-Seen-*` headers report what arrived; `/chunked*` answers chunked.
fn echo() -> Handler {
    Arc::new(|req: &Req, s: &mut TcpStream| {
        let host = req.header("host").unwrap_or("").to_string();
        let xff = req.header("x-forwarded-for").unwrap_or("").to_string();
        let xfh = req.header("x-forwarded-host").unwrap_or("").to_string();
        let h = [
            ("Content-Type", "application/octet-stream"),
            ("X-Seen-Host", &host),
            ("X-Seen-Xff", &xff),
            ("X-Seen-Xfh", &xfh),
            ("X-Method", req.method.as_str()),
        ];
        if req.path.starts_with("/chunked") {
            respond_chunked(s, &h, &req.body)
        } else {
            respond(s, "200 OK", &h, &req.body)
        }
    })
}

#[test]
fn get_and_post_in_both_framings_with_rewrites() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    let r = c.get("/hello");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-seen-host"),
        Some(up.url().trim_start_matches("http://"))
    );
    assert_eq!(r.header("x-seen-xff"), Some("127.0.0.1"));
    assert_eq!(r.header("x-seen-xfh"), Some("proxy.test"));
    let body = vec![b'x'; 50_000];
    c.send(
        format!(
            "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.body, body);
    // Chunked request body, chunked response.
    c.send(b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"hello world");
    // HEAD: no body even though the upstream says Content-Length.
    c.send(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response("HEAD").unwrap();
    assert_eq!(r.status, 200);
    let r = c.get("/after-head");
    assert_eq!(r.status, 200);
    // An HTTP/1.0 client gets a chunked upstream response de-chunked, delimited by close.
    let mut old = px.client();
    old.send(b"POST /chunked HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    let r = old.read_response("POST").unwrap();
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.body, b"abc");
    // The log captured the POST body.
    let v = px.query(|q| q.methods = vec!["POST".into()]);
    let posts = v["entries"].as_array().unwrap();
    assert_eq!(posts.len(), 3);
    let full = px.p.log_get(posts[1]["id"].as_str().unwrap()).unwrap();
    assert_eq!(full["data"]["request_body"]["text"], "hello world");
    assert_eq!(full["data"]["response_body"]["text"], "hello world");
    let first = px.p.log_get(posts[0]["id"].as_str().unwrap()).unwrap();
    assert_eq!(first["data"]["request_body"]["truncated"], true);
    assert_eq!(first["data"]["request_body"]["size"], 10 * 1024);
}

#[test]
fn keep_alive_reuses_upstream_connection() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    for i in 0..10 {
        assert_eq!(c.get(&format!("/r{i}")).status, 200);
    }
    // Pipelined: two requests in one write.
    c.send(b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    assert_eq!(
        up.conns.load(Ordering::SeqCst),
        1,
        "12 requests should share one upstream connection"
    );
    let st = px.p.status();
    assert_eq!(st.upstream_connects, 1);
    assert_eq!(st.total_requests, 12);
}

#[test]
fn sse_stream_arrives_incrementally() {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let rx = Arc::new(rx);
    let up = Upstream::start(Arc::new(move |_req: &Req, s: &mut TcpStream| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
        let _ = s.write_all(b"d\r\ndata: first\n\n\r\n");
        // The second event only after the test has seen the first one.
        let _ = rx.recv_timeout(Duration::from_secs(10));
        let _ = s.write_all(b"e\r\ndata: second\n\n\r\n0\r\n\r\n");
        true
    }));
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    c.send(b"GET /events HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n");
    let mut got = Vec::new();
    let mut tmp = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("data: first") {
        let n = c.s.read(&mut tmp).unwrap();
        assert!(n > 0, "closed before the first event");
        got.extend_from_slice(&tmp[..n]);
    }
    assert!(!String::from_utf8_lossy(&got).contains("second"));
    tx.send(()).unwrap();
    while !String::from_utf8_lossy(&got).contains("0\r\n\r\n") {
        let n = c.s.read(&mut tmp).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&tmp[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("data: second"));
}

#[test]
fn websocket_echo_through_proxy() {
    let up = Upstream::start(Arc::new(|req: &Req, s: &mut TcpStream| {
        let key = req.header("sec-websocket-key").unwrap_or("").to_string();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let _ = s.write_all(
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").as_bytes(),
        );
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            s.try_clone().unwrap(),
            tungstenite::protocol::Role::Server,
            None,
        );
        while let Ok(m) = ws.read() {
            if m.is_text() || m.is_binary() {
                if ws.send(m).is_err() {
                    break;
                }
            } else if m.is_close() {
                break;
            }
        }
        false
    }));
    let px = Px::start(&up.url(), |_| {});
    let url = format!("ws://{}/hmr", px.p.listen_addr());
    let (mut ws, resp) = tungstenite::connect(url.as_str()).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    for i in 0..5 {
        ws.send(tungstenite::Message::text(format!("ping {i}")))
            .unwrap();
        let m = ws.read().unwrap();
        assert_eq!(m.to_text().unwrap(), format!("ping {i}"));
    }
    let big = vec![7u8; 300_000];
    ws.send(tungstenite::Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap().into_data().to_vec(), big);
    let _ = ws.close(None);
    let v = px.query(|q| q.status_codes = vec![101]);
    assert_eq!(v["count"], 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn html_injection_positions_and_encodings() {
    let page = b"<!doctype html><html><head><title>t</title></head><body>hi</body></html>".to_vec();
    let p2 = page.clone();
    let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let html = [("Content-Type", "text/html; charset=utf-8")];
        match req.path.as_str() {
            "/head" => respond(s, "200 OK", &html, &p2),
            "/open-head" => respond(s, "200 OK", &html, b"<html><head><title>t</title><body>x"),
            "/body" => respond(
                s,
                "200 OK",
                &html,
                b"<html><header>h</header><body class=a>x</body>",
            ),
            "/html" => respond(s, "200 OK", &html, b"<html lang=en><p>x"),
            "/frag" => respond(s, "200 OK", &html, b"<p>fragment</p>"),
            "/gzip" => respond(
                s,
                "200 OK",
                &[html[0], ("Content-Encoding", "gzip")],
                &gzip(&p2),
            ),
            "/deflate" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&p2).unwrap();
                respond(
                    s,
                    "200 OK",
                    &[html[0], ("Content-Encoding", "deflate")],
                    &e.finish().unwrap(),
                )
            }
            "/br" => {
                let mut out = Vec::new();
                brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
                    .write_all(&p2)
                    .unwrap();
                respond(s, "200 OK", &[html[0], ("Content-Encoding", "br")], &out)
            }
            "/zstd" => respond(
                s,
                "200 OK",
                &[html[0], ("Content-Encoding", "zstd")],
                b"opaque",
            ),
            "/corrupt" => respond(
                s,
                "200 OK",
                &[html[0], ("Content-Encoding", "gzip")],
                b"\x1f\x8b\x08\x00garbage",
            ),
            "/chunked" => respond_chunked(s, &[html[0]], &p2),
            "/json" => respond(
                s,
                "200 OK",
                &[("Content-Type", "application/json")],
                b"{\"a\":\"</head>\"}",
            ),
            _ => respond(s, "404 Not Found", &[], b""),
        }
    }));
    let px = Px::start(&up.url(), |_| {});
    // The proxy's tag carries its page key.
    let tag = String::from_utf8(agnt::proxy::inject::script_tag(Some(px.p.page_key()))).unwrap();
    #[allow(non_snake_case)]
    let TAG = tag.as_str();
    assert!(TAG.contains(&format!("data-agnt-key=\"{}\"", px.p.page_key())));
    let mut c = px.client();
    let r = c.get("/head");
    assert_eq!(
        r.text(),
        format!("<!doctype html><html><head><title>t</title>{TAG}</head><body>hi</body></html>")
    );
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert_eq!(
        c.get("/open-head").text(),
        format!("<html><head>{TAG}<title>t</title><body>x")
    );
    assert_eq!(
        c.get("/body").text(),
        format!("<html><header>h</header><body class=a>{TAG}x</body>")
    );
    assert_eq!(c.get("/html").text(), format!("<html lang=en>{TAG}<p>x"));
    assert_eq!(c.get("/frag").text(), format!("{TAG}<p>fragment</p>"));
    let expected = c.get("/head").body;
    for enc in ["/gzip", "/deflate", "/br", "/chunked"] {
        let r = c.get(enc);
        assert_eq!(r.body, expected, "{enc}");
        assert!(r.header("content-encoding").is_none(), "{enc}");
        assert!(r.header("transfer-encoding").is_none(), "{enc}");
    }
    let r = c.get("/zstd");
    assert_eq!(
        (r.body.as_slice(), r.header("content-encoding")),
        (&b"opaque"[..], Some("zstd"))
    );
    let r = c.get("/corrupt");
    assert_eq!(
        (r.body.as_slice(), r.header("content-encoding")),
        (&b"\x1f\x8b\x08\x00garbage"[..], Some("gzip"))
    );
    assert_eq!(c.get("/json").text(), "{\"a\":\"</head>\"}");
    // The script itself is served by the proxy.
    let js = c.get("/__agnt/agnt.js");
    assert_eq!(js.status, 200);
    assert_eq!(js.header("cache-control"), Some("no-cache"));
    let v = format!("/__agnt/agnt.js?v={}", *agnt::proxy::script::VERSION);
    assert!(TAG.contains(&v));
    let js = c.get(&v);
    assert!(js.header("cache-control").unwrap().contains("immutable"));
    assert!(js.text().contains("/__agnt/ws"));
    assert!(px.p.status().injected >= 9);
}

#[test]
fn binary_passes_byte_for_byte() {
    let mut data = vec![0u8; 5 * 1024 * 1024];
    let mut x: u32 = 12345;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let d2 = Arc::new(data.clone());
    let up = Upstream::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        if req.path == "/chunked" {
            respond_chunked(s, &[("Content-Type", "application/octet-stream")], &d2)
        } else {
            respond(
                s,
                "200 OK",
                &[("Content-Type", "application/octet-stream")],
                &d2,
            )
        }
    }));
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    assert!(c.get("/bin").body == data);
    assert!(c.get("/chunked").body == data);
    let v = px.query(|_| {});
    let id = v["entries"][0]["id"].as_str().unwrap().to_string();
    let full = px.p.log_get(&id).unwrap();
    assert_eq!(full["data"]["response_body"]["encoding"], "base64");
    assert_eq!(full["data"]["response_body"]["truncated"], true);
}

#[test]
fn dead_upstream_gives_502_then_recovers() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let target = format!("http://localhost:{}", addr.port());
    let px = Px::start(&target, |_| {});
    let mut c = px.client();
    let r = c.get("/");
    assert_eq!(r.status, 502);
    assert!(r.text().contains(&target), "{}", r.text());
    assert!(r.text().to_lowercase().contains("refused"), "{}", r.text());
    let v = px.query(|q| q.status_codes = vec![502]);
    assert!(
        v["entries"][0]["data"]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused")
    );
    // The dev server comes (back) up: the same client connection now gets 200.
    let _up = Upstream::on(TcpListener::bind(addr).unwrap(), echo());
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn location_and_cookie_rewrites() {
    let up = Upstream::start(Arc::new(|_req: &Req, s: &mut TcpStream| {
        let port = s.local_addr().unwrap().port();
        let loc = format!("http://localhost:{port}/next?a=1");
        respond(
            s,
            "302 Found",
            &[
                ("Location", &loc),
                ("Set-Cookie", "sid=1; Domain=localhost; Path=/; HttpOnly"),
                ("Set-Cookie", "o=2; Domain=example.com"),
            ],
            b"",
        )
    }));
    let target = format!("http://localhost:{}", up.addr.port());
    let px = Px::start(&target, |_| {});
    let mut c = px.client();
    c.send(b"GET / HTTP/1.1\r\nHost: myproxy:1234\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://myproxy:1234/next?a=1"));
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        cookies,
        ["sid=1; Path=/; HttpOnly", "o=2; Domain=example.com"]
    );
}

#[test]
fn bad_input_is_answered_or_closed_and_the_loop_keeps_going() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nX: a\r\n\r\nInjected: yes\r\n".to_vec(),
            200,
        ),
        (b"GET /\r\n HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nX-Bin: \xff\xfe\x80\r\n\r\n".to_vec(),
            200,
        ),
        (b"\x00\x01\x02\xff\r\n\r\n".to_vec(), 400),
    ];
    for (raw, want) in cases {
        let mut c = px.client();
        c.send(&raw);
        let r = c.read_response("GET");
        assert_eq!(
            r.map(|r| r.status),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    // Oversized head: 431.
    let mut c = px.client();
    let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    raw.resize(70 * 1024, b'a');
    c.send(&raw);
    assert_eq!(c.read_response("GET").unwrap().status, 431);
    // A 10 MB header: answered 431 or closed, never a hang.
    let mut c = px.client();
    c.s.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = c.s.write_all(b"GET / HTTP/1.1\r\nX-Huge: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..160 {
        if c.s.write_all(&chunk).is_err() {
            break;
        }
    }
    if let Some(r) = c.read_response("GET") {
        assert_eq!(r.status, 431);
    }
    // Garbage on the page WebSocket: closed, counted.
    let ws = px.page_ws();
    let mut raw = ws.into_inner();
    let tungstenite::stream::MaybeTlsStream::Plain(s) = &mut raw else {
        panic!("plain stream")
    };
    s.write_all(&[0xff; 32]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tmp = [0u8; 64];
    let mut closed = false;
    for _ in 0..10 {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed);
    assert!(wait_until(Duration::from_secs(5), || px
        .p
        .status()
        .ws_errors
        >= 1));
    // Still serving.
    assert_eq!(px.client().get("/ok").status, 200);
    assert!(px.p.status().bad_requests >= 6);
}

#[test]
fn slowloris_is_closed_while_others_are_served() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |c| c.header_timeout = Duration::from_millis(300));
    let mut slow = px.client();
    slow.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let mut fast = px.client();
    for _ in 0..5 {
        assert_eq!(fast.get("/").status, 200);
    }
    let start = std::time::Instant::now();
    let r = slow.read_response("GET");
    assert!(r.is_none_or(|r| r.status == 408));
    assert!(slow.closed_by_server());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(fast.get("/").status, 200);
    assert!(px.p.status().timeouts >= 1);
}

#[test]
fn traffic_log_queries_limits_and_wrap() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |c| c.max_log_size = 5);
    let mut c = px.client();
    for i in 0..8 {
        c.send(
            format!(
                "{} /item/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                if i % 2 == 0 { "GET" } else { "POST" }
            )
            .as_bytes(),
        );
        c.read_response("GET").unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || px
        .p
        .log_stats()
        .total_entries
        == 8));
    let st = px.p.log_stats();
    assert_eq!((st.available_entries, st.max_size, st.dropped), (5, 5, 3));
    let v = px.query(|_| {});
    let urls: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["/item/3", "/item/4", "/item/5", "/item/6", "/item/7"]
    );
    assert_eq!(px.query(|q| q.methods = vec!["GET".into()])["count"], 2);
    assert_eq!(
        px.query(|q| q.url_pattern = Some("/item/7".into()))["count"],
        1
    );
    let seq6 = v["entries"][3]["seq"].as_u64().unwrap();
    assert_eq!(px.query(|q| q.since_seq = Some(seq6))["count"], 1);
    let lim = px.query(|q| q.limit = Some(2));
    assert_eq!(lim["entries"][0]["data"]["url"], "/item/6");
    assert_eq!(lim["entries"][1]["data"]["url"], "/item/7");
    assert!(
        px.p.log_query(&LogQuery {
            since: Some("soon".into()),
            ..Default::default()
        })
        .is_err()
    );
    assert_eq!(px.query(|q| q.since = Some("1h".into()))["count"], 5);
    let s = px.p.log_summary(&LogQuery::default(), &[], 10).unwrap();
    assert_eq!(s["http_count"], 5);
    px.p.log_clear();
    assert_eq!(px.query(|_| {})["count"], 0);
}

fn ws_connect(px: &Px) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    px.page_ws()
}

#[test]
fn browser_event_becomes_error_entry_and_page_session() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let mut ws = ws_connect(&px);
    let ev = serde_json::json!({
        "type": "error",
        "data": {"message": "Uncaught TypeError: x is undefined", "source": "http://a/app.js", "lineno": 3, "colno": 9, "stack": "TypeError: x is undefined\n at f (http://a/app.js:3:9)"},
        "url": "http://a/",
        "page_id": "tab-1",
    });
    ws.send(tungstenite::Message::text(ev.to_string())).unwrap();
    assert!(wait_until(Duration::from_secs(5), || px
        .query(|q| q.types = vec!["error".into()])["count"]
        == 1));
    let v = px.query(|q| q.types = vec!["error".into()]);
    let e = &v["entries"][0];
    assert_eq!(e["page_id"], "tab-1");
    assert_eq!(e["data"]["message"], "Uncaught TypeError: x is undefined");
    assert!(e["data"]["stack"].as_str().unwrap().contains("app.js:3:9"));
    let pages = px.p.pages_list();
    assert_eq!(pages["count"], 1);
    let sid = pages["sessions"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(pages["sessions"][0]["error_count"], 1);
    assert!(
        px.p.page_summary(&sid, &["errors".into()], 5).unwrap()["errors"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    // Malformed JSON closes the channel and is counted.
    ws.send(tungstenite::Message::text("{not json")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || px
        .p
        .status()
        .ws_errors
        >= 1));
}

#[test]
fn exec_round_trip_and_errors() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let err =
        px.p.exec("1+1", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
    assert!(err.contains("no page connected"), "{err}");
    let mut ws = ws_connect(&px);
    ws.send(tungstenite::Message::text(
        r#"{"type":"hello","data":{},"url":"http://a/","page_id":"tab-9"}"#,
    ))
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || px
        .p
        .status()
        .ws_clients
        == 1));
    // The proxy's first message is the page config.
    let cfg: serde_json::Value =
        serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        (cfg["type"].as_str(), cfg["panel"].as_bool()),
        (Some("config"), Some(true))
    );
    let p = px.p.clone();
    let caller = thread::spawn(move || p.exec("1+1", Duration::from_secs(10)));
    let m = ws.read().unwrap();
    let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "execute");
    assert_eq!(v["code"], "1+1");
    let reply = serde_json::json!({"type": "response", "id": v["id"], "success": true, "result": 2, "error": null, "duration_ms": 1});
    ws.send(tungstenite::Message::text(reply.to_string()))
        .unwrap();
    let out = caller.join().unwrap().unwrap();
    assert!(out.success);
    assert_eq!(out.result, Some(serde_json::json!(2)));
    assert_eq!(out.page_id.as_deref(), Some("tab-9"));
    // A JS error comes back as success=false, not as an Err.
    let p = px.p.clone();
    let caller = thread::spawn(move || p.exec("throw 1", Duration::from_secs(10)));
    let v: serde_json::Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    let reply = serde_json::json!({"type": "response", "id": v["id"], "success": false, "error": "Error: boom"});
    ws.send(tungstenite::Message::text(reply.to_string()))
        .unwrap();
    let out = caller.join().unwrap().unwrap();
    assert!(!out.success);
    assert_eq!(out.error.as_deref(), Some("Error: boom"));
    // Timeout when the page never answers.
    let err =
        px.p.exec("never", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(px.query(|q| q.types = vec!["execution".into()])["count"], 2);
}

#[test]
fn busy_port_is_an_error_naming_the_address() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mgr = ProxyManager::new();
    let mut cfg = ProxyConfig::new("busy", "http://localhost:9", "/tmp");
    cfg.port = Some(port);
    let err = mgr.start(cfg).unwrap_err();
    assert!(matches!(err, agnt::Error::PortInUse { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(mgr.list(None).is_empty());
    // Duplicate ids and bad URLs.
    let mut ok = ProxyConfig::new("dup", "http://localhost:9", "/tmp");
    ok.port = Some(0);
    mgr.start(ok.clone()).unwrap();
    assert!(matches!(
        mgr.start(ok).unwrap_err(),
        agnt::Error::AlreadyExists { .. }
    ));
    let mut bad = ProxyConfig::new("bad", "ftp://x", "/tmp");
    bad.port = Some(0);
    assert!(matches!(
        mgr.start(bad).unwrap_err(),
        agnt::Error::InvalidArgument(_)
    ));
    // Fuzzy lookup by `:` component.
    let mut c = ProxyConfig::new("app-1:dev:localhost-9", "http://localhost:9", "/tmp");
    c.port = Some(0);
    mgr.start(c).unwrap();
    assert_eq!(mgr.get("dev").unwrap().id(), "app-1:dev:localhost-9");
    assert!(mgr.get("nope").unwrap_err().to_string().contains("dup"));
    mgr.shutdown(Duration::from_secs(5));
    assert!(mgr.list(None).is_empty());
}

#[test]
fn default_port_is_the_stable_hash() {
    let target = "http://localhost:1/agnt-default-port-test";
    let mgr = ProxyManager::new();
    let port = agnt::proxy::default_port(target);
    match mgr.start(ProxyConfig::new("hash", target, "/tmp")) {
        Ok(p) => assert_eq!(p.listen_addr().port(), port),
        // Someone else holds that port on this machine: the error must name it.
        Err(e) => assert!(e.to_string().contains(&port.to_string()), "{e}"),
    }
    mgr.shutdown(Duration::from_secs(5));
}

#[test]
fn auto_restart_is_limited_to_five_a_minute() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    for n in 1..=5u32 {
        assert!(px.p.debug_panic_loop());
        assert!(wait_until(Duration::from_secs(5), || px
            .p
            .status()
            .restart_count
            == n));
        assert!(wait_until(Duration::from_secs(5), || px.p.is_running()));
        // Same address, still serving.
        assert!(wait_until(Duration::from_secs(5), || {
            let Ok(s) = TcpStream::connect(px.p.listen_addr()) else {
                return false;
            };
            let mut c = Client { s, buf: Vec::new() };
            c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            c.read_response("GET").is_some_and(|r| r.status == 200)
        }));
    }
    assert!(px.p.status().last_error.unwrap().contains("panicked"));
    assert!(px.p.debug_panic_loop());
    assert!(wait_until(Duration::from_secs(5), || !px.p.is_running()));
    assert!(px.p.status().last_error.unwrap().contains("not restarting"));
    assert!(px.p.exec("1", Duration::from_secs(1)).is_err());
}

#[test]
fn half_closed_client_abandons_its_exchange() {
    // As nginx does, a client's FIN with an exchange open means it is gone: the exchange is
    // abandoned (logged "client closed"), the connection closed.
    let up = Upstream::start(Arc::new(|_: &Req, s: &mut TcpStream| {
        let _ = s.read(&mut [0u8; 1]); // never answers: waits until the proxy hangs up
        false
    }));
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    c.send(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody");
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.read_response("POST").is_none());
    assert!(wait_until(Duration::from_secs(5), || {
        px.query(|_| {})["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["error"] == "client closed" && e["data"]["url"] == "/x")
    }));
    // A client that half-closes mid-head is closed without a response.
    let mut c = px.client();
    c.send(b"GET / HTTP/1.1\r\nHos");
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.read_response("GET").is_none());
    assert!(wait_until(Duration::from_secs(5), || px
        .p
        .status()
        .active_connections
        == 0));
}

#[test]
fn cross_origin_page_channel_is_refused() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let addr = px.p.listen_addr();
    let key = px.p.page_key().to_string();
    let ws_req = |origin: &str| {
        let mut c = px.client();
        c.send(
            format!(
                "GET /__agnt/ws?key={key} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        );
        c.read_response("GET").map(|r| r.status)
    };
    assert_eq!(ws_req("http://evil.example"), Some(403));
    assert_eq!(ws_req(&format!("http://{addr}")), Some(101));
}

#[test]
fn random_bytes_never_wedge_the_loop() {
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let prefixes: [&[u8]; 4] = [
        b"",
        b"GET / HTTP/1.1\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /__agnt/ws HTTP/1.1\r\n",
    ];
    for i in 0..200 {
        let mut c = px.client();
        c.s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut raw = prefixes[i % prefixes.len()].to_vec();
        let n = (next() % 600) as usize;
        raw.extend((0..n).map(|_| next() as u8));
        if i % 3 == 0 {
            raw.extend_from_slice(b"\r\n\r\n");
        }
        let _ = c.s.write_all(&raw);
        let _ = c.s.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!(c.s.read(&mut sink), Ok(n) if n > 0) {}
    }
    // Still serving, and every one of those connections is gone.
    assert_eq!(px.client().get("/alive").status, 200);
    assert!(
        wait_until(Duration::from_secs(10), || px.p.status().active_connections
            == 0),
        "{:#?}",
        px.p.status()
    );
    assert_eq!(px.p.status().restart_count, 0);
}

#[test]
fn pipelined_requests_from_a_slow_reader_are_all_answered() {
    // 200 requests for the 57 KB script, sent at once and read only afterwards: the proxy stops
    // reading this client while its answers pile up (bounded), and resumes as they drain.
    let up = Upstream::start(echo());
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    let one = b"GET /__agnt/agnt.js HTTP/1.1\r\nHost: proxy.test\r\n\r\n";
    let n = 200;
    c.send(&one.repeat(n));
    let mut other = px.client();
    assert_eq!(
        other.get("/").status,
        200,
        "another client is served meanwhile"
    );
    for i in 0..n {
        let r = c
            .read_response("GET")
            .unwrap_or_else(|| panic!("answer {i} missing"));
        assert_eq!(r.status, 200);
        assert!(r.body.len() > 10_000);
    }
}

/// A screenshot store that says when a write starts and then waits for the test's go-ahead.
struct GatedStore {
    started: crossbeam_channel::Sender<String>,
    go: crossbeam_channel::Receiver<()>,
}

impl ScreenshotStore for GatedStore {
    fn write(&self, path: &std::path::Path, png: &[u8]) -> std::io::Result<()> {
        let _ = self.started.send(path.display().to_string());
        // Bounded, so a failing test cannot leave the writer thread stuck for ever.
        let _ = self.go.recv_timeout(Duration::from_secs(30));
        FileStore.write(path, png)
    }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot-really-a-png";

fn shot(req: &str) -> tungstenite::Message {
    let data_url = format!("data:image/png;base64,{}", agnt::util::base64::base64(PNG));
    let v = serde_json::json!({"type": "screenshot", "req": req,
        "data": {"name": "stuck", "width": 1, "height": 1, "data_url": data_url}});
    tungstenite::Message::text(v.to_string())
}

/// The next message from the proxy on a page channel (the socket has a read timeout).
fn next_msg(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
) -> serde_json::Value {
    serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap()
}

fn page_channel(px: &Px) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let mut ws = ws_connect(px);
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    assert_eq!(next_msg(&mut ws)["type"], "config");
    ws
}

#[test]
fn a_stuck_screenshot_writer_blocks_neither_the_loop_nor_the_page() {
    let up = Upstream::start(echo());
    let shots = tempfile::tempdir().unwrap();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (go, go_rx) = crossbeam_channel::unbounded();
    let mgr = ProxyManager::with_options(ProxyManagerOptions {
        screenshot_dir: Some(shots.path().to_path_buf()),
        screenshot_store: Some(Arc::new(GatedStore {
            started: started_tx,
            go: go_rx,
        })),
        screenshot_queue: 1,
        ..ProxyManagerOptions::default()
    });
    let mut cfg = ProxyConfig::new("shots", up.url(), "/tmp/agnt-test");
    cfg.port = Some(0);
    let px = Px {
        p: mgr.start(cfg).unwrap(),
        mgr,
    };
    let mut ws = page_channel(&px);

    // shot-1 reaches the writer, which blocks in the store; shot-2 fills the queue (1 slot);
    // shot-3 finds it full and is refused at once.
    ws.send(shot("shot-1")).unwrap();
    let first = started
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer never started on shot-1");
    ws.send(shot("shot-2")).unwrap();
    ws.send(shot("shot-3")).unwrap();
    let ack = next_msg(&mut ws);
    assert_eq!(
        (ack["type"].as_str(), ack["req"].as_str()),
        (Some("screenshot_saved"), Some("shot-3")),
        "{ack}"
    );
    let why = ack["error"].as_str().unwrap();
    assert!(why.contains("refused") && why.contains("waiting"), "{why}");
    let errors = px.query(|q| q.types = vec!["error".into()]);
    assert_eq!(errors["count"], 1, "{errors:#}");
    assert_eq!(errors["entries"][0]["data"]["message"], why);

    // While the writer is stuck, other clients of the same proxy are served, and the page
    // channel still works.
    let mut clients: Vec<Client> = (0..3).map(|_| px.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(
            format!(
                "POST /during-{i} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nstill here"
            )
            .as_bytes(),
        );
        let r = c.read_response("POST").expect("response");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"still here"[..]));
    }
    ws.send(tungstenite::Message::text(
        r#"{"type":"error","data":{"message":"page still talking"}}"#,
    ))
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        px.query(|q| q.types = vec!["error".into()])["count"] == 2
    }));
    assert!(px.p.is_running());
    assert_eq!(
        px.query(|q| q.types = vec!["screenshot".into()])["count"],
        0
    );

    // Unblocked: both queued screenshots are written, logged and acknowledged.
    go.send(()).unwrap();
    go.send(()).unwrap();
    let mut acks: Vec<serde_json::Value> = (0..2).map(|_| next_msg(&mut ws)).collect();
    acks.sort_by_key(|a| a["req"].as_str().unwrap_or("").to_string());
    assert_eq!(acks[0]["req"], "shot-1");
    assert_eq!(acks[1]["req"], "shot-2");
    assert_eq!(acks[0]["file_path"].as_str(), Some(first.as_str()));
    for a in &acks {
        let path = std::path::Path::new(a["file_path"].as_str().unwrap());
        assert_eq!(path.parent(), Some(shots.path()));
        assert_eq!(std::fs::read(path).unwrap(), PNG);
        assert_eq!(a["bytes"], PNG.len());
    }
    let logged = px.query(|q| q.types = vec!["screenshot".into()]);
    assert_eq!(logged["count"], 2, "{logged:#}");
}

#[test]
fn without_a_screenshot_dir_screenshots_are_refused_with_an_error_entry() {
    let up = Upstream::start(echo());
    // ProxyManager::new() names no directory and neither does this config.
    let px = Px::start(&up.url(), |_| {});
    let mut ws = page_channel(&px);
    ws.send(shot("s1")).unwrap();
    let ack = next_msg(&mut ws);
    assert_eq!(ack["req"], "s1");
    let why = ack["error"].as_str().unwrap();
    assert!(why.contains("no screenshot directory"), "{why}");
    let errors = px.query(|q| q.types = vec!["error".into()]);
    assert_eq!(errors["entries"][0]["data"]["message"], why);
    assert_eq!(px.client().get("/after").status, 200);
}
