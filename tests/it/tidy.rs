//! Tidy: source rules that the compiler and clippy do not check, read from the text of `src/`
//! (in the spirit of rust-analyzer's `tidy.rs`). Every rule is one test whose failure lists each
//! offender as `file:line: rule`.
//!
//! The text is read with comments and string contents blanked out, so prose and messages never
//! count; paths (`crate::a::b`, `use crate::{a, b::{c}}`, `std::thread::spawn(..)`) come from a
//! small tokenizer that flattens `use` trees.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

/// A file may have at most this many lines.
const MAX_LINES: usize = 800;

/// Layers, top to bottom. Faces may use anything.
const FACES: &[&str] = &["cli", "up", "daemon"];
const LEAVES: &[&str] = &[
    "ringbuf", "registry", "paths", "util", "thread", "error", "signals", "config", "detect",
    "urlwatch", "tls",
];
const MIDDLE: &[&str] = &["mcp", "tools", "host", "supervisor", "proxy"];

#[test]
fn every_file_starts_with_a_module_doc() {
    let mut bad = Offenders::default();
    for f in &sources() {
        let first = f.text.lines().next().unwrap_or_default();
        if !first.starts_with("//!") {
            bad.add(
                f,
                1,
                "does not start with a `//!` paragraph saying what the module owns",
            );
        }
    }
    bad.check("module docs");
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let files = sources();
    let roots = root_reexports(&files);
    let mut bad = Offenders::default();
    let mut seen = 0;
    for f in &files {
        let from = f.module();
        for (target, line) in crate_refs(f, &roots) {
            seen += 1;
            if let Err(why) = allowed(&from, &target) {
                bad.add(f, line, &why);
            }
        }
    }
    assert!(seen > 100, "found only {seen} crate:: references");
    bad.check("layering");
}

#[test]
fn no_import_cycle_among_top_level_modules() {
    let files = sources();
    let roots = root_reexports(&files);
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in &files {
        let from = f.module();
        for (to, line) in crate_refs(f, &roots) {
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("src/{}:{line}", f.rel));
            }
        }
    }
    assert!(
        edges.len() > 10,
        "found only {} importing modules",
        edges.len()
    );
    // Depth-first search; a back edge closes a cycle, reported with the line of each step.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            let ring: Vec<String> = path[i..]
                .iter()
                .zip(path[i + 1..].iter().chain(std::iter::once(&m.to_string())))
                .map(|(a, b)| format!("{a} -> {b} ({})", edges[a][b]))
                .collect();
            cycles.push(ring.join(", "));
            return;
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            visit(next, edges, path, done, cycles);
        }
        path.pop();
    }
    let (mut done, mut cycles) = (Default::default(), Vec::new());
    for m in edges.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "import cycles:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn threads_and_commands_only_through_the_wrappers() {
    let mut bad = Offenders::default();
    let mut exempt_hits = Vec::new();
    for f in &sources() {
        let hits = wrapper_violations(f);
        if f.rel == "thread.rs" || f.rel == "supervisor/spawn.rs" {
            exempt_hits.extend(hits.into_iter().map(|(_, what)| what));
            continue;
        }
        for (line, what) in hits {
            bad.add(f, line, &what);
        }
    }
    // The wrappers themselves must be found, or the check cannot see anything.
    assert!(
        exempt_hits.iter().any(|h| h.contains("thread::Builder"))
            && exempt_hits.iter().any(|h| h.contains("Command::new")),
        "the check does not see the wrappers' own uses: {exempt_hits:?}"
    );
    bad.check("wrappers");
}

#[test]
fn no_file_is_too_long() {
    let mut bad = Offenders::default();
    for f in &sources() {
        let n = f.text.lines().count();
        if n > MAX_LINES {
            bad.add(
                f,
                n,
                &format!("{n} lines, more than {MAX_LINES}: split the module"),
            );
        }
    }
    bad.check("file size");
}

#[test]
fn the_reader_understands_rust_text() {
    let text = r##"//! doc with crate::daemon and std::thread::spawn
use crate::{
    supervisor::{self, ready::{probe_http}},
    // crate::cli in a comment
    Error, thread as t,
};
use std::{io, thread};
/* block /* nested crate::up */ still comment */
fn f<'a>(x: &'a str) -> char {
    let s = "crate::mcp // not a comment";
    let r = r#"crate::tools "quoted" "#;
    let b = br"crate::host";
    let c = '"';
    let d = b'\'';
    crate::proxy::start(pub_(crate));
    thread::spawn(|| {});
    std::process::Command::new("x");
    std::thread::spawn(|| {});
    let _ = (thread::Builder::new(), crate::thread::spawn("ok", 1, || {}));
    '}'
}
"##;
    let f = Source {
        rel: "supervisor/x.rs".into(),
        text: text.into(),
    };
    let roots = BTreeMap::from([("Error".to_string(), "error".to_string())]);
    let refs: Vec<(String, usize)> = crate_refs(&f, &roots);
    assert_eq!(
        refs,
        [
            ("supervisor".to_string(), 3),
            ("supervisor".to_string(), 3),
            ("error".to_string(), 5),
            ("thread".to_string(), 5),
            ("proxy".to_string(), 15),
            ("thread".to_string(), 19),
        ]
    );
    let hits: Vec<usize> = wrapper_violations(&f).into_iter().map(|(l, _)| l).collect();
    assert_eq!(hits, [16, 17, 18, 19]);
    assert_eq!(
        allowed("supervisor", "mcp"),
        Err("supervisor must not use crate::mcp (a layer above it)".to_string())
    );
    assert!(allowed("config", "supervisor").is_ok());
    assert!(allowed("detect", "supervisor").is_err());
    assert!(allowed("util", "thread").is_err());
    assert!(allowed("util", "error").is_ok());
    assert!(allowed("nosuch", "error").is_err());
}

