//! The instrumenting reverse proxy: `ProxyManager` (registry of proxies) and `ProxyServer`
//! (one listening proxy, its traffic log and its page sessions).
//!
//! Each proxy owns one `mio` event loop thread (`event_loop`), which accepts clients and drives
//! each connection (`session`, with `half`, `forward`, `exchange`, `headers`, `answers`): HTTP/1.1
//! forwarded to the target, the agnt script injected into HTML (`inject`), the proxy-owned routes
//! under `/__agnt/` and the page channel (`channel`, `ws`). Other threads talk to the loop only
//! through a bounded crossbeam channel plus a `mio::Waker` (`control`); the loop writes the
//! traffic log (`traffic`) and page sessions (`pages`) under short locks. Page screenshots are
//! written by a per-proxy writer thread (`screenshot`), never the loop. See `LIFECYCLE.md`.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::{Error, Result, registry::Registry};

mod answers;
mod budget;
mod channel;
mod control;
mod deadline;
mod event_loop;
mod exchange;
mod exec;
mod forward;
mod half;
mod headers;
pub mod http;
pub mod inject;
pub mod pages;
pub mod redact;
mod rewrite;
pub mod screenshot;
pub mod script;
mod session;
mod status;
mod target;
pub mod traffic;
mod trust;
pub mod ws;

use budget::Budget;
pub use budget::{fd_limit, fd_reserve};
use control::{Control, Inbox};
pub use deadline::ProxyLimits;
pub use exec::{EXEC_RESULT_BUDGET, ExecOutcome};
pub use screenshot::{FileStore, ScreenshotStore};
pub use script::AGNT_JS;
pub use status::{ManagerStats, ProxyStatus, TlsStatus};
use target::Target;
pub use traffic::LogStats;
pub use trust::MAX_LOG_SIZE;

/// How to start a proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub id: String,
    /// `http://host:port` of the dev server.
    pub target_url: String,
    /// `None` = stable hash port (10000–59999, FNV-1a 32 of `target_url`); `Some(0)` = OS-assigned.
    pub port: Option<u16>,
    /// Default `127.0.0.1`.
    pub bind_address: String,
    /// Traffic log capacity (entries); default 1000.
    pub max_log_size: usize,
    /// Project path that scopes the id.
    pub project: PathBuf,
    /// A client that has started a request head must finish it within this (slowloris guard).
    /// Default 30 s.
    pub header_timeout: Duration,
    /// An idle keep-alive client connection is closed after this. Default 120 s.
    pub idle_timeout: Duration,
    /// Deadlines of exchanges in flight and the bound on HTML held for injection.
    pub limits: ProxyLimits,
    /// Show the user's message panel (floating button) in proxied pages. Default true.
    pub panel: bool,
    /// Where screenshots from the page are written; `None` = the manager's
    /// (`ProxyManagerOptions::screenshot_dir`). With neither, screenshots are refused.
    pub screenshot_dir: Option<PathBuf>,
    /// Host names (besides loopback names and the bind address) that may appear in `Host`:
    /// `name`, `name:port` or `.suffix` (DNS-rebinding defence). Default none.
    pub allowed_hosts: Vec<String>,
    /// Opt-in to a non-loopback `bind_address` (the LAN can reach the dev server). Default false.
    pub allow_lan: bool,
    /// Redact secrets before anything is stored (`redact`; `SECURITY.md`). Default true;
    /// false keeps raw traffic (shown in the status and every `proxylog` answer).
    pub redact: bool,
    /// Names added to the secret-name table for this proxy (`redact-names` in config).
    pub redact_names: Vec<String>,
    /// Verify an `https://` target's certificate (`verify_tls`). `None`: not for loopback
    /// targets (dev certificates are self-signed), yes against the system's roots otherwise.
    pub verify_tls: Option<bool>,
}

