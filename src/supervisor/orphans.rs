//! The orphan file: `<state_dir>/pids.json` records the live process groups of a manager, so
//! the next manager can kill what a crashed (SIGKILLed) one left behind.
//!
//! Format: `{"owner_pid": N, "instance": "...", "processes": [{"id", "project", "pid", "pgid",
//! "started_at"}]}` (`started_at` in Unix microseconds). `instance` is the owner's marker
//! instance: cleanup also kills every process marked by it (`setsid`'d and double-forked
//! descendants included). Every write goes to a temp file that is renamed over
//! the old one, so a reader never sees half a file. A group is only killed when its recorded
//! owner is dead (or a zombie) and a process whose process group is exactly the recorded pgid
//! still exists, which guards against pids the kernel has reused since.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::Mutex;
use rustix::process::Signal;
use serde::{Deserialize, Serialize};

use super::{ManagedProcess, descendants, procfs, spawn};
use crate::{Error, Result};

/// File name of the orphan file inside the state directory.
pub const FILE_NAME: &str = "pids.json";

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanRecord {
    /// Pid of the manager's process that wrote it.
    pub owner_pid: u32,
    /// The owner's marker instance (`AGNT_PROCESS=<instance>/...`); empty in old files.
    #[serde(default)]
    pub instance: String,
    /// Its live processes.
    pub processes: Vec<OrphanEntry>,
}

/// One live process in the orphan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanEntry {
    /// Process id within its project.
    pub id: String,
    /// Project path.
    pub project: PathBuf,
    /// OS pid.
    pub pid: u32,
    /// Process group id.
    pub pgid: u32,
    /// Spawn time, Unix microseconds.
    pub started_at: u64,
}

/// The orphan file of one manager.
#[derive(Debug)]
pub(crate) struct OrphanFile {
    path: PathBuf,
    instance: String,
    write_lock: Mutex<()>,
}

impl OrphanFile {
    /// Creates the directory if needed.
    pub(crate) fn open(dir: &Path, instance: &str) -> Result<Self> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::io("creating the state directory", Some(dir.to_path_buf()), e))?;
        Ok(OrphanFile {
            path: dir.join(FILE_NAME),
            instance: instance.to_string(),
            write_lock: Mutex::new(()),
        })
    }

    /// Kills the groups a dead previous owner left; returns their pgids.
    pub(crate) fn kill_previous(&self) -> Vec<u32> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::warn!("cannot read {}: {e}", self.path.display());
                return Vec::new();
            }
        };
        let record: OrphanRecord = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("ignoring malformed {}: {e}", self.path.display());
                return Vec::new();
            }
        };
        kill_orphans(&record)
    }

    /// Rewrites the file with the processes `live` returns (temp file + rename). `live` runs
    /// under the file's write lock, so concurrent writers land in the order they looked at the
    /// registry. Errors are logged, not returned: the orphan file is a safety net, not a reason
    /// to fail a start.
    pub(crate) fn write(&self, live: impl FnOnce() -> Vec<Arc<ManagedProcess>>) {
        let _g = self.write_lock.lock();
        let live = live();
        let record = OrphanRecord {
            owner_pid: std::process::id(),
            instance: self.instance.clone(),
            processes: live
                .iter()
                .filter_map(|p| {
                    let pid = p.pid()?;
                    Some(OrphanEntry {
                        id: p.id().to_string(),
                        project: p.project().to_path_buf(),
                        pid,
                        pgid: p.pgid().unwrap_or(pid),
                        started_at: p
                            .started_at()
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_micros() as u64),
                    })
                })
                .collect(),
        };
        let Ok(json) = serde_json::to_vec_pretty(&record) else {
            return;
        };
        if let Err(e) = crate::util::fs::write_atomic(&self.path, &json) {
            log::warn!("cannot write {}: {e}", self.path.display());
        }
    }

    /// Deletes the file (clean shutdown).
    pub(crate) fn remove(&self) {
        let _g = self.write_lock.lock();
        let _ = fs::remove_file(&self.path);
    }
}

/// How far a group leader's start time may lie from the recorded `started_at` (the boot time in
/// /proc has whole-second precision).
const START_TOLERANCE_MICROS: u64 = 3_000_000;

/// Kills the recorded groups if their owner is dead; returns the pgids signalled.
pub fn kill_orphans(record: &OrphanRecord) -> Vec<u32> {
    let me = std::process::id();
    if record.owner_pid == me {
        return Vec::new();
    }
    if record.owner_pid > 1 && procfs::is_alive(record.owner_pid) {
        log::warn!(
            "orphan file owner {} is still alive; leaving its processes alone",
            record.owner_pid
        );
        return Vec::new();
    }
    let my_group = procfs::stat(me).map(|s| s.pgrp);
    let mut killed = Vec::new();
    for e in &record.processes {
        if e.pgid <= 1 || Some(e.pgid) == my_group || killed.contains(&e.pgid) {
            continue;
        }
        // Only a group that still has a live member with exactly this pgid.
        if !procfs::group_alive(e.pgid) {
            continue;
        }
        // While a group exists the kernel hands out no pid equal to its id, so a group whose
        // leader is gone is ours. A live leader must be the process we started: a reused pid
        // that leads a new group of its own has another start time (and an entry without a
        // start time cannot prove it is ours).
        if let Some(leader_start) = procfs::start_time_micros(e.pgid)
            && (e.started_at == 0 || leader_start.abs_diff(e.started_at) > START_TOLERANCE_MICROS)
        {
            log::info!(
                "pid {} was reused since {} started; not killing it",
                e.pgid,
                e.id
            );
            continue;
        }
        log::info!(
            "killing orphaned group {} ({} of {})",
            e.pgid,
            e.id,
            e.project.display()
        );
        if spawn::signal_group(e.pgid, Signal::KILL).unwrap_or(false) {
            killed.push(e.pgid);
        }
    }
    // Descendants that left their groups still carry the dead owner's marker.
    let marked = descendants::kill_instance(&record.instance);
    if !marked.is_empty() {
        log::info!("killing orphaned descendant(s) {marked:?} by marker");
        killed.extend(marked);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_bad_json_is_ignored() {
        let r = OrphanRecord {
            owner_pid: 5,
            instance: "i".into(),
            processes: vec![OrphanEntry {
                id: "a".into(),
                project: "/p".into(),
                pid: 9,
                pgid: 9,
                started_at: 1,
            }],
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<OrphanRecord>(&s).unwrap(), r);
        let dir = tempfile::tempdir().unwrap();
        let f = OrphanFile::open(dir.path(), "i").unwrap();
        fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        assert!(f.kill_previous().is_empty());
        f.write(Vec::new);
        let back: OrphanRecord =
            serde_json::from_str(&fs::read_to_string(dir.path().join(FILE_NAME)).unwrap()).unwrap();
        assert_eq!(back.owner_pid, std::process::id());
        f.remove();
        assert!(!dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn own_or_live_owner_is_left_alone() {
        let entry = OrphanEntry {
            id: "x".into(),
            project: "/".into(),
            pid: 1,
            pgid: 1,
            started_at: 0,
        };
        let mine = OrphanRecord {
            owner_pid: std::process::id(),
            instance: String::new(),
            processes: vec![entry.clone()],
        };
        assert!(kill_orphans(&mine).is_empty());
        // pgid 1 is never signalled even with a dead owner.
        let dead = OrphanRecord {
            owner_pid: u32::MAX,
            instance: String::new(),
            processes: vec![entry],
        };
        assert!(kill_orphans(&dead).is_empty());
    }
}
