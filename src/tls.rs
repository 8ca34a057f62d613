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
//! never misses data; writes buffer at most rustls' limit (64 KiB) before saying `WouldBlock`;
//! ciphertext the socket did not take waits for [`TlsStream::push`]. A TCP close without
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
        let n = self.conn.writer().write(buf)?;
        self.push()?;
        if n == 0 {
            // rustls' buffer is full: the socket has to take some first.
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

#[cfg(test)]
mod tests {
    use super::*;

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
