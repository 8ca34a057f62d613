//! The one lookup of where agnt lives on disk: the daemon socket (`$AGNT_SOCKET`, else
//! `$XDG_RUNTIME_DIR/agnt/agnt.sock`, else `/tmp/agnt-$UID/agnt.sock`) and the state directory
//! (`$AGNT_STATE_DIR`, else `$XDG_STATE_HOME/agnt`, else `~/.local/state/agnt`), plus private
//! (0700) directory creation. What goes inside the state directory is `host::StateDir`'s business.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The socket path (see the module docs).
pub fn socket_path() -> PathBuf {
    if let Some(p) = env_path("AGNT_SOCKET") {
        return p;
    }
    if let Some(dir) = env_path("XDG_RUNTIME_DIR") {
        return dir.join("agnt").join("agnt.sock");
    }
    PathBuf::from(format!("/tmp/agnt-{}", rustix::process::getuid().as_raw())).join("agnt.sock")
}

/// The state directory (see the module docs).
pub fn state_dir() -> PathBuf {
    if let Some(p) = env_path("AGNT_STATE_DIR") {
        return p;
    }
    if let Some(p) = env_path("XDG_STATE_HOME") {
        return p.join("agnt");
    }
    match env_path("HOME") {
        Some(home) => home.join(".local").join("state").join("agnt"),
        None => {
            PathBuf::from(format!("/tmp/agnt-{}", rustix::process::getuid().as_raw())).join("state")
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 and makes sure its mode is 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a").join("p");
        private_dir(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
