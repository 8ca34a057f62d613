//! The one client of the daemon socket, used by the stdio bridge, the CLI and `agnt up`:
//! connect, check the daemon's version, start a detached daemon under a lock when none answers,
//! send MCP requests and wait for their answers. [`Client::in_process`] is the same client over
//! a handler served in this process (`agnt up` without a daemon). Failures the callers branch on are variants of
//! `Error` (`DaemonClosed`, `VersionMismatch`, `Daemon`), never matched by their text.

use std::{
    fs,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::RecvTimeoutError;
use serde_json::{Value, json};

use super::{
    clients::{CLIENT_META, TOO_MANY_CLIENTS, kind_of_argv},
    startup_lock_path,
};
use crate::{
    Error, Result,
    host::StateDir,
    mcp::{
        jsonrpc::{Connection, IoThreads, Message, Request, RequestId, Side},
        server::{Handler, PROJECT_META},
    },
};

/// How long a client waits for a daemon it started.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the daemon with request/response helpers.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    threads: Option<IoThreads>,
    /// In process: the thread serving the other end (it ends once `conn` is dropped).
    server: Option<crate::thread::JoinOnDrop<()>>,
    next_id: i64,
    /// The project sent with every tool call.
    pub project: PathBuf,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(t) = self.threads.take() {
            t.detach();
        }
        if let Some(server) = self.server.take() {
            // Closing our end ends the server loop; it cancels the calls still waiting.
            let (sender, _) = crossbeam_channel::unbounded();
            drop(std::mem::replace(&mut self.conn.sender, sender));
            server.join();
        }
    }
}

impl Client {
    /// Connects to a daemon socket (no version check: see [`Client::connect_checked`]).
    pub fn connect(socket: &Path, project: PathBuf) -> Result<Client> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| Error::io("connecting to the agnt daemon", Some(socket.into()), e))?;
        super::peer::check_same_user(&stream, super::peer::PeerRole::Daemon)?;
        let (conn, threads) = Connection::unix(stream, Side::Client)
            .map_err(|e| Error::io("socket setup", None, e))?;
        Ok(Client {
            conn,
            threads: Some(threads),
            server: None,
            next_id: 1,
            project,
        })
    }

    /// A client of `handler` served in this process over [`Connection::memory`] by a thread of
    /// its own (joined when the client is dropped): the same calls as over the socket, with no
    /// daemon (`agnt up` without one).
    pub fn in_process(handler: Arc<dyn Handler>, project: PathBuf) -> Result<Client> {
        let (conn, theirs) = Connection::memory();
        let server = crate::thread::spawn("agnt-in-process", 256 * 1024, move || {
            crate::mcp::serve(theirs, handler)
        })
        .map_err(|e| Error::io("starting an in-process server", None, e))?;
        Ok(Client {
            conn,
            threads: None,
            server: Some(crate::thread::JoinOnDrop::new(server)),
            next_id: 1,
            project,
        })
    }

    /// A version-checked connection: the running daemon if one answers, else a freshly started
    /// one. A daemon of another version is an error ([`Error::VersionMismatch`]), never
    /// replaced behind the user's back.
    pub fn connect_checked(socket: &Path, project: PathBuf) -> Result<Client> {
        let fast = Client::connect(socket, project.clone()).and_then(|mut c| {
            c.check_version()?;
            Ok(c)
        });
        match fast {
            Ok(c) => Ok(c),
            Err(e @ Error::VersionMismatch { .. }) => Err(e),
            // The daemon answered, and said it is full: starting another cannot help.
            Err(e) if is_refusal(&e) => Err(e),
            Err(_) => {
                ensure_daemon(socket)?;
                let mut c = Client::connect(socket, project)?;
                c.check_version()?;
                Ok(c)
            }
        }
    }

    /// The raw connection (the bridge forwards the agent's messages over it). Requests this
    /// client makes itself carry string ids starting with [`OWN_ID_PREFIX`].
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Sends a request and waits for its response (`None` timeout = forever); other messages
    /// that arrive meanwhile are dropped.
    pub fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let id = RequestId::Str(format!("{OWN_ID_PREFIX}{}", self.next_id));
        self.next_id += 1;
        let mut params = params;
        announce(&mut params);
        self.conn
            .sender
            .send(
                Request {
                    id: id.clone(),
                    method: method.into(),
                    params,
                }
                .into(),
            )
            .map_err(|_| Error::DaemonClosed)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let msg = match deadline {
                Some(d) => self.conn.receiver.recv_deadline(d).map_err(|e| match e {
                    RecvTimeoutError::Timeout => {
                        Error::Timeout(format!("no answer to {method} from the agnt daemon"))
                    }
                    RecvTimeoutError::Disconnected => Error::DaemonClosed,
                })?,
                None => self.conn.receiver.recv().map_err(|_| Error::DaemonClosed)?,
            };
            // A null-id error answers a request the daemon could not take (a refused client
            // reads the reason this way): it is ours, whichever request we are waiting for.
            if let Message::Response(r) = msg
                && (r.id.as_ref() == Some(&id) || (r.id.is_none() && r.outcome.is_err()))
            {
                return r.outcome.map_err(|e| Error::Daemon {
                    code: e.code,
                    message: e.message,
                });
            }
        }
    }

    /// Checks the daemon's version against ours; the error tells the user what to do.
    pub fn check_version(&mut self) -> Result<Value> {
        let v = self.request("server/discover", json!({}), Some(Duration::from_secs(5)))?;
        let theirs = v["serverInfo"]["version"].as_str().unwrap_or("unknown");
        if theirs != env!("CARGO_PKG_VERSION") {
            return Err(Error::VersionMismatch {
                theirs: theirs.to_string(),
            });
        }
        Ok(v)
    }

    /// Calls a tool; returns the `CallToolResult`.
    pub fn call_tool(&mut self, name: &str, args: Value) -> Result<Value> {
        self.call_tool_within(name, args, None)
    }

    /// Calls a tool, waiting at most `timeout` for the answer (`None` = forever).
    pub fn call_tool_within(
        &mut self,
        name: &str,
        args: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let params =
            json!({"name": name, "arguments": args, "_meta": {PROJECT_META: self.project}});
        self.request("tools/call", params, timeout)
    }
}

