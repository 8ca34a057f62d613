//! Project detection: what kind of project a directory holds and the names of the scripts it
//! really has (package.json `scripts`, Cargo, Go, Python, Makefile and justfile targets), each
//! with the shell line that runs it.
//!
//! Reads only the few marker files of one directory; the parsers are pure functions over their
//! text. Unlike the Go original, script names are the project's own, not a fixed table.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{Error, Result};

/// The project's main kind, by the first marker found in this order: package.json, Cargo.toml,
/// go.mod, Python markers, Makefile/justfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectKind {
    Node,
    Rust,
    Go,
    Python,
    Make,
    Unknown,
}

/// One runnable script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    pub name: String,
    /// The shell line that runs it (`npm run dev`, `cargo test`, `make lint`).
    pub command: String,
    /// Where it came from: `package.json`, `Cargo.toml`, `go.mod`, `pyproject.toml`, `Makefile`, ...
    pub source: String,
}

/// What [`detect`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    #[serde(rename = "type")]
    pub kind: ProjectKind,
    pub path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<String>,
    /// Every script, first source wins on a name clash.
    pub scripts: Vec<Script>,
}

impl Project {
    /// A script by name.
    pub fn script(&self, name: &str) -> Option<&Script> {
        self.scripts.iter().find(|s| s.name == name)
    }

    /// Script names, for "available: ..." messages.
    pub fn script_names(&self) -> Vec<&str> {
        self.scripts.iter().map(|s| s.name.as_str()).collect()
    }

    fn add(&mut self, scripts: impl IntoIterator<Item = Script>) {
        for s in scripts {
            if self.script(&s.name).is_none() {
                self.scripts.push(s);
            }
        }
    }
}

/// Detects the project in `dir`. A missing directory or a file is an error; a directory with no
/// markers is kind `unknown` with no scripts.
pub fn detect(dir: &Path) -> Result<Project> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io("reading project directory", Some(dir.into()), e))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let exists = |name: &str| dir.join(name).exists();
    let mut p = Project {
        kind: ProjectKind::Unknown,
        path: dir.to_path_buf(),
        name: None,
        package_manager: None,
        scripts: vec![],
    };
    let set_kind = |p: &mut Project, k| {
        if p.kind == ProjectKind::Unknown {
            p.kind = k;
        }
    };

    if let Some(text) = read("package.json") {
        set_kind(&mut p, ProjectKind::Node);
        let pm = node_package_manager(&exists);
        let (name, scripts) = package_json(&text, pm);
        p.name = name;
        p.package_manager = Some(pm.to_string());
        p.add(scripts);
    }
    if let Some(text) = read("Cargo.toml") {
        set_kind(&mut p, ProjectKind::Rust);
        p.package_manager.get_or_insert_with(|| "cargo".into());
        if p.name.is_none() {
            p.name = toml_value(&text, "package", "name");
        }
        p.add(cargo_scripts());
    }
    if let Some(text) = read("go.mod") {
        set_kind(&mut p, ProjectKind::Go);
        if p.name.is_none() {
            p.name = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("module "))
                .map(|m| m.trim().to_string());
        }
        p.add(go_scripts());
    }
    let pyproject = read("pyproject.toml");
    if pyproject.is_some()
        || exists("setup.py")
        || exists("setup.cfg")
        || exists("requirements.txt")
    {
        set_kind(&mut p, ProjectKind::Python);
        let pm = python_package_manager(&exists, pyproject.as_deref());
        p.package_manager.get_or_insert_with(|| pm.to_string());
        if let Some(text) = &pyproject {
            if p.name.is_none() {
                p.name = toml_value(text, "project", "name")
                    .or_else(|| toml_value(text, "tool.poetry", "name"));
            }
            p.add(pyproject_scripts(text));
        }
        p.add(python_defaults(pm, exists("requirements.txt")));
    }
    for file in ["Makefile", "makefile", "GNUmakefile"] {
        if let Some(text) = read(file) {
            set_kind(&mut p, ProjectKind::Make);
            p.add(make_targets(&text).into_iter().map(|t| Script {
                command: format!("make {t}"),
                name: t,
                source: file.into(),
            }));
            break;
        }
    }
    for file in ["justfile", "Justfile", ".justfile"] {
        if let Some(text) = read(file) {
            set_kind(&mut p, ProjectKind::Make);
            p.add(just_recipes(&text).into_iter().map(|t| Script {
                command: format!("just {t}"),
                name: t,
                source: file.into(),
            }));
            break;
        }
    }
    Ok(p)
}

