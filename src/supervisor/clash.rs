//! Port conflicts after start (EADDRINUSE recovery): a run whose spec declares `ports` is
//! watched for its first [`WATCH_WINDOW`] by one small thread. When it prints an address-in-use
//! failure ([`ADDR_IN_USE`], the one list of those phrasings) or fails on its own, the declared
//! ports are looked up (`ports::listeners`); the first one held by a process agnt does not
//! manage is a [`PortClash`], and the spec's [`PortConflict`] policy applies: `auto-kill` kills
//! the holder's process tree and restarts the run once (only once per start: the new run's spec
//! carries the clash), `fail` fails the run naming port, holder and policy, `skip` warns, and
//! `prompt` records the clash for a client to decide ([`ProcessManager::resolve_port_clash`]).
//! The verdict is the run's `port_clash` (status shows it) and a `[agnt]` line in its output.
//!
//! Never killed: pid 1, this process and its ancestors, our own process group, any process in
//! a group this manager supervises, and any process carrying an agnt marker.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rustix::process::Signal;

use super::{ManagedProcess, OutputRequest, ProcessManager, Stream, descendants, ports, procfs};
use crate::{Error, Result};

/// How long after its start a run is watched.
pub const WATCH_WINDOW: Duration = Duration::from_secs(30);
/// Longest holder command line kept.
const COMMAND_MAX: usize = 160;

/// Output phrasings of a bind that failed because the address is taken (lowercase; lines are
/// compared case-insensitively): Node, Go/Python/Rust (`address already in use`), Docker,
/// Windows/.NET.
pub const ADDR_IN_USE: [&str; 4] = [
    "eaddrinuse",
    "address already in use",
    "port is already allocated",
    "only one usage of each socket address",
];

/// Whether `line` reports an address already in use.
pub fn says_addr_in_use(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    ADDR_IN_USE.iter().any(|p| line.contains(p))
}

/// `project { port-conflict }`: what to do when a script's declared `ports` are held by a
/// process agnt does not manage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PortConflict {
    /// Report the conflict to the client (`agnt up` asks on a terminal; otherwise it behaves as
    /// `Fail` and lists them).
    #[default]
    Prompt,
    /// Kill the holder's process tree (after start: and restart the script once).
    AutoKill,
    /// Warn and start (or keep running) anyway.
    Skip,
    /// Abort: the script does not start (after start: it fails).
    Fail,
}

impl PortConflict {
    /// The config spellings, in order.
    pub const NAMES: [&'static str; 4] = ["prompt", "auto-kill", "skip", "fail"];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PortConflict::Prompt => "prompt",
            PortConflict::AutoKill => "auto-kill",
            PortConflict::Skip => "skip",
            PortConflict::Fail => "fail",
        }
    }

    /// Parses a config spelling.
    pub fn parse(s: &str) -> Option<PortConflict> {
        Some(match s {
            "prompt" => PortConflict::Prompt,
            "auto-kill" => PortConflict::AutoKill,
            "skip" => PortConflict::Skip,
            "fail" => PortConflict::Fail,
            _ => return None,
        })
    }
}

/// What was done about a clash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `auto-kill`: the holder was killed and the script restarted (once).
    Restarted,
    /// `fail` (or `auto-kill` a second time): the run failed.
    Failed,
    /// `skip`: a warning, nothing else.
    Skipped,
    /// `prompt`: waiting for a client to decide.
    Asking,
}

/// A declared port held by a process agnt does not manage, and what was done about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortClash {
    pub port: u16,
    /// The holder.
    pub pid: u32,
    /// Its command line (`?` when `/proc` does not say).
    pub command: String,
    /// The policy that decided.
    pub policy: &'static str,
    pub outcome: Outcome,
    /// One line for people and agents, naming all of the above.
    pub message: String,
}

/// A run's port watch.
#[derive(Debug, Default)]
pub struct Watch {
    /// The watch thread runs (its verdict may still come).
    pub active: bool,
    /// Its verdict.
    pub clash: Option<Arc<PortClash>>,
}

