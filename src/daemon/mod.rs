//! The per-user daemon: one process that owns a `ProcessManager` and a `ProxyManager` and serves
//! MCP on a Unix socket, so processes and proxies outlive agent sessions. Also the client side
//! (connect, start a detached daemon under a lock) used by the bridge and the CLI.

pub mod paths;

pub use paths::{socket_path, state_dir, write_atomic};
