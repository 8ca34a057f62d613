//! The proxy in front of an HTTPS dev server (`tls_upstream`: a rustls server with a certificate
//! made in the test): a self-signed loopback target works with no option and is refused with
//! `verify_tls: true` (a 502 naming certificate verification); keep-alive, chunked bodies, SSE,
//! HTML injection, a WebSocket echo, an 8 MiB body (read fast and read slowly), request bodies (5
//! MiB as the first request of a connection), a body ended by a TCP close without `close_notify`, a
//! connection the server closed, a tunnel to a server that reads in steps, and `Location` rewriting
//! all work over TLS; an `https://` target that speaks plain HTTP is a 502 naming TLS, and one that
//! never finishes the handshake a 504. Absolute `https://` and `wss://` URLs of the target in
//! pages, scripts and styles are rewritten to the proxy (the `..._rewritten...` test). One test
//! goes through the real binary's MCP `proxy` tool, the path a user takes.

use std::{io::Read, time::Duration};

use serde_json::{Value, json};

use crate::{
    proxy::{Client, Px, Resp},
    support::wait_until,
    tls_upstream::{BIG, CLOSE_BODY, Fnv, PAGE, TlsUpstream, checksum, chunks},
};

/// The proxy's log entry for `url`, once the loop has logged it.
fn http_entry(px: &Px, url: &str) -> Value {
    let mut found = None;
    wait_until(Duration::from_secs(10), || {
        found = px.query(|q| q.limit = Some(1000))["entries"]
            .as_array()
            .and_then(|es| {
                es.iter()
                    .find(|e| e["type"] == "http" && e["data"]["url"] == url)
                    .cloned()
            });
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no http entry for {url}"))["data"].clone()
}

/// GET `path` with `Host: host` (the proxy's own address, for rewriting).
fn get_as(c: &mut Client, host: &str, path: &str) -> Resp {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n").as_bytes());
    c.read_response("GET").expect("response")
}

#[test]
fn a_self_signed_loopback_target_works_with_no_option() {
    let up = TlsUpstream::start();
    // As a dev server prints it, and by address (an IP SAN, no SNI).
    for target in [up.url(), format!("https://127.0.0.1:{}", up.port())] {
        let px = Px::start(&target, |cfg| assert_eq!(cfg.verify_tls, None));
        let r = px.client().get("/");
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        assert!(r.text().contains("<h1>hello over tls</h1>"), "{}", r.text());
        let e = http_entry(&px, "/");
        assert_eq!(e["status_code"], 200, "{e}");
        assert!(e["error"].is_null(), "{e}");
    }
    assert_eq!(up.handshakes(), 2);
}

#[test]
fn verify_tls_true_refuses_a_self_signed_certificate_naming_verification() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |cfg| cfg.verify_tls = Some(true));
    let r = px.client().get("/");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("certificate verification failed"),
        "the 502 should name verification: {}",
        r.text()
    );
    let e = http_entry(&px, "/");
    assert_eq!(e["status_code"], 502, "{e}");
    let err = e["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("certificate verification failed") && err.contains("verify_tls"),
        "{e}"
    );
    assert!(up.accepted() >= 1, "the proxy never connected");
    assert_eq!(up.handshakes(), 0, "no handshake may complete");
    assert!(px.p.status().upstream_errors >= 1);
}

#[test]
fn keep_alive_chunked_and_redirect_share_one_tls_connection() {
    let up = TlsUpstream::with_tickets(2);
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    for _ in 0..5 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("hello over tls"));
    }
    let r = c.get("/chunked");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, chunks().concat(), "the chunked body arrives intact");
    // A Location on the target's https:// origin points at the proxy.
    let r = c.get("/redirect");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://proxy.test/next"));
    let r = c.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "no such route");
    assert_eq!(up.accepted(), 1, "one TCP connection upstream");
    assert_eq!(up.handshakes(), 1, "one TLS connection upstream");
    let st = px.p.status();
    assert_eq!(st.upstream_connects, 1);
    assert_eq!(st.total_requests, 8);
}

