//! Renderings of the tools around the page: `get_incidents` (a table: severity, last seen,
//! source, count, summary; then the cursor to pass for what is new), `channel_reply` (where the
//! toast was shown), `browser` (one or two lines per action: what was hit and how many
//! matched, the page loaded, the screenshot's path alone on stdout) and `snapshot` (pass/fail,
//! per page the changed fraction, regions and diff image). Summaries, page titles, console
//! text and element text come from pages and processes, so every string goes through
//! `escape`/`cell`.

use serde_json::Value;

use super::{Human, cell, cut, escape, fields, message_or_json, plural, rows, table};

/// Widest incident summary in the table, in characters.
const SUMMARY: usize = 100;

/// `agnt incidents`.
pub fn incidents(v: &Value) -> String {
    let empty = Vec::new();
    let list = v["incidents"].as_array().unwrap_or(&empty);
    let mut out = String::new();
    if list.is_empty() {
        out.push_str(&format!(
            "{}\n",
            escape(v["note"].as_str().unwrap_or("no incidents"))
        ));
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|i| {
                let summary = i["summary"].as_str().unwrap_or("");
                vec![
                    cell(&i["severity"]).to_uppercase(),
                    short_time(&i["last_seen"]),
                    cell(&i["source"]),
                    format!("{}", i["count"].as_u64().unwrap_or(1)),
                    cell(&Value::String(cut(summary, SUMMARY))),
                ]
            })
            .collect();
        out.push_str(&table(
            &["SEVERITY", "LAST SEEN", "SOURCE", "COUNT", "SUMMARY"],
            &rows,
        ));
        if let Some(note) = v["note"].as_str() {
            out.push_str(&format!("{}\n", escape(note)));
        }
    }
    if let Some(c) = v["replay_cursor"].as_str() {
        out.push_str(&format!(
            "only newer ones: agnt incidents --since {}\n",
            escape(c)
        ));
    }
    out
}

/// `2026-11-30T19:33:04.123Z` → `2026-11-30 19:33:04` (UTC, as the tool reports it).
fn short_time(v: &Value) -> String {
    match v.as_str() {
        Some(t) if t.len() >= 19 && t.is_char_boundary(10) && t.is_char_boundary(19) => {
            cell(&Value::String(format!("{} {}", &t[..10], &t[11..19])))
        }
        _ => cell(v),
    }
}

/// `agnt channel reply`: where it was shown, or (on stderr) why nobody saw it.
pub fn channel_reply(v: &Value) -> Human {
    let msg = message_or_json(v);
    if v["delivered"].as_u64().unwrap_or(0) == 0 {
        Human {
            stdout: String::new(),
            stderr: format!("agnt channel reply: {msg}"),
        }
    } else {
        Human::out(msg)
    }
}

/// `agnt browser ACTION`.
pub fn browser(action: &str, v: &Value) -> Human {
    let mut h = Human::out(match action {
        "start" | "open" if v["message"].as_str().is_some_and(|m| m.contains("already")) => {
            message_or_json(v)
        }
        "start" | "open" => format!(
            "browser {} started (pid {}) through proxy {}: {}\n",
            cell(&v["id"]),
            cell(&v["pid"]),
            cell(&v["proxy_id"]),
            page_line(&v["page"], &v["url"])
        ),
        "status" => browser_status(v),
        "list" => browser_list(v),
        "navigate" | "reload" | "back" => {
            format!("{}\n", page_line(&v["page"], &Value::Null))
        }
        "click" | "hover" | "fill" | "select" | "upload" | "press" => hit(action, v),
        "screenshot" => format!("{}\n", escape(v["path"].as_str().unwrap_or("-"))),
        "wait_for" => format!("met after {} ms\n", cell(&v["waited_ms"])),
        "console" => console(v),
        _ => message_or_json(v),
    });
    if let Some(w) = v["warning"].as_str() {
        h.stderr = format!("agnt browser: {}\n", escape(w));
    }
    h
}

/// `URL — title` of a page (`{url, title}`), or `fallback` when there is none.
fn page_line(page: &Value, fallback: &Value) -> String {
    match page["url"].as_str() {
        Some(_) => match page["title"].as_str().filter(|t| !t.is_empty()) {
            Some(t) => format!("{} — {}", cell(&page["url"]), cell(&Value::from(t))),
            None => cell(&page["url"]),
        },
        None => cell(fallback),
    }
}

fn browser_status(v: &Value) -> String {
    let state = if v["running"] == false {
        "exited"
    } else {
        "running"
    };
    let mut out = format!("{}: {state}, pid {}\n", cell(&v["id"]), cell(&v["pid"]));
    let vp = &v["viewport"];
    out.push_str(&fields(&[
        ("page", page_line(&v["page"], &Value::Null)),
        ("proxy", cell(&v["proxy_id"])),
        (
            "viewport",
            if vp.is_object() {
                format!("{}x{}", cell(&vp["width"]), cell(&vp["height"]))
            } else {
                "-".into()
            },
        ),
        (
            "headless",
            if v["headless"] == false { "no" } else { "yes" }.into(),
        ),
        ("profile", cell(&v["profile"])),
        ("console", format!("cursor {}", cell(&v["console_cursor"]))),
        ("uptime", format!("{}s", cell(&v["uptime_s"]))),
    ]));
    out
}

