//! The crate's error type: one enum, hand-written `Display`, and a `Result` alias.
//!
//! Messages are lowercase, carry no trailing period, and say what we were doing and, where
//! there is one, how to fix it: agents read them and act on them.

use std::{fmt, io, path::PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in agnt's library.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An id that no registry holds. `known` lists the ids that do exist (for the message).
    NotFound {
        kind: &'static str,
        id: String,
        known: Vec<String>,
    },
    /// A live entry with this id exists already.
    AlreadyExists { kind: &'static str, id: String },
    /// The manager is shutting down and takes no new work.
    ShuttingDown,
    /// A state-machine transition that is not allowed.
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    /// Bad input from a caller (empty argv, bad regex, bad port, ...).
    InvalidArgument(String),
    /// A program could not be started.
    Spawn { program: String, source: io::Error },
    /// An I/O operation failed; `op` says what we were doing.
    Io {
        op: &'static str,
        path: Option<PathBuf>,
        source: io::Error,
    },
    /// A configuration file could not be read or parsed.
    Config {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Waiting for something ran out of time.
    Timeout(String),
    /// A TCP port is taken.
    PortInUse { addr: String, source: io::Error },
    /// The daemon closed the connection before answering.
    DaemonClosed,
    /// The daemon is another version of agnt (`theirs`); the message names the fix.
    VersionMismatch { theirs: String },
    /// The daemon answered a request with a JSON-RPC error.
    Daemon { code: i32, message: String },
    /// Anything else, already phrased for the user.
    Other(String),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: Option<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path, source }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { kind, id, known } => {
                write!(f, "{kind} {id:?} not found")?;
                if known.is_empty() {
                    write!(f, " (there are none)")
                } else {
                    write!(f, "; known: {}", known.join(", "))
                }
            }
            Error::AlreadyExists { kind, id } => write!(f, "{kind} {id:?} already exists"),
            Error::ShuttingDown => write!(f, "shutting down: no new work is accepted"),
            Error::InvalidTransition { from, to } => {
                write!(f, "invalid state transition: {from} -> {to}")
            }
            Error::InvalidArgument(msg) => write!(f, "{msg}"),
            Error::Spawn { program, source } => {
                write!(f, "failed to start {program:?}: {source}")
            }
            Error::Io {
                op,
                path: Some(path),
                source,
            } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            Error::Io {
                op,
                path: None,
                source,
            } => write!(f, "{op}: {source}"),
            Error::Config {
                path,
                line,
                column,
                message,
            } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())
            }
            Error::Timeout(msg) => write!(f, "timed out: {msg}"),
            Error::PortInUse { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::DaemonClosed => write!(f, "the agnt daemon closed the connection"),
            Error::VersionMismatch { theirs } => write!(
                f,
                "the running agnt daemon is version {theirs} but this agnt is {}; run `agnt daemon \
                 restart` (it stops the daemon's processes) to switch to this version",
                env!("CARGO_PKG_VERSION")
            ),
            Error::Daemon { code, message } => write!(f, "daemon error {code}: {message}"),
            Error::Other(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. }
            | Error::Io { source, .. }
            | Error::PortInUse { source, .. } => Some(source),
            _ => None,
        }
    }
}
