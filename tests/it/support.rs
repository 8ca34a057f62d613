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

/// A `Command` for the built `agnt` binary (the one place tests build commands for it).
#[allow(clippy::disallowed_methods)]
pub fn agnt() -> std::process::Command {
    std::process::Command::new(bin())
}

/// A plain `Command` for test helpers (shells, python listeners).
#[allow(clippy::disallowed_methods)]
pub fn command(program: &str) -> std::process::Command {
    std::process::Command::new(program)
}

/// A child process that is killed (with its process group, if it leads one) when dropped, and
/// whose stdout and stderr are collected by background threads.
pub struct Spawned {
    pub child: std::process::Child,
    pub stdout: std::sync::Arc<parking_lot::Mutex<String>>,
    pub stderr: std::sync::Arc<parking_lot::Mutex<String>>,
    /// Set by each collector thread when its pipe reaches end of file.
    eof: [std::sync::Arc<std::sync::atomic::AtomicBool>; 2],
}

impl Spawned {
    /// Spawns `cmd` with piped stdout/stderr in its own process group.
    pub fn new(mut cmd: std::process::Command) -> Spawned {
        use std::os::unix::process::CommandExt;
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn");
        let (stdout, out_eof) = collect(child.stdout.take().unwrap());
        let (stderr, err_eof) = collect(child.stderr.take().unwrap());
        Spawned {
            child,
            stdout,
            stderr,
            eof: [out_eof, err_eof],
        }
    }

    /// Like [`Spawned::new`], with stdin a pipe the caller writes to.
    pub fn with_stdin(mut cmd: std::process::Command) -> (Spawned, std::process::ChildStdin) {
        use std::os::unix::process::CommandExt;
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let (stdout, out_eof) = collect(child.stdout.take().unwrap());
        let (stderr, err_eof) = collect(child.stderr.take().unwrap());
        let spawned = Spawned {
            child,
            stdout,
            stderr,
            eof: [out_eof, err_eof],
        };
        (spawned, stdin)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// Waits for exit up to `timeout`; `None` if still running. After an exit, also waits
    /// (briefly) until both pipes are drained, so `stdout()`/`stderr()` are complete.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            let eof = self.eof.clone();
            wait_until(Duration::from_secs(5), || {
                eof.iter()
                    .all(|e| e.load(std::sync::atomic::Ordering::Acquire))
            });
        }
        status
    }

    /// Sends a signal to this process only.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).unwrap();
        let _ = rustix::process::kill_process(pid, sig);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Still running (a test failed midway): ask politely first, so an `agnt up` or a daemon
        // can tear down the process groups it owns, then kill whatever is left.
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(rustix::process::Signal::TERM);
            wait_until(Duration::from_secs(5), || {
                self.child.try_wait().ok().flatten().is_some()
            });
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Collected = (
    std::sync::Arc<parking_lot::Mutex<String>>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
);

fn collect(mut r: impl std::io::Read + Send + 'static) -> Collected {
    let buf = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    let eof = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (out, done) = (buf.clone(), eof.clone());
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.lock().push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    (buf, eof)
}

/// Pids of live (non-zombie) processes whose process group is `pgid`.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut out = vec![];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the last ')' : state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<i32>() == Ok(pgid) {
            out.push(pid);
        }
    }
    out
}

/// The pid a script printed as `pid=N` in `agnt up`'s prefixed output.
pub fn printed_pid(out: &str, name: &str) -> Option<i32> {
    out.lines()
        .filter(|l| l.starts_with(name))
        .find_map(|l| l.split("pid=").nth(1))
        .and_then(|p| p.trim().parse().ok())
}

/// The URL `agnt up` announced for proxy `name`.
pub fn announced_proxy(out: &str, name: &str) -> Option<String> {
    let marker = format!("agnt: proxy {name} listening on ");
    out.lines()
        .find_map(|l| l.strip_prefix(&marker))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// Kills the listed process groups when dropped, so a failing test leaves no script behind.
pub struct KillGroups(pub Vec<i32>);

impl Drop for KillGroups {
    fn drop(&mut self) {
        for pgid in &self.0 {
            if let Some(pid) = rustix::process::Pid::from_raw(*pgid) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
    }
}
