//! The human renderings of tool results: pure functions from (tool, arguments, structured result)
//! to the text `agnt` prints (`--json` prints the structure instead). Each shows what the
//! subcommand asked for first, then what to do next when that is not obvious. Every string that
//! came from a result is escaped ([`escape`], [`cell`]) so a page, a request or a file name
//! cannot emit terminal escapes; a process's own output (`proc output`, a foreground `run`)
//! keeps its colours but loses every other escape sequence (`util::term::sanitize`: no
//! retitling, no OSC 52 clipboard writes, no terminal reprogramming). This module does no IO.

mod page;
mod web;

use std::path::Path;

use serde_json::Value;

/// What a subcommand prints: its answer on stdout, notes and failures on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Human {
    pub stdout: String,
    pub stderr: String,
}

impl Human {
    fn out(stdout: String) -> Human {
        Human {
            stdout,
            stderr: String::new(),
        }
    }
}

/// The human rendering of `tool`'s result `v` for a call with `args`.
pub fn human(tool: &str, args: &Value, v: &Value) -> Human {
    let action = args["action"].as_str();
    match (tool, action) {
        ("proc", Some("list")) => Human::out(proc_list(v)),
        ("proc", Some("status")) => Human::out(process(v)),
        ("proc", Some("output")) => proc_output(v),
        ("proc", Some("restart")) => Human::out(format!(
            "{} (pid {})\n",
            escape(v["message"].as_str().unwrap_or("restarted")),
            cell(&v["pid"])
        )),
        ("proc", Some("cleanup_port" | "resolve_conflict")) => Human::out(cleanup_port(v)),
        ("proxy", Some("list")) => Human::out(proxy_list(v)),
        ("proxy", Some("status")) => Human::out(proxy_status(v)),
        ("proxy", Some("exec")) => web::exec(args, v),
        ("proxylog", None | Some("query")) => Human::out(web::log_entries(v)),
        ("proxylog", Some("summary")) => Human::out(web::log_summary(v)),
        ("proxylog", Some("stats")) => Human::out(web::log_stats(v)),
        ("proxylog", Some("get")) => Human::out(web::log_entry(v)),
        ("currentpage", None | Some("list")) => Human::out(web::pages(args, v)),
        ("currentpage", Some("summary" | "get")) => Human::out(web::page(v)),
        ("detect", _) => Human::out(detect(v)),
        ("run", _) => run(v),
        ("wait", _) => wait(v),
        ("get_incidents", _) => Human::out(page::incidents(v)),
        ("channel_reply", _) => page::channel_reply(v),
        ("browser", Some(a)) => page::browser(a, v),
        ("snapshot", Some(a)) => page::snapshot(a, v),
        _ => Human::out(message_or_json(v)),
    }
}

/// `agnt daemon status` of a running daemon.
pub fn daemon_status(socket: &Path, v: &Value) -> String {
    let http = &v["http"];
    let http = if http.is_object() {
        format!(
            "http: {} (Authorization: Bearer {}; token file {}; allowed origins: {})\n",
            cell(&http["url"]),
            cell(&http["token"]),
            cell(&http["token_file"]),
            match http["allowed_origins"].as_array() {
                Some(a) if !a.is_empty() => a.iter().map(cell).collect::<Vec<_>>().join(", "),
                _ => "none".into(),
            }
        )
    } else {
        String::new()
    };
    format!(
        "agnt daemon {} running (pid {}, up {}) on {}\nprocesses: {} active, {} started; proxies: {} active; clients: {}\n",
        cell(&v["version"]),
        cell(&v["pid"]),
        cell(&v["uptime"]),
        escape(&socket.display().to_string()),
        cell(&v["process_info"]["active"]),
        cell(&v["process_info"]["total_started"]),
        cell(&v["proxy_info"]["active"]),
        cell(&v["client_count"]),
    ) + &http
}

