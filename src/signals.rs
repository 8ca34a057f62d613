//! Process-wide shutdown signals: SIGINT and SIGTERM become messages on a crossbeam channel.
//!
//! [`shutdown_signals`] installs `signal-hook` handlers (which replace the default "terminate"
//! action) and starts one thread, `agnt-signals`, that forwards each signal number. The caller
//! owns the policy; the convention across agnt is: the first signal asks for a graceful stop
//! (`ProcessManager::shutdown` with a normal deadline), a second one means "exit now"
//! (aggressive shutdown, then exit). Call it early, before other threads start.

use crossbeam_channel::Receiver;
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

use crate::{Error, Result};

/// Routes SIGINT and SIGTERM into the returned channel (signal numbers, in arrival order).
/// Each call installs its own forwarder; the handlers stay for the life of the process.
pub fn shutdown_signals() -> Result<Receiver<i32>> {
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::io("installing signal handlers", None, e))?;
    let (tx, rx) = crossbeam_channel::bounded(16);
    // Detached: it forwards signals for the life of the process (the handlers stay too).
    crate::thread::spawn("agnt-signals", crate::thread::SMALL_STACK, move || {
        for sig in signals.forever() {
            if tx.send(sig).is_err() {
                // Nobody listens any more; keep the handlers (so the signal is not fatal) and stop.
                return;
            }
        }
    })
    .map_err(|e| Error::io("starting the signal thread", None, e))?;
    Ok(rx)
}
