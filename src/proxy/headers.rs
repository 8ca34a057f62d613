//! The header editor: pure functions that rewrite heads on their way through the proxy and
//! read the few headers the proxy itself cares about.
//!
//! Requests going upstream get `Host` of the target, `X-Forwarded-For/-Host/-Proto`, and (for
//! navigations, and every request to an `https://` target) an `Accept-Encoding` trimmed to
//! what the injector can decode. Responses coming
//! back get `Location`s on the target rewritten to the proxy origin the client used and cookie
//! `Domain=`s of the target dropped. Also: the `__agnt_page` cookie (the page
//! channel's checks live in `trust`). No IO, no panics on malformed input (non-UTF-8 values are left alone).

use std::net::IpAddr;

use super::{
    Target,
    http::{self, Header},
};

/// Rewrites a request head for the upstream: `Host` → the target, `X-Forwarded-For` gains
/// `peer`, `X-Forwarded-Host` = the `Host` the client sent, `X-Forwarded-Proto: http`, and a
/// navigation's (`Accept` has `text/html`) `Accept-Encoding` keeps only gzip/deflate/br/identity
/// — every request's with `all_encodings` (an `https://` target, whose CSS/JS are rewritten too).
pub(crate) fn rewrite_request(
    headers: &mut Vec<Header>,
    target_host: &str,
    peer: IpAddr,
    all_encodings: bool,
) {
    let orig_host = http::header(headers, "host").map(<[u8]>::to_vec);
    http::set(headers, "Host", target_host.as_bytes());
    let ip = peer.to_string();
    let xff = match http::header_str(headers, "x-forwarded-for") {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip,
    };
    http::set(headers, "X-Forwarded-For", xff);
    if let Some(oh) = orig_host {
        http::set(headers, "X-Forwarded-Host", oh);
    }
    http::set(headers, "X-Forwarded-Proto", "http");
    // Navigations: only ask for encodings we can decode for injection.
    let accept = http::header_str(headers, "accept").unwrap_or_default();
    if (all_encodings || accept.contains("text/html"))
        && let Some(ae) = http::header_str(headers, "accept-encoding")
    {
        match decodable_encodings(&ae) {
            Some(kept) => http::set(headers, "Accept-Encoding", kept),
            None => http::remove(headers, "accept-encoding"),
        }
    }
}

/// The codings of an `Accept-Encoding` value the injector can decode (`None` if none is left).
fn decodable_encodings(accept_encoding: &str) -> Option<String> {
    let kept: Vec<&str> = accept_encoding
        .split(',')
        .map(str::trim)
        .filter(|t| {
            let c = t
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                c.as_str(),
                "gzip" | "x-gzip" | "deflate" | "br" | "identity"
            )
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// The origin the client reached the proxy at: `http://<Host it sent>`, or `fallback` (the
/// proxy's own URL) when it sent none or a strange one.
pub(crate) fn proxy_origin(client_host: Option<&str>, fallback: &str) -> String {
    match client_host {
        Some(host)
            if !host.is_empty() && !host.bytes().any(|b| b.is_ascii_control() || b == b' ') =>
        {
            format!("http://{host}")
        }
        _ => fallback.to_string(),
    }
}

/// Rewrites a response head for the client: a `Location` on one of the target's origins points
/// at `proxy_origin` instead, and a `Set-Cookie` loses a `Domain=` naming the target (or
/// localhost / 127.0.0.1), so the cookie sticks to the proxy's origin.
pub(crate) fn rewrite_response(headers: &mut [Header], target: &Target, proxy_origin: &str) {
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("location") {
            if let Some(v) = rewrite_location(value, &target.origins, proxy_origin) {
                *value = v;
            }
        } else if name.eq_ignore_ascii_case("set-cookie")
            && let Some(v) = strip_cookie_domain(value, &target.host)
        {
            *value = v;
        }
    }
}

/// `Some(new value)` when `location` starts with one of `origins` (followed by nothing, `/`,
/// `?` or `#`).
fn rewrite_location(location: &[u8], origins: &[String], proxy_origin: &str) -> Option<Vec<u8>> {
    let v = std::str::from_utf8(location).ok()?;
    origins.iter().find_map(|o| {
        let rest = v.strip_prefix(o.as_str())?;
        (rest.is_empty() || rest.starts_with(['/', '?', '#']))
            .then(|| format!("{proxy_origin}{rest}").into_bytes())
    })
}

/// `Some(new value)` for a `Set-Cookie` value whose `Domain=` attribute names `host`,
/// `localhost` or `127.0.0.1`: the same cookie without that attribute.
fn strip_cookie_domain(cookie: &[u8], host: &str) -> Option<Vec<u8>> {
    let v = std::str::from_utf8(cookie).ok()?;
    let ours = |p: &str| match p.trim().split_once('=') {
        Some((k, d)) if k.trim().eq_ignore_ascii_case("domain") => {
            let d = d.trim().trim_start_matches('.');
            d.eq_ignore_ascii_case(host) || d.eq_ignore_ascii_case("localhost") || d == "127.0.0.1"
        }
        _ => false,
    };
    if !v.split(';').any(ours) {
        return None;
    }
    let parts: Vec<&str> = v.split(';').filter(|p| !ours(p)).collect();
    Some(parts.join(";").into_bytes())
}

/// The page id the agnt script keeps in the `__agnt_page` cookie (validated).
pub(crate) fn page_cookie(headers: &[Header]) -> Option<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .find_map(|(_, v)| {
            let v = std::str::from_utf8(v).ok()?;
            v.split(';').find_map(|kv| {
                let (k, val) = kv.trim().split_once('=')?;
                (k == "__agnt_page" && valid_page_id(val)).then(|| val.to_string())
            })
        })
}