/// The `clients` of `daemon info`: one line each (kind, name, pid, connected for, idle for).
pub fn daemon_clients(v: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let list = v["clients"].as_array().unwrap_or(&empty);
    out.push_str(&format!(
        "{} client(s) connected (limit {}):\n",
        list.len(),
        cell(&v["client_limit"])
    ));
    for c in list {
        out.push_str(&format!(
            "  {:<7} {:<16} pid {:<8} connected {}s, idle {}s, {} request(s)\n",
            cell(&c["kind"]),
            cell(&c["name"]),
            cell(&c["pid"]),
            cell(&c["connected_secs"]),
            cell(&c["idle_secs"]),
            cell(&c["requests"]),
        ));
    }
    out
}

/// `s` with every control character escaped except newline and tab, so it cannot move the
/// cursor, recolour or retitle the terminal.
pub fn escape(s: &str) -> String {
    escape_with(s, |c| c == '\n' || c == '\t')
}

/// One table cell or one-line field: like [`escape`], and newlines and tabs are escaped too.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => escape_with(s, |_| false),
        other => escape_with(&other.to_string(), |_| false),
    }
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if !c.is_control() || keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// At most `max` characters of `s`, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A left-aligned table; cells are expected to be escaped already (see [`cell`]).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The rows of `v[key]` (an array of objects), one cell per column key.
fn rows(v: &Value, key: &str, cols: &[&str]) -> Vec<Vec<String>> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| cols.iter().map(|c| cell(&x[*c])).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// `name  value` lines with the names aligned; rows whose value is `-` are left out.
fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, v)| v != "-" && !v.is_empty())
        .map(|(k, v)| format!("  {k:<w$}  {v}\n"))
        .collect()
}

/// Pretty JSON for results without a dedicated rendering (escaped: serde_json leaves C1
/// controls in strings as they are).
fn json(v: &Value) -> String {
    escape(&serde_json::to_string_pretty(v).unwrap_or_default()) + "\n"
}

