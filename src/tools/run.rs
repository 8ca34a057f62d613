//! `run`: start a script (resolved through `.agnt.kdl`, then `detect`) or a raw command, in the
//! background or in the foreground (waits, cancellable, with a timeout), scoped to the project.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    Annotations, Call, Host, Tool, ToolError, fmt_duration, input, object, proc, timeout_arg,
    timeout_schema,
};
use crate::supervisor::{CommandLine, OutputRequest, ProcessSpec, StartOutcome, Stream};

/// Default byte budget per stream for `foreground-raw`.
const RAW_BUDGET: usize = 64 * 1024;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "run",
    description: "Start a script (`script_name`, see `detect`) or, with `raw: true`, \
`command` + `args`, as a supervised process. mode `background` (default) returns its id (see \
`proc output`); `foreground` waits, returns exit code and runtime; `foreground-raw` also \
output. A live id is reused. Example: {\"script_name\": \"dev\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Run a script or command",
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "script_name": {"type": "string", "description": "Script (see detect); needed unless raw"},
            "raw": {"type": "boolean", "description": "Run command + args verbatim"},
            "command": {"type": "string", "description": "raw: the program"},
            "args": {"type": "array", "items": {"type": "string"}, "description": "raw: argv; script: appended"},
            "id": {"type": "string", "description": "Process id (default: script or program name)"},
            "path": {"type": "string", "description": "Project directory: cwd and id scope"},
            "mode": {"type": "string", "enum": ["background", "foreground", "foreground-raw"], "description": "Default background"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra environment variables"},
            "config": {"type": "string", "description": "The .agnt.kdl (default: found upward)"},
            "base_env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Start environment (default: the server's)"},
            "timeout": timeout_schema("foreground: seconds, then stopped (default 600)"),
            "max_bytes": {"type": "integer", "minimum": 0, "description": "foreground-raw: bytes kept per stream (default 65536)"},
        }),
        &[],
    )
}

fn output_schema() -> Value {
    object(json!({
        "process_id": {"type": "string"},
        "pid": super::nullable("integer"),
        "command": {"type": "string"},
        "state": {"type": "string"},
        "exit_code": super::nullable("integer"),
        "runtime": {"type": "string"},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "reused": {"type": "boolean"},
    }))
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn with_args(cmd: CommandLine, args: &[String]) -> CommandLine {
    if args.is_empty() {
        return cmd;
    }
    match cmd {
        CommandLine::Argv(mut v) => {
            v.extend(args.iter().cloned());
            CommandLine::Argv(v)
        }
        CommandLine::Shell(line) => {
            let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
            CommandLine::Shell(format!("{line} {}", quoted.join(" ")))
        }
    }
}

/// Resolves the call into a spec (script through config then detect, or raw).
fn resolve(c: &Call<'_>) -> Result<ProcessSpec, ToolError> {
    let project = c.project();
    if !project.is_dir() {
        return Err(ToolError::new(format!(
            "project directory {} does not exist; pass an existing \"path\"",
            project.display()
        )));
    }
    let args = c.strs("args");
    let raw = c.bool("raw") || (c.str("script_name").is_none() && c.str("command").is_some());
    let mut spec = if raw {
        let program = c.need_str(
            "command",
            "the program to run when raw is true (e.g. \"npm\")",
        )?;
        let mut argv = vec![program.to_string()];
        argv.extend(args);
        let id = c.str("id").map(String::from).unwrap_or_else(|| {
            std::path::Path::new(program)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| program.into())
        });
        ProcessSpec::new(id, project.clone(), CommandLine::Argv(argv))
    } else {
        let Some(name) = c.str("script_name") else {
            crate::config::discover(&project)?;
            let available = available_scripts(&project);
            return Err(ToolError::new(format!(
                "missing required parameter \"script_name\" (or set raw: true with \"command\"); available scripts: {}",
                if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                }
            )));
        };
        let id = c.str("id").unwrap_or(name).to_string();
        let cfg = match c.str("config") {
            Some(file) => Some(crate::config::load(std::path::Path::new(file))?),
            None => crate::config::discover(&project)?,
        };
        if let Some((cfg, sc)) = cfg.as_ref().and_then(|cfg| Some((cfg, cfg.script(name)?))) {
            let mut spec = sc.to_spec(&id, &project);
            spec.port_conflict = cfg.project.port_conflict;
            spec.command = with_args(spec.command, &args);
            spec
        } else {
            let detected = crate::detect::detect(&project)?;
            match detected.script(name) {
                Some(s) => ProcessSpec::new(
                    id,
                    project.clone(),
                    with_args(CommandLine::Shell(s.command.clone()), &args),
                ),
                None => {
                    let available = available_scripts(&project);
                    return Err(ToolError::new(format!(
                        "unknown script {name:?}. Available: {}; or run a command with {{\"raw\": true, \"command\": ...}}",
                        if available.is_empty() {
                            "none".into()
                        } else {
                            available.join(", ")
                        }
                    )));
                }
            }
        }
    };
    if let Some(mut base) = env_arg(c, "base_env")? {
        base.append(&mut spec.env);
        spec.env = base;
        spec.clear_env = true;
    }
    if let Some(extra) = env_arg(c, "env")? {
        spec.env.extend(extra);
    }
    Ok(spec)
}

