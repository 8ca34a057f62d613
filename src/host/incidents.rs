//! The incident inbox: what broke, deduplicated by fingerprint, with a monotonic cursor.
//!
//! Feeds (`host::feed`) turn traffic-log entries, process exits and alert-pattern output lines
//! into [`Report`]s; [`Incidents::record`] folds a report into the incident with the same
//! fingerprint (same project, source and fingerprint text: `count` goes up, `last_seen` moves,
//! the cursor advances) or opens a new one. The inbox is bounded: past [`CAPACITY`] incidents
//! the least recently seen one is dropped and counted. Every change takes one short
//! `parking_lot` lock; nothing here does IO or knows about tools.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use parking_lot::Mutex;
use serde_json::Value;

/// Most incidents kept (all projects together).
pub const CAPACITY: usize = 500;
/// Most alert-scan cursors kept (one per process run).
pub const SCANNED_MAX: usize = CAPACITY * 4;

/// How bad an incident is, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// All severities, worst first (the order answers list them in).
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Info,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Incident sources (the Go original's names).
pub const SOURCES: &[&str] = &[
    "browser_js",
    "http_5xx",
    "http_4xx",
    "transport_err",
    "proxy_diag",
    "process_alert",
    "process_crash",
    "port_conflict",
];

/// One observation of something broken, before deduplication.
#[derive(Debug, Clone)]
pub struct Report {
    pub project: PathBuf,
    /// One of [`SOURCES`].
    pub source: &'static str,
    pub severity: Severity,
    /// What makes two reports the same incident (error text + top frame, process + exit, URL +
    /// status, ...); hashed into the incident's `fingerprint`.
    pub key: String,
    /// One line.
    pub summary: String,
    /// Small facts: URL, process id, stack top, ...
    pub context: Value,
    /// The raw observation (entry data, output line), shown with `detail: full`.
    pub payload: Value,
    /// The one call to drill in, as text: `proc output {...}`, `proxylog get {...}`, ...
    pub remediation: String,
    pub proxy_id: Option<String>,
    pub process_id: Option<String>,
}

/// A deduplicated incident.
#[derive(Debug, Clone)]
pub struct Incident {
    /// `inc-N`, stable for the incident's life.
    pub id: String,
    /// 12 hex digits of the report key's hash.
    pub fingerprint: String,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub count: u64,
    pub read: bool,
    /// The cursor value of its last change.
    pub seq: u64,
    /// The latest report (summary and remediation follow the newest occurrence).
    pub report: Report,
}

/// Filters of [`Incidents::query`].
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `None` = every project.
    pub project: Option<PathBuf>,
    /// Empty = all.
    pub severities: Vec<Severity>,
    pub sources: Vec<String>,
    pub fingerprints: Vec<String>,
    pub proxy_id: Option<String>,
    pub process_id: Option<String>,
    /// Only incidents changed after this cursor.
    pub after_seq: Option<u64>,
    /// Only incidents seen at or after this time.
    pub since_time: Option<SystemTime>,
    pub limit: usize,
    /// Mark the returned incidents read.
    pub mark_read: bool,
}

/// Unread incidents in scope, by severity; `new` = all unread; `dropped` = lost to the bound.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Inbox {
    pub critical: u64,
    pub error: u64,
    pub warning: u64,
    pub info: u64,
    pub new: u64,
    pub dropped: u64,
}

/// What [`Incidents::query`] found.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Newest first, at most `limit`.
    pub incidents: Vec<Incident>,
    /// How many matched before `limit`.
    pub matched: usize,
    /// After `mark_read`.
    pub inbox: Inbox,
    /// Pass as `since` to get only what changes after this answer.
    pub cursor: u64,
}

/// The inbox (see the module docs).
#[derive(Debug, Default)]
pub struct Incidents {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_key: HashMap<u64, Incident>,
    seq: u64,
    next_id: u64,
    dropped: u64,
    /// Output already scanned for alert patterns: (project, process id, process seq) →
    /// (offset, `scan_seq` of its last set).
    scanned: HashMap<(PathBuf, String, u64), (u64, u64)>,
    scan_seq: u64,
}

impl Incidents {
    /// An empty inbox.
    pub fn new() -> Incidents {
        Incidents::default()
    }

