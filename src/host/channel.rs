//! The push channel: events (a message from the page panel, a crashed process, a new incident)
//! delivered to every subscribed agent connection of the event's project, rate-limited per
//! connection.
//!
//! A subscriber is a sink — a closure that sends one notification on one connection — plus its
//! project and settings. The MCP layer subscribes each connection and drops the returned
//! [`Subscription`] when the connection closes; nothing here knows about MCP. Delivery runs on
//! the thread that raised the event (a proxy loop, a waiter), so a sink must not block (the MCP
//! one queues on an unbounded channel). Per connection at most `rate` events go out per minute;
//! the rest are counted and folded into one "N more — call get_incidents" line when the minute
//! ends, sent by one timer thread that sleeps until the earliest pending fold is due.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{config::ChannelConfig, thread::JoinOnDrop};

/// Events per connection per minute when nothing is configured.
pub const DEFAULT_RATE: u32 = 10;
/// The rate window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The notification method (Claude Code's channel contract).
pub const METHOD: &str = "notifications/claude/channel";

/// One pushed event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `panel`, `crash` or `incident` (what `channel { events ... }` filters on).
    pub kind: &'static str,
    pub project: PathBuf,
    /// One short line.
    pub content: String,
    /// String facts: `source`, `severity`, `id`, and for page messages `proxy_id` and `page`
    /// (`project` is added on delivery).
    pub meta: BTreeMap<String, String>,
}

/// Sends one notification's params (`{content, meta}`) on one connection; must not block.
pub type Sink = Box<dyn Fn(Value) + Send + Sync>;

/// Per-connection settings (the `daemon` tool's `channel` action); `None` = the project's
/// `.agnt.kdl`, else the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub events: Option<Vec<String>>,
    pub rate: Option<u32>,
}

/// The subscriber registry (see the module docs).
#[derive(Debug, Default)]
pub struct Channel {
    shared: Arc<Shared>,
    /// Declared before `timer_thread`: dropping the sender stops the thread, then it is joined.
    timer: Mutex<Option<Sender<Instant>>>,
    timer_thread: Mutex<Option<JoinOnDrop<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    subs: Mutex<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
    delivered: AtomicU64,
    folded: AtomicU64,
}

struct Subscriber {
    id: u64,
    sink: Sink,
    state: Mutex<SubState>,
}

#[derive(Debug)]
struct SubState {
    project: PathBuf,
    /// The project's `.agnt.kdl` `channel` block, read when the project is set.
    config: ChannelConfig,
    settings: Settings,
    window_start: Instant,
    sent: u32,
    folded: u32,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A subscribed connection; unsubscribes when dropped.
#[derive(Debug)]
pub struct Subscription {
    id: u64,
    shared: Weak<Shared>,
}

impl Channel {
    /// No subscribers.
    pub fn new() -> Channel {
        Channel::default()
    }

    /// Subscribes a connection of `project` (its `.agnt.kdl` is read now).
    pub fn subscribe(&self, project: &Path, sink: Sink) -> Subscription {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let sub = Arc::new(Subscriber {
            id,
            sink,
            state: Mutex::new(SubState {
                project: project.to_path_buf(),
                config: project_config(project),
                settings: Settings::default(),
                window_start: Instant::now(),
                sent: 0,
                folded: 0,
            }),
        });
        self.shared.subs.lock().push(sub);
        Subscription {
            id,
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Moves connection `id` to `project` (its `initialize` named one).
    pub fn set_project(&self, id: u64, project: &Path) {
        let config = project_config(project);
        if let Some(s) = self.find(id) {
            let mut st = s.state.lock();
            st.project = project.to_path_buf();
            st.config = config;
        }
    }

    /// Changes connection `id`'s settings; returns the effective ones (`events`, `rate`), or
    /// `None` when there is no such connection.
    pub fn configure(&self, id: u64, settings: Settings) -> Option<(Vec<String>, u32)> {
        let s = self.find(id)?;
        let mut st = s.state.lock();
        if settings.events.is_some() {
            st.settings.events = settings.events;
        }
        if settings.rate.is_some() {
            st.settings.rate = settings.rate;
        }
        Some(st.effective())
    }

    /// The effective settings of connection `id`.
    pub fn settings(&self, id: u64) -> Option<(Vec<String>, u32)> {
        Some(self.find(id)?.state.lock().effective())
    }

    /// Connections subscribed now.
    pub fn subscribers(&self) -> usize {
        self.shared.subs.lock().len()
    }

    /// `(delivered, folded)` since start.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.shared.delivered.load(Ordering::Relaxed),
            self.shared.folded.load(Ordering::Relaxed),
        )
    }