#[test]
fn sse_events_stream_over_tls() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    c.send(b"GET /sse HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n");
    let mut got = Vec::new();
    let mut tmp = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("data: first") {
        let n = c.s.read(&mut tmp).unwrap();
        assert!(n > 0, "closed before the first event");
        got.extend_from_slice(&tmp[..n]);
    }
    assert!(!String::from_utf8_lossy(&got).contains("second"));
    up.release_sse();
    while !String::from_utf8_lossy(&got).contains("0\r\n\r\n") {
        let n = c.s.read(&mut tmp).unwrap();
        assert!(n > 0, "closed before the end of the stream");
        got.extend_from_slice(&tmp[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(text.contains("data: second"), "{text}");
}

#[test]
fn html_from_a_tls_target_gets_the_script() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let tag = String::from_utf8(agnt::proxy::inject::script_tag(Some(px.p.page_key()))).unwrap();
    let r = px.client().get("/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        PAGE.replace("</head>", &format!("{tag}</head>")),
        "the agnt script sits in the head"
    );
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert_eq!(px.p.status().injected, 1);
}

#[test]
fn websocket_echo_over_tls() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    // The client speaks plain ws:// to the proxy; the proxy speaks TLS to the server.
    let url = format!("ws://{}/ws", px.p.listen_addr());
    let (mut ws, resp) = tungstenite::connect(url.as_str()).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    for i in 0..5 {
        ws.send(tungstenite::Message::text(format!("ping {i}")))
            .unwrap();
        assert_eq!(ws.read().unwrap().to_text().unwrap(), format!("ping {i}"));
    }
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    ws.send(tungstenite::Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap().into_data().to_vec(), big);
    let _ = ws.close(None);
    assert_eq!(up.handshakes(), 1);
    let v = px.query(|q| q.status_codes = vec![101]);
    assert_eq!(v["count"], 1, "{v}");
}

#[test]
fn eight_mib_arrive_intact_over_tls() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    let r = c.get("/big");
    assert_eq!(r.status, 200);
    let (data, sum) = &*BIG;
    assert_eq!(r.body.len(), data.len());
    assert_eq!(checksum(&r.body), *sum);
    assert_eq!(r.header("x-checksum"), Some(format!("{sum:016x}").as_str()));
    // The connection is still good afterwards.
    assert_eq!(c.get("/").status, 200);
    assert_eq!(up.handshakes(), 1);
}

#[test]
fn eight_mib_arrive_intact_at_a_slow_reader_over_tls() {
    // The client reads in small steps, and only once the server is held back (its socket full:
    // the proxy stopped reading because the client's side is backed up) or done. So the proxy
    // stops and resumes reading the TLS upstream many times.
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut head = Vec::new();
    let mut tmp = [0u8; 4096];
    let end = loop {
        let n = c.s.read(&mut tmp[..1024]).unwrap();
        assert!(n > 0, "closed before the head");
        head.extend_from_slice(&tmp[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head_text = String::from_utf8_lossy(&head[..end]).into_owned();
    assert!(head_text.starts_with("HTTP/1.1 200"), "{head_text}");
    let (data, sum) = &*BIG;
    assert!(
        head_text
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}\r\n", data.len())),
        "{head_text}"
    );
    let mut f = Fnv::default();
    f.feed(&head[end..]);
    let mut got = head.len() - end;
    let mut pauses = 0;
    while got < data.len() {
        let held = wait_until(Duration::from_secs(30), || {
            up.big_stalled() || up.big_done() > 0
        });
        assert!(held, "the server neither blocked nor finished");
        if up.big_done() == 0 {
            pauses += 1;
        }
        let mut step = 0;
        while step < 256 * 1024 && got < data.len() {
            let want = tmp.len().min(data.len() - got);
            let n = c.s.read(&mut tmp[..want]).unwrap();
            assert!(n > 0, "closed after {got} of {} bytes", data.len());
            f.feed(&tmp[..n]);
            got += n;
            step += n;
        }
    }
    assert_eq!(got, data.len());
    assert_eq!(f.0, *sum, "the body's checksum");
    assert!(
        up.big_stalls() > 0 && pauses > 0,
        "the proxy never held the server back (stalls {}, pauses {pauses})",
        up.big_stalls()
    );
    assert_eq!(c.get("/").status, 200, "the connection is still good");
}

#[test]
fn a_body_ended_by_a_close_without_close_notify_arrives_complete() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    let r = c.get("/close");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), CLOSE_BODY.len());
    assert!(r.body == *CLOSE_BODY, "the body arrives complete");
    let e = http_entry(&px, "/close");
    assert_eq!(e["status_code"], 200, "{e}");
    assert!(e["error"].is_null(), "a close is the end of this body: {e}");
    assert_eq!(px.p.status().upstream_errors, 0);
}

