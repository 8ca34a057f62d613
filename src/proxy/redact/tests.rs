//! Unit tests of the redactor: one `check` per form, the name rules, the marker, idempotence,
//! the JS copy of the table, and malformed input (proptest: never panics).

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn r() -> Redactor {
    Redactor::with_key(&["x_internal_ref".to_string()], b"test key")
}

fn s(v: Option<Vec<u8>>) -> String {
    String::from_utf8(v.expect("changed")).unwrap()
}

#[test]
fn names_match_exactly_ignoring_case_and_separators() {
    let r = r();
    for yes in [
        "api_key",
        "api-key",
        "apiKey",
        "APIKEY",
        "Password",
        "access_token",
        "AccessToken",
        "client-secret",
        "sessionId",
        "card_number",
        "x-internal-ref",
        "user[password]",
    ] {
        let place = if yes.contains('[') {
            Place::Form
        } else {
            Place::Json
        };
        assert!(r.is_secret(yes, place), "{yes}");
    }
    for no in [
        "statusCode",
        "discard",
        "passport",
        "tokenizer_version",
        "password_hint_shown",
        "",
        "session_count",
        "cards",
        "page_id",
    ] {
        assert!(
            !r.is_secret(no, Place::Json) && !r.is_secret(no, Place::Form),
            "{no}"
        );
    }
    assert!(r.is_secret("code", Place::Form) && r.is_secret("state", Place::Form));
    assert!(!r.is_secret("code", Place::Json) && !r.is_secret("state", Place::Json));
}

#[test]
fn marker_is_keyed_stable_and_says_the_length() {
    let r = r();
    let m = r.marker(b"hunter2");
    assert!(
        m.starts_with("[redacted sha256:") && m.ends_with(" len=7]"),
        "{m}"
    );
    assert_eq!(m.len(), "[redacted sha256:1a2b3c4d len=7]".len());
    assert_eq!(m, r.marker(b"hunter2"));
    assert_ne!(m, r.marker(b"hunter3"));
    assert_ne!(m, Redactor::with_key(&[], b"other key").marker(b"hunter2"));
    assert!(is_marker(m.as_bytes()));
    // The process key is random: two processes disagree (here: not the test key).
    assert_ne!(Redactor::new(&[]).marker(b"hunter2"), m);
}

#[test]
fn urls_query_and_fragment() {
    let r = r();
    let m = |v: &str| r.marker(v.as_bytes());
    assert_eq!(
        r.url("/cb?code=abc&state=xyz&page=2"),
        format!("/cb?code={}&state={}&page=2", m("abc"), m("xyz"))
    );
    assert_eq!(
        r.url("http://h/x?tok=1&api%5Fkey=a%2Bb#access_token=T&x=1"),
        format!(
            "http://h/x?tok=1&api%5Fkey={}#access_token={}&x=1",
            m("a+b"),
            m("T")
        )
    );
    for same in [
        "/a",
        "/a?statusCode=1&discard=2&passport=3&tokenizer_version=4",
        "/a#top",
        "/a?token=",
    ] {
        assert!(matches!(r.url(same), Cow::Borrowed(_)), "{same}");
    }
    let once = r.url("/a?token=t").into_owned();
    assert_eq!(r.url(&once), once, "idempotent");
}

#[test]
fn free_text_urls() {
    let r = r();
    let t = "fetch failed: http://h/api?token=abc123&x=1 at app.js?apikey=K:3:5 (ok)";
    let out = r.text(t);
    assert!(!out.contains("abc123") && !out.contains("K:3:5"), "{out}");
    assert!(out.contains("&x=1") && out.contains(" (ok)"));
    assert!(matches!(r.text("a && b ? c : d = e"), Cow::Borrowed(_)));
}

