//! One side of a proxied connection — the client's socket or the upstream's — as one type,
//! `Half`: the non-blocking socket (plain, or TLS to an `https://` upstream: `Transport`), the
//! readiness it last reported, the bytes read but not yet processed, and the bytes queued to be
//! written. `Upstream` wraps a `Half` with what only the upstream side has: a connect in
//! progress and the exchanges the connection has served.
//!
//! Readiness is edge-triggered: a flag stays set until a call says `WouldBlock` (or a read comes
//! back short, unless the peer's FIN was reported: then we read on until EOF so a FIN behind
//! the data is not missed; never over TLS, where a short read of plaintext says nothing about
//! the socket). TLS ciphertext the socket did not take counts as unflushed, so the same
//! writable edges that drain `out` drain it; writes rustls refused during the handshake (its
//! plaintext buffer full, the socket not) are retried once a read finishes the handshake. What
//! to do on errors is the caller's business (`session`).

use std::{
    io::{self, IoSlice, Read, Write},
    net::{Shutdown, SocketAddr},
    time::Instant,
};

use mio::{Interest, Registry, Token, net::TcpStream};

use super::budget::Lease;
use crate::tls::{Connector, TlsStream};

/// Buffered-but-unsent bytes above which we stop reading from the other side.
pub(crate) const BACKPRESSURE: usize = 256 * 1024;
/// An emptied write buffer bigger than this is shrunk back to 64 KiB.
const SHRINK_ABOVE: usize = 4 * BACKPRESSURE;

/// The bytes of one side: a plain socket, or TLS over it (upstreams only).
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.get_ref(),
        }
    }

    /// TLS output waits for the socket.
    fn tls_pending(&self) -> bool {
        matches!(self, Transport::Tls(t) if t.wants_write())
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write_vectored(bufs),
            Transport::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One socket of a connection and its buffers.
#[derive(Debug)]
pub(crate) struct Half {
    pub sock: Transport,
    pub readable: bool,
    /// The peer's FIN was reported (EPOLLRDHUP): read until EOF, no short-read shortcut.
    pub rdhup: bool,
    pub writable: bool,
    /// The peer's FIN was read.
    pub eof: bool,
    /// We sent our FIN (`shutdown(Write)`).
    pub write_shut: bool,
    /// Read from the socket, not yet processed.
    pub inb: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
}

/// What one `Half::read` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Got {
    /// Bytes read (also those discarded).
    pub bytes: usize,
    /// The read hit end of file.
    pub eof: bool,
    /// The read finished a TLS handshake: writes refused while it ran may go now.
    pub handshake_done: bool,
}

impl Got {
    pub fn progress(self) -> bool {
        self.bytes > 0 || self.eof || self.handshake_done
    }
}

impl Half {
    /// A socket assumed `ready` for both reads and writes (a fresh client) or neither (a
    /// connect in progress).
    pub fn new(sock: TcpStream, ready: bool) -> Half {
        Half::over(Transport::Plain(sock), ready)
    }