/// One `.rs` file under `src/`.
struct Source {
    /// Path relative to `src/`, with `/` separators.
    rel: String,
    text: String,
}

impl Source {
    /// The top-level module it belongs to (`supervisor/ready.rs` → `supervisor`).
    fn module(&self) -> String {
        let first = self.rel.split('/').next().unwrap_or_default();
        first.trim_end_matches(".rs").to_string()
    }
}

/// Every `.rs` file under `src/`, sorted; never vacuously few.
fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths);
    paths.sort();
    let files: Vec<Source> = paths
        .iter()
        .map(|p| Source {
            rel: p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
            text: std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    assert!(
        files.len() > 30,
        "found only {} source files under {}",
        files.len(),
        src.display()
    );
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Offenders of one rule.
#[derive(Default)]
struct Offenders(Vec<String>);

impl Offenders {
    fn add(&mut self, f: &Source, line: usize, why: &str) {
        self.0.push(format!("src/{}:{line}: {why}", f.rel));
    }

    fn check(mut self, rule: &str) {
        self.0.dedup();
        if !self.0.is_empty() {
            let mut msg = format!("tidy ({rule}): {} offender(s)\n", self.0.len());
            for o in &self.0 {
                let _ = writeln!(msg, "  {o}");
            }
            panic!("{msg}");
        }
    }
}

/// Whether a file of module `from` may use `crate::<to>`.
fn allowed(from: &str, to: &str) -> Result<(), String> {
    if from == to || matches!(from, "lib" | "main") || FACES.contains(&from) {
        return Ok(());
    }
    let above: Vec<&str> = match from {
        "supervisor" | "proxy" => [FACES, &["mcp", "tools", "host"]].concat(),
        "host" => [FACES, &["mcp", "tools"]].concat(),
        "tools" => [FACES, &["mcp"]].concat(),
        "mcp" => FACES.to_vec(),
        "util" if to != "error" => {
            return Err(format!(
                "util must use nothing but crate::error, not crate::{to}"
            ));
        }
        "config" => [FACES, &["mcp", "tools", "host", "proxy"]].concat(),
        leaf if LEAVES.contains(&leaf) => [FACES, MIDDLE].concat(),
        other => {
            return Err(format!(
                "module {other} is not in the layering table of tests/it/tidy.rs"
            ));
        }
    };
    if above.contains(&to) {
        Err(format!(
            "{from} must not use crate::{to} (a layer above it)"
        ))
    } else {
        Ok(())
    }
}

/// The module each `crate::` path of `f` names, with its line (root re-exports such as
/// `crate::Error` map to their module).
fn crate_refs(f: &Source, roots: &BTreeMap<String, String>) -> Vec<(String, usize)> {
    paths(&mask(&f.text))
        .into_iter()
        .filter(|p| p.len() >= 2 && p[0].0 == "crate")
        .filter_map(|p| {
            let (name, line) = &p[1];
            let module = roots.get(name).cloned().unwrap_or_else(|| name.clone());
            (module != "self" && module != "*").then_some((module, *line))
        })
        .collect()
}

/// `pub use module::...::Name;` in `lib.rs`: `Name` → `module`.
fn root_reexports(files: &[Source]) -> BTreeMap<String, String> {
    let lib = files
        .iter()
        .find(|f| f.rel == "lib.rs")
        .expect("src/lib.rs");
    paths(&mask(&lib.text))
        .into_iter()
        .filter(|p| p.len() >= 2)
        .map(|p| (p[p.len() - 1].0.clone(), p[0].0.clone()))
        .collect()
}

/// Thread and process construction that must go through `crate::thread::spawn` and
/// `crate::supervisor::spawn::command`.
fn wrapper_violations(f: &Source) -> Vec<(usize, String)> {
    let all = paths(&mask(&f.text));
    let std_thread_module = all.iter().any(|p| {
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        names == ["std", "thread"] || names == ["std", "thread", "self"]
    });
    let mut out = Vec::new();
    for p in &all {
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        let joined = names.join("::");
        let line = p[0].1;
        let thread_spawn = names.windows(2).any(|w| w == ["thread", "Builder"])
            || names.starts_with(&["std", "thread"])
                && names[2..].iter().any(|n| *n == "spawn" || *n == "Builder")
            || std_thread_module && names.starts_with(&["thread", "spawn"]);
        if thread_spawn {
            out.push((
                line,
                format!("`{joined}`: start threads with crate::thread::spawn (named, owned)"),
            ));
        }
        if names.windows(2).any(|w| w == ["Command", "new"]) {
            out.push((
                line,
                format!("`{joined}`: build commands with crate::supervisor::spawn::command"),
            ));
        }
    }
    out
}

/// `text` with comments and the contents of string and char literals replaced by spaces
/// (newlines stay, so lines keep their numbers).
fn mask(text: &str) -> String {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from.min(n)..to.min(n)] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < n {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..].iter().position(|&c| c == b'\n').map_or(n, |k| i + k);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut j, mut depth) = (i + 2, 1);
                while j < n && depth > 0 {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'"' => {
                // Raw strings: r"..", r#".."#, br"..", with the hashes right before the quote.
                let hashes = b[..i].iter().rev().take_while(|&&c| c == b'#').count();
                let r = i.checked_sub(hashes + 1);
                let raw = r.is_some_and(|r| {
                    b[r] == b'r'
                        && (r == 0
                            || !ident(b[r - 1])
                            || b[r - 1] == b'b' && (r == 1 || !ident(b[r - 2])))
                });
                let mut j = i + 1;
                if raw {
                    let close: Vec<u8> = std::iter::once(b'"')
                        .chain(std::iter::repeat_n(b'#', hashes))
                        .collect();
                    while j < n && !b[j..].starts_with(&close) {
                        j += 1;
                    }
                    blank(&mut out, i + 1, j);
                    i = j + close.len();
                } else {
                    while j < n && b[j] != b'"' {
                        j += if b[j] == b'\\' { 2 } else { 1 };
                    }
                    blank(&mut out, i + 1, j);
                    i = j + 1;
                }
            }
            b'\'' => {
                if b.get(i + 1) == Some(&b'\\') {
                    // '\n', '\'', '\u{..}'
                    let mut j = i + 3;
                    while j < n && b[j] != b'\'' {
                        j += 1;
                    }
                    blank(&mut out, i + 1, j);
                    i = j + 1;
                } else {
                    let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + len) == Some(&b'\'') {
                        blank(&mut out, i + 1, i + 1 + len);
                        i += len + 2;
                    } else {
                        i += 1; // a lifetime
                    }
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("masking keeps UTF-8")
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Other(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            c if c.is_alphanumeric() || c == '_' => {
                let mut s = c.to_string();
                while let Some(&d) = chars.peek().filter(|d| d.is_alphanumeric() || **d == '_') {
                    s.push(d);
                    chars.next();
                }
                out.push((Tok::Ident(s), line));
            }
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                out.push((Tok::Colons, line));
            }
            c => out.push((Tok::Other(c), line)),
        }
    }
    out
}

