//! agnt: supervise dev processes, put an instrumenting reverse proxy in front of dev servers,
//! and give both to AI coding agents over MCP and to humans over a CLI.
//!
//! The library has no async runtime: OS threads, `mio` for sockets, `crossbeam-channel` for
//! messages. Start with [`supervisor::ProcessManager`] and [`proxy::ProxyManager`].

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
pub mod tools;
pub mod up;
pub mod urlwatch;
pub mod util;

pub use error::{Error, Result};
pub use proxy::{ProxyConfig, ProxyManager, ProxyServer};
pub use ringbuf::RingBuffer;
pub use supervisor::{ManagedProcess, ProcessManager, ProcessSpec};
