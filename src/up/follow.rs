//! Following one script: a thread with its own connection reads the process's combined output
//! through `proc output` (with a cursor) and blocks between reads in `wait for: log`, prints
//! each complete line with the script's prefix, starts the `script "NAME"` proxies once a line
//! names the script's local URL ([`UrlWatch`]; one whose `url-pattern` it matches, or, after
//! [`FALLBACK_DELAY`] without one, on its `fallback-port`), and at the end prints `[agnt: exited, ...]` and
//! reports the [`Exit`]. It never stops or starts the process itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::Sender;
use serde_json::json;

use super::{
    conflict::{self, Verdict},
    link::{self, Link, Owned},
    printer::Printer,
};
use crate::{
    Error, Result,
    config::{ProxyEntry, ScriptConfig},
    daemon::client::Client,
    thread::JoinOnDrop,
};

/// How a followed script ended.
#[derive(Debug)]
pub(super) struct Exit {
    /// Whether it exited with status 0.
    pub(super) passed: bool,
    /// A port conflict failed it: the session fails with this message.
    pub(super) abort: Option<String>,
}

/// One follower's settings.
#[derive(Debug)]
pub(super) struct Follow {
    /// The process id (the script's name).
    pub(super) id: String,
    /// Its printed prefix.
    pub(super) prefix: String,
    /// Proxies waiting for its URL.
    pub(super) watch: Option<UrlWatch>,
    /// Whether this session started it (and so will stop it); a process someone else started
    /// is followed only until `closing` is set.
    pub(super) owned: bool,
}

/// Most bytes one read asks for (more than a ring holds, so a read never skips output).
const READ_BYTES: u64 = 4 << 20;
/// Seconds one idle wait for output lasts (it also ends at once when the process exits).
const IDLE_WAIT_OWNED: f64 = 30.0;
/// The same for a process the session did not start: it outlives us, so check `closing` often.
const IDLE_WAIT_FOREIGN: f64 = 1.0;
/// How long a proxy with a `fallback-port` waits for its script's URL before using the port.
pub(super) const FALLBACK_DELAY: Duration = Duration::from_secs(5);
/// How often a follower looks for the next run of an `auto-restart` script.
const RESTART_POLL: Duration = Duration::from_millis(100);
/// Longest wait for the run that replaces one with a port conflict (the old one's grace
/// included).
pub(super) const CLASH_RESTART_WAIT: Duration = Duration::from_secs(30);

/// Starts a follower thread; it reports on `done` once the process has exited and all its
/// output is printed (or when the link is gone).
pub(super) fn spawn(
    link: &Link,
    follow: Follow,
    printer: Arc<Printer>,
    owned: Arc<Owned>,
    closing: Arc<AtomicBool>,
    done: Sender<Exit>,
) -> Result<JoinOnDrop<()>> {
    let client = link.connect()?;
    let name = format!("agnt-up-{}", follow.id);
    let handle = crate::thread::spawn(name, crate::thread::SMALL_STACK * 2, move || {
        let mut f = Follower {
            client,
            follow,
            printer,
            owned,
            closing,
            clash: None,
        };
        let passed = f.run();
        let abort = match f.clash {
            Some(Verdict::Abort(msg)) => Some(msg),
            _ => None,
        };
        let _ = done.send(Exit { passed, abort });
    })
    .map_err(|e| Error::io("starting an output follower", None, e))?;
    Ok(JoinOnDrop::new(handle))
}

struct Follower {
    client: Client,
    follow: Follow,
    printer: Arc<Printer>,
    owned: Arc<Owned>,
    closing: Arc<AtomicBool>,
    /// What the current run's port conflict led to, once it had one.
    clash: Option<Verdict>,
}

