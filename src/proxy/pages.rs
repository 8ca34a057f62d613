//! Page sessions of one proxy: which requests and browser events belong to which browser tab.
//!
//! A document request (HTML navigation) opens or updates a session `page-N`; resources attach to
//! the session of their `Referer`, else of the tab cookie (`__agnt_page`), else to the most recent
//! session. Browser events carry the tab id the script keeps in `sessionStorage`; the first event
//! of a tab adopts the newest untagged session with the same URL. At most 100 sessions per proxy
//! (oldest evicted); per-session histories are bounded. With a `Redactor`, URLs and event data
//! are redacted before a session stores them.

use std::{
    borrow::Cow,
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{redact::Redactor, traffic::compact_stack};
use crate::util::time::rfc3339;

/// Most sessions kept per proxy.
pub const MAX_SESSIONS: usize = 100;
/// A session counts as active this long after its last activity.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(300);
const MAX_RESOURCES: usize = 500;
const MAX_ERRORS: usize = 50;
const MAX_INTERACTIONS: usize = 200;
const MAX_MUTATIONS: usize = 100;

#[derive(Debug)]
struct Session {
    id: String,
    tab_id: Option<String>,
    url: String,
    title: Option<String>,
    start: SystemTime,
    last: Instant,
    last_wall: SystemTime,
    navigations: Vec<String>,
    resources: Vec<String>,
    resource_count: u64,
    errors: VecDeque<Value>,
    error_count: u64,
    performance: Option<Value>,
    interactions: VecDeque<Value>,
    interaction_count: u64,
    mutations: VecDeque<Value>,
    mutation_count: u64,
    request_count: u64,
}

impl Session {
    fn touch(&mut self) {
        self.last = Instant::now();
        self.last_wall = SystemTime::now();
    }

    fn list_item(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "page_title": self.title,
            "tab_id": self.tab_id,
            "start_time": rfc3339(self.start),
            "last_activity": rfc3339(self.last_wall),
            "active": self.last.elapsed() < ACTIVE_WINDOW,
            "request_count": self.request_count,
            "resource_count": self.resource_count,
            "error_count": self.error_count,
            "has_performance": self.performance.is_some(),
            "load_time_ms": self.performance.as_ref().and_then(|p| p.get("load_time_ms")).cloned(),
            "interaction_count": self.interaction_count,
            "mutation_count": self.mutation_count,
        })
    }
}

#[derive(Debug, Default)]
struct Pages {
    sessions: VecDeque<Session>,
    next: u64,
}

/// The page sessions of one proxy.
#[derive(Debug, Default)]
pub struct PageTracker {
    inner: Mutex<Pages>,
    /// Applied to URLs and event data before they are stored; `None` = stored as given.
    redactor: Option<Arc<Redactor>>,
}

const RESOURCE_EXT: &[&str] = &[
    ".js", ".mjs", ".css", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico",
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".map", ".json", ".xml", ".txt", ".mp4", ".webm",
    ".mp3", ".wasm", ".ts", ".tsx", ".jsx",
];
const API_HINTS: &[&str] = &[
    "/api/", "/v1/", "/v2/", "/v3/", "/graphql", "/rest/", "/_api/", "/ajax/",
];

fn path_of(url: &str) -> &str {
    let p = url.split(['?', '#']).next().unwrap_or("");
    // Absolute URL (Referer): drop scheme and authority.
    if let Some(rest) = p.split_once("://").map(|(_, r)| r) {
        return rest.find('/').map_or("/", |i| &rest[i..]);
    }
    p
}

/// Whether a request is a page navigation (document) rather than a resource (inventory §3.6).
pub fn is_document(method: &str, url: &str, accept: &str, xhr: bool, response_type: &str) -> bool {
    let path = path_of(url).to_ascii_lowercase();
    if response_type.contains("text/html") || path.ends_with(".html") || path.ends_with(".htm") {
        return true;
    }
    if response_type.contains("json") || xhr || API_HINTS.iter().any(|h| path.contains(h)) {
        return false;
    }
    if accept.contains("application/json") && !accept.contains("text/html") {
        return false;
    }
    method.eq_ignore_ascii_case("GET")
        && !RESOURCE_EXT.iter().any(|e| path.ends_with(e))
        && accept.contains("text/html")
}

