//! Tests of `https://` readiness probes against a real TLS server built here: a self-signed
//! certificate from rcgen, a rustls server on 127.0.0.1 port 0, one connection per server.

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::Arc,
    time::Duration,
};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;
use crate::thread::JoinOnDrop;

/// A server configuration with a fresh self-signed certificate for localhost and 127.0.0.1.
fn self_signed() -> Arc<rustls::ServerConfig> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    Arc::new(config)
}

/// Serves one TLS connection on `listener` with `answer`; returns the request it read, or why
/// the connection failed (a client that refuses the certificate ends it with an alert).
fn serve_tls_once(
    listener: TcpListener,
    answer: &'static [u8],
) -> JoinOnDrop<Result<String, String>> {
    let config = self_signed();
    let h = crate::thread::spawn("test-https", 256 * 1024, move || {
        let (sock, _) = listener.accept().map_err(|e| e.to_string())?;
        // A safety net so a broken client cannot hang the test, not a synchronisation.
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) => return Err("closed before the request ended".into()),
                Ok(n) => req.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
        tls.write_all(answer).map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        tls.flush().map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&req).into_owned())
    })
    .unwrap();
    JoinOnDrop::new(h)
}

fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

const T: Duration = Duration::from_secs(10);

#[test]
fn self_signed_loopback_is_probed_without_verification() {
    let (l, port) = listen();
    let srv = serve_tls_once(l, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(
        probe_http(&format!("https://127.0.0.1:{port}/up?x=1"), T, None),
        Ok(204)
    );
    let req = srv.join().unwrap().unwrap();
    assert!(
        req.starts_with(&format!(
            "GET /up?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        )),
        "{req}"
    );

    // localhost is loopback too, and an explicit false works for any host.
    let (l, port) = listen();
    let srv = serve_tls_once(l, b"HTTP/1.0 503 Starting\r\n\r\n");
    assert_eq!(
        probe_http(&format!("https://localhost:{port}/"), T, Some(false)),
        Ok(503)
    );
    assert!(srv.join().unwrap().is_ok());
}

#[test]
fn explicit_verification_refuses_a_self_signed_certificate() {
    let (l, port) = listen();
    let srv = serve_tls_once(l, b"HTTP/1.1 200 OK\r\n\r\n");
    let url = format!("https://127.0.0.1:{port}/");
    let e = probe_http(&url, T, Some(true)).unwrap_err();
    let ProbeError::Tls {
        url: probed,
        reason,
        ..
    } = &e
    else {
        panic!("not a TLS error: {e:?}");
    };
    assert_eq!(probed, &url);
    // Either the certificate was checked and refused, or this system has no roots to check it
    // against; both name verification.
    assert!(
        reason.contains("certificate verification failed")
            || reason.contains("no trusted root certificates"),
        "{e}"
    );
    assert!(e.to_string().contains(&url), "{e}");
    assert!(!e.is_invalid_url());
    assert!(
        e.is_lasting(),
        "a refused certificate is a lasting answer: {e:?}"
    );
    // The server never got a request.
    assert!(srv.join().unwrap().is_err());
}

#[test]
fn a_server_that_never_speaks_tls_times_out_within_the_deadline() {
    let (l, port) = listen();
    // Accepts, then reads (and ignores) the ClientHello until the probe hangs up.
    let srv = crate::thread::spawn("test-mute", 64 * 1024, move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let mut got = 0;
        while let Ok(n @ 1..) = s.read(&mut buf) {
            got += n;
        }
        got
    })
    .unwrap();
    let srv = JoinOnDrop::new(srv);
    let budget = Duration::from_millis(300);
    let e = probe_http(&format!("https://127.0.0.1:{port}/"), budget, None).unwrap_err();
    assert_eq!(e, ProbeError::Timeout(budget));
    assert!(srv.join().unwrap() > 0, "no ClientHello was sent");
}

#[test]
fn plain_http_on_an_https_url_is_a_tls_error() {
    let (l, port) = listen();
    let srv = crate::thread::spawn("test-plain", 64 * 1024, move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    })
    .unwrap();
    let _srv = JoinOnDrop::new(srv);
    let e = probe_http(&format!("https://127.0.0.1:{port}/"), T, None).unwrap_err();
    assert!(matches!(e, ProbeError::Tls { .. }), "{e:?}");
    assert!(
        !e.is_lasting(),
        "a server not speaking TLS yet may later: {e:?}"
    );
}
