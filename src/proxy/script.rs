//! The browser script served at `/__agnt/agnt.js`: its parts (`script/*.js`, embedded
//! gzip-compressed by `build.rs` and inflated once at first use) joined in a fixed order inside one strict-mode arrow function, and the
//! `window.__devtool` API documentation parsed from the `@devtool name(args) — text` doc
//! comments of those same parts, so the docs the agent reads cannot drift from the functions.
//!
//! Everything a page does not need at load (the cheap `tools` group, screenshots, audits, CSS,
//! quality, security) is in lazy modules ([`MODULES`], served at
//! `/__agnt/m/NAME.js?v=HASH`): the eager script registers a stub for each of their documented
//! names that loads the module on first call (a same-origin `<script>`, so CSP `'self'` allows
//! it) and then calls the real function; `help` lists them from the same doc comments.

use std::sync::LazyLock;

use serde_json::{Value, json};

/// `(file name, gzip-compressed source)` of a part under `src/proxy/script/` (see `build.rs`).
macro_rules! gz {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(env!("OUT_DIR"), "/script/", $name, ".gz")).as_slice(),
        )
    };
}

/// A compressed part: file name and gzip bytes.
type Gz = (&'static str, &'static [u8]);
/// An inflated part: file name and source.
pub type Part = (&'static str, &'static str);

/// The script parts in load order, compressed.
const PARTS_GZ: &[Gz] = &[
    gz!("00-core.js"),
    gz!("00-redact.js"),
    gz!("01-channel.js"),
    gz!("02-capture.js"),
    gz!("03-inspect.js"),
    gz!("04-a11y.js"),
    gz!("06-panel.js"),
    gz!("08-lazy.js"),
    gz!("99-start.js"),
];

/// The lazy modules, compressed: name and parts.
const LAZY_GZ: &[(&str, &[Gz])] = &[
    ("tools", &[gz!("lazy/tools.js")]),
    ("screenshot", &[gz!("lazy/screenshot.js")]),
    ("a11y", &[gz!("lazy/a11y.js")]),
    ("layout", &[gz!("lazy/layout.js")]),
    ("css", &[gz!("lazy/css.js")]),
    ("quality", &[gz!("lazy/quality.js")]),
    ("security", &[gz!("lazy/security.js")]),
];

/// The script parts in load order (file name, source).
pub static PARTS: LazyLock<Vec<Part>> = LazyLock::new(|| PARTS_GZ.iter().map(inflate).collect());

/// The lazy modules: name and parts. Each module's parts share one scope like the eager parts,
/// and see the eager script's helpers listed in [`LIB`].
pub static LAZY: LazyLock<Vec<(&'static str, Vec<Part>)>> = LazyLock::new(|| {
    LAZY_GZ
        .iter()
        .map(|(name, parts)| (*name, parts.iter().map(inflate).collect()))
        .collect()
});

/// One embedded part, inflated for the life of the process (it is served for as long).
fn inflate(&(name, gz): &Gz) -> Part {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text)
        .unwrap_or_else(|e| panic!("the embedded script part {name} does not inflate: {e}"));
    (name, Box::leak(text.into_boxed_str()))
}

/// Names from the eager script's scope handed to lazy modules (`__agnt.lib`).
pub const LIB: &[&str] = &[
    "def",
    "devtool",
    "agnt",
    "el",
    "selectorOf",
    "plain",
    "cut",
    "isOwn",
    "OWN",
    "emit",
    "flush",
    "px",
    "rectOf",
    "visibility",
    "allElements",
    "box",
    "overlayLayer",
    "contrast",
    "parseColor",
    "backgroundOf",
    "luminance",
    "accessibleName",
    "FOCUSABLE",
    "brief",
    "cap",
    "interactions",
    "mutations",
    "publicCopy",
    "highlights",
    "handlers",
    "rawSend",
    "hex",
    "errText",
    "config",
    "secretField",
    "secretAttr",
];

/// One lazy module as served.
#[derive(Debug)]
pub struct Module {
    pub name: &'static str,
    pub js: String,
    /// Content hash; the URL `/__agnt/m/NAME.js?v=VERSION` may be cached forever.
    pub version: String,
}

fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn join_parts(s: &mut String, parts: &[Part]) {
    for (name, src) in parts {
        s.push_str("// --- ");
        s.push_str(name);
        s.push('\n');
        strip_comment_lines(s, src);
    }
}

/// Appends `src` without its whole-line comments (`// …` lines and `/* … */` blocks that start a
/// line): every page downloads the script, and the doc comments (already parsed into `help`)
/// are a fifth of its compressed size. Pure and conservative: a line inside a multi-line
/// template literal is never touched, and a comment that shares its line with code stays.
fn strip_comment_lines(out: &mut String, src: &str) {
    let mut in_template = false;
    let mut in_block = false;
    for line in src.lines() {
        let t = line.trim_start();
        if in_block {
            if let Some(end) = t.find("*/") {
                in_block = false;
                if !t[end + 2..].trim().is_empty() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        if !in_template {
            if t.starts_with("//") {
                continue;
            }
            if let Some(rest) = t.strip_prefix("/*") {
                match rest.find("*/") {
                    None => {
                        in_block = true;
                        continue;
                    }
                    Some(end) if rest[end + 2..].trim().is_empty() => continue,
                    Some(_) => {}
                }
            }
        }
        out.push_str(line);
        out.push('\n');
        if template_ticks(line) % 2 == 1 {
            in_template = !in_template;
        }
    }
}

/// Backticks on a line outside `'…'` and `"…"` strings and escapes (template-literal openers and
/// closers; `${…}` nesting is rare enough in our parts to be out of scope).
fn template_ticks(line: &str) -> usize {
    let (mut n, mut quote, mut chars) = (0, None, line.chars());
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                chars.next();
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '`') => n += 1,
            _ => {}
        }
    }
    n
}