    /// Delivers `ev` to every connection of its project that takes its kind, within each
    /// connection's rate.
    pub fn publish(&self, ev: &Event) {
        let subs = self.shared.subs.lock().clone();
        let now = Instant::now();
        let mut due = None;
        for s in subs {
            let mut st = s.state.lock();
            if st.project != ev.project {
                continue;
            }
            let (events, rate) = st.effective();
            if !events.iter().any(|e| e == ev.kind) {
                continue;
            }
            let summary = st.roll(now, &ev.project);
            if st.sent < rate {
                st.sent += 1;
                drop(st);
                if let Some(line) = summary {
                    (s.sink)(line);
                }
                let mut meta = ev.meta.clone();
                meta.insert("project".into(), ev.project.display().to_string());
                (s.sink)(json!({"content": ev.content, "meta": meta}));
                self.shared.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                st.folded += 1;
                self.shared.folded.fetch_add(1, Ordering::Relaxed);
                let end = st.window_start + WINDOW;
                due = Some(due.map_or(end, |d: Instant| d.min(end)));
                drop(st);
                if let Some(line) = summary {
                    (s.sink)(line);
                }
            }
        }
        if let Some(due) = due {
            self.schedule(due);
        }
    }

    fn find(&self, id: u64) -> Option<Arc<Subscriber>> {
        self.shared.subs.lock().iter().find(|s| s.id == id).cloned()
    }

