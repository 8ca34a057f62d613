//! The process supervisor: `ProcessManager` (registry, counters, health, shutdown) and
//! `ManagedProcess` (one child, its atomic state machine and its output rings).
//!
//! CONTRACT STUB: the types and signatures below are the public API other modules (MCP tools,
//! `agnt up`, the daemon) code against. The supervisor work fills the bodies in and may split
//! this file, but keeps these paths and signatures (adding is fine, changing needs a reason).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::Result;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Program and arguments, executed directly.
    Argv(Vec<String>),
    /// A shell line, executed as `sh -c LINE`.
    Shell(String),
}

/// When a process counts as ready (beyond being `Running`).
#[derive(Debug, Clone)]
pub enum ReadyCheck {
    /// A line of combined output matches this regex.
    Log(regex::Regex),
    /// A TCP connect to 127.0.0.1:port succeeds.
    Port(u16),
    /// An HTTP GET to this URL answers (any status below 500).
    Url(String),
}

/// Everything needed to start (and restart) a process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The process id, unique within `project`.
    pub id: String,
    /// The project path that scopes the id (absolute).
    pub project: PathBuf,
    /// The command.
    pub command: CommandLine,
    /// Working directory; `None` = `project`.
    pub cwd: Option<PathBuf>,
    /// Extra environment on top of the inherited one (later entries win).
    pub env: BTreeMap<String, String>,
    /// Optional readiness check, used by `ManagedProcess::wait_ready`.
    pub ready: Option<ReadyCheck>,
    /// Ring capacity per stream in bytes; `None` = 256 KiB.
    pub buffer_cap: Option<usize>,
}

impl ProcessSpec {
    /// A spec with defaults: no env, cwd = project, no readiness, default buffers.
    pub fn new(id: impl Into<String>, project: impl Into<PathBuf>, command: CommandLine) -> Self {
        ProcessSpec {
            id: id.into(),
            project: project.into(),
            command,
            cwd: None,
            env: BTreeMap::new(),
            ready: None,
            buffer_cap: None,
        }
    }
}

/// The seed's state machine: Pending → Starting → Running → Stopping → Stopped, and
/// Starting/Running/Stopping → Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    Pending = 0,
    Starting = 1,
    Running = 2,
    Stopping = 3,
    Stopped = 4,
    Failed = 5,
}

impl State {
    /// Lowercase name (`running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }

    /// Stopped or Failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Stopped | State::Failed)
    }
}

/// Which output to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Both, interleaved in arrival order.
    #[default]
    Combined,
}

/// An output read: filters apply in the order grep → head → tail, then the byte budget.
#[derive(Debug, Clone, Default)]
pub struct OutputRequest {
    pub stream: Stream,
    /// Only bytes at or after this offset of the stream (a cursor from a previous read).
    pub since: Option<u64>,
    pub grep: Option<String>,
    pub grep_v: bool,
    pub head: Option<usize>,
    pub tail: Option<usize>,
    /// Byte budget for `text`; the newest lines are kept when cut.
    pub max_bytes: Option<usize>,
}

/// The answer to an [`OutputRequest`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutputRead {
    /// The selected text (lossy UTF-8).
    pub text: String,
    /// Number of lines in `text`.
    pub lines: usize,
    /// Offset to pass as `since` next time to read only what is new.
    pub next_offset: u64,
    /// Bytes that were lost to ring overflow before the requested start.
    pub lost_bytes: u64,
    /// The ring has wrapped at some point (old output is gone).
    pub overflowed: bool,
    /// `max_bytes` cut the answer.
    pub truncated: bool,
}

/// Whether `start_or_reuse` started a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new process was started.
    Started,
    /// A running (or starting) process with the same id was reused.
    Reused,
    /// A finished process with the same id was replaced by a new one.
    Replaced,
}

/// Manager settings.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Grace between SIGTERM and SIGKILL on a normal stop (default 5 s).
    pub grace: Duration,
    /// Health check period (default 10 s).
    pub health_period: Duration,
    /// Where the orphan file lives; `None` = no orphan tracking (tests, embedding).
    pub state_dir: Option<PathBuf>,
    /// Become the child subreaper (Linux), so orphaned grandchildren are reaped by us.
    pub subreaper: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            grace: Duration::from_secs(5),
            health_period: Duration::from_secs(10),
            state_dir: None,
            subreaper: false,
        }
    }
}

/// Snapshot of the manager's atomic counters.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ManagerStats {
    pub active: i64,
    pub total_started: i64,
    pub total_failed: i64,
}

/// One supervised child.
#[derive(Debug)]
pub struct ManagedProcess {
    _private: (),
}