#[test]
fn absolute_https_and_wss_urls_are_rewritten_in_pages_scripts_and_styles() {
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let host = px.p.listen_addr().to_string();
    let port = up.port();
    let mut c = px.client();
    let page = get_as(&mut c, &host, "/page-abs");
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(
        page.contains(&format!("<script src=\"http://{host}/app.js\">")),
        "{page}"
    );
    assert!(
        page.contains(&format!("new WebSocket(\"ws://{host}/ws\")")),
        "{page}"
    );
    for gone in [
        format!("https://localhost:{port}"),
        format!("wss://localhost:{port}"),
    ] {
        assert!(!page.contains(&gone), "{gone} is still in {page}");
    }
    let js = get_as(&mut c, &host, "/app.js");
    assert_eq!(js.status, 200);
    assert!(
        js.text().contains(&format!("fetch(\"http://{host}/api\")")),
        "{}",
        js.text()
    );
    assert!(!js.text().contains("https://"), "{}", js.text());
    let css = get_as(&mut c, &host, "/style.css");
    assert_eq!(css.status, 200);
    assert!(
        css.text().contains(&format!("url(http://{host}/img.png)")),
        "{}",
        css.text()
    );
    assert!(!css.text().contains("https://"), "{}", css.text());
}

#[test]
fn the_proxy_tool_reaches_a_self_signed_https_dev_server_with_no_option() {
    let up = TlsUpstream::with_tickets(2);
    let env = crate::daemon::Env::new();
    let mut m = crate::daemon::McpChild::spawn(&env, &["--standalone"]);
    m.rpc.initialize(&env.project);
    let px = m.rpc.ok(
        "proxy",
        json!({"action": "start", "id": "tls", "target_url": up.url(), "port": 0}),
    );
    let url = px["url"].as_str().unwrap().to_string();
    let mut resp = ureq::get(format!("{url}/")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.contains("<h1>hello over tls</h1>"), "{body}");
    assert!(body.contains("data-agnt"), "the script is injected: {body}");
    let log = m.rpc.ok(
        "proxylog",
        json!({"proxy_id": "tls", "types": ["http"], "url_pattern": "/"}),
    );
    assert_eq!(log["entries"][0]["data"]["status_code"], 200, "{log}");
    assert_eq!(up.handshakes(), 1);
    m.rpc.ok("proxy", json!({"action": "stop", "id": "tls"}));
}

#[test]
fn request_bodies_go_up_intact_over_tls() {
    // The first request on the connection carries 5 MiB: more than rustls holds during the
    // handshake, and the server sends nothing after it (no session tickets) that would wake
    // the proxy — the rest goes on once the handshake is done (it used to stall here).
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    let body: Vec<u8> = BIG.0[..5 * 1024 * 1024].to_vec();
    c.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c
        .read_response("POST")
        .unwrap_or_else(|| panic!("no answer: {:#}", px.query(|_| {})));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!("len={} sum={:016x}", body.len(), checksum(&body))
    );
    let small = b"hello, chunked world";
    c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nhello, \r\nd\r\nchunked world\r\n0\r\n\r\n");
    let r = c.read_response("POST").unwrap();
    assert_eq!(
        r.text(),
        format!("len={} sum={:016x}", small.len(), checksum(small))
    );
    assert_eq!(up.handshakes(), 1);
}

