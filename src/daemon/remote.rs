//! `agnt up` when a daemon already runs: instead of supervising locally, the session asks the
//! daemon (through the same tools an agent uses) to start the project's autostart scripts and
//! proxies, follows their output, waits for their readiness, and stops exactly what it started.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};

use super::client::Client;
use crate::{Error, Result, config::ProxyEntry, supervisor::ReadyCheck, thread::JoinOnDrop};

/// A foreground session whose processes live in the daemon.
#[derive(Debug)]
pub struct RemoteSession {
    socket: PathBuf,
    root: PathBuf,
    client: Client,
    processes: Vec<String>,
    proxies: Vec<String>,
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
            processes: Vec::new(),
            proxies: Vec::new(),
        })
    }

    /// Starts a `.agnt.kdl` script (by name) in the daemon; the process id is the name.
    pub fn start_script(&mut self, name: &str) -> Result<Value> {
        let v = tool(
            &mut self.client,
            "run",
            json!({"script_name": name, "id": name, "path": self.root}),
        )?;
        self.processes.push(name.to_string());
        Ok(v)
    }

    /// Starts a proxy in front of `target` in the daemon.
    pub fn start_proxy(&mut self, entry: &ProxyEntry, target: &str) -> Result<Value> {
        let mut args =
            json!({"action": "start", "id": entry.name, "target_url": target, "path": self.root});
        if let Some(p) = entry.port {
            args["port"] = p.into();
        }
        if let Some(n) = entry.max_log_size {
            args["max_log_size"] = n.into();
        }
        let v = tool(&mut self.client, "proxy", args)?;
        self.proxies.push(entry.name.clone());
        Ok(v)
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

    /// Stops every process and proxy this session started (not anyone else's).
    pub fn stop_all(&mut self) {
        for id in std::mem::take(&mut self.processes) {
            let _ = tool(
                &mut self.client,
                "proc",
                json!({"action": "stop", "process_id": id, "path": self.root}),
            );
        }
        for id in std::mem::take(&mut self.proxies) {
            let _ = tool(
                &mut self.client,
                "proxy",
                json!({"action": "stop", "id": id}),
            );
        }
    }
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        self.stop_all();
    }
}
