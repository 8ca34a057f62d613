//! The per-user daemon: one process that owns a `Host` and serves the tools over MCP on a Unix
//! socket, so processes and proxies outlive agent sessions. This module owns the socket, the
//! lock, the accept loop and the facts tools may ask about (socket, clients, shutdown); beside
//! it live the one client type ([`client`]), the stdio bridge ([`bridge`]) and the HTTP face
//! ([`http`]).
//!
//! Invariants: at most one daemon per socket (an exclusive `flock` on `<socket>.lock`, held for
//! the daemon's life and released by the kernel even on SIGKILL); the socket directory is 0700
//! and the socket 0600; every connection gets its own thread and at most [`MAX_CLIENTS`] are
//! served (`AGNT_MAX_CLIENTS`), the next one reads why ([`clients`]) and is closed; SIGTERM/SIGINT stop every process and proxy and remove the socket. Running proxies are
//! saved to `<state>/proxies.json` on every change and re-created by the next daemon.

pub mod bridge;
pub mod client;
pub mod clients;
pub mod http;
mod http_auth;
pub mod peer;

use std::{
    fs,
    io::Write,
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    Error, Result,
    host::{Host, HostOptions, StateDir},
    mcp::{
        Toolbox,
        jsonrpc::{Connection, Message, Response, Side},
    },
    paths,
    tools::ServerInfo,
};

/// Most clients served at once by default; the next one gets an error line and is closed.
pub const MAX_CLIENTS: usize = clients::DEFAULT_MAX_CLIENTS;

/// The client limit: `AGNT_MAX_CLIENTS`, else [`MAX_CLIENTS`].
pub fn max_clients_from_env() -> usize {
    std::env::var("AGNT_MAX_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(MAX_CLIENTS)
}

/// How to run a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The socket to serve.
    pub socket: PathBuf,
    /// Where the orphan file, `proxies.json` and the log live.
    pub state_dir: PathBuf,
    /// Port of the HTTP face on 127.0.0.1 (`None` = off).
    pub http_port: Option<u16>,
    /// Browser origins the HTTP face accepts (`--http-allow-origin`; default none).
    pub http_allow_origins: Vec<String>,
    /// Most socket clients served at once.
    pub max_clients: usize,
}

impl DaemonOptions {
    /// Options from the environment: [`paths::socket_path`], [`paths::state_dir`],
    /// `AGNT_HTTP_PORT`.
    pub fn from_env() -> DaemonOptions {
        DaemonOptions {
            socket: paths::socket_path(),
            state_dir: paths::state_dir(),
            http_port: std::env::var("AGNT_HTTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok()),
            http_allow_origins: Vec::new(),
            max_clients: max_clients_from_env(),
        }
    }
}

/// Holds the single-daemon lock and removes the socket and pid file on drop.
#[derive(Debug)]
pub struct SocketGuard {
    socket: PathBuf,
    _lock: fs::File,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(pid_path(&self.socket));
    }
}

fn sibling(socket: &Path, suffix: &str) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `<socket>.pid`.
pub fn pid_path(socket: &Path) -> PathBuf {
    sibling(socket, ".pid")
}

/// `<socket>.lock`: held by the live daemon.
pub fn lock_path(socket: &Path) -> PathBuf {
    sibling(socket, ".lock")
}

/// `<socket>.startup.lock`: held by a client while it starts a daemon.
pub fn startup_lock_path(socket: &Path) -> PathBuf {
    sibling(socket, ".startup.lock")
}

