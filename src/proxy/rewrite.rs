//! Pure body rewriting: absolute URLs on the target's origins become URLs on the proxy origin
//! the client used, so a page served through the plain-HTTP proxy never jumps back to the
//! upstream (an `https://` dev server with a self-signed certificate would be refused outright).
//!
//! For each target authority `T` (`localhost:5173`, `127.0.0.1:5173`, …) and the proxy's `P`:
//! `https://T` → `http://P` and `wss://T` → `ws://P` (an `http://` target: `http://T` and
//! `ws://T`), the JS/JSON-escaped `https:\/\/T` → `http:\/\/P` likewise, and a protocol-relative
//! `//T` (after a quote, `(`, `=`, `,`, whitespace or at the start) → `//P`. Scheme and host
//! match without regard to ASCII case, and only as a whole origin: the byte after `T` must not
//! continue an authority (alphanumeric, `.`, `-`, `:`, `@`, `_`). No IO, no panics; a body
//! without any match costs one `memmem` scan per anchor and no allocation.

use memchr::memmem;

/// The rewriting for one target and one proxy origin.
#[derive(Debug, Clone)]
pub(crate) struct Rewriter {
    /// `https` for a TLS target, else `http`.
    scheme: &'static [u8],
    /// `wss` or `ws`.
    ws_scheme: &'static [u8],
    /// The target's authorities, longest first (so `host:443` wins over `host`).
    authorities: Vec<Vec<u8>>,
    /// The proxy origin's authority.
    proxy: Vec<u8>,
}

/// One occurrence to replace: `body[start..end]` becomes `prefix` + the proxy authority.
struct Hit {
    start: usize,
    end: usize,
    prefix: &'static [u8],
}

impl Rewriter {
    /// A rewriter from `origins` (`Target::origins`: `http(s)://authority`, all of one scheme)
    /// to `proxy_origin` (`http://HOST:PORT`). `None` when there is nothing to rewrite or the
    /// origins make no sense.
    pub(crate) fn new(origins: &[String], proxy_origin: &str) -> Option<Rewriter> {
        let proxy = strip_ci(proxy_origin.as_bytes(), b"http://")?;
        // Only authority characters go into a body (a strange Host never writes markup).
        let authority = |b: u8| b.is_ascii_alphanumeric() || b".-_~:[]".contains(&b);
        if proxy.is_empty() || !proxy.iter().all(|&b| authority(b)) {
            return None;
        }
        let mut tls = None;
        let mut authorities = Vec::new();
        for o in origins {
            let (is_tls, a) = if let Some(a) = strip_ci(o.as_bytes(), b"https://") {
                (true, a)
            } else if let Some(a) = strip_ci(o.as_bytes(), b"http://") {
                (false, a)
            } else {
                continue;
            };
            if *tls.get_or_insert(is_tls) != is_tls || a.is_empty() {
                continue;
            }
            authorities.push(a.to_vec());
        }
        authorities.sort_by_key(|a| std::cmp::Reverse(a.len()));
        authorities.dedup();
        let tls = tls?;
        Some(Rewriter {
            scheme: if tls { b"https" } else { b"http" },
            ws_scheme: if tls { b"wss" } else { b"ws" },
            authorities,
            proxy: proxy.to_vec(),
        })
    }

    /// `body` with every occurrence rewritten, or `None` when nothing matched.
    pub(crate) fn apply(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut hits: Vec<Hit> = Vec::new();
        for slash in memmem::find_iter(body, b"//") {
            if let Some(h) = self.at_slashes(body, slash) {
                hits.push(h);
            }
        }
        let plain = hits.len();
        for colon in memmem::find_iter(body, b":\\/\\/") {
            if let Some(h) = self.at_escaped(body, colon) {
                hits.push(h);
            }
        }
        if hits.is_empty() {
            return None;
        }
        if plain < hits.len() && plain > 0 {
            hits.sort_by_key(|h| h.start);
        }
        let mut out = Vec::with_capacity(body.len() + hits.len() * self.proxy.len());
        let mut at = 0;
        for h in &hits {
            // Hits never overlap (each spans one `//` or one `:\/\/` and an authority, which
            // holds neither); the check keeps that a property of this loop, not an assumption.
            if h.start < at {
                continue;
            }
            out.extend_from_slice(&body[at..h.start]);
            out.extend_from_slice(h.prefix);
            out.extend_from_slice(&self.proxy);
            at = h.end;
        }
        out.extend_from_slice(&body[at..]);
        Some(out)
    }

