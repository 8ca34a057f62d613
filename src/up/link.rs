//! How the session reaches the tools. A [`Link`] opens connections ([`Client`]s) either to a
//! running daemon's socket or to a `Host` this process serves itself; the session opens several
//! (one per output follower, per readiness wait, per stop, and a killer), and every one speaks
//! the same MCP `tools/call` messages an agent sends. [`Owned`] records what the session started
//! there, so that teardown stops exactly that (proxies first, then processes) and nothing else.
//! This module starts no process by itself and never touches a manager directly.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{
    Error, Result, config::ProxyEntry, daemon::client::Client, mcp::Toolbox, thread::JoinOnDrop,
};

/// Where the tools live: a daemon's socket, or a host served in this process.
#[derive(Debug, Clone)]
pub(super) enum Link {
    /// A running daemon of our version.
    Socket {
        /// Its socket.
        socket: PathBuf,
        /// The project sent with every call.
        project: PathBuf,
    },
    /// The session's own host, served over in-memory connections.
    InProcess {
        /// The tools over that host.
        toolbox: Arc<Toolbox>,
        /// The project sent with every call.
        project: PathBuf,
    },
}

impl Link {
    /// A new connection (each has its own thread on the serving side).
    pub(super) fn connect(&self) -> Result<Client> {
        match self {
            Link::Socket { socket, project } => Client::connect(socket, project.clone()),
            Link::InProcess { toolbox, project } => {
                Client::in_process(toolbox.clone(), project.clone())
            }
        }
    }

    /// The project every call is scoped to.
    pub(super) fn project(&self) -> &Path {
        match self {
            Link::Socket { project, .. } | Link::InProcess { project, .. } => project,
        }
    }
}

/// Calls a tool; a tool error (`isError`) becomes an `Err` with the tool's message.
pub(super) fn tool(client: &mut Client, name: &str, args: Value) -> Result<Value> {
    let r = client.call_tool(name, args)?;
    if r["isError"].as_bool().unwrap_or(false) {
        return Err(Error::Other(
            r["content"][0]["text"]
                .as_str()
                .unwrap_or("tool error")
                .to_string(),
        ));
    }
    Ok(r["structuredContent"].clone())
}

/// What the session started: the ids it stops at teardown.
#[derive(Debug, Default)]
pub(super) struct Owned(Mutex<OwnedInner>);

#[derive(Debug, Default)]
struct OwnedInner {
    processes: Vec<String>,
    proxies: Vec<String>,
    /// Set by [`Owned::close`]: whatever starts afterwards must stop itself.
    closed: bool,
}

impl Owned {
    /// Records a process the session started.
    pub(super) fn add_process(&self, id: &str) {
        self.0.lock().processes.push(id.to_string());
    }

    /// Records a proxy the session started; `false` once the session is closing (then the
    /// caller stops it: teardown has already taken its list).
    fn add_proxy(&self, id: &str) -> bool {
        let mut inner = self.0.lock();
        if !inner.closed {
            inner.proxies.push(id.to_string());
        }
        !inner.closed
    }

    /// Closes the session for new starts and takes what to stop: (processes, proxies).
    pub(super) fn close(&self) -> (Vec<String>, Vec<String>) {
        let mut inner = self.0.lock();
        inner.closed = true;
        (inner.processes.clone(), inner.proxies.clone())
    }
}

/// Starts proxy `entry` in front of `target` and records it; returns its listening URL.
pub(super) fn start_proxy(
    client: &mut Client,
    owned: &Owned,
    entry: &ProxyEntry,
    target: &str,
) -> Result<String> {
    let project = client.project.clone();
    let mut args =
        json!({"action": "start", "id": entry.name, "target_url": target, "path": project});
    if let Some(p) = entry.port {
        args["port"] = p.into();
    }
    if let Some(n) = entry.max_log_size {
        args["max_log_size"] = n.into();
    }
    if !entry.allowed_hosts.is_empty() {
        args["allowed_hosts"] = json!(entry.allowed_hosts);
    }
    if let Some(bind) = &entry.bind {
        args["bind_address"] = bind.clone().into();
    }
    if entry.allow_lan {
        args["allow_lan"] = true.into();
    }
    if !entry.redact {
        args["redact"] = false.into();
    }
    if !entry.redact_names.is_empty() {
        args["redact_names"] = entry.redact_names.clone().into();
    }
    if let Some(verify) = entry.verify_tls {
        args["verify_tls"] = verify.into();
    }
    let d = &entry.deadlines;
    for (key, v) in [
        ("connect_timeout", d.connect_timeout),
        ("response_timeout", d.response_timeout),
        ("body_timeout", d.body_timeout),
        ("stream_idle_timeout", d.stream_idle_timeout),
    ] {
        if let Some(v) = v {
            args[key] = v.as_secs_f64().into();
        }
    }
    if let Some(n) = d.body_min_bytes {
        args["body_min_bytes"] = n.into();
    }
    let v = tool(client, "proxy", args)
        .map_err(|e| Error::Other(format!("proxy {:?} failed to start: {e}", entry.name)))?;
    if !owned.add_proxy(&entry.name) {
        stop_proxy(client, &entry.name);
        return Err(Error::Other(format!(
            "proxy {:?} not started: the session is stopping",
            entry.name
        )));
    }
    Ok(v["url"].as_str().unwrap_or("?").to_string())
}

/// Stops the given proxies, then the given processes (each on its own connection, all at once,
/// so N stubborn processes take one grace period, not N); `force` kills them without one.
/// Returns when every stop has answered.
pub(super) fn stop(link: &Link, processes: &[String], proxies: &[String], force: bool) {
    if let Ok(mut client) = link.connect() {
        for id in proxies {
            stop_proxy(&mut client, id);
        }
    }
    let stoppers: Vec<JoinOnDrop<()>> = processes
        .iter()
        .filter_map(|id| {
            let (link, id) = (link.clone(), id.clone());
            let name = format!("agnt-up-stop-{id}");
            crate::thread::spawn(name, crate::thread::SMALL_STACK * 2, move || {
                let args = json!({"action": "stop", "process_id": id, "force": force, "path": link.project()});
                match link.connect().and_then(|mut c| tool(&mut c, "proc", args)) {
                    Ok(_) => {}
                    Err(e) => log::warn!("stopping {id}: {e}"),
                }
            })
            .map_err(|e| log::warn!("cannot start a stop thread: {e}"))
            .ok()
            .map(JoinOnDrop::new)
        })
        .collect();
    drop(stoppers);
}

fn stop_proxy(client: &mut Client, id: &str) {
    let project = client.project.clone();
    let args = json!({"action": "stop", "id": id, "path": project});
    if let Err(e) = tool(client, "proxy", args) {
        log::warn!("stopping proxy {id}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_closes_once_and_refuses_later_proxies() {
        let owned = Owned::default();
        owned.add_process("web");
        assert!(owned.add_proxy("app"));
        let (processes, proxies) = owned.close();
        assert_eq!(
            (processes, proxies),
            (vec!["web".into()], vec!["app".into()])
        );
        // A proxy that starts after teardown took its list must stop itself.
        assert!(!owned.add_proxy("late"));
        assert_eq!(owned.close().1, vec!["app".to_string()]);
    }
}
