//! Answers the proxy makes itself instead of the upstream: short plain-text errors (400, 403,
//! 404, 408, 431, and the 503 of a full connection budget), the 502 page naming the target and
//! the cause, the 504 page naming the target and the wait, `/__agnt/agnt.js` and the lazy
//! modules `/__agnt/m/NAME.js`, and `/__agnt/headers` (a document's recorded security headers,
//! for the page's `auditSecurityHeaders`). Functions returning the bytes to send (and, for the
//! 502/504, what the traffic log records).

use super::{
    AGNT_JS,
    http::{self, Header, ResponseHead},
};

/// `STATUS REASON: why` as `text/plain`, with `Connection: close` (the connection closes after).
pub(crate) fn client_error(status: u16, reason: &str, why: &str) -> Vec<u8> {
    let body = format!("{status} {reason}: {why}\n");
    http::simple_response(
        status,
        reason,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        true,
    )
}

/// 404 for an unknown `/__agnt/` route.
pub(crate) fn unknown_route(close: bool) -> Vec<u8> {
    http::simple_response(
        404,
        "Not Found",
        "text/plain; charset=utf-8",
        b"unknown agnt route\n",
        close,
    )
}

/// A 502 or 504 as sent to the client plus the headers and body the traffic log records for it.
#[derive(Debug)]
pub(crate) struct BadGateway {
    pub status: u16,
    pub response: Vec<u8>,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// The 502 page: agnt could not reach `target` because of `cause`.
pub(crate) fn bad_gateway(target: &str, cause: &str, close: bool) -> BadGateway {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>502 Bad Gateway</title></head><body>\
         <h1>502 Bad Gateway</h1><p>agnt could not reach <code>{}</code>: {}.</p>\
         <p>Is the dev server running? Reload once it is up.</p></body></html>\n",
        html_escape(target),
        html_escape(cause)
    );
    gateway_page(502, "Bad Gateway", body, close)
}

/// The 504 page: `target` sent no response head within `waited`.
pub(crate) fn gateway_timeout(
    target: &str,
    waited: &std::time::Duration,
    close: bool,
) -> BadGateway {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>504 Gateway Timeout</title></head><body>\
         <h1>504 Gateway Timeout</h1><p><code>{}</code> did not answer within {}.</p>\
         <p>The dev server may be stuck; agnt gave up waiting.</p></body></html>\n",
        html_escape(target),
        super::deadline::words(*waited)
    );
    gateway_page(504, "Gateway Timeout", body, close)
}

/// The 503 a new connection gets when every proxy together holds the daemon's connection
/// budget.
pub(crate) fn over_budget() -> Vec<u8> {
    client_error(
        503,
        "Service Unavailable",
        "agnt's connection budget is in use; retry shortly",
    )
}

fn gateway_page(status: u16, reason: &str, body: String, close: bool) -> BadGateway {
    let response = http::simple_response(
        status,
        reason,
        "text/html; charset=utf-8",
        body.as_bytes(),
        close,
    );
    BadGateway {
        status,
        response,
        headers: vec![
            ("Content-Type".into(), b"text/html; charset=utf-8".to_vec()),
            ("Content-Length".into(), body.len().to_string().into_bytes()),
        ],
        body: body.into_bytes(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `/__agnt/agnt.js`: cacheable forever when asked for by the current version
/// (`?v=VERSION`, as the injected tag does), else `no-cache`.
pub(crate) fn script(target: &str, close: bool) -> Vec<u8> {
    javascript(target, AGNT_JS.as_bytes(), &super::script::VERSION, close)
}

/// `/__agnt/m/NAME.js`: a lazy module, cached like the main script (`?v=` its own hash).
pub(crate) fn module(target: &str, close: bool) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or("");
    let name = path
        .strip_prefix("/__agnt/m/")
        .and_then(|n| n.strip_suffix(".js"));
    match name.and_then(super::script::module) {
        Some(m) => javascript(target, m.js.as_bytes(), &m.version, close),
        None => unknown_route(close),
    }
}

/// Response headers worth auditing; never `Set-Cookie` (the page must not see HttpOnly
/// cookies) or anything else not named here.
const SECURITY_HEADERS: &[&str] = &[
    "content-security-policy",
    "content-security-policy-report-only",
    "strict-transport-security",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
    "x-xss-protection",
    "server",
    "x-powered-by",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "cache-control",
    "content-type",
];

/// `/__agnt/headers?path=/p`: the security-relevant response headers of the newest recorded
/// document response (one the script was injected into) for that path, else of the newest
/// injected document at all; `{found: false}` when none is recorded.
pub(crate) fn document_headers(
    log: &super::traffic::TrafficLogger,
    target: &str,
    close: bool,
) -> Vec<u8> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let want = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("path="))
        .map(percent_decode)
        .unwrap_or_default();
    let q = super::LogQuery {
        types: vec!["http".into()],
        ..Default::default()
    };
    let docs: Vec<_> = log
        .matching(&q)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match &e.body {
            super::traffic::EntryBody::Http(h) if h.injected => Some(h.clone()),
            _ => None,
        })
        .collect();
    let pick = docs
        .iter()
        .rev()
        .find(|h| h.url == want)
        .or_else(|| docs.last());
    let body = match pick {
        Some(h) => {
            let mut headers = serde_json::Map::new();
            for (name, value) in &h.response_headers {
                let lower = name.to_ascii_lowercase();
                if SECURITY_HEADERS.contains(&lower.as_str()) {
                    headers.insert(
                        lower,
                        serde_json::Value::String(String::from_utf8_lossy(value).into_owned()),
                    );
                }
            }
            serde_json::json!({"found": true, "url": h.url, "exact": h.url == want, "status": h.status, "headers": headers})
        }
        None => serde_json::json!({"found": false, "url": want}),
    };
    let body = body.to_string();
    http::simple_response(200, "OK", "application/json", body.as_bytes(), close)
}

