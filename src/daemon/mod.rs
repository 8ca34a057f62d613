//! The per-user daemon: one process that owns a `ProcessManager` and a `ProxyManager` and serves
//! MCP on a Unix socket, so processes and proxies outlive agent sessions.
//!
//! Invariants: at most one daemon per socket (an exclusive `flock` on `<socket>.lock`, held for
//! the daemon's life and released by the kernel even on SIGKILL); the socket directory is 0700
//! and the socket 0600; every connection gets its own thread and at most [`MAX_CLIENTS`] are
//! served; SIGTERM/SIGINT stop every process and proxy and remove the socket. Running proxies are
//! saved to `<state>/proxies.json` on every change and re-created by the next daemon.

pub mod client;
pub mod http;
pub mod remote;

use std::{
    fs,
    io::Write,
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

pub use crate::paths::{socket_path, state_dir};
use serde_json::Value;

use crate::{
    Error, Result,
    mcp::{
        Ctx,
        jsonrpc::{Connection, Message, Response, Side, code},
    },
    paths,
    proxy::{ProxyConfig, ProxyManager},
    supervisor::{ManagerConfig, ProcessManager},
};

/// Most clients served at once; the next one gets an error line and is closed.
pub const MAX_CLIENTS: usize = 100;

/// How to run a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The socket to serve.
    pub socket: PathBuf,
    /// Where the orphan file, `proxies.json` and the log live.
    pub state_dir: PathBuf,
    /// Port of the HTTP face on 127.0.0.1 (`None` = off).
    pub http_port: Option<u16>,
}

