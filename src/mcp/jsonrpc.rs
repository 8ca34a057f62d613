//! JSON-RPC 2.0 messages and newline-delimited framing, in the shape of rust-analyzer's
//! `lsp-server`: a [`Connection`] is a pair of crossbeam channels served by a reader and a writer
//! thread. The same type carries MCP over stdio, over the daemon's Unix socket and in memory.
//!
//! This module owns the framing rules: one JSON object per line, a line longer than
//! [`MAX_LINE`] is refused without buffering it, a line that is not UTF-8 JSON is answered with
//! `-32700` and the connection keeps going. The stdio writer here is the only code in agnt that
//! writes MCP to stdout.
//!
//! Backpressure: both queues of a connection are bounded ([`OUT_QUEUE`] outbound, 16 inbound).
//! When a peer stops reading, its outbound queue fills, whoever answers blocks, the server stops
//! reading that peer's requests and the kernel's socket buffers push back on the peer: memory
//! per connection stays bounded whatever the peer sends. A server-side socket peer that reads
//! nothing for [`stall_timeout`] is disconnected with a log line.

use std::{
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::thread::{self, JoinOnDrop};

/// The longest line we accept (8 MiB); longer lines are skipped and answered with an error.
pub const MAX_LINE: usize = 8 * 1024 * 1024;

/// Messages queued for the peer per connection; a full queue stops the server reading that
/// connection's requests.
pub const OUT_QUEUE: usize = 16;

/// How long a server-side socket peer may read nothing while answers wait for it before it is
/// disconnected: 30 s, or `AGNT_STALL_TIMEOUT_MS` (tests).
pub fn stall_timeout() -> Duration {
    static STALL: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *STALL.get_or_init(|| {
        std::env::var("AGNT_STALL_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis)
            .max(Duration::from_millis(1))
    })
}

/// JSON-RPC error codes used by agnt.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON is not a valid request object (also: a line that is too long).
    pub const INVALID_REQUEST: i32 = -32600;
    /// The method does not exist.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The request was cancelled (MCP convention for cancelled calls that still get an answer).
    pub const REQUEST_CANCELLED: i32 = -32800;
}

/// A request id: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id.
    Num(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Num(n)
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId::Str(s)
    }
}

/// A request: a method call that expects a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id the response must carry.
    pub id: RequestId,
    /// The method name.
    pub method: String,
    /// The params (`Null` when absent).
    pub params: Value,
}

/// A notification: a method call without a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The params (`Null` when absent).
    pub params: Value,
}

/// The error object of a failed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// One of [`code`] or an application code.
    pub code: i32,
    /// A sentence saying what went wrong and how to fix it.
    pub message: String,
    /// Optional structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A response: a result or an error for a request id (`None` id = the request could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request id, `None` when the request could not be parsed.
    pub id: Option<RequestId>,
    /// The outcome.
    pub outcome: Result<Value, ResponseError>,
}

impl Response {
    /// A success.
    pub fn ok(id: RequestId, result: Value) -> Response {
        Response {
            id: Some(id),
            outcome: Ok(result),
        }
    }

    /// A failure.
    pub fn err(id: Option<RequestId>, code: i32, message: impl Into<String>) -> Response {
        Response {
            id,
            outcome: Err(ResponseError {
                code,
                message: message.into(),
                data: None,
            }),
        }
    }
}

/// Any JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
    /// A notification.
    Notification(Notification),
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Message::Notification(n)
    }
}

impl Message {
    /// Serializes to one JSON object (no newline).
    pub fn to_value(&self) -> Value {
        match self {
            Message::Request(r) => {
                let mut m = Map::new();
                m.insert("jsonrpc".into(), "2.0".into());
                m.insert(
                    "id".into(),
                    serde_json::to_value(&r.id).unwrap_or(Value::Null),
                );
                m.insert("method".into(), r.method.clone().into());
                if !r.params.is_null() {
                    m.insert("params".into(), r.params.clone());
                }
                Value::Object(m)
            }
            Message::Notification(n) => {
                let mut m = Map::new();
                m.insert("jsonrpc".into(), "2.0".into());
                m.insert("method".into(), n.method.clone().into());
                if !n.params.is_null() {
                    m.insert("params".into(), n.params.clone());
                }
                Value::Object(m)
            }
            Message::Response(r) => {
                let id = match &r.id {
                    Some(id) => serde_json::to_value(id).unwrap_or(Value::Null),
                    None => Value::Null,
                };
                match &r.outcome {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
                }
            }
        }
    }

