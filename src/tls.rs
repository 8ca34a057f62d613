//! TLS toward dev servers (HTTPS upstreams and `https://` readiness probes): the two client
//! configurations (verifying against the system's roots, or accepting any certificate), the rule
//! that picks one, and [`TlsStream`], a `rustls` client connection over any socket that works
//! the same whether the socket blocks (probes) or not (the proxy's mio loop).
//!
//! The rule: an explicit `verify_tls` wins; without one, loopback targets (`localhost`,
//! `*.localhost`, 127.0.0.0/8, `::1`, `0.0.0.0`) are not verified — dev servers serve
//! self-signed or mkcert certificates there — and any other host is verified against the roots
//! the system trusts. The crypto provider is `ring` (the smallest; see ARCHITECTURE.md), ALPN
//! offers only `http/1.1`, and SNI carries the target's host name (none for an IP address).
//!
//! `TlsStream` is sans-IO glue: reads pull ciphertext from the socket only when no plaintext is
//! buffered and answer `WouldBlock` exactly when the socket did, so an edge-triggered poll
//! never misses data; writes buffer at most rustls' limit (64 KiB) and say `WouldBlock` only
//! when the socket did — or while the handshake runs, until a read finishes it (then the caller
//! writes again: `is_established`); ciphertext the socket did not take waits for
//! [`TlsStream::push`]. A TCP close without
//! `close_notify` reads as end of file (HTTP framing, not TLS, tells a cut body).

use std::{
    io::{self, Read, Write},
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::{Error, Result};

/// Whether a target on `host` is verified when the caller did not say: not for loopback names
/// and addresses, yes for anything else.
pub fn verify_by_default(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return false;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => !(ip.is_loopback() || ip.is_unspecified()),
        Err(_) => true,
    }
}

/// `explicit` if given, else [`verify_by_default`].
pub fn should_verify(host: &str, explicit: Option<bool>) -> bool {
    explicit.unwrap_or_else(|| verify_by_default(host))
}

/// A TLS client for one target: the configuration to use and the name to present and check.
#[derive(Debug, Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    host: String,
    verify: bool,
}

impl Connector {
    /// A connector for `host` (a name, an IP address, or a bracketed IPv6 literal) that verifies
    /// the certificate iff `verify`. Errors when `host` is not a valid server name or when
    /// verification is asked for and the system has no usable root certificates.
    pub fn new(host: &str, verify: bool) -> Result<Connector> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| Error::invalid(format!("{host:?} is not a valid TLS server name: {e}")))?;
        let config = if verify { verifying()? } else { trusting() };
        Ok(Connector {
            config,
            name,
            host: bare.to_string(),
            verify,
        })
    }

    /// Whether certificates are verified.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// Wraps a connected socket; the handshake runs on the first reads and writes.
    pub fn wrap<S: Read + Write>(&self, sock: S) -> io::Result<TlsStream<S>> {
        let conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| io::Error::other(format!("TLS setup failed: {e}")))?;
        Ok(TlsStream {
            conn,
            sock,
            host: self.host.clone(),
            verify: self.verify,
            eof: false,
        })
    }
}

/// The server's certificate did not verify: retrying will not help (the error inside the
/// `io::Error` a [`TlsStream`] returns then; see [`is_certificate_refusal`]).
#[derive(Debug)]
struct CertificateRefused(String);

impl std::fmt::Display for CertificateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertificateRefused {}

/// Whether `e` says the server's certificate did not verify (a lasting answer, unlike a
/// refused connection or a broken handshake).
pub fn is_certificate_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<CertificateRefused>())
}

/// A rustls client connection over `S` (blocking or not).
#[derive(Debug)]
pub struct TlsStream<S> {
    conn: ClientConnection,
    sock: S,
    host: String,
    verify: bool,
    /// The socket said end of file.
    eof: bool,
}

impl<S: Read + Write> TlsStream<S> {
    /// The socket underneath.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// Ciphertext (or handshake messages) wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes buffered ciphertext until done or the socket would block: `Ok(true)` when all of
    /// it went out.
    pub fn push(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues `close_notify` and pushes what the socket takes.
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.push();
    }

    /// The handshake is done.
    pub fn is_established(&self) -> bool {
        !self.conn.is_handshaking()
    }

