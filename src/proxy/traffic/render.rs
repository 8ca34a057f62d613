//! How the traffic log is shown to agents: the compact form of an entry (queries), the full
//! form (headers and captured bodies, for `get`), and the summary (counts, unique errors with
//! short stacks, the newest few of each kind). Pure functions over `Entry`; no locks here.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use serde_json::{Map, Value, json};

use super::{Entry, EntryBody, HttpRecord};
use crate::{
    proxy::http::Header,
    util::{base64::base64, time::rfc3339},
};

fn headers_json(h: &[Header]) -> Value {
    let mut m = Map::new();
    for (n, v) in h {
        let v = String::from_utf8_lossy(v).into_owned();
        match m.get_mut(n) {
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(&v);
            }
            _ => {
                m.insert(n.clone(), Value::String(v));
            }
        }
    }
    Value::Object(m)
}

fn body_json(body: &[u8], truncated: bool) -> Value {
    match std::str::from_utf8(body) {
        Ok(s) => {
            json!({"text": s, "encoding": "utf-8", "size": body.len(), "truncated": truncated})
        }
        Err(_) => {
            json!({"text": base64(body), "encoding": "base64", "size": body.len(), "truncated": truncated})
        }
    }
}

fn envelope(e: &Entry, data: Value) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(e.seq));
    m.insert("id".into(), json!(e.id));
    m.insert("type".into(), json!(e.kind));
    m.insert("timestamp".into(), json!(rfc3339(e.time)));
    if let Some(p) = &e.page_id {
        m.insert("page_id".into(), json!(p));
    }
    m.insert("data".into(), data);
    Value::Object(m)
}

fn http_compact(e: &Entry, h: &HttpRecord) -> Value {
    let mut d = json!({
        "id": e.id,
        "method": h.method,
        "url": h.url,
        "status_code": h.status,
        "duration_ms": (h.duration_ms * 1000.0).round() / 1000.0,
    });
    if let Some(err) = &h.error {
        d["error"] = json!(err);
    }
    if h.injected {
        d["injected"] = json!(true);
    }
    d
}

/// The compact form used by queries: no headers or bodies.
pub fn compact(e: &Entry) -> Value {
    match &e.body {
        EntryBody::Http(h) => envelope(e, http_compact(e, h)),
        EntryBody::Event(v) => envelope(e, v.clone()),
    }
}

