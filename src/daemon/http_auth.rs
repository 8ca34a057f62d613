//! Who may use the daemon's HTTP face: pure checks of one request's `Host`, `Origin` and
//! `Authorization` ([`HttpAuth::check`]), plus the bearer token's file. Every request must name
//! a loopback host with the face's own port (DNS rebinding), must not come from a browser
//! origin the user did not allow (`--http-allow-origin`), and — except `GET /healthz` — must
//! carry `Authorization: Bearer <token>`, a 256-bit secret from `/dev/urandom` kept in a 0600
//! file next to the socket, so other local users and web pages cannot drive the tools.

use std::{
    fs, io,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use crate::{Error, Result, util::random};

/// What the HTTP face accepts.
#[derive(Debug, Clone)]
pub struct HttpAuth {
    /// The bound port (`Host` must carry it).
    pub port: u16,
    /// The bearer token.
    pub token: String,
    /// Where the token is kept.
    pub token_file: PathBuf,
    /// Browser origins allowed to call (exact matches).
    pub allowed_origins: Vec<String>,
}

/// A refused request: status and a one-line reason.
pub type Refusal = (u16, String);

impl HttpAuth {
    /// The token of `<socket>.http-token` (created 0600 with a fresh token when missing or not
    /// a private file of ours) and the allowed origins; the port is set once bound.
    pub fn for_socket(socket: &Path, allowed_origins: Vec<String>) -> Result<HttpAuth> {
        let mut file = socket.as_os_str().to_owned();
        file.push(".http-token");
        let token_file = PathBuf::from(file);
        let token = load_or_create_token(&token_file)
            .map_err(|e| Error::io("writing the HTTP token file", Some(token_file.clone()), e))?;
        Ok(HttpAuth {
            port: 0,
            token,
            token_file,
            allowed_origins,
        })
    }

    /// `Ok` when the request may proceed, else the status (403 wrong host or origin, 401 no or
    /// wrong token) and why.
    pub fn check(
        &self,
        path: &str,
        host: Option<&str>,
        origin: Option<&str>,
        authorization: Option<&str>,
    ) -> std::result::Result<(), Refusal> {
        match host {
            Some(h) if host_is_loopback_with_port(h, self.port) => {}
            Some(h) => {
                return Err((
                    403,
                    format!(
                        "forbidden: Host {h:?} is not localhost:{p}, 127.0.0.1:{p} or [::1]:{p}",
                        p = self.port
                    ),
                ));
            }
            None => return Err((403, "forbidden: no Host header".into())),
        }
        if let Some(o) = origin
            && !self.allowed_origins.iter().any(|a| a == o)
        {
            return Err((
                403,
                format!(
                    "forbidden: browser Origin {o:?} is not allowed (start the daemon with \
                     --http-allow-origin {o} to allow it)"
                ),
            ));
        }
        if path == "/healthz" {
            return Ok(());
        }
        let given = authorization
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim);
        match given {
            Some(t) if random::same_secret(t.as_bytes(), self.token.as_bytes()) => Ok(()),
            _ => Err((
                401,
                format!(
                    "unauthorized: send Authorization: Bearer <token>; the token is in {} \
                     (and in `agnt daemon info`)",
                    self.token_file.display()
                ),
            )),
        }
    }

    /// What `daemon info` shows about the face.
    pub fn info(&self) -> Value {
        json!({
            "url": format!("http://127.0.0.1:{}/mcp", self.port),
            "port": self.port,
            "token": self.token,
            "token_file": self.token_file,
            "allowed_origins": self.allowed_origins,
        })
    }
}

/// Whether a `Host` value is `localhost`, `127.0.0.1` or `[::1]` with exactly `port`.
pub fn host_is_loopback_with_port(host: &str, port: u16) -> bool {
    let (name, p) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((n, p)) => (n, p),
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, p),
            None => return false,
        }
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    ) && p.parse::<u16>() == Ok(port)
}

/// The token in `path` when it is a private (0600) regular file of ours holding 64 hex digits;
/// else a fresh token written there (0600).
fn load_or_create_token(path: &Path) -> io::Result<String> {
    if let Ok(st) = rustix::fs::lstat(path)
        && rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        && st.st_uid == rustix::process::getuid().as_raw()
        && st.st_mode & 0o077 == 0
        && let Ok(t) = fs::read_to_string(path)
    {
        let t = t.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(t.to_string());
        }
    }
    let token = random::hex(32)?;
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(format!("{token}\n").as_bytes())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> HttpAuth {
        HttpAuth {
            port: 8080,
            token: "t0k".into(),
            token_file: "/run/x.http-token".into(),
            allowed_origins: vec!["http://localhost:5173".into()],
        }
    }

    #[test]
    fn host_origin_and_token() {
        let a = auth();
        let ok = Some("Bearer t0k");
        assert!(a.check("/mcp", Some("127.0.0.1:8080"), None, ok).is_ok());
        assert!(a.check("/mcp", Some("localhost:8080"), None, ok).is_ok());
        assert!(a.check("/mcp", Some("[::1]:8080"), None, ok).is_ok());
        assert_eq!(
            a.check("/mcp", Some("localhost"), None, ok).unwrap_err().0,
            403
        );
        assert_eq!(
            a.check("/mcp", Some("evil.example:8080"), None, ok)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(
            a.check("/mcp", Some("127.0.0.1:8081"), None, ok)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(a.check("/mcp", None, None, ok).unwrap_err().0, 403);
        assert_eq!(
            a.check("/mcp", Some("localhost:8080"), None, None)
                .unwrap_err()
                .0,
            401
        );
        let wrong = Some("Bearer t0j");
        assert_eq!(
            a.check("/mcp", Some("localhost:8080"), None, wrong)
                .unwrap_err()
                .0,
            401
        );
        assert_eq!(
            a.check("/metrics", Some("localhost:8080"), None, None)
                .unwrap_err()
                .0,
            401
        );
        assert!(
            a.check("/healthz", Some("localhost:8080"), None, None)
                .is_ok()
        );
        let page = Some("http://localhost:3000");
        assert_eq!(
            a.check("/mcp", Some("localhost:8080"), page, ok)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(
            a.check("/healthz", Some("localhost:8080"), Some("null"), None)
                .unwrap_err()
                .0,
            403
        );
        let allowed = Some("http://localhost:5173");
        assert!(a.check("/mcp", Some("localhost:8080"), allowed, ok).is_ok());
    }

    #[test]
    fn token_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = HttpAuth::for_socket(&dir.path().join("agnt.sock"), vec![]).unwrap();
        assert_eq!(a.token.len(), 64);
        let mode = fs::metadata(&a.token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = HttpAuth::for_socket(&dir.path().join("agnt.sock"), vec![]).unwrap();
        assert_eq!(a.token, b.token);
        fs::set_permissions(&a.token_file, fs::Permissions::from_mode(0o644)).unwrap();
        let c = HttpAuth::for_socket(&dir.path().join("agnt.sock"), vec![]).unwrap();
        assert_ne!(a.token, c.token, "a token others could read is replaced");
    }
}
