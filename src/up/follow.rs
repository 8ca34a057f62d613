//! Following one script: a thread with its own connection reads the process's combined output
//! through `proc output` (with a cursor) and blocks between reads in `wait for: log`, prints
//! each complete line with the script's prefix, starts the `script "NAME"` proxies once a line
//! names the script's local URL ([`UrlWatch`]), and at the end prints `[agnt: exited, ...]` and
//! reports the [`Exit`]. It never stops or starts the process itself.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use crossbeam_channel::Sender;
use serde_json::json;

use super::{
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
        };
        let passed = f.run();
        let _ = done.send(Exit { passed });
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
}

impl Follower {
    /// Prints the output until the process has ended; returns whether it passed.
    fn run(&mut self) -> bool {
        let (id, root) = (self.follow.id.clone(), self.client.project.clone());
        let prefix = self.follow.prefix.clone();
        let idle = if self.follow.owned {
            IDLE_WAIT_OWNED
        } else {
            IDLE_WAIT_FOREIGN
        };
        let mut cursor = 0u64;
        let mut partial = String::new();
        loop {
            let args = json!({"action": "output", "process_id": id, "since": cursor, "max_bytes": READ_BYTES, "path": root});
            let Ok(out) = link::tool(&mut self.client, "proc", args) else {
                break;
            };
            if let Some(lost) = out["lost_bytes"].as_u64().filter(|n| *n > 0) {
                let msg = format!("[agnt: {lost} bytes of output lost to the ring buffer]");
                self.printer.line(&prefix, &msg);
            }
            let text = out["output"].as_str().unwrap_or("");
            cursor = out["next_offset"].as_u64().unwrap_or(cursor).max(cursor);
            if !text.is_empty() {
                partial.push_str(text);
                let printed = self.printer.complete_lines(&prefix, &mut partial);
                self.scan(&printed);
                continue;
            }
            let ended = matches!(out["state"].as_str(), Some("stopped" | "failed"));
            if ended || (!self.follow.owned && self.closing.load(Ordering::SeqCst)) {
                break;
            }
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
        let status = json!({"action": "status", "process_id": id, "path": root});
        let st = link::tool(&mut self.client, "proc", status).unwrap_or_default();
        if matches!(st["state"].as_str(), Some("stopped" | "failed")) {
            let summary = st["summary"].as_str().unwrap_or("?");
            self.printer
                .line(&prefix, &format!("[agnt: exited, {summary}]"));
        }
        st["exit_code"].as_i64() == Some(0)
    }

    fn scan(&mut self, printed: &str) {
        let Some(watch) = &mut self.follow.watch else {
            return;
        };
        let Some((target, pending)) = watch.take(printed) else {
            return;
        };
        for entry in pending {
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
    pending: Vec<ProxyEntry>,
}

impl UrlWatch {
    /// The proxies of `entries` whose target is `script`'s printed URL; `None` when none waits.
    pub(super) fn for_script(script: &ScriptConfig, entries: &[ProxyEntry]) -> Option<UrlWatch> {
        let pending: Vec<_> = entries
            .iter()
            .filter(|e| e.script.as_deref() == Some(&script.name))
            .cloned()
            .collect();
        if pending.is_empty() {
            return None;
        }
        // Config parsing validated these patterns already.
        let matchers = script
            .url_matchers
            .iter()
            .filter_map(|m| regex::Regex::new(m).ok())
            .collect();
        Some(UrlWatch { matchers, pending })
    }

    /// On the first line of `text` that names a local URL: that URL and the waiting proxies
    /// (once).
    fn take(&mut self, text: &str) -> Option<(String, Vec<ProxyEntry>)> {
        if self.pending.is_empty() {
            return None;
        }
        let url = text
            .lines()
            .find_map(|l| crate::urlwatch::find_url(l, &self.matchers))?;
        Some((url, std::mem::take(&mut self.pending)))
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
        }
    }

    #[test]
    fn url_watch_hands_out_its_proxies_once() {
        let mut w = UrlWatch {
            matchers: vec![],
            pending: vec![entry("web", "site"), entry("web2", "site")],
        };
        assert!(w.take("compiling...\n").is_none());
        let (url, pending) = w
            .take("compiled\n  Local:   http://localhost:5173/\n")
            .expect("a URL");
        assert_eq!(url, "http://localhost:5173");
        assert_eq!(pending.len(), 2);
        assert!(w.take("Local: http://localhost:5173/\n").is_none());
    }
}