impl ProxyConfig {
    /// Defaults: hash port, 127.0.0.1, 1000 entries.
    pub fn new(
        id: impl Into<String>,
        target_url: impl Into<String>,
        project: impl Into<PathBuf>,
    ) -> Self {
        ProxyConfig {
            id: id.into(),
            target_url: target_url.into(),
            port: None,
            bind_address: "127.0.0.1".into(),
            max_log_size: 1000,
            project: project.into(),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            limits: ProxyLimits::default(),
            panel: true,
            screenshot_dir: None,
            allowed_hosts: Vec::new(),
            allow_lan: false,
            redact: true,
            redact_names: Vec::new(),
            verify_tls: None,
        }
    }
}

/// The default port for a target: `10000 + FNV-1a-32(target_url) % 50000`.
pub fn default_port(target_url: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in target_url.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (10000 + h % 50000) as u16
}

/// Filters for a traffic log query (all optional; empty = everything).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub types: Vec<String>,
    pub methods: Vec<String>,
    pub url_pattern: Option<String>,
    pub status_codes: Vec<u16>,
    /// RFC 3339 or relative (`5m`, `30s`, `1h`); a bad value is an `InvalidArgument` error.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only entries with `seq > since_seq`.
    pub since_seq: Option<u64>,
    /// Default 100.
    pub limit: Option<usize>,
}

/// Counters the loop bumps; read by `status`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub total_requests: AtomicU64,
    pub upstream_connects: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub active_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub ws_clients: AtomicU64,
    pub ws_errors: AtomicU64,
    pub bad_requests: AtomicU64,
    pub timeouts: AtomicU64,
    pub injected: AtomicU64,
    /// Connections refused with a 503 because the connection budget was in use.
    pub rejected_connections: AtomicU64,
}

type ExecReply = Sender<std::result::Result<ExecOutcome, String>>;

/// State shared by the handle and the loop thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ProxyConfig,
    pub listen_addr: SocketAddr,
    pub url: String,
    pub target: Target,
    pub log: traffic::TrafficLogger,
    pub pages: pages::PageTracker,
    pub stats: Stats,
    pub running: AtomicBool,
    pub stopping: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    pub restart_count: AtomicU32,
    pub started: Instant,
    pub started_at: SystemTime,
    /// The loop's control channel and waker.
    pub inbox: Arc<Inbox>,
    /// The screenshot writer thread (`None`: no screenshot directory, screenshots refused).
    pub screenshots: Option<screenshot::ScreenshotWriter>,
    pub screenshot_dir: Option<PathBuf>,
    pub pending: Mutex<HashMap<String, ExecReply>>,
    pub exec_seq: AtomicU64,
    /// Descriptors all proxies of the manager may hold (shared).
    pub fds: Arc<Budget>,
    /// Bytes of HTML this proxy may hold for injection.
    pub inject: Arc<Budget>,
    pub thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Allowed hosts, page key, `Via` token.
    pub trust: trust::Trust,
    /// What the user should know about this proxy's reach (a LAN bind).
    pub warning: Option<String>,
}

impl Shared {
    /// Sends a control message and wakes the loop (never called on the loop thread).
    pub(crate) fn send(&self, c: Control) -> bool {
        self.inbox.send(c)
    }
}

/// One listening proxy.
#[derive(Debug)]
pub struct ProxyServer {
    shared: Arc<Shared>,
}

