//! The page channel: a `/__agnt/ws` connection from the agnt script in a proxied page. The
//! handshake (same-origin only), the page's messages (`batch`es of browser events become log
//! entries and page-session updates, `hello`, exec `response`s, `screenshot`s), routing an
//! agent's `exec` to a page, and acknowledging screenshots once the writer thread
//! (`screenshot`) has written them. Message formats: `script/README.md`.

use std::{path::PathBuf, sync::atomic::Ordering, time::Instant};

use serde_json::{Map, Value, json};

use super::{
    Control, ExecOutcome, Shared, headers,
    http::RequestHead,
    screenshot::{self, Job, Outcome, Refused},
    session::{Conn, Ctx, Mode},
    ws::{WsConn, handshake_response},
};

/// Most events one `batch` message may carry.
const MAX_BATCH: usize = 200;

/// The page side of a `/__agnt/ws` connection.
#[derive(Debug)]
pub(crate) struct WsPage {
    pub ws: WsConn,
    pub page_id: Option<String>,
    pub url: Option<String>,
    pub last_active: Instant,
    /// The script runs in a frame, not a top-level page (from its `hello`); `exec` prefers
    /// top-level pages.
    pub frame: bool,
    /// What this page may still send this minute.
    pub budget: super::trust::PageBudget,
}

/// Bookkeeping for an `exec` in flight (kept by the loop for the `execution` log entry).
#[derive(Debug)]
pub(crate) struct ExecMeta {
    pub code: String,
    pub started: Instant,
}

/// Where an agent's `exec` goes: the most recently active top-level page; a frame only when no
/// page is connected.
pub(crate) fn exec_target<'a>(conns: impl Iterator<Item = &'a Conn>) -> Option<usize> {
    conns
        .filter(|c| c.mode == Mode::Ws && !c.closed)
        .filter_map(|c| c.ws.as_ref().map(|w| (c.id, (!w.frame, w.last_active))))
        .max_by_key(|(_, key)| *key)
        .map(|(cid, _)| cid)
}

/// What the page said about a screenshot (for its log entry).
#[derive(Debug, Clone)]
pub(crate) struct ShotMeta {
    name: String,
    width: Option<u64>,
    height: Option<u64>,
    selector: Option<String>,
    url: Option<String>,
    page_id: Option<String>,
}

/// A screenshot the writer thread is done with, on its way back to the loop.
#[derive(Debug)]
pub(crate) struct ShotDone {
    /// The page connection to acknowledge, valid in loop generation `generation` (a restarted
    /// loop numbers its connections afresh).
    pub conn: usize,
    pub generation: u32,
    req: String,
    meta: ShotMeta,
    path: PathBuf,
    outcome: Outcome,
}

/// Logs a finished screenshot (a `screenshot` entry when written) and returns the page's
/// `screenshot_saved` message.
pub(crate) fn screenshot_done(shared: &Shared, d: ShotDone) -> String {
    let ShotDone {
        req,
        meta,
        path,
        outcome,
        ..
    } = d;
    let mut ack = match outcome {
        Err(e) => json!({"error": e}),
        Ok(bytes) => {
            let file_path = path.display().to_string();
            let mut entry = json!({
                "name": meta.name.chars().take(200).collect::<String>(),
                "file_path": file_path,
                "format": "png",
                "width": meta.width,
                "height": meta.height,
                "selector": meta.selector,
                "bytes": bytes,
            });
            if let Some(u) = &meta.url {
                entry["url"] = json!(u);
            }
            let session = shared.pages.on_event(
                "screenshot",
                meta.page_id.as_deref(),
                meta.url.as_deref(),
                &entry,
            );
            entry["session_id"] = json!(session);
            let (_, id) = shared.log.push_event("screenshot", meta.page_id, entry);
            json!({"file_path": file_path, "bytes": bytes, "entry_id": id})
        }
    };
    ack["type"] = json!("screenshot_saved");
    ack["req"] = json!(req);
    ack.to_string()
}

impl Conn {
    /// `/__agnt/ws`: a WebSocket handshake `trust` admits (an Origin we serve, our page key,
    /// a peer of our uid) turns this connection into a page channel; the proxy's first message
    /// is the page config.
    pub(super) fn open_channel(&mut self, cx: &mut Ctx<'_>, head: &RequestHead) {
        let local = self.client.sock.tcp().local_addr().ok();
        if let Err(why) = cx
            .shared
            .trust
            .channel_ok(&head.target, &head.headers, self.peer, local)
        {
            // Another site's page, another local user or a stale page must neither read the
            // agent's code nor feed the log.
            log::info!("page channel from {} refused: {why}", self.peer);
            self.bad_request(
                cx,
                403,
                "Forbidden",
                &format!("page channel refused: {why}"),
            );
            return;
        }
        let Some(resp) = handshake_response(&head.headers) else {
            self.bad_request(cx, 400, "Bad Request", "expected a WebSocket upgrade");
            return;
        };
        self.send_client(&resp);
        self.mode = Mode::Ws;
        self.up = None;
        cx.shared.stats.ws_clients.fetch_add(1, Ordering::Relaxed);
        self.ws = Some(WsPage {
            ws: WsConn::new(),
            page_id: headers::page_cookie(&head.headers),
            url: None,
            last_active: Instant::now(),
            frame: false,
            budget: super::trust::PageBudget::new(),
        });
        // The script waits for this before it shows the user's panel.
        let c = &cx.shared.config;
        let cfg = json!({"type": "config", "panel": c.panel, "redact": c.redact, "redact_names": c.redact_names});
        self.ws_send(cfg.to_string());
    }