fn resource_kind(url: &str) -> &'static str {
    let p = path_of(url).to_ascii_lowercase();
    let ext = |list: &[&str]| list.iter().any(|e| p.ends_with(e));
    if ext(&[".js", ".mjs", ".ts", ".tsx", ".jsx"]) {
        "js"
    } else if ext(&[".css"]) {
        "css"
    } else if ext(&[
        ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico",
    ]) {
        "image"
    } else if ext(&[".woff", ".woff2", ".ttf", ".otf", ".eot"]) {
        "font"
    } else if ext(&[".html", ".htm"]) {
        "html"
    } else if API_HINTS.iter().any(|h| p.contains(h)) || ext(&[".json"]) {
        "api"
    } else {
        "other"
    }
}

impl Pages {
    fn create(&mut self, url: &str, tab_id: Option<String>) -> usize {
        self.next += 1;
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.pop_front();
        }
        let now = SystemTime::now();
        self.sessions.push_back(Session {
            id: format!("page-{}", self.next),
            tab_id,
            url: url.to_string(),
            title: None,
            start: now,
            last: Instant::now(),
            last_wall: now,
            navigations: vec![url.to_string()],
            resources: Vec::new(),
            resource_count: 0,
            errors: VecDeque::new(),
            error_count: 0,
            performance: None,
            interactions: VecDeque::new(),
            interaction_count: 0,
            mutations: VecDeque::new(),
            mutation_count: 0,
            request_count: 1,
        });
        self.sessions.len() - 1
    }

    fn by_tab(&self, tab: Option<&str>) -> Option<usize> {
        let tab = tab?;
        self.sessions
            .iter()
            .rposition(|s| s.tab_id.as_deref() == Some(tab))
    }
}

impl PageTracker {
    /// A tracker with no sessions.
    pub fn new() -> PageTracker {
        PageTracker::default()
    }

    /// A tracker that redacts URLs and event data before storing them.
    pub fn with_redactor(redactor: Option<Arc<Redactor>>) -> PageTracker {
        PageTracker {
            inner: Mutex::default(),
            redactor,
        }
    }

