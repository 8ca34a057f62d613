//! `agnt up -- CMD`: first every autostart script's readiness, through the `wait` tool (one
//! connection and thread per script, all at once; a port or URL wait names the script's process,
//! so a script that exits first fails the wait at once with its last output), then CMD itself as
//! a plain child of this process: the caller's stdin, stdout, stderr and terminal, its own
//! process group, signalled when the session is. The exit status is CMD's (128+signal when a
//! signal killed it, 127 when it cannot start, 130 when the session is interrupted).

use std::{
    os::unix::process::ExitStatusExt,
    path::Path,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, select};
use rustix::process::Signal;
use serde_json::json;

use super::{
    SIGNAL_ECHO,
    link::{self, Link},
};
use crate::{
    Error, Result, config::ScriptConfig, daemon::client::Client, supervisor::ReadyCheck,
    thread::JoinOnDrop,
};

/// Exit status when the session is interrupted.
pub(super) const INTERRUPTED: u8 = 130;
/// Exit status when CMD cannot start.
const CANNOT_RUN: u8 = 127;
/// How long CMD gets to exit after the signal that interrupted the session.
const CMD_GRACE: Duration = Duration::from_secs(5);
/// Lines of a script's output shown when it did not become ready.
const LAST_LINES: u64 = 20;
/// The `wait` tool's longest timeout.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Waits until every script is ready; `Ok(None)` when all are, `Ok(Some(code))` when the session
/// must end with `code` (a script failed: 1, or a signal came: 130).
pub(super) fn wait_ready(
    link: &Link,
    scripts: &[&ScriptConfig],
    signals: &Receiver<i32>,
) -> Result<Option<u8>> {
    let (tx, rx) = crossbeam_channel::bounded(scripts.len().max(1));
    let mut waiters = Vec::new();
    for script in scripts {
        let (mut client, tx) = (link.connect()?, tx.clone());
        let (name, ready, timeout) = (
            script.name.clone(),
            script.ready.clone(),
            script.ready_timeout,
        );
        let h = crate::thread::spawn(
            format!("agnt-ready-{name}"),
            crate::thread::SMALL_STACK * 2,
            move || {
                let mut result = ready_one(&mut client, &name, ready.as_ref(), timeout);
                // A run restarted after a port conflict gets its own wait (once).
                if result.is_err()
                    && super::conflict::settled_status(&mut client, &name).is_ok()
                    && super::conflict::await_restart(&mut client, &name, Instant::now() + timeout)
                {
                    result = ready_one(&mut client, &name, ready.as_ref(), timeout);
                }
                let _ = tx.send((name, result));
            },
        )
        .map_err(|e| Error::io("starting a readiness wait", None, e))?;
        waiters.push(JoinOnDrop::new(h));
    }
    drop(tx);
    for _ in scripts {
        select! {
            recv(signals) -> _ => {
                // The waiters end once teardown has stopped their processes.
                waiters.into_iter().for_each(JoinOnDrop::detach);
                return Ok(Some(INTERRUPTED));
            }
            recv(rx) -> msg => {
                let Ok((name, result)) = msg else { break };
                if let Err(e) = result {
                    eprintln!("agnt up: script {name:?} did not become ready: {e}");
                    waiters.into_iter().for_each(JoinOnDrop::detach);
                    return Ok(Some(1));
                }
            }
        }
    }
    Ok(None)
}

/// Waits for one script's readiness check (or, without one, checks that it has not failed).
pub(super) fn ready_one(
    client: &mut Client,
    name: &str,
    ready: Option<&ReadyCheck>,
    timeout: Duration,
) -> Result<()> {
    let root = client.project.clone();
    let t = timeout.min(MAX_WAIT).as_secs_f64();
    let args = match ready {
        Some(ReadyCheck::Log(re)) => {
            json!({"for": "log", "process_id": name, "pattern": re.as_str(), "timeout": t, "path": root})
        }
        Some(ReadyCheck::Port(p)) => {
            json!({"for": "port", "port": p, "process_id": name, "timeout": t, "path": root})
        }
        Some(ReadyCheck::Url(u)) => {
            json!({"for": "http", "url": u, "process_id": name, "timeout": t, "path": root})
        }
        None => {
            let st = link::tool(
                client,
                "proc",
                json!({"action": "status", "process_id": name, "path": root}),
            )?;
            if st["state"] != "failed" {
                return Ok(());
            }
            return Err(Error::Other(format!(
                "it ended ({}); last output:\n{}",
                st["summary"].as_str().unwrap_or("failed"),
                last_output(client, name)
            )));
        }
    };
    let v = link::tool(client, "wait", args)?;
    if v["matched"] == true {
        return Ok(());
    }
    Err(Error::Timeout(format!(
        "not ready after {t}s (last seen: {}); last output:\n{}",
        v["last_seen"],
        last_output(client, name)
    )))
}

/// The last lines of a process's output, for messages.
fn last_output(client: &mut Client, name: &str) -> String {
    let args = json!({"action": "output", "process_id": name, "tail": LAST_LINES, "path": client.project.clone()});
    let text = link::tool(client, "proc", args)
        .map(|v| v["output"].as_str().unwrap_or("").trim_end().to_string())
        .unwrap_or_default();
    if text.is_empty() {
        "(no output)".into()
    } else {
        text
    }
}

/// Runs CMD in `cwd` on the caller's terminal and returns its exit status; a signal on
/// `signals` is passed on to CMD's process group (SIGKILL after [`CMD_GRACE`] or on a second
/// signal) and makes the status 130.
pub(super) fn run(cmd: &[String], cwd: &Path, signals: &Receiver<i32>) -> Result<u8> {
    let Some((program, args)) = cmd.split_first() else {
        return Ok(0);
    };
    let mut child = match crate::supervisor::spawn::command(program)
        .args(args)
        .current_dir(cwd)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agnt up: cannot run {program:?}: {e}");
            return Ok(CANNOT_RUN);
        }
    };
    let pgid = child.id();
    let (exit_tx, exit_rx) = crossbeam_channel::bounded(1);
    let waiter = crate::thread::spawn("agnt-up-cmd", crate::thread::SMALL_STACK, move || {
        let _ = exit_tx.send(child.wait());
    })
    .map_err(|e| Error::io("starting the command waiter", None, e))?;
    let _waiter = JoinOnDrop::new(waiter);
    let code = select! {
        recv(exit_rx) -> status => match status {
            Ok(Ok(s)) => s
                .code()
                .map(|c| c.clamp(0, 255) as u8)
                .or_else(|| s.signal().map(|n| (128 + n).clamp(0, 255) as u8))
                .unwrap_or(1),
            _ => 1,
        },
        recv(signals) -> sig => {
            let sig = sig.ok().and_then(Signal::from_named_raw).unwrap_or(Signal::TERM);
            let _ = crate::supervisor::spawn::signal_group(pgid, sig);
            let started = Instant::now();
            let deadline = crossbeam_channel::at(started + CMD_GRACE);
            loop {
                select! {
                    recv(exit_rx) -> _ => break,
                    recv(deadline) -> _ => break,
                    recv(signals) -> _ => if started.elapsed() >= SIGNAL_ECHO { break },
                }
            }
            INTERRUPTED
        }
    };
    // Whatever CMD left running in its group (background jobs) goes with it.
    let _ = crate::supervisor::spawn::signal_group(pgid, Signal::KILL);
    Ok(code)
}
