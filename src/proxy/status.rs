//! What a proxy and the proxy registry report about themselves: `ProxyStatus` (one proxy's
//! identity, liveness, counters and TLS) and `ManagerStats` (how many proxies run). Plain structs
//! deriving `Serialize`; their JSON field names are the MCP tools' answer format (`proxy status`,
//! `proxy list`, `daemon info`), so renaming a field changes the protocol.

use std::path::PathBuf;

use serde::Serialize;

use super::traffic::LogStats;

/// One proxy's status (`ProxyServer::status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyStatus {
    pub id: String,
    pub target_url: String,
    /// The listening socket address, `127.0.0.1:PORT`.
    pub listen_addr: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub bind_address: String,
    /// The project the proxy belongs to.
    pub path: PathBuf,
    pub running: bool,
    /// Uptime in words, `"42s"`.
    pub uptime: String,
    pub uptime_seconds: u64,
    /// RFC 3339.
    pub started_at: String,
    pub total_requests: u64,
    pub upstream_connects: u64,
    pub upstream_errors: u64,
    pub active_connections: u64,
    pub total_connections: u64,
    /// Page channels (`/__agnt/ws`) open now.
    pub ws_clients: u64,
    pub ws_errors: u64,
    pub bad_requests: u64,
    pub timeouts: u64,
    /// HTML responses the script was injected into.
    pub injected: u64,
    /// New connections refused with a 503: every proxy together held the connection budget.
    pub rejected_connections: u64,
    pub log_stats: LogStats,
    /// Why the event loop last crashed or stopped (if it did).
    pub last_error: Option<String>,
    pub restart_count: u32,
    /// Always true: a crashed loop is restarted (at most 5 times a minute).
    pub auto_restart: bool,
    /// Secrets are redacted before entries are stored (false: raw traffic, by request).
    pub redact: bool,
    /// Names this proxy adds to the secret-name table.
    pub redact_names: Vec<String>,
    /// An `https://` target's TLS: whether its certificate is verified (absent for `http://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsStatus>,
}

/// How a proxy speaks TLS to its `https://` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlsStatus {
    /// The target's certificate is checked against the system's roots (`verify_tls`, or the
    /// default: not for loopback, yes for other hosts).
    pub verify: bool,
}

/// The proxy registry's counters (`ProxyManager::stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ManagerStats {
    /// Proxies whose loop is running.
    pub active: usize,
    /// Proxies started since the manager was created.
    pub total_started: u64,
    /// Sockets all proxies may hold together (see `ProxyManagerOptions::max_connections`).
    pub connection_budget: usize,
    /// Sockets they hold now.
    pub connections_held: usize,
}