/// The full form used by `get`.
pub fn full(e: &Entry) -> Value {
    match &e.body {
        EntryBody::Http(h) => {
            let mut d = http_compact(e, h);
            d["request_headers"] = headers_json(&h.request_headers);
            d["response_headers"] = headers_json(&h.response_headers);
            d["request_body"] = body_json(&h.request_body, h.request_truncated);
            d["response_body"] = body_json(&h.response_body, h.response_truncated);
            envelope(e, d)
        }
        EntryBody::Event(v) => envelope(e, v.clone()),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// Keeps the first 3 lines of a stack, each ≤ 120 chars, and says how many were dropped.
pub fn compact_stack(stack: &str) -> String {
    let lines: Vec<&str> = stack
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out: Vec<String> = lines.iter().take(3).map(|l| cut(l, 120)).collect();
    if lines.len() > 3 {
        out.push(format!("... ({} more lines)", lines.len() - 3));
    }
    out.join("\n")
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn error_location(d: &Value) -> String {
    let src = str_field(d, "source");
    let base = src.rsplit('/').next().unwrap_or(src);
    let line = d.get("lineno").and_then(Value::as_u64).unwrap_or(0);
    let col = d.get("colno").and_then(Value::as_u64).unwrap_or(0);
    if base.is_empty() {
        String::new()
    } else {
        format!("{base}:{line}:{col}")
    }
}

fn compact_error(e: &Entry, d: &Value) -> Value {
    json!({
        "id": e.id,
        "timestamp": rfc3339(e.time),
        "message": cut(str_field(d, "message"), 500),
        "location": error_location(d),
        "stack": compact_stack(str_field(d, "stack")),
        "url": cut(str_field(d, "url"), 100),
    })
}

pub(super) fn summarize(all: &[Arc<Entry>], detail: &[String], limit: usize) -> Value {
    let wants = |s: &str| detail.iter().any(|d| d.eq_ignore_ascii_case(s));
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_method: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unique: HashMap<String, (u64, Value)> = HashMap::new();
    let mut errors: Vec<(&Entry, &Value)> = Vec::new();
    let mut http: Vec<(&Entry, &HttpRecord)> = Vec::new();
    let mut perf: Vec<(&Entry, &Value)> = Vec::new();
    let mut interactions: Vec<(&Entry, &Value)> = Vec::new();
    let mut mutations: Vec<(&Entry, &Value)> = Vec::new();
    let mut other: Vec<(&Entry, &Value)> = Vec::new();
    let mut load_sum = 0.0;
    let mut load_n = 0u64;
    let mut http_failures = 0u64;
    for e in all {
        *by_type.entry(e.kind.as_str()).or_default() += 1;
        match &e.body {
            EntryBody::Http(h) => {
                let class = if h.status == 0 {
                    "failed".to_string()
                } else {
                    format!("{}xx", h.status / 100)
                };
                *by_status.entry(class).or_default() += 1;
                *by_method.entry(h.method.as_str()).or_default() += 1;
                if h.error.is_some() || h.status >= 500 {
                    http_failures += 1;
                }
                http.push((e, h));
            }
            EntryBody::Event(d) => match e.kind.as_str() {
                "error" => {
                    let key: String = str_field(d, "message").chars().take(100).collect();
                    let slot = unique
                        .entry(key)
                        .or_insert_with(|| (0, compact_error(e, d)));
                    slot.0 += 1;
                    errors.push((e, d));
                }
                "performance" => {
                    if let Some(t) = d.get("load_time_ms").and_then(Value::as_f64) {
                        load_sum += t;
                        load_n += 1;
                    }
                    perf.push((e, d));
                }
                "interaction" => interactions.push((e, d)),
                "mutation" => mutations.push((e, d)),
                _ => other.push((e, d)),
            },
        }
    }
    let mut uniq: Vec<(u64, Value)> = unique.into_values().collect();
    uniq.sort_by_key(|u| std::cmp::Reverse(u.0));
    let unique_errors: Vec<Value> = uniq
        .into_iter()
        .take(10)
        .map(|(n, v)| json!({"message": v["message"], "location": v["location"], "count": n}))
        .collect();
    let tail = |n: usize, len: usize| len.saturating_sub(n);
    let mut out = json!({
        "total_entries": all.len(),
        "entries_by_type": by_type,
        "time_range": {
            "start": all.first().map(|e| rfc3339(e.time)),
            "end": all.last().map(|e| rfc3339(e.time)),
        },
        "error_count": errors.len(),
        "unique_errors": unique_errors,
        "recent_errors": errors[tail(5, errors.len())..].iter().map(|(e, d)| compact_error(e, d)).collect::<Vec<_>>(),
        "http_count": http.len(),
        "http_failures": http_failures,
        "http_by_status": by_status,
        "http_by_method": by_method,
        "recent_http": http[tail(5, http.len())..].iter().map(|(e, h)| http_compact(e, h)).collect::<Vec<_>>(),
        "performance_count": perf.len(),
        "avg_load_time_ms": if load_n > 0 { Some((load_sum / load_n as f64).round()) } else { None },
        "interaction_count": interactions.len(),
        "mutation_count": mutations.len(),
        "other_count": other.len(),
        "detail_sections": detail,
        "detail_limit": limit,
    });
    let section = |v: &[(&Entry, &Value)]| -> Vec<Value> {
        v[tail(limit, v.len())..]
            .iter()
            .map(|(e, _)| compact(e))
            .collect()
    };
    if wants("errors") {
        out["errors"] = json!(
            errors[tail(limit, errors.len())..]
                .iter()
                .map(|(e, d)| compact_error(e, d))
                .collect::<Vec<_>>()
        );
    }
    if wants("http") {
        out["http_requests"] = json!(
            http[tail(limit, http.len())..]
                .iter()
                .map(|(e, h)| http_compact(e, h))
                .collect::<Vec<_>>()
        );
    }
    if wants("performance") {
        out["performance"] = json!(section(&perf));
    }
    if wants("interactions") {
        out["interactions"] = json!(section(&interactions));
    }
    if wants("mutations") {
        out["mutations"] = json!(section(&mutations));
    }
    if wants("other") {
        out["other"] = json!(section(&other));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::TrafficLogger;
    use super::*;
    use crate::proxy::LogQuery;

    fn http(method: &str, url: &str, status: u16) -> HttpRecord {
        HttpRecord {
            method: method.into(),
            url: url.into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn summary_is_compact() {
        let log = TrafficLogger::new(100);
        let stack = (0..10)
            .map(|i| format!("at f{i} (http://x/app.js:{i}:1) {}", "x".repeat(200)))
            .collect::<Vec<_>>()
            .join("\n");
        for _ in 0..3 {
            log.push_event("error", None, json!({"message": "boom", "source": "http://x/app.js", "lineno": 3, "colno": 7, "stack": stack}));
        }
        log.push_event("performance", None, json!({"load_time_ms": 100.0}));
        log.push_event("performance", None, json!({"load_time_ms": 200.0}));
        log.push_http(None, http("GET", "/", 502));
        let s = log
            .summary(&LogQuery::default(), &["errors".into()], 2)
            .unwrap();
        assert_eq!(s["error_count"], 3);
        assert_eq!(s["unique_errors"][0]["count"], 3);
        assert_eq!(s["unique_errors"][0]["location"], "app.js:3:7");
        assert_eq!(s["avg_load_time_ms"], 150.0);
        assert_eq!(s["http_by_status"]["5xx"], 1);
        assert_eq!(s["errors"].as_array().unwrap().len(), 2);
        let st = s["recent_errors"][0]["stack"].as_str().unwrap();
        assert_eq!(st.lines().count(), 4);
        assert!(st.lines().all(|l| l.chars().count() <= 121));
        assert!(s.to_string().len() < 4000);
    }

    #[test]
    fn full_form_has_headers_and_bodies() {
        let log = TrafficLogger::new(10);
        let mut rec = http("POST", "/x", 201);
        rec.request_headers = vec![
            ("Accept".into(), b"a".to_vec()),
            ("Accept".into(), b"b".to_vec()),
        ];
        rec.request_body = b"hi".to_vec();
        rec.response_body = vec![0xff, 0x00];
        log.push_http(Some("p".into()), rec);
        let v = log.get("req-1").unwrap();
        assert_eq!(v["page_id"], "p");
        assert_eq!(v["data"]["request_headers"]["Accept"], "a, b");
        assert_eq!(v["data"]["request_body"]["encoding"], "utf-8");
        assert_eq!(v["data"]["response_body"]["encoding"], "base64");
        let c = compact(&log.matching(&LogQuery::default()).unwrap()[0]);
        assert!(c["data"].get("request_headers").is_none());
        assert_eq!(c["data"]["status_code"], 201);
    }
}