    /// Classifies a parsed JSON value; the error is the response to send back.
    pub fn from_value(v: Value) -> Result<Message, Response> {
        let Value::Object(mut m) = v else {
            let what = if v.is_array() {
                "batches are not supported"
            } else {
                "expected a JSON object"
            };
            return Err(Response::err(
                None,
                code::INVALID_REQUEST,
                format!("invalid request: {what}"),
            ));
        };
        let id = match m.remove("id") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(raw) => match serde_json::from_value::<RequestId>(raw) {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    return Err(Response::err(
                        None,
                        code::INVALID_REQUEST,
                        "invalid request: \"id\" must be a string or an integer",
                    ));
                }
            },
        };
        let params = m.remove("params").unwrap_or(Value::Null);
        if let Some(method) = m.remove("method") {
            let Value::String(method) = method else {
                return Err(Response::err(
                    id.flatten(),
                    code::INVALID_REQUEST,
                    "invalid request: \"method\" must be a string",
                ));
            };
            if !(params.is_null() || params.is_object() || params.is_array()) {
                return Err(Response::err(
                    id.flatten(),
                    code::INVALID_REQUEST,
                    "invalid request: \"params\" must be an object",
                ));
            }
            return Ok(match id {
                Some(Some(id)) => Message::Request(Request { id, method, params }),
                Some(None) => {
                    return Err(Response::err(
                        None,
                        code::INVALID_REQUEST,
                        "invalid request: \"id\" must not be null",
                    ));
                }
                None => Message::Notification(Notification { method, params }),
            });
        }
        let id = id.flatten();
        if let Some(result) = m.remove("result") {
            return Ok(Message::Response(Response {
                id,
                outcome: Ok(result),
            }));
        }
        if let Some(error) = m.remove("error") {
            let error =
                serde_json::from_value::<ResponseError>(error).unwrap_or_else(|_| ResponseError {
                    code: code::INTERNAL_ERROR,
                    message: "malformed error object".into(),
                    data: None,
                });
            return Ok(Message::Response(Response {
                id,
                outcome: Err(error),
            }));
        }
        Err(Response::err(
            id,
            code::INVALID_REQUEST,
            "invalid request: a message needs \"method\" (request/notification) or \"result\"/\"error\" (response)",
        ))
    }

    /// Parses one line (without its newline).
    pub fn parse_line(line: &[u8]) -> Result<Message, Response> {
        let text = std::str::from_utf8(line).map_err(|e| {
            Response::err(
                None,
                code::PARSE_ERROR,
                format!("parse error: line is not valid UTF-8 ({e})"),
            )
        })?;
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Response::err(None, code::PARSE_ERROR, format!("parse error: {e}")))?;
        Message::from_value(v)
    }

    /// Writes one line (the JSON and a `\n`) and flushes.
    pub fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut buf = serde_json::to_vec(&self.to_value()).map_err(io::Error::other)?;
        buf.push(b'\n');
        w.write_all(&buf)?;
        w.flush()
    }
}

/// What one read from a framed stream produced.
#[derive(Debug)]
pub enum Frame {
    /// A complete line (newline stripped).
    Line(Vec<u8>),
    /// A line longer than the limit was skipped entirely.
    TooLong(usize),
    /// End of stream.
    Eof,
}

/// Reads newline-delimited frames with a length limit, never buffering more than the limit.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    limit: usize,
}

