//! One HTTP request/response exchange in flight: how each body is framed and how far it has
//! streamed (`BodyState`: Content-Length, chunked, until close), where the response is
//! (`Resp`), the HTML (or an `https://` target's CSS/JS) being buffered (`InjectBuf`), and
//! what is captured for the traffic log (headers, the first 10 KiB of each body, status,
//! timing) until `Exchange::take_record` turns it into an `HttpRecord`.

use std::time::Instant;

use super::{
    budget::Lease,
    http::{BodyFraming, ChunkedDecoder, Header, RequestHead, ResponseHead},
    rewrite::Rewriter,
    traffic::HttpRecord,
};

/// Largest HTML body we buffer for injection; bigger pages pass through uninjected.
pub const INJECT_LIMIT: usize = 8 * 1024 * 1024;

/// How far a body has streamed.
#[derive(Debug)]
pub(crate) enum BodyState {
    /// Bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Ends when the sender closes.
    UntilClose,
}

impl BodyState {
    /// `None` for a message without a body.
    pub fn from(f: BodyFraming) -> Option<BodyState> {
        match f {
            BodyFraming::None => None,
            BodyFraming::Length(n) => Some(BodyState::Length(n)),
            BodyFraming::Chunked => Some(BodyState::Chunked(ChunkedDecoder::new())),
            BodyFraming::UntilClose => Some(BodyState::UntilClose),
        }
    }

    /// Consumes body bytes from `input` (`eof`: the sender has closed): returns (raw bytes
    /// consumed, body complete), passing decoded data to `data`.
    pub fn take(
        &mut self,
        input: &[u8],
        eof: bool,
        mut data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), String> {
        match self {
            BodyState::Length(left) => {
                let n = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                data(&input[..n]);
                *left -= n as u64;
                Ok((n, *left == 0))
            }
            BodyState::Chunked(d) => {
                let n = d.feed(input, data).map_err(|e| e.to_string())?;
                Ok((n, d.is_done()))
            }
            BodyState::UntilClose => {
                data(input);
                Ok((input.len(), eof))
            }
        }
    }
}

/// Where the response of an exchange is.
#[derive(Debug)]
pub(crate) enum Resp {
    AwaitHead,
    Body(BodyState),
}

/// An HTML response being buffered for injection, or CSS/JS from an `https://` target buffered
/// for URL rewriting (bounded by [`INJECT_LIMIT`], and together with every other exchange of
/// the proxy by `ProxyLimits::inject_budget`).
#[derive(Debug)]
pub(crate) struct InjectBuf {
    pub head: ResponseHead,
    /// An HTML page (the script tag goes in); else CSS/JS, only rewritten.
    pub html: bool,
    /// Target URLs in the body → the proxy origin the client used.
    pub rewrite: Option<Rewriter>,
    /// What `raw` and `decoded` hold, drawn from the proxy's injection budget.
    pub lease: Lease,
    /// The body as it came (to send unchanged if it grows too big).
    pub raw: Vec<u8>,
    /// The body de-chunked (still content-encoded).
    pub decoded: Vec<u8>,
}

/// One exchange in flight on a connection.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub start: Instant,
    /// Since when a response head is awaited (the request was sent in full).
    pub waiting_since: Instant,
    /// A `text/event-stream` response: no body-progress deadline (see `ProxyLimits`).
    pub stream: bool,
    /// Why the proxy cut the exchange, for its log entry.
    pub cut: Option<String>,
    pub method: String,
    pub url: String,
    pub req_headers: Vec<Header>,
    /// The `Host` the client sent (the proxy origin it used).
    pub client_host: Option<String>,
    pub page_id: Option<String>,
    pub client_keep_alive: bool,
    /// `None` once the request body is complete (or there is none).
    pub req_body: Option<BodyState>,
    pub req_cap: Vec<u8>,
    pub req_trunc: bool,
    /// The upstream head, kept (for requests without a body) to retry once when a pooled
    /// upstream connection turns out to be closed.
    pub retry_head: Option<Vec<u8>>,
    pub retried: bool,
    pub resp: Resp,
    /// A final (non-1xx) response head arrived: failures can no longer be answered with a 502.
    pub resp_started: bool,
    pub status: u16,
    pub resp_headers: Vec<Header>,
    pub resp_cap: Vec<u8>,
    pub resp_trunc: bool,
    pub upstream_keep_alive: bool,
    /// The response is streamed until the upstream closes: the client connection must close too.
    pub raw_until_close: bool,
    pub inject: Option<InjectBuf>,
    pub injected: bool,
    /// The log entry is written (before the last bytes reach the client).
    pub logged: bool,
    /// HTTP/1.0 client: a chunked response is sent de-chunked, delimited by close.
    pub client_http10: bool,
    pub dechunk: bool,
}