impl Follower {
    /// Prints the output until the process has ended; returns whether it passed.
    fn run(&mut self) -> bool {
        loop {
            let (passed, restarts) = self.run_once();
            if self.clash == Some(Verdict::Restarting) {
                self.clash = None;
                let deadline = Instant::now() + CLASH_RESTART_WAIT;
                if !self.closing.load(Ordering::SeqCst)
                    && conflict::await_restart(&mut self.client, &self.follow.id, deadline)
                {
                    self.printer
                        .line(&self.follow.prefix, "[agnt: restarted (port conflict)]");
                    continue;
                }
            }
            match restarts {
                Some(n) if self.await_restart(n) => continue,
                _ => return passed,
            }
        }
    }

    /// After an `auto-restart` process exited with `restarts` so far: waits (polling its status
    /// every [`RESTART_POLL`], past the longest backoff at most) for the next run; `true` when
    /// it is there.
    fn await_restart(&mut self, restarts: u64) -> bool {
        let (id, root) = (self.follow.id.clone(), self.client.project.clone());
        let deadline = Instant::now() + crate::supervisor::restart::MAX_BACKOFF + RESTART_POLL * 20;
        while Instant::now() < deadline && !self.closing.load(Ordering::SeqCst) {
            let status = json!({"action": "status", "process_id": id, "path": root});
            let Ok(st) = link::tool(&mut self.client, "proc", status) else {
                return false;
            };
            if st["restarts"].as_u64().is_some_and(|n| n > restarts) {
                self.printer
                    .line(&self.follow.prefix, "[agnt: restarted (auto-restart)]");
                return true;
            }
            std::thread::sleep(RESTART_POLL);
        }
        false
    }

