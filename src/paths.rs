//! The one lookup of where agnt lives on disk: the daemon socket (`$AGNT_SOCKET`, else
//! `$XDG_RUNTIME_DIR/agnt/agnt.sock`, else `/tmp/agnt-$UID/agnt.sock`) and the state directory
//! (`$AGNT_STATE_DIR`, else `$XDG_STATE_HOME/agnt`, else `~/.local/state/agnt`), plus private
//! (0700) directory creation and the check that the socket's directory is really ours
//! ([`secure_runtime_dir`]). What goes inside the state directory is `host::StateDir`'s business.

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
    fallback_dir().join("agnt.sock")
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
        None => fallback_dir().join("state"),
    }
}

/// `/tmp/agnt-$UID`: the socket's and (without `HOME`) the state's directory of last resort. A
/// shared directory, so whatever is made under it goes through [`secure_runtime_dir`] first.
pub fn fallback_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/agnt-{}", rustix::process::getuid().as_raw()))
}

/// Creates `dir` (and parents) with mode 0700 and makes sure its mode is 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Makes sure `dir` (the directory of the daemon socket) is private to this user before anything
/// is put in it or taken from it: created 0700 when missing; then `lstat` must show a real
/// directory (not a symlink) owned by our uid with mode exactly 0700. Anything else is an error
/// naming the path, the owner found and the fix: another user who creates `/tmp/agnt-$UID`
/// first must not receive our commands.
pub fn secure_runtime_dir(dir: &Path) -> crate::Result<()> {
    let io_err = |op, e| crate::Error::io(op, Some(dir.to_path_buf()), e);
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir_parents(parent).map_err(|e| io_err("creating the socket directory", e))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        // Ours for sure: give it exactly 0700 whatever the umask.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("setting the socket directory's mode", e))?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("creating the socket directory", e)),
    }
    let st =
        rustix::fs::lstat(dir).map_err(|e| io_err("checking the socket directory", e.into()))?;
    let me = rustix::process::getuid().as_raw();
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let mode = st.st_mode & 0o7777;
    let fix = |what: &str| {
        crate::Error::Other(format!(
            "refusing to use the agnt socket directory {}: {what}; another user may be trying \
             to intercept agnt. Fix: remove it (as its owner or root: rm -rf {}) or point \
             XDG_RUNTIME_DIR or AGNT_SOCKET at a directory of yours",
            dir.display(),
            dir.display()
        ))
    };
    if kind == rustix::fs::FileType::Symlink {
        return Err(fix("it is a symbolic link"));
    }
    if kind != rustix::fs::FileType::Directory {
        return Err(fix("it is not a directory"));
    }
    if st.st_uid != me {
        return Err(fix(&format!(
            "it is owned by uid {}{}, not by us (uid {me})",
            st.st_uid,
            user_name(st.st_uid).map_or(String::new(), |n| format!(" ({n})"))
        )));
    }
    if mode != 0o700 {
        return Err(crate::Error::Other(format!(
            "refusing to use the agnt socket directory {}: its mode is {mode:04o}, not 0700, so \
             other users may reach into it. Fix: chmod 700 {} (and check nothing foreign is \
             inside)",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Creates the missing parents of the socket directory (0700, like `private_dir`, but existing
/// ones are left as they are: `/tmp` stays 1777).
fn private_dir_parents(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The login name of `uid` from `/etc/passwd`, if listed.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
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

    #[test]
    fn runtime_dir_must_be_a_private_directory_of_ours() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("new").join("agnt");
        secure_runtime_dir(&fresh).unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        secure_runtime_dir(&fresh).unwrap();
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let e = secure_runtime_dir(&open).unwrap_err().to_string();
        assert!(e.contains("0777") && e.contains("chmod 700"), "{e}");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let e = secure_runtime_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
