//! Renderings of what a proxy saw and what ran in its page: `proxy exec` (the value, the JS
//! error, or where a cut result was saved), `proxylog` (entries one per line, summary, stats, one
//! entry in full) and `currentpage` (sessions, one session). All of this text comes from pages
//! and the network, so every string goes through `escape`/`cell`.

use serde_json::Value;

use super::{Human, cell, cut, escape, fields, json, plural, table};

/// Widest one-line summary of an entry, in characters.
const LINE: usize = 160;

/// `proxy exec`: the value (strings as they are, anything else as JSON), the API overview
/// (`--api`), one function's doc (`--describe`), or the JS error on stderr.
pub fn exec(args: &Value, v: &Value) -> Human {
    if args["help"] == true {
        return Human::out(api(v));
    }
    if args.get("describe").is_some() {
        return Human::out(format!(
            "{}\n\n{}\n\n(defined in {})\n",
            cell(&v["signature"]),
            escape(v["description"].as_str().unwrap_or("")),
            cell(&v["defined_in"])
        ));
    }
    if v["success"] != true {
        return Human {
            stdout: String::new(),
            stderr: format!(
                "agnt proxy exec: JavaScript error: {}\n",
                escape(&js_error(v["error"].as_str().unwrap_or("unknown error"))).trim_end()
            ),
        };
    }
    let mut h = Human::out(match &v["result"] {
        Value::String(s) => escape(s),
        other => json(other).trim_end().to_string(),
    });
    h.stdout.push('\n');
    if v["result_truncated"] == true {
        h.stderr = match v["result_file"].as_str() {
            Some(file) => format!(
                "agnt proxy exec: the result is {} bytes of JSON, over the budget: above are its first {} bytes; the whole result is in {}\n",
                cell(&v["result_bytes"]),
                v["result"].as_str().map_or(0, str::len),
                escape(file)
            ),
            None => format!(
                "agnt proxy exec: {}\n",
                escape(v["note"].as_str().unwrap_or("result cut"))
            ),
        };
    }
    h
}

/// A page's error text without the message repeated as the stack's first line.
fn js_error(e: &str) -> String {
    let mut lines = e.lines();
    match (lines.next(), lines.next()) {
        (Some(first), Some(second)) if first == second => e[first.len() + 1..].to_string(),
        _ => e.to_string(),
    }
}

fn api(v: &Value) -> String {
    let mut out = format!(
        "{}: {} (run one with `agnt proxy exec ID CODE`; `--describe NAME` documents one)\n",
        cell(&v["api"]),
        plural(v["count"].as_u64().unwrap_or(0), "function", "functions")
    );
    for f in v["functions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}\n      {}\n",
            cell(&f["signature"]),
            cell(&f["summary"])
        ));
    }
    out
}

