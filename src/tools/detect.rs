//! `detect`: the project's type, package manager and real script names (from `crate::detect`),
//! plus the scripts and proxies of its `.agnt.kdl` when there is one.

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};

/// The tool.
pub static TOOL: Tool = Tool {
    name: "detect",
    description: "A project's type, package manager and scripts with their commands \
(package.json, cargo, Makefile/justfile, pyproject, .agnt.kdl) and .agnt.kdl proxies: the \
`script_name`s `run` accepts. Example: {\"path\": \".\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Detect project scripts",
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    },
};

fn input_schema() -> Value {
    input(
        json!({"path": {"type": "string", "description": "Directory (relative: to the caller's project; default: the project)"}}),
        &[],
    )
}

fn output_schema() -> Value {
    object(json!({
        "type": {"type": "string"},
        "path": {"type": "string"},
        "name": {"type": "string"},
        "package_manager": {"type": "string"},
        "scripts": {"type": "array", "items": {"type": "object"}},
        "script_names": {"type": "array", "items": {"type": "string"}},
        "config": super::nullable("object"),
    }))
}

fn call(_host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let dir = c.project();
    let project = crate::detect::detect(&dir)?;
    let mut v = serde_json::to_value(&project).map_err(|e| ToolError::new(e.to_string()))?;
    let mut names: Vec<String> = project.scripts.iter().map(|s| s.name.clone()).collect();
    v["config"] = Value::Null;
    // A broken config is the answer's error, not an empty list (see `config::discover`).
    if let Some(cfg) = crate::config::discover(&dir)? {
        for s in &cfg.scripts {
            if !names.contains(&s.name) {
                names.insert(0, s.name.clone());
            }
        }
        v["config"] = json!({
            "path": cfg.path,
            "scripts": cfg.scripts.iter().map(|s| json!({
                "name": s.name, "command": super::proc::command_string(&s.command), "autostart": s.autostart,
            })).collect::<Vec<_>>(),
            "proxies": cfg.proxies.iter().map(|p| json!({
                "name": p.name, "target": p.target, "script": p.script, "port": p.port, "autostart": p.autostart,
            })).collect::<Vec<_>>(),
            "warnings": cfg.warnings,
        });
    }
    v["script_names"] = json!(names);
    Ok(v)
}
