//! The tool table: each tool's name, agent-facing description, input and output schemas and
//! handler. A call takes the [`Host`], its arguments and a small call context (project,
//! cancellation flag, progress sink, notifier, and the facts of the server it runs in) and
//! returns the structured result or a [`ToolError`] phrased for the agent. Argument checking
//! against the input schema (unknown names, wrong types, bad enum values, missing required ones)
//! lives here too. There is no JSON-RPC in this module: `mcp` wraps results into MCP messages.

use std::{
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Map, Value, json};

use crate::host::Host;

pub mod browser;
pub mod channel_reply;
pub mod currentpage;
pub mod daemon;
pub mod detect;
pub mod incidents;
pub mod proc;
pub mod proxy;
pub mod proxylog;
pub mod run;
pub mod snapshot;
pub mod wait;

/// One tool: its name, its agent-facing description, its schemas and its handler.
#[derive(Debug)]
pub struct Tool {
    /// Tool name (the Go original's).
    pub name: &'static str,
    /// What it does, when to use it, an example.
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub input_schema: fn() -> Value,
    /// JSON Schema of the structured result.
    pub output_schema: fn() -> Value,
    /// The handler.
    pub call: fn(&Host, &Call<'_>) -> ToolResult,
    /// MCP annotations, true for every action of the tool.
    pub annotations: Annotations,
}

/// MCP tool annotations (hints for clients). Each must hold for every action of the tool: a
/// tool with any writing action is not read-only; one with any destructive action is
/// destructive; idempotent only if every action is.
#[derive(Debug, Clone, Copy)]
pub struct Annotations {
    /// Human-readable title.
    pub title: &'static str,
    /// No action changes anything.
    pub read_only: bool,
    /// Some action may destroy or stop something.
    pub destructive: bool,
    /// Repeating any call with the same arguments has no further effect.
    pub idempotent: bool,
    /// Some action reaches beyond agnt's own state (runs commands, talks to pages).
    pub open_world: bool,
}

impl Annotations {
    /// The MCP `annotations` object.
    pub fn json(&self) -> Value {
        json!({
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        })
    }
}

/// What a tool returns: the structured result, or what went wrong phrased for the agent.
pub type ToolResult = Result<Value, ToolError>;

/// Every tool, in the order `tools/list` shows them.
pub static TOOLS: &[&Tool] = &[
    &detect::TOOL,
    &run::TOOL,
    &proc::TOOL,
    &proxy::TOOL,
    &proxylog::TOOL,
    &currentpage::TOOL,
    &wait::TOOL,
    &browser::TOOL,
    &snapshot::TOOL,
    &incidents::TOOL,
    &channel_reply::TOOL,
    &daemon::TOOL,
];

/// A failed call, phrased for the agent (what went wrong and how to fix it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// Any message.
    pub fn new(msg: impl Into<String>) -> ToolError {
        ToolError(msg.into())
    }
}

impl From<crate::Error> for ToolError {
    fn from(e: crate::Error) -> Self {
        ToolError(e.to_string())
    }
}

/// What a tool may know about the server it runs in. The daemon provides the real facts; an
/// in-process server (`agnt mcp --standalone`, `agnt up` without a daemon, tests) uses
/// [`NoDaemon`].
pub trait ServerInfo: Send + Sync {
    /// The socket this server listens on, if it is the daemon.
    fn socket(&self) -> Option<&Path>;
    /// Connected clients.
    fn clients(&self) -> usize;
    /// Asks the server to shut down; `false` when this server cannot (it is not a daemon).
    fn request_shutdown(&self) -> bool;
    /// The HTTP face (URL, token, allowed origins) when one serves.
    fn http(&self) -> Option<Value> {
        None
    }
    /// The connected clients (kind, peer pid, connected for, idle for), if known.
    fn client_list(&self) -> Vec<Value> {
        Vec::new()
    }
    /// The most clients served at once, if limited.
    fn client_limit(&self) -> Option<usize> {
        None
    }
    /// The port of the HTTP face, if one serves.
    fn http_port(&self) -> Option<u16> {
        None
    }
}

/// The [`ServerInfo`] of a server that is not the daemon.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDaemon;

impl ServerInfo for NoDaemon {
    fn socket(&self) -> Option<&Path> {
        None
    }
    fn clients(&self) -> usize {
        1
    }
    fn request_shutdown(&self) -> bool {
        false
    }
}

