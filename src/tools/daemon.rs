//! `daemon`: the server's identity and counters (`status`/`info`), stopping every process and
//! proxy while the server keeps running (`stop_all`), shutting the daemon down (`shutdown`), and
//! this connection's push settings (`channel`: which events, how many a minute).

use serde_json::{Value, json};

use super::{Annotations, Call, Host, ServerInfo, Tool, ToolError, fmt_duration, input, object};

/// The tool.
pub static TOOL: Tool = Tool {
    name: "daemon",
    description: "The agnt server: `status`/`info` (version, counters, clients), `stop_all` (every process and proxy; the daemon runs on), `shutdown`, `channel` (this \
connection's pushes: `events`, `rate` a minute, 0 = off). Example: {\"action\": \"info\"}",
    input_schema,
    output_schema,
    call,
    annotations: Annotations {
        title: "agnt server",
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    },
};

fn input_schema() -> Value {
    input(
        json!({
            "action": {"type": "string", "enum": ["status", "info", "stop_all", "shutdown", "channel"], "description": "What to do (default info)"},
            "events": {"type": "array", "items": {"type": "string", "enum": crate::config::CHANNEL_EVENTS}, "description": "channel: event kinds pushed"},
            "rate": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "channel: most pushes a minute (0 = none; default 10)"},
        }),
        &[],
    )
}

fn output_schema() -> Value {
    object(json!({
        "running": {"type": "boolean"},
        "version": {"type": "string"},
        "uptime": {"type": "string"},
        "socket_path": super::nullable("string"),
        "process_info": {"type": "object"},
        "proxy_info": {"type": "object"},
        "clients": {"type": "array", "items": {"type": "object"}},
        "success": {"type": "boolean"},
    }))
}

/// The server's identity and counters as JSON.
pub fn info(host: &Host, server: &dyn ServerInfo) -> Value {
    let processes = host
        .pm_if_started()
        .map(|pm| pm.stats())
        .unwrap_or_default();
    let proxies = host
        .proxies_if_started()
        .map(|p| p.stats())
        .unwrap_or_default();
    json!({
        "running": true,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime": fmt_duration(host.uptime()),
        "uptime_secs": host.uptime().as_secs(),
        "socket_path": server.socket(),
        "state_dir": host.state().root(),
        "client_count": server.clients(),
        "client_limit": server.client_limit(),
        "clients": server.client_list(),
        "http_port": server.http_port(),
        "calls": host.calls(),
        "process_info": processes,
        "proxy_info": proxies,
        "http": server.http(),
        "channel": {
            "subscribers": host.feeds().channel.subscribers(),
            "delivered": host.feeds().channel.counters().0,
            "folded": host.feeds().channel.counters().1,
        },
    })
}

fn call(host: &Host, c: &Call<'_>) -> Result<Value, ToolError> {
    match c.action("info") {
        "status" | "info" => Ok(info(host, c.server)),
        "stop_all" => {
            let mut stopped = 0;
            if let Some(pm) = host.pm_if_started() {
                for p in pm.list(None) {
                    if !p.state().is_terminal() && pm.stop(p.project(), p.id(), false).is_ok() {
                        stopped += 1;
                    }
                }
            }
            let mut proxies_stopped = 0;
            if let Some(px) = host.proxies_if_started() {
                for p in px.list(None) {
                    if px.stop(p.id()).is_ok() {
                        proxies_stopped += 1;
                    }
                }
            }
            host.save_proxies();
            Ok(json!({
                "success": true,
                "processes_stopped": stopped,
                "proxies_stopped": proxies_stopped,
                "message": format!("stopped {stopped} process(es) and {proxies_stopped} proxy(ies)"),
            }))
        }
        "shutdown" => {
            if !c.server.request_shutdown() {
                return Err(ToolError::new(
                    "shutdown: this server is not a daemon (use stop_all)",
                ));
            }
            Ok(
                json!({"success": true, "message": "daemon shutting down: every process and proxy is being stopped"}),
            )
        }
        "channel" => {
            let Some(conn) = c.connection else {
                return Err(ToolError::new(
                    "channel: this call came without a connection that receives pushes (use agnt mcp)",
                ));
            };
            let settings = crate::host::channel::Settings {
                events: c.args.get("events").map(|_| c.strs("events")),
                rate: c.u64("rate").map(|r| r.min(10_000) as u32),
            };
            let (events, rate) = host
                .feeds()
                .channel
                .configure(conn, settings)
                .ok_or_else(|| ToolError::new("channel: this connection is not subscribed"))?;
            Ok(json!({
                "success": true,
                "events": events,
                "rate": rate,
                "message": format!("pushing {} to this connection, at most {rate} a minute", events.join(", ")),
            }))
        }
        other => Err(ToolError::new(format!(
            "unknown action {other:?}; valid actions: status, info, stop_all, shutdown, channel"
        ))),
    }
}