fn message_or_json(v: &Value) -> String {
    match v.get("message").and_then(Value::as_str) {
        Some(m) => escape(m) + "\n",
        None => json(v),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The "N more in other projects" line of a project-scoped list, if there are any.
fn others_hint(v: &Value, key: &str, one: &str, many: &str, cmd: &str) -> String {
    match v[key].as_u64().filter(|n| *n > 0 && v["global"] != true) {
        Some(n) => format!(
            "{} in other projects: `{cmd} --global` lists them\n",
            plural(n, one, many)
        ),
        None => String::new(),
    }
}

fn proc_list(v: &Value) -> String {
    let global = v["global"] == true;
    let mut out = if v["count"] == 0 {
        if global {
            "no processes\n".to_string()
        } else {
            format!("no processes in {}\n", cell(&v["project_path"]))
        }
    } else if global {
        table(
            &["ID", "STATE", "PID", "RUNTIME", "PROJECT", "COMMAND"],
            &rows(
                v,
                "processes",
                &["id", "summary", "pid", "runtime", "project_path", "command"],
            ),
        )
    } else {
        table(
            &["ID", "STATE", "PID", "RUNTIME", "COMMAND"],
            &rows(
                v,
                "processes",
                &["id", "summary", "pid", "runtime", "command"],
            ),
        )
    };
    out.push_str(&others_hint(
        v,
        "other_projects_processes",
        "process",
        "processes",
        "agnt proc list",
    ));
    out
}

fn process(v: &Value) -> String {
    let mut out = format!("{}: {}\n", cell(&v["id"]), cell(&v["summary"]));
    out.push_str(&fields(&[
        ("pid", cell(&v["pid"])),
        ("command", cell(&v["command"])),
        ("runtime", cell(&v["runtime"])),
        ("project", cell(&v["project_path"])),
    ]));
    out
}

fn proc_output(v: &Value) -> Human {
    let mut h = Human::out(crate::util::term::sanitize(
        v["output"].as_str().unwrap_or(""),
    ));
    if !h.stdout.is_empty() && !h.stdout.ends_with('\n') {
        h.stdout.push('\n');
    }
    if v["truncated"] == true {
        h.stderr.push_str(
            "agnt: output cut to the byte budget (newest kept); narrow it with --tail/--grep or raise --max-bytes\n",
        );
    }
    if let Some(n) = v["lost_bytes"].as_u64().filter(|n| *n > 0) {
        h.stderr.push_str(&format!(
            "agnt: {n} older bytes were already dropped from the output buffer\n"
        ));
    }
    h
}

fn cleanup_port(v: &Value) -> String {
    let mut out = message_or_json(v);
    if let Some(pids) = v["killed_pids"].as_array().filter(|p| !p.is_empty()) {
        let pids: Vec<String> = pids.iter().map(cell).collect();
        out.push_str(&format!("  pids: {}\n", pids.join(", ")));
    }
    out
}

fn proxy_list(v: &Value) -> String {
    let global = v["global"] == true;
    let mut out = if v["count"] == 0 {
        if global {
            "no proxies\n".to_string()
        } else {
            format!("no proxies in {}\n", cell(&v["project_path"]))
        }
    } else if global {
        table(
            &["ID", "URL", "TARGET", "REQUESTS", "PROJECT"],
            &rows(
                v,
                "proxies",
                &["id", "url", "target_url", "total_requests", "path"],
            ),
        )
    } else {
        table(
            &["ID", "URL", "TARGET", "REQUESTS"],
            &rows(v, "proxies", &["id", "url", "target_url", "total_requests"]),
        )
    };
    out.push_str(&others_hint(
        v,
        "other_projects_proxies",
        "proxy",
        "proxies",
        "agnt proxy list",
    ));
    out
}

fn proxy_status(v: &Value) -> String {
    let state = if v["running"] == false {
        "stopped"
    } else {
        "running"
    };
    let log = &v["log_stats"];
    let mut out = format!(
        "{}: {state}, {} → {}\n",
        cell(&v["id"]),
        cell(&v["url"]),
        cell(&v["target_url"])
    );
    out.push_str(&fields(&[
        ("uptime", cell(&v["uptime"])),
        ("requests", cell(&v["total_requests"])),
        (
            "connections",
            format!(
                "{} open, {} total",
                cell(&v["active_connections"]),
                cell(&v["total_connections"])
            ),
        ),
        (
            "pages",
            format!(
                "{} injected, {} connected",
                cell(&v["injected"]),
                cell(&v["ws_clients"])
            ),
        ),
        (
            "errors",
            format!(
                "{} upstream, {} bad requests, {} timeouts",
                cell(&v["upstream_errors"]),
                cell(&v["bad_requests"]),
                cell(&v["timeouts"])
            ),
        ),
        ("last error", cell(&v["last_error"])),
        ("restarts", cell(&v["restart_count"])),
        (
            "redaction",
            if v["redact"] == false {
                "OFF: secrets are logged in clear".to_string()
            } else {
                "on (SECURITY.md)".to_string()
            },
        ),
        (
            "tls",
            match v["tls"]["verify"].as_bool() {
                Some(true) => "certificate verified".to_string(),
                Some(false) => "certificate not verified".to_string(),
                None => String::new(),
            },
        ),
        (
            "traffic log",
            format!(
                "{} of {} entries (last seq {})",
                cell(&log["available_entries"]),
                cell(&log["max_size"]),
                cell(&log["last_seq"])
            ),
        ),
        ("project", cell(&v["path"])),
    ]));
    out
}

fn detect(v: &Value) -> String {
    let mut out = format!("{}: {}", cell(&v["path"]), cell(&v["type"]));
    if let Some(pm) = v["package_manager"].as_str() {
        out.push_str(&format!(" ({})", escape_with(pm, |_| false)));
    }
    out.push('\n');
    if v["scripts"].as_array().is_some_and(|a| !a.is_empty()) {
        out.push_str(&table(
            &["SCRIPT", "COMMAND"],
            &rows(v, "scripts", &["name", "command"]),
        ));
    } else {
        out.push_str("no scripts found (run a command with `agnt run -- CMD ARGS…`)\n");
    }
    let config = &v["config"];
    if config.is_object() {
        out.push_str(&format!("\nconfig {}\n", cell(&config["path"])));
        for w in config["warnings"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  warning: {}\n",
                escape(w.as_str().unwrap_or(""))
            ));
        }
        if config["scripts"].as_array().is_some_and(|a| !a.is_empty()) {
            out.push_str(&table(
                &["SCRIPT", "AUTOSTART", "COMMAND"],
                &rows(config, "scripts", &["name", "autostart", "command"]),
            ));
        }
        let none = |k: &str| config[k].as_array().is_none_or(Vec::is_empty);
        if none("scripts") && none("proxies") {
            out.push_str("  no scripts or proxies\n");
        }
        if config["proxies"].as_array().is_some_and(|a| !a.is_empty()) {
            out.push_str(&table(
                &["PROXY", "AUTOSTART", "TARGET", "SCRIPT", "PORT"],
                &rows(
                    config,
                    "proxies",
                    &["name", "autostart", "target", "script", "port"],
                ),
            ));
        }
    }
    out
}

