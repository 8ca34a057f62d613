//! `get_incidents` (the Go original's names): one call for "what is broken right now" — the
//! host's deduplicated incident inbox (browser JS errors, HTTP 4xx/5xx and transport errors,
//! proxy diagnostics, crashed processes, alert-pattern output lines), newest first, scoped to
//! the caller's project, with a cursor, `mark_read` and compact entries that name the one call
//! to drill in.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, fit_array, input, object};
use crate::host::{
    feed::cut,
    incidents::{Incident, Query, Report, SOURCES, Severity},
};

/// Default and largest `limit`.
pub const DEFAULT_LIMIT: u64 = 20;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 100;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "get_incidents",
    description: "What is broken now: JS errors, HTTP 4xx/5xx and transport errors, proxy \
diagnostics, crashes, alert lines; deduplicated, newest first, each with a `remediation` call. \
`replay_cursor` as `since`: changes only. Example: {\"severity\": [\"error\"], \"since\": \
\"5m\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Incidents: what broke",
        read_only: false, // mark_read
        destructive: false,
        idempotent: true,
        open_world: false,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "severity": {"type": "array", "items": {"type": "string", "enum": ["critical", "error", "warning", "info"]}, "description": "Severities (default all)"},
            "since": {"type": "string", "description": "replay_cursor, RFC 3339 or a duration"},
            "fingerprints": {"type": "array", "items": {"type": "string"}, "description": "Fingerprints"},
            "sources": {"type": "array", "items": {"type": "string", "enum": SOURCES}, "description": "Sources"},
            "proxy_id": {"type": "string", "description": "One proxy's"},
            "process_id": {"type": "string", "description": "One process's"},
            "detail": {"type": "string", "enum": ["summary", "full"], "description": "full adds payloads (default summary)"},
            "mark_read": {"type": "boolean", "description": "Mark the returned ones read"},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "Default 20"},
            "raw": {"type": "boolean", "description": "= detail full"},
            "path": {"type": "string", "description": "Project"},
        }),
        &[],
    )
}

fn output_schema() -> Value {
    object(json!({
        "incidents": {"type": "array", "items": {"type": "object"}},
        "inbox_after": {"type": "object"},
        "replay_cursor": {"type": "string"},
        "truncated": {"type": "boolean"},
        "note": {"type": "string"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let project = c.project();
    let feeds = host.feeds();
    if let Some(pm) = host.pm_if_started() {
        feeds.scan_all(&project, &pm.list(Some(&project)));
    }
    if let Some(px) = host.proxies_if_started() {
        for p in px.list(Some(&project)) {
            if let Some(err) = p.status().last_error.as_deref() {
                feeds.record(Report {
                    project: project.clone(),
                    source: "proxy_diag",
                    severity: Severity::Warning,
                    key: err.to_string(),
                    summary: cut(&format!("proxy {}: {err}", p.id()), 160),
                    context: json!({"proxy_id": p.id(), "url": p.url()}),
                    payload: Value::Null,
                    remediation: format!("proxy {}", json!({"action": "status", "id": p.id()})),
                    proxy_id: Some(p.id().to_string()),
                    process_id: None,
                });
            }
        }
    }
    let mut q = Query {
        project: Some(project),
        severities: c
            .strs("severity")
            .iter()
            .filter_map(|s| Severity::parse(s))
            .collect(),
        sources: c.strs("sources"),
        fingerprints: c.strs("fingerprints"),
        proxy_id: c.str("proxy_id").map(String::from),
        process_id: c.str("process_id").map(String::from),
        limit: c.u64("limit").unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize,
        mark_read: c.bool("mark_read"),
        ..Query::default()
    };
    if let Some(since) = c.str("since") {
        if !since.is_empty() && since.bytes().all(|b| b.is_ascii_digit()) {
            q.after_seq = since.parse().ok();
        } else {
            q.since_time = Some(crate::util::time::parse_time(since, SystemTime::now())?);
        }
    }
    let full = c.str("detail") == Some("full") || c.bool("raw");
    // Marked after the answer is cut to its budget: only what the caller sees becomes read.
    let mark_read = std::mem::take(&mut q.mark_read);
    let ans = feeds.incidents.query(&q);
    let incidents: Vec<Value> = ans.incidents.iter().map(|i| view(i, full)).collect();
    let truncated = ans.matched > incidents.len();
    let mut out = json!({
        "incidents": incidents,
        "count": incidents.len(),
        "matched": ans.matched,
        "inbox_after": ans.inbox,
        "replay_cursor": ans.cursor.to_string(),
        "truncated": truncated,
    });
    let cut = if c.u64("limit").is_none() && !full {
        fit_array(&mut out, "incidents", false)
    } else {
        0
    };
    let shown = out["incidents"].as_array().map_or(0, Vec::len);
    if mark_read {
        let ids: Vec<String> = ans.incidents[..shown]
            .iter()
            .map(|i| i.id.clone())
            .collect();
        let inbox = feeds.incidents.mark_read(&ids, q.project.as_deref());
        out["inbox_after"] = json!(inbox);
    }
    if truncated || cut > 0 {
        out["count"] = shown.into();
        out["truncated"] = true.into();
        out["note"] = json!(format!(
            "{} older matching incident(s) left out{}: pass `limit` (max {MAX_LIMIT}) or narrow with severity, sources, since",
            ans.matched - shown,
            if cut > 0 {
                " to keep this answer under 8 KB"
            } else {
                ""
            }
        ));
    } else if incidents.is_empty() {
        out["note"] = json!(if q.after_seq.is_some() || q.since_time.is_some() {
            "nothing new since then"
        } else {
            "no incidents in this project"
        });
    }
    Ok(out)
}

fn view(i: &Incident, full: bool) -> Value {
    let r = &i.report;
    let time = crate::util::time::rfc3339;
    let mut v = json!({
        "id": i.id,
        "fingerprint": i.fingerprint,
        "severity": r.severity.as_str(),
        "source": r.source,
        "count": i.count,
        "summary": r.summary,
        "first_seen": time(i.first_seen),
        "last_seen": time(i.last_seen),
        "read": i.read,
        "remediation": r.remediation,
    });
    let mut context = r.context.clone();
    if !full && let Some(m) = context.as_object_mut() {
        // Compact: drop empty facts.
        m.retain(|_, v| !(v.is_null() || v.as_str() == Some("")));
    }
    v["context"] = context;
    if full {
        v["payload"] = r.payload.clone();
        v["project"] = json!(r.project);
    }
    v
}