/// Reports progress: `(done, total, message)`.
pub type ProgressFn<'a> = dyn Fn(f64, Option<f64>, &str) + Sync + 'a;

/// Sends a notification `(method, params)` to the caller's connection.
pub type NotifyFn<'a> = dyn Fn(&str, Value) + Send + Sync + 'a;

/// One call: arguments and the call context (project, cancellation, progress, notifier, server).
pub struct Call<'a> {
    /// The arguments, already checked against the input schema.
    pub args: &'a Map<String, Value>,
    /// The caller's project (absolute when it came from a path).
    pub project: PathBuf,
    /// Set when the client cancelled the call.
    pub cancel: &'a AtomicBool,
    /// Reports progress `(done, total, message)` when the client asked for it.
    pub progress: Option<&'a ProgressFn<'a>>,
    /// Pushes a notification to the caller's connection (features that push use this).
    pub notify: &'a NotifyFn<'a>,
    /// The server this call runs in.
    pub server: &'a dyn ServerInfo,
    /// The caller's connection in the host's push channel, when it has one.
    pub connection: Option<u64>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("args", &self.args)
            .field("project", &self.project)
            .finish()
    }
}

impl Call<'_> {
    /// A non-empty string argument.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.args
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A required string argument; the error names the parameter and what it is for.
    pub fn need_str(&self, k: &str, what: &str) -> Result<&str, ToolError> {
        self.str(k)
            .ok_or_else(|| ToolError::new(format!("missing required parameter {k:?}: {what}")))
    }

    /// An unsigned integer argument.
    pub fn u64(&self, k: &str) -> Option<u64> {
        self.args.get(k).and_then(Value::as_u64)
    }

    /// A boolean argument (absent = false).
    pub fn bool(&self, k: &str) -> bool {
        self.args.get(k).and_then(Value::as_bool).unwrap_or(false)
    }

    /// A boolean argument that may be absent (`None`: the tool's default).
    pub fn opt_bool(&self, k: &str) -> Option<bool> {
        self.args.get(k).and_then(Value::as_bool)
    }

    /// A string-array argument (absent = empty).
    pub fn strs(&self, k: &str) -> Vec<String> {
        match self.args.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The `action` argument or a default.
    pub fn action<'b>(&'b self, default: &'b str) -> &'b str {
        self.str("action").unwrap_or(default)
    }

    /// Whether the client cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The project: the `path` argument (absolute, relative ones against the caller's project),
    /// else the caller's project.
    pub fn project(&self) -> PathBuf {
        match self.str("path") {
            Some(p) => {
                let p = Path::new(p);
                let abs = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    self.project.join(p)
                };
                std::fs::canonicalize(&abs).unwrap_or(abs)
            }
            None => std::fs::canonicalize(&self.project).unwrap_or_else(|_| self.project.clone()),
        }
    }

    /// Reports progress when the client asked for it.
    pub fn progress(&self, done: f64, total: Option<f64>, msg: &str) {
        if let Some(p) = self.progress {
            p(done, total, msg);
        }
    }
}

/// The `tools/list` entries (built once).
pub fn list() -> &'static [Value] {
    static LIST: OnceLock<Vec<Value>> = OnceLock::new();
    LIST.get_or_init(build_list)
}

fn build_list() -> Vec<Value> {
    TOOLS
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "inputSchema": listed_input((t.input_schema)()),
                "outputSchema": terse((t.output_schema)()),
                "annotations": t.annotations.json(),
            })
        })
        .collect()
}

/// An input schema as listed: without `additionalProperties: false`, which every call's
/// argument check enforces anyway, with a message naming the valid parameters (keeps
/// `tools/list` under 20 KB).
fn listed_input(mut schema: Value) -> Value {
    if let Some(m) = schema.as_object_mut() {
        m.remove("additionalProperties");
    }
    schema
}

/// An output schema without property descriptions or `items: {type: object}` (which constrains
/// next to nothing): clients validate with it, agents read the description and the answers
/// themselves (keeps `tools/list` under 20 KB).
fn terse(mut schema: Value) -> Value {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            if let Some(m) = p.as_object_mut() {
                m.remove("description");
                if m.get("items") == Some(&json!({"type": "object"})) {
                    m.remove("items");
                }
            }
        }
    }
    schema
}