impl Exchange {
    /// An exchange for a request head just parsed (the head's headers as the client sent them).
    pub fn new(
        head: RequestHead,
        client_host: Option<String>,
        page_id: Option<String>,
        client_keep_alive: bool,
        retry_head: Option<Vec<u8>>,
        framing: BodyFraming,
    ) -> Exchange {
        let now = Instant::now();
        Exchange {
            start: now,
            waiting_since: now,
            stream: false,
            cut: None,
            method: head.method,
            url: head.target,
            req_headers: head.headers,
            client_host,
            page_id,
            client_keep_alive,
            req_body: BodyState::from(framing),
            req_cap: Vec::new(),
            req_trunc: false,
            retry_head,
            retried: false,
            resp: Resp::AwaitHead,
            resp_started: false,
            status: 0,
            resp_headers: Vec::new(),
            resp_cap: Vec::new(),
            resp_trunc: false,
            upstream_keep_alive: false,
            raw_until_close: false,
            inject: None,
            injected: false,
            logged: false,
            client_http10: head.version == 0,
            dechunk: false,
        }
    }

    /// Moves the captured data into a log record (the exchange ends right after).
    pub fn take_record(&mut self) -> HttpRecord {
        HttpRecord {
            method: self.method.clone(),
            url: self.url.clone(),
            status: self.status,
            duration_ms: self.start.elapsed().as_secs_f64() * 1000.0,
            request_headers: std::mem::take(&mut self.req_headers),
            response_headers: std::mem::take(&mut self.resp_headers),
            request_body: std::mem::take(&mut self.req_cap),
            request_truncated: self.req_trunc,
            response_body: std::mem::take(&mut self.resp_cap),
            response_truncated: self.resp_trunc,
            error: None,
            injected: self.injected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(s: &mut BodyState, input: &[u8], eof: bool) -> (usize, bool, Vec<u8>) {
        let mut out = Vec::new();
        let (n, done) = s.take(input, eof, |d| out.extend_from_slice(d)).unwrap();
        (n, done, out)
    }

    #[test]
    fn content_length_stops_at_its_length() {
        let mut s = BodyState::from(BodyFraming::Length(5)).unwrap();
        assert_eq!(take_all(&mut s, b"abc", false), (3, false, b"abc".to_vec()));
        // Pipelined bytes after the body are left alone.
        assert_eq!(
            take_all(&mut s, b"deGET /", false),
            (2, true, b"de".to_vec())
        );
        assert!(BodyState::from(BodyFraming::None).is_none());
    }

    #[test]
    fn chunked_decodes_across_pieces_and_rejects_garbage() {
        let mut s = BodyState::from(BodyFraming::Chunked).unwrap();
        let wire = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let mut decoded = Vec::new();
        let mut off = 0;
        let mut done = false;
        // Feed byte by byte: the decoder consumes what it can each time.
        let mut pending = Vec::new();
        for &b in &wire[..] {
            pending.push(b);
            let (n, d, out) = take_all(&mut s, &pending, false);
            decoded.extend_from_slice(&out);
            pending.drain(..n);
            off += n;
            if d {
                done = true;
                break;
            }
        }
        assert!(done);
        assert_eq!(decoded, b"abcde");
        assert_eq!(off, wire.len() - 4);
        let mut bad = BodyState::from(BodyFraming::Chunked).unwrap();
        assert!(bad.take(b"zz\r\n", false, |_| {}).is_err());
    }

    #[test]
    fn until_close_ends_at_eof() {
        let mut s = BodyState::from(BodyFraming::UntilClose).unwrap();
        assert_eq!(take_all(&mut s, b"ab", false), (2, false, b"ab".to_vec()));
        assert_eq!(take_all(&mut s, b"", true), (0, true, vec![]));
    }

    #[test]
    fn record_takes_the_captures() {
        let head = RequestHead {
            method: "POST".into(),
            target: "/x?y".into(),
            version: 0,
            headers: vec![("Host".into(), b"h".to_vec())],
        };
        let mut ex = Exchange::new(
            head,
            None,
            Some("p".into()),
            false,
            None,
            BodyFraming::Length(2),
        );
        assert!(ex.client_http10 && ex.req_body.is_some());
        ex.req_cap = b"hi".to_vec();
        ex.status = 201;
        let rec = ex.take_record();
        assert_eq!(
            (rec.method.as_str(), rec.url.as_str(), rec.status),
            ("POST", "/x?y", 201)
        );
        assert_eq!(rec.request_body, b"hi");
        assert_eq!(rec.request_headers.len(), 1);
        assert!(ex.req_cap.is_empty() && ex.req_headers.is_empty());
    }
}