fn browser_list(v: &Value) -> String {
    if v["count"] == 0 {
        return "no browsers (start one: agnt browser start --url URL)\n".into();
    }
    let cols: &[&str] = if v["global"] == true {
        &["id", "proxy_id", "pid", "running", "path"]
    } else {
        &["id", "proxy_id", "pid", "running"]
    };
    let heads: &[&str] = if v["global"] == true {
        &["ID", "PROXY", "PID", "RUNNING", "PROJECT"]
    } else {
        &["ID", "PROXY", "PID", "RUNNING"]
    };
    table(heads, &rows(v, "browsers", cols))
}

/// What an element action hit: `clicked <button> #buy "Buy now" (1 visible match)`.
fn hit(action: &str, v: &Value) -> String {
    let h = &v["hit"];
    if !h.is_object() {
        return message_or_json(v);
    }
    if action == "press" {
        // The tool's message names the key and where it went.
        return message_or_json(v);
    }
    let verb = match action {
        "click" => "clicked",
        "hover" => "hovered",
        "fill" => "filled",
        "select" => "selected in",
        _ => "uploaded to",
    };
    let n = v["matched"].as_u64().unwrap_or(1);
    let mut out = format!("{verb} <{}>", cell(&h["tag"]));
    if let Some(s) = h["selector"].as_str().filter(|s| !s.is_empty()) {
        out.push_str(&format!(" {}", cell(&Value::from(s))));
    }
    if let Some(t) = h["text"].as_str().filter(|t| !t.is_empty()) {
        out.push_str(&format!(" \"{}\"", cell(&Value::from(cut(t, 60)))));
    }
    out.push_str(&format!(
        " ({})\n",
        plural(n, "visible match", "visible matches")
    ));
    if n > 1 {
        out.push_str("  the first was used; narrow it with --selector\n");
    }
    out
}

fn console(v: &Value) -> String {
    let mut out = String::new();
    for e in v["entries"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{} {:<7} {}\n",
            short_time(&e["time"]),
            cell(&e["level"]),
            cell(&e["text"])
        ));
    }
    if out.is_empty() {
        out.push_str("no console messages\n");
    }
    out.push_str(&format!(
        "newer ones: agnt browser console --since {}\n",
        cell(&v["cursor"])
    ));
    out
}

/// `agnt snapshot ACTION`.
pub fn snapshot(action: &str, v: &Value) -> Human {
    match action {
        "compare" => snapshot_compare(v),
        "baseline" | "get" => Human::out(snapshot_pages(v)),
        "list" => Human::out(if v["count"] == 0 {
            "no snapshots (take one: agnt snapshot baseline NAME [PAGE…])\n".into()
        } else {
            table(
                &["NAME", "CREATED", "PAGES"],
                &rows(v, "snapshots", &["name", "created", "pages"]),
            )
        }),
        _ => Human::out(message_or_json(v)),
    }
}

fn snapshot_pages(v: &Value) -> String {
    let mut out = match v["message"].as_str() {
        Some(m) => format!("{}\n", escape(m)),
        None => format!("{} (taken {})\n", cell(&v["name"]), cell(&v["created"])),
    };
    for p in v["pages"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  {}x{}  {}\n",
            cell(&p["page"]),
            cell(&p["width"]),
            cell(&p["height"]),
            cell(&p["file"])
        ));
    }
    out
}

fn snapshot_compare(v: &Value) -> Human {
    let pass = v["pass"] == true;
    let mut out = format!(
        "{}: {} (threshold {})\n",
        cell(&v["name"]),
        if pass { "PASS" } else { "FAIL" },
        percent(&v["diff_threshold"])
    );
    for p in v["pages"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {}  {} changed",
            if p["pass"] == true { "ok  " } else { "FAIL" },
            cell(&p["page"]),
            percent(&p["changed_fraction"])
        ));
        let regions: Vec<String> = p["regions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}x{} at {},{}",
                    cell(&r["width"]),
                    cell(&r["height"]),
                    cell(&r["x"]),
                    cell(&r["y"])
                )
            })
            .collect();
        if !regions.is_empty() {
            out.push_str(&format!(
                " in {}: {}",
                plural(regions.len() as u64, "region", "regions"),
                regions.join(", ")
            ));
        }
        out.push('\n');
        if p["pass"] != true || p["changed_fraction"].as_f64().is_some_and(|f| f > 0.0) {
            out.push_str(&format!("       diff: {}\n", cell(&p["diff_path"])));
        }
    }
    Human::out(out)
}

/// A fraction as a percentage: `0.0123` → `1.23%`.
fn percent(v: &Value) -> String {
    match v.as_f64() {
        Some(f) => {
            let p = f * 100.0;
            if p == 0.0 || p >= 0.01 {
                format!("{}%", trim(format!("{p:.2}")))
            } else {
                "<0.01%".into()
            }
        }
        None => cell(v),
    }
}

/// `1.50` → `1.5`, `2.00` → `2`.
fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
