//! The application core: one [`Host`] owns the [`ProcessManager`], the [`ProxyManager`] and the
//! [`StateDir`], and is what every face (MCP over the daemon socket or stdio, the CLI through
//! the daemon, `agnt up`, the HTTP face) ultimately drives through the tool table.
//!
//! Programs that embed the whole stack start here with [`Host::new`]; programs that only
//! supervise processes use [`ProcessManager`] directly. The host knows nothing of MCP, sockets
//! or terminals.
//!
//! The host also owns the browsers it drives (`browser`: Chromium over a debugging pipe), and
//! the incident inbox and the push channel (`incidents`, `channel`), fed by
//! hooks it installs on its managers when it creates them (`feed`).

pub mod browser;
pub mod channel;
pub mod feed;
pub mod incidents;
pub mod state;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub use feed::Feeds;
pub use state::{SavedProxy, StateDir};

use crate::{
    Error, Result,
    proxy::{ProxyConfig, ProxyManager, ProxyManagerOptions},
    supervisor::{ManagerConfig, ProcessManager},
};

/// How a [`Host`] keeps state on disk.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Project of calls that name none.
    pub default_project: PathBuf,
    /// Where saved exec results, screenshots and (when `persist_proxies`) proxies go; `None`:
    /// the user's state directory for files, nothing persisted.
    pub state: Option<StateDir>,
    /// Directory of the orphan file (live process groups, killed by the next host after a
    /// crash); `None` = no orphan tracking.
    pub orphans: Option<PathBuf>,
    /// Save running proxies on every change and let [`Host::restore_proxies`] re-create them.
    pub persist_proxies: bool,
    /// Become the child subreaper (Linux), so grandchildren cannot escape.
    pub subreaper: bool,
}

impl HostOptions {
    /// The per-user daemon: orphans tracked and proxies saved in `state`.
    pub fn daemon(state: StateDir) -> HostOptions {
        HostOptions {
            default_project: PathBuf::from("/"),
            orphans: Some(state.daemon_orphans()),
            state: Some(state),
            persist_proxies: true,
            subreaper: true,
        }
    }

    /// A foreground `agnt up` session of `project`: orphans tracked per project, nothing saved.
    pub fn session(project: PathBuf) -> HostOptions {
        let state = StateDir::from_env();
        HostOptions {
            orphans: Some(state.session_orphans(&project)),
            default_project: project,
            state: Some(state),
            persist_proxies: false,
            subreaper: true,
        }
    }

    /// `agnt mcp --standalone` and tests: everything in memory, dies with the process.
    pub fn standalone(project: PathBuf) -> HostOptions {
        HostOptions {
            default_project: project,
            ..HostOptions::default()
        }
    }
}

/// The application core (see the module docs). Managers start on first use.
#[derive(Debug)]
pub struct Host {
    opts: HostOptions,
    state: StateDir,
    pm: OnceLock<Arc<ProcessManager>>,
    /// Held while the process manager is built, so racing first uses build one, not two (a
    /// second would re-read and rewrite the orphan file behind the first one's back).
    pm_init: parking_lot::Mutex<()>,
    proxies: OnceLock<Arc<ProxyManager>>,
    started: Instant,
    calls: AtomicU64,
    feeds: Feeds,
    browsers: browser::BrowserManager,
}

impl Host {
    /// A host with these options; nothing starts until first used.
    pub fn new(opts: HostOptions) -> Host {
        Host {
            state: opts.state.clone().unwrap_or_else(StateDir::from_env),
            opts,
            pm: OnceLock::new(),
            pm_init: parking_lot::Mutex::new(()),
            proxies: OnceLock::new(),
            started: Instant::now(),
            calls: AtomicU64::new(0),
            feeds: Feeds::default(),
            browsers: browser::BrowserManager::default(),
        }
    }

    /// A standalone host for tests (no orphan tracking, nothing persisted).
    pub fn for_tests() -> Arc<Host> {
        Arc::new(Host::new(HostOptions::standalone(std::env::temp_dir())))
    }