impl<R: Read> LineReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            limit,
        }
    }

    /// Reads the next frame. Empty lines are skipped.
    pub fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            let mut line = Vec::new();
            let mut skipped = 0usize;
            let mut too_long = false;
            loop {
                let buf = match self.inner.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if buf.is_empty() {
                    if too_long {
                        return Ok(Frame::TooLong(skipped));
                    }
                    if line.is_empty() {
                        return Ok(Frame::Eof);
                    }
                    return Ok(Frame::Line(line));
                }
                let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], Some(i + 1)),
                    None => (buf, None),
                };
                if too_long || line.len() + chunk.len() > self.limit {
                    too_long = true;
                    skipped += line.len() + chunk.len();
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
                let consumed = done.unwrap_or(buf.len());
                self.inner.consume(consumed);
                if done.is_some() {
                    break;
                }
            }
            if too_long {
                return Ok(Frame::TooLong(skipped));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            return Ok(Frame::Line(line));
        }
    }
}

/// Which side of the protocol a connection serves: a server answers unreadable lines with
/// JSON-RPC errors, a client only logs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Answers bad lines with `-32700`/`-32600`.
    Server,
    /// Logs bad lines.
    Client,
}

/// A bidirectional message channel (lsp-server's shape).
#[derive(Debug)]
pub struct Connection {
    /// Messages to send to the peer.
    pub sender: Sender<Message>,
    /// Messages received from the peer; disconnected at end of stream.
    pub receiver: Receiver<Message>,
}

/// The reader and writer threads of a connection; joining waits for both to finish. Dropping
/// never blocks: a socket connection is shut down (so the peer sees EOF and the reader ends) and
/// the threads are left to finish on their own.
#[derive(Debug)]
pub struct IoThreads {
    reader: Option<JoinOnDrop<io::Result<()>>>,
    writer: Option<JoinOnDrop<io::Result<()>>>,
    /// Disconnects when the writer thread ends (its sender is dropped with the thread's closure).
    writer_done: Option<Receiver<()>>,
    closer: Option<UnixStream>,
}

impl Drop for IoThreads {
    fn drop(&mut self) {
        if let Some(s) = self.closer.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(h) = self.reader.take() {
            h.detach();
        }
        if let Some(h) = self.writer.take() {
            h.detach();
        }
    }
}

impl IoThreads {
    /// Waits for both threads. The writer ends when every sender is dropped.
    pub fn join(mut self) -> io::Result<()> {
        if let Some(s) = self.closer.take() {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
        let r = self.reader.take().and_then(|h| h.join()).unwrap_or(Ok(()));
        let w = self.writer.take().and_then(|h| h.join()).unwrap_or(Ok(()));
        r.and(w)
    }

    /// [`join`](Self::join), but a writer still running `limit` after the reader ended is given
    /// up on: the socket is shut down both ways and the writer detached (it ends once the last
    /// sender goes — a call stuck past its cancel may hold one for ever). `TimedOut` then.
    pub fn join_within(mut self, limit: Duration) -> io::Result<()> {
        if let Some(s) = &self.closer {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
        let r = self.reader.take().and_then(|h| h.join()).unwrap_or(Ok(()));
        let ended = match self.writer_done.take() {
            Some(done) => !matches!(
                done.recv_timeout(limit),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ),
            None => true,
        };
        if !ended {
            if let Some(s) = self.closer.take() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            if let Some(h) = self.writer.take() {
                h.detach();
            }
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the writer still had a sender {} after the peer left (a call is stuck); \
                     connection closed",
                    crate::util::duration::format(limit)
                ),
            ));
        }
        let w = self.writer.take().and_then(|h| h.join()).unwrap_or(Ok(()));
        r.and(w)
    }

    /// Lets the threads run on (the reader may be blocked on a read that never ends).
    pub fn detach(mut self) {
        if let Some(h) = self.reader.take() {
            h.detach();
        }
        if let Some(h) = self.writer.take() {
            h.detach();
        }
    }
}

impl Connection {
    /// MCP over this process's stdin and stdout (server side).
    pub fn stdio() -> (Connection, IoThreads) {
        Connection::from_io("stdio", io::stdin(), io::stdout(), Side::Server)
    }