    fn url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        match &self.redactor {
            Some(r) => r.url(url),
            None => Cow::Borrowed(url),
        }
    }

    /// Records an HTTP exchange; returns the session id it was attributed to.
    pub fn on_http(
        &self,
        url: &str,
        document: bool,
        referer: Option<&str>,
        tab: Option<&str>,
    ) -> Option<String> {
        let url = &*self.url(url);
        let mut p = self.inner.lock();
        if document {
            let i = match p.by_tab(tab) {
                Some(i) => {
                    let s = &mut p.sessions[i];
                    s.url = url.to_string();
                    s.navigations.push(url.to_string());
                    if s.navigations.len() > 50 {
                        s.navigations.remove(0);
                    }
                    s.resources.clear();
                    s.request_count += 1;
                    i
                }
                None => p.create(url, tab.map(str::to_string)),
            };
            p.sessions[i].touch();
            return Some(p.sessions[i].id.clone());
        }
        let by_ref = referer.and_then(|r| {
            let rp = path_of(r);
            p.sessions.iter().rposition(|s| path_of(&s.url) == rp)
        });
        let i = by_ref.or_else(|| p.by_tab(tab)).or_else(|| {
            let last = p.sessions.len().checked_sub(1)?;
            (p.sessions[last].last.elapsed() < ACTIVE_WINDOW).then_some(last)
        })?;
        let s = &mut p.sessions[i];
        s.request_count += 1;
        s.resource_count += 1;
        if s.resources.len() < MAX_RESOURCES {
            s.resources.push(url.to_string());
        }
        s.touch();
        Some(s.id.clone())
    }

    /// Records a browser event (`error`, `performance`, `interaction`, `mutation`, ...).
    pub fn on_event(
        &self,
        kind: &str,
        tab: Option<&str>,
        url: Option<&str>,
        data: &Value,
    ) -> String {
        let url = url.map(|u| self.url(u));
        let url = url.as_deref();
        let data = match &self.redactor {
            Some(r) => {
                let mut d = data.clone();
                r.event(&mut d);
                Cow::Owned(d)
            }
            None => Cow::Borrowed(data),
        };
        let data = &*data;
        let mut p = self.inner.lock();
        let page_path = url.map(path_of);
        let i = match p.by_tab(tab) {
            Some(i) => i,
            None => {
                let adopt = page_path.and_then(|u| {
                    p.sessions.iter().rposition(|s| {
                        s.tab_id.is_none()
                            && path_of(&s.url) == u
                            && s.last.elapsed() < ACTIVE_WINDOW
                    })
                });
                match adopt {
                    Some(i) => {
                        p.sessions[i].tab_id = tab.map(str::to_string);
                        i
                    }
                    None => p.create(url.unwrap_or(""), tab.map(str::to_string)),
                }
            }
        };
        let s = &mut p.sessions[i];
        s.touch();
        if let Some(t) = data.get("title").and_then(Value::as_str) {
            s.title = Some(t.chars().take(200).collect());
        }
        match kind {
            "error" => {
                s.error_count += 1;
                if s.errors.len() >= MAX_ERRORS {
                    s.errors.pop_front();
                }
                s.errors.push_back(data.clone());
            }
            // Load timing first, later vitals/long-task reports are merged in (they must not
            // wipe `load_time_ms`).
            "performance" => match (&mut s.performance, data) {
                (Some(Value::Object(have)), Value::Object(new))
                    if new.get("load_time_ms").is_none() =>
                {
                    for (k, v) in new {
                        if k != "metric" && k != "session_id" {
                            have.insert(k.clone(), v.clone());
                        }
                    }
                }
                _ => s.performance = Some(data.clone()),
            },
            "interaction" => {
                s.interaction_count += 1;
                if s.interactions.len() >= MAX_INTERACTIONS {
                    s.interactions.pop_front();
                }
                s.interactions.push_back(data.clone());
            }
            "mutation" => {
                s.mutation_count += 1;
                if s.mutations.len() >= MAX_MUTATIONS {
                    s.mutations.pop_front();
                }
                s.mutations.push_back(data.clone());
            }
            _ => {}
        }
        s.id.clone()
    }

    /// `{sessions, count}`: sessions active in the last 5 minutes, counts only.
    pub fn list(&self) -> Value {
        let p = self.inner.lock();
        let sessions: Vec<Value> = p
            .sessions
            .iter()
            .filter(|s| s.last.elapsed() < ACTIVE_WINDOW)
            .map(Session::list_item)
            .collect();
        json!({"count": sessions.len(), "sessions": sessions})
    }

    /// One session in full.
    pub fn get(&self, id: &str) -> Option<Value> {
        let p = self.inner.lock();
        let s = p
            .sessions
            .iter()
            .find(|s| s.id == id || s.tab_id.as_deref() == Some(id))?;
        let mut v = s.list_item();
        v["navigations"] = json!(s.navigations);
        v["resources"] = json!(s.resources);
        v["errors"] = json!(s.errors);
        v["performance"] = json!(s.performance);
        v["interactions"] = json!(s.interactions);
        v["mutations"] = json!(s.mutations);
        Some(v)
    }

    /// A compact summary of one session; `detail` sections (`interactions`, `mutations`,
    /// `errors`, `resources`) in full, newest `limit` each.
    pub fn summary(&self, id: &str, detail: &[String], limit: usize) -> Option<Value> {
        let p = self.inner.lock();
        let s = p
            .sessions
            .iter()
            .find(|s| s.id == id || s.tab_id.as_deref() == Some(id))?;
        let limit = limit.clamp(1, 100);
        let mut by_res: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &s.resources {
            *by_res.entry(resource_kind(r)).or_default() += 1;
        }
        let mut uniq: Vec<(String, u64)> = Vec::new();
        for e in &s.errors {
            let m: String = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(100)
                .collect();
            match uniq.iter_mut().find(|(k, _)| *k == m) {
                Some(u) => u.1 += 1,
                None => uniq.push((m, 1)),
            }
        }
        uniq.sort_by_key(|u| std::cmp::Reverse(u.1));
        let count_by = |v: &VecDeque<Value>, key: &str| -> BTreeMap<String, u64> {
            let mut m = BTreeMap::new();
            for x in v {
                let k = x
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                *m.entry(k).or_default() += 1;
            }
            m
        };
        let newest = |v: &VecDeque<Value>, n: usize| -> Vec<Value> {
            v.iter().skip(v.len().saturating_sub(n)).cloned().collect()
        };
        let mut out = s.list_item();
        out["resources_by_type"] = json!(by_res);
        out["unique_errors"] = json!(
            uniq.iter()
                .take(5)
                .map(|(m, c)| json!({"message": m, "count": c}))
                .collect::<Vec<_>>()
        );
        out["interactions_by_type"] = json!(count_by(&s.interactions, "event_type"));
        out["recent_interactions"] = json!(newest(&s.interactions, 5));
        out["mutations_by_type"] = json!(count_by(&s.mutations, "mutation_type"));
        out["recent_mutations"] = json!(newest(&s.mutations, 5));
        out["performance"] = json!(s.performance);
        let wants = |k: &str| detail.iter().any(|d| d.eq_ignore_ascii_case(k));
        if wants("errors") {
            out["errors"] = json!(
                newest(&s.errors, limit)
                    .into_iter()
                    .map(|mut e| {
                        if let Some(st) = e.get("stack").and_then(Value::as_str) {
                            e["stack"] = json!(compact_stack(st));
                        }
                        e
                    })
                    .collect::<Vec<_>>()
            );
        }
        if wants("interactions") {
            out["interactions"] = json!(newest(&s.interactions, limit));
        }
        if wants("mutations") {
            out["mutations"] = json!(newest(&s.mutations, limit));
        }
        if wants("resources") {
            out["resources"] = json!(
                s.resources
                    .iter()
                    .skip(s.resources.len().saturating_sub(limit))
                    .collect::<Vec<_>>()
            );
        }
        Some(out)
    }

    /// Forgets every session.
    pub fn clear(&self) {
        self.inner.lock().sessions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_resources() {
        assert!(is_document("GET", "/", "text/html,*/*", false, "text/html"));
        assert!(is_document("GET", "/about", "text/html", false, ""));
        assert!(!is_document(
            "GET",
            "/app.js",
            "*/*",
            false,
            "application/javascript"
        ));
        assert!(!is_document("GET", "/api/users", "text/html", false, ""));
        assert!(!is_document(
            "POST",
            "/x",
            "application/json",
            true,
            "application/json"
        ));
    }

    #[test]
    fn sessions_group_by_tab_and_referer() {
        let t = PageTracker::new();
        let a = t.on_http("/", true, None, None).unwrap();
        let r = t
            .on_http("/app.js", false, Some("http://127.0.0.1:1/"), None)
            .unwrap();
        assert_eq!(a, r);
        // The script's first event adopts the untagged session with the same URL.
        let e = t.on_event(
            "error",
            Some("tab1"),
            Some("http://127.0.0.1:1/"),
            &json!({"message": "x"}),
        );
        assert_eq!(e, a);
        // A navigation in the same tab updates the session; a new tab gets a new one.
        assert_eq!(t.on_http("/next", true, None, Some("tab1")).unwrap(), a);
        let b = t.on_http("/", true, None, Some("tab2")).unwrap();
        assert_ne!(a, b);
        let l = t.list();
        assert_eq!(l["count"], 2);
        let s = t.summary(&a, &["errors".into()], 5).unwrap();
        assert_eq!(s["error_count"], 1);
        assert_eq!(s["errors"].as_array().unwrap().len(), 1);
        for i in 0..150 {
            t.on_http(&format!("/p{i}"), true, None, None);
        }
        assert!(t.list()["count"].as_u64().unwrap() <= MAX_SESSIONS as u64);
        assert!(t.get(&a).is_none());
        t.clear();
        assert_eq!(t.list()["count"], 0);
    }

    #[test]
    fn later_vitals_merge_into_load_timing() {
        let t = PageTracker::new();
        let u = Some("http://127.0.0.1:1/");
        let id = t.on_event(
            "performance",
            Some("tab1"),
            u,
            &json!({"metric": "load", "load_time_ms": 120}),
        );
        t.on_event(
            "performance",
            Some("tab1"),
            u,
            &json!({"metric": "vitals", "lcp_ms": 80, "cls": 0.1}),
        );
        let l = t.list();
        let s = l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        assert_eq!(s["load_time_ms"], 120);
        let g = t.get(&id).unwrap();
        assert!(g.to_string().contains("lcp_ms"), "{g}");
        // A new load report replaces the old one.
        t.on_event(
            "performance",
            Some("tab1"),
            u,
            &json!({"metric": "load", "load_time_ms": 50}),
        );
        assert_eq!(t.list()["sessions"][0]["load_time_ms"], 50);
    }
}
