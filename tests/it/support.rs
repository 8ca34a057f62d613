//! Test helpers: the binary's path, temp dirs, waiting for a condition with a deadline.

#![allow(dead_code)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

/// Path of the built `agnt` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_agnt"))
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
