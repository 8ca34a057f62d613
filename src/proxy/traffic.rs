//! The traffic log of one proxy: a bounded ring of entries (HTTP exchanges and browser events)
//! behind one `parking_lot::RwLock`, with queries in time order, stats, lookup by id and a
//! compact summary for agents.
//!
//! Writers hold the lock only to push an `Arc<Entry>`; readers clone the `Arc`s they need and
//! format outside the lock.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::SystemTime,
};

use parking_lot::RwLock;
use serde_json::{Map, Value, json};

use super::{LogQuery, http::Header};
use crate::{
    Result,
    util::{
        base64::base64,
        time::{parse_time, rfc3339},
    },
};

/// Bytes of each body kept in an HTTP entry.
pub const BODY_CAPTURE: usize = 10 * 1024;
/// Default number of entries a query returns.
pub const DEFAULT_LIMIT: usize = 100;

/// Entry types the proxy itself and the browser script produce.
pub const ENTRY_TYPES: &[&str] = &[
    "http",
    "error",
    "performance",
    "custom",
    "interaction",
    "mutation",
    "panel_message",
    "screenshot",
    "execution",
    "response",
];

/// One captured HTTP exchange.
#[derive(Debug, Clone, Default)]
pub struct HttpRecord {
    pub method: String,
    /// Path and query as received.
    pub url: String,
    /// 0 when no response was produced.
    pub status: u16,
    pub duration_ms: f64,
    pub request_headers: Vec<Header>,
    pub response_headers: Vec<Header>,
    pub request_body: Vec<u8>,
    pub request_truncated: bool,
    pub response_body: Vec<u8>,
    pub response_truncated: bool,
    /// Upstream failure, in words.
    pub error: Option<String>,
    /// The agnt script was injected into this response.
    pub injected: bool,
}

/// What an entry holds.
#[derive(Debug, Clone)]
pub enum EntryBody {
    Http(Box<HttpRecord>),
    /// A browser or proxy event: a JSON object.
    Event(Value),
}

/// One log entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Monotonic per proxy, starting at 1; never reused, also not after `clear`.
    pub seq: u64,
    pub id: String,
    pub kind: String,
    pub time: SystemTime,
    pub page_id: Option<String>,
    pub body: EntryBody,
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    max: usize,
    /// Entries ever written (since the last clear).
    total: u64,
    next_seq: u64,
}

/// The bounded, thread-safe traffic log.
pub struct TrafficLogger {
    ring: RwLock<Ring>,
    tap: std::sync::OnceLock<Tap>,
}

/// Sees every entry right after it is logged, on the thread that logged it (the proxy's event
/// loop): it must not block.
pub type Tap = Box<dyn Fn(&Arc<Entry>) + Send + Sync>;

impl std::fmt::Debug for TrafficLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficLogger")
            .field("ring", &self.ring)
            .field("tapped", &self.tap.get().is_some())
            .finish()
    }
}

