//! The MCP server over one [`Connection`]: version negotiation, `server/discover`, `ping`,
//! `tools/list`, `tools/call`, cancellation and progress — protocol only. What the tools are and
//! do comes from a [`Handler`] (for agnt, `mcp::Toolbox` over the tool table and a `Host`).
//!
//! Each `tools/call` runs on a pooled worker thread under `catch_unwind`, so a slow call never
//! blocks the connection's other requests and a panicking tool becomes an error result. The
//! dispatch loop itself only reads messages and starts work.

use std::{
    collections::HashMap,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::jsonrpc::{Connection, Message, Notification, Request, RequestId, Response, code};

/// Protocol versions negotiated through `initialize`, oldest first.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2025-06-18", "2025-11-25"];
/// The per-request-envelope version answered by `server/discover`.
pub const DISCOVER_VERSION: &str = "2026-07-28";
/// The `_meta` key carrying the caller's project path (set by the bridge and the CLI).
pub const PROJECT_META: &str = "dev.agnt/project";
/// The `_meta` key of a 2026-07-28 request's protocol version.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// JSON-RPC error code for an unsupported protocol version (2026-07-28).
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
/// Calls in flight per connection before new ones are refused.
pub const MAX_INFLIGHT: usize = 64;

/// What a server serves: the tool list and the tool calls. Implementations must not panic on
/// bad arguments (the server catches panics anyway and answers with an error result).
pub trait Handler: Send + Sync {
    /// The `tools/list` entries.
    fn tools(&self) -> &[Value];
    /// Runs tool `name`: `None` when there is no such tool; else the structured result, or the
    /// error message for the agent.
    fn call_tool(
        &self,
        name: &str,
        args: &Map<String, Value>,
        ctx: &CallContext<'_>,
    ) -> Option<Result<Value, String>>;
    /// The project of calls whose connection and request name none.
    fn default_project(&self) -> &Path;
    /// A connection opened: `push` sends a notification `(method, params)` on it. What the
    /// handler returns lives as long as the connection (dropping it unsubscribes). Default: no
    /// pushes.
    fn open(&self, push: Push) -> Option<Box<dyn Peer>> {
        let _ = push;
        None
    }
}

/// Sends a notification `(method, params)` on one connection; never blocks.
pub type Push = Box<dyn Fn(&str, Value) + Send + Sync>;

/// What a handler keeps per connection (see [`Handler::open`]).
pub trait Peer: Send + Sync {
    /// The connection's id, passed to its calls as [`CallContext::connection`].
    fn id(&self) -> u64;
    /// The connection's project became known (its `initialize`).
    fn set_project(&self, project: &Path);
}

/// Reports progress `(done, total, message)` on the caller's connection.
pub type Progress<'a> = dyn Fn(f64, Option<f64>, &str) + Sync + 'a;

/// What one `tools/call` carries besides its arguments.
pub struct CallContext<'a> {
    /// The caller's project (`_meta`, else the connection's, else the handler's default).
    pub project: PathBuf,
    /// Set when the client cancels the call.
    pub cancel: &'a AtomicBool,
    /// Reports progress `(done, total, message)` when the client asked for it.
    pub progress: Option<&'a Progress<'a>>,
    /// Sends a notification `(method, params)` on the caller's connection.
    pub notify: &'a (dyn Fn(&str, Value) + Send + Sync),
    /// The connection's id when the handler tracks connections ([`Handler::open`]).
    pub connection: Option<u64>,
}

impl std::fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

