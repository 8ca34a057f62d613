//! `agnt up` when a daemon already runs: instead of supervising locally, the session asks the
//! daemon (through the same tools an agent uses) to start the project's autostart scripts and
//! proxies, follows their output, waits for their readiness, and stops exactly what it started.
//! Proxies whose target is a script's printed URL are started by a [`ScriptProxies`] fed that
//! script's output; a [`Killer`] on its own connection force-stops everything while a graceful
//! stop is still under way.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::client::Client;
use crate::{
    Error, Result,
    config::{ProxyEntry, ScriptConfig},
    supervisor::ReadyCheck,
    thread::JoinOnDrop,
};

/// What a session started in the daemon; shared with its [`ScriptProxies`].
#[derive(Debug, Default)]
struct Started {
    processes: Vec<String>,
    proxies: Vec<String>,
    /// Set by `stop_all`: nothing may be started after it.
    closed: bool,
}

/// A foreground session whose processes live in the daemon.
#[derive(Debug)]
pub struct RemoteSession {
    socket: PathBuf,
    root: PathBuf,
    client: Client,
    started: Arc<Mutex<Started>>,
}

fn tool(client: &mut Client, name: &str, args: Value) -> Result<Value> {
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

impl RemoteSession {
    /// Connects to a daemon of this version on `socket`; `None` when none answers (or it is
    /// another version: then the caller supervises locally).
    pub fn connect(socket: &Path, root: &Path) -> Option<RemoteSession> {
        let mut client = Client::connect(socket, root.to_path_buf()).ok()?;
        client.check_version().ok()?;
        Some(RemoteSession {
            socket: socket.to_path_buf(),
            root: root.to_path_buf(),
            client,
            started: Arc::default(),
        })
    }

    /// Starts a `.agnt.kdl` script (by name) in the daemon; the process id is the name.
    pub fn start_script(&mut self, name: &str) -> Result<Value> {
        let v = tool(
            &mut self.client,
            "run",
            json!({"script_name": name, "id": name, "path": self.root}),
        )?;
        self.started.lock().processes.push(name.to_string());
        Ok(v)
    }

    /// Starts a proxy in front of `target` in the daemon.
    pub fn start_proxy(&mut self, entry: &ProxyEntry, target: &str) -> Result<Value> {
        start_proxy(&mut self.client, &self.started, &self.root, entry, target)
    }

    /// For the proxies of `entries` whose target is `script`'s printed URL: a watcher, on its
    /// own connection, that starts them once that script's output names a local URL. `None`
    /// when no proxy waits for this script.
    pub fn script_proxies(
        &self,
        script: &ScriptConfig,
        entries: &[ProxyEntry],
    ) -> Result<Option<ScriptProxies>> {
        let pending: Vec<_> = entries
            .iter()
            .filter(|e| e.script.as_deref() == Some(&script.name))
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok(None);
        }
        // Config parsing validated these patterns already.
        let matchers = script
            .url_matchers
            .iter()
            .filter_map(|m| regex::Regex::new(m).ok())
            .collect();
        Ok(Some(ScriptProxies {
            client: Client::connect(&self.socket, self.root.clone())?,
            root: self.root.clone(),
            started: self.started.clone(),
            matchers,
            pending,
        }))
    }

    /// A second connection that can force-stop what this session started while this one is
    /// busy stopping it gracefully.
    pub fn killer(&self) -> Option<Killer> {
        Some(Killer {
            client: Client::connect(&self.socket, self.root.clone()).ok()?,
            root: self.root.clone(),
            started: self.started.clone(),
        })
    }

    /// How many processes this session started (and has not stopped yet).
    pub fn process_count(&self) -> usize {
        self.started.lock().processes.len()
    }

    /// Waits until `name` is ready by its check (a log regex, a port, a URL), or until it runs.
    pub fn wait_ready(
        &mut self,
        name: &str,
        ready: Option<&ReadyCheck>,
        timeout: Duration,
    ) -> Result<()> {
        let t = timeout.as_secs_f64();
        let args = match ready {
            Some(ReadyCheck::Log(re)) => {
                json!({"for": "log", "process_id": name, "pattern": re.as_str(), "timeout": t, "path": self.root})
            }
            Some(ReadyCheck::Port(p)) => json!({"for": "port", "port": p, "timeout": t}),
            Some(ReadyCheck::Url(u)) => json!({"for": "http", "url": u, "timeout": t}),
            None => return Ok(()),
        };
        let v = tool(&mut self.client, "wait", args)?;
        if v["matched"] == true {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "{name} not ready after {t}s; last seen: {}",
                v["last_seen"]
            )))
        }
    }

    /// Follows `name`'s combined output from the start on its own connection, handing each
    /// chunk of complete text to `on_text`, until the process has ended and everything is out.
    pub fn follow(
        &self,
        name: &str,
        mut on_text: impl FnMut(&str) + Send + 'static,
    ) -> Result<JoinOnDrop<()>> {
        let mut client = Client::connect(&self.socket, self.root.clone())?;
        let (id, root) = (name.to_string(), self.root.clone());
        let h = crate::thread::spawn(format!("agnt-follow-{name}"), crate::thread::SMALL_STACK * 2, move || {
            let mut cursor = 0u64;
            loop {
                let args = json!({"action": "output", "process_id": id, "since": cursor, "max_bytes": 65536, "path": root});
                let Ok(out) = tool(&mut client, "proc", args) else { return };
                let text = out["output"].as_str().unwrap_or("");
                if !text.is_empty() {
                    on_text(text);
                }
                cursor = out["next_offset"].as_u64().unwrap_or(cursor);
                let ended = matches!(out["state"].as_str(), Some("stopped" | "failed"));
                if ended && text.is_empty() {
                    return;
                }
                // Block until something new arrives (or a while passes); an error means it ended.
                let _ = tool(
                    &mut client,
                    "wait",
                    json!({"for": "log", "process_id": id, "pattern": "(?s).", "since": cursor, "timeout": 5, "path": root}),
                );
            }
        })
        .map_err(|e| Error::io("starting an output follower", None, e))?;
        Ok(JoinOnDrop::new(h))
    }

    /// Another session on the same daemon and project that starts nothing of its own (for
    /// waiting on a second connection).
    pub fn second_connection(&self) -> Option<RemoteSession> {
        RemoteSession::connect(&self.socket, &self.root)
    }

    /// Stops every process and proxy this session started (not anyone else's); nothing can be
    /// started through it afterwards.
    pub fn stop_all(&mut self) {
        stop_started(&mut self.client, &self.root, &self.started, false);
        let mut s = self.started.lock();
        s.processes.clear();
        s.proxies.clear();
    }
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Starts a proxy in the daemon and records it, unless the session is already stopping.
fn start_proxy(
    client: &mut Client,
    started: &Mutex<Started>,
    root: &Path,
    entry: &ProxyEntry,
    target: &str,
) -> Result<Value> {
    let mut args = json!({"action": "start", "id": entry.name, "target_url": target, "path": root});
    if let Some(p) = entry.port {
        args["port"] = p.into();
    }
    if let Some(n) = entry.max_log_size {
        args["max_log_size"] = n.into();
    }
    // Held across the call, so `stop_all` either sees this proxy or prevents it.
    let mut s = started.lock();
    if s.closed {
        return Err(Error::Other(format!(
            "proxy {:?} not started: the session is stopping",
            entry.name
        )));
    }
    let v = tool(client, "proxy", args)?;
    s.proxies.push(entry.name.clone());
    Ok(v)
}