fn script(name: &str, command: impl Into<String>, source: &str) -> Script {
    Script {
        name: name.into(),
        command: command.into(),
        source: source.into(),
    }
}

fn node_package_manager(exists: &dyn Fn(&str) -> bool) -> &'static str {
    if exists("pnpm-lock.yaml") {
        "pnpm"
    } else if exists("yarn.lock") {
        "yarn"
    } else if exists("bun.lockb") || exists("bun.lock") {
        "bun"
    } else {
        "npm"
    }
}

/// The package's name and its `scripts`, run through the package manager.
fn package_json(text: &str, pm: &str) -> (Option<String>, Vec<Script>) {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        log::warn!("package.json is not valid JSON; no scripts read from it");
        return (None, vec![]);
    };
    let name = json
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let scripts = json
        .get("scripts")
        .and_then(|s| s.as_object())
        .map(|obj| {
            obj.iter()
                .filter(|(_, v)| v.is_string())
                .map(|(k, _)| script(k, format!("{pm} run {k}"), "package.json"))
                .collect()
        })
        .unwrap_or_default();
    (name, scripts)
}

fn cargo_scripts() -> Vec<Script> {
    [
        "build", "test", "run", "check", "clippy", "fmt", "bench", "doc",
    ]
    .iter()
    .map(|n| script(n, format!("cargo {n}"), "Cargo.toml"))
    .collect()
}

fn go_scripts() -> Vec<Script> {
    vec![
        script("build", "go build ./...", "go.mod"),
        script("test", "go test ./...", "go.mod"),
        script("run", "go run .", "go.mod"),
        script("vet", "go vet ./...", "go.mod"),
        script("fmt-check", "gofmt -l .", "go.mod"),
    ]
}

fn python_package_manager(exists: &dyn Fn(&str) -> bool, pyproject: Option<&str>) -> &'static str {
    if exists("uv.lock") {
        "uv"
    } else if exists("poetry.lock") || pyproject.is_some_and(|t| t.contains("[tool.poetry]")) {
        "poetry"
    } else {
        "pip"
    }
}

/// `[project.scripts]` and `[tool.poetry.scripts]` entry points.
fn pyproject_scripts(text: &str) -> Vec<Script> {
    let mut out = vec![];
    let mut in_scripts = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_scripts = matches!(line, "[project.scripts]" | "[tool.poetry.scripts]");
            continue;
        }
        if !in_scripts {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            if !key.is_empty() && !key.starts_with('#') {
                out.push(script(key, key, "pyproject.toml"));
            }
        }
    }
    out
}

fn python_defaults(pm: &str, has_requirements: bool) -> Vec<Script> {
    let prefix = match pm {
        "uv" => "uv run ",
        "poetry" => "poetry run ",
        _ => "",
    };
    let mut v = vec![
        script("test", format!("{prefix}pytest"), "python"),
        script("lint", format!("{prefix}ruff check ."), "python"),
        script("format", format!("{prefix}ruff format ."), "python"),
        script("typecheck", format!("{prefix}mypy ."), "python"),
    ];
    if has_requirements {
        v.push(script(
            "install",
            "pip install -r requirements.txt",
            "requirements.txt",
        ));
    }
    v
}

/// A `key = "value"` inside `[section]` of a TOML file (good enough for names).
fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if let Some((k, v)) = line.split_once('=')
            && inside
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').trim_matches('\'').to_string());
        }
    }
    None
}

/// Makefile targets: `name:` at the start of a line (not `:=`, not special or pattern targets).
fn make_targets(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for line in text.lines() {
        if line.starts_with(['\t', ' ', '#', '.']) {
            continue;
        }
        let Some((head, rest)) = line.split_once(':') else {
            continue;
        };
        if rest.starts_with('=') || head.contains(['=', '%', '$', '(']) {
            continue;
        }
        for target in head.split_whitespace() {
            if target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
                && seen.insert(target.to_string())
            {
                out.push(target.to_string());
            }
        }
    }
    out
}

