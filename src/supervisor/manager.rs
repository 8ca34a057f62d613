//! `ProcessManager`: the registry of processes keyed by (project path, id), the atomic
//! counters, the health thread, the orphan file and shutdown.
//!
//! Registry reads are lock-free (`Registry` over flurry); a start inserts first (so two starts
//! of one id race on the map, not on the OS) and spawns after. `start` replaces a finished
//! (Stopped/Failed) entry of the same id and refuses a live one with `AlreadyExists`.
//! Dropping the manager is an aggressive shutdown: nothing it started outlives it.

use std::{
    os::unix::ffi::OsStrExt,
    path::Path,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;
use rustix::process::Signal;

use super::{
    ManagedProcess, ManagerConfig, ManagerStats, ProcessSpec, StartOutcome, State,
    orphans::OrphanFile, ports, process::Owner, procfs, reaper::Reaper, spawn,
};
use crate::registry::Registry;
use crate::{Error, Result, thread::JoinOnDrop};

/// Deadlines below this are aggressive shutdowns (SIGKILL every group at once).
pub const AGGRESSIVE_BELOW: Duration = Duration::from_secs(3);
/// A process still Starting after this long is marked Failed by the health check.
pub const STARTING_LIMIT: Duration = Duration::from_secs(30);

/// Registry key: project path bytes, a NUL (never in a Unix path), the id.
type Key = Box<[u8]>;

/// State shared by the manager, its processes' waiter threads (as their [`Owner`]) and its
/// helper threads.
struct Shared {
    config: ManagerConfig,
    registry: Registry<Key, Arc<ManagedProcess>>,
    shutting_down: AtomicBool,
    active: AtomicI64,
    total_started: AtomicI64,
    total_failed: AtomicI64,
    seq: AtomicU64,
    orphans: Option<OrphanFile>,
    exit_hooks: Mutex<Vec<ExitHook>>,
    /// Descendants killed by marker outside any managed group, for the reaper (bounded: pids
    /// leave once gone).
    adopted: Mutex<Vec<u32>>,
}

/// Called on the waiter thread when a process's exit is recorded: `(process, failed)`. It must
/// return quickly (it runs before the exit is announced to waiters).
pub type ExitHook = Arc<dyn Fn(&ManagedProcess, bool) + Send + Sync>;

struct Hooks<'a>(&'a [ExitHook]);

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exit hook(s)", self.0.len())
    }
}

/// The registry of processes, keyed by (project, id).
#[derive(Debug)]
pub struct ProcessManager {
    /// Itself, for the threads it starts (port watches).
    me: Weak<ProcessManager>,
    shared: Arc<Shared>,
    health_stop: Mutex<Option<Sender<()>>>,
    health: Mutex<Option<JoinOnDrop<()>>>,
    reaper: Mutex<Option<Reaper>>,
}

