//! Browsers agnt drives itself: one headless (or headed) Chromium per proxy, spoken to over
//! `--remote-debugging-pipe` ([`cdp`]) so no TCP debugging port exists. [`BrowserManager`] is
//! the registry; [`Browser`] owns one Chromium (its process group, a waiter thread, the CDP
//! reader thread, a throwaway or persistent profile) and one page session; the page actions
//! (navigate, click, screenshot, …) are in `page.rs`.
//!
//! Chromium is a child like any other: started through `supervisor::spawn::command` in its own
//! process group, carrying the supervisor's marker (so a crashed daemon's successor kills it),
//! and closed — gracefully, then by SIGKILL to its group — by `stop`, by its proxy's stop and
//! by host shutdown. It knows nothing of tools or MCP.

pub mod cdp;
pub mod diff;
mod events;
mod page;
pub mod png;
pub mod snapshot;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use serde_json::{Value, json};

pub use events::PageEvents;
pub use page::{Png, Shot, Target, Viewport, WaitFor, png_size};

use self::cdp::Cdp;
use crate::{
    supervisor::{procfs, spawn},
    thread::JoinOnDrop,
};

/// Names Chromium goes by on `PATH`, in the order they are tried.
pub const BINARY_NAMES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// The environment variable naming the browser binary.
pub const BROWSER_VAR: &str = "AGNT_BROWSER";

/// What to start.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Browser id.
    pub id: String,
    /// The caller's project.
    pub project: PathBuf,
    /// The proxy the browser's pages go through.
    pub proxy_id: Option<String>,
    /// The first page (the caller loads it with [`Browser::navigate`]).
    pub url: String,
    /// Headless (the default) or a visible window.
    pub headless: bool,
    /// Explicit binary (else `AGNT_BROWSER`, else `PATH`).
    pub binary: Option<PathBuf>,
    /// The profile directory.
    pub profile: PathBuf,
    /// Remove the profile when the browser closes.
    pub throwaway: bool,
    /// Where Chromium's stderr goes.
    pub log: PathBuf,
    /// The supervisor marker the process carries (orphan cleanup by marker).
    pub marker: Option<String>,
}

/// The browsers of a host.
#[derive(Debug, Default)]
pub struct BrowserManager {
    browsers: Mutex<Vec<Arc<Browser>>>,
}

/// One running Chromium and its page.
#[derive(Debug)]
pub struct Browser {
    opts: LaunchOptions,
    binary: PathBuf,
    no_sandbox: bool,
    pid: u32,
    started: Instant,
    cdp: Arc<Cdp>,
    session: String,
    events: Arc<PageEvents>,
    viewport: Mutex<Viewport>,
    exit: Receiver<ExitStatus>,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinOnDrop<()>>>,
}

impl BrowserManager {
    /// Starts a browser; an id already running is an error naming it.
    pub fn start(&self, opts: LaunchOptions) -> Result<Arc<Browser>, String> {
        if self.get(&opts.id).is_some() {
            return Err(format!(
                "browser {:?} is already running (browser status / stop)",
                opts.id
            ));
        }
        let b = Browser::launch(opts)?;
        let mut all = self.browsers.lock();
        if all.iter().any(|o| o.id() == b.id()) {
            drop(all);
            b.close();
            return Err(format!("browser {:?} is already running", b.id()));
        }
        all.push(b.clone());
        Ok(b)
    }

    /// The running browser with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Browser>> {
        self.prune();
        self.browsers.lock().iter().find(|b| b.id() == id).cloned()
    }

    /// The running browser of this proxy.
    pub fn for_proxy(&self, proxy_id: &str) -> Option<Arc<Browser>> {
        self.prune();
        self.browsers
            .lock()
            .iter()
            .find(|b| b.proxy_id() == Some(proxy_id))
            .cloned()
    }

    /// The running browsers (of one project, or all).
    pub fn list(&self, project: Option<&Path>) -> Vec<Arc<Browser>> {
        self.prune();
        self.browsers
            .lock()
            .iter()
            .filter(|b| project.is_none_or(|p| b.opts.project == p))
            .cloned()
            .collect()
    }

    /// Closes and forgets one browser; `None` when no browser has that id.
    pub fn stop(&self, id: &str) -> Option<Arc<Browser>> {
        let b = {
            let mut all = self.browsers.lock();
            let i = all.iter().position(|b| b.id() == id)?;
            all.remove(i)
        };
        b.close();
        Some(b)
    }

    /// Closes the browsers of a proxy (the proxy stopped); returns their ids.
    pub fn stop_for_proxy(&self, proxy_id: &str) -> Vec<String> {
        let gone: Vec<Arc<Browser>> = {
            let mut all = self.browsers.lock();
            let (gone, keep) = all.drain(..).partition(|b| b.proxy_id() == Some(proxy_id));
            *all = keep;
            gone
        };
        gone.iter().for_each(|b| b.close());
        gone.iter().map(|b| b.id().to_string()).collect()
    }

    /// Closes every browser.
    pub fn shutdown(&self) {
        let all: Vec<_> = self.browsers.lock().drain(..).collect();
        all.iter().for_each(|b| b.close());
    }

    /// Forgets browsers that exited on their own (closing what is left of them).
    fn prune(&self) {
        let dead: Vec<Arc<Browser>> = {
            let mut all = self.browsers.lock();
            let (dead, live) = all.drain(..).partition(|b| b.has_exited());
            *all = live;
            dead
        };
        dead.iter().for_each(|b| b.close());
    }
}

