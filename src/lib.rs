//! agnt: supervise dev processes, put an instrumenting reverse proxy in front of dev servers,
//! and give both to AI coding agents over MCP and to humans over a CLI.
//!
//! The library has no async runtime: OS threads, `mio` for sockets, `crossbeam-channel` for
//! messages. Programs that embed the whole stack start with [`host::Host`]; those that only
//! supervise processes or run a proxy use [`supervisor::ProcessManager`] or
//! [`proxy::ProxyManager`] directly. `ARCHITECTURE.md` has the map.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod error;
pub mod host;
pub mod mcp;
pub mod paths;
pub mod proxy;
pub mod registry;
pub mod ringbuf;
pub mod signals;
pub mod supervisor;
pub mod thread;
pub mod tls;
pub mod tools;
pub mod up;
pub mod urlwatch;
pub mod util;

pub use error::{Error, Result};
pub use proxy::{ProxyConfig, ProxyManager, ProxyServer};
pub use ringbuf::RingBuffer;
pub use supervisor::{ManagedProcess, ProcessManager, ProcessSpec};
