//! How other threads reach a proxy's event loop: `Control` messages over one bounded crossbeam
//! channel (`Inbox`), plus the `mio::Waker` the loop publishes when it starts so a message is
//! seen at once rather than at the next tick.
//!
//! The loop never sends to its own inbox (it never blocks); senders are API callers (`exec`,
//! `stop`, drop) and the screenshot writer thread. A sender that finds the channel full wakes
//! the loop (which drains every message each turn) and waits for room, at most
//! [`SEND_TIMEOUT`].

use std::{sync::Arc, time::Duration};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use super::channel::ShotDone;

/// Messages in flight to one loop. Each `exec` caller has at most one (it waits for its own
/// answer), `Stop` is sent once per stop, and screenshot completions are bounded by the
/// writer's queue (`ProxyManagerOptions::screenshot_queue` + the one being written); 64 covers
/// a burst of concurrent `exec` callers (the MCP worker pool is smaller) without letting a
/// stuck loop accumulate work.
pub(crate) const CAPACITY: usize = 64;
/// Longest a sender waits for room in a full channel before giving up.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages from other threads to the loop.
#[derive(Debug)]
pub(crate) enum Control {
    Exec {
        id: String,
        code: String,
    },
    Stop,
    /// The writer thread is done with a screenshot: log it and answer the page.
    Screenshot(ShotDone),
    /// Send `text` to every connected top-level page; the number reached goes to `reply`.
    Broadcast {
        text: String,
        reply: crossbeam_channel::Sender<usize>,
    },
    /// Test hook: make the loop panic.
    Panic,
}

/// The sending side of a loop's control channel and its waker.
#[derive(Debug)]
pub(crate) struct Inbox {
    tx: Sender<Control>,
    /// Published by the loop before it polls; `None` while no loop runs.
    pub waker: Mutex<Option<Arc<mio::Waker>>>,
}

/// Receiver type the loop thread owns.
pub(crate) type ControlRx = Receiver<Control>;

impl Inbox {
    /// A bounded channel of [`CAPACITY`] messages.
    pub fn new() -> (Inbox, ControlRx) {
        let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
        let inbox = Inbox {
            tx,
            waker: Mutex::new(None),
        };
        (inbox, rx)
    }

    /// Sends and wakes the loop; false when no loop is there to take it. Must not be called
    /// on the loop thread (it may wait for room).
    pub fn send(&self, c: Control) -> bool {
        let c = match self.tx.try_send(c) {
            Ok(()) => return self.wake(),
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(c)) => c,
        };
        // Full: the loop drains everything each turn; make sure it takes its turn now.
        self.wake();
        if self.tx.send_timeout(c, SEND_TIMEOUT).is_err() {
            return false;
        }
        self.wake()
    }

    fn wake(&self) -> bool {
        match self.waker.lock().as_ref() {
            Some(w) => w.wake().is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_without_a_loop_gives_up() {
        let (inbox, rx) = Inbox::new();
        for _ in 0..CAPACITY {
            // No loop: queued but reported as not delivered.
            assert!(!inbox.send(Control::Stop));
        }
        assert_eq!(rx.len(), CAPACITY);
        drop(rx);
        // Disconnected: refused at once.
        assert!(!inbox.send(Control::Stop));
    }
}
