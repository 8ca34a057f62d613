//! The `/__agnt/ws` endpoint: the server side of the page's WebSocket, as a byte-in/byte-out
//! state machine the event loop drives. Framing is `tungstenite` over an in-memory stream
//! (reads return `WouldBlock` when the buffer is empty), so no socket is ever touched here.

use std::io::{self, Read, Write};

use tungstenite::{
    Message, WebSocket,
    protocol::{Role, WebSocketConfig},
};

use super::http::{Header, ResponseHead, has_token, header, write_response};

/// Largest message a page may send (screenshots later travel this way).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
struct MemStream {
    rd: Vec<u8>,
    rpos: usize,
    wr: Vec<u8>,
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rpos >= self.rd.len() {
            self.rd.clear();
            self.rpos = 0;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.rd.len() - self.rpos);
        buf[..n].copy_from_slice(&self.rd[self.rpos..self.rpos + n]);
        self.rpos += n;
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wr.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What feeding bytes produced.
#[derive(Debug, Default)]
pub struct Feed {
    /// Complete text messages.
    pub texts: Vec<String>,
    /// The peer closed, or sent something we do not accept; the connection should go once the
    /// output is flushed.
    pub closed: bool,
    /// Why it closed, when it was a protocol error.
    pub error: Option<String>,
}

/// One server-side WebSocket.
#[derive(Debug)]
pub struct WsConn {
    ws: WebSocket<MemStream>,
}

impl Default for WsConn {
    fn default() -> Self {
        Self::new()
    }
}

impl WsConn {
    /// A connection right after the handshake.
    pub fn new() -> WsConn {
        let cfg = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        WsConn {
            ws: WebSocket::from_raw_socket(MemStream::default(), Role::Server, Some(cfg)),
        }
    }

    /// Feeds bytes read from the socket.
    pub fn feed(&mut self, data: &[u8]) -> Feed {
        let mut out = Feed::default();
        self.ws.get_mut().rd.extend_from_slice(data);
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => out.texts.push(t.as_str().to_string()),
                Ok(Message::Close(_)) => {
                    out.closed = true;
                    // tungstenite queues the close reply; push it out.
                    let _ = self.ws.flush();
                    break;
                }
                Ok(Message::Binary(_)) => {
                    out.closed = true;
                    out.error = Some("binary messages are not accepted".into());
                    let _ = self.ws.close(None);
                    let _ = self.ws.flush();
                    break;
                }
                Ok(_) => {
                    // Ping/pong: tungstenite answers pings itself.
                    let _ = self.ws.flush();
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = self.ws.flush();
                    break;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    out.closed = true;
                    break;
                }
                Err(e) => {
                    out.closed = true;
                    out.error = Some(e.to_string());
                    break;
                }
            }
        }
        out
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: String) -> bool {
        self.ws.send(Message::text(text)).is_ok()
    }

    /// Bytes to write to the socket.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ws.get_mut().wr)
    }
}

/// The 101 response for a valid WebSocket upgrade request, or `None` if it is not one.
pub fn handshake_response(headers: &[Header]) -> Option<Vec<u8>> {
    if !has_token(headers, "upgrade", "websocket") || !has_token(headers, "connection", "upgrade") {
        return None;
    }
    let key = header(headers, "sec-websocket-key")?;
    let accept = tungstenite::handshake::derive_accept_key(key.trim_ascii());
    let mut out = Vec::with_capacity(160);
    write_response(
        &ResponseHead {
            version: 1,
            status: 101,
            reason: "Switching Protocols".into(),
            headers: vec![
                ("Upgrade".into(), b"websocket".to_vec()),
                ("Connection".into(), b"Upgrade".to_vec()),
                ("Sec-WebSocket-Accept".into(), accept.into_bytes()),
            ],
        },
        &mut out,
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(text: &str) -> Vec<u8> {
        // Masked text frame, as a browser sends it.
        let payload = text.as_bytes();
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81];
        assert!(payload.len() < 126);
        f.push(0x80 | payload.len() as u8);
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn text_in_any_split_and_garbage() {
        let mut ws = WsConn::new();
        let f = client_frame("{\"type\":\"error\"}");
        let a = ws.feed(&f[..3]);
        assert!(a.texts.is_empty() && !a.closed);
        let b = ws.feed(&f[3..]);
        assert_eq!(b.texts, ["{\"type\":\"error\"}"]);
        assert!(ws.send_text("hi".into()));
        assert!(!ws.take_output().is_empty());
        let mut ws = WsConn::new();
        let g = ws.feed(&[0xff; 64]);
        assert!(g.closed && g.error.is_some());
        // Unmasked client frame is a protocol error.
        let mut ws = WsConn::new();
        assert!(ws.feed(&[0x81, 0x02, b'h', b'i']).closed);
    }

    #[test]
    fn handshake() {
        let h: Vec<Header> = vec![
            ("Upgrade".into(), b"websocket".to_vec()),
            ("Connection".into(), b"keep-alive, Upgrade".to_vec()),
            (
                "Sec-WebSocket-Key".into(),
                b"dGhlIHNhbXBsZSBub25jZQ==".to_vec(),
            ),
        ];
        let r = String::from_utf8(handshake_response(&h).unwrap()).unwrap();
        assert!(r.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(handshake_response(&h[..1]).is_none());
    }
}