/// Takes the daemon lock and binds the socket (0600), cleaning a stale one. Errors when another
/// daemon holds the lock.
pub fn bind(socket: &Path) -> Result<(UnixListener, SocketGuard)> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    paths::secure_runtime_dir(dir)?;
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(socket))
        .map_err(|e| Error::io("opening the daemon lock", Some(lock_path(socket)), e))?;
    // A live daemon holds the lock and answers: refuse. A daemon that is shutting down holds the
    // lock but no longer answers: wait for it to finish (bounded) instead of failing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rustix::fs::flock(
        &lock_file,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .is_err()
    {
        let answering = client::probe(socket, Duration::from_millis(500)).is_some();
        if answering || std::time::Instant::now() >= deadline {
            let pid = fs::read_to_string(pid_path(socket)).unwrap_or_default();
            return Err(Error::Other(format!(
                "an agnt daemon is already running on {} (pid {}); stop it with `agnt daemon stop`",
                socket.display(),
                pid.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if socket.exists() {
        // We hold the lock, so whoever made this socket is gone.
        log::info!("removing stale socket {}", socket.display());
        let _ = fs::remove_file(socket);
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| Error::io("binding the daemon socket", Some(socket.into()), e))?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("setting socket permissions", Some(socket.into()), e))?;
    let _ = fs::write(pid_path(socket), format!("{}\n", std::process::id()));
    Ok((
        listener,
        SocketGuard {
            socket: socket.to_path_buf(),
            _lock: lock_file,
        },
    ))
}

/// Runs a daemon in the foreground until SIGTERM/SIGINT or a `daemon shutdown` call.
pub fn run(opts: DaemonOptions) -> Result<()> {
    let state = StateDir::new(&opts.state_dir);
    state.create().map_err(|e| {
        Error::io(
            "creating the state directory",
            Some(opts.state_dir.clone()),
            e,
        )
    })?;
    let (listener, guard) = bind(&opts.socket)?;
    log::info!(
        "agnt daemon {} (pid {}) on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        opts.socket.display()
    );
    let host = Arc::new(Host::new(HostOptions::daemon(state)));
    // Start the process manager now: it kills what a crashed daemon left behind.
    host.pm()?;
    host.restore_proxies();
    let server = Server::new(listener, guard, host.clone(), opts.max_clients);
    signal_thread(server.facts.clone())?;
    let http = match opts.http_port {
        Some(port) => {
            let auth = http_auth::HttpAuth::for_socket(&opts.socket, opts.http_allow_origins)?;
            let h = http::serve(
                server.tools.clone(),
                port,
                auth,
                Some(server.facts.clients.clone()),
            )?;
            let _ = server.facts.http.set(h.info.clone());
            Some(h)
        }
        None => None,
    };
    *server.facts.http_port.lock() = http.as_ref().map(|h| h.port);
    server.accept_loop();
    log::info!("shutting down");
    if let Some(h) = http {
        h.stop();
    }
    host.shutdown(Duration::from_secs(5));
    // Answers already queued (the `shutdown` call's own among them) reach their clients before
    // the process exits.
    server.close_connections(CLOSE_TIMEOUT);
    drop(server);
    Ok(())
}

/// How long a stopping daemon waits for its connections to write their last answers.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The live connections of a server, by number: a handle to shut each one's reading side.
type LiveConnections = Arc<parking_lot::Mutex<std::collections::HashMap<u64, UnixStream>>>;

/// The daemon facts tools may ask about: its socket, its clients, and a shutdown request that
/// wakes the accept loop.
#[derive(Debug)]
pub struct DaemonFacts {
    socket: PathBuf,
    clients: Arc<clients::Clients>,
    http_port: parking_lot::Mutex<Option<u16>>,
    shutdown_requested: AtomicBool,
    /// The HTTP face's address and token, once it serves.
    http: std::sync::OnceLock<serde_json::Value>,
    /// A clone of the listener, shut down to wake the accept loop.
    waker: Option<UnixListener>,
}

impl DaemonFacts {
    /// Whether someone asked the daemon to shut down.
    pub fn shutting_down(&self) -> bool {
        self.shutdown_requested.load(Ordering::SeqCst)
    }

    /// Connected clients right now.
    pub fn client_count(&self) -> usize {
        self.clients.count()
    }

    /// Marks the daemon as shutting down and wakes its accept loop.
    pub fn shut_down(&self) {
        self.shutdown_requested.store(true, Ordering::SeqCst);
        // Shutting a listening socket down makes `accept` fail at once (even when the socket
        // file was deleted); connecting is the fallback.
        let woken = self
            .waker
            .as_ref()
            .is_some_and(|l| rustix::net::shutdown(l, rustix::net::Shutdown::Both).is_ok());
        if !woken {
            let _ = UnixStream::connect(&self.socket);
        }
    }
}

impl ServerInfo for DaemonFacts {
    fn socket(&self) -> Option<&Path> {
        Some(&self.socket)
    }
    fn clients(&self) -> usize {
        self.client_count()
    }
    fn client_list(&self) -> Vec<serde_json::Value> {
        self.clients.list()
    }
    fn client_limit(&self) -> Option<usize> {
        Some(self.clients.limit())
    }
    fn http_port(&self) -> Option<u16> {
        *self.http_port.lock()
    }
    fn request_shutdown(&self) -> bool {
        self.shut_down();
        true
    }
    fn http(&self) -> Option<serde_json::Value> {
        self.http.get().cloned()
    }
}

/// A serving daemon: listener, the tools over its host, its facts, its lock.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    /// The tools this server serves.
    pub tools: Arc<Toolbox>,
    /// Socket, clients, shutdown.
    pub facts: Arc<DaemonFacts>,
    live: LiveConnections,
    _guard: SocketGuard,
}

impl Server {
    /// Serves `host`'s tools on a bound listener.
    pub fn new(
        listener: UnixListener,
        guard: SocketGuard,
        host: Arc<Host>,
        max_clients: usize,
    ) -> Server {
        let facts = Arc::new(DaemonFacts {
            socket: guard.socket.clone(),
            clients: Arc::new(clients::Clients::new(max_clients)),
            http_port: parking_lot::Mutex::new(None),
            shutdown_requested: AtomicBool::new(false),
            http: std::sync::OnceLock::new(),
            waker: listener.try_clone().ok(),
        });
        Server {
            listener,
            tools: Arc::new(Toolbox::new(host, facts.clone())),
            facts,
            live: LiveConnections::default(),
            _guard: guard,
        }
    }

    /// Ends every connection gracefully: stops reading (each peer's requests end there), lets
    /// the calls in flight answer and the writers flush everything queued, then returns once
    /// every connection thread is done or `timeout` passed (a peer that never reads cannot hold
    /// the daemon up).
    pub fn close_connections(&self, timeout: Duration) {
        let live: Vec<UnixStream> = self.live.lock().drain().map(|(_, s)| s).collect();
        if live.is_empty() && self.facts.client_count() == 0 {
            return;
        }
        log::info!(
            "closing {} connection(s) after their last answers",
            live.len()
        );
        for s in &live {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
        let deadline = std::time::Instant::now() + timeout;
        while self.facts.client_count() > 0 {
            if std::time::Instant::now() >= deadline {
                log::warn!(
                    "{} connection(s) did not finish within {timeout:?}",
                    self.facts.client_count()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Accepts connections until shutdown is requested; one thread per connection.
    pub fn accept_loop(&self) {
        for stream in self.listener.incoming() {
            if self.facts.shutting_down() {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    if self.facts.shutting_down() {
                        break;
                    }
                    log::warn!("accept: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if let Err(e) = peer::check_same_user(&stream, peer::PeerRole::Client) {
                log::warn!("{e}");
                continue;
            }
            let entry = match self.facts.clients.admit(&stream) {
                Ok(entry) => entry,
                Err(refusal) => {
                    log::warn!(
                        "refusing a client: {} clients connected (limit {})",
                        self.facts.client_count(),
                        self.facts.clients.limit()
                    );
                    refuse(stream, refusal);
                    continue;
                }
            };
            let (tools, facts) = (self.tools.clone(), self.facts.clone());
            let key = entry.key();
            if let Ok(closer) = stream.try_clone() {
                self.live.lock().insert(key, closer);
            }
            let live = self.live.clone();
            // Detached: `live` and `clients` track it; `close_connections` ends it via its socket.
            let spawned = crate::thread::spawn("daemon-conn", 256 * 1024, move || {
                match Connection::unix(stream, Side::Server) {
                    Ok((conn, threads)) => {
                        let stuck =
                            crate::mcp::server::serve_observed(conn, tools, &|m| entry.observe(m));
                        // Every answer is queued by now: wait for the writer to flush them, so a
                        // client always gets the answer to what it asked — `shutdown` included.
                        // A call stuck past serve's bound holds a sender, so the writer would
                        // never end: then wait briefly and close, freeing the client's slot.
                        let ended = if stuck == 0 {
                            threads.join()
                        } else {
                            log::warn!("a client left with {stuck} call(s) stuck; closing it");
                            threads.join_within(Duration::from_secs(2))
                        };
                        if let Err(e) = ended {
                            log::debug!("connection ended: {e}");
                        }
                    }
                    Err(e) => log::warn!("connection setup: {e}"),
                }
                live.lock().remove(&key);
                facts.clients.remove(key);
            });
            if let Err(e) = spawned {
                log::error!("cannot start a connection thread: {e}");
                self.live.lock().remove(&key);
                self.facts.clients.remove(key);
            }
        }
    }
}

/// Sends the refusal and closes: the client reads it as the answer to whatever it sent first.
fn refuse(mut stream: UnixStream, refusal: Response) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let msg: Message = refusal.into();
    let _ = msg.write(&mut stream);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// SIGTERM/SIGINT → shutdown request.
fn signal_thread(facts: Arc<DaemonFacts>) -> Result<()> {
    let rx = crate::signals::shutdown_signals()?;
    // Detached: it only waits for the first signal, for the life of the process.
    crate::thread::spawn("daemon-signals", crate::thread::SMALL_STACK, move || {
        if let Ok(sig) = rx.recv() {
            log::info!("signal {sig}: shutting down");
            facts.shut_down();
        }
    })
    .map_err(|e| Error::io("starting the signal thread", None, e))?;
    Ok(())
}

/// A daemon served from a background thread by someone who owns the managers (`agnt up`).
#[derive(Debug)]
pub struct BackgroundHandle {
    facts: Arc<DaemonFacts>,
    thread: Option<crate::thread::JoinOnDrop<()>>,
}

impl BackgroundHandle {
    /// The socket being served.
    pub fn socket(&self) -> Option<&Path> {
        Some(&self.facts.socket)
    }
}

impl Drop for BackgroundHandle {
    fn drop(&mut self) {
        self.facts.shut_down();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `host`'s tools on `socket` from a background thread until the handle is dropped (the
/// host is not shut down: its owner does that). Errors when a daemon already runs.
pub fn serve_in_background(socket: &Path, host: Arc<Host>) -> Result<BackgroundHandle> {
    let (listener, guard) = bind(socket)?;
    let server = Server::new(listener, guard, host, max_clients_from_env());
    let facts = server.facts.clone();
    let thread = crate::thread::spawn("daemon-accept", 256 * 1024, move || {
        server.accept_loop();
        server.close_connections(CLOSE_TIMEOUT);
    })
    .map_err(|e| Error::io("starting the accept thread", None, e))?;
    Ok(BackgroundHandle {
        facts,
        thread: Some(crate::thread::JoinOnDrop::new(thread)),
    })
}

/// For `agnt up`: when no daemon answers on the default socket, serve `host` there for as long
/// as the returned handle lives, so `agnt mcp`, the CLI and agents see and control the session's
/// processes. When a daemon already runs (or the socket cannot be bound), returns `None` and the
/// session stays private.
pub fn serve_if_no_daemon(host: Arc<Host>) -> Option<BackgroundHandle> {
    let socket = paths::socket_path();
    if client::probe(&socket, Duration::from_millis(500)).is_some() {
        log::info!(
            "a daemon runs on {}; this session's processes stay private to it",
            socket.display()
        );
        return None;
    }
    match serve_in_background(&socket, host) {
        Ok(h) => {
            log::info!("serving this session on {}", socket.display());
            Some(h)
        }
        Err(e) => {
            log::info!("not serving this session on {}: {e}", socket.display());
            None
        }
    }
}
