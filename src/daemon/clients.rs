//! The daemon's client table: who is connected (kind, peer pid, connected for, idle for), the
//! client limit, and the refusal an over-limit client reads before it is closed.
//!
//! A client's kind is what it announces (`_meta["dev.agnt/client"]` on any request, as the
//! [`super::client::Client`] of the CLI, the bridge and `agnt up` does), else what its peer
//! process looks like (`agnt mcp` → bridge, `agnt up` → up, another `agnt` → cli), else `mcp`.
//! HTTP requests appear as `http` clients while they are served. Nothing here does socket IO.

use std::{
    collections::HashMap,
    os::unix::net::UnixStream,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::mcp::jsonrpc::{Message, Response};

/// Most clients served at once by default; the next one is refused.
pub const DEFAULT_MAX_CLIENTS: usize = 100;
/// JSON-RPC error code of the refusal an over-limit client reads.
pub const TOO_MANY_CLIENTS: i32 = -32010;
/// The `_meta` key a client announces its kind with (`cli`, `bridge`, `up`).
pub const CLIENT_META: &str = "dev.agnt/client";

/// The connected clients of one daemon.
#[derive(Debug)]
pub struct Clients {
    limit: usize,
    next: AtomicU64,
    table: Mutex<HashMap<u64, Arc<ClientEntry>>>,
}

/// One connected client.
#[derive(Debug)]
pub struct ClientEntry {
    key: u64,
    pid: Option<u32>,
    connected: Instant,
    /// Milliseconds after `connected` of the last message from the client.
    last_ms: AtomicU64,
    requests: AtomicU64,
    kind: Mutex<String>,
    name: Mutex<Option<String>>,
    socket: bool,
}

/// Removes an HTTP client from the table when its request is answered.
#[derive(Debug)]
pub struct HttpClientGuard {
    clients: Arc<Clients>,
    key: u64,
}

impl Drop for HttpClientGuard {
    fn drop(&mut self) {
        self.clients.remove(self.key);
    }
}

impl Clients {
    /// A table refusing socket clients beyond `limit`.
    pub fn new(limit: usize) -> Clients {
        Clients {
            limit: limit.max(1),
            next: AtomicU64::new(0),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connected socket clients.
    pub fn count(&self) -> usize {
        self.table.lock().values().filter(|c| c.socket).count()
    }

    /// Admits a socket client, or returns the refusal to send it (limit, count, who).
    pub fn admit(&self, stream: &UnixStream) -> Result<Arc<ClientEntry>, Response> {
        let pid = rustix::net::sockopt::socket_peercred(stream)
            .ok()
            .map(|c| c.pid.as_raw_nonzero().get() as u32);
        // Built before the lock: naming its kind reads /proc, which must not stall the table.
        let entry = Arc::new(ClientEntry::new(self.key(), pid, true));
        let mut table = self.table.lock();
        let count = table.values().filter(|c| c.socket).count();
        if count >= self.limit {
            let list: Vec<Value> = table.values().map(|c| c.to_json()).collect();
            drop(table);
            return Err(self.refusal(count, list));
        }
        table.insert(entry.key, entry.clone());
        Ok(entry)
    }

    /// Lists an HTTP request as a client while the guard lives (not counted against the limit).
    pub fn admit_http(self: &Arc<Self>) -> HttpClientGuard {
        let entry = ClientEntry::new(self.key(), None, false);
        *entry.kind.lock() = "http".into();
        let key = entry.key;
        self.table.lock().insert(key, Arc::new(entry));
        HttpClientGuard {
            clients: self.clone(),
            key,
        }
    }

    /// Forgets a client.
    pub fn remove(&self, key: u64) {
        self.table.lock().remove(&key);
    }

    /// Every client, longest connected first.
    pub fn list(&self) -> Vec<Value> {
        let mut entries: Vec<Arc<ClientEntry>> = self.table.lock().values().cloned().collect();
        entries.sort_by_key(|c| c.key);
        entries.iter().map(|c| c.to_json()).collect()
    }

    fn key(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn refusal(&self, count: usize, list: Vec<Value>) -> Response {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for c in &list {
            let k = c["kind"].as_str().unwrap_or("?").to_string();
            match kinds.iter_mut().find(|(n, _)| *n == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let mut idle: Vec<&Value> = list.iter().filter(|c| c["pid"].is_u64()).collect();
        idle.sort_by_key(|c| std::cmp::Reverse(c["idle_secs"].as_u64().unwrap_or(0)));
        let pids: Vec<String> = idle.iter().take(5).map(|c| c["pid"].to_string()).collect();
        let limit = self.limit;
        let mut r = Response::err(
            None,
            TOO_MANY_CLIENTS,
            format!(
                "too many clients: this agnt daemon serves at most {limit} clients at once and {count} are connected ({}); \
see them with `agnt daemon info` (or the `daemon` tool, action \"info\") once one disconnects, close the ones you \
do not need (longest idle: pid {}), then retry",
                kinds.join(", "),
                if pids.is_empty() {
                    "-".into()
                } else {
                    pids.join(", ")
                },
            ),
        );
        if let Err(e) = &mut r.outcome {
            e.data = Some(json!({"limit": limit, "count": count, "clients": list}));
        }
        r
    }
}

impl ClientEntry {
    fn new(key: u64, pid: Option<u32>, socket: bool) -> ClientEntry {
        let kind = pid.map_or("mcp", kind_of_pid).to_string();
        ClientEntry {
            key,
            pid,
            connected: Instant::now(),
            last_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            kind: Mutex::new(kind),
            name: Mutex::new(None),
            socket,
        }
    }

    /// Its key in the table.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Notes a message from the client: activity, and the kind or name it announces.
    pub fn observe(&self, msg: &Message) {
        let ms = self.connected.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        let Message::Request(r) = msg else { return };
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = r.params.get("_meta").and_then(|m| m.get(CLIENT_META))
            && let Some(k) = k.as_str().filter(|k| !k.is_empty() && k.len() <= 32)
        {
            *self.kind.lock() = k.to_string();
        }
        if r.method == "initialize"
            && let Some(n) = r.params["clientInfo"]["name"].as_str()
        {
            *self.name.lock() = Some(n.chars().take(64).collect());
        }
    }

    fn to_json(&self) -> Value {
        let connected = self.connected.elapsed();
        let last = std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        json!({
            "kind": *self.kind.lock(),
            "name": *self.name.lock(),
            "pid": self.pid,
            "connected_secs": connected.as_secs(),
            "idle_secs": connected.saturating_sub(last).as_secs(),
            "requests": self.requests.load(Ordering::Relaxed),
        })
    }
}

/// What kind of client a process is, from its command line.
fn kind_of_pid(pid: u32) -> &'static str {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return "mcp";
    };
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    kind_of_argv(&args).unwrap_or("mcp")
}

/// The client kind of an `agnt` command line (`agnt mcp` → bridge, `agnt up` → up, any other
/// `agnt` → cli); `None` for another program.
pub fn kind_of_argv(args: &[String]) -> Option<&'static str> {
    let prog = args.first()?;
    let base = prog.rsplit('/').next().unwrap_or(prog);
    if !base.starts_with("agnt") {
        return None;
    }
    Some(
        match args[1..]
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str)
        {
            Some("mcp") => "bridge",
            Some("up") => "up",
            _ => "cli",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_command_lines() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(kind_of_argv(&v("/usr/bin/agnt mcp")), Some("bridge"));
        assert_eq!(kind_of_argv(&v("agnt --json up")), Some("up"));
        assert_eq!(kind_of_argv(&v("agnt proc list")), Some("cli"));
        assert_eq!(kind_of_argv(&v("python3 x.py")), None);
    }

    #[test]
    fn refusal_names_limit_count_and_how_to_see() {
        let c = Clients::new(2);
        let r = c.refusal(2, vec![json!({"kind": "bridge", "pid": 7, "idle_secs": 3})]);
        let e = r.outcome.unwrap_err();
        assert_eq!(e.code, TOO_MANY_CLIENTS);
        for want in [
            "at most 2",
            "2 are connected",
            "agnt daemon info",
            "1 bridge",
            "pid 7",
        ] {
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
    }
}