/// A page id as the script makes them: 1–64 of `[A-Za-z0-9_-]`.
pub(crate) fn valid_page_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &[u8])]) -> Vec<Header> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_string(), v.to_vec()))
            .collect()
    }

    fn get<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
        http::header(headers, name)
    }

    fn target() -> Target {
        Target::parse("http://localhost:3000", None).unwrap()
    }

    #[test]
    fn request_gets_target_host_and_forwarded_headers() {
        let mut hs = h(&[("Host", b"127.0.0.1:9000"), ("Accept", b"*/*")]);
        rewrite_request(
            &mut hs,
            "localhost:3000",
            "10.0.0.7".parse().unwrap(),
            false,
        );
        assert_eq!(get(&hs, "host"), Some(&b"localhost:3000"[..]));
        assert_eq!(get(&hs, "x-forwarded-for"), Some(&b"10.0.0.7"[..]));
        assert_eq!(get(&hs, "x-forwarded-host"), Some(&b"127.0.0.1:9000"[..]));
        assert_eq!(get(&hs, "x-forwarded-proto"), Some(&b"http"[..]));
    }

    #[test]
    fn forwarded_for_is_appended_and_missing_host_tolerated() {
        let mut hs = h(&[("X-Forwarded-For", b"1.2.3.4")]);
        rewrite_request(&mut hs, "t:1", "::1".parse().unwrap(), false);
        assert_eq!(get(&hs, "x-forwarded-for"), Some(&b"1.2.3.4, ::1"[..]));
        assert_eq!(get(&hs, "x-forwarded-host"), None);
        assert_eq!(get(&hs, "host"), Some(&b"t:1"[..]));
        // A blank previous value is replaced, not appended to.
        let mut hs = h(&[("X-Forwarded-For", b"  ")]);
        rewrite_request(&mut hs, "t:1", "10.0.0.1".parse().unwrap(), false);
        assert_eq!(get(&hs, "x-forwarded-for"), Some(&b"10.0.0.1"[..]));
    }

    #[test]
    fn navigations_ask_only_for_decodable_encodings() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut hs = h(&[
            ("Accept", b"text/html,*/*"),
            ("Accept-Encoding", b"gzip, zstd;q=1, br;q=0.9, compress"),
        ]);
        rewrite_request(&mut hs, "t", ip, false);
        assert_eq!(get(&hs, "accept-encoding"), Some(&b"gzip, br;q=0.9"[..]));
        let mut hs = h(&[("Accept", b"text/html"), ("Accept-Encoding", b"zstd")]);
        rewrite_request(&mut hs, "t", ip, false);
        assert_eq!(get(&hs, "accept-encoding"), None);
        // Not a navigation: untouched.
        let mut hs = h(&[("Accept", b"image/*"), ("Accept-Encoding", b"zstd")]);
        rewrite_request(&mut hs, "t", ip, false);
        assert_eq!(get(&hs, "accept-encoding"), Some(&b"zstd"[..]));
        // An https:// target: every request.
        let mut hs = h(&[("Accept", b"image/*"), ("Accept-Encoding", b"zstd, br")]);
        rewrite_request(&mut hs, "t", ip, true);
        assert_eq!(get(&hs, "accept-encoding"), Some(&b"br"[..]));
        // Non-UTF-8 values do not panic.
        let mut hs = h(&[
            ("Accept", b"text/html\xff"),
            ("Accept-Encoding", b"\xfe\xff"),
        ]);
        rewrite_request(&mut hs, "t", ip, false);
    }

    #[test]
    fn proxy_origin_prefers_the_clients_host() {
        assert_eq!(
            proxy_origin(Some("localhost:9000"), "http://127.0.0.1:9000"),
            "http://localhost:9000"
        );
        for bad in [None, Some(""), Some("a b"), Some("a\r\nb")] {
            assert_eq!(proxy_origin(bad, "http://p:1"), "http://p:1");
        }
    }

    #[test]
    fn location_on_the_target_points_at_the_proxy() {
        let t = target();
        let cases: &[(&[u8], &[u8])] = &[
            (b"http://localhost:3000/login?x=1", b"http://p:9/login?x=1"),
            (b"http://127.0.0.1:3000", b"http://p:9"),
            (b"http://localhost:3000#top", b"http://p:9#top"),
            // Another origin, a longer port, relative paths, garbage: untouched.
            (b"http://example.com/", b"http://example.com/"),
            (b"http://localhost:30001/", b"http://localhost:30001/"),
            (b"/relative", b"/relative"),
            (b"http://localhost:3000\xff/", b"http://localhost:3000\xff/"),
            (b"", b""),
        ];
        for (from, to) in cases {
            let mut hs = h(&[("Location", from)]);
            rewrite_response(&mut hs, &t, "http://p:9");
            assert_eq!(get(&hs, "location"), Some(*to), "{from:?}");
        }
    }

    #[test]
    fn location_on_an_https_target_points_at_the_proxy() {
        let t = Target::parse("https://localhost:5173", None).unwrap();
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"https://localhost:5173/next?x=1",
                b"http://127.0.0.1:9100/next?x=1",
            ),
            (b"https://127.0.0.1:5173", b"http://127.0.0.1:9100"),
            // A WebSocket URL, plain http on the TLS port, another port: untouched.
            (b"wss://localhost:5173/ws", b"wss://localhost:5173/ws"),
            (b"http://localhost:5173/x", b"http://localhost:5173/x"),
            (b"https://localhost:51730/", b"https://localhost:51730/"),
        ];
        for (from, to) in cases {
            let mut hs = h(&[("Location", from)]);
            rewrite_response(&mut hs, &t, "http://127.0.0.1:9100");
            assert_eq!(get(&hs, "location"), Some(*to), "{from:?}");
        }
    }

    #[test]
    fn cookie_domain_of_the_target_is_dropped() {
        let t = target();
        let cases: &[(&[u8], &[u8])] = &[
            (b"a=1; Domain=localhost; Path=/", b"a=1; Path=/"),
            (b"a=1; domain=.127.0.0.1", b"a=1"),
            (b"a=1; Domain=example.com", b"a=1; Domain=example.com"),
            (b"a=1; Path=/", b"a=1; Path=/"),
            (b"a=1; Domain", b"a=1; Domain"),
            (b"\xff; Domain=localhost", b"\xff; Domain=localhost"),
            (b";;;", b";;;"),
        ];
        for (from, to) in cases {
            let mut hs = h(&[("Set-Cookie", from)]);
            rewrite_response(&mut hs, &t, "http://p:9");
            assert_eq!(get(&hs, "set-cookie"), Some(*to), "{from:?}");
        }
    }

    #[test]
    fn page_cookie_is_validated() {
        let c = |v: &[u8]| page_cookie(&h(&[("Cookie", v)]));
        assert_eq!(c(b"x=1; __agnt_page=tab-1_a"), Some("tab-1_a".into()));
        assert_eq!(c(b"__agnt_page="), None);
        assert_eq!(c(b"__agnt_page=a b"), None);
        assert_eq!(c(&[b"__agnt_page=".as_slice(), &[b'a'; 65]].concat()), None);
        assert_eq!(c(b"__agnt_page=ok\xff"), None);
        assert_eq!(c(b"no-equals-sign"), None);
        assert!(valid_page_id("p-1") && !valid_page_id("") && !valid_page_id("a/b"));
    }
}
