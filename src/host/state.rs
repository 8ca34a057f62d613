//! `StateDir`: the single owner of every file agnt keeps under its state directory — the saved
//! proxies (`proxies.json`), the orphan file's directory, saved `exec` results, screenshots,
//! browser profiles, logs and screenshots (`browser/`), the daemon's log and the per-session directories of `agnt up`. Nothing else in the crate joins
//! file names onto the state directory.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::util::fs::write_atomic;

/// The state directory and the names of everything inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

/// A proxy saved by one daemon and re-created by the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProxy {
    /// Proxy id.
    pub id: String,
    /// The dev server it fronts.
    pub target_url: String,
    /// The port it listened on (kept, so the URL survives a daemon restart).
    pub port: u16,
    /// The listen address.
    pub bind_address: String,
    /// Traffic log capacity.
    pub max_log_size: usize,
    /// The project it belongs to.
    pub project: PathBuf,
    /// Extra `Host` names it accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// The user opted into a LAN bind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_lan: bool,
    /// Secrets redacted before logging (files from before redaction existed: true).
    #[serde(default = "yes")]
    pub redact: bool,
    /// Extra secret names.
    #[serde(default)]
    pub redact_names: Vec<String>,
    /// Its deadlines and bounds (files from before they existed: the defaults).
    #[serde(default)]
    pub limits: crate::proxy::ProxyLimits,
    /// The explicit `verify_tls` it was started with (`None`, and files from before TLS: the
    /// default rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
}

fn yes() -> bool {
    true
}

impl StateDir {
    /// The state directory at `root` (created on first write, mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// The user's state directory ([`crate::paths::state_dir`]).
    pub fn from_env() -> StateDir {
        StateDir::new(crate::paths::state_dir())
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory (0700) if needed.
    pub fn create(&self) -> io::Result<()> {
        // Under the shared /tmp fallback, another user must not own the directory above us.
        let fallback = crate::paths::fallback_dir();
        if self.root.starts_with(&fallback) {
            crate::paths::secure_runtime_dir(&fallback)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        crate::paths::private_dir(&self.root)
    }

    /// Where a daemon's orphan file lives (the state directory itself).
    pub fn daemon_orphans(&self) -> PathBuf {
        self.root.clone()
    }

    /// Where the orphan file of an `agnt up` session for `project` lives: one directory per
    /// project, so two sessions of different projects never clean up each other's processes.
    pub fn session_orphans(&self, project: &Path) -> PathBuf {
        let hash = fnv1a(project.as_os_str().as_encoded_bytes());
        self.root.join("up").join(format!("{hash:08x}"))
    }

    /// Where saved over-budget `exec` results go.
    pub fn exec_results(&self) -> PathBuf {
        self.root.join("exec-results")
    }

    /// Where page screenshots go.
    pub fn screenshots(&self) -> PathBuf {
        self.root.join("screenshots")
    }

    /// The profile a browser keeps for `project` (`profile: "persistent"`).
    pub fn browser_profile(&self, project: &Path) -> PathBuf {
        let hash = fnv1a(project.as_os_str().as_encoded_bytes());
        self.root
            .join("browser")
            .join("profiles")
            .join(format!("{hash:08x}"))
    }

    /// A throwaway profile for browser `id` (removed when it closes); unique per start.
    pub fn browser_tmp_profile(&self, id: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.root.join("browser").join("tmp").join(format!(
            "{}-{}-{nanos:x}",
            safe(id),
            std::process::id()
        ))
    }

    /// Where browser `id`'s Chromium writes its stderr.
    pub fn browser_log(&self, id: &str) -> PathBuf {
        self.root
            .join("browser")
            .join("logs")
            .join(format!("{}.log", safe(id)))
    }

    /// Where browser screenshots go.
    pub fn browser_screenshots(&self) -> PathBuf {
        self.root.join("browser").join("screenshots")
    }

    /// Where the visual snapshots of `project` live (one directory per snapshot name).
    pub fn snapshots(&self, project: &Path) -> PathBuf {
        let hash = fnv1a(project.as_os_str().as_encoded_bytes());
        self.root.join("snapshots").join(format!("{hash:08x}"))
    }

    /// The directory of snapshot `name` of `project`.
    pub fn snapshot(&self, project: &Path, name: &str) -> PathBuf {
        self.snapshots(project).join(safe(name))
    }

    /// The detached daemon's log file.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// The saved proxies file.
    pub fn proxies_file(&self) -> PathBuf {
        self.root.join("proxies.json")
    }

    /// The saved proxies; an unreadable file is logged and treated as empty.
    pub fn load_proxies(&self) -> Vec<SavedProxy> {
        let path = self.proxies_file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                log::warn!("cannot read {}: {e}", path.display());
                return Vec::new();
            }
        };
        serde_json::from_str(&text).unwrap_or_else(|e| {
            log::warn!("ignoring unreadable {}: {e}", path.display());
            Vec::new()
        })
    }

    /// Replaces the saved proxies (atomic write).
    pub fn save_proxies(&self, proxies: &[SavedProxy]) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(proxies).map_err(io::Error::other)?;
        self.create()?;
        write_atomic(&self.proxies_file(), &json)
    }
}

/// An id as a file name: anything but letters, digits, `-` and `_` becomes `_`.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// FNV-1a 32: a stable short hash for per-project directory names.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_per_project() {
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        let s = StateDir::new("/s");
        assert_eq!(s.proxies_file(), Path::new("/s/proxies.json"));
        assert_ne!(
            s.session_orphans(Path::new("/a")),
            s.session_orphans(Path::new("/b"))
        );
        assert!(s.session_orphans(Path::new("/a")).starts_with("/s/up"));
    }

    #[test]
    fn saved_proxies_round_trip_and_bad_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().join("state"));
        assert!(s.load_proxies().is_empty());
        let p = SavedProxy {
            id: "app".into(),
            target_url: "http://127.0.0.1:3000".into(),
            port: 41234,
            bind_address: "127.0.0.1".into(),
            max_log_size: 1000,
            allowed_hosts: Vec::new(),
            allow_lan: false,
            redact: false,
            redact_names: vec!["otp".into()],
            limits: crate::proxy::ProxyLimits {
                response_timeout: std::time::Duration::from_secs(5),
                ..Default::default()
            },
            project: "/p".into(),
            verify_tls: Some(false),
        };
        s.save_proxies(std::slice::from_ref(&p)).unwrap();
        assert_eq!(s.load_proxies(), vec![p.clone()]);
        // A file from before verify_tls existed: the default rule.
        let mut old = serde_json::to_value([&p]).unwrap();
        old[0].as_object_mut().unwrap().remove("verify_tls");
        fs::write(s.proxies_file(), old.to_string()).unwrap();
        assert_eq!(s.load_proxies()[0].verify_tls, None);
        fs::write(s.proxies_file(), "{not json").unwrap();
        assert!(s.load_proxies().is_empty());
        fs::write(s.proxies_file(), r#"[{"id": 3}]"#).unwrap();
        assert!(s.load_proxies().is_empty());
    }
}
