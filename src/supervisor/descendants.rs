//! Descendants by marker: every supervised child inherits `AGNT_PROCESS=<instance>/<project>/<id>`
//! ([`MARKER_VAR`]), and so does everything it starts, whether it calls `setsid`, double-forks
//! or leaves the process group. This module finds and kills same-uid processes whose
//! `/proc/<pid>/environ` carries a marker, and finds who still holds a pipe.
//!
//! It never targets this process or its ancestors (a supervised script that ran `agnt mcp`,
//! which started a daemon, must not take that daemon down), and it only reads `/proc`.

use std::{fs, os::fd::AsFd, os::unix::fs::MetadataExt};

use rustix::process::Signal;

use super::{procfs, spawn};

/// The environment variable carrying a supervised process's marker.
pub const MARKER_VAR: &str = "AGNT_PROCESS";

/// A fresh instance id for a manager: unique per process start (pid and start time).
pub fn new_instance() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{:x}-{:x}", std::process::id(), micros)
}

/// The marker of process `id` of `project` under manager `instance`.
pub fn marker(instance: &str, project: &std::path::Path, id: &str) -> String {
    format!("{instance}/{}/{id}", project.display())
}

/// The marker of one run (`seq`) of process `id`: stopping an old, exited run never kills the
/// descendants of the run that replaced it (auto-restart, restart).
pub fn run_marker(instance: &str, project: &std::path::Path, id: &str, seq: u64) -> String {
    format!("{}#{seq}", marker(instance, project, id))
}

/// SIGKILLs every process (but us and our ancestors) whose marker is exactly `marker`; returns
/// their pids.
pub fn kill_marked(marker: &str) -> Vec<u32> {
    kill_where(|m| m == marker.as_bytes())
}

/// SIGKILLs every process (but us and our ancestors) marked by manager `instance`.
pub fn kill_instance(instance: &str) -> Vec<u32> {
    if instance.is_empty() {
        return Vec::new();
    }
    let prefix = format!("{instance}/");
    kill_where(|m| m.starts_with(prefix.as_bytes()))
}

/// Pids of processes other than us that hold `fd`'s pipe open (by its inode).
pub fn pipe_holders(fd: impl AsFd) -> Vec<u32> {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return Vec::new();
    };
    let want = format!("pipe:[{}]", st.st_ino);
    let me = std::process::id();
    procfs::pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|dir| {
                dir.flatten()
                    .any(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
            })
        })
        .collect()
}

/// Whether `pid` carries an agnt marker (of any manager): some agnt supervises it.
pub fn is_marked(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| marker_of(&env).is_some())
}

/// The marker in a `/proc/<pid>/environ` block, if any.
fn marker_of(environ: &[u8]) -> Option<&[u8]> {
    environ.split(|&b| b == 0).find_map(|kv| {
        kv.strip_prefix(MARKER_VAR.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
    })
}

fn kill_where(matches: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let spared = self_and_ancestors();
    let uid = rustix::process::geteuid().as_raw();
    let mut killed = Vec::new();
    for pid in procfs::pids() {
        if spared.contains(&pid) {
            continue;
        }
        let same_user = fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid);
        if !same_user {
            continue;
        }
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if marker_of(&env).is_some_and(&matches)
            && spawn::signal_pid(pid, Signal::KILL).unwrap_or(false)
        {
            killed.push(pid);
        }
    }
    killed
}

/// This process and every ancestor up to init.
pub fn self_and_ancestors() -> Vec<u32> {
    let mut out = vec![std::process::id()];
    let mut pid = std::process::id();
    while let Some(st) = procfs::stat(pid) {
        if st.ppid <= 1 || out.contains(&st.ppid) {
            break;
        }
        out.push(st.ppid);
        pid = st.ppid;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_marker_in_an_environ_block() {
        let env = b"A=1\0AGNT_PROCESS=i/p/x\0AGNT_PROCESSX=no\0";
        assert_eq!(marker_of(env), Some(&b"i/p/x"[..]));
        assert_eq!(marker_of(b"AGNT_PROCESSX=no\0"), None);
        assert_eq!(marker("i", "/p".as_ref(), "x"), "i//p/x");
    }

    #[test]
    fn spares_us_and_our_ancestors() {
        let a = self_and_ancestors();
        assert_eq!(a[0], std::process::id());
        assert!(!a.contains(&1));
        assert!(kill_instance("").is_empty());
    }
}