/// justfile recipes: `name args...:` at the start of a line; skips settings, aliases, variables.
fn just_recipes(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        if line.starts_with([' ', '\t', '#', '[']) || line.trim().is_empty() {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(first, "set" | "alias" | "export" | "import" | "mod") || line.contains(":=") {
            continue;
        }
        let Some((head, _)) = line.split_once(':') else {
            continue;
        };
        let name = head
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches('@');
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let p = detect(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn node_with_real_scripts_and_lockfile() {
        let (_d, p) = project(&[
            (
                "package.json",
                r#"{"name":"web","scripts":{"dev":"vite","test":"vitest","odd":3}}"#,
            ),
            ("pnpm-lock.yaml", ""),
        ]);
        assert_eq!(p.kind, ProjectKind::Node);
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.package_manager.as_deref(), Some("pnpm"));
        assert_eq!(p.script_names(), ["dev", "test"]);
        assert_eq!(p.script("dev").unwrap().command, "pnpm run dev");
    }

    #[test]
    fn rust_go_python() {
        let (_d, p) = project(&[("Cargo.toml", "[package]\nname = \"agnt\"\n")]);
        assert_eq!(
            (p.kind, p.name.as_deref()),
            (ProjectKind::Rust, Some("agnt"))
        );
        assert_eq!(p.script("test").unwrap().command, "cargo test");

        let (_d, p) = project(&[("go.mod", "module example.com/x\n\ngo 1.22\n")]);
        assert_eq!(
            (p.kind, p.name.as_deref()),
            (ProjectKind::Go, Some("example.com/x"))
        );
        assert_eq!(p.script("test").unwrap().command, "go test ./...");

        let (_d, p) = project(&[
            (
                "pyproject.toml",
                "[project]\nname = \"tool\"\n[project.scripts]\nserve = \"tool.cli:main\"\n[tool.ruff]\nx=1\n",
            ),
            ("uv.lock", ""),
        ]);
        assert_eq!(
            (p.kind, p.package_manager.as_deref()),
            (ProjectKind::Python, Some("uv"))
        );
        assert_eq!(p.script("serve").unwrap().command, "serve");
        assert_eq!(p.script("test").unwrap().command, "uv run pytest");
        assert!(p.script("x").is_none());
    }

    #[test]
    fn make_and_just() {
        let (_d, p) = project(&[
            (
                "Makefile",
                ".PHONY: all\nall: build\nbuild lint: deps\n\tcc x\nVAR := 1\n%.o: %.c\n$(X): y\n",
            ),
            (
                "justfile",
                "set shell := [\"bash\"]\nalias b := build\ndefault:\n  just --list\nserve port=\"8080\":\n  echo\n@quiet:\n  x\n",
            ),
        ]);
        assert_eq!(p.kind, ProjectKind::Make);
        assert_eq!(
            p.script_names(),
            ["all", "build", "lint", "default", "serve", "quiet"]
        );
        assert_eq!(p.script("build").unwrap().command, "make build");
        assert_eq!(p.script("serve").unwrap().command, "just serve");
    }

    #[test]
    fn mixed_project_first_source_wins() {
        let (_d, p) = project(&[
            ("package.json", r#"{"scripts":{"build":"tsc"}}"#),
            ("Makefile", "build:\n\tx\nrelease:\n\ty\n"),
        ]);
        assert_eq!(p.kind, ProjectKind::Node);
        assert_eq!(p.script("build").unwrap().command, "npm run build");
        assert_eq!(p.script("release").unwrap().command, "make release");
    }

    #[test]
    fn unknown_missing_and_bad_input() {
        let (_d, p) = project(&[]);
        assert_eq!(p.kind, ProjectKind::Unknown);
        assert!(p.scripts.is_empty());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "unknown");
        assert_eq!(json["scripts"], serde_json::json!([]));

        assert!(detect(Path::new("/definitely/not/here")).is_err());
        let (d, _) = project(&[("file", "")]);
        assert!(
            detect(&d.path().join("file"))
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );

        let (_d, p) = project(&[("package.json", "{not json")]);
        assert_eq!(p.kind, ProjectKind::Node);
        assert!(p.scripts.is_empty());
        assert!(
            make_targets("\u{0}:\n:\n::=\n")
                .iter()
                .all(|t| !t.is_empty())
        );
        let _ = just_recipes(":\n@:\n");
    }
}