/// The lazy modules, assembled.
pub static MODULES: LazyLock<Vec<Module>> = LazyLock::new(|| {
    LAZY.iter()
        .map(|(name, parts)| {
            let mut js = format!(
                "(() => {{\n\"use strict\";\nconst {{ {} }} = (window.__agnt && window.__agnt.lib) || {{}};\nif (!def) return;\n",
                LIB.join(", ")
            );
            join_parts(&mut js, parts);
            js.push_str(&format!("agnt.moduleLoaded({name:?});\n}})();\n"));
            let version = fnv(&js);
            Module { name, js, version }
        })
        .collect()
});

/// A lazy module by name.
pub fn module(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

/// The assembled script.
pub static AGNT_JS: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::with_capacity(PARTS.iter().map(|p| p.1.len() + 32).sum::<usize>() + 64);
    s.push_str("(() => {\n\"use strict\";\n");
    let (eager, start) = PARTS.split_at(PARTS.len() - 1);
    join_parts(&mut s, eager);
    // Generated: the helpers lazy modules see, and a stub per lazy function.
    s.push_str("// --- lazy modules (generated by script.rs)\n");
    s.push_str(&format!("agnt.lib = {{ {} }};\n", LIB.join(", ")));
    let lazy: serde_json::Map<String, Value> = MODULES
        .iter()
        .map(|m| {
            let names: Vec<&str> = DOCS
                .iter()
                .filter(|d| d.module == Some(m.name))
                .map(|d| d.name.as_str())
                .collect();
            (m.name.to_string(), json!({"v": m.version, "names": names}))
        })
        .collect();
    s.push_str(&format!("registerLazy({});\n", Value::Object(lazy)));
    join_parts(&mut s, start);
    s.push_str("})();\n");
    s
});

/// A short content hash of [`AGNT_JS`] (FNV-1a 64, hex): the injected tag asks for
/// `/__agnt/agnt.js?v=VERSION`, which may be cached forever; a new binary means a new URL.
pub static VERSION: LazyLock<String> = LazyLock::new(|| fnv(&AGNT_JS));

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
    /// The lazy module it is loaded from (`None`: the eager script).
    pub module: Option<&'static str>,
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
            module: None,
        });
    }
    out
}

/// Every documented function, in script order.
pub static DOCS: LazyLock<Vec<ApiDoc>> = LazyLock::new(|| {
    let eager = PARTS.iter().flat_map(|(name, src)| parse_docs(name, src));
    let lazy = LAZY.iter().flat_map(|(m, parts)| {
        parts.iter().flat_map(move |(name, src)| {
            parse_docs(name, src).into_iter().map(move |d| ApiDoc {
                module: Some(*m),
                ..d
            })
        })
    });
    eager.chain(lazy).collect()
});

/// Every part, eager and lazy (file name, source).
pub fn all_parts() -> impl Iterator<Item = &'static Part> {
    PARTS.iter().chain(LAZY.iter().flat_map(|(_, p)| p.iter()))
}

/// The overview `proxy {action: exec, help: true}` returns.
pub fn help() -> Value {
    let functions: Vec<Value> = DOCS
        .iter()
        .map(|d| {
            let mut f = json!({"name": d.name, "signature": format!("__devtool.{}", d.signature), "summary": first_sentence(&d.text)});
            if let Some(m) = d.module {
                f["module"] = json!(m);
            }
            f
        })
        .collect();
    json!({
        "api": "window.__devtool",
        "usage": "Call these through proxy exec, e.g. {\"action\": \"exec\", \"id\": \"app\", \"code\": \"__devtool.inspect('#submit')\"}. Every function returns data or {error}; async ones (screenshot, selectElement) are awaited. On pages whose CSP forbids eval only plain calls with JSON arguments work. Use describe: \"<name>\" for one function's full doc. Functions with a \"module\" load that module on first call (the call then returns a promise; exec awaits it).",
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
            "module": d.module,
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
            let src = all_parts().find(|p| p.0 == d.part).unwrap().1;
            assert!(
                src.contains(&format!("def(\"{}\"", d.name)),
                "{} documented but not defined",
                d.name
            );
        }
        // And every def(...) is documented.
        for (_, src) in all_parts() {
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

    #[test]
    fn comment_lines_are_stripped_but_templates_and_code_kept() {
        let src = "// gone\n  /** doc\n   * more\n   */\nconst a = 1; // kept\n/* one */\nconst t = `\n// inside\n/* css */\n`;\nconst u = \"`\"; // a tick in a string\n// gone too\n";
        let mut out = String::new();
        strip_comment_lines(&mut out, src);
        assert_eq!(
            out,
            "const a = 1; // kept\nconst t = `\n// inside\n/* css */\n`;\nconst u = \"`\"; // a tick in a string\n"
        );
        let mut unterminated = String::new();
        strip_comment_lines(&mut unterminated, "/* never closed\ncode();\n");
        assert_eq!(unterminated, "");
    }
}
