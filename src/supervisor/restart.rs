//! `auto-restart`: a process whose spec asks for it is started again after it exits on its own
//! (never after a requested stop, nor during shutdown), after an exponential backoff
//! ([`backoff`]: 0.5 s doubling, capped at [`MAX_BACKOFF`]). The new process's spec carries the
//! restart count and how the previous run ended, which status shows. A run whose port clash
//! (`clash`) was not skipped is left to that clash's verdict.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use super::{ManagedProcess, ProcessManager, clash::Outcome};

/// The first restart's delay.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest delay between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A spec's restart settings and history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restart when the process exits on its own.
    pub enabled: bool,
    /// Restarts so far (0 for the first run).
    pub restarts: u32,
    /// How the previous run ended (its summary), after a restart.
    pub last_exit: Option<String>,
}

/// The delay before restart number `restarts + 1`.
pub fn backoff(restarts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << restarts.min(16))
        .min(MAX_BACKOFF)
}

impl ProcessManager {
    /// Installs the exit hook that restarts `auto-restart` processes (done by `new`).
    pub(super) fn install_auto_restart(self: &Arc<Self>) {
        let weak: Weak<ProcessManager> = Arc::downgrade(self);
        self.on_exit(Arc::new(move |p: &ManagedProcess, _failed| {
            let policy = &p.spec().restart;
            if !policy.enabled || p.stop_requested() {
                return;
            }
            let mut spec = p.spec().clone();
            spec.restart.restarts += 1;
            spec.restart.last_exit = Some(p.summary());
            // A new start: a port conflict may restart it once again.
            spec.port_clash_restart = None;
            let (weak, seq) = (weak.clone(), p.seq());
            let delay = backoff(policy.restarts);
            let name = format!("agnt-restart-{}", spec.id);
            let started = crate::thread::spawn(name, crate::thread::SMALL_STACK, move || {
                std::thread::sleep(delay);
                let Some(pm) = weak.upgrade() else { return };
                // Only if nobody replaced, removed or restarted it meanwhile.
                let current = pm.get(&spec.project, &spec.id);
                if current
                    .as_ref()
                    .is_none_or(|c| c.seq() != seq || !c.state().is_terminal())
                {
                    return;
                }
                // A port clash decides itself what comes next (a restart, a failure, a client).
                if current
                    .and_then(|c| c.port_clash())
                    .is_some_and(|c| c.outcome != Outcome::Skipped)
                {
                    return;
                }
                let id = spec.id.clone();
                if let Err(e) = pm.start(spec) {
                    log::warn!("auto-restart of {id} failed: {e}");
                }
            });
            if let Err(e) = started {
                log::warn!("auto-restart of {}: cannot start its thread: {e}", p.id());
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
