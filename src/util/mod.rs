//! Small pure helpers shared by every layer: the one duration syntax, RFC 3339 time codecs,
//! base64, the one atomic file write, random secrets, terminal hygiene and the owner of a TCP
//! socket. Nothing here knows about processes, proxies or MCP.

pub mod base64;
pub mod duration;
pub mod fs;
pub mod random;
pub mod tcp_owner;
pub mod term;
pub mod time;
