//! `proc`: list, inspect, read, stop and restart the project's supervised processes, and free a
//! port. Output reads take cursors (`since`) and byte budgets (`max_bytes`).

use std::{path::Path, sync::Arc, time::UNIX_EPOCH};

use serde_json::{Value, json};

use super::{
    ANSWER_BUDGET, Annotations, Call, Host, Tool, ToolError, fit_array, fmt_duration, input, object,
};
use crate::supervisor::{CommandLine, ManagedProcess, OutputRequest, ProcessManager, Stream};

/// Default output budget in bytes (the newest output; the whole answer stays under 8 KB).
pub const DEFAULT_MAX_BYTES: usize = 7 * 1024;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "proc",
    description: "Supervised processes: `list` (global: all projects), `status`, `output` \
(grep → head → tail → byte budget; next_offset as `since`: new output), `stop` \
(force: no grace), `restart`, `cleanup_port` (kill what listens on `port`). Example: \
{\"action\": \"output\", \"process_id\": \"dev\", \"grep\": \"error\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Supervised processes",
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": ["list", "status", "output", "stop", "restart", "cleanup_port", "resolve_conflict"], "description": "What to do"},
            "process_id": {"type": "string", "description": "Process id"},
            "stream": {"type": "string", "enum": ["stdout", "stderr", "combined"], "description": "output: stream (default combined)"},
            "tail": {"type": "integer", "minimum": 0, "description": "output: last N lines"},
            "head": {"type": "integer", "minimum": 0, "description": "output: first N lines"},
            "grep": {"type": "string", "description": "output: only lines matching this regex"},
            "grep_v": {"type": "boolean", "description": "output: invert grep"},
            "since": {"type": "integer", "minimum": 0, "description": "output: after this offset (a next_offset)"},
            "max_bytes": {"type": "integer", "minimum": 0, "description": "output: byte budget (default 7168)"},
            "force": {"type": "boolean", "description": "stop: SIGKILL at once"},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "cleanup_port: the port"},
            "global": {"type": "boolean", "description": "list: all projects"},
            "path": {"type": "string", "description": "Project directory"},
        }),
        &["action"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "process_id": {"type": "string"},
        "state": {"type": "string"},
        "output": {"type": "string"},
        "processes": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "total_in_daemon": {"type": "integer", "description": "list: processes of every project"},
        "other_projects_processes": {"type": "integer", "description": "list: processes of other projects"},
        "success": {"type": "boolean"},
    }))
}

/// A command line as one display string.
pub fn command_string(c: &CommandLine) -> String {
    match c {
        CommandLine::Argv(v) => v.join(" "),
        CommandLine::Shell(s) => s.clone(),
    }
}

/// The JSON view of a process.
pub fn process_json(p: &ManagedProcess) -> Value {
    let secs = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    let escaped = p.escaped_pids();
    let mut v = json!({
        "id": p.id(),
        "process_id": p.id(),
        "pid": p.pid(),
        "command": command_string(&p.spec().command),
        "state": p.state().as_str(),
        "summary": p.summary(),
        "exit_code": p.exit_code(),
        "exit_signal": p.exit_signal(),
        "runtime": fmt_duration(p.runtime()),
        "runtime_ms": p.runtime().as_millis() as u64,
        "started_at": secs(p.started_at()),
        "ended_at": secs(p.ended_at()),
        "project_path": p.project(),
    });
    let restart = &p.spec().restart;
    if restart.enabled {
        v["auto_restart"] = json!(true);
        v["restarts"] = json!(restart.restarts);
        v["last_exit"] = json!(restart.last_exit);
    }
    port_clash_json(p, &mut v);
    if let Some(h) = p.health() {
        v["healthy"] = json!(h.healthy);
        v["health_line"] = json!(h.line);
    }
    if !escaped.is_empty() {
        v["escaped_pids"] = json!(escaped);
        v["note"] = json!(format!(
            "pid(s) {escaped:?} left its process group and kept its output pipe after it ended; \
output is no longer read from them; `proc stop` kills them"
        ));
    }
    v
}