fn run(v: &Value) -> Human {
    let id = cell(&v["process_id"]);
    if v.get("exit_code").is_none() {
        let how = if v["reused"] == true {
            "already running"
        } else {
            "started"
        };
        return Human::out(format!(
            "{id} {how} (pid {}): {}\n",
            cell(&v["pid"]),
            cell(&v["command"])
        ));
    }
    // A foreground run: the child's own output, colours kept (stdout to stdout, stderr to
    // stderr), then how it ended.
    let mut h = Human::default();
    for (key, to) in [("stdout", &mut h.stdout), ("stderr", &mut h.stderr)] {
        if let Some(t) = v[key].as_str().filter(|t| !t.is_empty()) {
            to.push_str(&crate::util::term::sanitize(t));
            if !t.ends_with('\n') {
                to.push('\n');
            }
        }
    }
    h.stdout.push_str(&format!(
        "{id}: {} in {}\n",
        cell(&v["summary"]),
        cell(&v["runtime"])
    ));
    if v["timed_out"] == true {
        h.stderr
            .push_str("agnt run: stopped at the timeout (--timeout to wait longer)\n");
    }
    h
}

fn wait(v: &Value) -> Human {
    let what = v["for"].as_str().unwrap_or("");
    let ms = cell(&v["waited_ms"]);
    if v["matched"] != true {
        let seen = &v["last_seen"];
        let last = match what {
            "log" => format!(
                "{}; last lines:\n{}",
                cell(&seen["state"]),
                escape(seen["last_lines"].as_str().unwrap_or(""))
            ),
            "port" | "http" => seen
                .get("error")
                .or_else(|| seen.get("status"))
                .map(cell)
                .unwrap_or_else(|| "-".into()),
            "proxylog" => format!(
                "no new entry (last seq {})",
                cell(&seen["log_stats"]["last_seq"])
            ),
            _ => cell(seen),
        };
        return Human {
            stdout: String::new(),
            stderr: format!(
                "agnt wait: timed out after {ms} ms waiting for {}; last seen: {last}\n",
                escape(what)
            ),
        };
    }
    Human::out(match what {
        "log" => format!(
            "{} printed a matching line (after {ms} ms):\n{}\n",
            cell(&v["process_id"]),
            escape(v["line"].as_str().unwrap_or(""))
        ),
        "port" => format!("port {} is open (after {ms} ms)\n", cell(&v["port"])),
        "http" => format!(
            "{} answered {} (after {ms} ms)\n",
            cell(&v["url"]),
            cell(&v["status"])
        ),
        "proxylog" => format!(
            "{} logged (after {ms} ms):\n{}",
            cell(&v["proxy_id"]),
            web::log_line(&v["entry"])
        ),
        _ => json(v),
    })
}

#[cfg(test)]
mod tests;