/// A port's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub port: u16,
    pub pid: u32,
    pub command: String,
}

/// The first of `ports` held by a process that may be killed (see [`spared`]).
pub fn find_holder(ports: &[u16], groups: &[u32]) -> Option<Holder> {
    ports.iter().find_map(|&port| {
        let pid = ports::listeners(port)
            .into_iter()
            .find(|&pid| !spared(pid, groups))?;
        let command = procfs::cmdline(pid, COMMAND_MAX).unwrap_or_else(|| "?".into());
        Some(Holder { port, pid, command })
    })
}

/// Whether `pid` must never be killed for a port: pid 1, us and our ancestors, our process
/// group, a process in one of `groups` (what the manager supervises) or marked by any agnt.
pub fn spared(pid: u32, groups: &[u32]) -> bool {
    if pid <= 1 || descendants::self_and_ancestors().contains(&pid) {
        return true;
    }
    let ours = rustix::process::getpgrp().as_raw_nonzero().get() as u32;
    match procfs::stat(pid) {
        Some(st) => st.pgrp == ours || groups.contains(&st.pgrp) || descendants::is_marked(pid),
        // Gone, or not ours to read: nothing to kill.
        None => true,
    }
}

/// `root` and its descendants (by parent pid), minus the spared.
fn tree(root: u32, groups: &[u32]) -> Vec<u32> {
    let stats: Vec<procfs::Stat> = procfs::pids()
        .into_iter()
        .filter_map(procfs::stat)
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for s in &stats {
            if s.ppid == parent && !out.contains(&s.pid) {
                out.push(s.pid);
            }
        }
        i += 1;
    }
    out.retain(|&p| !spared(p, groups));
    out
}

/// The message of each outcome.
fn message(h: &Holder, id: &str, policy: PortConflict, outcome: Outcome) -> String {
    let held = format!(
        "port {} is held by pid {} ({}), which agnt does not manage",
        h.port, h.pid, h.command
    );
    let p = policy.as_str();
    match outcome {
        Outcome::Restarted => {
            format!("{held}: killed it and restarted {id:?} once (port-conflict {p})")
        }
        Outcome::Failed if policy == PortConflict::AutoKill => format!(
            "{held}: {id:?} was already restarted once for a port conflict, not again (port-conflict {p})"
        ),
        Outcome::Failed => format!(
            "{held}: {id:?} cannot listen on it (port-conflict {p}); free the port, or set project {{ port-conflict \"auto-kill\" }}"
        ),
        Outcome::Skipped => format!("warning: {held}: leaving it (port-conflict {p})"),
        Outcome::Asking => format!(
            "{held}: kill it and restart {id:?}? (port-conflict {p}: proc {{\"action\": \"resolve_conflict\", \"process_id\": {id:?}}} does, proc stop declines)"
        ),
    }
}

impl ManagedProcess {
    /// What the port watch found in this run (`None`: nothing, or not watched).
    pub fn port_clash(&self) -> Option<Arc<PortClash>> {
        self.port_watch.lock().clash.clone()
    }

    /// Whether this run's port watch still runs (a verdict may still come).
    pub fn port_watch_active(&self) -> bool {
        self.port_watch.lock().active
    }

    /// Records the verdict and says so in the output.
    fn set_port_clash(&self, clash: Arc<PortClash>) {
        let line = format!("[agnt] {}\n", clash.message);
        self.port_watch.lock().clash = Some(clash);
        self.ring(Stream::Combined).write(line.as_bytes());
        self.notify_output();
    }
}

impl ProcessManager {
    /// Starts the watch of a run that declares ports (called by `start`).
    pub(super) fn watch_ports(&self, p: &Arc<ManagedProcess>) {
        if p.spec().ports.is_empty() {
            return;
        }
        let (me, run) = (self.weak(), Arc::clone(p));
        let name = format!("agnt-ports-{}", p.id());
        p.port_watch.lock().active = true;
        // Detached: it ends within WATCH_WINDOW, or when the run ends.
        let spawned = crate::thread::spawn(name, crate::thread::SMALL_STACK, move || {
            if troubled(&run)
                && let Some(pm) = me.upgrade()
                && !pm.is_shutting_down()
            {
                pm.port_trouble(&run);
            }
            run.port_watch.lock().active = false;
            run.notify_output();
        });
        if let Err(e) = spawned {
            p.port_watch.lock().active = false;
            log::warn!("{}: cannot watch its ports: {e}", p.id());
        }
    }

