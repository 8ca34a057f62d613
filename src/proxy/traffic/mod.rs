//! The traffic log of one proxy: a bounded ring of entries (HTTP exchanges and browser events)
//! behind one `parking_lot::RwLock`, with filtered queries in time order, stats (`LogStats`) and
//! lookup by id. How entries are shown to agents (compact, full, summary) is `render`.
//!
//! Writers hold the lock only to push an `Arc<Entry>`; readers clone the `Arc`s they need and
//! format outside the lock.

use std::{collections::VecDeque, sync::Arc, time::SystemTime};

use parking_lot::RwLock;
use serde_json::{Value, json};

use super::{LogQuery, http::Header, redact::Redactor};
use crate::{Result, util::time::parse_time};

mod decode;
mod render;

pub use render::{compact, compact_stack, full};

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

/// The traffic log's counters (`proxylog stats`, `log_stats` in a proxy's status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogStats {
    /// Entries written since the last clear.
    pub total_entries: u64,
    /// Entries still held.
    pub available_entries: u64,
    /// Capacity (entries).
    pub max_size: usize,
    /// Entries pushed out by newer ones (`total_entries - available_entries`).
    pub dropped: u64,
    /// The seq of the newest entry ever written (0 = none); `since_seq` cursors start here.
    pub last_seq: u64,
}

/// The bounded, thread-safe traffic log.
pub struct TrafficLogger {
    ring: RwLock<Ring>,
    tap: std::sync::OnceLock<Tap>,
    /// Applied to every entry before it is stored; `None` = raw traffic (opt-out).
    redactor: Option<Arc<Redactor>>,
}

/// Sees every entry right after it is logged, on the thread that logged it (the proxy's event
/// loop): it must not block.
pub type Tap = Box<dyn Fn(&Arc<Entry>) + Send + Sync>;

impl std::fmt::Debug for TrafficLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficLogger")
            .field("ring", &self.ring)
            .field("tapped", &self.tap.get().is_some())
            .field("redacts", &self.redactor.is_some())
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
    /// A log holding at most `max` entries (at least 1), storing what it is given (no
    /// redaction).
    pub fn new(max: usize) -> TrafficLogger {
        TrafficLogger::with_redactor(max, None)
    }

    /// A log that passes every entry through `redactor` before storing it (see `redact`).
    pub fn with_redactor(max: usize, redactor: Option<Arc<Redactor>>) -> TrafficLogger {
        let max = max.max(1);
        TrafficLogger {
            redactor,
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

    /// Whether entries are redacted before they are stored.
    pub fn redacts(&self) -> bool {
        self.redactor.is_some()
    }

    /// Adds a browser/proxy event with a JSON `data` object (redacted first, except `exec`
    /// results: the agent asked for them; see `SECURITY.md`).
    pub fn push_event(
        &self,
        kind: &str,
        page_id: Option<String>,
        mut data: Value,
    ) -> (u64, String) {
        if let Some(r) = &self.redactor
            && kind != "execution"
        {
            // The proxy's own page-session id is not the page's `session` secret.
            let session = data.as_object_mut().and_then(|m| m.remove("session_id"));
            r.event(&mut data);
            if let (Some(s), Some(m)) = (session, data.as_object_mut()) {
                m.insert("session_id".into(), s);
            }
        }
        self.push(kind, page_id, EntryBody::Event(data))
    }

    /// Adds an HTTP exchange: bodies decoded (`decode`), then redacted, then stored.
    pub fn push_http(&self, page_id: Option<String>, mut rec: HttpRecord) -> (u64, String) {
        decode::decode_capture(
            &rec.request_headers,
            &mut rec.request_body,
            &mut rec.request_truncated,
        );
        decode::decode_capture(
            &rec.response_headers,
            &mut rec.response_body,
            &mut rec.response_truncated,
        );
        if let Some(r) = &self.redactor {
            r.record(&mut rec);
        }
        self.push("http", page_id, EntryBody::Http(Box::new(rec)))
    }

    /// Counts: written, still held, capacity, dropped, and the last seq handed out.
    pub fn stats(&self) -> LogStats {
        let ring = self.ring.read();
        let available = ring.entries.len() as u64;
        LogStats {
            total_entries: ring.total,
            available_entries: available,
            max_size: ring.max,
            dropped: ring.total - available,
            last_seq: ring.next_seq - 1,
        }
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
        Ok(render::summarize(&all, detail, limit.clamp(1, 100)))
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
            (s.total_entries, s.available_entries, s.dropped, s.last_seq),
            (5, 3, 2, 5)
        );
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            json!({"total_entries": 5, "available_entries": 3, "max_size": 3, "dropped": 2, "last_seq": 5})
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
}