impl ProcessManager {
    /// Creates a manager: health thread, optional subreaper, orphan cleanup of a dead owner.
    pub fn new(config: ManagerConfig) -> Result<Arc<ProcessManager>> {
        let orphans = match &config.state_dir {
            Some(dir) => {
                let file = OrphanFile::open(dir, &config.instance)?;
                let killed = file.kill_previous();
                if !killed.is_empty() {
                    log::warn!(
                        "killed {} process group(s) left by a previous manager: {killed:?}",
                        killed.len()
                    );
                }
                file.write(Vec::new);
                Some(file)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            registry: Registry::with_order(|p: &Arc<ManagedProcess>| p.seq()),
            shutting_down: AtomicBool::new(false),
            active: AtomicI64::new(0),
            total_started: AtomicI64::new(0),
            total_failed: AtomicI64::new(0),
            seq: AtomicU64::new(0),
            orphans,
            exit_hooks: Mutex::new(Vec::new()),
            adopted: Mutex::new(Vec::new()),
        });
        let reaper = if shared.config.subreaper {
            let weak = Arc::downgrade(&shared);
            Some(Reaper::start(move || {
                weak.upgrade().map(|s| (s.groups(), s.adopted()))
            })?)
        } else {
            None
        };
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let weak = Arc::downgrade(&shared);
        let period = shared.config.health_period.max(Duration::from_millis(1));
        let health = crate::thread::spawn("agnt-health", crate::thread::SMALL_STACK, move || {
            loop {
                match rx.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => match weak.upgrade() {
                        Some(shared) => shared.health_check(),
                        None => return,
                    },
                    _ => return,
                }
            }
        })
        .map_err(|e| Error::io("starting the health thread", None, e))?;
        let pm = Arc::new_cyclic(|me| ProcessManager {
            me: me.clone(),
            shared,
            health_stop: Mutex::new(Some(tx)),
            health: Mutex::new(Some(JoinOnDrop::new(health))),
            reaper: Mutex::new(reaper),
        });
        pm.install_auto_restart();
        Ok(pm)
    }

    /// Adds a hook called whenever a process's exit is recorded (see [`ExitHook`]).
    pub fn on_exit(&self, hook: ExitHook) {
        self.shared.exit_hooks.lock().push(hook);
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ManagerConfig {
        &self.shared.config
    }

    /// A weak handle on itself.
    pub(super) fn weak(&self) -> Weak<ProcessManager> {
        self.me.clone()
    }

    /// The process groups of every registered process.
    pub(super) fn managed_groups(&self) -> Vec<u32> {
        self.shared.groups()
    }

    /// Registers and starts a process. `AlreadyExists` for a live id; `ShuttingDown`.
    /// A finished process with the same id is replaced. A spawn failure is an error and leaves
    /// the process registered in state Failed.
    pub fn start(&self, spec: ProcessSpec) -> Result<Arc<ManagedProcess>> {
        self.start_inner(spec).map(|(p, _)| p)
    }

    /// Reuses a running id, replaces a finished one, else starts.
    pub fn start_or_reuse(&self, spec: ProcessSpec) -> Result<(Arc<ManagedProcess>, StartOutcome)> {
        loop {
            if let Some(p) = self.get(&spec.project, &spec.id)
                && !p.state().is_terminal()
            {
                return Ok((p, StartOutcome::Reused));
            }
            match self.start_inner(spec.clone()) {
                Err(Error::AlreadyExists { .. }) => continue,
                other => return other,
            }
        }
    }

    /// The process `id` of `project`.
    pub fn get(&self, project: &Path, id: &str) -> Option<Arc<ManagedProcess>> {
        with_key(project, id, |k| self.shared.registry.get(k))
    }

    /// Processes of one project (`Some`) or all (`None`), sorted by start order.
    pub fn list(&self, project: Option<&Path>) -> Vec<Arc<ManagedProcess>> {
        // The registry keeps its list snapshot sorted by start order.
        match project {
            Some(pr) => self.shared.registry.values_where(|p| p.project() == pr),
            None => self.shared.registry.values(),
        }
    }

    /// Stops (TERM to the group, grace, KILL; `force` = KILL now) and waits for exit.
    /// Stopping a finished process succeeds and returns it as is (after killing any leftovers
    /// of its process group).
    pub fn stop(&self, project: &Path, id: &str, force: bool) -> Result<Arc<ManagedProcess>> {
        let p = self.get_or_not_found(project, id)?;
        p.stop(force, self.shared.config.grace)?;
        Ok(p)
    }

    /// Stops if running and starts again with the same spec (argv, env, cwd, readiness).
    pub fn restart(&self, project: &Path, id: &str) -> Result<Arc<ManagedProcess>> {
        let p = self.get_or_not_found(project, id)?;
        p.stop(false, self.shared.config.grace)?;
        let mut spec = p.spec().clone();
        // A new start: a port conflict may restart it once again.
        spec.port_clash_restart = None;
        self.start(spec)
    }

    /// Removes a process from the registry (stops it first if needed).
    pub fn remove(&self, project: &Path, id: &str) -> Result<()> {
        let p = self.get_or_not_found(project, id)?;
        if !p.state().is_terminal() {
            p.stop(false, self.shared.config.grace)?;
        }
        with_key(project, id, |k| {
            self.shared
                .registry
                .remove_if(k, |cur| Arc::ptr_eq(cur, &p))
        });
        self.shared.write_orphans();
        Ok(())
    }

    /// Kills whoever listens on `port` (never this process); returns the pids signalled.
    pub fn cleanup_port(&self, port: u16) -> Result<Vec<u32>> {
        ports::cleanup_port(port)
    }

    /// Idempotent. `deadline < 3 s` = aggressive (KILL all groups now), else normal (TERM all
    /// groups, the configured grace bounded by the deadline, KILL survivors). Waits until every
    /// process exited (or the deadline passed). A later call with a shorter deadline escalates
    /// a running normal shutdown.
    pub fn shutdown(&self, deadline: Duration) {
        let began = Instant::now();
        self.shared.shutting_down.store(true, Ordering::Release);
        self.health_stop.lock().take();
        let procs = self.shared.registry.values();
        let aggressive = deadline < AGGRESSIVE_BELOW;
        log::info!(
            "shutting down {} process(es), {}",
            procs.len(),
            if aggressive { "aggressive" } else { "normal" }
        );
        for p in &procs {
            p.begin_stop();
        }
        if aggressive {
            for p in &procs {
                p.kill_group_leftovers();
            }
            let limit = deadline.max(Duration::from_secs(1));
            wait_all(&procs, began + limit);
        } else {
            for p in &procs {
                if let Some(pgid) = p.pgid()
                    && !p.state().is_terminal()
                {
                    let _ = spawn::signal_group(pgid, Signal::TERM);
                }
            }
            let grace = self
                .shared
                .config
                .grace
                .min(deadline.saturating_sub(Duration::from_secs(1)));
            wait_all(&procs, began + grace);
            for p in &procs {
                p.kill_group_leftovers();
            }
            wait_all(&procs, began + deadline);
        }
        // Grandchildren that outlived their leaders, in their groups or gone elsewhere.
        for p in &procs {
            p.kill_group_leftovers();
        }
        let marked = super::descendants::kill_instance(&self.shared.config.instance);
        if !marked.is_empty() {
            log::info!("killed descendant(s) {marked:?} that left their groups");
        }
        if let Some(h) = self.health.lock().take() {
            h.join();
        }
        if let Some(r) = self.reaper.lock().take() {
            r.stop();
        }
        if let Some(o) = &self.shared.orphans {
            if procs.iter().all(|p| p.state().is_terminal()) {
                o.remove();
            } else {
                self.shared.write_orphans();
            }
        }
        log::info!("shutdown done in {:?}", began.elapsed());
    }

    /// Whether `shutdown` was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ManagerStats {
        ManagerStats {
            active: self.shared.active.load(Ordering::Acquire),
            total_started: self.shared.total_started.load(Ordering::Acquire),
            total_failed: self.shared.total_failed.load(Ordering::Acquire),
        }
    }

    /// Runs one health check now (the health thread does this every `health_period`).
    pub fn health_check(&self) {
        self.shared.health_check();
    }

    fn get_or_not_found(&self, project: &Path, id: &str) -> Result<Arc<ManagedProcess>> {
        self.get(project, id).ok_or_else(|| Error::NotFound {
            kind: "process",
            id: id.to_string(),
            known: self
                .list(Some(project))
                .iter()
                .map(|p| p.id().to_string())
                .collect(),
        })
    }

    fn start_inner(&self, spec: ProcessSpec) -> Result<(Arc<ManagedProcess>, StartOutcome)> {
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        if spec.id.is_empty() {
            return Err(Error::invalid("empty process id"));
        }
        // Refuse bad commands before they take the id.
        let cwd = spec.cwd.clone().unwrap_or_else(|| spec.project.clone());
        spawn::prepare(&spec.command, &cwd, &spec.env)?;
        let key = make_key(&spec.project, &spec.id);
        let seq = self.shared.seq.fetch_add(1, Ordering::AcqRel);
        let owner: Weak<dyn Owner> = Arc::downgrade(&self.shared) as _;
        let instance = &self.shared.config.instance;
        let p = Arc::new(ManagedProcess::new(spec, seq, instance, owner));
        let outcome = match self.shared.registry.insert_new(key.clone(), Arc::clone(&p)) {
            Ok(()) => StartOutcome::Started,
            Err(cur) if cur.state().is_terminal() => {
                if !self.shared.registry.replace_if(
                    &key[..],
                    |v| Arc::ptr_eq(v, &cur),
                    Arc::clone(&p),
                ) {
                    return Err(Error::AlreadyExists {
                        kind: "process",
                        id: p.id().to_string(),
                    });
                }
                StartOutcome::Replaced
            }
            Err(_) => {
                return Err(Error::AlreadyExists {
                    kind: "process",
                    id: p.id().to_string(),
                });
            }
        };
        // A shutdown that began after our first check has not seen this entry: back out.
        if self.is_shutting_down() {
            self.shared
                .registry
                .remove_if(&key[..], |v| Arc::ptr_eq(v, &p));
            return Err(Error::ShuttingDown);
        }
        p.launch()?;
        // A shutdown that began while we spawned may have missed the pid.
        if self.is_shutting_down() {
            p.begin_stop();
            p.kill_leftovers();
        } else {
            self.watch_ports(&p);
        }
        Ok((p, outcome))
    }
}