/// Tool names.
pub fn names() -> Vec<&'static str> {
    TOOLS.iter().map(|t| t.name).collect()
}

/// Looks a tool up by name.
pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().copied().find(|t| t.name == name)
}

/// The tool's input schema, built once.
pub fn input_schema_of(tool: &Tool) -> &'static Value {
    static SCHEMAS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| TOOLS.iter().map(|t| (t.name, (t.input_schema)())).collect());
    static EMPTY: OnceLock<Value> = OnceLock::new();
    all.iter()
        .find(|(n, _)| *n == tool.name)
        .map(|(_, s)| s)
        .unwrap_or_else(|| EMPTY.get_or_init(|| json!({"type": "object"})))
}

/// Checks the arguments against the tool's schema, then runs it (and counts the call).
pub fn call(host: &Host, tool: &Tool, call: &Call<'_>) -> ToolResult {
    host.count_call();
    check_args(tool.name, input_schema_of(tool), call.args)?;
    (tool.call)(host, call)
}

/// Checks argument names, JSON types, enum values and top-level `required`.
pub fn check_args(tool: &str, schema: &Value, args: &Map<String, Value>) -> Result<(), ToolError> {
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let valid = || {
        props
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (k, v) in args {
        let Some(prop) = props.get(k) else {
            return Err(ToolError::new(format!(
                "{tool}: unknown parameter {k:?}; valid parameters: {}",
                valid()
            )));
        };
        if v.is_null() {
            continue;
        }
        if !type_matches(prop, v) {
            let want = match prop.get("anyOf").and_then(Value::as_array) {
                Some(alts) => alts
                    .iter()
                    .filter_map(|a| a.get("type").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" or "),
                None => prop.get("type").map(|t| t.to_string()).unwrap_or_default(),
            };
            return Err(ToolError::new(format!(
                "{tool}: parameter {k:?} must be of type {want}, got {v}"
            )));
        }
        if let Some(n) = v.as_f64() {
            let min = prop.get("minimum").and_then(Value::as_f64);
            let max = prop.get("maximum").and_then(Value::as_f64);
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                let range = match (min, max) {
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                return Err(ToolError::new(format!(
                    "{tool}: parameter {k:?} must be {range}, got {n}"
                )));
            }
        }
        if let (Some(allowed), Some(s)) = (prop.get("enum").and_then(Value::as_array), v.as_str())
            && !allowed.iter().any(|a| a == s)
        {
            let list: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            return Err(ToolError::new(format!(
                "{tool}: invalid {k} {s:?}; valid values: {}{}",
                list.join(", "),
                if k == "action" {
                    format!(" (e.g. {{\"action\": \"{}\"}})", list[0])
                } else {
                    String::new()
                }
            )));
        }
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if args.get(r).is_none_or(Value::is_null) {
                let what = props
                    .get(r)
                    .and_then(|p| p.get("description"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Err(ToolError::new(format!(
                    "{tool}: missing required parameter {r:?}: {what}"
                )));
            }
        }
    }
    Ok(())
}

fn type_matches(prop: &Value, v: &Value) -> bool {
    let one = |t: &str, v: &Value| match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    };
    if let Some(alts) = prop.get("anyOf").and_then(Value::as_array) {
        return alts.iter().any(|a| type_matches(a, v));
    }
    let ok = match prop.get("type") {
        Some(Value::String(t)) => one(t, v),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(|t| one(t, v)),
        _ => true,
    };
    if !ok {
        return false;
    }
    if let (Some(items), Some(arr)) = (prop.get("items"), v.as_array()) {
        return arr.iter().all(|x| type_matches(items, x));
    }
    true
}

/// Schema helper: an object schema with these properties, additional properties allowed.
pub fn object(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

/// Schema helper: an object schema that rejects unknown properties, with `required` names.
pub fn input(props: Value, required: &[&str]) -> Value {
    let mut v = json!({"type": "object", "properties": props, "additionalProperties": false});
    if !required.is_empty() {
        v["required"] = json!(required);
    }
    v
}

pub use crate::util::duration::format as fmt_duration;

/// The most a read action answers by default, in bytes of JSON (its text and its structured
/// content are the same JSON). Callers who ask for more (a `limit`, `max_bytes`) get more.
pub const ANSWER_BUDGET: usize = 8 * 1024;

/// Room kept for the note that says what was cut.
const NOTE_ROOM: usize = 600;

/// Removes items of the array `v[key]` — the oldest first: from the front when the array is in
/// time order, else from the back — until `v` fits [`ANSWER_BUDGET`] with room for a note;
/// returns how many were removed.
pub fn fit_array(v: &mut Value, key: &str, oldest_first: bool) -> usize {
    let total = serde_json::to_string(v).map_or(0, |s| s.len());
    if total <= ANSWER_BUDGET {
        return 0;
    }
    let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) else {
        return 0;
    };
    let mut over = total + NOTE_ROOM - ANSWER_BUDGET;
    let mut cut = 0;
    while over > 0 && !items.is_empty() {
        let item = if oldest_first {
            items.remove(0)
        } else {
            items.pop().unwrap_or_default()
        };
        over = over.saturating_sub(serde_json::to_string(&item).map_or(0, |s| s.len()) + 1);
        cut += 1;
    }
    cut
}

/// A timeout argument: number of seconds or a duration string; default and cap apply.
pub fn timeout_arg(
    call: &Call<'_>,
    default: Duration,
    cap: Duration,
) -> Result<Duration, ToolError> {
    let d = match call.args.get("timeout") {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(|f| Duration::try_from_secs_f64(f).ok())
            .ok_or_else(|| ToolError::new("timeout must be a non-negative number of seconds"))?,
        Some(Value::String(s)) => crate::util::duration::parse(s).ok_or_else(|| {
            ToolError::new(format!(
                "invalid timeout {s:?}; use seconds or a duration like \"30s\", \"2m\""
            ))
        })?,
        Some(other) => return Err(ToolError::new(format!("invalid timeout {other}"))),
    };
    Ok(d.min(cap))
}

/// Schema snippet for the `timeout` parameter: seconds or a duration string.
pub fn timeout_schema(what: &str) -> Value {
    json!({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}], "description": what})
}