    /// Follows one run; returns whether it passed, and its restart count when it exited and
    /// will be restarted.
    fn run_once(&mut self) -> (bool, Option<u64>) {
        let (id, root) = (self.follow.id.clone(), self.client.project.clone());
        let prefix = self.follow.prefix.clone();
        let idle = if self.follow.owned {
            IDLE_WAIT_OWNED
        } else {
            IDLE_WAIT_FOREIGN
        };
        let mut cursor = 0u64;
        let mut partial = String::new();
        // The run followed (a port-conflict restart replaces it under the same id).
        let mut run_pid = None;
        loop {
            let args = json!({"action": "output", "process_id": id, "since": cursor, "max_bytes": READ_BYTES, "path": root});
            let Ok(out) = link::tool(&mut self.client, "proc", args) else {
                break;
            };
            if let Some(lost) = out["lost_bytes"].as_u64().filter(|n| *n > 0) {
                let msg = format!("[agnt: {lost} bytes of output lost to the ring buffer]");
                self.printer.line(&prefix, &msg);
            }
            let pid = out["pid"].as_i64();
            if run_pid.is_some() && pid.is_some() && pid != run_pid {
                // Replaced by its port-conflict restart: this answer is the new run's.
                break;
            }
            run_pid = run_pid.or(pid);
            if self.clash.is_none() && out["port_conflict"].is_object() {
                self.clash = Some(conflict::after_start(
                    &mut self.client,
                    &id,
                    &out["port_conflict"],
                ));
            }
            let text = out["output"].as_str().unwrap_or("");
            cursor = out["next_offset"].as_u64().unwrap_or(cursor).max(cursor);
            if !text.is_empty() {
                partial.push_str(text);
                let printed = self.printer.complete_lines(&prefix, &mut partial);
                self.scan(&printed);
                self.fallback();
                continue;
            }
            let ended = matches!(out["state"].as_str(), Some("stopped" | "failed"));
            if ended || (!self.follow.owned && self.closing.load(Ordering::SeqCst)) {
                break;
            }
            self.fallback();
            let idle = match self.follow.watch.as_ref().and_then(UrlWatch::fallback_in) {
                Some(left) => idle.min(left.as_secs_f64().max(0.05)),
                None => idle,
            };
            // Its restart comes soon: a wait issued after it would watch the new run with
            // this run's cursor, so look again shortly instead.
            let idle = if self.clash == Some(Verdict::Restarting) {
                RESTART_POLL.as_secs_f64()
            } else {
                idle
            };
            // Blocks until output past the cursor arrives or the process ends (then the wait
            // fails at once, and the next read sees the end).
            let wait = json!({"for": "log", "process_id": id, "pattern": "^", "since": cursor, "timeout": idle, "path": root});
            if let Err(Error::DaemonClosed) = link::tool(&mut self.client, "wait", wait) {
                break;
            }
        }
        if !partial.is_empty() {
            self.printer.line(&prefix, &partial);
        }
        let st = conflict::settled_status(&mut self.client, &id).unwrap_or_default();
        if self.clash.is_none() {
            let restart = &st["restarted_for_port_conflict"];
            if restart.is_object() && run_pid.is_some() && st["pid"].as_i64() != run_pid {
                // The verdict came after our last read, and its restart is already there.
                let message = restart["message"].as_str().unwrap_or("port conflict");
                eprintln!("agnt up: script {id:?}: {message}");
                self.clash = Some(Verdict::Restarting);
                return (false, None);
            }
            if st["port_conflict"].is_object() {
                self.clash = Some(conflict::after_start(
                    &mut self.client,
                    &id,
                    &st["port_conflict"],
                ));
            }
        }
        let ended = matches!(st["state"].as_str(), Some("stopped" | "failed"));
        if ended {
            let summary = st["summary"].as_str().unwrap_or("?");
            self.printer
                .line(&prefix, &format!("[agnt: exited, {summary}]"));
        }
        // A requested stop reads "stopped" with no exit code of its own choosing; a process
        // that ended by itself with auto-restart on comes back.
        let restarts = (ended
            && st["auto_restart"] == true
            && !st["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("stopped"))
            && !self.closing.load(Ordering::SeqCst))
        .then(|| st["restarts"].as_u64().unwrap_or(0));
        (st["exit_code"].as_i64() == Some(0), restarts)
    }

    fn scan(&mut self, printed: &str) {
        let Some(watch) = &mut self.follow.watch else {
            return;
        };
        let found = watch.take(printed);
        self.start_proxies(found);
    }

    /// Past the fallback delay: the proxies with a `fallback-port` start on it.
    fn fallback(&mut self) {
        let Some(watch) = &mut self.follow.watch else {
            return;
        };
        let due = watch.take_fallback(Instant::now());
        for (_, entry) in &due {
            let msg = format!(
                "[agnt: no URL for proxy {:?} yet: using its fallback-port]",
                entry.name
            );
            self.printer.line(&self.follow.prefix, &msg);
        }
        self.start_proxies(due);
    }

    fn start_proxies(&mut self, found: Vec<(String, ProxyEntry)>) {
        for (target, entry) in found {
            match link::start_proxy(&mut self.client, &self.owned, &entry, &target) {
                Ok(url) => self.printer.proxy(&entry.name, &url, &target),
                Err(e) => eprintln!("agnt up: {e}"),
            }
        }
    }
}

/// Proxies waiting for their script to print a local URL.
#[derive(Debug)]
pub(super) struct UrlWatch {
    matchers: Vec<regex::Regex>,
    /// Each waiting proxy with its compiled `url-pattern`.
    pending: Vec<(ProxyEntry, Option<regex::Regex>)>,
    /// When proxies with a `fallback-port` stop waiting.
    fallback_at: Instant,
}

impl UrlWatch {
    /// The proxies of `entries` whose target is `script`'s printed URL; `None` when none waits.
    pub(super) fn for_script(script: &ScriptConfig, entries: &[ProxyEntry]) -> Option<UrlWatch> {
        // Config parsing validated these patterns already.
        let pending: Vec<_> = entries
            .iter()
            .filter(|e| e.script.as_deref() == Some(&script.name))
            .map(|e| {
                let pattern = e.url_pattern.as_deref();
                (e.clone(), pattern.and_then(|p| regex::Regex::new(p).ok()))
            })
            .collect();
        if pending.is_empty() {
            return None;
        }
        let matchers = script
            .url_matchers
            .iter()
            .filter_map(|m| crate::urlwatch::compile_matcher(m).ok())
            .collect();
        Some(UrlWatch {
            matchers,
            pending,
            fallback_at: Instant::now() + FALLBACK_DELAY,
        })
    }