/// Prefix of the ids of requests a [`Client`] makes itself (never an agent's).
pub const OWN_ID_PREFIX: &str = "agnt-client-";

/// Whether a daemon answers on `socket` (within `timeout`); returns its discover result (`Null`
/// from a daemon that refused us because it is full: it is alive all the same).
pub fn probe(socket: &Path, timeout: Duration) -> Option<Value> {
    let mut c = Client::connect(socket, PathBuf::from("/")).ok()?;
    match c.request("server/discover", json!({}), Some(timeout)) {
        Ok(v) => Some(v),
        Err(e) if is_refusal(&e) => Some(Value::Null),
        Err(_) => None,
    }
}

/// Whether `e` is a daemon's "too many clients" refusal.
pub fn is_refusal(e: &Error) -> bool {
    matches!(e, Error::Daemon { code, .. } if *code == TOO_MANY_CLIENTS)
}

/// Stamps the kind of this process's client (`cli`, `bridge`, `up`) into a request's `_meta`,
/// so `daemon info` can say who is connected; another program embedding the client says nothing.
fn announce(params: &mut Value) {
    static KIND: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    let Some(kind) = *KIND.get_or_init(|| kind_of_argv(&std::env::args().collect::<Vec<_>>()))
    else {
        return;
    };
    if params.is_null() {
        *params = json!({});
    }
    if let Some(obj) = params.as_object_mut()
        && let Some(meta) = obj
            .entry("_meta")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        meta.entry(CLIENT_META).or_insert_with(|| kind.into());
    }
}

/// The project of this process: `AGNT_PROJECT_PATH`, else the current directory.
pub fn caller_project() -> PathBuf {
    if let Some(p) = std::env::var_os("AGNT_PROJECT_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// Makes sure a daemon answers on `socket`, starting one (detached) if needed. A lock file makes
/// concurrent callers start exactly one.
pub fn ensure_daemon(socket: &Path) -> Result<()> {
    ensure_daemon_with(socket, &[])
}

/// [`ensure_daemon`], passing `extra` arguments to a daemon it starts (`--http-port N`, …).
pub fn ensure_daemon_with(socket: &Path, extra: &[String]) -> Result<()> {
    if probe(socket, Duration::from_secs(2)).is_some() {
        return Ok(());
    }
    let dir = socket.parent().unwrap_or(Path::new("/"));
    crate::paths::secure_runtime_dir(dir)?;
    let lock_path = startup_lock_path(socket);
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("opening the startup lock", Some(lock_path.clone()), e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io("taking the startup lock", Some(lock_path), e.into()))?;
    // Someone else may have started it while we waited for the lock.
    if probe(socket, Duration::from_secs(2)).is_some() {
        return Ok(());
    }
    spawn_detached(socket, extra)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if probe(socket, Duration::from_millis(500)).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Timeout(format!(
        "the agnt daemon did not answer on {} within {}s; see its log {}",
        socket.display(),
        START_TIMEOUT.as_secs(),
        StateDir::from_env().daemon_log().display()
    )))
}

/// Starts `agnt daemon start --foreground --socket S` in its own process group, stdin/stdout on
/// /dev/null and stderr appended to `<state>/daemon.log`.
fn spawn_detached(socket: &Path, extra: &[String]) -> Result<()> {
    use std::process::Stdio;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the agnt binary", None, e))?;
    let state = StateDir::from_env();
    let _ = state.create();
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.daemon_log())
        .map_err(|e| Error::io("opening the daemon log", Some(state.daemon_log()), e))?;
    // Its own process group: a Ctrl+C aimed at the agent's group does not reach the daemon.
    let mut child = crate::supervisor::spawn::command(&exe)
        .args(["daemon", "start", "--foreground", "--socket"])
        .arg(socket)
        .args(extra)
        .env("AGNT_STATE_DIR", state.root())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env_remove("AGNT_PROJECT_PATH")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| Error::Spawn {
            program: exe.display().to_string(),
            source: e,
        })?;
    // Detached: it only reaps the daemon if it exits while we live; it normally outlives us.
    let _ = crate::thread::spawn("daemon-reaper", crate::thread::SMALL_STACK, move || {
        child.wait()
    });
    Ok(())
}
