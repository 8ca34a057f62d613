//! Body URL rewriting through a real proxy against a real plain-HTTP upstream (the helpers of
//! `proxy.rs`): absolute URLs on the target in HTML point at the proxy origin the client used,
//! and a plain-HTTP target's CSS/JS streams through untouched (never buffered).

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    sync::Arc,
};

use crate::proxy::{Px, Req, Upstream, respond, respond_chunked};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A page full of URLs on the upstream at `port` (and some that only look like it).
fn page(port: u16) -> String {
    format!(
        "<html><head><script src=\"http://127.0.0.1:{port}/app.js\"></script>\
         <link href=\"HTTP://localhost:{port}/a.css\"></head><body>\
         <script>new WebSocket('ws://localhost:{port}/hmr');\
         var c = {{\"u\":\"http:\\/\\/127.0.0.1:{port}\\/x\"}};</script>\
         <a href=\"http://127.0.0.1:{port}0/other\">other port</a>\
         <a href=\"http://127.0.0.1:{port}.evil.com/\">other host</a></body></html>"
    )
}

#[test]
fn html_urls_on_the_target_point_at_the_proxy() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let html = page(port);
    let h2 = html.clone();
    let up = Upstream::on(
        l,
        Arc::new(move |req: &Req, s: &mut TcpStream| {
            let ct = ("Content-Type", "text/html; charset=utf-8");
            match req.path.as_str() {
                "/gzip" => respond(
                    s,
                    "200 OK",
                    &[ct, ("Content-Encoding", "gzip")],
                    &gzip(h2.as_bytes()),
                ),
                "/chunked" => respond_chunked(s, &[ct], h2.as_bytes()),
                _ => respond(s, "200 OK", &[ct], h2.as_bytes()),
            }
        }),
    );
    let px = Px::start(&up.url(), |_| {});
    let tag = String::from_utf8(agnt::proxy::inject::script_tag(Some(px.p.page_key()))).unwrap();
    let want = |origin: &str| {
        format!(
            "<html><head><script src=\"{origin}/app.js\"></script>\
             <link href=\"{origin}/a.css\">{tag}</head><body>\
             <script>new WebSocket('{ws}/hmr');\
             var c = {{\"u\":\"{esc}\\/x\"}};</script>\
             <a href=\"http://127.0.0.1:{port}0/other\">other port</a>\
             <a href=\"http://127.0.0.1:{port}.evil.com/\">other host</a></body></html>",
            ws = origin.replace("http://", "ws://"),
            esc = origin.replace('/', "\\/"),
        )
    };
    let mut c = px.client();
    // The proxy origin is the Host the client sent.
    for path in ["/plain", "/gzip", "/chunked"] {
        let r = c.get(path);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), want("http://proxy.test"), "{path}");
        assert!(r.header("content-encoding").is_none(), "{path}");
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }
    let addr = px.p.listen_addr();
    c.send(format!("GET /plain HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n\r\n").as_bytes());
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.text(), want(&format!("http://{addr}")));
    // The log shows what the client got.
    let v = px.query(|q| q.url_pattern = Some("/gzip".into()));
    let id = v["entries"][0]["id"].as_str().unwrap().to_string();
    let full = px.p.log_get(&id).unwrap();
    assert_eq!(
        full["data"]["response_body"]["text"],
        want("http://proxy.test")
    );
}

#[test]
fn css_and_js_from_a_plain_http_target_stream_untouched() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let css = format!("a{{background:url(http://127.0.0.1:{port}/i.png)}}").repeat(50);
    let js = format!("fetch('http://localhost:{port}/api')").into_bytes();
    let (c2, j2) = (css.clone(), gzip(&js));
    let up = Upstream::on(
        l,
        Arc::new(move |req: &Req, s: &mut TcpStream| {
            let seen = req.header("accept-encoding").unwrap_or("-").to_string();
            let seen = ("X-Seen-Accept-Encoding", seen.as_str());
            match req.path.as_str() {
                "/a.css" => {
                    respond_chunked(s, &[("Content-Type", "text/css"), seen], c2.as_bytes())
                }
                "/app.js" => respond(
                    s,
                    "200 OK",
                    &[
                        ("Content-Type", "text/javascript"),
                        ("Content-Encoding", "gzip"),
                        seen,
                    ],
                    &j2,
                ),
                _ => respond(s, "404 Not Found", &[], b""),
            }
        }),
    );
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    c.send(b"GET /a.css HTTP/1.1\r\nHost: proxy.test\r\nAccept: text/css\r\nAccept-Encoding: zstd, gzip\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.text(), css);
    // Streamed in its own framing, not buffered into a Content-Length.
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.header("content-length").is_none());
    // A plain-HTTP target's subresource requests keep their Accept-Encoding.
    assert_eq!(r.header("x-seen-accept-encoding"), Some("zstd, gzip"));
    c.send(b"GET /app.js HTTP/1.1\r\nHost: proxy.test\r\nAccept: */*\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, gzip(&js));
}