/// `proxylog` query: one line per entry, oldest first.
pub fn log_entries(v: &Value) -> String {
    let entries = v["entries"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if entries.is_empty() {
        return "no entries\n".into();
    }
    let mut out: String = entries.iter().map(log_line).collect();
    if v["truncated"] == true {
        out.push_str(&format!(
            "(the newest {} of {} matching entries; --limit N shows more)\n",
            entries.len(),
            cell(&v["total_matched"])
        ));
    }
    out
}

/// One log entry as `TIME  ID  SUMMARY`.
pub fn log_line(e: &Value) -> String {
    format!(
        "{}  {:<16}  {}\n",
        clock(&e["timestamp"]),
        cell(&e["id"]),
        event_summary(e["type"].as_str().unwrap_or(""), &e["data"])
    )
}

/// `proxylog --action summary`.
pub fn log_summary(v: &Value) -> String {
    let mut out = format!(
        "{} from {} to {}{}\n",
        plural(v["total_entries"].as_u64().unwrap_or(0), "entry", "entries"),
        clock(&v["time_range"]["start"]),
        clock(&v["time_range"]["end"]),
        counts(&v["entries_by_type"], " (", ")"),
    );
    out.push_str(&fields(&[
        (
            "http",
            format!(
                "{}, {} failed{}{}",
                plural(v["http_count"].as_u64().unwrap_or(0), "request", "requests"),
                cell(&v["http_failures"]),
                counts(&v["http_by_status"], "; ", ""),
                counts(&v["http_by_method"], "; ", "")
            ),
        ),
        (
            "errors",
            format!(
                "{} ({} distinct)",
                cell(&v["error_count"]),
                v["unique_errors"].as_array().map_or(0, Vec::len)
            ),
        ),
        (
            "performance",
            format!(
                "{} entries, average load {} ms",
                cell(&v["performance_count"]),
                cell(&v["avg_load_time_ms"])
            ),
        ),
        (
            "interactions",
            format!(
                "{}, mutations {}, other {}",
                cell(&v["interaction_count"]),
                cell(&v["mutation_count"]),
                cell(&v["other_count"])
            ),
        ),
    ]));
    out.push_str(&section("Distinct errors", &v["unique_errors"]));
    // A section asked for with --detail replaces its "recent" excerpt.
    if v.get("errors").is_none() {
        out.push_str(&section("Recent errors", &v["recent_errors"]));
    }
    if v.get("http_requests").is_none() {
        out.push_str(&section("Recent requests", &v["recent_http"]));
    }
    for (title, key) in [
        ("Errors", "errors"),
        ("Requests", "http_requests"),
        ("Performance", "performance"),
        ("Interactions", "interactions"),
        ("Mutations", "mutations"),
        ("Other", "other"),
    ] {
        out.push_str(&section(title, &v[key]));
    }
    out
}

/// `proxylog --action stats`.
pub fn log_stats(v: &Value) -> String {
    format!(
        "{} in the log (capacity {}); {} logged since the last clear, {} dropped; last seq {}\n",
        plural(
            v["available_entries"].as_u64().unwrap_or(0),
            "entry",
            "entries"
        ),
        cell(&v["max_size"]),
        cell(&v["total_entries"]),
        cell(&v["dropped"]),
        cell(&v["last_seq"])
    )
}

/// `proxylog --action get`: one entry in full.
pub fn log_entry(v: &Value) -> String {
    let d = &v["data"];
    let mut out = format!(
        "{} {} at {}{}\n  {}\n",
        cell(&v["type"]),
        cell(&v["id"]),
        cell(&v["timestamp"]),
        v["page_id"]
            .as_str()
            .map(|p| format!(", page {}", cell(&Value::from(p))))
            .unwrap_or_default(),
        event_summary(v["type"].as_str().unwrap_or(""), d)
    );
    if v["type"] != "http" {
        if let Some(stack) = d["stack"].as_str().filter(|s| !s.is_empty()) {
            out.push_str(&format!("stack:\n{}\n", escape(stack).trim_end()));
        }
        out.push_str(&json(d));
        return out;
    }
    if let Some(e) = d["error"].as_str() {
        out.push_str(&format!("  error: {}\n", escape(e)));
    }
    for (title, headers, body) in [
        ("Request", "request_headers", "request_body"),
        ("Response", "response_headers", "response_body"),
    ] {
        out.push_str(&format!("\n{title} headers:\n"));
        for (k, val) in d[headers].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "  {}: {}\n",
                cell(&Value::from(k.as_str())),
                cell(val)
            ));
        }
        let b = &d[body];
        if b["size"].as_u64().unwrap_or(0) > 0 {
            out.push_str(&format!(
                "{title} body ({} bytes, {}{}):\n{}\n",
                cell(&b["size"]),
                cell(&b["encoding"]),
                if b["truncated"] == true { ", cut" } else { "" },
                escape(b["text"].as_str().unwrap_or("")).trim_end()
            ));
        }
    }
    out
}

/// `currentpage` list: the page sessions of the last minutes.
pub fn pages(args: &Value, v: &Value) -> String {
    if v["count"] == 0 {
        return format!(
            "no page sessions in the last 5 minutes: open the proxy's URL in a browser (`agnt proxy status {}` shows it)\n",
            cell(&args["proxy_id"])
        );
    }
    let rows: Vec<Vec<String>> = v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                cell(&s["id"]),
                cut(&cell(&s["page_title"]), 40),
                cut(&cell(&s["url"]), 60),
                cell(&s["error_count"]),
                cell(&s["request_count"]),
                cell(&s["interaction_count"]),
                clock(&s["last_activity"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "TITLE",
            "URL",
            "ERRORS",
            "REQUESTS",
            "INTERACTIONS",
            "LAST ACTIVITY",
        ],
        &rows,
    );
    out.push_str(&format!(
        "(`agnt currentpage {} --action summary --session-id ID` for one page)\n",
        cell(&args["proxy_id"])
    ));
    out
}

/// `currentpage --action summary|get`: one page session.
pub fn page(v: &Value) -> String {
    let p = &v["performance"];
    let mut out = format!(
        "{}: {} ({})\n",
        cell(&v["id"]),
        cell(&v["page_title"]),
        cell(&v["url"])
    );
    out.push_str(&fields(&[
        (
            "time",
            format!(
                "{} to {}{}",
                clock(&v["start_time"]),
                clock(&v["last_activity"]),
                if v["active"] == true { " (active)" } else { "" }
            ),
        ),
        (
            "counts",
            format!(
                "requests {}, errors {}, interactions {}, mutations {}, resources {}",
                cell(&v["request_count"]),
                cell(&v["error_count"]),
                cell(&v["interaction_count"]),
                cell(&v["mutation_count"]),
                cell(&v["resource_count"])
            ),
        ),
        (
            "load",
            if p.is_object() {
                performance(p)
            } else {
                "-".into()
            },
        ),
        ("navigations", list(&v["navigations"])),
    ]));
    out.push_str(&section("Distinct errors", &v["unique_errors"]));
    out.push_str(&section("Errors", &v["errors"]));
    if v.get("interactions").is_none() {
        out.push_str(&section("Recent interactions", &v["recent_interactions"]));
    }
    out.push_str(&section("Interactions", &v["interactions"]));
    if v.get("mutations").is_none() {
        out.push_str(&section("Recent mutations", &v["recent_mutations"]));
    }
    out.push_str(&section("Mutations", &v["mutations"]));
    out.push_str(&section("Resources", &v["resources"]));
    out
}

