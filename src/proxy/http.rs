//! Pure HTTP/1.1 framing over byte slices: request/response head parsing (via `httparse`),
//! body framing decisions, an incremental chunked-transfer decoder, and head serialisation.
//!
//! Nothing here does I/O; the event loop feeds bytes in and gets owned heads and decoded body
//! bytes out. Every function is total over arbitrary input (proptests below and in
//! `tests/it/proxy.rs`).

use std::fmt;

/// Largest request or response head we accept (bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one head.
pub const MAX_HEADERS: usize = 128;

/// One header as received: the name as sent, the value as raw bytes (may be non-UTF-8).
pub type Header = (String, Vec<u8>);

/// Why a head could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Head larger than [`MAX_HEAD`] or more than [`MAX_HEADERS`] headers (answer 431).
    TooLarge,
    /// Not HTTP/1.x (answer 400); the text says what was wrong.
    Malformed(String),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "head too large"),
            HeadError::Malformed(m) => write!(f, "malformed head: {m}"),
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// Request target as received (`/path?query`).
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<Header>,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<Header>,
}

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
}

fn to_headers(raw: &[httparse::Header<'_>]) -> Vec<Header> {
    raw.iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

fn map_err(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        other => HeadError::Malformed(other.to_string()),
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)` = need more bytes;
/// `Ok(Some((head, n)))` = the head occupies `buf[..n]`.
pub fn parse_request(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(buf).map_err(map_err)? {
        httparse::Status::Complete(n) => {
            if n > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            let head = RequestHead {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                version: req.version.unwrap_or(1),
                headers: to_headers(req.headers),
            };
            Ok(Some((head, n)))
        }
        httparse::Status::Partial if buf.len() > MAX_HEAD => Err(HeadError::TooLarge),
        httparse::Status::Partial => Ok(None),
    }
}

/// Parses a response head from the start of `buf` (same contract as [`parse_request`]).
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut hs);
    match res.parse(buf).map_err(map_err)? {
        httparse::Status::Complete(n) => {
            if n > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            let head = ResponseHead {
                version: res.version.unwrap_or(1),
                status: res.code.unwrap_or(0),
                reason: res.reason.unwrap_or("").to_string(),
                headers: to_headers(res.headers),
            };
            Ok(Some((head, n)))
        }
        httparse::Status::Partial if buf.len() > MAX_HEAD => Err(HeadError::TooLarge),
        httparse::Status::Partial => Ok(None),
    }
}

/// First value of header `name` (case-insensitive).
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// First value of header `name` as text (lossy).
pub fn header_str(headers: &[Header], name: &str) -> Option<String> {
    header(headers, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether a comma-separated header `name` contains `token` (case-insensitive).
pub fn has_token(headers: &[Header], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .any(|(_, v)| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
}

/// Removes every header called `name`.
pub fn remove(headers: &mut Vec<Header>, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

/// Replaces (or adds) header `name`.
pub fn set(headers: &mut Vec<Header>, name: &str, value: impl Into<Vec<u8>>) {
    remove(headers, name);
    headers.push((name.to_string(), value.into()));
}

/// Body framing shared by requests and responses: chunked beats a length; conflicting or
/// unparsable lengths are an error.
fn framing_of(headers: &[Header]) -> Result<Option<BodyFraming>, HeadError> {
    let te: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.as_slice())
        .collect();
    if !te.is_empty() {
        let last = te
            .last()
            .and_then(|v| v.split(|&b| b == b',').next_back())
            .map(|t| t.trim_ascii());
        if last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
            if header(headers, "content-length").is_some() {
                return Err(HeadError::Malformed(
                    "both Transfer-Encoding and Content-Length".into(),
                ));
            }
            return Ok(Some(BodyFraming::Chunked));
        }
        return Ok(None);
    }
    let mut len: Option<u64> = None;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        for part in v.split(|&b| b == b',') {
            let s = std::str::from_utf8(part.trim_ascii())
                .map_err(|_| HeadError::Malformed("bad Content-Length".into()))?;
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed("bad Content-Length".into()));
            }
            let n: u64 = s
                .parse()
                .map_err(|_| HeadError::Malformed("bad Content-Length".into()))?;
            if len.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length".into()));
            }
            len = Some(n);
        }
    }
    Ok(len.map(BodyFraming::Length))
}

/// Body framing of a request: chunked, a length, or none.
pub fn request_framing(head: &RequestHead) -> Result<BodyFraming, HeadError> {
    let has_te = header(&head.headers, "transfer-encoding").is_some();
    match framing_of(&head.headers)? {
        Some(BodyFraming::Length(0)) => Ok(BodyFraming::None),
        Some(f) => Ok(f),
        // A transfer coding that is not chunked on a request: we cannot find its end.
        None if has_te => Err(HeadError::Malformed("unsupported Transfer-Encoding".into())),
        None => Ok(BodyFraming::None),
    }
}

/// Body framing of a response to a request with method `method`.
pub fn response_framing(head: &ResponseHead, method: &str) -> Result<BodyFraming, HeadError> {
    if method.eq_ignore_ascii_case("HEAD")
        || head.status < 200
        || head.status == 204
        || head.status == 304
    {
        return Ok(BodyFraming::None);
    }
    Ok(match framing_of(&head.headers)? {
        Some(BodyFraming::Length(0)) => BodyFraming::None,
        Some(f) => f,
        None => BodyFraming::UntilClose,
    })
}

/// Whether the connection stays open after this exchange (HTTP/1.1 default keep-alive,
/// HTTP/1.0 only with `Connection: keep-alive`).
pub fn keep_alive(version: u8, headers: &[Header]) -> bool {
    if has_token(headers, "connection", "close") {
        return false;
    }
    version >= 1 || has_token(headers, "connection", "keep-alive")
}

/// Serialises a request head (`HTTP/1.1` always).
pub fn write_request(head: &RequestHead, out: &mut Vec<u8>) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(if head.version == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    write_headers(&head.headers, out);
}

/// Serialises a response head.
pub fn write_response(head: &ResponseHead, out: &mut Vec<u8>) {
    out.extend_from_slice(if head.version == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(head.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(&head.headers, out);
}

fn write_headers(headers: &[Header], out: &mut Vec<u8>) {
    for (n, v) in headers {
        // Values we build ourselves are checked; parsed ones cannot hold CR/LF. Belt and braces:
        // never emit a header whose name or value would split the head.
        if n.bytes().any(|b| b == b'\r' || b == b'\n' || b == b':')
            || v.iter().any(|&b| b == b'\r' || b == b'\n')
        {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A complete small response (used for 400/431/502 and proxy-owned routes).
pub fn simple_response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 160);
    let mut headers: Vec<Header> = vec![
        ("Content-Type".into(), content_type.as_bytes().to_vec()),
        ("Content-Length".into(), body.len().to_string().into_bytes()),
        ("Cache-Control".into(), b"no-store".to_vec()),
    ];
    if close {
        headers.push(("Connection".into(), b"close".to_vec()));
    }
    write_response(
        &ResponseHead {
            version: 1,
            status,
            reason: reason.into(),
            headers,
        },
        &mut out,
    );
    out.extend_from_slice(body);
    out
}

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad chunked body: {}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Ext,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder. Feed it wire bytes; it reports how many it
/// consumed (it stops exactly at the end of the body) and hands decoded data to a callback.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    size: u64,
    digits: usize,
    line_len: usize,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            size: 0,
            digits: 0,
            line_len: 0,
            trailer_bytes: 0,
        }
    }

    /// Whether the terminating chunk and trailers have been seen.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes bytes from `input`, passing decoded data to `data`; returns how many bytes of
    /// `input` belong to this body (fewer than `input.len()` only when the body ended).
    pub fn feed(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Done => return Ok(i),
                ChunkState::Size => {
                    if let Some(d) = (b as char).to_digit(16) {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(ChunkError("chunk size too large"));
                        }
                        self.size = self.size * 16 + u64::from(d);
                    } else if self.digits == 0 {
                        return Err(ChunkError("missing chunk size"));
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = ChunkState::Ext;
                        self.line_len = 0;
                    } else if b == b'\r' {
                        self.state = ChunkState::SizeLf;
                    } else {
                        return Err(ChunkError("invalid chunk size"));
                    }
                    i += 1;
                }
                ChunkState::Ext => {
                    self.line_len += 1;
                    if self.line_len > 4096 {
                        return Err(ChunkError("chunk extension too long"));
                    }
                    if b == b'\r' {
                        self.state = ChunkState::SizeLf;
                    } else if b == b'\n' {
                        return Err(ChunkError("bare LF in chunk size line"));
                    }
                    i += 1;
                }
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError("expected LF after chunk size"));
                    }
                    i += 1;
                    self.state = if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data(self.size)
                    };
                    self.size = 0;
                    self.digits = 0;
                }
                ChunkState::Data(left) => {
                    let n = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    data(&input[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError("expected CRLF after chunk data"));
                    }
                    i += 1;
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError("expected CRLF after chunk data"));
                    }
                    i += 1;
                    self.state = ChunkState::Size;
                }
                ChunkState::TrailerStart => {
                    i += 1;
                    if b == b'\r' {
                        self.state = ChunkState::EndLf;
                    } else if b == b'\n' {
                        return Err(ChunkError("bare LF in trailers"));
                    } else {
                        self.trailer_bytes += 1;
                        self.state = ChunkState::TrailerLine;
                    }
                }
                ChunkState::TrailerLine => {
                    i += 1;
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_HEAD {
                        return Err(ChunkError("trailers too large"));
                    }
                    if b == b'\r' {
                        self.state = ChunkState::TrailerLf;
                    }
                }
                ChunkState::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError("expected LF in trailers"));
                    }
                    i += 1;
                    self.state = ChunkState::TrailerStart;
                }
                ChunkState::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError("expected LF after last chunk"));
                    }
                    i += 1;
                    self.state = ChunkState::Done;
                }
            }
        }
        Ok(i)
    }
}

/// Encodes `data` as one chunk (empty `data` = the terminating chunk).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_request_and_framing() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let (h, n) = parse_request(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 5);
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/a?b=1");
        assert_eq!(request_framing(&h).unwrap(), BodyFraming::Length(5));
        assert!(keep_alive(h.version, &h.headers));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(),
            None
        );
    }

    #[test]
    fn rejects_bad_heads() {
        assert!(matches!(
            parse_request(b"GARBAGE\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(parse_request(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n").is_err());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_request(&big), Err(HeadError::TooLarge));
        let h = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(request_framing(&h).is_err());
        let h = parse_request(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(request_framing(&h).is_err());
        let h = parse_request(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap()
        .0;
        assert!(request_framing(&h).is_err());
    }

    #[test]
    fn response_framing_rules() {
        let (h, _) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(
            response_framing(&h, "GET").unwrap(),
            BodyFraming::UntilClose
        );
        assert_eq!(response_framing(&h, "HEAD").unwrap(), BodyFraming::None);
        let (h, _) = parse_response(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(response_framing(&h, "GET").unwrap(), BodyFraming::None);
        let (h, _) = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(response_framing(&h, "GET").unwrap(), BodyFraming::Chunked);
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let n = d.feed(input, |b| out.extend_from_slice(b))?;
        Ok((out, n, d.is_done()))
    }

    #[test]
    fn chunked_decodes_and_stops_at_end() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (out, n, done) = decode_all(wire).unwrap();
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(&wire[n..], b"NEXT");
        assert!(decode_all(b"zz\r\n").is_err());
        assert!(decode_all(b"5\r\nhelloXX").is_err());
        assert!(decode_all(b"ffffffffffffffffff\r\n").is_err());
        assert!(decode_all(b"\r\n").is_err());
    }

    fn encode(body: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = body;
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes.get(k).copied().unwrap_or(7).clamp(1, rest.len());
            encode_chunk(&rest[..n], &mut out);
            rest = &rest[n..];
            k += 1;
        }
        encode_chunk(b"", &mut out);
        out
    }

    proptest! {
        #[test]
        fn head_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_request(&bytes);
            let _ = parse_response(&bytes);
            if let Ok(Some((h, n))) = parse_request(&bytes) {
                prop_assert!(n <= bytes.len());
                let _ = request_framing(&h);
                let mut out = Vec::new();
                write_request(&h, &mut out);
                // What we write parses back to the same request line.
                let (h2, _) = parse_request(&out).unwrap().unwrap();
                prop_assert_eq!(h2.method, h.method);
                prop_assert_eq!(h2.target, h.target);
            }
        }

        #[test]
        fn chunked_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let mut d = ChunkedDecoder::new();
            let _ = d.feed(&bytes, |_| {});
        }

        #[test]
        fn chunked_roundtrip_any_split(body in proptest::collection::vec(any::<u8>(), 0..3000),
                                       sizes in proptest::collection::vec(1usize..500, 0..20),
                                       split in 0usize..4000) {
            let wire = encode(&body, &sizes);
            let split = split.min(wire.len());
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let a = d.feed(&wire[..split], |b| out.extend_from_slice(b)).unwrap();
            prop_assert_eq!(a, split);
            let b = d.feed(&wire[split..], |b| out.extend_from_slice(b)).unwrap();
            prop_assert_eq!(a + b, wire.len());
            prop_assert!(d.is_done());
            prop_assert_eq!(out, body);
        }
    }
}
