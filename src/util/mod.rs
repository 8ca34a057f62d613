//! Small pure helpers shared by every layer: the one duration syntax, RFC 3339 time codecs,
//! base64, and the one atomic file write. Nothing here knows about processes, proxies or MCP.

pub mod base64;
pub mod duration;
pub mod fs;
pub mod time;
