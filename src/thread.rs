//! Named threads with small explicit stacks, and a handle that joins on drop.
//!
//! Every thread agnt starts goes through [`spawn`], so every thread has a name and an owner.

use std::{io, thread};

/// Stack size for the pump and waiter threads: they hold a read buffer and little else.
pub const SMALL_STACK: usize = 128 * 1024;

/// Starts a named thread with the given stack size.
pub fn spawn<F, T>(name: impl Into<String>, stack: usize, f: F) -> io::Result<thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn(f)
}

/// A join handle that joins its thread when dropped.
#[derive(Debug)]
pub struct JoinOnDrop<T>(Option<thread::JoinHandle<T>>);

impl<T> JoinOnDrop<T> {
    /// Wraps a handle.
    pub fn new(handle: thread::JoinHandle<T>) -> Self {
        JoinOnDrop(Some(handle))
    }

    /// Joins now and returns the thread's result (`None` if it panicked).
    pub fn join(mut self) -> Option<T> {
        self.0.take().and_then(|h| h.join().ok())
    }

    /// Lets the thread run on, unjoined.
    pub fn detach(mut self) {
        self.0.take();
    }
}

impl<T> Drop for JoinOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            // Never join ourselves (a thread dropping its own handle).
            if h.thread().id() != thread::current().id() {
                let _ = h.join();
            }
        }
    }
}