/// Schema snippet: a value of `ty` or null (`anyOf`, portable where `type` arrays are not).
pub fn nullable(ty: &str) -> Value {
    json!({"anyOf": [{"type": ty}, {"type": "null"}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        input(
            json!({
                "action": {"type": "string", "enum": ["list", "stop"]},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "tags": {"type": "array", "items": {"type": "string"}},
                "id": {"type": "string", "description": "the id"},
            }),
            &["id"],
        )
    }

    fn check(args: Value) -> Result<(), String> {
        check_args("t", &schema(), args.as_object().unwrap()).map_err(|e| e.0)
    }

    #[test]
    fn argument_checks_name_the_fix() {
        assert!(check(json!({"id": "a", "action": "list", "n": 3, "tags": ["x"]})).is_ok());
        let e = check(json!({"id": "a", "bogus": 1})).unwrap_err();
        assert!(
            e.contains("unknown parameter \"bogus\"") && e.contains("action, id, n, tags"),
            "{e}"
        );
        let e = check(json!({"id": "a", "n": "3"})).unwrap_err();
        assert!(e.contains("\"n\" must be of type"), "{e}");
        let e = check(json!({"id": "a", "tags": [1]})).unwrap_err();
        assert!(e.contains("tags"), "{e}");
        let e = check(json!({"id": "a", "action": "fly"})).unwrap_err();
        assert!(e.contains("valid values: list, stop"), "{e}");
        let e = check(json!({})).unwrap_err();
        assert!(
            e.contains("missing required parameter \"id\": the id"),
            "{e}"
        );
        assert!(check(json!({"id": "a", "n": null})).is_ok());
        let e = check(json!({"id": "a", "n": 11})).unwrap_err();
        assert!(e.contains("between 1 and 10"), "{e}");
        assert!(check(json!({"id": "a", "n": 0})).is_err());
        assert!(check(json!({"id": "a", "n": 2.5})).is_err());
    }

    #[test]
    fn every_tool_schema_is_well_formed() {
        for t in TOOLS {
            let s = (t.input_schema)();
            assert_eq!(s["type"], "object", "{}", t.name);
            for (k, p) in s["properties"].as_object().unwrap() {
                assert!(
                    p.get("type").is_some() || p.get("anyOf").is_some(),
                    "{}.{k} has no type",
                    t.name
                );
                assert!(
                    p.get("description").is_some(),
                    "{}.{k} has no description",
                    t.name
                );
            }
            assert!(t.description.contains("Example"), "{}", t.name);
        }
    }
}