    /// Makes the timer thread flush folded counts at `due` (and, after each flush, at the
    /// earliest window end that still has folded counts).
    fn schedule(&self, due: Instant) {
        let mut timer = self.timer.lock();
        if timer.is_none() {
            let (tx, rx) = crossbeam_channel::unbounded::<Instant>();
            let weak = Arc::downgrade(&self.shared);
            let spawned =
                crate::thread::spawn("agnt-channel", crate::thread::SMALL_STACK, move || {
                    let mut next: Option<Instant> = None;
                    loop {
                        let got = match next {
                            Some(at) => rx.recv_deadline(at),
                            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        };
                        match got {
                            Ok(d) => next = Some(next.map_or(d, |n| n.min(d))),
                            Err(RecvTimeoutError::Timeout) => match weak.upgrade() {
                                Some(shared) => next = shared.flush(Instant::now()),
                                None => return,
                            },
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            match spawned {
                Ok(h) => {
                    *self.timer_thread.lock() = Some(JoinOnDrop::new(h));
                    *timer = Some(tx);
                }
                Err(e) => {
                    log::warn!("cannot start the channel timer: {e}");
                    return;
                }
            }
        }
        if let Some(tx) = timer.as_ref() {
            let _ = tx.send(due);
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.timer.lock().take();
        self.timer_thread.lock().take();
    }
}

impl Shared {
    /// Sends the summary line of every connection whose window ended with folded events;
    /// returns when the earliest window still holding folded events ends.
    fn flush(&self, now: Instant) -> Option<Instant> {
        let subs = self.subs.lock().clone();
        let mut next: Option<Instant> = None;
        for s in subs {
            let mut st = s.state.lock();
            let project = st.project.clone();
            let line = st.roll(now, &project);
            if st.folded > 0 {
                let end = st.window_start + WINDOW;
                next = Some(next.map_or(end, |n| n.min(end)));
            }
            drop(st);
            if let Some(line) = line {
                (s.sink)(line);
            }
        }
        next
    }
}

impl SubState {
    fn effective(&self) -> (Vec<String>, u32) {
        let events = self
            .settings
            .events
            .clone()
            .or_else(|| self.config.events.clone())
            .unwrap_or_else(|| {
                crate::config::CHANNEL_EVENTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
        let rate = self
            .settings
            .rate
            .or(self.config.rate)
            .unwrap_or(DEFAULT_RATE);
        (events, rate)
    }

    /// Starts a new window if the current one ended; returns the summary line of what the
    /// ended window folded.
    fn roll(&mut self, now: Instant, project: &Path) -> Option<Value> {
        if now.duration_since(self.window_start) < WINDOW {
            return None;
        }
        let folded = std::mem::take(&mut self.folded);
        self.window_start = now;
        self.sent = 0;
        (folded > 0).then(|| {
            json!({
                "content": format!("{folded} more — call get_incidents"),
                "meta": {"source": "agnt", "severity": "info", "id": format!("folded-{folded}"), "project": project.display().to_string()},
            })
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.subs.lock().retain(|s| s.id != self.id);
        }
    }
}

impl Subscription {
    /// The connection's id in the channel (for [`Channel::configure`]).
    pub fn id(&self) -> u64 {
        self.id
    }
}

fn project_config(project: &Path) -> ChannelConfig {
    match crate::config::discover(project) {
        Ok(c) => c.map(|c| c.channel).unwrap_or_default(),
        Err(e) => {
            log::warn!("{e} (channel pushes use the defaults)");
            ChannelConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &'static str, project: &str) -> Event {
        Event {
            kind,
            project: project.into(),
            content: "x".into(),
            meta: BTreeMap::new(),
        }
    }

    #[test]
    fn filters_by_project_kind_and_rate_then_folds() {
        let ch = Channel::new();
        let got = Arc::new(Mutex::new(Vec::<Value>::new()));
        let g = got.clone();
        let sub = ch.subscribe(
            Path::new("/nonexistent-agnt-p"),
            Box::new(move |v| g.lock().push(v)),
        );
        ch.publish(&ev("crash", "/other"));
        assert!(got.lock().is_empty());
        ch.configure(
            sub.id(),
            Settings {
                events: Some(vec!["crash".into()]),
                rate: Some(3),
            },
        );
        ch.publish(&ev("panel", "/nonexistent-agnt-p"));
        assert!(got.lock().is_empty());
        for _ in 0..10 {
            ch.publish(&ev("crash", "/nonexistent-agnt-p"));
        }
        assert_eq!(got.lock().len(), 3);
        assert_eq!(got.lock()[0]["meta"]["project"], "/nonexistent-agnt-p");
        // The window's end folds the rest into one line.
        {
            let subs = ch.shared.subs.lock().clone();
            subs[0].state.lock().window_start -= WINDOW;
        }
        ch.shared.flush(Instant::now());
        let got_now = got.lock().clone();
        assert_eq!(got_now.len(), 4);
        assert_eq!(got_now[3]["content"], "7 more — call get_incidents");
        drop(sub);
        assert_eq!(ch.subscribers(), 0);
    }

    /// A connection of `project` at rate 1 whose window ends `left` from now; its pushes
    /// arrive on the receiver.
    fn folding(
        ch: &Channel,
        project: &str,
        left: Duration,
    ) -> (Subscription, crossbeam_channel::Receiver<Value>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sub = ch.subscribe(
            Path::new(project),
            Box::new(move |v| {
                let _ = tx.send(v);
            }),
        );
        let rate = Some(1);
        ch.configure(sub.id(), Settings { events: None, rate });
        ch.find(sub.id()).unwrap().state.lock().window_start = Instant::now() + left - WINDOW;
        (sub, rx)
    }

    /// Waits (at most 20 s) for the fold line on `rx`.
    fn fold_line(rx: &crossbeam_channel::Receiver<Value>) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(v) = rx.recv_deadline(deadline) {
            if v["content"]
                .as_str()
                .is_some_and(|c| c.ends_with("more — call get_incidents"))
            {
                return Some(v);
            }
        }
        None
    }

    #[test]
    fn the_timer_flushes_a_later_fold_after_an_earlier_one() {
        let ch = Channel::new();
        let (_late, late_rx) = folding(&ch, "/nonexistent-agnt-late", Duration::from_secs(2));
        let (_early, early_rx) = folding(&ch, "/nonexistent-agnt-early", Duration::from_secs(1));
        // The later fold is scheduled first, then an earlier one: both must be flushed.
        for project in ["/nonexistent-agnt-late", "/nonexistent-agnt-early"] {
            ch.publish(&ev("crash", project));
            ch.publish(&ev("crash", project));
        }
        assert_eq!(ch.counters(), (2, 2));
        let early = fold_line(&early_rx).expect("the earlier fold was not flushed");
        assert_eq!(early["content"], "1 more — call get_incidents");
        let late = fold_line(&late_rx).expect("the later fold was not flushed");
        assert_eq!(late["meta"]["project"], "/nonexistent-agnt-late");
    }

    #[test]
    fn one_publish_schedules_the_earliest_fold_of_its_connections() {
        let ch = Channel::new();
        let p = "/nonexistent-agnt-p";
        let (_early, early_rx) = folding(&ch, p, Duration::from_secs(1));
        let (_late, _late_rx) = folding(&ch, p, WINDOW);
        ch.publish(&ev("crash", p));
        ch.publish(&ev("crash", p));
        assert_eq!(ch.counters(), (2, 2));
        // Not at the other connection's window end, a minute later.
        let early = fold_line(&early_rx).expect("the earlier fold was not flushed in time");
        assert_eq!(early["content"], "1 more — call get_incidents");
    }
}