/// Per-connection state.
pub struct Session {
    handler: Arc<dyn Handler>,
    sender: Sender<Message>,
    project: Mutex<Option<PathBuf>>,
    inflight: Mutex<HashMap<RequestId, Arc<AtomicBool>>>,
    running: AtomicUsize,
    peer: Option<Box<dyn Peer>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

/// Serves one connection until the peer goes away; returns when every call has answered.
pub fn serve(conn: Connection, handler: Arc<dyn Handler>) {
    serve_observed(conn, handler, &|_| {});
}

/// [`serve`], showing every message the peer sends to `observe` first (the daemon keeps its
/// client table with it: kind, last activity). Returns how many calls were still running 30 s
/// after the peer stopped sending (stuck past their cancel: they may hold the connection's
/// sender for ever, so the caller should not wait for its writer unbounded).
pub fn serve_observed(
    conn: Connection,
    handler: Arc<dyn Handler>,
    observe: &dyn Fn(&Message),
) -> usize {
    let mut session = Session::new(handler, conn.sender.clone());
    let sender = conn.sender.clone();
    session.peer = session
        .handler
        .open(Box::new(move |method: &str, params: Value| {
            // Pushes come from other threads (a process's waiter, a proxy's loop through the
            // entry tap): never block them on a peer that does not read — a full outbound
            // queue drops the push (`get_incidents` still has it).
            let msg = Notification {
                method: method.into(),
                params,
            };
            if sender.try_send(msg.into()).is_err() {
                log::debug!("dropped a push: the connection's outbound queue is full");
            }
        }));
    let session = Arc::new(session);
    for msg in &conn.receiver {
        observe(&msg);
        match msg {
            Message::Request(req) => session.clone().dispatch(req),
            Message::Notification(n) => session.notify(n),
            Message::Response(_) => {} // we send no requests
        }
    }
    // The peer stopped sending: cancel what is still waiting, and let the calls answer (a peer
    // that only half-closed still reads them) before the caller closes the connection.
    for flag in session.inflight.lock().values() {
        flag.store(true, Ordering::Relaxed);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while session.running.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    session.running.load(Ordering::Relaxed)
}

impl Session {
    /// A session that answers on `sender`.
    pub fn new(handler: Arc<dyn Handler>, sender: Sender<Message>) -> Session {
        Session {
            handler,
            sender,
            project: Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            peer: None,
        }
    }

    /// Starts handling one request: simple methods answer inline, tool calls on a thread.
    pub fn dispatch(self: Arc<Self>, req: Request) {
        if req.method != "tools/call" {
            let resp = self.handle_sync(req);
            let _ = self.sender.send(resp.into());
            return;
        }
        if self.running.load(Ordering::Relaxed) >= MAX_INFLIGHT {
            let resp = Response::err(
                Some(req.id),
                code::INTERNAL_ERROR,
                format!(
                    "too many calls in flight on this connection (limit {MAX_INFLIGHT}); wait for some to finish"
                ),
            );
            let _ = self.sender.send(resp.into());
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut inflight = self.inflight.lock();
            if inflight.contains_key(&req.id) {
                drop(inflight);
                let resp = Response::err(
                    Some(req.id),
                    code::INVALID_REQUEST,
                    "a call with this id is still running; use a new id for each request",
                );
                let _ = self.sender.send(resp.into());
                return;
            }
            inflight.insert(req.id.clone(), cancel.clone());
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let req_id = req.id.clone();
        let this = self.clone();
        let job = Box::new(move || {
            let id = req.id.clone();
            let modern = modern_version(&req.params);
            let resp = match &modern {
                Some(Err(v)) => unsupported_version(req.id, v),
                _ => finish(modern.is_some(), "tools/call", this.call_tool(req, &cancel)),
            };
            this.inflight.lock().remove(&id);
            this.running.fetch_sub(1, Ordering::Relaxed);
            let _ = this.sender.send(resp.into());
        });
        if let Err(e) = pool().submit(job) {
            log::error!("cannot start a call thread: {e}");
            self.inflight.lock().remove(&req_id);
            self.running.fetch_sub(1, Ordering::Relaxed);
            let resp = Response::err(
                Some(req_id),
                code::INTERNAL_ERROR,
                format!("cannot start the call: {e}"),
            );
            let _ = self.sender.send(resp.into());
        }
    }

    /// Answers a request on the calling thread (the HTTP face and tests use this directly).
    pub fn handle_sync(&self, req: Request) -> Response {
        let modern = modern_version(&req.params);
        let method = req.method.clone();
        if let Some(Err(v)) = &modern {
            return unsupported_version(req.id, v);
        }
        let resp = self.handle_inner(req);
        finish(modern.is_some(), &method, resp)
    }

    fn handle_inner(&self, req: Request) -> Response {
        let id = req.id.clone();
        match req.method.as_str() {
            "initialize" => self.initialize(req),
            "server/discover" => Response::ok(id, self.discover()),
            "ping" => Response::ok(id, json!({})),
            "tools/list" => Response::ok(id, json!({"tools": self.handler.tools()})),
            "tools/call" => self.call_tool(req, &AtomicBool::new(false)),
            "logging/setLevel" => Response::ok(id, json!({})),
            "resources/list" | "prompts/list" | "resources/templates/list" => Response::err(
                Some(id),
                code::METHOD_NOT_FOUND,
                format!(
                    "method {:?} is not offered: agnt serves tools only (see tools/list)",
                    req.method
                ),
            ),
            other => Response::err(
                Some(id),
                code::METHOD_NOT_FOUND,
                format!(
                    "method not found: {other:?}; supported: initialize, server/discover, ping, tools/list, tools/call"
                ),
            ),
        }
    }

    fn notify(&self, n: Notification) {
        match n.method.as_str() {
            "notifications/cancelled" => {
                let Some(id) = n.params.get("requestId").cloned() else {
                    return;
                };
                if let Ok(id) = serde_json::from_value::<RequestId>(id)
                    && let Some(flag) = self.inflight.lock().get(&id)
                {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            "notifications/initialized" => {}
            other => log::debug!("ignoring notification {other}"),
        }
    }

    fn initialize(&self, req: Request) -> Response {
        let Some(params) = req.params.as_object() else {
            return Response::err(
                Some(req.id),
                code::INVALID_PARAMS,
                "initialize needs params with \"protocolVersion\"",
            );
        };
        let Some(asked) = params.get("protocolVersion").and_then(Value::as_str) else {
            return Response::err(
                Some(req.id),
                code::INVALID_PARAMS,
                "initialize: missing string param \"protocolVersion\" (e.g. \"2025-06-18\")",
            );
        };
        if let Some(p) = meta_project(&req.params) {
            if let Some(peer) = &self.peer {
                peer.set_project(&p);
            }
            *self.project.lock() = Some(p);
        }
        let version = if HANDSHAKE_VERSIONS.contains(&asked) {
            asked
        } else {
            HANDSHAKE_VERSIONS[HANDSHAKE_VERSIONS.len() - 1]
        };
        Response::ok(
            req.id,
            json!({
                "protocolVersion": version,
                "capabilities": capabilities(),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            }),
        )
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": supported_versions(),
            "capabilities": capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
            "resultType": "complete",
            "_meta": {"io.modelcontextprotocol/serverInfo": server_info()},
        })
    }

    fn call_tool(&self, req: Request, cancel: &AtomicBool) -> Response {
        let id = req.id;
        let Some(params) = req.params.as_object() else {
            return Response::err(
                Some(id),
                code::INVALID_PARAMS,
                "tools/call needs params {\"name\", \"arguments\"}",
            );
        };
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Response::err(
                Some(id),
                code::INVALID_PARAMS,
                "tools/call: missing string param \"name\"",
            );
        };
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Response::err(
                    Some(id),
                    code::INVALID_PARAMS,
                    "tools/call: \"arguments\" must be an object",
                );
            }
        };
        let project = meta_project(&req.params)
            .or_else(|| self.project.lock().clone())
            .unwrap_or_else(|| self.handler.default_project().to_path_buf());
        let progress_token = req
            .params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .cloned();
        let sender = self.sender.clone();
        let progress = progress_token.map(|token| {
            move |done: f64, total: Option<f64>, message: &str| {
                let mut p = json!({"progressToken": token, "progress": done, "message": message});
                if let Some(t) = total {
                    p["total"] = t.into();
                }
                let _ = sender.send(
                    Notification {
                        method: "notifications/progress".into(),
                        params: p,
                    }
                    .into(),
                );
            }
        });
        let notify_sender = self.sender.clone();
        let notify = move |method: &str, params: Value| {
            let _ = notify_sender.send(
                Notification {
                    method: method.into(),
                    params,
                }
                .into(),
            );
        };
        let ctx = CallContext {
            project,
            cancel,
            progress: progress.as_ref().map(|p| p as &Progress<'_>),
            notify: &notify,
            connection: self.peer.as_ref().map(|p| p.id()),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.handler.call_tool(name, args, &ctx)
        }));
        let result = match outcome {
            Ok(None) => {
                let names: Vec<&str> = self
                    .handler
                    .tools()
                    .iter()
                    .filter_map(|t| t["name"].as_str())
                    .collect();
                return Response::err(
                    Some(id),
                    code::INVALID_PARAMS,
                    format!(
                        "unknown tool {name:?}; available tools: {}",
                        names.join(", ")
                    ),
                );
            }
            Ok(Some(Ok(value))) => ok_result(value),
            Ok(Some(Err(msg))) => error_result(&msg),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                log::error!("tool {name} panicked: {what}");
                error_result(&format!(
                    "{name}: internal error ({what}); the server keeps running, please report this"
                ))
            }
        };
        if cancel.load(Ordering::Relaxed) {
            log::debug!("call {id} finished after cancellation");
        }
        Response::ok(id, result)
    }
}