    /// Client side over stdio: used by the bridge, which forwards lines it receives from the
    /// agent (answering unreadable ones) — the same as the server side.
    pub fn stdio_bridge() -> (Connection, IoThreads) {
        Connection::stdio()
    }

    /// A connection over a Unix stream. On the server side a peer that reads nothing for
    /// [`stall_timeout`] while an answer waits is disconnected.
    pub fn unix(stream: UnixStream, side: Side) -> io::Result<(Connection, IoThreads)> {
        let write = stream.try_clone()?;
        let closer = stream.try_clone()?;
        let (conn, mut threads) = if side == Side::Server {
            let stall = stall_timeout();
            write.set_write_timeout(Some(stall))?;
            let write = StallWriter {
                stream: write,
                stall,
            };
            Connection::from_io("unix", stream, write, side)
        } else {
            Connection::from_io("unix", stream, write, side)
        };
        threads.closer = Some(closer);
        Ok((conn, threads))
    }

    /// Two connected in-memory ends: what one sends, the other receives.
    pub fn memory() -> (Connection, Connection) {
        let (s1, r1) = unbounded();
        let (s2, r2) = unbounded();
        (
            Connection {
                sender: s1,
                receiver: r2,
            },
            Connection {
                sender: s2,
                receiver: r1,
            },
        )
    }

    /// A connection over any reader and writer, served by two named threads.
    pub fn from_io<R, W>(name: &str, read: R, write: W, side: Side) -> (Connection, IoThreads)
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let (out_tx, out_rx) = bounded::<Message>(OUT_QUEUE);
        let (in_tx, in_rx) = bounded::<Message>(16);
        let (done_tx, writer_done) = bounded::<()>(0);
        let writer = thread::spawn(format!("{name}-writer"), thread::SMALL_STACK, move || {
            let _done = done_tx;
            let mut write = write;
            for msg in out_rx {
                msg.write(&mut write)?;
            }
            Ok(())
        })
        .map(JoinOnDrop::new)
        .ok();
        let answer = out_tx.clone();
        let label = name.to_string();
        let reader = thread::spawn(format!("{name}-reader"), thread::SMALL_STACK, move || {
            let mut lines = LineReader::new(read, MAX_LINE);
            // Only the answering side keeps a sender alive here; a client drops its copy so the
            // writer ends as soon as the caller drops its sender.
            let answer = (side == Side::Server).then_some(answer);
            loop {
                let frame = lines.next_frame()?;
                let bad = match frame {
                    Frame::Eof => return Ok(()),
                    Frame::TooLong(n) => Response::err(
                        None,
                        code::INVALID_REQUEST,
                        format!(
                            "message refused: a line of {n} bytes exceeds the {MAX_LINE}-byte limit"
                        ),
                    ),
                    Frame::Line(line) => match Message::parse_line(&line) {
                        Ok(msg) => {
                            if in_tx.send(msg).is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                        Err(resp) => resp,
                    },
                };
                match &answer {
                    Some(tx) => {
                        let _ = tx.send(bad.into());
                    }
                    None => log::warn!(
                        "{label}: unreadable message from peer: {:?}",
                        bad.outcome.err()
                    ),
                }
            }
        })
        .map(JoinOnDrop::new)
        .ok();
        (
            Connection {
                sender: out_tx,
                receiver: in_rx,
            },
            IoThreads {
                reader,
                writer,
                writer_done: Some(writer_done),
                closer: None,
            },
        )
    }
}

/// A socket writer whose blocked write times out: the peer read nothing for `stall` while we had
/// something to say. It logs, shuts the socket down (the reader sees EOF, the connection ends)
/// and fails, which ends the writer thread and unblocks everyone waiting on the full queue.
struct StallWriter {
    stream: UnixStream,
    stall: Duration,
}

impl Write for StallWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.stream.write(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                log::warn!(
                    "disconnecting a client that read nothing for {:?} while answers waited for it",
                    self.stall
                );
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                Err(e)
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests;