impl Drop for ProcessManager {
    fn drop(&mut self) {
        if self.health.lock().is_some() {
            self.shutdown(Duration::ZERO);
        }
    }
}

impl Owner for Shared {
    fn process_started(&self, p: &ManagedProcess) {
        self.total_started.fetch_add(1, Ordering::AcqRel);
        if !p.counted_active.swap(true, Ordering::AcqRel) {
            self.active.fetch_add(1, Ordering::AcqRel);
        }
        self.write_orphans();
    }

    fn process_failed(&self) {
        self.total_failed.fetch_add(1, Ordering::AcqRel);
    }

    fn process_exited(&self, p: &ManagedProcess, failed: bool) {
        if p.counted_active.swap(false, Ordering::AcqRel) {
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
        if failed {
            self.process_failed();
        }
        self.write_orphans();
        let hooks = self.exit_hooks.lock().clone();
        for hook in hooks {
            hook(p, failed);
        }
    }

    fn descendants_killed(&self, pids: &[u32]) {
        if !self.config.subreaper {
            return;
        }
        let mut adopted = self.adopted.lock();
        adopted.retain(|&p| procfs::stat(p).is_some());
        adopted.extend_from_slice(pids);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .field("shutting_down", &self.shutting_down)
            .field("active", &self.active)
            .field("orphans", &self.orphans)
            .field("exit_hooks", &Hooks(&self.exit_hooks.lock()))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Pids of every registered process (= their process groups).
    fn groups(&self) -> Vec<u32> {
        self.registry
            .values()
            .iter()
            .filter_map(|p| p.pgid())
            .collect()
    }

    /// Marker-killed pids that may be our zombies to reap.
    fn adopted(&self) -> Vec<u32> {
        let mut adopted = self.adopted.lock();
        adopted.retain(|&p| procfs::stat(p).is_some());
        adopted.clone()
    }

    fn write_orphans(&self) {
        if let Some(o) = &self.orphans {
            o.write(|| {
                self.registry
                    .values_where(|p| !p.state().is_terminal() && p.pid().is_some())
            });
        }
    }

    /// Starting for longer than [`STARTING_LIMIT`] → Failed; Running but gone from `/proc`
    /// (its exit was never recorded) → Failed.
    fn health_check(&self) {
        for p in self.registry.values() {
            let lost = match p.state() {
                State::Starting => p.created.elapsed() > STARTING_LIMIT,
                State::Running => {
                    !p.is_reaped() && p.pid().is_some_and(|pid| procfs::stat(pid).is_none())
                }
                _ => false,
            };
            if lost && p.fail("lost: the health check found it gone".into()) {
                log::warn!(
                    "health: {} is gone without a recorded exit; marked failed",
                    p.id()
                );
                self.process_exited(&p, true);
            }
        }
    }
}

/// Waits until every process is terminal or `until` passes.
fn wait_all(procs: &[Arc<ManagedProcess>], until: Instant) {
    for p in procs {
        let left = until.saturating_duration_since(Instant::now());
        if p.wait(Some(left)).is_terminal() {
            continue;
        }
        if left.is_zero() {
            return;
        }
    }
}

fn make_key(project: &Path, id: &str) -> Key {
    let p = project.as_os_str().as_bytes();
    let mut k = Vec::with_capacity(p.len() + 1 + id.len());
    k.extend_from_slice(p);
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k.into_boxed_slice()
}

/// Builds the key on the stack when it is short, so lookups do not allocate.
fn with_key<R>(project: &Path, id: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let p = project.as_os_str().as_bytes();
    let n = p.len() + 1 + id.len();
    if n <= 256 {
        let mut buf = [0u8; 256];
        buf[..p.len()].copy_from_slice(p);
        buf[p.len() + 1..n].copy_from_slice(id.as_bytes());
        f(&buf[..n])
    } else {
        f(&make_key(project, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(
            make_key(Path::new("/a"), "b/c"),
            make_key(Path::new("/a/b"), "c")
        );
        let long = "x".repeat(300);
        with_key(Path::new(&long), "id", |k| {
            assert_eq!(k, &*make_key(Path::new(&long), "id"))
        });
        with_key(Path::new("/p"), "id", |k| assert_eq!(k, b"/p\0id"));
    }
}