/// Finds the browser binary: `explicit`, else `AGNT_BROWSER`, else [`BINARY_NAMES`] on `PATH`.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("binary_path {} is not a file", p.display()))
        };
    }
    if let Some(p) = std::env::var_os(BROWSER_VAR).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{BROWSER_VAR}={} is not a file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in BINARY_NAMES {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "no Chromium found (looked for {} on PATH): install it (Debian/Ubuntu: `sudo apt-get \
         install chromium`; macOS: `brew install --cask chromium`), or pass binary_path, or set \
         {BROWSER_VAR}",
        BINARY_NAMES.join(", ")
    ))
}

impl Browser {
    fn launch(opts: LaunchOptions) -> Result<Arc<Browser>, String> {
        let binary = find_binary(opts.binary.as_deref())?;
        let no_sandbox = rustix::process::geteuid().is_root();
        for dir in [Some(opts.profile.as_path()), opts.log.parent()]
            .into_iter()
            .flatten()
        {
            crate::paths::private_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let log = fs::File::create(&opts.log)
            .map_err(|e| format!("cannot create {}: {e}", opts.log.display()))?;
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| format!("cannot create a pipe: {e}"))
        };
        let (to_read, to_write) = pipe()?;
        let (from_read, from_write) = pipe()?;
        // The pipes arrive as the wrapper shell's stdin/stdout and become Chromium's fds 3/4:
        // this needs no unsafe `pre_exec`.
        let mut cmd = spawn::command("sh");
        cmd.arg("-c")
            .arg(r#"exec "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg("sh")
            .arg(&binary)
            .args(chromium_args(&opts, no_sandbox))
            .stdin(Stdio::from(to_read))
            .stdout(Stdio::from(from_write))
            .stderr(Stdio::from(log));
        if let Some(m) = &opts.marker {
            cmd.env(crate::supervisor::descendants::MARKER_VAR, m);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // The parent's copies of the child's ends close here, so EOF means the browser is gone.
        drop(cmd);
        let pid = child.id();
        // Until the browser is handed over, a failed step kills what was started.
        let abandon = |why: String| {
            let _ = spawn::signal_group(pid, rustix::process::Signal::KILL);
            if let Some(m) = &opts.marker {
                crate::supervisor::descendants::kill_marked(m);
            }
            if opts.throwaway {
                let _ = fs::remove_dir_all(&opts.profile);
            }
            why
        };
        let (exit_tx, exit) = crossbeam_channel::bounded(1);
        let waiter = crate::thread::spawn(
            format!("agnt-browser-{}", opts.id),
            crate::thread::SMALL_STACK,
            move || {
                if let Ok(status) = child.wait() {
                    let _ = exit_tx.try_send(status);
                }
            },
        )
        .map_err(|e| abandon(format!("cannot start a thread: {e}")))?;
        let events = Arc::new(PageEvents::default());
        let sink = events.clone();
        let (cdp, reader) = Cdp::connect(
            fs::File::from(to_write),
            fs::File::from(from_read),
            &opts.id,
            Box::new(move |cdp, method, params, session| {
                sink.on_event(cdp, method, params, session)
            }),
        )
        .map_err(|e| abandon(format!("cannot start a thread: {e}")))?;
        let session = match open_page(&cdp) {
            Ok(s) => s,
            Err(e) => {
                let _ = spawn::signal_group(pid, rustix::process::Signal::KILL);
                let _ = exit.recv_timeout(Duration::from_secs(5));
                let tail = fs::read_to_string(&opts.log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                if opts.throwaway {
                    let _ = fs::remove_dir_all(&opts.profile);
                }
                return Err(format!(
                    "{} did not answer over its debugging pipe: {e}; its last words: {}",
                    binary.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
        };
        let b = Arc::new(Browser {
            binary,
            no_sandbox,
            pid,
            started: Instant::now(),
            cdp,
            session,
            events,
            viewport: Mutex::new(Viewport::default()),
            exit,
            closed: AtomicBool::new(false),
            threads: Mutex::new(vec![JoinOnDrop::new(waiter), reader]),
            opts,
        });
        log::info!("browser {} started (pid {})", b.id(), b.pid);
        // The window's size minus its chrome varies by mode; the emulated viewport does not.
        if let Err(e) = b.resize(Viewport::default()) {
            log::warn!("browser {}: viewport: {e}", b.id());
        }
        Ok(b)
    }

    /// Browser id.
    pub fn id(&self) -> &str {
        &self.opts.id
    }

    /// The proxy its pages go through.
    pub fn proxy_id(&self) -> Option<&str> {
        self.opts.proxy_id.as_deref()
    }

    /// The page session's events (console, dialogs, network).
    pub fn events(&self) -> &PageEvents {
        &self.events
    }

    /// Whether the process has exited.
    pub fn has_exited(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.cdp.is_closed()
    }

    /// What `status` and `list` show.
    pub fn status(&self) -> Value {
        let vp = *self.viewport.lock();
        json!({
            "id": self.id(),
            "proxy_id": self.proxy_id(),
            "running": !self.has_exited(),
            "pid": self.pid,
            "binary": self.binary,
            "headless": self.opts.headless,
            "sandbox": if self.no_sandbox { "off (running as root: Chromium refuses its sandbox as root)" } else { "on" },
            "profile": if self.opts.throwaway { "throwaway".to_string() } else { format!("persistent: {}", self.opts.profile.display()) },
            "debugging": "pipe (no TCP port)",
            "viewport": vp.json(),
            "uptime_s": self.started.elapsed().as_secs(),
            "path": self.opts.project,
        })
    }

    /// Closes the browser: `Browser.close`, then SIGKILL to its group if it lingers, then the
    /// marked stragglers; removes a throwaway profile. Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if !self.cdp.is_closed() {
            self.cdp.send(None, "Browser.close", json!({}));
        }
        if self.exit.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = spawn::signal_group(self.pid, rustix::process::Signal::KILL);
            let _ = self.exit.recv_timeout(Duration::from_secs(5));
        }
        // Helpers that outlive the main process (renderers, zygotes) share its group, and
        // anything that left the group carries the marker.
        let _ = spawn::signal_group(self.pid, rustix::process::Signal::KILL);
        if let Some(m) = &self.opts.marker {
            crate::supervisor::descendants::kill_marked(m);
        }
        // SIGKILL is asynchronous: wait (bounded) until the kernel has taken the group down, so
        // a caller who is told "closed" finds no Chromium process left.
        let deadline = Instant::now() + Duration::from_secs(3);
        while procfs::group_alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.threads.lock().clear();
        if self.opts.throwaway {
            let _ = fs::remove_dir_all(&self.opts.profile);
        }
        log::info!("browser {} closed", self.id());
    }

    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.call_for(method, params, Duration::from_secs(30))
    }

    fn call_for(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        self.cdp.call(Some(&self.session), method, params, timeout)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.close();
    }
}

fn chromium_args(opts: &LaunchOptions, no_sandbox: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--remote-debugging-pipe",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--window-size=1280,800",
    ]
    .map(String::from)
    .to_vec();
    if opts.headless {
        args.extend([
            "--headless".into(),
            "--disable-gpu".into(),
            "--hide-scrollbars".into(),
        ]);
    }
    if no_sandbox {
        args.push("--no-sandbox".into());
    }
    args.push(format!("--user-data-dir={}", opts.profile.display()));
    args.push("about:blank".into());
    args
}

/// Opens the page agnt drives and enables the domains it listens to; returns its session.
fn open_page(cdp: &Cdp) -> Result<String, String> {
    let t = cdp.call(
        None,
        "Target.createTarget",
        json!({"url": "about:blank"}),
        Duration::from_secs(30),
    )?;
    let a = cdp.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": t["targetId"], "flatten": true}),
        Duration::from_secs(10),
    )?;
    let session = a["sessionId"]
        .as_str()
        .ok_or("no sessionId in Target.attachToTarget")?
        .to_string();
    for domain in ["Page", "Runtime", "Network", "Log"] {
        cdp.call(
            Some(&session),
            &format!("{domain}.enable"),
            json!({}),
            Duration::from_secs(10),
        )?;
    }
    Ok(session)
}
