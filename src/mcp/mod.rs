//! MCP, protocol only: JSON-RPC framing and connections ([`jsonrpc`]), the server loop over a
//! [`Handler`] ([`server`]), and agnt's handler, the [`Toolbox`] (the tool table bound to a
//! `Host`). The daemon, the stdio bridge, `agnt mcp --standalone`, the HTTP face and `agnt up`
//! all serve or reach the tools through these types.

pub mod jsonrpc;
pub mod server;
pub mod toolbox;

pub use jsonrpc::{Connection, Message, Notification, Request, RequestId, Response};
pub use server::{CallContext, Handler, Session, serve};
pub use toolbox::Toolbox;