/// Appends bytes to a capture buffer, keeping at most [`BODY_CAPTURE`]; returns whether it cut.
pub fn capture(buf: &mut Vec<u8>, truncated: &mut bool, data: &[u8]) {
    let room = BODY_CAPTURE.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

impl TrafficLogger {
    /// A log holding at most `max` entries (at least 1).
    pub fn new(max: usize) -> TrafficLogger {
        let max = max.max(1);
        TrafficLogger {
            ring: RwLock::new(Ring {
                entries: VecDeque::with_capacity(max.min(4096)),
                max,
                total: 0,
                next_seq: 1,
            }),
            tap: std::sync::OnceLock::new(),
        }
    }

    /// Installs the tap (once; later calls are ignored).
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    /// Adds an entry; returns its seq and id (`req-N` for http, `TYPE-N` otherwise).
    pub fn push(&self, kind: &str, page_id: Option<String>, body: EntryBody) -> (u64, String) {
        let time = SystemTime::now();
        let mut ring = self.ring.write();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        ring.total += 1;
        let id = if kind == "http" {
            format!("req-{seq}")
        } else {
            format!("{kind}-{seq}")
        };
        let entry = Arc::new(Entry {
            seq,
            id: id.clone(),
            kind: kind.to_string(),
            time,
            page_id,
            body,
        });
        if ring.entries.len() >= ring.max {
            ring.entries.pop_front();
        }
        ring.entries.push_back(entry.clone());
        drop(ring);
        if let Some(tap) = self.tap.get() {
            tap(&entry);
        }
        (seq, id)
    }

    /// Adds a browser/proxy event with a JSON `data` object.
    pub fn push_event(&self, kind: &str, page_id: Option<String>, data: Value) -> (u64, String) {
        self.push(kind, page_id, EntryBody::Event(data))
    }

    /// Adds an HTTP exchange.
    pub fn push_http(&self, page_id: Option<String>, rec: HttpRecord) -> (u64, String) {
        self.push("http", page_id, EntryBody::Http(Box::new(rec)))
    }

    /// `{total_entries, available_entries, max_size, dropped}`.
    pub fn stats(&self) -> Value {
        let ring = self.ring.read();
        let available = ring.entries.len() as u64;
        json!({
            "total_entries": ring.total,
            "available_entries": available,
            "max_size": ring.max,
            "dropped": ring.total - available,
            "last_seq": ring.next_seq - 1,
        })
    }

    /// Drops every entry (seq keeps counting).
    pub fn clear(&self) {
        let mut ring = self.ring.write();
        ring.entries.clear();
        ring.total = 0;
    }

    /// Entries matching `q` (all filters except `limit`), oldest first.
    pub fn matching(&self, q: &LogQuery) -> Result<Vec<Arc<Entry>>> {
        let f = Filter::new(q)?;
        let ring = self.ring.read();
        Ok(ring
            .entries
            .iter()
            .filter(|e| f.matches(e))
            .cloned()
            .collect())
    }

    /// `{entries, count, total_matched, ...stats}`: the newest `limit` matches, in time order.
    pub fn query(&self, q: &LogQuery) -> Result<Value> {
        let all = self.matching(q)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        let skip = all.len().saturating_sub(limit);
        let entries: Vec<Value> = all[skip..].iter().map(|e| compact(e)).collect();
        let last_seq = entries.last().and_then(|e| e["seq"].as_u64());
        Ok(json!({
            "entries": entries,
            "count": all.len() - skip,
            "total_matched": all.len(),
            "truncated": skip > 0,
            "last_seq": last_seq,
        }))
    }

    /// One entry in full (headers and bodies).
    pub fn get(&self, id: &str) -> Option<Value> {
        let e = {
            let ring = self.ring.read();
            ring.entries.iter().find(|e| e.id == id).cloned()
        }?;
        Some(full(&e))
    }

    /// Compact summary over the entries matching `q`; `detail` sections listed in full
    /// (at most `limit` newest each).
    pub fn summary(&self, q: &LogQuery, detail: &[String], limit: usize) -> Result<Value> {
        let all = self.matching(q)?;
        Ok(summarize(&all, detail, limit.clamp(1, 100)))
    }
}

struct Filter {
    types: Vec<String>,
    methods: Vec<String>,
    url_pattern: Option<String>,
    status_codes: Vec<u16>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    since_seq: Option<u64>,
}

impl Filter {
    fn new(q: &LogQuery) -> Result<Filter> {
        let now = SystemTime::now();
        let since = q.since.as_deref().map(|s| parse_time(s, now)).transpose()?;
        let until = q.until.as_deref().map(|s| parse_time(s, now)).transpose()?;
        Ok(Filter {
            types: q.types.iter().map(|t| t.to_ascii_lowercase()).collect(),
            methods: q.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            url_pattern: q.url_pattern.clone().filter(|p| !p.is_empty()),
            status_codes: q.status_codes.clone(),
            since,
            until,
            since_seq: q.since_seq,
        })
    }

    fn matches(&self, e: &Entry) -> bool {
        if self.since_seq.is_some_and(|s| e.seq <= s)
            || self.since.is_some_and(|s| e.time < s)
            || self.until.is_some_and(|u| e.time > u)
        {
            return false;
        }
        if !self.types.is_empty() && !self.types.contains(&e.kind) {
            return false;
        }
        // Method/url/status filters constrain HTTP entries only.
        if let EntryBody::Http(h) = &e.body {
            if !self.methods.is_empty() && !self.methods.contains(&h.method) {
                return false;
            }
            if self
                .url_pattern
                .as_ref()
                .is_some_and(|p| !h.url.contains(p.as_str()))
            {
                return false;
            }
            if !self.status_codes.is_empty() && !self.status_codes.contains(&h.status) {
                return false;
            }
        }
        true
    }
}

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

fn summarize(all: &[Arc<Entry>], detail: &[String], limit: usize) -> Value {
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
    use super::*;

    fn http(method: &str, url: &str, status: u16) -> HttpRecord {
        HttpRecord {
            method: method.into(),
            url: url.into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn ring_keeps_time_order_and_counts_drops() {
        let log = TrafficLogger::new(3);
        for i in 0..5 {
            log.push_http(None, http("GET", &format!("/{i}"), 200));
        }
        let v = log.query(&LogQuery::default()).unwrap();
        let urls: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["url"].as_str().unwrap())
            .collect();
        assert_eq!(urls, ["/2", "/3", "/4"]);
        let s = log.stats();
        assert_eq!(
            (
                s["total_entries"].as_u64(),
                s["available_entries"].as_u64(),
                s["dropped"].as_u64()
            ),
            (Some(5), Some(3), Some(2))
        );
        assert!(log.get("req-1").is_none());
        assert!(log.get("req-5").is_some());
    }

    #[test]
    fn filters_limit_and_cursor() {
        let log = TrafficLogger::new(100);
        log.push_http(None, http("GET", "/a", 200));
        log.push_http(None, http("POST", "/api/b", 500));
        log.push_event("error", Some("p1".into()), json!({"message": "boom"}));
        log.push_http(None, http("GET", "/api/c", 404));
        let q = |f: &dyn Fn(&mut LogQuery)| {
            let mut q = LogQuery::default();
            f(&mut q);
            log.query(&q).unwrap()["count"].as_u64().unwrap()
        };
        assert_eq!(q(&|q| q.methods = vec!["post".into()]), 2); // + the error event
        assert_eq!(q(&|q| q.types = vec!["http".into()]), 3);
        assert_eq!(
            q(&|q| {
                q.types = vec!["http".into()];
                q.url_pattern = Some("/api/".into())
            }),
            2
        );
        assert_eq!(
            q(&|q| {
                q.types = vec!["http".into()];
                q.status_codes = vec![404]
            }),
            1
        );
        assert_eq!(q(&|q| q.since_seq = Some(2)), 2);
        assert_eq!(q(&|q| q.since = Some("5m".into())), 4);
        assert_eq!(q(&|q| q.until = Some("2000-01-01T00:00:00Z".into())), 0);
        let mut lq = LogQuery {
            limit: Some(2),
            ..Default::default()
        };
        let v = log.query(&lq).unwrap();
        let seqs: Vec<u64> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [3, 4]);
        lq.since = Some("yesterday".into());
        assert!(log.query(&lq).is_err());
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
}