/// An object-of-strings argument (`env`, `base_env`).
fn env_arg(c: &Call<'_>, key: &str) -> Result<Option<BTreeMap<String, String>>, ToolError> {
    let env = match c.args.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(env)) => env,
        Some(_) => {
            return Err(ToolError::new(format!(
                "{key} must be an object of strings, e.g. {{\"PORT\": \"3000\"}}"
            )));
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in env {
        let Some(v) = v.as_str() else {
            return Err(ToolError::new(format!(
                "{key} value for {k:?} must be a string"
            )));
        };
        out.insert(k.clone(), v.to_string());
    }
    Ok(Some(out))
}

/// Script names from .agnt.kdl and detect, for error messages.
pub fn available_scripts(project: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(cfg) = crate::config::find(project).and_then(|p| crate::config::load(&p).ok()) {
        names.extend(cfg.scripts.iter().map(|s| s.name.clone()));
    }
    if let Ok(p) = crate::detect::detect(project) {
        for s in p.scripts {
            if !names.contains(&s.name) {
                names.push(s.name);
            }
        }
    }
    names
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let mode = c.str("mode").unwrap_or("background");
    let timeout = timeout_arg(c, Duration::from_secs(600), Duration::from_secs(24 * 3600))?;
    let spec = resolve(c)?;
    let pm = host.pm()?;
    if mode != "background"
        && let Some(live) = pm.get(&spec.project, &spec.id)
        && !live.state().is_terminal()
    {
        // Waiting on (and, on timeout or cancel, stopping) a process someone else started
        // would be a surprise: a foreground run always gets a process of its own.
        return Err(ToolError::new(format!(
            "process {:?} is already running; a foreground run needs its own: pass another id, or stop it first (proc stop)",
            spec.id
        )));
    }
    let (p, outcome) = pm.start_or_reuse(spec)?;
    let mut v = json!({
        "process_id": p.id(),
        "pid": p.pid(),
        "command": proc::command_string(&p.spec().command),
        "project_path": p.project(),
        "state": p.state().as_str(),
    });
    match outcome {
        StartOutcome::Reused => v["reused"] = true.into(),
        StartOutcome::Replaced => v["cleaned_previous"] = true.into(),
        StartOutcome::Started => {}
    }
    if mode == "background" {
        return Ok(v);
    }
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let state = loop {
        let s = p.wait(Some(Duration::from_millis(200)));
        if s.is_terminal() {
            break s;
        }
        if c.cancelled() {
            let _ = pm.stop(p.project(), p.id(), false);
            return Err(ToolError::new(format!(
                "run cancelled: process {:?} was stopped",
                p.id()
            )));
        }
        if started.elapsed() >= timeout {
            let _ = pm.stop(p.project(), p.id(), false);
            v["timed_out"] = true.into();
            break p.state();
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            c.progress(
                secs,
                Some(timeout.as_secs_f64()),
                &format!("{} running for {secs:.0}s", p.id()),
            );
        }
    };
    v["state"] = state.as_str().into();
    v["exit_code"] = json!(p.exit_code());
    v["summary"] = p.summary().into();
    v["runtime"] = fmt_duration(p.runtime()).into();
    v["runtime_ms"] = (p.runtime().as_millis() as u64).into();
    if mode == "foreground-raw" {
        let budget = c.u64("max_bytes").map(|n| n as usize).unwrap_or(RAW_BUDGET);
        for (key, stream) in [("stdout", Stream::Stdout), ("stderr", Stream::Stderr)] {
            let read = p.output(&OutputRequest {
                stream,
                max_bytes: Some(budget),
                ..Default::default()
            })?;
            if read.truncated {
                v[format!("{key}_truncated")] = true.into();
            }
            v[key] = read.text.into();
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_appended_and_quoted() {
        let c = with_args(
            CommandLine::Shell("npm run dev".into()),
            &["--port".into(), "a b".into(), "it's".into()],
        );
        assert_eq!(
            c,
            CommandLine::Shell("npm run dev --port 'a b' 'it'\\''s'".into())
        );
        let c = with_args(CommandLine::Argv(vec!["x".into()]), &["y".into()]);
        assert_eq!(c, CommandLine::Argv(vec!["x".into(), "y".into()]));
    }
}
