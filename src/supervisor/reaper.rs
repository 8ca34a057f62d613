//! Child subreaper (Linux): the manager adopts orphaned grandchildren instead of PID 1 and
//! reaps them, so a killed group leaves no zombies behind.
//!
//! A thread named `agnt-reaper` waits for SIGCHLD (through `signal-hook`) and then reaps only
//! zombies that (a) have this process as parent, (b) belong to a process group of a managed
//! process and (c) are not a group leader. It never calls `waitpid(-1)`: our direct children
//! (group leaders) are reaped by their own waiter threads, and children other code spawned
//! (their own groups) are left to their owners.

use rustix::process::{Pid, WaitOptions};
use signal_hook::{consts::SIGCHLD, iterator::Signals};

use super::procfs;
use crate::{Error, Result, thread::JoinOnDrop};

/// The running reaper thread.
#[derive(Debug)]
pub(crate) struct Reaper {
    handle: signal_hook::iterator::Handle,
    thread: JoinOnDrop<()>,
}

impl Reaper {
    /// Becomes the child subreaper and starts the thread. On every SIGCHLD it asks `groups`
    /// for the process groups of the managed processes and the pids killed by marker outside
    /// them; `None` (the owner is gone) ends the thread.
    pub(crate) fn start(
        groups: impl Fn() -> Option<(Vec<u32>, Vec<u32>)> + Send + 'static,
    ) -> Result<Reaper> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| Error::io("becoming the child subreaper", None, e.into()))?;
        let mut signals = Signals::new([SIGCHLD])
            .map_err(|e| Error::io("registering the SIGCHLD handler", None, e))?;
        let handle = signals.handle();
        let thread = crate::thread::spawn("agnt-reaper", crate::thread::SMALL_STACK, move || {
            for _ in signals.forever() {
                match groups() {
                    Some((groups, adopted)) => {
                        reap(&groups, &adopted);
                    }
                    None => return,
                }
            }
        })
        .map_err(|e| Error::io("starting the reaper thread", None, e))?;
        Ok(Reaper {
            handle,
            thread: JoinOnDrop::new(thread),
        })
    }

    /// Stops the thread and joins it.
    pub(crate) fn stop(self) {
        self.handle.close();
        self.thread.join();
    }
}

/// Reaps adopted zombies of managed groups, and the marker-killed pids in `adopted`; returns
/// how many.
fn reap(groups: &[u32], adopted: &[u32]) -> usize {
    let me = std::process::id();
    let mut n = 0;
    for pid in procfs::pids() {
        let Some(st) = procfs::stat(pid) else {
            continue;
        };
        let ours = (st.pid != st.pgrp && groups.contains(&st.pgrp)) || adopted.contains(&st.pid);
        if st.state != 'Z' || st.ppid != me || !ours {
            continue;
        }
        if let Some(p) = Pid::from_raw(pid as i32)
            && rustix::process::waitpid(Some(p), WaitOptions::NOHANG).is_ok()
        {
            log::debug!("reaped orphaned grandchild {pid} of group {}", st.pgrp);
            n += 1;
        }
    }
    n
}
