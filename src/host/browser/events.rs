//! What the page session reports, kept for the tool: console messages and uncaught exceptions
//! (with a cursor), dialogs (handled at once so none ever blocks the page), navigations and
//! loads (counters a caller waits on) and requests in flight (for `network_idle`). Filled on the
//! CDP reader thread, which must never wait: dialogs are answered with [`Cdp::send`].

use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};

use super::cdp::Cdp;

/// Console entries kept per browser.
const CONSOLE_CAP: usize = 1000;

/// The page session's event state.
#[derive(Debug, Default)]
pub struct PageEvents {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    console: VecDeque<Value>,
    seq: u64,
    /// The answer to the next dialog, set by the `dialog` action: (accept, prompt text).
    next_dialog: Option<(bool, Option<String>)>,
    navigations: u64,
    loads: u64,
    inflight: HashSet<String>,
    net_changed: Option<Instant>,
}

impl PageEvents {
    /// Console entries after cursor `since`, and the cursor to pass next time.
    pub fn console_since(&self, since: u64) -> (Vec<Value>, u64) {
        let s = self.state.lock();
        let list = s
            .console
            .iter()
            .filter(|e| e["seq"].as_u64().is_some_and(|n| n > since))
            .cloned()
            .collect();
        (list, s.seq)
    }

    /// The newest console cursor.
    pub fn cursor(&self) -> u64 {
        self.state.lock().seq
    }

    /// How the next dialog is answered (instead of the default dismissal).
    pub fn answer_next_dialog(&self, accept: bool, text: Option<String>) {
        self.state.lock().next_dialog = Some((accept, text));
    }

    /// (navigations, loads) so far.
    pub fn counters(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.navigations, s.loads)
    }

    /// Waits until `done(navigations, loads)` or the deadline; whether it happened.
    pub fn wait_counters(&self, deadline: Instant, done: impl Fn(u64, u64) -> bool) -> bool {
        let mut s = self.state.lock();
        while !done(s.navigations, s.loads) {
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                return done(s.navigations, s.loads);
            }
        }
        true
    }

    /// Waits until no request has been in flight for `quiet`, or the deadline.
    pub fn wait_network_idle(&self, quiet: Duration, deadline: Instant) -> bool {
        let mut s = self.state.lock();
        loop {
            let now = Instant::now();
            let since = s.net_changed.map_or(quiet, |t| now.duration_since(t));
            if s.inflight.is_empty() && since >= quiet {
                return true;
            }
            if now >= deadline {
                return false;
            }
            // Woken by any network event; else re-check when the quiet period would be over.
            let until = if s.inflight.is_empty() {
                (now + quiet - since).min(deadline)
            } else {
                deadline
            };
            self.changed.wait_until(&mut s, until);
        }
    }

    /// Handles one event from the reader thread.
    pub(super) fn on_event(&self, cdp: &Cdp, method: &str, p: &Value, session: Option<&str>) {
        match method {
            "Page.javascriptDialogOpening" => {
                let kind = p["type"].as_str().unwrap_or("alert");
                let msg = p["message"].as_str().unwrap_or("");
                let planned = self.state.lock().next_dialog.take();
                let (accept, text) = planned.unwrap_or((kind == "beforeunload", None));
                let mut params = json!({"accept": accept});
                if let Some(t) = &text {
                    params["promptText"] = t.as_str().into();
                }
                cdp.send(session, "Page.handleJavaScriptDialog", params);
                let how = if accept { "accepted" } else { "dismissed" };
                self.push("dialog", format!("{kind} {msg:?} {how}"));
            }
            "Runtime.consoleAPICalled" => {
                let text = p["args"]
                    .as_array()
                    .map(|a| a.iter().map(arg_text).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                let level = match p["type"].as_str().unwrap_or("log") {
                    "warning" => "warn",
                    other => other,
                };
                self.push(level, text);
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or_else(|| d["text"].as_str())
                    .unwrap_or("uncaught exception");
                self.push("exception", text.to_string());
            }
            "Log.entryAdded" => {
                let e = &p["entry"];
                let text = format!(
                    "{} {}",
                    e["text"].as_str().unwrap_or(""),
                    e["url"].as_str().unwrap_or("")
                );
                self.push(
                    e["level"].as_str().unwrap_or("info"),
                    text.trim().to_string(),
                );
            }
            "Page.frameNavigated" if p["frame"].get("parentId").is_none() => {
                self.state.lock().navigations += 1;
                self.changed.notify_all();
            }
            "Page.loadEventFired" => {
                self.state.lock().loads += 1;
                self.changed.notify_all();
            }
            "Network.requestWillBeSent" | "Network.loadingFinished" | "Network.loadingFailed" => {
                let Some(id) = p["requestId"].as_str() else {
                    return;
                };
                let mut s = self.state.lock();
                if method == "Network.requestWillBeSent" {
                    s.inflight.insert(id.to_string());
                } else {
                    s.inflight.remove(id);
                }
                s.net_changed = Some(Instant::now());
                drop(s);
                self.changed.notify_all();
            }
            _ => {}
        }
    }

    fn push(&self, level: &str, text: String) {
        let mut s = self.state.lock();
        s.seq += 1;
        let entry = json!({
            "seq": s.seq, "level": level, "text": text,
            "time": crate::util::time::rfc3339(std::time::SystemTime::now()),
        });
        if s.console.len() == CONSOLE_CAP {
            s.console.pop_front();
        }
        s.console.push_back(entry);
    }
}

/// One console argument as text.
fn arg_text(a: &Value) -> String {
    match a.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => a["description"]
            .as_str()
            .or_else(|| a["type"].as_str())
            .unwrap_or("")
            .to_string(),
    }
}
