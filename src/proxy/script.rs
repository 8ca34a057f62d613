//! The browser script served at `/__agnt/agnt.js`: its parts (`script/*.js`, embedded with
//! `include_str!`) joined in a fixed order inside one strict-mode arrow function, and the
//! `window.__devtool` API documentation parsed from the `@devtool name(args) — text` doc
//! comments of those same parts, so the docs the agent reads cannot drift from the functions.

use std::sync::LazyLock;

use serde_json::{Value, json};

/// The script parts in load order (file name, source).
pub const PARTS: &[(&str, &str)] = &[
    ("00-core.js", include_str!("script/00-core.js")),
    ("00-redact.js", include_str!("script/00-redact.js")),
    ("01-channel.js", include_str!("script/01-channel.js")),
    ("02-capture.js", include_str!("script/02-capture.js")),
    ("03-inspect.js", include_str!("script/03-inspect.js")),
    ("04-a11y.js", include_str!("script/04-a11y.js")),
    ("05-screenshot.js", include_str!("script/05-screenshot.js")),
    ("06-panel.js", include_str!("script/06-panel.js")),
    ("99-start.js", include_str!("script/99-start.js")),
];

/// The assembled script.
pub static AGNT_JS: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::with_capacity(PARTS.iter().map(|p| p.1.len() + 32).sum::<usize>() + 64);
    s.push_str("(() => {\n\"use strict\";\n");
    for (name, src) in PARTS {
        s.push_str("// --- ");
        s.push_str(name);
        s.push('\n');
        s.push_str(src);
        if !src.ends_with('\n') {
            s.push('\n');
        }
    }
    s.push_str("})();\n");
    s
});

/// A short content hash of [`AGNT_JS`] (FNV-1a 64, hex): the injected tag asks for
/// `/__agnt/agnt.js?v=VERSION`, which may be cached forever; a new binary means a new URL.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in AGNT_JS.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
});

/// One documented `__devtool` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiDoc {
    /// Dotted path under `window.__devtool`, e.g. `interactions.getHistory`.
    pub name: String,
    /// The call signature as written, e.g. `inspect(selector)`.
    pub signature: String,
    pub text: String,
    /// The script part that defines it.
    pub part: &'static str,
}

/// Parses `@devtool` doc comments out of JS source (pure; tolerant of malformed comments).
pub fn parse_docs(part: &'static str, src: &str) -> Vec<ApiDoc> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("/** @devtool ") {
        rest = &rest[i + "/** @devtool ".len()..];
        let Some(end) = rest.find("*/") else { break };
        let body = rest[..end].trim();
        rest = &rest[end..];
        let (sig, text) = match body.split_once(" — ") {
            Some((s, t)) => (s.trim(), t.trim()),
            None => (body, ""),
        };
        let name = sig.split('(').next().unwrap_or("").trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            continue;
        }
        out.push(ApiDoc {
            name: name.to_string(),
            signature: sig.to_string(),
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            part,
        });
    }
    out
}

/// Every documented function, in script order.
pub static DOCS: LazyLock<Vec<ApiDoc>> = LazyLock::new(|| {
    PARTS
        .iter()
        .flat_map(|(name, src)| parse_docs(name, src))
        .collect()
});

/// The overview `proxy {action: exec, help: true}` returns.
pub fn help() -> Value {
    let functions: Vec<Value> = DOCS
        .iter()
        .map(|d| json!({"name": d.name, "signature": format!("__devtool.{}", d.signature), "summary": first_sentence(&d.text)}))
        .collect();
    json!({
        "api": "window.__devtool",
        "usage": "Call these through proxy exec, e.g. {\"action\": \"exec\", \"id\": \"app\", \"code\": \"__devtool.inspect('#submit')\"}. Every function returns data or {error}; async ones (screenshot, selectElement) are awaited. On pages whose CSP forbids eval only plain calls with JSON arguments work. Use describe: \"<name>\" for one function's full doc.",
        "count": functions.len(),
        "functions": functions,
    })
}

/// One function's doc (`describe`); unknown names list the known ones.
pub fn describe(name: &str) -> Result<Value, String> {
    let key = name
        .trim()
        .trim_start_matches("window.")
        .trim_start_matches("__devtool.");
    let key = key.split('(').next().unwrap_or("").trim();
    match DOCS
        .iter()
        .find(|d| d.name == key || d.name.eq_ignore_ascii_case(key))
    {
        Some(d) => Ok(json!({
            "name": d.name,
            "signature": format!("__devtool.{}", d.signature),
            "description": d.text,
            "defined_in": format!("src/proxy/script/{}", d.part),
        })),
        None => Err(format!(
            "unknown __devtool function {name:?}; known: {}",
            DOCS.iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn first_sentence(s: &str) -> &str {
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_are_parsed_from_the_parts() {
        let names: Vec<&str> = DOCS.iter().map(|d| d.name.as_str()).collect();
        for n in [
            "log",
            "inspect",
            "getElementInfo",
            "auditAccessibility",
            "interactions.getLastClickContext",
            "mutations.highlightRecent",
            "screenshot",
            "captureState",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        // Every documented name is registered with def("name", ...) in the same part.
        for d in DOCS.iter() {
            let src = PARTS.iter().find(|p| p.0 == d.part).unwrap().1;
            assert!(
                src.contains(&format!("def(\"{}\"", d.name)),
                "{} documented but not defined",
                d.name
            );
        }
        // And every def(...) is documented.
        for (_, src) in PARTS {
            for (i, _) in src.match_indices("\ndef(\"") {
                let name = src[i + 6..].split('"').next().unwrap();
                assert!(names.contains(&name), "{name} defined but not documented");
            }
        }
        assert_eq!(describe("__devtool.inspect()").unwrap()["name"], "inspect");
        let e = describe("nope").unwrap_err();
        assert!(e.contains("inspect") && e.contains("screenshot"));
        assert!(help()["count"].as_u64().unwrap() >= 20);
    }

    #[test]
    fn malformed_doc_comments_are_skipped() {
        assert!(parse_docs("x", "/** @devtool ").is_empty());
        assert!(parse_docs("x", "/** @devtool */").is_empty());
        assert!(parse_docs("x", "/** @devtool bad name(x) — y */").is_empty());
        let d = parse_docs("x", "/** @devtool a.b(x) */ /** @devtool c() — d\n  e */");
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].text, "d e");
    }

    #[test]
    fn script_is_wrapped_once() {
        assert!(AGNT_JS.starts_with("(() => {"));
        assert!(AGNT_JS.trim_end().ends_with("})();"));
        assert!(!AGNT_JS.contains("http://") || !AGNT_JS.contains("<script src=\"http"));
    }
}
