//! `cleanup_port`: find who listens on a TCP port through `/proc/net/tcp{,6}` and `/proc/*/fd`
//! (no `lsof`), SIGTERM them, wait briefly for them to die, SIGKILL survivors. The calling
//! process is never signalled. The `/proc/net` parser is pure and ignores malformed lines.

use std::{
    fs,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use rustix::{
    event::{PollFd, PollFlags, Timespec},
    process::{Pid, PidfdFlags, Signal},
};

use super::{procfs, spawn};
use crate::{Error, Result};

/// How long listeners get to exit after SIGTERM before SIGKILL.
pub const TERM_WAIT: Duration = Duration::from_millis(500);

/// TCP state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Socket inodes listening on `port` in the text of a `/proc/net/tcp` or `/proc/net/tcp6`
/// file. The header and malformed lines are skipped.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let _slot = f.next()?;
            let local = f.next()?;
            let _remote = f.next()?;
            let state = f.next()?;
            // tx:rx, tr:when, retrnsmt, uid, timeout, inode
            let inode = f.nth(5)?;
            let (_, port_hex) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(port_hex, 16).ok()?;
            if p != port || !state.eq_ignore_ascii_case(LISTEN) {
                return None;
            }
            inode.parse::<u64>().ok().filter(|&i| i != 0)
        })
        .collect()
}

/// Pids (other than the caller) holding any of `inodes` open, found through `/proc/*/fd`.
pub fn pids_with_sockets(inodes: &[u64]) -> Vec<u32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let mut out = Vec::new();
    for pid in procfs::pids() {
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds.filter_map(|e| e.ok()).any(|e| {
            fs::read_link(e.path())
                .ok()
                .and_then(|t| socket_inode(t.to_str()?))
                .is_some_and(|i| inodes.contains(&i))
        });
        if holds {
            out.push(pid);
        }
    }
    out
}

/// `socket:[1234]` → 1234.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Pids listening on `port` (IPv4 or IPv6), never the caller.
pub fn listeners(port: u16) -> Vec<u32> {
    let mut inodes = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(file) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    pids_with_sockets(&inodes)
}

/// Kills whoever listens on `port`: SIGTERM, up to [`TERM_WAIT`] for them to exit, SIGKILL.
/// Returns the pids signalled. Port 0 is an [`Error::InvalidArgument`].
pub fn cleanup_port(port: u16) -> Result<Vec<u32>> {
    if port == 0 {
        return Err(Error::invalid(
            "port 0 is not a real port: give the port to free",
        ));
    }
    let (holders, spared): (Vec<u32>, Vec<u32>) =
        listeners(port).into_iter().partition(|&pid| killable(pid));
    if holders.is_empty() && !spared.is_empty() {
        return Err(Error::invalid(format!(
            "port {port} is held by pid {spared:?} (init, agnt itself or one of its ancestors, \
             or agnt's own process group): not killed"
        )));
    }
    if !spared.is_empty() {
        log::warn!("cleanup_port {port}: sparing pid {spared:?} (init, agnt or its ancestors)");
    }
    Ok(terminate(&holders, &format!("cleanup_port {port}")))
}

/// Whether freeing a port may signal `pid`: never init, agnt itself, its ancestors (the shell or
/// `agnt up` that started it) or its own process group, whatever listens where.
fn killable(pid: u32) -> bool {
    if pid <= 1 || super::descendants::self_and_ancestors().contains(&pid) {
        return false;
    }
    let ours = rustix::process::getpgrp().as_raw_nonzero().get() as u32;
    procfs::stat(pid).is_some_and(|st| st.pgrp != ours)
}

/// SIGTERMs `pids`, gives them up to [`TERM_WAIT`] to exit, SIGKILLs survivors; returns the pids
/// signalled. `what` names the reason in the log. The caller has spared whoever must live.
pub fn terminate(pids: &[u32], what: &str) -> Vec<u32> {
    let mut signalled = Vec::new();
    let mut watch: Vec<(u32, Option<OwnedFd>)> = Vec::new();
    for &pid in pids {
        // Open the pidfd before signalling, so pid reuse cannot confuse the wait.
        let fd = Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        match spawn::signal_pid(pid, Signal::TERM) {
            Ok(true) => {
                log::info!("{what}: sent SIGTERM to {pid}");
                signalled.push(pid);
                watch.push((pid, fd));
            }
            Ok(false) => {}
            Err(e) => log::warn!("{what}: cannot signal {pid}: {e}"),
        }
    }
    wait_exit(&mut watch, TERM_WAIT);
    for (pid, _) in watch {
        if procfs::is_alive(pid) {
            log::info!("{what}: {pid} survived SIGTERM, sending SIGKILL");
            let _ = spawn::signal_pid(pid, Signal::KILL);
        }
    }
    signalled
}

/// Waits until every watched process exited or `limit` passes; drops the exited ones from
/// `watch`. Uses pidfds where the kernel gave one, else checks `/proc` every 10 ms.
fn wait_exit(watch: &mut Vec<(u32, Option<OwnedFd>)>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        watch.retain(|(pid, _)| procfs::is_alive(*pid));
        let now = Instant::now();
        if watch.is_empty() || now >= deadline {
            return;
        }
        let left = (deadline - now).min(if watch.iter().all(|(_, fd)| fd.is_some()) {
            limit
        } else {
            Duration::from_millis(10)
        });
        let fds: Vec<_> = watch.iter().filter_map(|(_, fd)| fd.as_ref()).collect();
        let mut polls: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::IN))
            .collect();
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as _,
        };
        if polls.is_empty() {
            std::thread::park_timeout(left);
        } else {
            let _ = rustix::event::poll(&mut polls, Some(&ts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 22222 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn init_agnt_its_ancestors_and_its_group_are_never_killed_for_a_port() {
        assert!(!killable(0));
        assert!(!killable(1));
        assert!(!killable(std::process::id()));
        let parent = procfs::stat(std::process::id()).unwrap().ppid;
        assert!(!killable(parent));
        // A child leading its own group (as every supervised child does) may be.
        let mut child = spawn::command("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let may = killable(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(may, "a child in its own group is killable");
    }

    #[test]
    fn finds_listeners_on_port() {
        assert_eq!(listening_inodes(TCP, 8080), vec![12345]);
        assert_eq!(listening_inodes(TCP, 80), vec![333]);
        assert_eq!(listening_inodes(TCP6, 8080), vec![777]);
        assert!(listening_inodes(TCP, 9999).is_empty());
    }

    #[test]
    fn malformed_lines_are_ignored() {
        let junk = "garbage\n0: zz:zz 0 0A\n   0: 0100007F:XYZ 00000000:0000 0A a b c d e 5\n   1: 0100007F:1F90 x 0A a b c d e notanumber\n   2: 0100007F:1F90 x 0A a b c d e 0\n\u{0}\u{ffff}";
        assert!(listening_inodes(junk, 8080).is_empty());
        assert!(listening_inodes("", 8080).is_empty());
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn port_zero_is_rejected() {
        assert!(matches!(cleanup_port(0), Err(Error::InvalidArgument(_))));
    }
}
