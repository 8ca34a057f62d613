//! Who is on the other end of the daemon socket: the kernel's `SO_PEERCRED` credentials of a
//! connected Unix socket, compared with our own uid. The daemon refuses clients of another uid
//! and the client refuses a daemon of another uid, before either reads or sends anything.

use std::os::unix::net::UnixStream;

use crate::{Error, Result};

/// Which end is being checked (for the error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The daemon checks a client.
    Client,
    /// A client checks the daemon.
    Daemon,
}

/// Errors unless the peer of `stream` runs as our uid.
pub fn check_same_user(stream: &UnixStream, role: PeerRole) -> Result<()> {
    let cred = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|e| Error::io("reading the socket peer's credentials", None, e.into()))?;
    let (theirs, ours) = (cred.uid.as_raw(), rustix::process::getuid().as_raw());
    if theirs == ours {
        return Ok(());
    }
    Err(Error::Other(match role {
        PeerRole::Client => format!(
            "refused a client of uid {theirs} (pid {}): this daemon serves uid {ours} only",
            cred.pid.as_raw_nonzero()
        ),
        PeerRole::Daemon => format!(
            "the process serving the agnt socket runs as uid {theirs} (pid {}), not as us (uid \
             {ours}); refusing to talk to it. Another user may be impersonating the agnt \
             daemon: remove the socket's directory or set XDG_RUNTIME_DIR/AGNT_SOCKET to a \
             directory of yours",
            cred.pid.as_raw_nonzero()
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_peer_passes() {
        let (a, b) = UnixStream::pair().unwrap();
        check_same_user(&a, PeerRole::Client).unwrap();
        check_same_user(&b, PeerRole::Daemon).unwrap();
    }
}