/// A successful `CallToolResult`: the structured content and the same as one text.
pub fn ok_result(value: Value) -> Value {
    let text = serde_json::to_string(&value).unwrap_or_default();
    json!({"content": [{"type": "text", "text": text}], "structuredContent": value, "isError": false})
}

/// A failed `CallToolResult`: one text saying what to fix.
pub fn error_result(msg: &str) -> Value {
    json!({"content": [{"type": "text", "text": msg}], "isError": true})
}

type Job = Box<dyn FnOnce() + Send>;

/// An elastic pool for tool calls: idle workers are reused (no thread start per call), a new
/// worker starts whenever none is idle (a slow call never delays another), and a worker idle for
/// a minute exits, so an idle daemon holds no call threads.
struct Pool {
    tx: crossbeam_channel::Sender<Job>,
    rx: crossbeam_channel::Receiver<Job>,
    idle: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        Pool {
            tx,
            rx,
            idle: AtomicUsize::new(0),
        }
    })
}

impl Pool {
    fn submit(&'static self, job: Job) -> std::io::Result<()> {
        // Claim an idle worker, or start one.
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed {
            // Detached: a pool worker of a static pool; it exits after a minute without work.
            crate::thread::spawn("mcp-call", 1024 * 1024, move || self.work())?;
        }
        let _ = self.tx.send(job);
        Ok(())
    }

