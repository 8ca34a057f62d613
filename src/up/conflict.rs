//! `project { port-conflict ... }`: before an autostart script starts, its declared `ports` are
//! checked for listeners this session did not start (`ports::listeners`, or a connect when the
//! holder is not visible in `/proc`). `prompt` asks on a terminal (and otherwise behaves as
//! `fail`, listing the conflicts), `auto-kill` kills the holders, `skip` warns and starts,
//! `fail` aborts with the list.
//!
//! After start the supervisor watches the ports itself (`supervisor::clash`) and reports its
//! verdict as `port_conflict` in the process's answers; [`after_start`] turns it into what the
//! session says and does, asking on a terminal for `prompt` (one question at a time).

use std::{
    io::{BufRead, IsTerminal, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::link;
use crate::{
    Error, Result,
    config::{PortConflict, ScriptConfig},
    daemon::client::Client,
    supervisor::{clash, ports},
};

/// One question on the terminal at a time (followers and the pre-flight may ask at once).
static ASKING: Mutex<()> = Mutex::new(());
/// How often a wait for a run restarted after a port conflict looks at its status.
const RESTART_POLL: Duration = Duration::from_millis(100);

/// Asks `question` on the terminal; `None` without one (stdin is not a terminal).
fn ask(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let _one = ASKING.lock().unwrap_or_else(|e| e.into_inner());
    eprint!("agnt up: {question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    Some(answer.trim().eq_ignore_ascii_case("y"))
}

/// What a follower does after the supervisor's verdict on a port conflict.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Keep following this run (a `skip` warning was printed).
    Follow,
    /// A new run comes (the holder was killed): follow it once this one has ended.
    Restarting,
    /// The session fails with this message.
    Abort(String),
}

/// Acts on `clash`, the `port_conflict` of process `id`'s answer: prints what happened, asks
/// on a terminal for `prompt` (answering through `proc resolve_conflict`, or `proc stop`,
/// which declines).
pub(super) fn after_start(client: &mut Client, id: &str, clash: &Value) -> Verdict {
    let message = clash["message"].as_str().unwrap_or("port conflict");
    match clash["outcome"].as_str() {
        Some("skipped") => {
            eprintln!("agnt up: script {id:?}: {message}");
            Verdict::Follow
        }
        Some("restarted") => {
            eprintln!("agnt up: script {id:?}: {message}");
            Verdict::Restarting
        }
        Some("asking") => {
            let (port, pid) = (&clash["port"], &clash["pid"]);
            let command = clash["command"].as_str().unwrap_or("?");
            let question =
                format!("port {port} is held by pid {pid} ({command}): kill it and restart {id}?");
            let root = client.project.clone();
            let why = match ask(&question) {
                Some(true) => {
                    let args =
                        json!({"action": "resolve_conflict", "process_id": id, "path": root});
                    match link::tool(client, "proc", args) {
                        Ok(v) => {
                            eprintln!(
                                "agnt up: script {id:?}: killed pid(s) {} holding port {port}; restarting it once (port-conflict prompt)",
                                v["killed_pids"]
                            );
                            return Verdict::Restarting;
                        }
                        Err(e) => format!("could not kill it: {e}"),
                    }
                }
                Some(false) => "answered no".to_string(),
                None => "no terminal to ask on".to_string(),
            };
            // Stopping it declines the conflict (its run fails, naming the holder).
            let decline = json!({"action": "stop", "process_id": id, "path": root});
            let _ = link::tool(client, "proc", decline);
            Verdict::Abort(format!(
                "script {id:?}: port {port} is held by pid {pid} ({command}), which agnt does not manage (port-conflict prompt, {why}): not starting it; free the port, or set project {{ port-conflict \"auto-kill\" }}"
            ))
        }
        _ => Verdict::Abort(format!("script {id:?}: {message}")),
    }
}

/// Longest wait for a run's port watch to give its verdict after the run ended.
const VERDICT_WAIT: Duration = Duration::from_secs(10);

/// Process `id`'s status once its port watch has given its verdict (or after
/// [`VERDICT_WAIT`]): a run that fails on a taken port ends a moment before the verdict comes.
pub(super) fn settled_status(client: &mut Client, id: &str) -> Result<Value> {
    let deadline = Instant::now() + VERDICT_WAIT;
    let status = json!({"action": "status", "process_id": id, "path": client.project.clone()});
    loop {
        let st = link::tool(client, "proc", status.clone())?;
        let ended = matches!(st["state"].as_str(), Some("stopped" | "failed"));
        if !(ended && st["port_watch_active"] == true) || Instant::now() >= deadline {
            return Ok(st);
        }
        std::thread::sleep(RESTART_POLL);
    }
}

/// Waits (polling its status, until `deadline`) for the run of `id` that replaced one with a
/// port conflict; `true` once it is there.
pub(super) fn await_restart(client: &mut Client, id: &str, deadline: Instant) -> bool {
    let root = client.project.clone();
    while Instant::now() < deadline {
        let status = json!({"action": "status", "process_id": id, "path": root});
        let Ok(st) = link::tool(client, "proc", status) else {
            return false;
        };
        if st["restarted_for_port_conflict"].is_object() {
            return true;
        }
        let pending = matches!(
            st["port_conflict"]["outcome"].as_str(),
            Some("restarted" | "asking")
        );
        if !pending {
            return false;
        }
        std::thread::sleep(RESTART_POLL);
    }
    false
}

/// How long the connect check waits.
const CONNECT_CHECK: Duration = Duration::from_millis(300);

/// One declared port that something already listens on.
#[derive(Debug)]
struct Conflict {
    port: u16,
    /// Visible holders (empty when another user's process holds it).
    pids: Vec<u32>,
}

fn conflicts(script: &ScriptConfig) -> Vec<Conflict> {
    script
        .ports
        .iter()
        .filter_map(|&port| {
            let pids = ports::listeners(port);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let taken =
                !pids.is_empty() || TcpStream::connect_timeout(&addr, CONNECT_CHECK).is_ok();
            taken.then_some(Conflict { port, pids })
        })
        .collect()
}

fn describe(script: &ScriptConfig, found: &[Conflict]) -> String {
    let list: Vec<String> = found
        .iter()
        .map(|c| match c.pids.as_slice() {
            [] => format!("port {} (held by a process we cannot see)", c.port),
            pids => format!("port {} (held by pid {pids:?})", c.port),
        })
        .collect();
    format!("script {:?}: {}", script.name, list.join(", "))
}

/// Applies `policy` to `script`'s declared ports; an error aborts the autostart.
pub(super) fn preflight(script: &ScriptConfig, policy: PortConflict) -> Result<()> {
    let found = conflicts(script);
    if found.is_empty() {
        return Ok(());
    }
    let what = describe(script, &found);
    let (kill, how) = match policy {
        PortConflict::Skip => {
            eprintln!(
                "agnt up: warning: {what} already in use (port-conflict skip): starting anyway"
            );
            return Ok(());
        }
        PortConflict::AutoKill => (true, ""),
        PortConflict::Fail => (false, "port-conflict fail"),
        PortConflict::Prompt => match ask(&format!("{what} already in use: kill the holder(s)?")) {
            Some(yes) => (yes, "port-conflict prompt, answered no"),
            None => (false, "port-conflict prompt, no terminal to ask on"),
        },
    };
    if !kill {
        return Err(Error::Other(format!(
            "{what} already in use ({how}): not starting; free the port, or set project {{ port-conflict \"auto-kill\" }} or \"skip\""
        )));
    }
    for c in &found {
        // Never pid 1, us, our group or what an agnt supervises (`clash::spared`).
        let (spared, holders): (Vec<u32>, Vec<u32>) = c
            .pids
            .iter()
            .partition(|&&pid| crate::supervisor::procfs::is_alive(pid) && clash::spared(pid, &[]));
        if !spared.is_empty() {
            return Err(Error::Other(format!(
                "script {:?}: port {} is held by pid {spared:?}, which agnt does not kill (an agnt-supervised process, or our own): not starting; stop it, or free the port",
                script.name, c.port
            )));
        }
        let killed = ports::terminate(&holders, &format!("port-conflict on port {}", c.port));
        eprintln!(
            "agnt up: port {} was held by pid {killed:?}: killed (port-conflict auto-kill)",
            c.port
        );
    }
    Ok(())
}
