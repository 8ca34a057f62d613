//! `ManagedProcess`: one supervised child, its CAS state machine, its three output rings
//! (stdout, stderr, combined) and the threads that feed them.
//!
//! Per child there are three small named threads: `agnt-out-<id>` and `agnt-err-<id>` pump a
//! pipe into its ring and into the combined ring (whole lines where possible, so the two
//! streams never mix mid-line), and `agnt-wait-<id>` owns the `Child`, blocks in `wait`,
//! records the exit and wakes every waiter through a condition variable. Nothing polls.
//! Only the waiter touches the `Child`; everyone else signals the process group by pid, which
//! cannot be reused while the group exists.
//!
//! No thread outlives its process: once the leader is reaped (the waiter wakes the pumps
//! through an eventfd) and its group is gone, a pump reads on for at most [`DRAIN_DEADLINE`];
//! a pipe still open then is held by an escaped descendant, whose pid the status names.

use std::{
    io::{self, Read},
    os::fd::{AsFd, OwnedFd},
    path::Path,
    process::Child,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use parking_lot::{Condvar, Mutex};
use rustix::{
    event::{PollFd, PollFlags, Timespec},
    process::Signal,
};

use super::{
    OutputRead, OutputRequest, ProcessSpec, State, Stream, descendants, output, procfs, spawn,
};
use crate::{
    Error, Result,
    ringbuf::{DEFAULT_CAP, RingBuffer},
    thread::SMALL_STACK,
    util::time::{from_micros, now_micros},
};

/// How long the waiter lets the pumps drain the pipes after the child exited before it
/// publishes the exit (grandchildren may keep a pipe open forever).
const DRAIN_WAIT: Duration = Duration::from_millis(250);
/// How long pumps read on after the leader was reaped and its group is gone.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(2);
/// How often a pump whose leader was reaped looks at the group and the deadline.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// A partial line waits this long for its end before it goes to the combined ring anyway.
const PARTIAL_LINE_WAIT: Duration = Duration::from_millis(20);
/// A partial line longer than this goes to the combined ring at once.
const PARTIAL_LINE_MAX: usize = 4096;
/// First read buffer of a pump; it grows to `READ_MAX` (one default pipe-full) when a read
/// fills it. Bigger buffers and bigger pipes (F_SETPIPE_SZ) measured slower here.
const READ_MIN: usize = 8 * 1024;
const READ_MAX: usize = 64 * 1024;
/// Upper bound for the final wait of `stop` after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
const NO_EXIT: i64 = i64::MIN;

pub use super::state::AtomicState;

/// One supervised child. Cheap to share (`Arc`); every getter is lock-free.
#[derive(Debug)]
pub struct ManagedProcess {
    spec: ProcessSpec,
    seq: u64,
    state: AtomicState,
    pid: AtomicU32,
    exit_code: AtomicI64,
    exit_signal: AtomicI32,
    started_us: AtomicU64,
    ended_us: AtomicU64,
    stop_requested: AtomicBool,
    fail_reason: Mutex<Option<String>>,
    stdout: RingBuffer,
    stderr: RingBuffer,
    combined: RingBuffer,
    open_pumps: AtomicU8,
    /// `AGNT_PROCESS` of the child and everything it starts.
    marker: String,
    /// The port watch of this run (`clash`): whether it still runs, what it found.
    pub(super) port_watch: Mutex<super::clash::Watch>,
    /// Descendants that escaped the group and still held an output pipe at the drain deadline.
    escaped: Mutex<Vec<u32>>,
    /// Set by the waiter as soon as the child is reaped, before its exit is published: the
    /// health check must not take the gap for a lost process.
    reaped: std::sync::atomic::AtomicBool,
    /// Counted in the manager's `active` counter (set at spawn, cleared once at exit).
    pub(crate) counted_active: AtomicBool,
    /// When the entry was created (the health check's Starting limit counts from here).
    pub(crate) created: Instant,
    events: Mutex<()>,
    /// Woken on state changes (and pump exits).
    state_cv: Condvar,
    /// Woken on new output and on state changes.
    output_cv: Condvar,
    manager: Weak<dyn Owner>,
}

/// Whoever keeps the books on a process (the manager: its counters and orphan file). A process
/// holds its owner weakly and reports to it; one that outlives its owner reports to nobody.
pub(crate) trait Owner: Send + Sync {
    /// The child was spawned.
    fn process_started(&self, p: &ManagedProcess);
    /// The child could not be spawned.
    fn process_failed(&self);
    /// The child's exit was recorded; `failed` = it ended in `Failed`.
    fn process_exited(&self, p: &ManagedProcess, failed: bool);
    /// Descendants outside the group were killed by marker (a subreaper reaps them).
    fn descendants_killed(&self, pids: &[u32]);
}

impl ManagedProcess {
    pub(crate) fn new(
        spec: ProcessSpec,
        seq: u64,
        instance: &str,
        manager: Weak<dyn Owner>,
    ) -> Self {
        let cap = spec.buffer_cap.unwrap_or(DEFAULT_CAP);
        ManagedProcess {
            marker: descendants::run_marker(instance, &spec.project, &spec.id, seq),
            escaped: Mutex::new(Vec::new()),
            port_watch: Mutex::default(),
            spec,
            seq,
            state: AtomicState::new(State::Pending),
            pid: AtomicU32::new(0),
            exit_code: AtomicI64::new(NO_EXIT),
            exit_signal: AtomicI32::new(0),
            started_us: AtomicU64::new(0),
            ended_us: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            fail_reason: Mutex::new(None),
            stdout: RingBuffer::new(cap),
            stderr: RingBuffer::new(cap),
            combined: RingBuffer::new(cap),
            open_pumps: AtomicU8::new(0),
            reaped: std::sync::atomic::AtomicBool::new(false),
            counted_active: AtomicBool::new(false),
            created: Instant::now(),
            events: Mutex::new(()),
            state_cv: Condvar::new(),
            output_cv: Condvar::new(),
            manager,
        }
    }

    /// The process id (unique within its project).
    pub fn id(&self) -> &str {
        &self.spec.id
    }
    /// The project path that scopes the id.
    pub fn project(&self) -> &Path {
        &self.spec.project
    }
    /// The spec it was started with (what `restart` reuses).
    pub fn spec(&self) -> &ProcessSpec {
        &self.spec
    }
    /// Start order within its manager (lists are sorted by it).
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The current state.
    pub fn state(&self) -> State {
        self.state.get()
    }
    /// The OS pid, once spawned (it is also the process group id).
    pub fn pid(&self) -> Option<u32> {
        match self.pid.load(Ordering::Acquire) {
            0 => None,
            p => Some(p),
        }
    }
    /// The process group id (equal to the pid: every child leads its own group).
    pub fn pgid(&self) -> Option<u32> {
        self.pid()
    }
    /// Exit code, if it exited normally.
    pub fn exit_code(&self) -> Option<i32> {
        match self.exit_code.load(Ordering::Acquire) {
            NO_EXIT => None,
            c => Some(c as i32),
        }
    }
    /// The signal that ended it, if one did.
    pub fn exit_signal(&self) -> Option<i32> {
        match self.exit_signal.load(Ordering::Acquire) {
            0 => None,
            s => Some(s),
        }
    }
    /// When it was spawned.
    pub fn started_at(&self) -> Option<SystemTime> {
        from_micros(self.started_us.load(Ordering::Acquire))
    }
    /// When its exit was recorded (or it failed to start).
    pub fn ended_at(&self) -> Option<SystemTime> {
        from_micros(self.ended_us.load(Ordering::Acquire))
    }
    /// Time since start, frozen at exit.
    pub fn runtime(&self) -> Duration {
        let start = self.started_us.load(Ordering::Acquire);
        if start == 0 {
            return Duration::ZERO;
        }
        let end = match self.ended_us.load(Ordering::Acquire) {
            0 => now_micros(),
            e => e,
        };
        Duration::from_micros(end.saturating_sub(start))
    }
    /// The `AGNT_PROCESS` marker its descendants carry.
    pub fn marker(&self) -> &str {
        &self.marker
    }
    /// Descendants that escaped its group and kept an output pipe open after it ended (the
    /// pumps stopped reading them at the drain deadline).
    pub fn escaped_pids(&self) -> Vec<u32> {
        self.escaped.lock().clone()
    }
    /// Whether a stop was requested through the manager (stop, restart, remove, shutdown).
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }

    /// `running`, `passed`, `failed (exit 2)`, `stopped (signal 15)`, ...
    pub fn summary(&self) -> String {
        let state = self.state();
        match state {
            State::Stopped if !self.stop_requested() => "passed".to_string(),
            State::Stopped => match (self.exit_signal(), self.exit_code()) {
                (Some(sig), _) => format!("stopped (signal {sig})"),
                (None, Some(code)) if code != 0 => format!("stopped (exit {code})"),
                _ => "stopped".to_string(),
            },
            State::Failed => {
                if let Some(reason) = self.fail_reason.lock().clone() {
                    format!("failed ({reason})")
                } else {
                    match (self.exit_signal(), self.exit_code()) {
                        (Some(sig), _) => format!("failed (signal {sig})"),
                        (None, Some(code)) => format!("failed (exit {code})"),
                        _ => "failed".to_string(),
                    }
                }
            }
            other => other.as_str().to_string(),
        }
    }

    /// Reads output; an invalid `grep` regex is an `InvalidArgument` error.
    /// See the `output` module for the cursor semantics.
    pub fn output(&self, req: &OutputRequest) -> Result<OutputRead> {
        let ring = self.ring(req.stream);
        let chunk = ring.read_since(req.since.unwrap_or(0));
        output::select(chunk, ring.overflowed(), req)
    }

    /// Current end offset of a stream (total bytes ever written to it).
    pub fn output_end(&self, stream: Stream) -> u64 {
        self.ring(stream).total()
    }

    /// The ring behind a stream (for callers that want raw bytes).
    pub fn ring(&self, stream: Stream) -> &RingBuffer {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
            Stream::Combined => &self.combined,
        }
    }

    /// The last `n` lines of combined output (for error messages).
    pub fn last_lines(&self, n: usize) -> String {
        self.output(&OutputRequest {
            tail: Some(n),
            ..Default::default()
        })
        .map(|r| r.text)
        .unwrap_or_default()
    }

    /// Blocks until the combined stream's end offset passes `since`, the process has exited,
    /// or `timeout` passes; returns the combined end offset. No polling.
    pub fn wait_output(&self, since: u64, timeout: Duration) -> u64 {
        self.wait_output_until(timeout, || {
            self.combined.total() > since || self.state().is_terminal()
        });
        self.combined.total()
    }

    /// Blocks until the process is in a terminal state or `timeout` passes; returns the state.
    pub fn wait(&self, timeout: Option<Duration>) -> State {
        match timeout {
            Some(t) => {
                self.wait_until(t, || self.state().is_terminal());
            }
            None => {
                let mut g = self.events.lock();
                while !self.state().is_terminal() {
                    self.state_cv.wait(&mut g);
                }
            }
        }
        self.state()
    }

    /// Waits until `cond` holds or `timeout` passes, woken by state changes only (so a
    /// flooding child does not wake state waiters per chunk); returns whether it held.
    pub(crate) fn wait_until(&self, timeout: Duration, cond: impl FnMut() -> bool) -> bool {
        self.wait_on(&self.state_cv, timeout, cond)
    }

    /// Like [`Self::wait_until`], also woken by new output.
    pub(crate) fn wait_output_until(&self, timeout: Duration, cond: impl FnMut() -> bool) -> bool {
        self.wait_on(&self.output_cv, timeout, cond)
    }

    fn wait_on(&self, cv: &Condvar, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.events.lock();
        loop {
            if cond() {
                return true;
            }
            match deadline {
                Some(d) => {
                    if cv.wait_until(&mut g, d).timed_out() {
                        return cond();
                    }
                }
                None => cv.wait(&mut g),
            }
        }
    }

    /// Wakes every waiter (a state change).
    fn notify(&self) {
        let _g = self.events.lock();
        self.state_cv.notify_all();
        self.output_cv.notify_all();
    }

    /// Wakes the output waiters (new bytes in the combined ring).
    pub(super) fn notify_output(&self) {
        let _g = self.events.lock();
        self.output_cv.notify_all();
    }

    /// Spawns the child and its threads: Pending → Starting → Running, or → Failed with the
    /// spawn error.
    pub(crate) fn launch(self: &Arc<Self>) -> Result<()> {
        self.state.transition(State::Pending, State::Starting)?;
        self.notify();
        let cwd = self
            .spec
            .cwd
            .clone()
            .unwrap_or_else(|| self.spec.project.clone());
        let spawned =
            spawn::prepare(&self.spec.command, &cwd, &self.spec.env).and_then(|mut cmd| {
                if self.spec.clear_env {
                    cmd.env_clear().envs(&self.spec.env);
                }
                cmd.env(descendants::MARKER_VAR, &self.marker);
                cmd.spawn().map_err(|source| {
                    // chdir failures surface as the program's ENOENT: say which it was.
                    let source = if cwd.is_dir() {
                        source
                    } else {
                        io::Error::new(
                            source.kind(),
                            format!("working directory {} does not exist", cwd.display()),
                        )
                    };
                    Error::Spawn {
                        program: spawn::program_name(&self.spec.command),
                        source,
                    }
                })
            });
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let reason = match &e {
                    Error::Spawn { source, .. } => format!("cannot start: {source}"),
                    other => other.to_string(),
                };
                self.fail(reason);
                if let Some(m) = self.manager.upgrade() {
                    m.process_failed();
                }
                return Err(e);
            }
        };
        self.pid.store(child.id(), Ordering::Release);
        self.started_us.store(now_micros(), Ordering::Release);
        if let Some(m) = self.manager.upgrade() {
            m.process_started(self);
        }
        if let Err(e) = self.state.transition(State::Starting, State::Running) {
            // Only the health check moves a Starting process, after 30 s: give up on it, but
            // still start the waiter below so the child is reaped.
            log::error!("{}: {e}; killing it", self.id());
            let _ = spawn::signal_group(child.id(), Signal::KILL);
        }
        self.notify();
        log::info!(
            "started {} (pid {}) in {}",
            self.id(),
            child.id(),
            cwd.display()
        );

        let out = child.stdout.take();
        let err = child.stderr.take();
        // Wakes the pumps when the leader is reaped (without it they look every DRAIN_POLL).
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
            .ok()
            .map(Arc::new);
        let wake_out = wake.clone();
        let wake_err = wake.clone();
        self.open_pumps
            .store(out.is_some() as u8 + err.is_some() as u8, Ordering::Release);
        let threads = (|| -> io::Result<()> {
            if let Some(pipe) = out {
                let me = Arc::clone(self);
                // Detached: it ends at its pipe's EOF; the waiter counts open pumps, not handles.
                crate::thread::spawn(format!("agnt-out-{}", self.id()), SMALL_STACK, move || {
                    me.pump(pipe, Stream::Stdout, wake_out)
                })?;
            }
            if let Some(pipe) = err {
                let me = Arc::clone(self);
                // Detached: it ends at its pipe's EOF; the waiter counts open pumps, not handles.
                crate::thread::spawn(format!("agnt-err-{}", self.id()), SMALL_STACK, move || {
                    me.pump(pipe, Stream::Stderr, wake_err)
                })?;
            }
            Ok(())
        })();
        if let Err(e) = threads {
            log::error!(
                "cannot start output threads for {}: {e}; killing it",
                self.id()
            );
            let _ = spawn::signal_group(child.id(), Signal::KILL);
        }
        let me = Arc::clone(self);
        // Detached: it ends once the child is reaped; callers wait on the state, not the thread.
        if let Err(e) =
            crate::thread::spawn(format!("agnt-wait-{}", self.id()), SMALL_STACK, move || {
                me.wait_child(child, wake)
            })
        {
            // Without a waiter nobody reaps the child; the health check marks it Failed.
            log::error!("cannot start the waiter thread for {}: {e}", self.id());
            let _ = spawn::signal_group(self.pid.load(Ordering::Acquire), Signal::KILL);
        }
        Ok(())
    }

    /// The waiter has reaped the child (its exit may not be published yet).
    pub(crate) fn is_reaped(&self) -> bool {
        self.reaped.load(Ordering::Acquire)
    }

    /// Marks a process that never ran (or was lost) as Failed with a reason.
    pub(crate) fn fail(&self, reason: String) -> bool {
        let ok = [State::Starting, State::Running, State::Stopping]
            .into_iter()
            .any(|from| self.state.transition(from, State::Failed).is_ok());
        if ok {
            // Only the transition that won names the reason; a real exit keeps its own.
            *self.fail_reason.lock() = Some(reason);
            let _ = self.ended_us.compare_exchange(
                0,
                now_micros(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        self.notify();
        ok
    }

    /// Pump thread body: pipe → own ring, and whole lines → combined ring. Ends at the pipe's
    /// end, or [`DRAIN_DEADLINE`] after the leader was reaped and its group is gone.
    fn pump<R: Read + AsFd>(
        self: Arc<Self>,
        mut pipe: R,
        stream: Stream,
        wake: Option<Arc<OwnedFd>>,
    ) {
        let ring = self.ring(stream);
        let mut buf = vec![0u8; READ_MIN];
        let mut pending: Vec<u8> = Vec::new();
        let mut drain_until: Option<Instant> = None;
        loop {
            let reaped = self.is_reaped();
            if reaped && self.drain_expired(&mut drain_until) {
                self.note_escaped(&pipe, stream);
                break;
            }
            let wait = if !pending.is_empty() {
                Some(PARTIAL_LINE_WAIT)
            } else if reaped || wake.is_none() {
                Some(DRAIN_POLL)
            } else {
                None
            };
            // After the reap the eventfd stays readable: only the pipe is watched then.
            let wake_fd = wake.as_deref().filter(|_| !reaped);
            if !readable_within(&pipe, wake_fd, wait) {
                if !pending.is_empty() {
                    self.combined.write(&pending);
                    pending.clear();
                    self.notify_output();
                }
                continue;
            }
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("{}: reading {:?} failed: {e}", self.id(), stream);
                    break;
                }
            };
            let data = &buf[..n];
            ring.write(data);
            match memchr::memrchr2(b'\n', b'\r', data) {
                Some(i) => {
                    self.combined.write_parts(&[&pending, &data[..=i]]);
                    pending.clear();
                    pending.extend_from_slice(&data[i + 1..]);
                }
                None if pending.len() + n >= PARTIAL_LINE_MAX => {
                    self.combined.write_parts(&[&pending, data]);
                    pending.clear();
                }
                None => pending.extend_from_slice(data),
            }
            self.notify_output();
            if n == buf.len() && buf.len() < READ_MAX {
                // Only a child that fills the buffer gets the big one; idle ones stay small.
                buf.resize(READ_MAX, 0);
            }
        }
        if !pending.is_empty() {
            self.combined.write(&pending);
        }
        self.open_pumps.fetch_sub(1, Ordering::AcqRel);
        self.notify();
    }

    /// Whether a pump whose leader was reaped should stop: the group is gone and the drain
    /// deadline (set when it was first seen gone) has passed.
    fn drain_expired(&self, until: &mut Option<Instant>) -> bool {
        if self.pgid().is_some_and(spawn::group_exists) {
            *until = None;
            return false;
        }
        Instant::now() >= *until.get_or_insert_with(|| Instant::now() + DRAIN_DEADLINE)
    }

    /// Records who still holds the pipe a pump gives up on.
    fn note_escaped(&self, pipe: &impl AsFd, stream: Stream) {
        let holders = descendants::pipe_holders(pipe);
        log::warn!(
            "{}: ended, but pid(s) {holders:?} outside its group still hold its {stream:?} pipe; no longer reading it",
            self.id()
        );
        let mut escaped = self.escaped.lock();
        for pid in holders {
            if !escaped.contains(&pid) {
                escaped.push(pid);
            }
        }
    }

    /// Waiter thread body: reap the child, let the pumps drain, publish the exit.
    fn wait_child(self: Arc<Self>, mut child: Child, wake: Option<Arc<OwnedFd>>) {
        let status = loop {
            match child.wait() {
                Ok(s) => break Some(s),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("{}: waiting for pid {} failed: {e}", self.id(), child.id());
                    break None;
                }
            }
        };
        self.reaped.store(true, Ordering::Release);
        if let Some(fd) = &wake {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        self.wait_until(DRAIN_WAIT, || self.open_pumps.load(Ordering::Acquire) == 0);
        self.record_exit(status);
    }

    fn record_exit(&self, status: Option<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt;
        if let Some(s) = status {
            if let Some(code) = s.code() {
                self.exit_code.store(code as i64, Ordering::Release);
            }
            if let Some(sig) = s.signal() {
                self.exit_signal.store(sig, Ordering::Release);
            }
        }
        let _ =
            self.ended_us
                .compare_exchange(0, now_micros(), Ordering::AcqRel, Ordering::Acquire);
        let clean = status.is_some_and(|s| s.success());
        let failed = loop {
            match self.state() {
                State::Stopping => {
                    if self
                        .state
                        .transition(State::Stopping, State::Stopped)
                        .is_ok()
                    {
                        break false;
                    }
                }
                State::Running if clean => {
                    if self
                        .state
                        .transition(State::Running, State::Stopping)
                        .is_ok()
                    {
                        let _ = self.state.transition(State::Stopping, State::Stopped);
                        break false;
                    }
                }
                State::Running => {
                    if self.state.transition(State::Running, State::Failed).is_ok() {
                        break true;
                    }
                }
                // Already Failed (health check) or otherwise final.
                _ => break false,
            }
        };
        log::info!("{} exited: {}", self.id(), self.summary());
        if let Some(m) = self.manager.upgrade() {
            m.process_exited(self, failed);
        }
        self.notify();
    }

    /// Stops the process: TERM to the group, `grace`, KILL (`force`: KILL at once), then waits
    /// for the exit and kills what is left of the group. A finished process only has its
    /// group's leftovers killed.
    pub(crate) fn stop(&self, force: bool, grace: Duration) -> Result<()> {
        // A process being spawned becomes Running (or Failed) within the spawn call.
        self.wait_until(KILL_WAIT, || {
            !matches!(self.state(), State::Pending | State::Starting)
        });
        loop {
            match self.state() {
                State::Running => {
                    self.stop_requested.store(true, Ordering::Release);
                    if self
                        .state
                        .transition(State::Running, State::Stopping)
                        .is_ok()
                    {
                        self.notify();
                        break;
                    }
                }
                State::Stopping => break,
                State::Stopped | State::Failed => {
                    self.kill_leftovers();
                    return Ok(());
                }
                s @ (State::Pending | State::Starting) => {
                    return Err(Error::Timeout(format!(
                        "process {:?} is still {s}",
                        self.id()
                    )));
                }
            }
        }
        let Some(pgid) = self.pgid() else {
            return Ok(());
        };
        if !force {
            log::info!(
                "stopping {} (SIGTERM to group {pgid}, grace {grace:?})",
                self.id()
            );
            let _ = spawn::signal_group(pgid, Signal::TERM);
            if self.wait(Some(grace)).is_terminal() {
                self.kill_leftovers();
                return Ok(());
            }
        }
        log::info!("killing {} (SIGKILL to group {pgid})", self.id());
        let _ = spawn::signal_group(pgid, Signal::KILL);
        let state = self.wait(Some(KILL_WAIT));
        self.kill_leftovers();
        if state.is_terminal() {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "process {:?} (pid {pgid}) did not exit after SIGKILL",
                self.id()
            )))
        }
    }

    /// Sends SIGKILL to the group (grandchildren that outlived the leader). Harmless when the
    /// group is gone.
    ///
    /// Pid reuse: once the waiter reaped our leader, a process whose pid equals our pgid is
    /// somebody else's (possibly the leader of a new group with the same number), so we leave
    /// the group alone then. While any of our grandchildren lives, the kernel does not hand
    /// the number out again, so the group is still ours.
    ///
    /// Then every process carrying this process's marker dies too, wherever it went (`setsid`,
    /// double fork).
    pub(crate) fn kill_leftovers(&self) {
        self.kill_group_leftovers();
        let killed = descendants::kill_marked(&self.marker);
        if !killed.is_empty() {
            log::info!(
                "{}: killed descendant(s) {killed:?} outside its group",
                self.id()
            );
            if let Some(m) = self.manager.upgrade() {
                m.descendants_killed(&killed);
            }
        }
    }

    /// [`Self::kill_leftovers`] for the group only (shutdown follows the markers once, for all).
    pub(crate) fn kill_group_leftovers(&self) {
        let Some(pgid) = self.pgid() else { return };
        if self.state().is_terminal() && procfs::stat(pgid).is_some() {
            return;
        }
        let _ = spawn::signal_group(pgid, Signal::KILL);
    }

    /// Marks a stop as requested and moves Running → Stopping (for shutdown, which signals
    /// all groups itself). Returns whether the process was live.
    pub(crate) fn begin_stop(&self) -> bool {
        if !self.state().is_terminal() {
            self.stop_requested.store(true, Ordering::Release);
        }
        let live = self
            .state
            .transition(State::Running, State::Stopping)
            .is_ok()
            || self.state() == State::Stopping;
        self.notify();
        live
    }

    /// Number of pump threads still reading.
    pub(crate) fn open_pumps(&self) -> u8 {
        self.open_pumps.load(Ordering::Acquire)
    }
}

/// Whether `fd` becomes readable (or hung up) within `timeout` (`None`: until it does or
/// `wake` becomes readable).
fn readable_within(fd: &impl AsFd, wake: Option<&OwnedFd>, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as _,
    });
    let mut fds = vec![PollFd::new(fd, PollFlags::IN)];
    if let Some(w) = wake {
        fds.push(PollFd::new(w, PollFlags::IN));
    }
    match rustix::event::poll(&mut fds, ts.as_ref()) {
        Ok(0) => false,
        Ok(_) => !fds[0].revents().is_empty(),
        Err(rustix::io::Errno::INTR) => false,
        Err(_) => true,
    }
}
