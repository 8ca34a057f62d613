//! MCP for agnt: JSON-RPC framing and connections ([`jsonrpc`]), the protocol server
//! ([`server`]) and the tool table ([`tools`]). The daemon, the stdio bridge, `agnt mcp
//! --standalone`, the HTTP face and the CLI all reach the tools through these types.

pub mod bridge;
pub mod jsonrpc;
pub mod server;
pub mod tools;

pub use jsonrpc::{Connection, Message, Notification, Request, RequestId, Response};
pub use server::{Session, serve};
pub use tools::Ctx;
