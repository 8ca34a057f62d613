//! The one integration test binary: each module drives the real `agnt` binary or the library
//! with real children, real sockets and real temp dirs.

mod browser;
mod browser_a11y;
mod browser_css;
mod browser_devtool;
mod browser_tool;
mod browser_values;
mod cli;
mod cli_page;
mod compat;
mod daemon;
mod daemon_faults;
mod incidents;
mod mcp;
mod port_clash;
mod proxy;
mod proxy_faults;
mod proxy_rewrite;
mod proxy_tls;
mod redaction;
mod security;
mod supervisor;
mod support;
mod tidy;
mod tls_upstream;

mod up;