    /// The authority starting at `from`, if it is a whole target authority: its end.
    fn authority_at(&self, body: &[u8], from: usize) -> Option<usize> {
        self.authorities.iter().find_map(|a| {
            let end = from.checked_add(a.len())?;
            let s = body.get(from..end)?;
            (s.eq_ignore_ascii_case(a) && !body.get(end).is_some_and(|&b| continues(b)))
                .then_some(end)
        })
    }

    /// A hit around the `//` at `slash`: `SCHEME://T` or a protocol-relative `//T`.
    fn at_slashes(&self, body: &[u8], slash: usize) -> Option<Hit> {
        let end = self.authority_at(body, slash + 2)?;
        let before = &body[..slash];
        for (scheme, prefix) in [
            (self.scheme, &b"http://"[..]),
            (self.ws_scheme, &b"ws://"[..]),
        ] {
            if let Some(start) = scheme_start(before, scheme) {
                return Some(Hit { start, end, prefix });
            }
        }
        let relative = match before.last() {
            None => true,
            Some(&b) => {
                matches!(b, b'"' | b'\'' | b'`' | b'(' | b'=' | b',') || b.is_ascii_whitespace()
            }
        };
        relative.then_some(Hit {
            start: slash,
            end,
            prefix: b"//",
        })
    }

    /// A hit around the `:\/\/` at `colon`: `SCHEME:\/\/T`.
    fn at_escaped(&self, body: &[u8], colon: usize) -> Option<Hit> {
        let end = self.authority_at(body, colon + 5)?;
        let before = &body[..=colon];
        for (scheme, prefix) in [
            (self.scheme, &b"http:\\/\\/"[..]),
            (self.ws_scheme, &b"ws:\\/\\/"[..]),
        ] {
            if let Some(start) = scheme_start(before, scheme) {
                return Some(Hit { start, end, prefix });
            }
        }
        None
    }
}

/// Where `scheme:` starts if `before` ends with it (ASCII case ignored) and no scheme character
/// precedes it (so `xhttps:` is not `https:`).
fn scheme_start(before: &[u8], scheme: &[u8]) -> Option<usize> {
    let start = before.len().checked_sub(scheme.len() + 1)?;
    let tail = &before[start..];
    let ok = tail[..scheme.len()].eq_ignore_ascii_case(scheme)
        && tail[scheme.len()] == b':'
        && !start
            .checked_sub(1)
            .and_then(|i| before.get(i))
            .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(start)
}

/// Whether `b` would continue an authority (so what precedes it is not a whole one).
fn continues(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'@' | b'_')
}

