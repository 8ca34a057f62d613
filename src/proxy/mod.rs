//! The instrumenting reverse proxy: `ProxyManager` (registry of proxies) and `ProxyServer`
//! (one listening proxy, its traffic log and its page sessions).
//!
//! Each proxy owns one `mio` event loop thread (`event_loop`), which accepts clients, forwards
//! HTTP/1.1 to the target (`session`), injects the agnt script into HTML (`inject`), serves the
//! proxy-owned routes under `/__agnt/` and the page WebSocket (`ws`). Other threads talk to the
//! loop only through a crossbeam channel plus a `mio::Waker`; the loop writes the traffic log
//! (`traffic`) and page sessions (`pages`) under short locks. See `LIFECYCLE.md` beside this file.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde_json::json;

use crate::{Error, Result, registry::Registry};

mod event_loop;
pub mod http;
pub mod inject;
pub mod pages;
pub mod script;
mod session;
pub mod traffic;
pub mod ws;

pub use script::AGNT_JS;

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
    /// Show the user's message panel (floating button) in proxied pages. Default true.
    pub panel: bool,
    /// Where screenshots from the page are written; `None` = `<state dir>/screenshots`.
    pub screenshot_dir: Option<PathBuf>,
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
            panel: true,
            screenshot_dir: None,
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

/// Result of an `exec` in the page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutcome {
    pub execution_id: String,
    pub success: bool,
    /// The JSON-encoded result value (when `success`).
    pub result: Option<serde_json::Value>,
    /// The JS error message (when not `success`).
    pub error: Option<String>,
    pub duration_ms: u64,
    pub page_id: Option<String>,
}

/// Default budget for an exec result handed to an agent (bytes of JSON).
pub const EXEC_RESULT_BUDGET: usize = 16 * 1024;

impl ExecOutcome {
    /// The outcome as JSON for an agent: a `result` whose JSON is longer than `budget` bytes is
    /// replaced by its first `budget` bytes (as a string) plus a note, and the full result is
    /// written to `<dir>/<execution_id>-<millis>.json`, whose path is returned as
    /// `result_file`. A failed write is reported in the note (the truncated result stays).
    pub fn budgeted(&self, budget: usize, dir: &Path) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        let Some(result) = &self.result else {
            return v;
        };
        let text = result.to_string();
        if text.len() <= budget {
            return v;
        }
        let mut cut = budget.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        v["result"] = json!(&text[..cut]);
        v["result_truncated"] = json!(true);
        v["result_bytes"] = json!(text.len());
        let stamp = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let id: String = self
            .execution_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{id}-{stamp}.json"));
        prune_old_results(dir, Duration::from_secs(24 * 3600));
        let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &text));
        v["note"] = match written {
            Ok(()) => {
                v["result_file"] = json!(path.display().to_string());
                json!(format!(
                    "result is {} bytes, over the {budget}-byte budget: `result` holds the first {cut} bytes of its JSON; the full result is in {}",
                    text.len(),
                    path.display()
                ))
            }
            Err(e) => json!(format!(
                "result is {} bytes, over the {budget}-byte budget: truncated; saving the full result to {} failed: {e}",
                text.len(),
                path.display()
            )),
        };
        v
    }
}

/// Removes saved exec results (`exec-*.json`) at least `age` old from `dir` (best effort).
fn prune_old_results(dir: &Path, age: Duration) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("exec-") && name.ends_with(".json")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Resolved address (IPv4 `127.0.0.1` for `localhost`).
    pub addr: SocketAddr,
    /// `Host` header value sent upstream.
    pub host_header: String,
    /// Host name without port (for cookie `Domain=`).
    pub host: String,
    /// Origins (`http://host:port`) whose `Location`s we rewrite to the proxy.
    pub origins: Vec<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid target_url {url:?}: {why} (expected http://host:port)"
            ))
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad("https targets are not supported yet"));
        } else if url.contains("://") {
            return Err(bad("unsupported scheme"));
        } else {
            url
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty()
            || authority.contains('@')
            || authority
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("missing or bad host"));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or_else(|| bad("bad IPv6 literal"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => 80,
        };
        let addr = if host.eq_ignore_ascii_case("localhost") {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            SocketAddr::new(ip, port)
        } else {
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::invalid(format!("cannot resolve target host {host:?}: {e}")))?
                .collect();
            *addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .ok_or_else(|| bad("host resolves to nothing"))?
        };
        let mut origins = vec![format!("http://{authority}")];
        if port == 80 {
            origins.push(format!("http://{authority}:80"));
        }
        if host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" {
            origins.push(format!("http://localhost:{port}"));
            origins.push(format!("http://127.0.0.1:{port}"));
        }
        origins.sort();
        origins.dedup();
        Ok(Target {
            addr,
            host_header: authority.to_string(),
            host,
            origins,
        })
    }
}

/// Messages from other threads to the loop.
#[derive(Debug)]
pub(crate) enum Control {
    Exec {
        id: String,
        code: String,
    },
    Stop,
    /// Send `text` to every connected top-level page; the number reached goes to `reply`.
    Broadcast {
        text: String,
        reply: Sender<usize>,
    },
    /// Test hook: make the loop panic.
    Panic,
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
    pub ctl_tx: Sender<Control>,
    pub waker: Mutex<Option<Arc<mio::Waker>>>,
    pub pending: Mutex<HashMap<String, ExecReply>>,
    pub exec_seq: AtomicU64,
    pub thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn send(&self, c: Control) -> bool {
        if self.ctl_tx.send(c).is_err() {
            return false;
        }
        match self.waker.lock().as_ref() {
            Some(w) => w.wake().is_ok(),
            None => false,
        }
    }
}

/// One listening proxy.
#[derive(Debug)]
pub struct ProxyServer {
    shared: Arc<Shared>,
}

