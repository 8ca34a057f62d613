//! `project { port-conflict ... }`: before an autostart script starts, its declared `ports` are
//! checked for listeners this session did not start (`ports::listeners`, or a connect when the
//! holder is not visible in `/proc`). `prompt` asks on a terminal (and otherwise behaves as
//! `fail`, listing the conflicts), `auto-kill` kills the holders, `skip` warns and starts,
//! `fail` aborts with the list.

use std::{
    io::{BufRead, IsTerminal, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use crate::{
    Error, Result,
    config::{PortConflict, ScriptConfig},
    supervisor::ports,
};

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
    let kill = match policy {
        PortConflict::Skip => {
            eprintln!(
                "agnt up: warning: {what} already in use (port-conflict skip): starting anyway"
            );
            return Ok(());
        }
        PortConflict::AutoKill => true,
        PortConflict::Fail => false,
        PortConflict::Prompt if std::io::stdin().is_terminal() => {
            eprint!("agnt up: {what} already in use: kill the holder(s)? [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            answer.trim().eq_ignore_ascii_case("y")
        }
        PortConflict::Prompt => false,
    };
    if !kill {
        let how = match policy {
            PortConflict::Prompt => "port-conflict prompt, no terminal to ask on",
            _ => "port-conflict fail",
        };
        return Err(Error::Other(format!(
            "{what} already in use ({how}): not starting; free the port, or set project {{ port-conflict \"auto-kill\" }} or \"skip\""
        )));
    }
    for c in &found {
        let killed = ports::cleanup_port(c.port)?;
        eprintln!(
            "agnt up: port {} was held by pid {killed:?}: killed (port-conflict auto-kill)",
            c.port
        );
    }
    Ok(())
}