/// A proxy started by [`ScriptProxies`]: its name, listening URL and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedProxy {
    /// The proxy's name (its id in the daemon).
    pub name: String,
    /// Where it listens.
    pub url: String,
    /// The script URL it forwards to.
    pub target: String,
}

/// Proxies of a remote session waiting for their script to print a local URL.
#[derive(Debug)]
pub struct ScriptProxies {
    client: Client,
    root: PathBuf,
    started: Arc<Mutex<Started>>,
    matchers: Vec<regex::Regex>,
    pending: Vec<ProxyEntry>,
}

impl ScriptProxies {
    /// Scans complete lines of the script's output; on the first local URL, starts every
    /// waiting proxy in front of it (once) and returns how each start went.
    pub fn scan(&mut self, lines: &str) -> Vec<Result<StartedProxy>> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let Some(target) = lines
            .lines()
            .find_map(|l| crate::urlwatch::find_url(l, &self.matchers))
        else {
            return Vec::new();
        };
        let pending = std::mem::take(&mut self.pending);
        pending
            .iter()
            .map(|entry| {
                let v = start_proxy(&mut self.client, &self.started, &self.root, entry, &target)
                    .map_err(|e| {
                        Error::Other(format!("proxy {:?} failed to start: {e}", entry.name))
                    })?;
                Ok(StartedProxy {
                    name: entry.name.clone(),
                    url: v["url"].as_str().unwrap_or("?").to_string(),
                    target: target.clone(),
                })
            })
            .collect()
    }
}

/// Force-stops (SIGKILL at once) what a remote session started, on its own connection.
#[derive(Debug)]
pub struct Killer {
    client: Client,
    root: PathBuf,
    started: Arc<Mutex<Started>>,
}

impl Killer {
    /// Kills every process and stops every proxy the session started and has not yet stopped,
    /// however far its graceful stop got.
    pub fn kill_all(&mut self) {
        stop_started(&mut self.client, &self.root, &self.started, true);
    }
}

/// Marks the session closed, then stops its proxies (first: quick, so a slow process stop leaves
/// no listener behind) and its processes; `force` kills the processes at once.
fn stop_started(client: &mut Client, root: &Path, started: &Mutex<Started>, force: bool) {
    let (processes, proxies) = {
        let mut s = started.lock();
        s.closed = true;
        (s.processes.clone(), s.proxies.clone())
    };
    for id in proxies {
        let _ = tool(
            client,
            "proxy",
            json!({"action": "stop", "id": id, "path": root}),
        );
    }
    for id in processes {
        let args = json!({"action": "stop", "process_id": id, "force": force, "path": root});
        let _ = tool(client, "proc", args);
    }
}