    fn work(&'static self) {
        loop {
            match self.rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(job) => {
                    job();
                    self.idle.fetch_add(1, Ordering::AcqRel);
                }
                Err(_) => {
                    // Leave only if we can un-count ourselves as idle (no job was promised to us).
                    if self
                        .idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// The `_meta` protocol version of a 2026-07-28-style request: `None` for handshake-era
/// requests, `Some(Err(v))` for a version we do not speak.
fn modern_version(params: &Value) -> Option<Result<(), String>> {
    let v = params.get("_meta")?.get(PROTOCOL_VERSION_META)?.as_str()?;
    Some(
        if v == DISCOVER_VERSION || HANDSHAKE_VERSIONS.contains(&v) {
            Ok(())
        } else {
            Err(v.to_string())
        },
    )
}

fn unsupported_version(id: RequestId, asked: &str) -> Response {
    let mut r = Response::err(
        Some(id),
        UNSUPPORTED_PROTOCOL_VERSION,
        format!(
            "unsupported protocol version {asked:?}; supported: {}",
            supported_versions().join(", ")
        ),
    );
    if let Err(e) = &mut r.outcome {
        e.data = Some(json!({"supported": supported_versions(), "requested": asked}));
    }
    r
}

fn supported_versions() -> Vec<&'static str> {
    let mut v = HANDSHAKE_VERSIONS.to_vec();
    v.push(DISCOVER_VERSION);
    v
}

/// Adds the fields 2026-07-28 results require (`resultType`, and cache hints on `tools/list`).
fn finish(modern: bool, method: &str, mut resp: Response) -> Response {
    if modern && let Ok(Value::Object(m)) = &mut resp.outcome {
        m.entry("resultType").or_insert_with(|| "complete".into());
        if method == "tools/list" {
            m.insert("ttlMs".into(), 0.into());
            m.insert("cacheScope".into(), "private".into());
        }
    }
    resp
}

/// The caller's project from `params._meta["dev.agnt/project"]`.
fn meta_project(params: &Value) -> Option<PathBuf> {
    let p = params.get("_meta")?.get(PROJECT_META)?.as_str()?;
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// `tools`, and Claude Code's experimental `claude/channel`: this server pushes
/// `notifications/claude/channel` (clients that do not know it ignore it).
fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}, "experimental": {"claude/channel": {}}})
}