#[test]
fn a_tls_connection_the_server_closed_is_replaced() {
    // Dev servers close idle keep-alive connections; the next request must still be answered.
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let mut c = px.client();
    for last in ["/last", "/last-abrupt"] {
        let r = c.get(last);
        assert_eq!((r.status, r.text().as_str()), (200, "last"), "{last}");
        let r = c.get("/");
        assert_eq!(r.status, 200, "after {last}: {}", r.text());
        assert!(r.text().contains("hello over tls"));
    }
    assert_eq!(up.handshakes(), 3, "a new TLS connection after each close");
    assert_eq!(px.p.status().upstream_errors, 0);
}

#[test]
fn an_https_target_that_speaks_plain_http_is_a_502_naming_tls() {
    // A common slip: https:// in front of a dev server that serves plain HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let plain = std::thread::spawn(move || {
        // Answers whatever arrives (a ClientHello) with plain HTTP, then closes.
        if let Ok((mut s, _)) = listener.accept() {
            let mut tmp = [0u8; 1024];
            let _ = s.read(&mut tmp);
            let _ = std::io::Write::write_all(
                &mut s,
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nnot tls",
            );
        }
    });
    let px = Px::start(&format!("https://localhost:{}", addr.port()), |_| {});
    let r = px.client().get("/");
    assert_eq!(r.status, 502, "{}", r.text());
    let e = http_entry(&px, "/");
    let err = e["error"].as_str().unwrap_or_default();
    assert!(err.contains("TLS"), "{e}");
    assert!(
        err.contains("plain HTTP"),
        "the error hints at the likely slip: {e}"
    );
    plain.join().unwrap();
}

#[test]
fn a_server_that_never_finishes_the_handshake_gets_a_502_at_the_connect_deadline() {
    // Accepts TCP and never answers the ClientHello: the connect deadline covers the handshake,
    // so the client hears 502 long before the (here two-minute) response deadline.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut hello = Vec::new();
        // Everything the proxy sends until it gives up and closes.
        let _ = s.read_to_end(&mut hello);
        Some(hello)
    });
    let px = Px::start(&format!("https://localhost:{}", addr.port()), |c| {
        c.limits.connect_timeout = Duration::from_millis(300);
        c.limits.response_timeout = Duration::from_secs(120);
    });
    let r = px.client().get("/");
    assert_eq!(r.status, 502, "{}", r.text());
    let hello = silent.join().unwrap().expect("the proxy connected");
    assert_eq!(
        hello.first(),
        Some(&0x16),
        "a TLS handshake record came first"
    );
    assert!(px.p.status().timeouts >= 1);
    let entries = px.query(|q| q.limit = Some(100));
    assert!(
        entries["entries"].as_array().unwrap().iter().any(|e| {
            e["data"]["deadline"] == "connect"
                && e["data"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("TLS handshake"))
        }),
        "no connect-deadline entry naming the TLS handshake: {entries:#}"
    );
}

#[test]
fn a_tunnel_to_a_slow_tls_server_resumes_after_every_stall() {
    // A WebSocket tunnel whose server reads only in steps: each time the whole pipeline is full
    // (the client's writes would block), the server reads one step. Each step frees the
    // proxy's socket after its writes were refused with rustls' buffer full; the next write
    // must go through, or no writable edge ever comes again.
    let up = TlsUpstream::start();
    let px = Px::start(&up.url(), |_| {});
    let total = 8 * 1024 * 1024;
    let data = &BIG.0[..total];
    let mut c = px.client();
    c.send(
        format!(
            "GET /sink?len={total} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response("GET").expect("an answer to the upgrade");
    assert_eq!(r.status, 101);
    c.s.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut steps = 0;
    while up.sink().0 < total {
        // Fill the pipeline until the proxy stops taking more (or everything is sent).
        while sent < total {
            match std::io::Write::write(&mut c.s, &data[sent..(sent + 64 * 1024).min(total)]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("after {sent} bytes: {e}"),
            }
        }
        let before = up.sink().0;
        up.release_sink();
        steps += 1;
        assert!(
            wait_until(Duration::from_secs(20), || up.sink().0 > before),
            "the tunnel stalled at {before} of {total} bytes (step {steps}, {sent} sent)"
        );
    }
    assert_eq!(
        up.sink(),
        (total, checksum(data)),
        "the bytes arrive intact"
    );
    assert!(steps >= total / (256 * 1024), "{steps}");
}