    /// Applies the run's policy to the first of its ports held by someone else.
    fn port_trouble(&self, p: &Arc<ManagedProcess>) {
        let spec = p.spec();
        let Some(h) = find_holder(&spec.ports, &self.managed_groups()) else {
            log::info!(
                "{}: port trouble, but none of its ports {:?} is held by a process agnt does not manage",
                p.id(),
                spec.ports
            );
            return;
        };
        let policy = spec.port_conflict;
        let outcome = match policy {
            PortConflict::AutoKill if spec.port_clash_restart.is_none() => Outcome::Restarted,
            PortConflict::AutoKill | PortConflict::Fail => Outcome::Failed,
            PortConflict::Skip => Outcome::Skipped,
            PortConflict::Prompt => Outcome::Asking,
        };
        let clash = Arc::new(PortClash {
            port: h.port,
            pid: h.pid,
            command: h.command.clone(),
            policy: policy.as_str(),
            outcome,
            message: message(&h, p.id(), policy, outcome),
        });
        log::info!("{}: {}", p.id(), clash.message);
        p.set_port_clash(Arc::clone(&clash));
        match outcome {
            Outcome::Restarted => {
                if let Err(e) = self.kill_and_restart(p, &clash) {
                    log::warn!("{}: port-conflict restart failed: {e}", p.id());
                }
            }
            Outcome::Failed => fail_run(p, &clash.message),
            Outcome::Skipped | Outcome::Asking => {}
        }
    }

    /// Answers a `prompt` clash of process `id`: `kill` kills the holder's tree and restarts the
    /// process once; otherwise the run fails (if it still runs) with `why` in its message.
    /// Returns the pids killed and the current run.
    pub fn resolve_port_clash(
        &self,
        project: &std::path::Path,
        id: &str,
        kill: bool,
        why: &str,
    ) -> Result<(Vec<u32>, Arc<ManagedProcess>)> {
        let p = self.get(project, id).ok_or_else(|| Error::NotFound {
            kind: "process",
            id: id.to_string(),
            known: self
                .list(Some(project))
                .iter()
                .map(|p| p.id().to_string())
                .collect(),
        })?;
        let Some(asked) = p.port_clash().filter(|c| c.outcome == Outcome::Asking) else {
            return Err(Error::invalid(format!(
                "process {id:?} has no port conflict waiting for a decision (see proc status)"
            )));
        };
        let h = Holder {
            port: asked.port,
            pid: asked.pid,
            command: asked.command.clone(),
        };
        let outcome = if kill {
            Outcome::Restarted
        } else {
            Outcome::Failed
        };
        let mut text = message(&h, id, PortConflict::Prompt, outcome);
        if !kill && !why.is_empty() {
            text = text.replacen(
                "(port-conflict prompt)",
                &format!("(port-conflict prompt, {why})"),
                1,
            );
        }
        let clash = Arc::new(PortClash {
            outcome,
            message: text,
            ..(*asked).clone()
        });
        p.set_port_clash(Arc::clone(&clash));
        if kill {
            return self.kill_and_restart(&p, &clash);
        }
        fail_run(&p, &clash.message);
        Ok((Vec::new(), p))
    }