/// A path: its segments, each with its line.
type PathSegs = Vec<(String, usize)>;

/// Every path of two or more segments in (masked) text, `use` trees flattened:
/// `use a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`.
fn paths(masked: &str) -> Vec<PathSegs> {
    let toks = tokens(masked);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let starts = matches!(toks[i].0, Tok::Ident(_))
            && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Colons)
            && (i == 0 || toks[i - 1].0 != Tok::Colons);
        if starts {
            let (found, next) = tree(&toks, i);
            out.extend(found.into_iter().filter(|p| p.len() >= 2));
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Parses the path (tree) starting at the identifier `toks[i]`.
fn tree(toks: &[(Tok, usize)], mut i: usize) -> (Vec<PathSegs>, usize) {
    let Some((Tok::Ident(first), line)) = toks.get(i) else {
        return (Vec::new(), i + 1);
    };
    let mut prefix = vec![(first.clone(), *line)];
    i += 1;
    while toks.get(i).map(|t| &t.0) == Some(&Tok::Colons) {
        i += 1;
        match toks.get(i) {
            Some((Tok::Ident(s), line)) => {
                prefix.push((s.clone(), *line));
                i += 1;
            }
            Some((Tok::Other('*'), line)) => {
                prefix.push(("*".into(), *line));
                return (vec![prefix], i + 1);
            }
            Some((Tok::Other('{'), _)) => {
                i += 1;
                let mut all = Vec::new();
                while let Some((t, _)) = toks.get(i) {
                    match t {
                        Tok::Other('}') => {
                            i += 1;
                            break;
                        }
                        Tok::Ident(_) => {
                            let (subs, next) = tree(toks, i);
                            all.extend(subs.into_iter().map(|s| [prefix.clone(), s].concat()));
                            i = next;
                            // `name as alias`
                            if matches!(toks.get(i), Some((Tok::Ident(a), _)) if a == "as") {
                                i += 2;
                            }
                        }
                        Tok::Other('*') => {
                            all.push([prefix.clone(), vec![("*".into(), toks[i].1)]].concat());
                            i += 1;
                        }
                        _ => i += 1, // `,` and anything unexpected
                    }
                }
                return (all, i);
            }
            _ => break, // `::<` turbofish and the like end the path
        }
    }
    (vec![prefix], i)
}
