//! `currentpage`: the browser page sessions a proxy tracks — a counts-only list, one session in
//! full, a summary with detail sections, or clearing them.

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};

/// The tool.
pub static TOOL: Tool = Tool {
    name: "currentpage",
    description: "Page sessions seen through a proxy: errors, resources, interactions, \
mutations. Actions: `list` (default; last 5 min), `summary` (`detail` expands), `get`, \
`clear`. Example: {\"proxy_id\": \"app\", \"action\": \"summary\", \"session_id\": \"page-1\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Browser page sessions",
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    },
};

const ACTIONS: &str = "list, get, summary, clear";

fn input_schema() -> Value {
    input(
        json!({
            "proxy_id": {"type": "string", "description": "The proxy (see proxy list)"},
            "action": {"type": "string", "enum": ["list", "get", "summary", "clear"], "description": "What to do (default list)"},
            "session_id": {"type": "string", "description": "get/summary: e.g. page-1"},
            "detail": {"type": "array", "items": {"type": "string"}, "description": "summary: interactions, mutations, errors, resources"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "summary: items per section (default 5)"},
        }),
        &["proxy_id"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "sessions": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "success": {"type": "boolean"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let proxy = host
        .proxies()
        .get(c.need_str("proxy_id", "the proxy whose pages to read (see proxy list)")?)?;
    let action = c.action("list");
    let session = || {
        c.need_str(
            "session_id",
            &format!("the page session for {action} (see currentpage list)"),
        )
    };
    let not_found = |id: &str| {
        let list = proxy.pages_list();
        let known: Vec<String> = list
            .get("sessions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("id").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        ToolError::new(format!(
            "page session {id:?} not found; known: {}",
            if known.is_empty() {
                "none (open the proxy URL in a browser)".to_string()
            } else {
                known.join(", ")
            }
        ))
    };
    match action {
        "list" => Ok(proxy.pages_list()),
        "get" => {
            let id = session()?;
            proxy.page_get(id).ok_or_else(|| not_found(id))
        }
        "summary" => {
            let id = session()?;
            let limit = c.u64("limit").map(|n| n as usize).unwrap_or(5).min(100);
            proxy
                .page_summary(id, &c.strs("detail"), limit)
                .ok_or_else(|| not_found(id))
        }
        "clear" => {
            proxy.pages_clear();
            Ok(
                json!({"success": true, "message": format!("page sessions of {} cleared", proxy.id())}),
            )
        }
        other => Err(ToolError::new(format!(
            "unknown action {other:?}; valid actions: {ACTIONS}"
        ))),
    }
}