fn server_info() -> Value {
    json!({"name": "agnt", "title": "agnt dev-process supervisor and proxy", "version": env!("CARGO_PKG_VERSION")})
}

const INSTRUCTIONS: &str = "agnt runs and watches the project's dev processes and puts an instrumenting \
reverse proxy in front of dev servers. Start with `detect` to see the project's scripts, `run` one in the \
background, read it with `proc output`, put `proxy start` in front of its URL and read browser traffic and \
errors with `proxylog`. Use `wait` instead of polling.";

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> (Arc<Session>, crossbeam_channel::Receiver<Message>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handler = Arc::new(crate::mcp::Toolbox::in_process(
            crate::host::Host::for_tests(),
        ));
        (Arc::new(Session::new(handler, tx)), rx)
    }

    fn req(method: &str, params: Value) -> Request {
        Request {
            id: 1.into(),
            method: method.into(),
            params,
        }
    }

    #[test]
    fn negotiates_versions() {
        let (s, _) = session();
        for (asked, want) in [
            ("2025-06-18", "2025-06-18"),
            ("2025-11-25", "2025-11-25"),
            ("1999-01-01", "2025-11-25"),
        ] {
            let r = s.handle_sync(req(
                "initialize",
                json!({"protocolVersion": asked, "capabilities": {}}),
            ));
            assert_eq!(r.outcome.unwrap()["protocolVersion"], want);
        }
        let r = s.handle_sync(req("initialize", json!({})));
        assert_eq!(r.outcome.unwrap_err().code, code::INVALID_PARAMS);
        let r = s.handle_sync(req("server/discover", json!({"_meta": {"x": 1}})));
        let v = r.outcome.unwrap();
        assert!(
            v["supportedVersions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == DISCOVER_VERSION)
        );
    }

    #[test]
    fn unknown_method_and_tool() {
        let (s, _) = session();
        let r = s.handle_sync(req("nope", Value::Null));
        assert_eq!(r.outcome.unwrap_err().code, code::METHOD_NOT_FOUND);
        let r = s.handle_sync(req("tools/call", json!({"name": "nope"})));
        let e = r.outcome.unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert!(e.message.contains("detect"), "{}", e.message);
        let r = s.handle_sync(req("tools/call", json!({"name": "detect", "arguments": 3})));
        assert_eq!(r.outcome.unwrap_err().code, code::INVALID_PARAMS);
    }

    #[test]
    fn ping_and_list() {
        let (s, _) = session();
        assert_eq!(
            s.handle_sync(req("ping", json!({"_meta": {}})))
                .outcome
                .unwrap(),
            json!({})
        );
        let v = s
            .handle_sync(req("tools/list", Value::Null))
            .outcome
            .unwrap();
        let tools = v["tools"].as_array().unwrap();
        assert!(tools.len() >= 8);
        for t in tools {
            assert_eq!(t["inputSchema"]["type"], "object", "{t}");
            assert_eq!(t["outputSchema"]["type"], "object", "{t}");
            assert!(
                t["description"].as_str().unwrap().contains("Example"),
                "{}",
                t["name"]
            );
        }
    }

    #[test]
    fn tool_call_runs_on_a_thread_and_answers() {
        let (s, rx) = session();
        s.clone().dispatch(req(
            "tools/call",
            json!({"name": "daemon", "arguments": {"action": "info"}}),
        ));
        let Message::Response(r) = rx.recv().unwrap() else {
            panic!()
        };
        let v = r.outcome.unwrap();
        assert_eq!(v["isError"], false);
        assert_eq!(v["structuredContent"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["content"][0]["type"], "text");
    }
}