#[test]
fn headers_cookies_and_credentials() {
    let r = r();
    let mut h: Vec<Header> = [
        ("Authorization", "Bearer abc.def"),
        ("Cookie", "sid=s3cr3t; theme=dark; __agnt_page=tab-1"),
        ("Set-Cookie", "sid=s3cr3t; Path=/; HttpOnly"),
        ("X-Api-Key", "k1"),
        ("X-My-Session-Id", "s9"),
        ("x-internal-ref", "r1"),
        ("Referer", "http://h/p?password=pw"),
        ("Location", "/next?next=1"),
        ("Content-Type", "text/plain"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
    .collect();
    r.headers(&mut h);
    let v = |i: usize| String::from_utf8(h[i].1.clone()).unwrap();
    let m = |x: &str| r.marker(x.as_bytes());
    assert_eq!(v(0), format!("Bearer {}", m("abc.def")));
    assert_eq!(
        v(1),
        format!(
            "sid={}; theme={}; __agnt_page=tab-1",
            m("s3cr3t"),
            m("dark")
        )
    );
    assert_eq!(v(2), format!("sid={}; Path=/; HttpOnly", m("s3cr3t")));
    assert_eq!((v(3), v(4), v(5)), (m("k1"), m("s9"), m("r1")));
    assert_eq!(v(6), format!("http://h/p?password={}", m("pw")));
    assert_eq!(
        (v(7).as_str(), v(8).as_str()),
        ("/next?next=1", "text/plain")
    );
    let again = h.clone();
    r.headers(&mut h);
    assert_eq!(h, again, "idempotent");
}

#[test]
fn form_and_multipart_bodies() {
    let r = r();
    let m = |x: &str| r.marker(x.as_bytes());
    assert_eq!(
        s(form(&r, b"user=bob&password=p%40ss&code=C1&discard=1")),
        format!("user=bob&password={}&code={}&discard=1", m("p@ss"), m("C1"))
    );
    assert!(form(&r, b"a=1&passport=2").is_none());
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nK-123\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"; filename=\"a.txt\"\r\n\r\nfile\r\n--XyZ--\r\n";
    let out = s(multipart(&r, "multipart/form-data; boundary=xyz", body));
    assert!(
        out.contains(&format!("\r\n\r\n{}\r\n--XyZ", m("K-123"))),
        "{out}"
    );
    assert!(out.contains("bob") && out.contains("file") && !out.contains("K-123"));
    // Cut before the part ends: hidden up to the end.
    let cut = &body[..body.len() - 60];
    let cut_text = String::from_utf8_lossy(cut);
    assert!(cut_text.contains("K-12"));
    let out = s(multipart(&r, "multipart/form-data; boundary=\"XyZ\"", cut));
    assert!(!out.contains("K-12"), "{out}");
}

#[test]
fn json_at_any_depth_with_whole_values() {
    let r = r();
    let m = |x: &str| r.marker(x.as_bytes());
    let body = br#"{"user": {"name": "bob", "password": "hunter2", "card": {"number": "4111", "cvv": 123}},
 "tokens": [{"access_token": "A\"B"}], "api_key": ["k1", "k2"], "error": {"code": "E42", "statusCode": 500},
 "passport": "P", "tokenizer_version": 3, "secret": null, "state": "ok"}"#;
    let out = s(json(&r, body));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["user"]["password"], m("hunter2"));
    assert_eq!(v["user"]["card"], m(r#"{"number": "4111", "cvv": 123}"#));
    assert_eq!(v["tokens"][0]["access_token"], m("A\"B"));
    assert_eq!(v["api_key"], m(r#"["k1", "k2"]"#));
    assert_eq!(v["error"], json!({"code": "E42", "statusCode": 500}));
    assert_eq!(
        (v["passport"].as_str(), v["tokenizer_version"].as_u64()),
        (Some("P"), Some(3))
    );
    assert_eq!(
        (v["secret"].is_null(), v["state"].as_str()),
        (true, Some("ok"))
    );
    assert!(!out.contains("hunter2") && !out.contains("4111"));
    assert!(json(&r, out.as_bytes()).is_none(), "idempotent");
    // Escaped key, cut document, non-JSON.
    let out = s(json(&r, br#"{"pass\u0077ord": "x1", "token": "abcdef"#));
    assert!(!out.contains("x1") && !out.contains("abcdef"), "{out}");
    assert!(json(&r, b"{not json at all").is_none());
}

#[test]
fn events_and_records() {
    let r = r();
    let mut ev = json!({"message": "GET /a?token=T1 failed", "url": "http://h/?state=S", "data": {"apiKey": "K"}, "code": 5});
    r.event(&mut ev);
    let text = ev.to_string();
    assert!(
        !text.contains("T1") && !text.contains("=S\"") && !text.contains("\"K\""),
        "{text}"
    );
    assert_eq!(ev["code"], 5);
    let mut rec = HttpRecord {
        url: "/login?password=pw".into(),
        request_headers: vec![("Content-Type".into(), b"text/plain;charset=UTF-8".to_vec())],
        request_body: br#"{"password":"pw"}"#.to_vec(),
        ..Default::default()
    };
    r.record(&mut rec);
    let m = r.marker(b"pw");
    assert_eq!(rec.url, format!("/login?password={m}"));
    assert_eq!(
        String::from_utf8(rec.request_body).unwrap(),
        format!(r#"{{"password":"{m}"}}"#)
    );
}

/// The page script's copy of the table (`script/00-redact.js`) must equal this one.
#[test]
fn the_browser_table_is_the_same_table() {
    let src = crate::proxy::script::PARTS
        .iter()
        .find(|(n, _)| *n == "00-redact.js")
        .expect("00-redact.js is a script part")
        .1;
    let start = src
        .find("const SECRET_NAMES = [")
        .expect("SECRET_NAMES array")
        + 22;
    let end = start + src[start..].find("];").expect("end of SECRET_NAMES");
    let js: Vec<&str> = src[start..end]
        .split(',')
        .map(|n| n.trim().trim_matches('"'))
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(
        js, SECRET_NAMES,
        "update script/00-redact.js with the Rust table"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn malformed_input_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300),
                                    seed in "[{}\\[\\]\":,a-z\\\\ ]{0,80}") {
        let r = r();
        let _ = json(&r, &body);
        let _ = json(&r, seed.as_bytes());
        let withkey = format!("{{\"password\":{seed}");
        let out = json(&r, withkey.as_bytes());
        if let Some(o) = out { prop_assert!(!o.is_empty()); }
        let _ = form(&r, &body);
        let _ = multipart(&r, "multipart/form-data; boundary=a", &body);
        let _ = multipart(&r, "multipart/form-data; boundary=a", seed.as_bytes());
        let text = String::from_utf8_lossy(&body);
        let _ = r.url(&text);
        let _ = r.text(&text);
        let _ = r.text(&seed);
        let mut h = vec![("Cookie".to_string(), body.clone()), ("Set-Cookie".into(), body.clone()),
                         ("Authorization".into(), body.clone()), ("Referer".into(), body.clone())];
        r.headers(&mut h);
        let _ = percent_decode(&body);
    }
}