/// `port_conflict` (what the port watch found in this run) and `restarted_for_port_conflict`
/// (this run is the restart after one).
fn port_clash_json(p: &ManagedProcess, v: &mut Value) {
    if let Some(c) = p.port_clash() {
        v["port_conflict"] = json!(*c);
    }
    if p.port_watch_active() {
        v["port_watch_active"] = json!(true);
    }
    if let Some(c) = &p.spec().port_clash_restart {
        v["restarted_for_port_conflict"] = json!(**c);
    }
}

/// The `output` answer; a cut one says what was left out and how to read it.
fn output_answer(
    p: &ManagedProcess,
    read: &crate::supervisor::OutputRead,
    since: Option<u64>,
) -> Value {
    let mut v = json!({
        "process_id": p.id(),
        "pid": p.pid(),
        "state": p.state().as_str(),
        "output": read.text,
        "lines": read.lines,
        "next_offset": read.next_offset,
        "lost_bytes": read.lost_bytes,
        "overflowed": read.overflowed,
        "truncated": read.truncated,
    });
    port_clash_json(p, &mut v);
    if read.truncated {
        // What the ring still holds from the requested start, and where the shown part starts.
        let from = since.unwrap_or(0) + read.lost_bytes;
        let shown_from = read
            .next_offset
            .saturating_sub(read.text.len() as u64)
            .max(from);
        v["note"] = json!(format!(
            "showing the newest {} bytes; {} older bytes (offsets {from}-{shown_from}) were left out: \
read them from the start with {{\"since\": {from}, \"max_bytes\": 65536}} (then since = next_offset), \
or narrow with grep/head/tail; read only new output later with since = {}",
            read.text.len(),
            shown_from - from,
            read.next_offset
        ));
    }
    v
}