/// A titled list of items (entries, errors, requests, events), one line each; empty when there
/// are none.
fn section(title: &str, items: &Value) -> String {
    let Some(items) = items.as_array().filter(|a| !a.is_empty()) else {
        return String::new();
    };
    let mut out = format!("{title}:\n");
    for it in items {
        let line = if it.get("data").is_some() {
            log_line(it)
        } else if it.get("method").is_some() {
            format!("{}  {}\n", cell(&it["id"]), event_summary("http", it))
        } else if let Some(n) = it.get("count").filter(|_| it.get("message").is_some()) {
            format!("{}× {}\n", cell(n), event_summary("error", it))
        } else if it.get("message").is_some() {
            match it.get("timestamp") {
                Some(t) => format!("{}  {}\n", clock(t), event_summary("error", it)),
                None => event_summary("error", it) + "\n",
            }
        } else if it.get("event_type").is_some() {
            event_summary("interaction", it) + "\n"
        } else if it.get("mutation_type").is_some() {
            event_summary("mutation", it) + "\n"
        } else {
            cut(&cell(it), LINE) + "\n"
        };
        out.push_str(&format!("  {line}"));
    }
    out
}

/// One line saying what an entry of type `kind` with data `d` is about.
fn event_summary(kind: &str, d: &Value) -> String {
    let s = |k: &str| cell(&d[k]);
    let text = match kind {
        "http" => {
            let has_error = d.get("error").is_some_and(|e| !e.is_null());
            let status = match d["status_code"].as_u64().unwrap_or(0) {
                0 => "failed".to_string(),
                // The proxy's own answers (400, 408, 502-504) carry their error; any other
                // status with an error is the upstream's, cut short.
                400 | 408 | 502..=504 => s("status_code"),
                code if has_error => format!("{code} (truncated)"),
                _ => s("status_code"),
            };
            let mut t = format!(
                "{} {status} {} ({} ms)",
                s("method"),
                s("url"),
                s("duration_ms")
            );
            if d.get("error").is_some_and(|e| !e.is_null()) {
                t.push_str(&format!(" error: {}", s("error")));
            }
            t
        }
        "error" => {
            let at = match d.get("location").and_then(Value::as_str) {
                Some(l) if !l.is_empty() => cell(&Value::from(l)),
                _ if d.get("source").is_some() => {
                    format!("{}:{}:{}", s("source"), s("lineno"), s("colno"))
                }
                _ => String::new(),
            };
            if at.is_empty() {
                s("message")
            } else {
                format!("{} at {at}", s("message"))
            }
        }
        "custom" => format!("[{}] {}", s("level"), s("message")),
        "performance" => performance(d),
        "execution" if d["success"] == true => match &d["result"] {
            Value::Null => format!("{} → null", s("code")),
            _ => format!("{} → {}", s("code"), s("result")),
        },
        "execution" => {
            let error = d["error"].as_str().unwrap_or("");
            let first = error.lines().next().unwrap_or("");
            format!("{} → error: {}", s("code"), cell(&Value::from(first)))
        }
        "interaction" => format!("{} {} {}", s("event_type"), s("target"), s("text")),
        "mutation" => format!("{} {} ({})", s("mutation_type"), s("target"), s("count")),
        _ => match d.get("message") {
            Some(m) => cell(m),
            None => cell(d),
        },
    };
    cut(&text, LINE)
}

/// Page timings: `load`, `vitals` or whatever metrics are present.
fn performance(d: &Value) -> String {
    let names = [
        ("load_time_ms", "load", " ms"),
        ("first_contentful_paint_ms", "FCP", " ms"),
        ("ttfb_ms", "TTFB", " ms"),
        ("lcp_ms", "LCP", " ms"),
        ("cls", "CLS", ""),
        ("long_tasks", "long tasks", ""),
    ];
    let parts: Vec<String> = names
        .iter()
        .filter(|(k, _, _)| d.get(*k).is_some_and(|v| !v.is_null()))
        .map(|(k, name, unit)| format!("{name} {}{unit}", cell(&d[*k])))
        .collect();
    if parts.is_empty() {
        return cut(&cell(d), LINE);
    }
    parts.join(", ")
}

/// `{"a": 1, "b": 2}` as `PRE a 1, b 2 POST`; empty for an empty object.
fn counts(v: &Value, pre: &str, post: &str) -> String {
    match v.as_object().filter(|m| !m.is_empty()) {
        Some(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, n)| format!("{} {}", cell(&Value::from(k.as_str())), cell(n)))
                .collect();
            format!("{pre}{}{post}", parts.join(", "))
        }
        None => String::new(),
    }
}

fn list(v: &Value) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    }
}

/// The time of day of an RFC 3339 timestamp (`16:53:23.225`); other values as cells.
fn clock(v: &Value) -> String {
    match v.as_str() {
        Some(t) if t.as_bytes().get(10) == Some(&b'T') => match t.get(11..23) {
            Some(time) => cell(&Value::from(time)),
            None => cell(v),
        },
        _ => cell(v),
    }
}
