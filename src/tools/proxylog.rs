//! `proxylog`: query, summarise, count, clear a proxy's traffic log, or fetch one entry in full.
//! Entries come back as JSON objects (never JSON-encoded strings) with a `since_seq` cursor.

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, fit_array, input, object};
use crate::proxy::LogQuery;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "proxylog",
    description: "What a proxy saw: HTTP, JS errors, performance, interactions, mutations, \
custom logs. `query` (default; the filters below), `summary` (start here), `stats`, `clear`, \
`get` (one entry in full). Example: \
{\"proxy_id\": \"app\", \"types\": [\"error\"], \"since\": \"5m\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Proxy traffic log",
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    },
};

const ACTIONS: &str = "query, summary, stats, clear, get";

fn input_schema() -> Value {
    input(
        json!({
            "proxy_id": {"type": "string", "description": "The proxy (see proxy list)"},
            "action": {"type": "string", "enum": ["query", "summary", "stats", "clear", "get"], "description": "What to do (default query)"},
            "types": {"type": "array", "items": {"type": "string"}, "description": "Entry types: http, error, interaction, ..."},
            "methods": {"type": "array", "items": {"type": "string"}, "description": "HTTP methods (http entries)"},
            "url_pattern": {"type": "string", "description": "URL substring (http entries)"},
            "status_codes": {"type": "array", "items": {"type": "integer"}, "description": "HTTP status codes (http entries)"},
            "since": {"type": "string", "description": "Newer than \"5m\" or RFC 3339"},
            "until": {"type": "string", "description": "Older than (RFC 3339 or relative)"},
            "since_seq": {"type": "integer", "minimum": 0, "description": "After this seq (a last_seq)"},
            "limit": {"type": "integer", "minimum": 1, "description": "Most entries (default 100)"},
            "detail": {"type": "array", "items": {"type": "string"}, "description": "summary: sections in full"},
            "entry_id": {"type": "string", "description": "get: the entry id"},
        }),
        &["proxy_id"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "entries": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "success": {"type": "boolean"},
        "redact": {"type": "boolean", "description": "false: raw traffic (started with redact: false)"},
    }))
}

/// The log filters of a call.
pub fn query_of(c: &Call<'_>) -> Result<LogQuery, ToolError> {
    let mut codes = Vec::new();
    if let Some(Value::Array(a)) = c.args.get("status_codes") {
        for v in a {
            let code = v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| {
                    ToolError::new(format!("invalid status code {v}; use integers like 404"))
                })?;
            codes.push(code);
        }
    }
    Ok(LogQuery {
        types: c.strs("types"),
        methods: c
            .strs("methods")
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        url_pattern: c.str("url_pattern").map(String::from),
        status_codes: codes,
        since: c.str("since").map(String::from),
        until: c.str("until").map(String::from),
        since_seq: c.u64("since_seq"),
        limit: c.u64("limit").map(|n| n as usize),
    })
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let proxy = host
        .proxies()
        .get(c.need_str("proxy_id", "the proxy whose log to read (see proxy list)")?)?;
    let mut answer = match c.action("query") {
        "query" => {
            let mut v = proxy.log_query(&query_of(c)?)?;
            if c.u64("limit").is_none() {
                let cut = fit_array(&mut v, "entries", true);
                if cut > 0 {
                    let shown = v["entries"].as_array().map_or(0, Vec::len);
                    let first = v["entries"][0]["seq"].as_u64().unwrap_or(0);
                    v["count"] = shown.into();
                    v["truncated"] = true.into();
                    v["left_out"] = cut.into();
                    v["note"] = format!(
                        "showing the newest {shown} matching entries (from seq {first}); {cut} older ones were left out to keep this answer under 8 KB: \
ask for them with a `limit` (up to {}) and narrower filters (types, url_pattern, status_codes, since/until); \
read only newer ones later with since_seq = last_seq; one entry in full: {{\"action\": \"get\", \"entry_id\": ...}}",
                        shown + cut
                    )
                    .into();
                }
            }
            Ok(v)
        }
        "summary" => {
            let limit = c.u64("limit").map(|n| n as usize).unwrap_or(10).min(100);
            let mut q = query_of(c)?;
            q.limit = None;
            Ok(proxy.log_summary(&q, &c.strs("detail"), limit)?)
        }
        "stats" => Ok(json!(proxy.log_stats())),
        "clear" => {
            proxy.log_clear();
            Ok(
                json!({"success": true, "message": format!("traffic log of {} cleared", proxy.id())}),
            )
        }
        "get" => {
            let entry = c.need_str("entry_id", "the id of the entry to fetch (from a query)")?;
            proxy.log_get(entry).ok_or_else(|| {
                ToolError::new(format!("entry {entry:?} not found in {} (unknown or dropped from the log); query to list entry ids", proxy.id()))
            })
        }
        other => Err(ToolError::new(format!(
            "unknown action {other:?}; valid actions: {ACTIONS}"
        ))),
    }?;
    // Every answer says whether secrets were redacted before this proxy stored its entries.
    if let Some(m) = answer.as_object_mut() {
        m.insert("redact".into(), proxy.redacts().into());
    }
    Ok(answer)
}