impl ProxyServer {
    fn start(
        config: ProxyConfig,
        opts: &ProxyManagerOptions,
        fds: Arc<Budget>,
    ) -> Result<ProxyServer> {
        let target = Target::parse(&config.target_url, config.verify_tls)?;
        let ip: IpAddr = if config.bind_address.eq_ignore_ascii_case("localhost")
            || config.bind_address.is_empty()
        {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            config.bind_address.parse().map_err(|_| {
                Error::invalid(format!("invalid bind_address {:?}", config.bind_address))
            })?
        };
        let warning = trust::check_start(ip, config.allow_lan, config.max_log_size)?;
        let port = config
            .port
            .unwrap_or_else(|| default_port(&config.target_url));
        let want = SocketAddr::new(ip, port);
        let listener = event_loop::bind(want)?;
        let listen_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading listen address", None, e))?;
        trust::refuse_self_target(target.addr, listen_addr)?;
        let trust = trust::Trust::new(&config.allowed_hosts, config.allow_lan, listen_addr)?;
        if let Some(w) = &warning {
            log::warn!("proxy {}: {w}", config.id);
        }
        let host = if ip.is_unspecified() || ip.is_loopback() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        };
        let url = if ip.is_ipv6() && !ip.is_loopback() {
            format!("http://[{host}]:{}", listen_addr.port())
        } else {
            format!("http://{host}:{}", listen_addr.port())
        };
        let (inbox, ctl_rx) = Inbox::new();
        let screenshot_dir = config
            .screenshot_dir
            .clone()
            .or_else(|| opts.screenshot_dir.clone());
        let screenshots = match &screenshot_dir {
            None => None,
            Some(_) => Some(
                screenshot::ScreenshotWriter::start(
                    format!("shots-{}", listen_addr.port()),
                    opts.screenshot_store
                        .clone()
                        .unwrap_or_else(|| Arc::new(FileStore)),
                    opts.screenshot_queue,
                )
                .map_err(|e| Error::io("starting the screenshot writer thread", None, e))?,
            ),
        };
        let redactor = config
            .redact
            .then(|| Arc::new(redact::Redactor::new(&config.redact_names)));
        let shared = Arc::new(Shared {
            log: traffic::TrafficLogger::with_redactor(
                config.max_log_size.max(1),
                redactor.clone(),
            ),
            inject: Budget::new(config.limits.inject_budget),
            fds,
            config,
            listen_addr,
            url,
            target,
            pages: pages::PageTracker::with_redactor(redactor),
            stats: Stats::default(),
            running: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            last_error: Mutex::new(None),
            restart_count: AtomicU32::new(0),
            started: Instant::now(),
            started_at: SystemTime::now(),
            inbox: Arc::new(inbox),
            screenshots,
            screenshot_dir,
            pending: Mutex::new(HashMap::new()),
            exec_seq: AtomicU64::new(0),
            thread: Mutex::new(None),
            trust,
            warning,
        });
        // The loop publishes its waker before it polls; wait for that so a control message sent
        // right after `start` is never lost.
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(1);
        let sh = shared.clone();
        let name = format!("proxy-{}", listen_addr.port());
        let handle = crate::thread::spawn(name, 512 * 1024, move || {
            event_loop::run_thread(sh, ctl_rx, listener, ready_tx)
        })
        .map_err(|e| Error::io("starting proxy thread", None, e))?;
        *shared.thread.lock() = Some(handle);
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        Ok(ProxyServer { shared })
    }

    fn stop_loop(&self, deadline: Duration) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.send(Control::Stop);
        let handle = self.shared.thread.lock().take();
        if let Some(h) = handle {
            let end = Instant::now() + deadline;
            while !h.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        if let Some(w) = &self.shared.screenshots {
            w.stop(deadline);
        }
        self.shared.running.store(false, Ordering::SeqCst);
    }

    pub fn id(&self) -> &str {
        &self.shared.config.id
    }
    pub fn config(&self) -> &ProxyConfig {
        &self.shared.config
    }
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }
    /// This instance's page-channel key: pages get it in the injected tag, and a `/__agnt/ws`
    /// handshake must carry it as `?key=` (with an Origin this proxy serves).
    pub fn page_key(&self) -> &str {
        &self.shared.trust.key
    }
    /// The warning of a LAN bind (what becomes reachable), if any.
    pub fn warning(&self) -> Option<&str> {
        self.shared.warning.as_deref()
    }
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }
    /// Identity, liveness and counters (see [`ProxyStatus`]).
    pub fn status(&self) -> ProxyStatus {
        let s = &self.shared;
        let st = &s.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStatus {
            id: s.config.id.clone(),
            target_url: s.config.target_url.clone(),
            listen_addr: s.listen_addr.to_string(),
            url: s.url.clone(),
            bind_address: s.config.bind_address.clone(),
            path: s.config.project.clone(),
            running: self.is_running(),
            uptime: format!("{}s", s.started.elapsed().as_secs()),
            uptime_seconds: s.started.elapsed().as_secs(),
            started_at: crate::util::time::rfc3339(s.started_at),
            total_requests: l(&st.total_requests),
            upstream_connects: l(&st.upstream_connects),
            upstream_errors: l(&st.upstream_errors),
            active_connections: l(&st.active_connections),
            total_connections: l(&st.total_connections),
            ws_clients: l(&st.ws_clients),
            ws_errors: l(&st.ws_errors),
            bad_requests: l(&st.bad_requests),
            timeouts: l(&st.timeouts),
            injected: l(&st.injected),
            rejected_connections: l(&st.rejected_connections),
            log_stats: s.log.stats(),
            last_error: s.last_error.lock().clone(),
            restart_count: s.restart_count.load(Ordering::Relaxed),
            auto_restart: true,
            redact: s.log.redacts(),
            redact_names: s.config.redact_names.clone(),
            tls: s.target.tls.as_ref().map(|c| TlsStatus {
                verify: c.verifies(),
            }),
        }
    }
    /// Whether this proxy redacts secrets before storing entries.
    pub fn redacts(&self) -> bool {
        self.shared.log.redacts()
    }
    /// `{entries: [{seq, id, type, timestamp, data:{...}}], count}` in time order.
    pub fn log_query(&self, q: &LogQuery) -> Result<serde_json::Value> {
        self.shared.log.query(q)
    }
    /// Compact summary; `detail` names sections to include in full (errors, http,
    /// performance, interactions, mutations, other), each capped at `limit`.
    pub fn log_summary(
        &self,
        q: &LogQuery,
        detail: &[String],
        limit: usize,
    ) -> Result<serde_json::Value> {
        self.shared.log.summary(q, detail, limit)
    }
    /// The traffic log's counters.
    pub fn log_stats(&self) -> LogStats {
        self.shared.log.stats()
    }
    pub fn log_clear(&self) {
        self.shared.log.clear()
    }
    /// One entry in full (headers and captured bodies); `None` if unknown or dropped.
    pub fn log_get(&self, entry_id: &str) -> Option<serde_json::Value> {
        self.shared.log.get(entry_id)
    }
    /// Page sessions active in the last 5 minutes, counts only.
    pub fn pages_list(&self) -> serde_json::Value {
        self.shared.pages.list()
    }
    pub fn page_get(&self, session_id: &str) -> Option<serde_json::Value> {
        self.shared.pages.get(session_id)
    }
    pub fn page_summary(
        &self,
        session_id: &str,
        detail: &[String],
        limit: usize,
    ) -> Option<serde_json::Value> {
        self.shared.pages.summary(session_id, detail, limit)
    }
    pub fn pages_clear(&self) {
        self.shared.pages.clear()
    }
    /// Runs JS in the most recently active page; blocks the caller (never the event loop)
    /// up to `timeout`. Errors: no page connected, timeout.
    pub fn exec(&self, code: &str, timeout: Duration) -> Result<ExecOutcome> {
        if !self.is_running() {
            return Err(Error::Other(format!(
                "proxy {:?} is not running",
                self.id()
            )));
        }
        let n = self.shared.exec_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("exec-{n}");
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.shared.pending.lock().insert(id.clone(), tx);
        if !self.shared.send(Control::Exec {
            id: id.clone(),
            code: code.to_string(),
        }) {
            self.shared.pending.lock().remove(&id);
            return Err(Error::Other(format!(
                "proxy {:?} is not running",
                self.id()
            )));
        }
        let r = rx.recv_timeout(timeout);
        self.shared.pending.lock().remove(&id);
        match r {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(msg)) => Err(Error::Other(msg)),
            Err(_) => Err(Error::Timeout(format!(
                "no answer from the page to {id} within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Sends one JSON message to every page connected to this proxy (frames excluded); returns
    /// how many pages it reached. Waits up to 2 s for the loop, never blocks it.
    pub fn send_to_pages(&self, msg: &serde_json::Value) -> usize {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.is_running()
            || !self.shared.send(Control::Broadcast {
                text: msg.to_string(),
                reply: tx,
            })
        {
            return 0;
        }
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or(0)
    }

    /// Test hook: makes the event loop panic so auto-restart can be exercised.
    #[doc(hidden)]
    pub fn debug_panic_loop(&self) -> bool {
        self.shared.send(Control::Panic)
    }
}

impl Drop for ProxyServer {
    /// The last handle gone: stop the loop (without waiting for it).
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.send(Control::Stop);
    }
}

/// What a `ProxyManager` gives every proxy it starts.
#[derive(Clone)]
pub struct ProxyManagerOptions {
    /// Where page screenshots are written (a proxy's `ProxyConfig::screenshot_dir` wins). The
    /// daemon passes `<state dir>/screenshots`. `None` (the default): only proxies whose config
    /// names a directory accept screenshots; the others refuse them with an `error` entry.
    pub screenshot_dir: Option<PathBuf>,
    /// What writes screenshot files, on each proxy's writer thread; default [`FileStore`].
    pub screenshot_store: Option<Arc<dyn ScreenshotStore>>,
    /// Screenshots that may wait for a proxy's writer; more are refused while it is full.
    /// Default [`screenshot::DEFAULT_QUEUE`].
    pub screenshot_queue: usize,
    /// Sees every traffic-log entry of every proxy, with that proxy's config (the host feeds
    /// its incident inbox from it).
    pub tap: Option<EntryTap>,
    /// Sockets all proxies of the manager may hold together (client and upstream sockets);
    /// beyond it new clients get a 503. `None` (the default): the process's descriptor limit
    /// (raised to the hard limit, or lowered by `AGNT_MAX_FDS`, see [`fd_limit`]) minus
    /// [`fd_reserve`] for everything else the process keeps open.
    pub max_connections: Option<usize>,
}

/// Sees a traffic-log entry right after it is logged, on the proxy's event loop thread: it must
/// not block.
pub type EntryTap = Arc<dyn Fn(&ProxyConfig, &Arc<traffic::Entry>) + Send + Sync>;

impl Default for ProxyManagerOptions {
    fn default() -> Self {
        ProxyManagerOptions {
            screenshot_dir: None,
            screenshot_store: None,
            screenshot_queue: screenshot::DEFAULT_QUEUE,
            tap: None,
            max_connections: None,
        }
    }
}

impl std::fmt::Debug for ProxyManagerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyManagerOptions")
            .field("screenshot_dir", &self.screenshot_dir)
            .field(
                "screenshot_store",
                &self.screenshot_store.as_ref().map(|_| ".."),
            )
            .field("screenshot_queue", &self.screenshot_queue)
            .field("tap", &self.tap.as_ref().map(|_| ".."))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The registry of proxies.
#[derive(Debug)]
pub struct ProxyManager {
    proxies: Registry<String, Arc<ProxyServer>>,
    total_started: AtomicU64,
    shutting_down: AtomicBool,
    options: ProxyManagerOptions,
    /// The connection budget every proxy of this manager draws from.
    fds: Arc<Budget>,
}

impl ProxyManager {
    /// A manager with default options: no screenshot directory (see
    /// [`ProxyManagerOptions::screenshot_dir`]).
    pub fn new() -> Arc<ProxyManager> {
        ProxyManager::with_options(ProxyManagerOptions::default())
    }

    /// A manager whose proxies write page screenshots under `dir` (other options default).
    pub fn with_screenshot_dir(dir: PathBuf) -> Arc<ProxyManager> {
        ProxyManager::with_options(ProxyManagerOptions {
            screenshot_dir: Some(dir),
            ..ProxyManagerOptions::default()
        })
    }

    /// A manager with the given options.
    pub fn with_options(options: ProxyManagerOptions) -> Arc<ProxyManager> {
        let fds = options.max_connections.unwrap_or_else(|| {
            let limit = fd_limit();
            limit.saturating_sub(fd_reserve(limit))
        });
        Arc::new(ProxyManager {
            fds: Budget::new(fds),
            proxies: Registry::new(),
            total_started: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            options,
        })
    }
    /// `AlreadyExists` for a duplicate id; `PortInUse` naming the port; `InvalidArgument` for a bad URL.
    pub fn start(&self, config: ProxyConfig) -> Result<Arc<ProxyServer>> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        if config.id.is_empty() {
            return Err(Error::invalid("proxy id must not be empty"));
        }
        if self.proxies.get(&config.id).is_some() {
            return Err(Error::AlreadyExists {
                kind: "proxy",
                id: config.id,
            });
        }
        let id = config.id.clone();
        let p = Arc::new(ProxyServer::start(config, &self.options, self.fds.clone())?);
        if let Some(tap) = &self.options.tap {
            let (tap, config) = (tap.clone(), p.config().clone());
            p.shared.log.set_tap(Box::new(move |e| tap(&config, e)));
        }
        if self.proxies.insert_new(id.clone(), p.clone()).is_err() {
            p.stop_loop(Duration::from_secs(5));
            return Err(Error::AlreadyExists { kind: "proxy", id });
        }
        self.total_started.fetch_add(1, Ordering::Relaxed);
        Ok(p)
    }
    pub fn stop(&self, id: &str) -> Result<()> {
        let p = self.get(id)?;
        p.stop_loop(Duration::from_secs(5));
        self.proxies.remove(p.id());
        Ok(())
    }
    /// Stops and starts again on the same port with the same config.
    pub fn restart(&self, id: &str) -> Result<Arc<ProxyServer>> {
        let p = self.get(id)?;
        let mut config = p.config().clone();
        config.port = Some(p.listen_addr().port());
        p.stop_loop(Duration::from_secs(5));
        self.proxies.remove(p.id());
        self.start(config)
    }
    /// Exact id, else a unique match on a `:`-separated component; `NotFound` lists known ids.
    pub fn get(&self, id: &str) -> Result<Arc<ProxyServer>> {
        if let Some(p) = self.proxies.get(id) {
            return Ok(p);
        }
        let all = self.sorted();
        let matches: Vec<_> = all
            .iter()
            .filter(|p| p.id().split(':').any(|c| c == id))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound {
                kind: "proxy",
                id: id.to_string(),
                known: all.iter().map(|p| p.id().to_string()).collect(),
            }),
            many => Err(Error::invalid(format!(
                "proxy id {id:?} is ambiguous: {}",
                many.iter().map(|p| p.id()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
    /// Every proxy, by id.
    fn sorted(&self) -> Vec<Arc<ProxyServer>> {
        let mut v = self.proxies.values();
        v.sort_by(|a, b| a.id().cmp(b.id()));
        v
    }
    /// Proxies of one project (`Some`) or all (`None`).
    pub fn list(&self, project: Option<&Path>) -> Vec<Arc<ProxyServer>> {
        self.proxies
            .values()
            .into_iter()
            .filter(|p| project.is_none_or(|pr| p.config().project == pr))
            .collect()
    }
    /// Stops every proxy; idempotent.
    pub fn shutdown(&self, deadline: Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let all = self.sorted();
        for p in &all {
            p.shared.stopping.store(true, Ordering::SeqCst);
            p.shared.send(Control::Stop);
        }
        for p in all {
            p.stop_loop(deadline);
            self.proxies.remove(p.id());
        }
    }
    /// Running proxies and proxies ever started.
    pub fn stats(&self) -> ManagerStats {
        ManagerStats {
            active: self.sorted().iter().filter(|p| p.is_running()).count(),
            total_started: self.total_started.load(Ordering::Relaxed),
            connection_budget: self.fds.limit(),
            connections_held: self.fds.used(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_port_is_stable_and_in_range() {
        let p = default_port("http://localhost:3000");
        assert_eq!(p, default_port("http://localhost:3000"));
        assert!((10000..60000).contains(&p));
        assert_ne!(p, default_port("http://localhost:3001"));
    }
}
