//! The instrumenting reverse proxy: `ProxyManager` (registry of proxies) and `ProxyServer`
//! (one listening proxy, its traffic log and its page sessions).
//!
//! CONTRACT STUB: the types and signatures below are the public API other modules (MCP tools,
//! `agnt up`, the daemon) code against. The proxy work fills the bodies in and may split this
//! file and add modules (`traffic`, `pages`, `http`, `inject`, ...), but keeps these paths and
//! signatures (adding is fine, changing needs a reason).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use crate::Result;

pub mod http;
pub mod inject;
pub mod traffic;

/// How to start a proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub id: String,
    /// `http://host:port` of the dev server.
    pub target_url: String,
    /// `None` = stable hash port (10000–59999, FNV-1a 32 of `target_url`); `Some(0)` = OS-assigned.
    pub port: Option<u16>,
    /// Default `127.0.0.1`.
    pub bind_address: String,
    /// Traffic log capacity (entries); default 1000.
    pub max_log_size: usize,
    /// Project path that scopes the id.
    pub project: PathBuf,
}

impl ProxyConfig {
    /// Defaults: hash port, 127.0.0.1, 1000 entries.
    pub fn new(
        id: impl Into<String>,
        target_url: impl Into<String>,
        project: impl Into<PathBuf>,
    ) -> Self {
        ProxyConfig {
            id: id.into(),
            target_url: target_url.into(),
            port: None,
            bind_address: "127.0.0.1".into(),
            max_log_size: 1000,
            project: project.into(),
        }
    }
}

/// Filters for a traffic log query (all optional; empty = everything).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub types: Vec<String>,
    pub methods: Vec<String>,
    pub url_pattern: Option<String>,
    pub status_codes: Vec<u16>,
    /// RFC 3339 or relative (`5m`, `30s`, `1h`); a bad value is an `InvalidArgument` error.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only entries with `seq > since_seq`.
    pub since_seq: Option<u64>,
    /// Default 100.
    pub limit: Option<usize>,
}

/// Result of an `exec` in the page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutcome {
    pub execution_id: String,
    pub success: bool,
    /// The JSON-encoded result value (when `success`).
    pub result: Option<serde_json::Value>,
    /// The JS error message (when not `success`).
    pub error: Option<String>,
    pub duration_ms: u64,
    pub page_id: Option<String>,
}

/// One listening proxy.
#[derive(Debug)]
pub struct ProxyServer {
    _private: (),
}

impl ProxyServer {
    pub fn id(&self) -> &str {
        unimplemented!()
    }
    pub fn config(&self) -> &ProxyConfig {
        unimplemented!()
    }
    pub fn listen_addr(&self) -> SocketAddr {
        unimplemented!()
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        unimplemented!()
    }
    pub fn is_running(&self) -> bool {
        unimplemented!()
    }
    /// Status object: id, target_url, listen_addr, bind_address, running, uptime,
    /// total_requests, upstream_connects, log_stats, last_error, restart_count, ...
    pub fn status(&self) -> serde_json::Value {
        unimplemented!()
    }
    /// `{entries: [{seq, id, type, timestamp, data:{...}}], count}` in time order.
    pub fn log_query(&self, q: &LogQuery) -> Result<serde_json::Value> {
        let _ = q;
        unimplemented!()
    }
    /// Compact summary; `detail` names sections to include in full (errors, http,
    /// performance, interactions, mutations, other), each capped at `limit`.
    pub fn log_summary(
        &self,
        q: &LogQuery,
        detail: &[String],
        limit: usize,
    ) -> Result<serde_json::Value> {
        let _ = (q, detail, limit);
        unimplemented!()
    }
    /// `{total_entries, available_entries, max_size, dropped}`.
    pub fn log_stats(&self) -> serde_json::Value {
        unimplemented!()
    }
    pub fn log_clear(&self) {
        unimplemented!()
    }
    /// One entry in full (headers and captured bodies); `None` if unknown or dropped.
    pub fn log_get(&self, entry_id: &str) -> Option<serde_json::Value> {
        let _ = entry_id;
        unimplemented!()
    }
    /// Page sessions active in the last 5 minutes, counts only.
    pub fn pages_list(&self) -> serde_json::Value {
        unimplemented!()
    }
    pub fn page_get(&self, session_id: &str) -> Option<serde_json::Value> {
        let _ = session_id;
        unimplemented!()
    }
    pub fn page_summary(
        &self,
        session_id: &str,
        detail: &[String],
        limit: usize,
    ) -> Option<serde_json::Value> {
        let _ = (session_id, detail, limit);
        unimplemented!()
    }
    pub fn pages_clear(&self) {
        unimplemented!()
    }
    /// Runs JS in the most recently active page; blocks the caller (never the event loop)
    /// up to `timeout`. Errors: no page connected, timeout.
    pub fn exec(&self, code: &str, timeout: Duration) -> Result<ExecOutcome> {
        let _ = (code, timeout);
        unimplemented!()
    }
}

/// The registry of proxies.
#[derive(Debug)]
pub struct ProxyManager {
    _private: (),
}

impl ProxyManager {
    pub fn new() -> Arc<ProxyManager> {
        unimplemented!()
    }
    /// `AlreadyExists` for a duplicate id; `PortInUse` naming the port; `InvalidArgument` for a bad URL.
    pub fn start(&self, config: ProxyConfig) -> Result<Arc<ProxyServer>> {
        let _ = config;
        unimplemented!()
    }
    pub fn stop(&self, id: &str) -> Result<()> {
        let _ = id;
        unimplemented!()
    }
    /// Stops and starts again on the same port with the same config.
    pub fn restart(&self, id: &str) -> Result<Arc<ProxyServer>> {
        let _ = id;
        unimplemented!()
    }
    /// Exact id, else a unique match on a `:`-separated component; `NotFound` lists known ids.
    pub fn get(&self, id: &str) -> Result<Arc<ProxyServer>> {
        let _ = id;
        unimplemented!()
    }
    /// Proxies of one project (`Some`) or all (`None`).
    pub fn list(&self, project: Option<&Path>) -> Vec<Arc<ProxyServer>> {
        let _ = project;
        unimplemented!()
    }
    /// Stops every proxy; idempotent.
    pub fn shutdown(&self, deadline: Duration) {
        let _ = deadline;
        unimplemented!()
    }
    /// `{active, total_started}`.
    pub fn stats(&self) -> serde_json::Value {
        unimplemented!()
    }
}
