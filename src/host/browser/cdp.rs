//! A small synchronous Chrome DevTools Protocol client over `--remote-debugging-pipe`: the
//! browser reads NUL-terminated JSON commands on its fd 3 and writes NUL-terminated JSON
//! replies and events on its fd 4. One named reader thread matches replies to waiting callers
//! by id (each call has a deadline) and hands events to one callback. No TCP port, no runtime.
//!
//! It knows nothing of pages or tools: `page.rs` builds the actions on [`Cdp::call`].

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crossbeam_channel::{Sender, bounded};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::thread::JoinOnDrop;

/// Called on the reader thread for every event: `(method, params, session id)`. It must not
/// wait for a reply (use [`Cdp::send`], never [`Cdp::call`], from inside it).
pub type EventFn = Box<dyn Fn(&Cdp, &str, &Value, Option<&str>) + Send + Sync>;

/// One browser connection.
pub struct Cdp {
    writer: Mutex<File>,
    pending: Mutex<HashMap<u64, Sender<Result<Value, String>>>>,
    next: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for Cdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cdp")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Cdp {
    /// Connects over the pipe ends (`to_browser` is the browser's fd 3, `from_browser` its
    /// fd 4) and starts the reader thread, which ends when the browser closes its end.
    pub fn connect(
        to_browser: File,
        from_browser: File,
        name: &str,
        on_event: EventFn,
    ) -> std::io::Result<(Arc<Cdp>, JoinOnDrop<()>)> {
        let cdp = Arc::new(Cdp {
            writer: Mutex::new(to_browser),
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        });
        let reader = cdp.clone();
        let thread = crate::thread::spawn(format!("agnt-cdp-{name}"), 256 * 1024, move || {
            reader.read_loop(BufReader::new(from_browser), &on_event);
        })?;
        Ok((cdp, JoinOnDrop::new(thread)))
    }

    /// Sends a command and waits for its reply until `timeout`; the error is CDP's message,
    /// a timeout, or a closed browser.
    pub fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let (tx, rx) = bounded(1);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, tx);
        if let Err(e) = self.write(id, session, method, params) {
            self.pending.lock().remove(&id);
            return Err(e);
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                self.pending.lock().remove(&id);
                if self.is_closed() {
                    Err("the browser has exited".into())
                } else {
                    Err(format!(
                        "{method}: no answer from the browser within {timeout:?}"
                    ))
                }
            }
        }
    }

    /// Sends a command without waiting for its reply (safe on the reader thread).
    pub fn send(&self, session: Option<&str>, method: &str, params: Value) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.write(id, session, method, params) {
            log::debug!("cdp send {method}: {e}");
        }
    }

    /// Whether the browser closed the pipe.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn write(
        &self,
        id: u64,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<(), String> {
        if self.is_closed() {
            return Err("the browser has exited".into());
        }
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        // The pipe is the browser's; a write only blocks while it is busy reading.
        self.writer
            .lock()
            .write_all(&bytes)
            .map_err(|e| format!("cannot write to the browser: {e}"))
    }

    fn read_loop(&self, mut r: BufReader<File>, on_event: &EventFn) {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(0, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                log::debug!("cdp: unreadable message of {} bytes", buf.len());
                continue;
            };
            if let Some(id) = msg.get("id").and_then(Value::as_u64) {
                let reply = match msg.get("error") {
                    Some(e) => Err(e
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| e.to_string(), String::from)),
                    None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                };
                if let Some(tx) = self.pending.lock().remove(&id) {
                    let _ = tx.try_send(reply);
                }
            } else if let Some(method) = msg.get("method").and_then(Value::as_str) {
                let params = msg.get("params").unwrap_or(&Value::Null);
                on_event(
                    self,
                    method,
                    params,
                    msg.get("sessionId").and_then(Value::as_str),
                );
            }
        }
        self.closed.store(true, Ordering::Release);
        // Waiting callers learn at once: dropping their senders disconnects them.
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in waiting {
            let _ = tx.try_send(Err("the browser has exited".into()));
        }
    }
}