impl DaemonOptions {
    /// Options from the environment: [`socket_path`], [`state_dir`], `AGNT_HTTP_PORT`.
    pub fn from_env() -> DaemonOptions {
        DaemonOptions {
            socket: socket_path(),
            state_dir: state_dir(),
            http_port: std::env::var("AGNT_HTTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok()),
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
    paths::private_dir(dir)
        .map_err(|e| Error::io("creating the socket directory", Some(dir.into()), e))?;
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
    paths::private_dir(&opts.state_dir).map_err(|e| {
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
    let pm_config = ManagerConfig {
        state_dir: Some(opts.state_dir.clone()),
        subreaper: true,
        ..ManagerConfig::default()
    };
    let pm = ProcessManager::new(pm_config)?;
    let proxies = ProxyManager::with_screenshot_dir(crate::paths::state_dir().join("screenshots"));
    restore_proxies(&proxies, &opts.state_dir);
    let server = Server::new(
        listener,
        guard,
        pm,
        proxies,
        Some(opts.state_dir.clone()),
        PathBuf::from("/"),
    );
    signal_thread(server.ctx.clone())?;
    let http = match opts.http_port {
        Some(port) => Some(http::serve(server.ctx.clone(), port)?),
        None => None,
    };
    server.accept_loop();
    log::info!("shutting down");
    if let Some(h) = http {
        h.stop();
    }
    server.ctx.shutdown(Duration::from_secs(5));
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

/// A serving daemon: listener, context, guard.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    /// The shared tool context.
    pub ctx: Arc<Ctx>,
    live: LiveConnections,
    _guard: SocketGuard,
}

impl Server {
    /// Wraps a bound listener and the managers into a server.
    pub fn new(
        listener: UnixListener,
        guard: SocketGuard,
        pm: Arc<ProcessManager>,
        proxies: Arc<ProxyManager>,
        state_dir: Option<PathBuf>,
        default_project: PathBuf,
    ) -> Server {
        let socket = guard.socket.clone();
        let mut ctx = Ctx::with_managers(pm, proxies, default_project);
        ctx.socket = Some(socket.clone());
        ctx.state_dir = state_dir;
        let waker = listener.try_clone().ok();
        ctx.on_shutdown = Some(Box::new(move || {
            // Wake the accept loop: shutting a listening socket down makes `accept` fail at once
            // (even when the socket file was deleted); connecting is the fallback.
            let woken = waker
                .as_ref()
                .is_some_and(|l| rustix::net::shutdown(l, rustix::net::Shutdown::Both).is_ok());
            if !woken {
                let _ = UnixStream::connect(&socket);
            }
        }));
        Server {
            listener,
            ctx: Arc::new(ctx),
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
        if live.is_empty() && self.ctx.clients.load(Ordering::SeqCst) == 0 {
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
        while self.ctx.clients.load(Ordering::SeqCst) > 0 {
            if std::time::Instant::now() >= deadline {
                log::warn!(
                    "{} connection(s) did not finish within {timeout:?}",
                    self.ctx.clients.load(Ordering::SeqCst)
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Accepts connections until shutdown is requested; one thread per connection.
    pub fn accept_loop(&self) {
        let mut next_conn: u64 = 0;
        for stream in self.listener.incoming() {
            if self.ctx.shutdown_requested.load(Ordering::SeqCst) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    if self.ctx.shutdown_requested.load(Ordering::SeqCst) {
                        break;
                    }
                    log::warn!("accept: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if self.ctx.clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
                refuse(stream);
                continue;
            }
            self.ctx.clients.fetch_add(1, Ordering::SeqCst);
            let ctx = self.ctx.clone();
            next_conn += 1;
            let key = next_conn;
            if let Ok(closer) = stream.try_clone() {
                self.live.lock().insert(key, closer);
            }
            let live = self.live.clone();
            let spawned = crate::thread::spawn("daemon-conn", 256 * 1024, move || {
                match Connection::unix(stream, Side::Server) {
                    Ok((conn, threads)) => {
                        crate::mcp::serve(conn, ctx.clone());
                        // Every answer is queued by now (or its call is stuck past serve's
                        // bound): wait for the writer to flush them, so a client always gets
                        // the answer to what it asked — `shutdown` included.
                        if let Err(e) = threads.join() {
                            log::debug!("connection ended: {e}");
                        }
                    }
                    Err(e) => log::warn!("connection setup: {e}"),
                }
                live.lock().remove(&key);
                ctx.clients.fetch_sub(1, Ordering::SeqCst);
            });
            if let Err(e) = spawned {
                log::error!("cannot start a connection thread: {e}");
                self.live.lock().remove(&key);
                self.ctx.clients.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn refuse(mut stream: UnixStream) {
    let msg: Message = Response::err(
        None,
        code::INTERNAL_ERROR,
        format!("too many clients (limit {MAX_CLIENTS}); close some and retry"),
    )
    .into();
    let _ = msg.write(&mut stream);
    let _ = stream.flush();
}

/// SIGTERM/SIGINT → shutdown request.
fn signal_thread(ctx: Arc<Ctx>) -> Result<()> {
    let rx = crate::signals::shutdown_signals()?;
    crate::thread::spawn("daemon-signals", crate::thread::SMALL_STACK, move || {
        if let Ok(sig) = rx.recv() {
            log::info!("signal {sig}: shutting down");
            ctx.request_shutdown();
        }
    })
    .map_err(|e| Error::io("starting the signal thread", None, e))?;
    Ok(())
}

/// Re-creates the proxies saved by a previous daemon.
fn restore_proxies(proxies: &ProxyManager, state_dir: &Path) {
    let path = state_dir.join("proxies.json");
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    let list: Vec<Value> = match serde_json::from_str(&text) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("ignoring unreadable {}: {e}", path.display());
            return;
        }
    };
    for p in list {
        let (Some(id), Some(target), Some(project)) = (
            p["id"].as_str(),
            p["target_url"].as_str(),
            p["project"].as_str(),
        ) else {
            continue;
        };
        let mut config = ProxyConfig::new(id, target, project);
        config.port = p["port"].as_u64().and_then(|n| u16::try_from(n).ok());
        if let Some(b) = p["bind_address"].as_str() {
            config.bind_address = b.into();
        }
        if let Some(n) = p["max_log_size"].as_u64() {
            config.max_log_size = n as usize;
        }
        match proxies.start(config) {
            Ok(px) => log::info!("restored proxy {id} on {}", px.url()),
            Err(e) => log::warn!("cannot restore proxy {id}: {e}"),
        }
    }
}

/// A daemon served from a background thread by someone who owns the managers (`agnt up`).
#[derive(Debug)]
pub struct BackgroundHandle {
    ctx: Arc<Ctx>,
    thread: Option<crate::thread::JoinOnDrop<()>>,
}

impl BackgroundHandle {
    /// The socket being served.
    pub fn socket(&self) -> Option<&Path> {
        self.ctx.socket.as_deref()
    }
}

impl Drop for BackgroundHandle {
    fn drop(&mut self) {
        self.ctx.request_shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `pm` and `proxies` on `socket` from a background thread until the handle is dropped
/// (the managers are not shut down: their owner does that). Errors when a daemon already runs.
pub fn serve_in_background(
    socket: &Path,
    pm: Arc<ProcessManager>,
    proxies: Arc<ProxyManager>,
    project: PathBuf,
) -> Result<BackgroundHandle> {
    let (listener, guard) = bind(socket)?;
    let server = Server::new(listener, guard, pm, proxies, None, project);
    let ctx = server.ctx.clone();
    let thread = crate::thread::spawn("daemon-accept", 256 * 1024, move || {
        server.accept_loop();
        server.close_connections(CLOSE_TIMEOUT);
    })
    .map_err(|e| Error::io("starting the accept thread", None, e))?;
    Ok(BackgroundHandle {
        ctx,
        thread: Some(crate::thread::JoinOnDrop::new(thread)),
    })
}

/// For `agnt up`: when no daemon answers on the default socket, serve `pm` and `proxies` there
/// for as long as the returned handle lives, so `agnt mcp`, the CLI and agents see and control
/// the session's processes. When a daemon already runs (or the socket cannot be bound), returns
/// `None` and the session stays private.
pub fn serve_if_no_daemon(
    pm: Arc<ProcessManager>,
    proxies: Arc<ProxyManager>,
    project: PathBuf,
) -> Option<BackgroundHandle> {
    let socket = socket_path();
    if client::probe(&socket, Duration::from_millis(500)).is_some() {
        log::info!(
            "a daemon runs on {}; this session's processes stay private to it",
            socket.display()
        );
        return None;
    }
    match serve_in_background(&socket, pm, proxies, project) {
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