    /// For each line of `text` that names a local URL: the waiting proxies it suits (no
    /// `url-pattern`, or one the URL matches), each handed out once, with that URL.
    fn take(&mut self, text: &str) -> Vec<(String, ProxyEntry)> {
        let mut found = Vec::new();
        for line in text.lines() {
            if self.pending.is_empty() {
                break;
            }
            let Some(url) = crate::urlwatch::find_url(line, &self.matchers) else {
                continue;
            };
            let (suited, rest) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(_, p)| p.as_ref().is_none_or(|p| p.is_match(&url)));
            self.pending = rest;
            found.extend(suited.into_iter().map(|(e, _)| (url.clone(), e)));
        }
        found
    }

    /// Time left before a waiting proxy falls back to its `fallback-port` (`None`: none would).
    fn fallback_in(&self) -> Option<Duration> {
        self.pending
            .iter()
            .any(|(e, _)| e.fallback_port.is_some())
            .then(|| self.fallback_at.saturating_duration_since(Instant::now()))
    }

    /// At or past the fallback time: the waiting proxies with a `fallback-port`, targeting it.
    fn take_fallback(&mut self, now: Instant) -> Vec<(String, ProxyEntry)> {
        if now < self.fallback_at {
            return Vec::new();
        }
        let (due, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(e, _)| e.fallback_port.is_some());
        self.pending = rest;
        due.into_iter()
            .map(|(e, _)| {
                let port = e.fallback_port.unwrap_or_default();
                (format!("http://localhost:{port}"), e)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, script: &str) -> ProxyEntry {
        ProxyEntry {
            name: name.into(),
            target: None,
            script: Some(script.into()),
            port: None,
            autostart: false,
            max_log_size: None,
            allowed_hosts: Vec::new(),
            allow_lan: false,
            redact: true,
            redact_names: Vec::new(),
            deadlines: Default::default(),
            url_pattern: None,
            fallback_port: None,
            bind: None,
            websocket: None,
            wait_for: Vec::new(),
            verify_tls: None,
        }
    }

    fn watch(pending: Vec<ProxyEntry>) -> UrlWatch {
        UrlWatch {
            matchers: vec![],
            pending: pending
                .into_iter()
                .map(|e| {
                    let p = e
                        .url_pattern
                        .as_deref()
                        .map(|p| regex::Regex::new(p).unwrap());
                    (e, p)
                })
                .collect(),
            fallback_at: Instant::now() + FALLBACK_DELAY,
        }
    }

    #[test]
    fn url_watch_hands_out_its_proxies_once() {
        let mut w = watch(vec![entry("web", "site"), entry("web2", "site")]);
        assert!(w.take("compiling...\n").is_empty());
        let found = w.take("compiled\n  Local:   http://localhost:5173/\n");
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|(url, _)| url == "http://localhost:5173"));
        assert!(w.take("Local: http://localhost:5173/\n").is_empty());
    }

    #[test]
    fn url_pattern_picks_its_url_and_fallback_port_waits_for_the_delay() {
        let mut backend = entry("backend", "wails");
        backend.url_pattern = Some(":34115".into());
        let mut front = entry("front", "wails");
        front.fallback_port = Some(5173);
        let mut w = watch(vec![backend, front]);
        let found = w.take("Vite: http://localhost:5173/\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.name, "front");
        let found = w.take("DevServer URL: http://localhost:34115\n");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.name.as_str()),
            ("http://localhost:34115", "backend")
        );

        let mut late = entry("late", "s");
        late.fallback_port = Some(4000);
        let mut w = watch(vec![late, entry("plain", "s")]);
        assert!(w.fallback_in().is_some());
        assert!(w.take_fallback(Instant::now()).is_empty());
        let due = w.take_fallback(Instant::now() + FALLBACK_DELAY);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "http://localhost:4000");
        assert_eq!(w.fallback_in(), None);
        assert_eq!(w.pending.len(), 1);
    }
}