    pub(super) fn feed_ws(&mut self, cx: &mut Ctx<'_>, data: &[u8]) {
        let Some(page) = &mut self.ws else { return };
        let feed = page.ws.feed(data);
        page.last_active = Instant::now();
        for text in feed.texts {
            if !self.handle_ws_text(cx, &text) {
                cx.shared.stats.ws_errors.fetch_add(1, Ordering::Relaxed);
                self.close_after = true;
                break;
            }
        }
        if feed.error.is_some() {
            cx.shared.stats.ws_errors.fetch_add(1, Ordering::Relaxed);
        }
        if feed.closed {
            self.close_after = true;
        }
        self.flush_ws();
    }

    fn flush_ws(&mut self) {
        if let Some(page) = &mut self.ws {
            let out = page.ws.take_output();
            self.send_client(&out);
        }
    }

    /// Sends a text message to the page; false if this is not a live page connection.
    pub fn ws_send(&mut self, text: String) -> bool {
        if self.closed || self.close_after {
            return false;
        }
        let Some(page) = &mut self.ws else {
            return false;
        };
        let ok = page.ws.send_text(text);
        self.flush_ws();
        ok
    }

    /// One JSON message from the page. False = malformed (the connection is closed).
    fn handle_ws_text(&mut self, cx: &mut Ctx<'_>, text: &str) -> bool {
        let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        let Some(page) = &mut self.ws else {
            return false;
        };
        let typ = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("custom")
            .to_string();
        if !super::trust::admit(cx, page, &typ, text.len()) {
            if typ == "screenshot" {
                let req = obj.get("req").and_then(Value::as_str).unwrap_or("");
                let ack = json!({"type": "screenshot_saved", "req": req, "error": "over the page's screenshot budget"});
                self.ws_send(ack.to_string());
            }
            return true;
        }
        if let Some(pid) = obj
            .get("page_id")
            .and_then(Value::as_str)
            .filter(|p| headers::valid_page_id(p))
        {
            page.page_id = Some(pid.to_string());
        }
        let url = obj
            .get("url")
            .and_then(Value::as_str)
            .map(|u| u.chars().take(2048).collect::<String>());
        if url.is_some() {
            page.url.clone_from(&url);
        }
        let page_id = page.page_id.clone();
        match typ.as_str() {
            "response" => self.exec_response(cx, &obj, page_id),
            "batch" => {
                let Some(events) = obj.get("events").and_then(Value::as_array) else {
                    return false;
                };
                for ev in events.iter().take(MAX_BATCH) {
                    let Some(ev) = ev.as_object() else { continue };
                    let t = ev.get("type").and_then(Value::as_str).unwrap_or("custom");
                    if matches!(t, "response" | "batch" | "screenshot" | "hello") {
                        continue;
                    }
                    let eurl = ev
                        .get("url")
                        .and_then(Value::as_str)
                        .map(|u| u.chars().take(2048).collect::<String>())
                        .or_else(|| url.clone());
                    let data = ev.get("data").cloned().unwrap_or(Value::Null);
                    record_event(cx, t, data, eurl.as_deref(), page_id.clone());
                }
            }
            "screenshot" => {
                let req: String = obj
                    .get("req")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(64)
                    .collect();
                let data = obj.remove("data").unwrap_or(Value::Null);
                if let Err(e) = self.submit_screenshot(cx, data, url, page_id, req.clone()) {
                    let ack = json!({"type": "screenshot_saved", "req": req, "error": e});
                    self.ws_send(ack.to_string());
                }
            }
            "hello" => {
                let data = obj.get("data").cloned().unwrap_or(Value::Null);
                if let Some(p) = &mut self.ws {
                    p.frame = data.get("frame").and_then(Value::as_bool) == Some(true);
                }
                cx.shared
                    .pages
                    .on_event("hello", page_id.as_deref(), url.as_deref(), &data);
            }
            other => {
                let data = obj.get("data").cloned().unwrap_or(Value::Null);
                record_event(cx, other, data, url.as_deref(), page_id);
            }
        }
        true
    }