/// Finds a process of the project; the error lists the known ids.
pub fn lookup(
    pm: &ProcessManager,
    project: &Path,
    id: &str,
) -> Result<Arc<ManagedProcess>, ToolError> {
    if let Some(p) = pm.get(project, id) {
        return Ok(p);
    }
    let known: Vec<String> = pm
        .list(Some(project))
        .iter()
        .map(|p| p.id().to_string())
        .collect();
    let elsewhere: Vec<String> = pm
        .list(None)
        .iter()
        .filter(|p| p.id() == id)
        .map(|p| p.project().display().to_string())
        .collect();
    let mut msg = format!(
        "process {id:?} not found in project {}; known ids: {}",
        project.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    );
    if !elsewhere.is_empty() {
        msg.push_str(&format!(
            " (an id {id:?} exists in {}: pass it as \"path\")",
            elsewhere.join(", ")
        ));
    }
    Err(ToolError::new(msg))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let pm = host.pm()?;
    let project = c.project();
    let action = c.action("");
    let need_id = || {
        c.need_str(
            "process_id",
            &format!("the process to {action} (see proc list)"),
        )
    };
    match action {
        "list" => {
            let global = c.bool("global");
            let list = pm.list(if global { None } else { Some(&project) });
            let procs: Vec<Value> = list.iter().map(|p| process_json(p)).collect();
            let total = pm.list(None).len();
            let listed = procs.len();
            let mut v = json!({
                "count": listed,
                "processes": procs,
                "project_path": project,
                "global": global,
                "total_in_daemon": total,
                "other_projects_processes": total.saturating_sub(listed),
            });
            let cut = fit_array(&mut v, "processes", true);
            if cut > 0 {
                v["count"] = (listed - cut).into();
                v["truncated"] = true.into();
                v["left_out"] = cut.into();
                v["note"] = format!(
                    "the {cut} oldest of {listed} processes were left out to keep this answer under 8 KB; \
read any one with {{\"action\": \"status\", \"process_id\": ...}}"
                )
                .into();
            }
            Ok(v)
        }
        "status" => {
            let p = lookup(pm, &project, need_id()?)?;
            Ok(process_json(&p))
        }
        "output" => {
            let p = lookup(pm, &project, need_id()?)?;
            let stream = match c.str("stream").unwrap_or("combined") {
                "stdout" => Stream::Stdout,
                "stderr" => Stream::Stderr,
                _ => Stream::Combined,
            };
            let since = c.u64("since");
            let mut req = OutputRequest {
                stream,
                since,
                grep: c.str("grep").map(String::from),
                grep_v: c.bool("grep_v"),
                head: c.u64("head").map(|n| n as usize),
                tail: c.u64("tail").map(|n| n as usize),
                max_bytes: Some(
                    c.u64("max_bytes")
                        .map(|n| n as usize)
                        .unwrap_or(DEFAULT_MAX_BYTES),
                ),
            };
            let mut out = output_answer(&p, &p.output(&req)?, since);
            // Escaping (ANSI colours, quotes) can make the JSON longer than the bytes read: keep
            // the default answer within the budget.
            while c.u64("max_bytes").is_none() {
                let size = serde_json::to_string(&out).map_or(0, |s| s.len());
                let budget = req.max_bytes.unwrap_or(0);
                if size <= ANSWER_BUDGET || budget <= 512 {
                    break;
                }
                req.max_bytes = Some(budget * (ANSWER_BUDGET - 200) / size);
                out = output_answer(&p, &p.output(&req)?, since);
            }
            Ok(out)
        }
        "stop" => {
            let id = need_id()?;
            lookup(pm, &project, id)?;
            let was_live = pm
                .get(&project, id)
                .is_some_and(|p| !p.state().is_terminal());
            // Stopping a process whose port conflict waits for a decision declines it.
            let asking = pm.get(&project, id).and_then(|p| p.port_clash());
            if asking.is_some_and(|c| c.outcome == crate::supervisor::clash::Outcome::Asking) {
                pm.resolve_port_clash(&project, id, false, "declined")?;
            }
            let p = pm.stop(&project, id, c.bool("force"))?;
            Ok(json!({
                "process_id": p.id(),
                "state": p.state().as_str(),
                "summary": p.summary(),
                "success": true,
                "message": if was_live { format!("stopped {id}") } else { format!("{id} had already exited ({})", p.summary()) },
            }))
        }
        "restart" => {
            let id = need_id()?;
            lookup(pm, &project, id)?;
            let p = pm.restart(&project, id)?;
            Ok(json!({
                "process_id": p.id(),
                "pid": p.pid(),
                "state": p.state().as_str(),
                "success": true,
                "message": format!("restarted {id}"),
            }))
        }
        "cleanup_port" => {
            let Some(port) = c.u64("port").filter(|p| (1..=65535).contains(p)) else {
                return Err(ToolError::new(
                    "missing required parameter \"port\" (1-65535) for cleanup_port",
                ));
            };
            let pids = pm.cleanup_port(port as u16)?;
            let message = if pids.is_empty() {
                format!("No processes found listening on port {port}")
            } else {
                format!("Killed {} process(es) on port {port}", pids.len())
            };
            Ok(json!({"success": true, "killed_pids": pids, "message": message}))
        }
        "resolve_conflict" => {
            let id = need_id()?;
            lookup(pm, &project, id)?;
            let (killed, p) = pm.resolve_port_clash(&project, id, true, "")?;
            Ok(json!({
                "process_id": p.id(),
                "pid": p.pid(),
                "state": p.state().as_str(),
                "summary": p.summary(),
                "success": true,
                "killed_pids": killed,
                "message": format!("killed {killed:?} and restarted {id}"),
            }))
        }
        "" => Err(ToolError::new(
            "missing required parameter \"action\"; valid actions: list, status, output, stop, restart, cleanup_port, resolve_conflict",
        )),
        other => Err(ToolError::new(format!(
            "unknown action {other:?}; valid actions: list, status, output, stop, restart, cleanup_port, resolve_conflict"
        ))),
    }
}