    /// The process manager, created on first use.
    pub fn pm(&self) -> Result<&Arc<ProcessManager>> {
        if let Some(pm) = self.pm.get() {
            return Ok(pm);
        }
        let _building = self.pm_init.lock();
        if let Some(pm) = self.pm.get() {
            return Ok(pm);
        }
        let config = ManagerConfig {
            state_dir: self.opts.orphans.clone(),
            subreaper: self.opts.subreaper,
            ..ManagerConfig::default()
        };
        let pm = ProcessManager::new(config)
            .map_err(|e| Error::Other(format!("cannot start the process manager: {e}")))?;
        // The hook goes on before the manager is published.
        let feeds = self.feeds.clone();
        pm.on_exit(Arc::new(move |p, failed| feeds.on_exit(p, failed)));
        Ok(self.pm.get_or_init(|| pm))
    }

    /// The process manager if it exists already.
    pub fn pm_if_started(&self) -> Option<&Arc<ProcessManager>> {
        self.pm.get()
    }

    /// The proxy manager, created on first use.
    pub fn proxies(&self) -> &Arc<ProxyManager> {
        self.proxies.get_or_init(|| {
            let feeds = self.feeds.clone();
            ProxyManager::with_options(ProxyManagerOptions {
                screenshot_dir: Some(self.state.screenshots()),
                tap: Some(Arc::new(move |cfg, e| feeds.on_entry(cfg, e))),
                ..ProxyManagerOptions::default()
            })
        })
    }

    /// The proxy manager if it exists already.
    pub fn proxies_if_started(&self) -> Option<&Arc<ProxyManager>> {
        self.proxies.get()
    }

    /// The browsers this host drives.
    pub fn browsers(&self) -> &browser::BrowserManager {
        &self.browsers
    }

    /// The incident inbox and the push channel, with the feeds that fill them.
    pub fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    /// The state directory (files are written there even when nothing is persisted).
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The project of calls that name none.
    pub fn default_project(&self) -> &Path {
        &self.opts.default_project
    }

    /// Whether this host saves its proxies (a daemon).
    pub fn persists_proxies(&self) -> bool {
        self.opts.persist_proxies
    }

    /// How long this host has existed.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Counts one tool call.
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Tool calls served.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Saves the running proxies (a no-op unless this host persists them).
    pub fn save_proxies(&self) {
        let Some(proxies) = self.proxies.get().filter(|_| self.opts.persist_proxies) else {
            return;
        };
        let list: Vec<SavedProxy> = proxies
            .list(None)
            .iter()
            .filter(|p| p.is_running())
            .map(|p| {
                let c = p.config();
                SavedProxy {
                    id: c.id.clone(),
                    target_url: c.target_url.clone(),
                    port: p.listen_addr().port(),
                    bind_address: c.bind_address.clone(),
                    max_log_size: c.max_log_size,
                    project: c.project.clone(),
                    allowed_hosts: c.allowed_hosts.clone(),
                    allow_lan: c.allow_lan,
                    redact: c.redact,
                    redact_names: c.redact_names.clone(),
                    limits: c.limits,
                    verify_tls: c.verify_tls,
                }
            })
            .collect();
        if let Err(e) = self.state.save_proxies(&list) {
            log::warn!("cannot save proxies: {e}");
        }
    }

    /// Re-creates the proxies a previous daemon saved (a no-op unless this host persists them).
    pub fn restore_proxies(&self) {
        if !self.opts.persist_proxies {
            return;
        }
        for saved in self.state.load_proxies() {
            let mut config = ProxyConfig::new(&saved.id, &saved.target_url, &saved.project);
            config.port = Some(saved.port);
            config.bind_address = saved.bind_address;
            config.max_log_size = saved.max_log_size;
            config.allowed_hosts = saved.allowed_hosts;
            config.allow_lan = saved.allow_lan;
            config.redact = saved.redact;
            config.redact_names = saved.redact_names;
            config.limits = saved.limits;
            config.verify_tls = saved.verify_tls;
            match self.proxies().start(config) {
                Ok(px) => log::info!("restored proxy {} on {}", saved.id, px.url()),
                Err(e) => log::warn!("cannot restore proxy {}: {e}", saved.id),
            }
        }
    }

    /// Stops every process and proxy (bounded by `deadline`); idempotent.
    pub fn shutdown(&self, deadline: Duration) {
        self.browsers.shutdown();
        if let Some(p) = self.proxies.get() {
            p.shutdown(deadline);
        }
        if let Some(pm) = self.pm.get() {
            pm.shutdown(deadline);
        }
    }
}
