//! The process supervisor: `ProcessManager` (registry, counters, health, shutdown) and
//! `ManagedProcess` (one child, its atomic state machine and its output rings).
//!
//! This file holds the plain data types (specs, states, requests, config); the behaviour lives
//! in submodules: `process` (one child: state machine, pump and waiter threads), `manager`
//! (the registry, counters, health thread, shutdown), `spawn` (the only `Command::new` and the
//! group signals), `output` (read filters), `ports` (`cleanup_port`), `clash` (a run's ports
//! taken by someone else after start: the `port-conflict` policies), `orphans` (the pid file
//! a crashed manager leaves behind), `reaper` (child subreaper), `ready` (readiness checks and
//! the one port/HTTP probe), `procfs` (small `/proc` readers) and `descendants` (the
//! `AGNT_PROCESS` marker every child inherits, and the kills that follow it past `setsid`).
//!
//! The submodules form no cycle: `manager` uses `process`, `reaper` and `orphans`; a process
//! reports to its manager only through the `process::Owner` trait, and the reaper asks for
//! the process groups through a closure. `ready` adds `wait_ready` to `ManagedProcess`.
//!
//! Lifecycle of a process: `Pending` (registered) → `Starting` (spawning) → `Running`. When
//! we stop it: `Running` → `Stopping` → `Stopped` (summary `stopped (signal 15)`). When it
//! exits by itself with status 0: `Running` → `Stopping` → `Stopped` (summary `passed`). When
//! it exits by itself otherwise, dies of a signal we did not send, cannot be spawned, or the
//! health check finds it stuck or lost: → `Failed` (summary `failed (exit 2)`, ...), and the
//! manager's `total_failed` counter goes up.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

pub mod clash;
pub mod descendants;
pub mod health;
mod manager;
pub mod orphans;
mod output;
pub mod ports;
pub mod process;
pub mod procfs;
pub mod ready;
mod reaper;
pub mod restart;
pub mod spawn;
mod state;

pub use crate::registry::Registry;
pub use manager::{ExitHook, ProcessManager};
pub use output::compile_grep;
pub use process::{AtomicState, ManagedProcess};

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
    /// A TCP connect to port on loopback (127.0.0.1 or ::1) succeeds.
    Port(u16),
    /// An HTTP GET to this plain `http://` URL answers (any status below 500).
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
    /// Start from an empty environment instead of the inherited one: `env` is then the whole
    /// environment (`agnt up` sends its caller's).
    pub clear_env: bool,
    /// Optional readiness check, used by `ManagedProcess::wait_ready`.
    pub ready: Option<ReadyCheck>,
    /// Ring capacity per stream in bytes; `None` = 256 KiB.
    pub buffer_cap: Option<usize>,
    /// `error-pattern` / `healthy-pattern`: output health shown in status.
    pub health: Option<health::HealthPatterns>,
    /// `auto-restart`: whether, and how often so far.
    pub restart: restart::RestartPolicy,
    /// `ports`: what it listens on; the first 30 s of each run are watched for a port held by
    /// a process agnt does not manage (`clash`).
    pub ports: Vec<u16>,
    /// `project { port-conflict }`: what such a clash does.
    pub port_conflict: clash::PortConflict,
    /// This run is the one restart after a clash (`auto-kill`, or a `prompt` answered yes).
    pub port_clash_restart: Option<Arc<clash::PortClash>>,
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
            clear_env: false,
            ready: None,
            buffer_cap: None,
            health: None,
            restart: restart::RestartPolicy::default(),
            ports: Vec::new(),
            port_conflict: clash::PortConflict::default(),
            port_clash_restart: None,
        }
    }
}

/// The seed's state machine: Pending → Starting → Running → Stopping → Stopped, and
/// Starting/Running/Stopping → Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
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

    /// Whether the seed's state machine allows `from` → `to`.
    pub fn can_transition(from: State, to: State) -> bool {
        use State::*;
        matches!(
            (from, to),
            (Pending, Starting)
                | (Starting, Running)
                | (Running, Stopping)
                | (Stopping, Stopped)
                | (Starting, Failed)
                | (Running, Failed)
                | (Stopping, Failed)
        )
    }

    /// The state stored as `v` (unknown values read as `Failed`).
    pub fn from_u8(v: u8) -> State {
        match v {
            0 => State::Pending,
            1 => State::Starting,
            2 => State::Running,
            3 => State::Stopping,
            4 => State::Stopped,
            _ => State::Failed,
        }
    }

    /// All states, in order.
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Failed,
    ];
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which output to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
    /// Both, interleaved in arrival order.
    #[default]
    Combined,
}

/// An output read: filters apply in the order grep → head → tail, then the byte budget.
#[derive(Debug, Clone, Default)]
pub struct OutputRequest {
    /// Which stream to read (default: combined).
    pub stream: Stream,
    /// Only bytes at or after this offset of the stream (a cursor from a previous read).
    pub since: Option<u64>,
    /// Keep only lines matching this regex (an invalid one is an `InvalidArgument` error).
    pub grep: Option<String>,
    /// Invert `grep`: keep the lines that do not match.
    pub grep_v: bool,
    /// Keep the first N lines (after `grep`).
    pub head: Option<usize>,
    /// Keep the last N lines (after `grep` and `head`).
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
    /// This manager's instance id, the first part of every child's `AGNT_PROCESS` marker
    /// (default: unique per manager, [`descendants::new_instance`]).
    pub instance: String,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            grace: Duration::from_secs(5),
            health_period: Duration::from_secs(10),
            state_dir: None,
            subreaper: false,
            instance: descendants::new_instance(),
        }
    }
}

/// Snapshot of the manager's atomic counters.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ManagerStats {
    /// Processes spawned whose exit is not recorded yet.
    pub active: i64,
    /// Successful spawns since the manager started.
    pub total_started: i64,
    /// Spawn failures, processes that exited by themselves unsuccessfully (non-zero status,
    /// or a signal we did not send) and processes the health check marked Failed.
    pub total_failed: i64,
}
