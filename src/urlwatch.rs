//! Picking a dev server's local URL out of its output, so a proxy declared with `script "dev"`
//! can start in front of it the moment it prints `Local: http://localhost:5173/`.
//!
//! Pure: lines in, a normalized `http://host:port` target out.

use std::sync::LazyLock;

use regex::Regex;

/// Local URLs only: LAN and public addresses are never proxied automatically.
static LOCAL_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):\d{1,5}[^\s"'<>)\]]*"#,
    )
    .expect("static regex")
});

/// What `{url}` stands for in a `url-matchers` pattern: a local URL (scheme, `localhost`, an IPv4
/// address, `[::1]`/`[::]` or `0.0.0.0`, an optional port and path), captured as the group `url`.
pub const URL_PLACEHOLDER_REGEX: &str =
    r#"(?P<url>https?://(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|\[::1?\])(?::\d{1,5})?[^\s"'<>)\]]*)"#;

/// Compiles one `url-matchers` pattern: `{url}` becomes [`URL_PLACEHOLDER_REGEX`] (the Go
/// original's placeholder); everything else is a regex as written.
pub fn compile_matcher(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&pattern.replace("{url}", URL_PLACEHOLDER_REGEX))
}

/// Finds a dev-server URL in one line of output.
///
/// With `matchers` (a script's `url-matchers`), the first that matches wins and its first capture
/// group named `url` (what `{url}` captures), else its first group, else the whole match, is the
/// candidate; without them the built-in local-URL pattern is
/// used. Returns `scheme://host:port` with `0.0.0.0`/`[::]` turned into `127.0.0.1`; URLs that point
/// at assets or APIs (`/api/`, `/static/`, `?`...) are ignored.
pub fn find_url(line: &str, matchers: &[Regex]) -> Option<String> {
    let line = strip_ansi(line);
    let candidate = if matchers.is_empty() {
        LOCAL_URL.find(&line)?.as_str().to_string()
    } else {
        matchers.iter().find_map(|re| {
            let caps = re.captures(&line)?;
            let url = caps
                .name("url")
                .or_else(|| caps.get(1))
                .or_else(|| caps.get(0));
            Some(url?.as_str().to_string())
        })?
    };
    normalize(&candidate)
}

fn normalize(url: &str) -> Option<String> {
    let url = url.trim_end_matches(['.', ',', ';', ':', '!']);
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    const IGNORED: [&str; 9] = [
        "?",
        "/api/",
        "/error",
        "/debug",
        "/.well-known/",
        "/favicon",
        "/static/",
        "/assets/",
        "/node_modules/",
    ];
    if IGNORED.iter().any(|i| path.contains(i)) {
        return None;
    }
    let default_port = if scheme == "https" { "443" } else { "80" };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.ends_with(']') => (host, port),
        _ => (authority, default_port),
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host {
        "0.0.0.0" | "[::]" => "127.0.0.1",
        h => h,
    };
    Some(format!("{scheme}://{host}:{port}"))
}

/// One regex that matches a line any of a script's `url-matchers` match (`{url}` unnamed): its
/// readiness check when it has no other.
pub fn readiness_pattern(matchers: &[String]) -> Option<Regex> {
    let unnamed = URL_PLACEHOLDER_REGEX.replacen("?P<url>", "?:", 1);
    let alternatives: Vec<String> = matchers
        .iter()
        .map(|m| format!("(?:{})", m.replace("{url}", &unnamed)))
        .collect();
    (!alternatives.is_empty())
        .then(|| Regex::new(&alternatives.join("|")).ok())
        .flatten()
}

/// Removes ANSI colour/escape sequences (dev servers colour their banners).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_server_banners() {
        let cases = [
            (
                "  ➜  Local:   http://localhost:5173/",
                Some("http://localhost:5173"),
            ),
            (
                "\x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m",
                Some("http://localhost:5173"),
            ),
            (
                "ready - started server on 0.0.0.0:3000, url: http://0.0.0.0:3000.",
                Some("http://127.0.0.1:3000"),
            ),
            (
                "Serving HTTP on :: port 8000 (http://[::]:8000/) ...",
                Some("http://127.0.0.1:8000"),
            ),
            (
                "listening on http://127.0.0.1:8080/app",
                Some("http://127.0.0.1:8080"),
            ),
            ("GET http://localhost:3000/api/users 200", None),
            ("see http://192.168.1.5:3000", None),
            ("http://localhost:0", None),
            ("http://localhost:99999", None),
            ("no url here", None),
        ];
        for (line, want) in cases {
            assert_eq!(find_url(line, &[]).as_deref(), want, "{line:?}");
        }
    }

    #[test]
    fn url_matchers_take_the_first_group() {
        let m = [Regex::new(r"App at (\S+)").unwrap()];
        assert_eq!(
            find_url("App at http://localhost:4000/ now", &m).as_deref(),
            Some("http://localhost:4000")
        );
        assert_eq!(find_url("Local: http://localhost:5173/", &m), None);
    }

    #[test]
    fn url_placeholder_matches_local_urls_through_colour_codes() {
        let m = [compile_matcher(r"(Local|Network):\s*{url}").unwrap()];
        let vite = "  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/\x1b[39m";
        assert_eq!(find_url(vite, &m).as_deref(), Some("http://localhost:5173"));
        let cases = [
            (
                "Network: http://0.0.0.0:3000/app",
                Some("http://127.0.0.1:3000"),
            ),
            ("Local: https://[::1]:8443/", Some("https://[::1]:8443")),
            (
                "Local: http://127.0.0.1:4000",
                Some("http://127.0.0.1:4000"),
            ),
            ("Local: ftp://localhost:21", None),
            ("Remote: http://localhost:3000", None),
            ("Local: http://localhost/", Some("http://localhost:80")),
        ];
        for (line, want) in cases {
            assert_eq!(find_url(line, &m).as_deref(), want, "{line:?}");
        }
        let dotnet = [compile_matcher("Now listening on {url}").unwrap()];
        assert_eq!(
            find_url("      Now listening on http://localhost:5000", &dotnet).as_deref(),
            Some("http://localhost:5000")
        );
    }

    #[test]
    fn junk_never_panics() {
        for line in [
            "http://",
            "http://:",
            "http://[::1",
            "\x1b[",
            "\x1b",
            "https://localhost:65535",
        ] {
            let _ = find_url(line, &[]);
        }
        assert_eq!(
            find_url("https://localhost:65535", &[]).as_deref(),
            Some("https://localhost:65535")
        );
    }
}