impl ProxyServer {
    fn start(config: ProxyConfig) -> Result<ProxyServer> {
        let target = Target::parse(&config.target_url)?;
        let ip: IpAddr = if config.bind_address.eq_ignore_ascii_case("localhost")
            || config.bind_address.is_empty()
        {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            config.bind_address.parse().map_err(|_| {
                Error::invalid(format!("invalid bind_address {:?}", config.bind_address))
            })?
        };
        let port = config
            .port
            .unwrap_or_else(|| default_port(&config.target_url));
        let want = SocketAddr::new(ip, port);
        let listener = event_loop::bind(want)?;
        let listen_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading listen address", None, e))?;
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
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            log: traffic::TrafficLogger::new(config.max_log_size.max(1)),
            config,
            listen_addr,
            url,
            target,
            pages: pages::PageTracker::new(),
            stats: Stats::default(),
            running: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            last_error: Mutex::new(None),
            restart_count: AtomicU32::new(0),
            started: Instant::now(),
            started_at: SystemTime::now(),
            ctl_tx,
            waker: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            exec_seq: AtomicU64::new(0),
            thread: Mutex::new(None),
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
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }
    /// Status object: id, target_url, listen_addr, bind_address, running, uptime,
    /// total_requests, upstream_connects, log_stats, last_error, restart_count, ...
    pub fn status(&self) -> serde_json::Value {
        let s = &self.shared;
        let st = &s.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "id": s.config.id,
            "target_url": s.config.target_url,
            "listen_addr": s.listen_addr.to_string(),
            "url": s.url,
            "bind_address": s.config.bind_address,
            "path": s.config.project,
            "running": self.is_running(),
            "uptime": format!("{}s", s.started.elapsed().as_secs()),
            "uptime_seconds": s.started.elapsed().as_secs(),
            "started_at": crate::util::time::rfc3339(s.started_at),
            "total_requests": l(&st.total_requests),
            "upstream_connects": l(&st.upstream_connects),
            "upstream_errors": l(&st.upstream_errors),
            "active_connections": l(&st.active_connections),
            "total_connections": l(&st.total_connections),
            "ws_clients": l(&st.ws_clients),
            "ws_errors": l(&st.ws_errors),
            "bad_requests": l(&st.bad_requests),
            "timeouts": l(&st.timeouts),
            "injected": l(&st.injected),
            "log_stats": s.log.stats(),
            "last_error": *s.last_error.lock(),
            "restart_count": s.restart_count.load(Ordering::Relaxed),
            "auto_restart": true,
        })
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
    /// `{total_entries, available_entries, max_size, dropped}`.
    pub fn log_stats(&self) -> serde_json::Value {
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

/// Sees every traffic-log entry of every proxy the manager starts, with that proxy's config,
/// on the proxy's event loop thread: it must not block.
pub type EntryTap = Arc<dyn Fn(&ProxyConfig, &Arc<traffic::Entry>) + Send + Sync>;

/// The registry of proxies.
#[derive(Debug)]
pub struct ProxyManager {
    proxies: Registry<String, Arc<ProxyServer>>,
    total_started: AtomicU64,
    shutting_down: AtomicBool,
    tap: TapSlot,
}

#[derive(Default)]
struct TapSlot(std::sync::OnceLock<EntryTap>);

impl std::fmt::Debug for TapSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tapped: {}", self.0.get().is_some())
    }
}

impl ProxyManager {
    pub fn new() -> Arc<ProxyManager> {
        Arc::new(ProxyManager {
            proxies: Registry::new(),
            total_started: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            tap: TapSlot::default(),
        })
    }
    /// Installs the entry tap for proxies started from now on (once; later calls are ignored).
    pub fn set_tap(&self, tap: EntryTap) {
        let _ = self.tap.0.set(tap);
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
        let p = Arc::new(ProxyServer::start(config)?);
        if let Some(tap) = self.tap.0.get() {
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
    /// `{active, total_started}`.
    pub fn stats(&self) -> serde_json::Value {
        let active = self.sorted().iter().filter(|p| p.is_running()).count();
        json!({"active": active, "total_started": self.total_started.load(Ordering::Relaxed)})
    }
}

/// Receiver type the loop thread owns.
pub(crate) type ControlRx = Receiver<Control>;

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

    #[test]
    fn exec_results_over_budget_are_cut_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = ExecOutcome {
            execution_id: "exec-7".into(),
            success: true,
            result: Some(json!({"big": "é".repeat(5000)})),
            error: None,
            duration_ms: 1,
            page_id: None,
        };
        let v = o.budgeted(1000, dir.path());
        assert_eq!(v["result_truncated"], true);
        assert!(v["result"].as_str().unwrap().len() <= 1000);
        let file = v["result_file"].as_str().unwrap();
        let full: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(full, o.result.clone().unwrap());
        assert!(v["note"].as_str().unwrap().contains(file));
        // Old results are pruned, other files left alone.
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        prune_old_results(dir.path(), Duration::ZERO);
        assert!(!Path::new(file).exists());
        assert!(dir.path().join("keep.txt").exists());
        o.result = Some(json!(42));
        let v = o.budgeted(1000, dir.path());
        assert_eq!(v["result"], 42);
        assert!(v.get("result_truncated").is_none());
    }

    #[test]
    fn target_parsing() {
        let t = Target::parse("http://localhost:3000/app").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.host_header, "localhost:3000");
        assert!(t.origins.contains(&"http://127.0.0.1:3000".to_string()));
        assert_eq!(Target::parse("127.0.0.1:8080").unwrap().addr.port(), 8080);
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("http://a b:1").is_err());
        assert!(Target::parse("http://localhost:99999").is_err());
    }
}