/// `%XX` and `+` decoding of a query value (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn javascript(target: &str, body: &[u8], version: &str, close: bool) -> Vec<u8> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let current = query
        .split('&')
        .any(|kv| kv.strip_prefix("v=") == Some(version));
    let mut headers: Vec<Header> = vec![
        (
            "Content-Type".into(),
            b"application/javascript; charset=utf-8".to_vec(),
        ),
        ("Content-Length".into(), body.len().to_string().into_bytes()),
        (
            "Cache-Control".into(),
            if current {
                b"public, max-age=31536000, immutable".to_vec()
            } else {
                b"no-cache".to_vec()
            },
        ),
        ("X-Content-Type-Options".into(), b"nosniff".to_vec()),
    ];
    if close {
        headers.push(("Connection".into(), b"close".to_vec()));
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    http::write_response(
        &ResponseHead {
            version: 1,
            status: 200,
            reason: "OK".into(),
            headers,
        },
        &mut out,
    );
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(resp: &[u8]) -> (ResponseHead, Vec<u8>) {
        let (head, n) = http::parse_response(resp).unwrap().unwrap();
        (head, resp[n..].to_vec())
    }

    #[test]
    fn client_errors_close_and_say_why() {
        let (head, body) = parse(&client_error(431, "Request Header Fields Too Large", "big"));
        assert_eq!(head.status, 431);
        assert_eq!(
            http::header(&head.headers, "connection"),
            Some(&b"close"[..])
        );
        assert_eq!(body, b"431 Request Header Fields Too Large: big\n");
        let (head, body) = parse(&unknown_route(false));
        assert_eq!(
            (head.status, body.as_slice()),
            (404, &b"unknown agnt route\n"[..])
        );
        assert!(http::header(&head.headers, "connection").is_none());
    }

    #[test]
    fn bad_gateway_names_target_and_cause_escaped() {
        let g = bad_gateway("http://localhost:3000", "refused <\"&>", false);
        let (head, body) = parse(&g.response);
        assert_eq!(head.status, 502);
        assert_eq!(body, g.body);
        let text = String::from_utf8(g.body.clone()).unwrap();
        assert!(text.contains("<code>http://localhost:3000</code>: refused &lt;&quot;&amp;&gt;."));
        assert_eq!(
            http::header(&g.headers, "content-length"),
            Some(g.body.len().to_string().as_bytes())
        );
        let (head, _) = parse(&bad_gateway("t", "c", true).response);
        assert_eq!(
            http::header(&head.headers, "connection"),
            Some(&b"close"[..])
        );
    }

    #[test]
    fn gateway_timeout_names_target_and_wait() {
        let g = gateway_timeout("http://x:1", &std::time::Duration::from_secs(60), true);
        let (head, body) = parse(&g.response);
        assert_eq!((head.status, g.status), (504, 504));
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("<code>http://x:1</code> did not answer within 60.0 s"),
            "{text}"
        );
        let (head, _) = parse(&over_budget());
        assert_eq!(head.status, 503);
    }

    #[test]
    fn script_is_immutable_only_for_the_current_version() {
        let v = super::super::script::VERSION.as_str();
        let (head, body) = parse(&script(&format!("/__agnt/agnt.js?x=1&v={v}"), false));
        assert_eq!(body, AGNT_JS.as_bytes());
        let cc = http::header_str(&head.headers, "cache-control").unwrap();
        assert!(cc.contains("immutable"), "{cc}");
        for t in [
            "/__agnt/agnt.js",
            "/__agnt/agnt.js?v=old",
            "/__agnt/agnt.js?",
        ] {
            let (head, _) = parse(&script(t, true));
            assert_eq!(
                http::header_str(&head.headers, "cache-control").unwrap(),
                "no-cache"
            );
            assert_eq!(
                http::header(&head.headers, "connection"),
                Some(&b"close"[..])
            );
        }
    }
}