    /// Folds `r` into its incident; returns the incident and whether it is new.
    pub fn record(&self, r: Report) -> (Incident, bool) {
        let hash = fnv1a64(&[
            r.project.as_os_str().as_encoded_bytes(),
            r.source.as_bytes(),
            r.key.as_bytes(),
        ]);
        let now = SystemTime::now();
        let mut inner = self.inner.lock();
        inner.seq += 1;
        let seq = inner.seq;
        if let Some(i) = inner.by_key.get_mut(&hash) {
            i.count += 1;
            i.last_seen = now;
            i.read = false;
            i.seq = seq;
            i.report = r;
            return (i.clone(), false);
        }
        inner.next_id += 1;
        let incident = Incident {
            id: format!("inc-{}", inner.next_id),
            fingerprint: format!("{:012x}", hash & 0xffff_ffff_ffff),
            first_seen: now,
            last_seen: now,
            count: 1,
            read: false,
            seq,
            report: r,
        };
        inner.by_key.insert(hash, incident.clone());
        if inner.by_key.len() > CAPACITY
            && let Some(oldest) = inner
                .by_key
                .iter()
                .min_by_key(|(_, i)| i.seq)
                .map(|(k, _)| *k)
        {
            inner.by_key.remove(&oldest);
            inner.dropped += 1;
        }
        (incident, true)
    }

    /// Incidents matching `q`, newest change first (see [`Answer`]).
    pub fn query(&self, q: &Query) -> Answer {
        let mut inner = self.inner.lock();
        let in_scope = |i: &Incident| {
            q.project.as_ref().is_none_or(|p| &i.report.project == p)
                && q.proxy_id
                    .as_ref()
                    .is_none_or(|p| i.report.proxy_id.as_ref() == Some(p))
                && q.process_id
                    .as_ref()
                    .is_none_or(|p| i.report.process_id.as_ref() == Some(p))
        };
        let mut hits: Vec<&mut Incident> = inner
            .by_key
            .values_mut()
            .filter(|i| in_scope(i))
            .filter(|i| q.severities.is_empty() || q.severities.contains(&i.report.severity))
            .filter(|i| q.sources.is_empty() || q.sources.iter().any(|s| s == i.report.source))
            .filter(|i| q.fingerprints.is_empty() || q.fingerprints.contains(&i.fingerprint))
            .filter(|i| q.after_seq.is_none_or(|c| i.seq > c))
            .filter(|i| q.since_time.is_none_or(|t| i.last_seen >= t))
            .collect();
        hits.sort_by_key(|i| std::cmp::Reverse(i.seq));
        let matched = hits.len();
        let incidents: Vec<Incident> = hits
            .into_iter()
            .take(q.limit)
            .map(|i| {
                let out = i.clone();
                if q.mark_read {
                    i.read = true;
                }
                out
            })
            .collect();
        let mut inbox = Inbox {
            dropped: inner.dropped,
            ..Inbox::default()
        };
        for i in inner.by_key.values().filter(|i| !i.read && in_scope(i)) {
            inbox.new += 1;
            match i.report.severity {
                Severity::Critical => inbox.critical += 1,
                Severity::Error => inbox.error += 1,
                Severity::Warning => inbox.warning += 1,
                Severity::Info => inbox.info += 1,
            }
        }
        Answer {
            incidents,
            matched,
            inbox,
            cursor: inner.seq,
        }
    }

    /// Marks these incidents read (by id); returns the unread counts of `project` after.
    pub fn mark_read(&self, ids: &[String], project: Option<&Path>) -> Inbox {
        let mut inner = self.inner.lock();
        for i in inner.by_key.values_mut() {
            if ids.contains(&i.id) {
                i.read = true;
            }
        }
        let mut inbox = Inbox {
            dropped: inner.dropped,
            ..Inbox::default()
        };
        let unread = inner
            .by_key
            .values()
            .filter(|i| !i.read && project.is_none_or(|p| i.report.project == p));
        for i in unread {
            inbox.new += 1;
            match i.report.severity {
                Severity::Critical => inbox.critical += 1,
                Severity::Error => inbox.error += 1,
                Severity::Warning => inbox.warning += 1,
                Severity::Info => inbox.info += 1,
            }
        }
        inbox
    }

    /// The output offset up to which process `(project, id, seq)` was scanned for alerts.
    pub fn scanned(&self, project: &Path, id: &str, seq: u64) -> Option<u64> {
        let key = (project.to_path_buf(), id.to_string(), seq);
        self.inner
            .lock()
            .scanned
            .get(&key)
            .map(|(offset, _)| *offset)
    }

