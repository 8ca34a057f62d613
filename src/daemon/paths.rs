//! Where the daemon lives on disk: socket (`$AGNT_SOCKET`, else `$XDG_RUNTIME_DIR/agnt/agnt.sock`,
//! else `/tmp/agnt-$UID/agnt.sock`), state directory (`$AGNT_STATE_DIR`, else
//! `$XDG_STATE_HOME/agnt`, else `~/.local/state/agnt`), and atomic file writes.

use std::{
    fs,
    io::{self, Write},
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

/// Writes a file atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let dir = std::env::temp_dir().join(format!("agnt-paths-{}", std::process::id()));
        let f = dir.join("x.json");
        write_atomic(&f, b"1").unwrap();
        write_atomic(&f, b"22").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"22");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        private_dir(&dir.join("p")).unwrap();
        assert_eq!(
            fs::metadata(dir.join("p")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