    fn over(sock: Transport, ready: bool) -> Half {
        Half {
            sock,
            readable: ready,
            rdhup: false,
            writable: ready,
            eof: false,
            write_shut: false,
            inb: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Readiness reported by the poll (`closed` = the peer's FIN was seen).
    pub fn ready(&mut self, readable: bool, writable: bool, closed: bool) {
        self.readable |= readable;
        self.rdhup |= closed;
        self.writable |= writable;
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Nothing is waiting to be written (TLS output included).
    pub fn flushed(&self) -> bool {
        self.out_pos == self.out.len() && !self.sock.tls_pending()
    }

    /// Reads into `inb` until `WouldBlock`, end of file, or `inb` holds at least `cap` bytes
    /// (nothing is read when it already does). With `discard` what is read is dropped (and
    /// reading goes on until `WouldBlock`). An error is fatal for the socket; bytes read before
    /// it stay in `inb`. A read that finishes a TLS handshake marks the half writable again.
    pub fn read(&mut self, scratch: &mut [u8], cap: usize, discard: bool) -> io::Result<Got> {
        let handshaking = matches!(&self.sock, Transport::Tls(t) if !t.is_established());
        let got = self.read_socket(scratch, cap, discard);
        if handshaking && matches!(&self.sock, Transport::Tls(t) if t.is_established()) {
            // Writes that rustls refused during the handshake (its plaintext buffer full) said
            // WouldBlock although the socket did not: no writable edge will come for them, so
            // say writable here (a write that finds the socket full arms the edge).
            self.writable = true;
            return got.map(|g| Got {
                handshake_done: true,
                ..g
            });
        }
        got
    }

    fn read_socket(&mut self, scratch: &mut [u8], cap: usize, discard: bool) -> io::Result<Got> {
        let mut got = Got::default();
        if !self.readable || self.eof || self.inb.len() >= cap {
            return Ok(got);
        }
        loop {
            match self.sock.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    got.eof = true;
                    return Ok(got);
                }
                Ok(n) => {
                    got.bytes += n;
                    if discard {
                        continue;
                    }
                    self.inb.extend_from_slice(&scratch[..n]);
                    if self.inb.len() >= cap {
                        return Ok(got);
                    }
                    if n < scratch.len() && !self.rdhup && matches!(self.sock, Transport::Plain(_))
                    {
                        // A short read drained the socket; epoll (edge-triggered) reports the
                        // next arrival, so skip the read that would only say WouldBlock. Not
                        // after a read-closed event: the FIN may already sit behind the data.
                        self.readable = false;
                        return Ok(got);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(got);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues bytes without a syscall (a head whose body follows at once).
    pub fn queue(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
    }

    /// Writes `data` right away behind anything queued (one `writev`); what the socket does not
    /// take is queued. An error (or a zero-length write) means the connection is dead.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() && self.writable {
            let pending = &self.out[self.out_pos..];
            let r = if pending.is_empty() {
                self.sock.write(&data[off..])
            } else {
                self.sock
                    .write_vectored(&[IoSlice::new(pending), IoSlice::new(&data[off..])])
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let from_pending = pending.len().min(n);
                    self.out_pos += from_pending;
                    off += n - from_pending;
                    if self.out_pos == self.out.len() {
                        self.out.clear();
                        self.out_pos = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => return Err(e),
            }
        }
        self.out.extend_from_slice(&data[off..]);
        Ok(())
    }

    /// Writes what is queued until done or `WouldBlock`; returns whether anything was written.
    /// A zero-length write is `WriteZero`; any error means the connection is dead.
    pub fn flush(&mut self) -> io::Result<bool> {
        let mut progress = false;
        let mut result = Ok(());
        while self.out_pos < self.out.len() && self.writable {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    result = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    self.out_pos += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok()
            && self.writable
            && let Transport::Tls(t) = &mut self.sock
            && t.wants_write()
        {
            match t.push() {
                Ok(done) => {
                    progress = true;
                    self.writable = done;
                }
                Err(e) => result = Err(e),
            }
        }
        if self.out_pos == self.out.len() && !self.out.is_empty() {
            self.out.clear();
            self.out_pos = 0;
            if self.out.capacity() > SHRINK_ABOVE {
                self.out.shrink_to(64 * 1024);
            }
        }
        result.map(|()| progress)
    }

    /// Drops what is queued and not yet written.
    pub fn discard_queued(&mut self) {
        self.out = Vec::new();
        self.out_pos = 0;
    }

    /// Sends our FIN (once); over TLS, `close_notify` first.
    pub fn shutdown_write(&mut self) {
        if !self.write_shut {
            self.write_shut = true;
            if let Transport::Tls(t) = &mut self.sock {
                t.close_notify();
            }
            let _ = self.sock.tcp().shutdown(Shutdown::Write);
        }
    }
}

/// The upstream side: a `Half` plus its connect state.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub half: Half,
    /// The non-blocking connect completed.
    pub connected: bool,
    pub connect_started: Instant,
    /// Exchanges completed on this connection (a reused one may turn out closed: retry once).
    pub served: u32,
    /// A write failed (the upstream stopped reading, e.g. after an early answer): nothing more is
    /// written, what it sent is still read.
    pub write_dead: bool,
    /// The first socket error seen, reported if the exchange fails because of it.
    pub read_err: Option<String>,
    /// This socket's share of the connection budget.
    _fd: Lease,
}

impl Upstream {
    /// Starts a non-blocking connect to `addr` (TLS on top when `tls` is given; its handshake
    /// starts once connected) and registers the socket under `token`.
    pub fn connect(
        addr: SocketAddr,
        tls: Option<&Connector>,
        registry: &Registry,
        token: Token,
        fd: Lease,
    ) -> io::Result<Upstream> {
        let mut sock = TcpStream::connect(addr)?;
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        let sock = match tls {
            Some(c) => Transport::Tls(Box::new(c.wrap(sock)?)),
            None => Transport::Plain(sock),
        };
        Ok(Upstream {
            half: Half::over(sock, false),
            connected: false,
            connect_started: Instant::now(),
            served: 0,
            write_dead: false,
            read_err: None,
            _fd: fd,
        })
    }

    /// Connected, and over TLS the handshake is done too (what the connect deadline waits for).
    pub fn established(&self) -> bool {
        self.connected
            && match &self.half.sock {
                Transport::Plain(_) => true,
                Transport::Tls(t) => t.is_established(),
            }
    }

    /// Checks a connect in progress once the socket is writable: `Ok(true)` connected (now or
    /// before), `Ok(false)` still connecting, `Err` the connect failed.
    pub fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if !self.half.writable {
            return Ok(false);
        }
        if let Some(e) = self.half.sock.tcp().take_error()? {
            return Err(e);
        }
        match self.half.sock.tcp().peer_addr() {
            Ok(_) => {
                self.connected = true;
                let _ = self.half.sock.tcp().set_nodelay(true);
                // The TLS handshake's first flight goes out now, not with the first write.
                if let Transport::Tls(t) = &mut self.half.sock {
                    self.half.writable = t.push()?;
                }
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotConnected
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) =>
            {
                self.half.writable = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// A connected pair: our non-blocking mio side and a blocking std peer.
    fn pair() -> (Half, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (peer, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Half::new(TcpStream::from_std(ours), true), peer)
    }

    fn read_until(h: &mut Half, want: usize) {
        let mut scratch = [0u8; 16];
        let end = Instant::now() + std::time::Duration::from_secs(5);
        while h.inb.len() < want && !h.eof && Instant::now() < end {
            h.readable = true;
            h.read(&mut scratch, usize::MAX, false).unwrap();
        }
    }

    #[test]
    fn send_queue_flush_and_read() {
        let (mut h, mut peer) = pair();
        h.queue(b"head ");
        h.send(b"body").unwrap();
        assert!(h.flushed());
        let mut buf = [0u8; 9];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"head body");
        peer.write_all(b"0123456789abcdefXYZ").unwrap();
        read_until(&mut h, 19);
        assert_eq!(h.inb, b"0123456789abcdefXYZ");
        // At the cap nothing more is read.
        h.readable = true;
        assert_eq!(h.read(&mut [0; 4], 10, false).unwrap(), Got::default());
        drop(peer);
        h.inb.clear();
        read_until(&mut h, 1);
        assert!(h.eof);
    }

    #[test]
    fn discard_reads_and_drops() {
        let (mut h, mut peer) = pair();
        peer.write_all(b"junk").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let end = Instant::now() + std::time::Duration::from_secs(5);
        let mut bytes = 0;
        while !h.eof && Instant::now() < end {
            h.readable = true;
            bytes += h.read(&mut [0u8; 64], usize::MAX, true).unwrap().bytes;
        }
        assert!(h.eof && h.inb.is_empty());
        assert_eq!(bytes, 4);
    }

    #[test]
    fn tls_writes_refused_during_the_handshake_go_on_when_it_is_done() {
        // A server that sends no session tickets (TLS 1.2, or tickets off): after the handshake
        // nothing arrives that would wake the upstream again.
        let config = crate::tls::test_server_config(0);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let data: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
        let len = data.len();
        let peer = crate::thread::spawn("tls-test-peer", 1 << 20, move || {
            let (s, _) = l.accept().ok()?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .ok()?;
            let conn = rustls::ServerConnection::new(config).ok()?;
            let mut tls = rustls::StreamOwned::new(conn, s);
            let mut got = vec![0u8; len];
            tls.read_exact(&mut got).ok()?;
            Some(got)
        })
        .unwrap();
        let ours = std::net::TcpStream::connect(addr).unwrap();
        ours.set_nonblocking(true).unwrap();
        let connector = Connector::new("localhost", false).unwrap();
        let tls = connector.wrap(TcpStream::from_std(ours)).unwrap();
        let mut h = Half::over(Transport::Tls(Box::new(tls)), true);
        // The ClientHello goes out; rustls holds 64 KiB of plaintext until the handshake is done
        // and refuses the rest — not the socket, so no writable edge will follow.
        h.send(&data).unwrap();
        assert!(!h.writable && h.pending() > 0);
        let end = Instant::now() + std::time::Duration::from_secs(10);
        let mut got = Got::default();
        while !got.handshake_done && Instant::now() < end {
            h.readable = true;
            got = h.read(&mut [0u8; 64], usize::MAX, false).unwrap();
        }
        assert!(got.handshake_done && got.progress(), "{got:?}");
        assert!(h.writable, "the rest must be tried now");
        while !h.flushed() && Instant::now() < end {
            h.writable = true;
            h.flush().unwrap();
        }
        assert!(
            peer.join().unwrap() == Some(data),
            "the peer got every byte"
        );
    }

    #[test]
    fn unwritable_half_queues() {
        let (mut h, _peer) = pair();
        h.writable = false;
        h.send(b"later").unwrap();
        assert_eq!(h.pending(), 5);
        assert!(!h.flush().unwrap());
        h.writable = true;
        assert!(h.flush().unwrap());
        assert!(h.flushed());
    }
}
