//! `proxy`: start, stop, restart (same port), inspect and list instrumenting reverse proxies, and
//! run JavaScript in the page a proxy serves (`exec`). Running proxies are persisted so a new
//! daemon re-creates them.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};
use crate::proxy::ProxyConfig;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "proxy",
    description: "Reverse proxies in front of dev servers: requests are logged and HTML pages \
get a script reporting JS errors, performance and interactions (see `proxylog`, \
`currentpage`). Actions: `start` (id, target_url), `stop`, `restart` (same port), `status`, \
`list` (global), `exec` (JS `code` in the newest page; help: true lists `window.__devtool`). \
Open the returned `url`. Example: {\"action\": \
\"start\", \"id\": \"app\", \"target_url\": \"http://localhost:3000\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Instrumenting proxies",
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    },
};

const ACTIONS: &str = "start, stop, restart, status, list, exec";

fn input_schema() -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": ["start", "stop", "restart", "status", "list", "exec"], "description": "What to do"},
            "id": {"type": "string", "description": "Proxy id (or a unique part of it)"},
            "target_url": {"type": "string", "description": "start: the dev server, http(s)://host:port"},
            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "start: listen port (default: stable per target; 0 = any)"},
            "max_log_size": {"type": "integer", "minimum": 1, "maximum": crate::proxy::MAX_LOG_SIZE, "description": "start: traffic log entries (default 1000)"},
            "bind_address": {"type": "string", "description": "start: listen address (default 127.0.0.1)"},
            "allow_lan": {"type": "boolean", "description": "start: allow a non-loopback bind_address"},
            "allowed_hosts": {"type": "array", "items": {"type": "string"}, "description": "start: more Host names (\".test\" = subdomains)"},
            "redact": {"type": "boolean", "description": "start: hide secrets before logging (default true)"},
            "redact_names": {"type": "array", "items": {"type": "string"}, "description": "start: more secret names"},
            "verify_tls": {"type": "boolean", "description": "start: check the https certificate (default: not on loopback)"},
            "connect_timeout": super::timeout_schema("start: connect deadline, s (default 10)"),
            "response_timeout": super::timeout_schema("start: response-head deadline, s (default 60)"),
            "body_timeout": super::timeout_schema("start: body-progress window, s (default 30)"),
            "body_min_bytes": {"type": "integer", "minimum": 0, "description": "start: bytes per body window (default 1024)"},
            "stream_idle_timeout": super::timeout_schema("start: WebSocket/SSE idle limit, s (default none)"),
            "code": {"type": "string", "description": "exec: JavaScript; returns its (awaited) value"},
            "help": {"type": "boolean", "description": "exec: list the __devtool API (no id needed)"},
            "describe": {"type": "string", "description": "exec: one __devtool function's doc, e.g. \"inspect\""},
            "max_result_bytes": {"type": "integer", "minimum": 256, "description": "exec: cap; more is saved to a file (default 16384)"},
            "timeout": super::timeout_schema("exec: seconds to wait for the page (default 30)"),
            "global": {"type": "boolean", "description": "list: all projects"},
            "path": {"type": "string", "description": "Project directory"},
        }),
        &["action"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "id": {"type": "string"},
        "target_url": {"type": "string"},
        "listen_addr": {"type": "string"},
        "url": {"type": "string"},
        "success": {"type": "boolean"},
        "message": {"type": "string"},
        "warning": {"type": "string", "description": "start: what a LAN bind exposes"},
        "proxies": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "total_in_daemon": {"type": "integer", "description": "list: proxies of every project"},
        "other_projects_proxies": {"type": "integer", "description": "list: proxies of other projects, not listed (0 with global)"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let proxies = host.proxies();
    let action = c.action("");
    let need_id = || c.need_str("id", &format!("the proxy to {action} (see proxy list)"));
    match action {
        "start" => {
            let id = need_id()?;
            let target = c.need_str(
                "target_url",
                "the dev server URL, e.g. \"http://localhost:3000\"",
            )?;
            let mut config = ProxyConfig::new(id, target, c.project());
            if let Some(port) = c.u64("port") {
                config.port =
                    Some(u16::try_from(port).map_err(|_| ToolError::new("port must be 0-65535"))?);
            }
            if let Some(n) = c.u64("max_log_size") {
                config.max_log_size = n as usize;
            }
            if let Some(b) = c.str("bind_address") {
                config.bind_address = b.to_string();
            }
            config.allow_lan = c.bool("allow_lan");
            if let Some(hosts) = c.args.get("allowed_hosts") {
                let hosts = hosts.as_array().ok_or_else(|| {
                    ToolError::new("allowed_hosts must be an array of host names")
                })?;
                for h in hosts {
                    let h = h.as_str().ok_or_else(|| {
                        ToolError::new("allowed_hosts must be an array of host names")
                    })?;
                    config.allowed_hosts.push(h.to_string());
                }
            }
            if let Some(r) = c.args.get("redact").and_then(Value::as_bool) {
                config.redact = r;
            }
            config.redact_names = c.strs("redact_names");
            config.verify_tls = c.opt_bool("verify_tls");
            let l = &mut config.limits;
            for (key, slot) in [
                ("connect_timeout", &mut l.connect_timeout),
                ("response_timeout", &mut l.response_timeout),
                ("body_timeout", &mut l.body_window),
            ] {
                if let Some(d) = seconds(c, key)? {
                    *slot = d;
                }
            }
            if let Some(d) = seconds(c, "stream_idle_timeout")? {
                l.stream_idle_timeout = Some(d);
            }
            if let Some(n) = c.u64("body_min_bytes") {
                l.body_min_bytes = n;
            }
            let p = proxies.start(config)?;
            host.save_proxies();
            let mut message = format!(
                "Proxy started. Open {} instead of {}",
                p.url(),
                p.config().target_url
            );
            if let Some(w) = p.warning() {
                message = format!("{message}\n{w}");
            }
            let mut v = json!({
                "id": p.id(),
                "target_url": p.config().target_url,
                "listen_addr": p.listen_addr().to_string(),
                "bind_address": p.config().bind_address,
                "url": p.url(),
                "redact": p.redacts(),
                "message": message,
            });
            if let Some(w) = p.warning() {
                v["warning"] = w.into();
            }
            if let Some(tls) = p.status().tls {
                v["tls"] = json!(tls);
            }
            Ok(v)
        }
        "stop" => {
            let p = proxies.get(need_id()?)?;
            proxies.stop(p.id())?;
            host.save_proxies();
            // Its browsers would only show error pages now.
            let closed = host.browsers().stop_for_proxy(p.id());
            let mut message = format!("proxy {} stopped", p.id());
            if !closed.is_empty() {
                message = format!("{message}; browser {} closed", closed.join(", "));
            }
            Ok(json!({"id": p.id(), "success": true, "message": message}))
        }
        "restart" => {
            let p = proxies.get(need_id()?)?;
            let p = proxies.restart(p.id())?;
            host.save_proxies();
            Ok(json!({
                "id": p.id(), "success": true, "url": p.url(), "listen_addr": p.listen_addr().to_string(),
                "target_url": p.config().target_url, "message": format!("proxy {} restarted on {}", p.id(), p.url()),
            }))
        }
        "status" => {
            let p = proxies.get(need_id()?)?;
            let mut v = json!(p.status());
            if v.is_object() {
                v["url"] = p.url().into();
            }
            Ok(v)
        }
        "list" => {
            let global = c.bool("global");
            let project = c.project();
            let list: Vec<Value> = proxies
                .list(if global { None } else { Some(&project) })
                .iter()
                .map(|p| {
                    let mut v = json!(p.status());
                    if v.is_object() {
                        v["url"] = p.url().into();
                        v["path"] = json!(p.config().project);
                    }
                    v
                })
                .collect();
            let total = proxies.list(None).len();
            Ok(json!({
                "count": list.len(), "proxies": list, "project_path": project, "global": global,
                "total_in_daemon": total, "other_projects_proxies": total.saturating_sub(list.len()),
            }))
        }
        "exec" if c.bool("help") => Ok(crate::proxy::script::help()),
        "exec" if c.str("describe").is_some() => {
            crate::proxy::script::describe(c.str("describe").unwrap_or("")).map_err(ToolError::new)
        }
        "exec" => {
            let code = c.need_str(
                "code",
                "the JavaScript to run in the page, e.g. \"document.title\"",
            )?;
            let p = proxies.get(need_id()?)?;
            let timeout = super::timeout_arg(c, Duration::from_secs(30), Duration::from_secs(300))?;
            let out = p.exec(code, timeout)?;
            let budget = c
                .u64("max_result_bytes")
                .map_or(crate::proxy::EXEC_RESULT_BUDGET, |n| n.max(256) as usize);
            let dir = host.state().exec_results();
            let mut v = out.budgeted(budget, &dir);
            v["message"] = if out.success {
                format!("JavaScript executed in {} ms", out.duration_ms).into()
            } else {
                format!(
                    "JavaScript failed: {}",
                    out.error.as_deref().unwrap_or("unknown error")
                )
                .into()
            };
            Ok(v)
        }
        "" => Err(ToolError::new(format!(
            "missing required parameter \"action\"; valid actions: {ACTIONS}"
        ))),
        other => Err(ToolError::new(format!(
            "unknown action {other:?}; valid actions: {ACTIONS}"
        ))),
    }
}

/// A positive duration argument: seconds (a number) or a string such as `"90s"`.
fn seconds(c: &Call<'_>, key: &str) -> Result<Option<Duration>, ToolError> {
    let d = match c.args.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().and_then(|f| Duration::try_from_secs_f64(f).ok()),
        Some(Value::String(s)) => crate::util::duration::parse(s),
        Some(_) => None,
    };
    match d {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(ToolError::new(format!(
            "{key} must be a positive number of seconds or a duration like \"30s\""
        ))),
    }
}