    fn exec_response(
        &mut self,
        cx: &mut Ctx<'_>,
        obj: &Map<String, Value>,
        page_id: Option<String>,
    ) {
        let Some(id) = obj.get("id").and_then(Value::as_str) else {
            return;
        };
        let success = obj.get("success").and_then(Value::as_bool).unwrap_or(false);
        let result = obj.get("result").cloned();
        let error = obj.get("error").and_then(Value::as_str).map(str::to_string);
        let meta = cx.exec_meta.remove(id);
        let duration_ms = obj
            .get("duration_ms")
            .and_then(Value::as_u64)
            .or_else(|| {
                meta.as_ref()
                    .map(|m| m.started.elapsed().as_millis() as u64)
            })
            .unwrap_or(0);
        let outcome = ExecOutcome {
            execution_id: id.to_string(),
            success,
            result: if success { result.clone() } else { None },
            error: error.clone(),
            duration_ms,
            page_id: page_id.clone(),
        };
        let code = meta.map(|m| m.code).unwrap_or_default();
        cx.shared.log.push_event(
            "execution",
            page_id,
            json!({"id": id, "code": code.chars().take(2000).collect::<String>(), "success": success, "result": result, "error": error, "duration_ms": duration_ms}),
        );
        let tx = cx.shared.pending.lock().remove(id);
        if let Some(tx) = tx {
            let _ = tx.try_send(Ok(outcome));
        }
    }

    /// Hands a page's screenshot to the proxy's writer thread (never blocking the loop); the
    /// page is answered when the file is written. `Err` = refused now (answer the page with it).
    fn submit_screenshot(
        &mut self,
        cx: &mut Ctx<'_>,
        mut data: Value,
        url: Option<String>,
        page_id: Option<String>,
        req: String,
    ) -> Result<(), String> {
        let data_url = match data.get_mut("data_url").map(Value::take) {
            Some(Value::String(s)) => s,
            _ => return Err("screenshot without data_url".into()),
        };
        screenshot::png_base64(&data_url)?;
        let meta = ShotMeta {
            name: data
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("screenshot")
                .to_string(),
            width: data.get("width").and_then(Value::as_u64),
            height: data.get("height").and_then(Value::as_u64),
            selector: data
                .get("selector")
                .and_then(Value::as_str)
                .map(str::to_string),
            url,
            page_id,
        };
        let shared = cx.shared;
        let (Some(writer), Some(dir)) = (&shared.screenshots, &shared.screenshot_dir) else {
            return Err(refuse(
                cx,
                &meta,
                "no screenshot directory is configured for this proxy \
                 (ProxyConfig::screenshot_dir or ProxyManagerOptions::screenshot_dir)"
                    .into(),
            ));
        };
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let path = dir.join(screenshot::file_name(&shared.config.id, &meta.name, millis));
        let (inbox, conn) = (shared.inbox.clone(), self.id);
        let generation = shared.restart_count.load(Ordering::SeqCst);
        let refused = meta.clone();
        let done_path = path.clone();
        let done = move |outcome: Outcome| {
            // The writer thread may wait here for room in the loop's control channel.
            inbox.send(Control::Screenshot(ShotDone {
                conn,
                generation,
                req,
                meta,
                path: done_path,
                outcome,
            }));
        };
        let job = Job {
            data_url,
            path,
            done: Box::new(done),
        };
        match writer.submit(job) {
            Ok(()) => Ok(()),
            Err(Refused::Busy) => {
                let why = format!(
                    "{} screenshots are already waiting to be written (the disk is slow or \
                     stuck); try again later",
                    writer.capacity()
                );
                Err(refuse(cx, &refused, why))
            }
            Err(Refused::Stopped) => Err(refuse(
                cx,
                &refused,
                "the screenshot writer has stopped".into(),
            )),
        }
    }
}

/// A screenshot refused before it reached the writer: an `error` entry, and the message for
/// the page.
fn refuse(cx: &mut Ctx<'_>, meta: &ShotMeta, why: String) -> String {
    let msg = format!("screenshot {:?} refused: {why}", meta.name);
    let mut data = json!({"message": msg, "screenshot": meta.name, "source": "agnt proxy"});
    if let Some(u) = &meta.url {
        data["url"] = json!(u);
    }
    cx.shared
        .log
        .push_event("error", meta.page_id.clone(), data);
    msg
}

/// One browser event → page session + traffic-log entry. Unknown types become `custom` with
/// `event_type`; `console` becomes `custom` too (its `level` says which console method).
fn record_event(
    cx: &mut Ctx<'_>,
    typ: &str,
    data: Value,
    url: Option<&str>,
    page_id: Option<String>,
) {
    let kind = match typ {
        "error" => "error",
        "performance" => "performance",
        "interaction" | "interactions" => "interaction",
        "mutation" | "mutations" => "mutation",
        "panel_message" => "panel_message",
        "execution" => "execution",
        _ => "custom",
    };
    let mut data = match data {
        Value::Object(m) => Value::Object(m),
        Value::Null => json!({}),
        other => json!({ "value": other }),
    };
    if kind == "custom" && typ != "custom" {
        data["event_type"] = json!(typ.chars().take(64).collect::<String>());
    }
    if let Some(u) = url
        && data.get("url").is_none()
    {
        data["url"] = json!(u);
    }
    let session = cx
        .shared
        .pages
        .on_event(kind, page_id.as_deref(), url, &data);
    data["session_id"] = json!(session);
    cx.shared.log.push_event(kind, page_id, data);
}
