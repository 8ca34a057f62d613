//! The one place agnt creates child processes, and the signals it sends to them.
//!
//! Every child leads its own process group (`process_group(0)`), so a signal to `-pgid`
//! reaches whatever the child started (watchers, compilers, `sh -c` subshells). Other modules
//! that need a child (the daemon re-executing itself, `agnt up -- CMD`) build it with
//! [`command`] or [`prepare`] instead of `std::process::Command::new`, which clippy forbids
//! elsewhere. Nothing here blocks or keeps state.

#![allow(clippy::disallowed_methods)]

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    io,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
};

use rustix::process::{Pid, Signal};

use super::CommandLine;
use crate::{Error, Result};

/// A `Command` for `program` that will lead its own process group. Callers add arguments,
/// stdio and environment. This is the only `Command::new` in the crate.
///
/// An `AGNT_PROCESS` marker this process inherited (agnt run under a supervisor) is not passed
/// on: a daemon that `agnt mcp` starts from a supervised script is not that script's
/// descendant by marker, so stopping the script does not kill the daemon. Supervised children
/// get their own marker ([`prepare`]'s caller sets it). This is the safe equivalent of removing
/// the variable from our own environment (`remove_var` is unsafe once threads run).
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0)
        .env_remove(super::descendants::MARKER_VAR);
    cmd
}

/// The program name of a command line, for messages (`sh` for a shell line).
pub fn program_name(line: &CommandLine) -> String {
    match line {
        CommandLine::Argv(argv) => argv.first().cloned().unwrap_or_default(),
        CommandLine::Shell(_) => "sh".to_string(),
    }
}

/// Builds the command for a supervised child: own process group, `cwd`, `env` on top of the
/// inherited environment, stdin from `/dev/null`, stdout and stderr piped.
/// An empty argv or an empty shell line is an [`Error::InvalidArgument`].
pub fn prepare(line: &CommandLine, cwd: &Path, env: &BTreeMap<String, String>) -> Result<Command> {
    let mut cmd = match line {
        CommandLine::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(Error::invalid(
                    "empty command: argv needs at least a program name",
                ));
            };
            if program.is_empty() {
                return Err(Error::invalid("empty command: the program name is empty"));
            }
            let mut cmd = command(program);
            cmd.args(args);
            cmd
        }
        CommandLine::Shell(text) => {
            if text.trim().is_empty() {
                return Err(Error::invalid("empty command: the shell line is empty"));
            }
            let mut cmd = command("sh");
            cmd.arg("-c").arg(text);
            cmd
        }
    };
    cmd.current_dir(cwd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Sends `sig` to every process in group `pgid`. A group that no longer exists is `Ok(false)`.
pub fn signal_group(pgid: u32, sig: Signal) -> io::Result<bool> {
    let Some(pid) = to_pid(pgid) else {
        return Ok(false);
    };
    match rustix::process::kill_process_group(pid, sig) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sends `sig` to one process. A process that no longer exists is `Ok(false)`.
/// Refuses (returns `Ok(false)`) to signal the calling process.
pub fn signal_pid(pid: u32, sig: Signal) -> io::Result<bool> {
    let Some(p) = to_pid(pid) else {
        return Ok(false);
    };
    if pid == std::process::id() {
        return Ok(false);
    }
    match rustix::process::kill_process(p, sig) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether any process of group `pgid` still exists (zombies count as existing to the kernel;
/// use [`super::procfs`] helpers to look closer).
pub fn group_exists(pgid: u32) -> bool {
    to_pid(pgid).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
}

/// A positive pid that is not 1 (signalling group 1 or "all" would be a disaster).
fn to_pid(raw: u32) -> Option<Pid> {
    if raw <= 1 || raw > i32::MAX as u32 {
        return None;
    }
    Pid::from_raw(raw as i32)
}