    /// Kills the holder's tree (if it still holds the port and may be killed), stops the run and
    /// starts it again with the clash in its spec.
    fn kill_and_restart(
        &self,
        p: &Arc<ManagedProcess>,
        clash: &Arc<PortClash>,
    ) -> Result<(Vec<u32>, Arc<ManagedProcess>)> {
        let groups = self.managed_groups();
        let killed =
            if ports::listeners(clash.port).contains(&clash.pid) && !spared(clash.pid, &groups) {
                let what = format!("port-conflict on port {} ({})", clash.port, p.id());
                ports::terminate(&tree(clash.pid, &groups), &what)
            } else {
                Vec::new()
            };
        p.stop(false, self.config().grace)?;
        let mut spec = p.spec().clone();
        spec.port_clash_restart = Some(Arc::clone(clash));
        match self.start(spec) {
            // Someone (auto-restart, a client) started it again meanwhile.
            Err(Error::AlreadyExists { .. }) => {
                let current = self.get(p.project(), p.id()).ok_or(Error::ShuttingDown)?;
                Ok((killed, current))
            }
            other => other.map(|n| (killed, n)),
        }
    }
}

/// Fails a run that still runs with `why`, and kills its group.
fn fail_run(p: &ManagedProcess, why: &str) {
    if p.fail(why.to_string())
        && let Some(pgid) = p.pgid()
    {
        let _ = super::spawn::signal_group(pgid, Signal::KILL);
        p.kill_leftovers();
    }
}

/// Watches a run for [`WATCH_WINDOW`]: `true` when it printed an address-in-use line, or failed
/// on its own; `false` when the window passed or it was stopped or ended cleanly.
fn troubled(p: &ManagedProcess) -> bool {
    let deadline = Instant::now() + WATCH_WINDOW;
    let (mut cursor, mut partial) = (0u64, String::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let end = p.wait_output(cursor, left);
        if end > cursor {
            let read = p.output(&OutputRequest {
                since: Some(cursor),
                ..OutputRequest::default()
            });
            if let Ok(read) = read {
                cursor = read.next_offset;
                partial.push_str(&read.text);
                let complete = partial.rfind('\n').map_or(0, |i| i + 1);
                let hit = partial[..complete]
                    .lines()
                    .any(|l| says_addr_in_use(l) && !l.starts_with("[agnt]"));
                partial.drain(..complete);
                if hit || says_addr_in_use(&partial) {
                    return !p.stop_requested();
                }
            }
        }
        if p.state().is_terminal() {
            return p.state() == super::State::Failed && !p.stop_requested();
        }
        if left.is_zero() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_address_in_use_lines() {
        for line in [
            "Error: listen EADDRINUSE: address already in use :::3000",
            "OSError: [Errno 98] Address already in use",
            "listen tcp :8080: bind: address already in use",
            "Bind for 0.0.0.0:5432 failed: port is already allocated",
            "System.Net.Sockets.SocketException: Only one usage of each socket address (protocol/network address/port) is normally permitted",
        ] {
            assert!(says_addr_in_use(line), "{line}");
        }
        for line in ["listening on :3000", "address in use by", ""] {
            assert!(!says_addr_in_use(line), "{line}");
        }
    }

    #[test]
    fn policies_round_trip() {
        for name in PortConflict::NAMES {
            assert_eq!(PortConflict::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(PortConflict::parse("kill"), None);
    }

    #[test]
    fn never_spares_nothing_it_must() {
        assert!(spared(1, &[]));
        assert!(spared(0, &[]));
        assert!(spared(std::process::id(), &[]));
        // A pid that cannot exist is spared (nothing to kill).
        assert!(spared(u32::MAX - 1, &[]));
    }

    #[test]
    fn messages_name_port_holder_and_policy() {
        let h = Holder {
            port: 3000,
            pid: 1234,
            command: "node server.js".into(),
        };
        for (policy, outcome) in [
            (PortConflict::AutoKill, Outcome::Restarted),
            (PortConflict::AutoKill, Outcome::Failed),
            (PortConflict::Fail, Outcome::Failed),
            (PortConflict::Skip, Outcome::Skipped),
            (PortConflict::Prompt, Outcome::Asking),
        ] {
            let m = message(&h, "web", policy, outcome);
            for part in ["port 3000", "pid 1234", "(node server.js)", policy.as_str()] {
                assert!(m.contains(part), "{m}");
            }
        }
    }
}
