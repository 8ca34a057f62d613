//! `snapshot`: visual regression checks through the `browser` tool's Chromium (Go names):
//! `baseline` captures pages under a name, `compare` captures them again and reports per page
//! the changed-pixel fraction, pass/fail against `diff_threshold`, the changed regions and a
//! diff image; `list`, `get`, `delete`. Storage and diffing live in `host::browser::snapshot`.

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};
use crate::host::browser::snapshot;

/// The tool.
pub static TOOL: Tool = Tool {
    name: "snapshot",
    description: "Visual regression through a `browser`: `baseline` (name, pages), `compare` \
(per page: changed fraction, pass at diff_threshold, regions, diff image), `list`, `get`, \
`delete`. Example: {\"action\": \"compare\", \"baseline\": \"home\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Visual snapshots",
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": ["baseline", "compare", "list", "delete", "get"], "description": "What to do"},
            "name": {"type": "string", "description": "Snapshot name"},
            "baseline": {"type": "string", "description": "compare: against (default name)"},
            "pages": {"type": "array", "items": {"type": "string"}, "description": "baseline: paths or URLs"},
            "diff_threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "Default 0.01"},
            "id": {"type": "string", "description": "Browser id"},
            "proxy_id": {"type": "string", "description": "Its proxy"},
            "path": {"type": "string", "description": "Project directory"},
        }),
        &["action"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "pass": {"type": "boolean"},
        "pages": {"type": "array"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let project = c.project();
    let state = host.state();
    let err = |m: String| ToolError(m);
    match c.action("") {
        "baseline" => {
            let name = c.need_str("name", "the snapshot's name, e.g. \"home\"")?;
            let b = super::browser::find(host, c)?;
            let mut pages: Vec<(String, String)> = c
                .strs("pages")
                .into_iter()
                .map(|p| {
                    let url = super::browser::behind_proxy(host, &b, &p);
                    (p, url)
                })
                .collect();
            if pages.is_empty() {
                let here = b.location().map_err(err)?;
                let url = here["url"].as_str().unwrap_or("about:blank").to_string();
                pages.push((url.clone(), url));
            }
            let meta = snapshot::baseline(&b, &state.snapshot(&project, name), name, &pages)
                .map_err(err)?;
            Ok(json!({
                "name": name, "pages": meta.pages, "created": meta.created,
                "message": format!("baseline {name:?}: {} page(s) captured; compare with {{\"action\": \"compare\", \"baseline\": \"{name}\"}}", meta.pages.len()),
            }))
        }
        "compare" => {
            let name = c.str("baseline").or_else(|| c.str("name")).ok_or_else(|| {
                ToolError::new("compare needs baseline: the name of a snapshot (snapshot list)")
            })?;
            let threshold = c
                .args
                .get("diff_threshold")
                .and_then(Value::as_f64)
                .unwrap_or(0.01);
            let b = super::browser::find(host, c)?;
            let (pages, pass) =
                snapshot::compare(&b, &state.snapshot(&project, name), threshold, |shot| {
                    super::browser::behind_proxy(host, &b, &shot.page)
                })
                .map_err(err)?;
            let failed = pages.iter().filter(|p| p["pass"] == false).count();
            Ok(json!({
                "name": name, "pass": pass, "diff_threshold": threshold, "pages": pages,
                "message": if pass { format!("all pages match {name:?}") } else { format!("{failed} page(s) differ from {name:?}: see regions and diff_path") },
            }))
        }
        "list" => {
            let all = snapshot::list(&state.snapshots(&project));
            let list: Vec<Value> = all
                .iter()
                .map(|m| json!({"name": m.name, "created": m.created, "pages": m.pages.len()}))
                .collect();
            Ok(json!({"count": list.len(), "snapshots": list}))
        }
        "get" => {
            let name = c.need_str("name", "the snapshot (snapshot list)")?;
            let m = snapshot::load(&state.snapshot(&project, name)).map_err(err)?;
            Ok(json!({"name": m.name, "created": m.created, "pages": m.pages}))
        }
        "delete" => {
            let name = c.need_str("name", "the snapshot (snapshot list)")?;
            let dir = state.snapshot(&project, name);
            snapshot::load(&dir).map_err(err)?;
            std::fs::remove_dir_all(&dir)
                .map_err(|e| err(format!("cannot delete {}: {e}", dir.display())))?;
            Ok(json!({"name": name, "message": format!("snapshot {name:?} deleted")}))
        }
        "" => Err(ToolError::new(
            "missing required parameter \"action\"; valid actions: baseline, compare, list, delete, get",
        )),
        other => Err(err(format!(
            "unknown action {other:?}; valid actions: baseline, compare, list, delete, get"
        ))),
    }
}