    /// Records the scanned offset; keeps the table bounded like the inbox: past
    /// [`SCANNED_MAX`] entries the least recently set one is dropped (a process whose output is
    /// still scanned keeps its cursor, so no line of it is scanned twice).
    pub fn set_scanned(&self, project: &Path, id: &str, seq: u64, offset: u64) {
        let mut inner = self.inner.lock();
        inner.scan_seq += 1;
        let stamp = inner.scan_seq;
        inner.scanned.insert(
            (project.to_path_buf(), id.to_string(), seq),
            (offset, stamp),
        );
        if inner.scanned.len() > SCANNED_MAX
            && let Some(oldest) = inner
                .scanned
                .iter()
                .min_by_key(|(_, (_, stamp))| *stamp)
                .map(|(k, _)| k.clone())
        {
            inner.scanned.remove(&oldest);
        }
    }
}

/// FNV-1a 64 over the parts, with a separator between them.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(key: &str, sev: Severity) -> Report {
        Report {
            project: "/p".into(),
            source: "browser_js",
            severity: sev,
            key: key.into(),
            summary: key.into(),
            context: Value::Null,
            payload: Value::Null,
            remediation: String::new(),
            proxy_id: Some("app".into()),
            process_id: None,
        }
    }

    fn q() -> Query {
        Query {
            project: Some("/p".into()),
            limit: 20,
            ..Query::default()
        }
    }

    #[test]
    fn dedupes_counts_orders_and_cursors() {
        let s = Incidents::new();
        assert!(s.record(report("a", Severity::Error)).1);
        assert!(s.record(report("b", Severity::Warning)).1);
        let (a, new) = s.record(report("a", Severity::Error));
        assert!(!new);
        assert_eq!(a.count, 2);
        let ans = s.query(&q());
        assert_eq!(ans.incidents.len(), 2);
        assert_eq!(ans.incidents[0].report.key, "a", "newest change first");
        assert_eq!(ans.inbox.new, 2);
        assert_eq!(ans.inbox.error, 1);
        let again = s.query(&Query {
            after_seq: Some(ans.cursor),
            ..q()
        });
        assert!(again.incidents.is_empty());
        let other = s.query(&Query {
            project: Some("/other".into()),
            ..q()
        });
        assert!(other.incidents.is_empty());
    }

    #[test]
    fn mark_read_limit_and_bound() {
        let s = Incidents::new();
        for i in 0..5 {
            s.record(report(&format!("k{i}"), Severity::Error));
        }
        let ans = s.query(&Query {
            limit: 2,
            mark_read: true,
            ..q()
        });
        assert_eq!((ans.incidents.len(), ans.matched), (2, 5));
        assert_eq!(ans.inbox.new, 3);
        let all = s.query(&q());
        assert_eq!(all.incidents.iter().filter(|i| i.read).count(), 2);
        for i in 0..CAPACITY + 10 {
            s.record(report(&format!("x{i}"), Severity::Info));
        }
        let ans = s.query(&q());
        assert_eq!(ans.inbox.dropped, 15);
        assert_eq!(ans.matched, CAPACITY);
    }

    #[test]
    fn scan_cursors_drop_the_least_recently_set_only() {
        let s = Incidents::new();
        let p = Path::new("/p");
        // A live process scanned now and then while many others come and go: its cursor is
        // always where its last scan left it (a lost one would rescan its output from 0).
        let mut live = None;
        for i in 0..SCANNED_MAX as u64 * 3 {
            if i % 100 == 0 {
                assert_eq!(s.scanned(p, "live", 1), live, "lost after {i} others");
                s.set_scanned(p, "live", 1, i);
                live = Some(i);
            }
            s.set_scanned(p, &format!("gone{i}"), 1, 7);
        }
        assert_eq!(s.scanned(p, "live", 1), live);
        // The newest others are kept, the oldest dropped, the table is bounded.
        let newest = format!("gone{}", SCANNED_MAX as u64 * 3 - 1);
        assert_eq!(s.scanned(p, &newest, 1), Some(7));
        assert_eq!(s.scanned(p, "gone0", 1), None);
        assert_eq!(s.inner.lock().scanned.len(), SCANNED_MAX);
    }
}
