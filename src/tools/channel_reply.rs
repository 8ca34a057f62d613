//! `channel_reply` (the Go original's names): the agent answers the user in the page — a toast
//! in the panel of every page connected to one proxy, or to every running proxy of the project.

use serde_json::{Value, json};

use super::{Annotations, Call, Host, Tool, ToolError, input, object};

/// The tool.
pub static TOOL: Tool = Tool {
    name: "channel_reply",
    description: "Reply to the user in the browser (e.g. to a page-panel message): a toast in \
every page of the proxy (default: all of the project's). Example: {\"content\": \"Fixed, reload\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "Reply in the page",
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "content": {"type": "string", "description": "The message to show"},
            "proxy_id": {"type": "string", "description": "Default: every proxy of the project"},
            "id": {"type": "string", "description": "Alias of proxy_id"},
            "severity": {"type": "string", "enum": ["info", "warning", "error"], "description": "Default info"},
            "title": {"type": "string", "description": "Toast title"},
            "path": {"type": "string", "description": "Project"},
        }),
        &["content"],
    )
}

fn output_schema() -> Value {
    object(json!({
        "delivered": {"type": "integer"},
        "message": {"type": "string"},
    }))
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    let content = c.need_str("content", "the message to show in the page")?;
    let proxies = match c.str("proxy_id").or_else(|| c.str("id")) {
        Some(id) => vec![host.proxies().get(id)?],
        None => host
            .proxies_if_started()
            .map(|p| p.list(Some(&c.project())))
            .unwrap_or_default(),
    };
    let msg = json!({
        "type": "toast",
        "content": content.chars().take(2000).collect::<String>(),
        "title": c.str("title").unwrap_or("").chars().take(200).collect::<String>(),
        "severity": c.str("severity").unwrap_or("info"),
    });
    let mut delivered = 0;
    let mut names = Vec::new();
    for p in proxies.iter().filter(|p| p.is_running()) {
        let n = p.send_to_pages(&msg);
        delivered += n;
        names.push(format!("{} ({n})", p.id()));
    }
    let message = match (proxies.len(), delivered) {
        (0, _) => "no running proxy in this project: start one with proxy start".to_string(),
        (_, 0) => format!(
            "no page connected to {}: open the proxy URL in a browser",
            names.join(", ")
        ),
        _ => format!("shown in {delivered} page(s): {}", names.join(", ")),
    };
    Ok(json!({"delivered": delivered, "message": message}))
}