/// `s` without `prefix` (ASCII case ignored).
fn strip_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn https() -> Rewriter {
        let origins = ["https://127.0.0.1:5173", "https://localhost:5173"].map(String::from);
        Rewriter::new(&origins, "http://127.0.0.1:9000").unwrap()
    }

    fn rw(r: &Rewriter, s: &str) -> String {
        r.apply(s.as_bytes())
            .map_or_else(|| s.to_string(), |v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn https_origins_become_the_proxy() {
        let r = https();
        let cases = [
            (
                r#"<script src="https://localhost:5173/app.js"></script>"#,
                r#"<script src="http://127.0.0.1:9000/app.js"></script>"#,
            ),
            (
                "new WebSocket('wss://LOCALHOST:5173/ws')",
                "new WebSocket('ws://127.0.0.1:9000/ws')",
            ),
            ("HTTPS://127.0.0.1:5173", "http://127.0.0.1:9000"),
            (
                r#"{"u":"https:\/\/localhost:5173\/x","w":"wss:\/\/127.0.0.1:5173"}"#,
                r#"{"u":"http:\/\/127.0.0.1:9000\/x","w":"ws:\/\/127.0.0.1:9000"}"#,
            ),
            (
                "url(//localhost:5173/a.png) a=//localhost:5173?q",
                "url(//127.0.0.1:9000/a.png) a=//127.0.0.1:9000?q",
            ),
            (
                "https://localhost:5173#h https://localhost:5173",
                "http://127.0.0.1:9000#h http://127.0.0.1:9000",
            ),
        ];
        for (from, to) in cases {
            assert_eq!(rw(&r, from), to, "{from}");
        }
    }

    #[test]
    fn only_whole_origins_of_the_target_match() {
        let r = https();
        for s in [
            "https://localhost:51730/",
            "https://localhost:5173.evil.com/",
            "https://localhost:5173-x",
            "https://localhost:5173@evil",
            "https://localhost:5173_",
            "https://localhost:5173:1",
            "http://localhost:5173/",
            "ws://localhost:5173/",
            "xhttps://localhost:5173/",
            "https://evil.com/https:/localhost:5173",
            "https://localhost:5174/",
            "ahttps:\\/\\/localhost:5173",
            "path//localhost:5173",
            "https:/localhost:5173",
            "",
            "//",
        ] {
            assert!(r.apply(s.as_bytes()).is_none(), "{s}");
        }
    }

    #[test]
    fn http_targets_and_default_ports() {
        let origins = ["http://127.0.0.1:3000", "http://localhost:3000"].map(String::from);
        let r = Rewriter::new(&origins, "http://localhost:8080").unwrap();
        assert_eq!(
            rw(
                &r,
                "http://127.0.0.1:3000/a ws://localhost:3000/hmr https://localhost:3000"
            ),
            "http://localhost:8080/a ws://localhost:8080/hmr https://localhost:3000"
        );
        let origins = ["https://127.0.0.1", "https://127.0.0.1:443"].map(String::from);
        let r = Rewriter::new(&origins, "http://127.0.0.1:9").unwrap();
        assert_eq!(
            rw(
                &r,
                "https://127.0.0.1/a https://127.0.0.1:443/b https://127.0.0.1:4433"
            ),
            "http://127.0.0.1:9/a http://127.0.0.1:9/b https://127.0.0.1:4433"
        );
        assert!(Rewriter::new(&origins, "ftp://x").is_none());
        assert!(Rewriter::new(&origins, "http://a/b").is_none());
        assert!(Rewriter::new(&origins, "http://a\"><script>").is_none());
        assert!(Rewriter::new(&origins, "http://").is_none());
        assert!(Rewriter::new(&origins, "http://[::1]:9").is_some());
        assert!(Rewriter::new(&[], "http://p:1").is_none());
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..4),
                    prop::sample::select(vec![
                        &b"https:"[..], b"//", b":\\/\\/", b"localhost:5173", b"wss:", b"\xff",
                    ]).prop_map(<[u8]>::to_vec),
                ],
                0..64,
            ),
        ) {
            let _ = https().apply(&body);
            let mixed = parts.concat();
            if let Some(out) = https().apply(&mixed) {
                prop_assert_ne!(out, mixed);
            }
        }

        #[test]
        fn idempotent_and_complete(
            parts in proptest::collection::vec(
                prop::sample::select(vec![
                    "https://localhost:5173", "HTTPS://127.0.0.1:5173", "wss://localhost:5173",
                    "https:\\/\\/localhost:5173", "//localhost:5173", "https://localhost:51730",
                    "http://127.0.0.1:9000", "/", "\\/", ":", "\"", " ", "a", ".", "5", "s",
                    "https:", "localhost:5173", "//",
                ]),
                0..24,
            )
        ) {
            let r = https();
            let body = parts.concat();
            let once = rw(&r, &body);
            prop_assert_eq!(rw(&r, &once), once.clone());
            // Nothing that still looks like a target origin survives.
            let lower = once.to_ascii_lowercase();
            for a in ["localhost:5173", "127.0.0.1:5173"] {
                for s in ["https://", "wss://", "https:\\/\\/"] {
                    let o = format!("{s}{a}");
                    let whole = lower.match_indices(&o).any(|(i, _)| {
                        !lower.as_bytes().get(i + o.len()).is_some_and(|&b| continues(b))
                            && !i.checked_sub(1).and_then(|j| lower.as_bytes().get(j)).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'.')
                    });
                    prop_assert!(!whole, "{} left in {}", o, once);
                }
            }
        }
    }
}