impl ManagedProcess {
    pub fn id(&self) -> &str {
        unimplemented!()
    }
    pub fn project(&self) -> &Path {
        unimplemented!()
    }
    pub fn spec(&self) -> &ProcessSpec {
        unimplemented!()
    }
    pub fn state(&self) -> State {
        unimplemented!()
    }
    pub fn pid(&self) -> Option<u32> {
        unimplemented!()
    }
    /// Exit code, if it exited normally.
    pub fn exit_code(&self) -> Option<i32> {
        unimplemented!()
    }
    /// The signal that ended it, if one did.
    pub fn exit_signal(&self) -> Option<i32> {
        unimplemented!()
    }
    pub fn started_at(&self) -> Option<SystemTime> {
        unimplemented!()
    }
    pub fn ended_at(&self) -> Option<SystemTime> {
        unimplemented!()
    }
    /// Time since start, frozen at exit.
    pub fn runtime(&self) -> Duration {
        unimplemented!()
    }
    /// `running`, `passed`, `failed (exit 2)`, `stopped (signal 15)`, ...
    pub fn summary(&self) -> String {
        unimplemented!()
    }
    /// Reads output; an invalid `grep` regex is an `InvalidArgument` error.
    pub fn output(&self, req: &OutputRequest) -> Result<OutputRead> {
        let _ = req;
        unimplemented!()
    }
    /// Current end offset of a stream (total bytes ever written to it).
    pub fn output_end(&self, stream: Stream) -> u64 {
        let _ = stream;
        unimplemented!()
    }
    /// Blocks until the combined stream's end offset passes `since`, the process has exited,
    /// or `timeout` passes; returns the combined end offset. No polling.
    pub fn wait_output(&self, since: u64, timeout: Duration) -> u64 {
        let _ = (since, timeout);
        unimplemented!()
    }
    /// Blocks until the process is in a terminal state or `timeout` passes; returns the state.
    pub fn wait(&self, timeout: Option<Duration>) -> State {
        let _ = timeout;
        unimplemented!()
    }
    /// Blocks until the spec's `ready` check holds (or, without one, until Running).
    /// Errors with `Timeout` or with a message when the process exits first.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let _ = timeout;
        unimplemented!()
    }
}

/// The registry of processes, keyed by (project, id).
#[derive(Debug)]
pub struct ProcessManager {
    _private: (),
}

impl ProcessManager {
    /// Creates a manager: health thread, optional subreaper, orphan cleanup of a dead owner.
    pub fn new(config: ManagerConfig) -> Result<Arc<ProcessManager>> {
        let _ = config;
        unimplemented!()
    }
    /// Registers and starts a process. `AlreadyExists` for a live id; `ShuttingDown`.
    /// A spawn failure is an error and leaves the process registered in state Failed.
    pub fn start(&self, spec: ProcessSpec) -> Result<Arc<ManagedProcess>> {
        let _ = spec;
        unimplemented!()
    }
    /// Reuses a running id, replaces a finished one, else starts.
    pub fn start_or_reuse(&self, spec: ProcessSpec) -> Result<(Arc<ManagedProcess>, StartOutcome)> {
        let _ = spec;
        unimplemented!()
    }
    pub fn get(&self, project: &Path, id: &str) -> Option<Arc<ManagedProcess>> {
        let _ = (project, id);
        unimplemented!()
    }
    /// Processes of one project (`Some`) or all (`None`), sorted by start order.
    pub fn list(&self, project: Option<&Path>) -> Vec<Arc<ManagedProcess>> {
        let _ = project;
        unimplemented!()
    }
    /// Stops (TERM to the group, grace, KILL; `force` = KILL now) and waits for exit.
    /// Stopping a finished process succeeds and returns it as is.
    pub fn stop(&self, project: &Path, id: &str, force: bool) -> Result<Arc<ManagedProcess>> {
        let _ = (project, id, force);
        unimplemented!()
    }
    /// Stops if running and starts again with the same spec (argv, env, cwd).
    pub fn restart(&self, project: &Path, id: &str) -> Result<Arc<ManagedProcess>> {
        let _ = (project, id);
        unimplemented!()
    }
    /// Removes a finished process from the registry (stops it first if needed).
    pub fn remove(&self, project: &Path, id: &str) -> Result<()> {
        let _ = (project, id);
        unimplemented!()
    }
    /// Kills whoever listens on `port` (never this process); returns the pids signalled.
    pub fn cleanup_port(&self, port: u16) -> Result<Vec<u32>> {
        let _ = port;
        unimplemented!()
    }
    /// Idempotent. `deadline < 3 s` = aggressive (KILL all groups now), else normal.
    pub fn shutdown(&self, deadline: Duration) {
        let _ = deadline;
        unimplemented!()
    }
    pub fn is_shutting_down(&self) -> bool {
        unimplemented!()
    }
    pub fn stats(&self) -> ManagerStats {
        unimplemented!()
    }
}