    fn tls_error(&self, e: rustls::Error) -> io::Error {
        match &e {
            rustls::Error::InvalidCertificate(why) if self.verify => io::Error::new(
                io::ErrorKind::InvalidData,
                CertificateRefused(format!(
                    "TLS certificate verification failed for {}: {why:?} (the certificate is \
                     not trusted by this system; verify_tls: false accepts a self-signed dev \
                     certificate)",
                    self.host
                )),
            ),
            // A plain-HTTP answer to our ClientHello: the likeliest slip is the scheme.
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "TLS error with {}: {e} (the server does not speak TLS: does it serve \
                         plain HTTP? then use an http:// URL)",
                        self.host
                    ),
                )
            }
            _ => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS error with {}: {e}", self.host),
            ),
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without close_notify: an end like any other.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            // Handshake messages (or a key update answer) go out before we wait for more.
            self.push()?;
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the server why (the alert), then fail.
                let _ = self.push();
                return Err(self.tls_error(e));
            }
            self.push()?;
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.conn.writer().write(buf)?;
        if n == 0 && !self.conn.is_handshaking() {
            // rustls' buffer is full of ciphertext from before: push it first. Only the socket
            // may say WouldBlock (an edge-triggered poll reports writability again only after
            // the socket did); once it took everything there is room.
            if !self.push()? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            n = self.conn.writer().write(buf)?;
        }
        self.push()?;
        if n == 0 {
            // Handshaking with the plaintext buffer full: it leaves when the handshake is done,
            // which a read finishes (the caller must then try writing again).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        if self.push()? {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The verifying configuration: the system's roots, loaded once.
fn verifying() -> Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<std::result::Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "cannot verify TLS certificates: no trusted root certificates found on this \
                     system{why}; install ca-certificates, set SSL_CERT_FILE, or pass \
                     verify_tls: false"
                ));
            }
            Ok(finish(
                builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ))
        })
        .clone()
        .map_err(Error::invalid)
}

/// The configuration that accepts any certificate (still checking the handshake's signatures).
fn trusting() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let algorithms = provider().signature_verification_algorithms;
            finish(
                builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Accepts whatever certificate the server shows (dev servers' self-signed ones).
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A server configuration for tests: a fresh self-signed certificate for `localhost` and
/// `127.0.0.1`, ALPN `http/1.1`, and `tickets` TLS 1.3 session tickets after each handshake.
#[cfg(test)]
pub(crate) fn test_server_config(tickets: usize) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_tls13_tickets = tickets;
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rustls::ServerConnection;

    use super::*;

    /// An in-memory socket: reads what the peer sent (`WouldBlock` when there is nothing),
    /// writes take at most `room` bytes (`WouldBlock` at 0).
    #[derive(Debug, Default)]
    struct Mem {
        input: VecDeque<u8>,
        output: Vec<u8>,
        room: usize,
    }

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.input.read(buf)
        }
    }

    impl Write for Mem {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Moves what the client wrote to the server, and the server's answer back; returns the
    /// plaintext the server received.
    fn shuttle(tls: &mut TlsStream<Mem>, server: &mut ServerConnection) -> Vec<u8> {
        let out = std::mem::take(&mut tls.sock.output);
        let mut rd = &out[..];
        let mut plain = Vec::new();
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets().unwrap();
            let _ = server.reader().read_to_end(&mut plain);
        }
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        tls.sock.input.extend(back);
        plain
    }

    #[test]
    fn a_write_says_would_block_only_when_the_socket_did() {
        let mut server = ServerConnection::new(test_server_config(0)).unwrap();
        let mem = Mem {
            room: usize::MAX,
            ..Mem::default()
        };
        let mut tls = Connector::new("localhost", false)
            .unwrap()
            .wrap(mem)
            .unwrap();
        assert!(tls.push().unwrap(), "the ClientHello goes out");
        for _ in 0..4 {
            shuttle(&mut tls, &mut server);
            let r = tls.read(&mut [0u8; 16]);
            assert!(
                matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "{r:?}"
            );
        }
        shuttle(&mut tls, &mut server);
        assert!(tls.is_established() && !server.is_handshaking());
        // The socket is full: rustls takes up to its limit, then WouldBlock (the socket's).
        tls.sock.room = 0;
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| i as u8).collect();
        let mut sent = 0;
        loop {
            match tls.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent > 0 && sent < data.len(), "{sent}");
        // The socket drained. A writable edge has been reported and used: this write must go
        // through, or no further edge ever comes (the socket never said WouldBlock again).
        tls.sock.room = usize::MAX;
        while sent < data.len() {
            sent += tls
                .write(&data[sent..])
                .expect("the socket has room: no WouldBlock");
        }
        assert!(tls.push().unwrap());
        assert!(
            shuttle(&mut tls, &mut server) == data,
            "the bytes arrive intact"
        );
    }

    #[test]
    fn loopback_is_not_verified_by_default() {
        for h in [
            "localhost",
            "LOCALHOST",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "0.0.0.0",
        ] {
            assert!(!verify_by_default(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.5",
            "192.168.1.2",
            "[fe80::1]",
            "localhost.evil.com",
        ] {
            assert!(verify_by_default(h), "{h}");
        }
        assert!(should_verify("localhost", Some(true)));
        assert!(!should_verify("example.com", Some(false)));
    }

    #[test]
    fn bad_server_names_are_errors() {
        assert!(Connector::new("bad name", false).is_err());
        assert!(Connector::new("", false).is_err());
        let c = Connector::new("[::1]", false).unwrap();
        assert!(!c.verifies());
        assert!(Connector::new("localhost", false).is_ok());
    }
}
