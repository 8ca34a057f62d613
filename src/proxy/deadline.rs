//! Every wait a connection can be in has a deadline: `ProxyLimits` (the configurable ones),
//! `DeadlineSet` (one instant per connection, ordered, so the loop's `poll` sleeps exactly until
//! the next one — no timer threads, no periodic sweep over every connection) and the part of
//! `Conn` that says when its next deadline is (`next_deadline`) and what happens when it passes
//! (`check_timeouts`). Each fired deadline of an exchange leaves an `error` entry naming it.
//!
//! `next_deadline` and `check_timeouts` must agree: a deadline that has passed is acted on
//! (which moves or clears it), or the loop would spin.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    answers,
    exchange::Resp,
    session::{Conn, Ctx, Mode},
};

/// Deadlines and bounds of one proxy (`ProxyConfig::limits`); see `LIFECYCLE.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ProxyLimits {
    /// An upstream connect (with the TLS handshake, for an `https://` target) that has not
    /// completed by then fails with 502. Default 10 s.
    pub connect_timeout: Duration,
    /// A request sent in full with no response head by then gets a 504 page. Default 60 s.
    pub response_timeout: Duration,
    /// Body progress: while an exchange's body moves (either way) or the client has bytes to
    /// read, fewer than `body_min_bytes` moving within this window cuts it. Default 30 s.
    pub body_window: Duration,
    /// See `body_window`. Default 1 KiB.
    pub body_min_bytes: u64,
    /// WebSocket tunnels and `text/event-stream` responses idle this long are closed; `None`
    /// (the default) = no limit: hot-reload sockets sit idle for hours.
    pub stream_idle_timeout: Option<Duration>,
    /// Bytes of HTML one proxy may hold for injection across all its exchanges (buffered pages
    /// and injected pages not yet read by their clients); above it pages pass through
    /// uninjected. Default 64 MiB.
    pub inject_budget: usize,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            body_window: Duration::from_secs(30),
            body_min_bytes: 1024,
            stream_idle_timeout: None,
            inject_budget: 64 * 1024 * 1024,
        }
    }
}

/// The next deadline of each connection, ordered by time.
#[derive(Debug, Default)]
pub(crate) struct DeadlineSet {
    order: BTreeSet<(Instant, usize)>,
    at: HashMap<usize, Instant>,
}

impl DeadlineSet {
    /// Sets (or with `None` clears) connection `id`'s deadline.
    pub fn set(&mut self, id: usize, when: Option<Instant>) {
        let old = self.at.get(&id).copied();
        if old == when {
            return;
        }
        if let Some(o) = old {
            self.order.remove(&(o, id));
            self.at.remove(&id);
        }
        if let Some(w) = when {
            self.order.insert((w, id));
            self.at.insert(id, w);
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(t, _)| *t)
    }

    /// Removes and returns the connections whose deadline is at or before `now`.
    pub fn expired(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(&(t, id)) = self.order.first() {
            if t > now {
                break;
            }
            self.order.pop_first();
            self.at.remove(&id);
            out.push(id);
        }
        out
    }
}

/// `1.5 s`, `300 ms`.
pub(crate) fn words(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl Conn {
    /// Whether the body-progress window runs: an exchange's body is moving (not a stream, not
    /// waiting for a response head with the request sent), or the client has bytes to read.
    fn window_runs(&self) -> bool {
        if self.client.pending() > 0 {
            return true;
        }
        self.ex.as_ref().is_some_and(|ex| {
            let awaiting_head = ex.req_body.is_none() && matches!(ex.resp, Resp::AwaitHead);
            !ex.stream && !awaiting_head
        })
    }

    /// When this connection next needs attention (`None`: never on its own).
    pub fn next_deadline(&self, cx: &Ctx<'_>) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let cfg = &cx.shared.config;
        let lim = &cfg.limits;
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if let Some(up) = &self.up
            && !up.established()
        {
            at(up.connect_started + lim.connect_timeout);
        }
        match self.mode {
            Mode::Ws => {}
            Mode::Tunnel => {
                if let Some(t) = lim.stream_idle_timeout {
                    at(self.last_activity + t);
                }
            }
            Mode::Http => {
                if self.close_after {
                    at(self.last_activity + cfg.idle_timeout);
                } else if let Some(ex) = &self.ex {
                    if ex.stream {
                        if let Some(t) = lim.stream_idle_timeout {
                            at(self.last_activity + t);
                        }
                    } else if ex.req_body.is_none() && matches!(ex.resp, Resp::AwaitHead) {
                        at(ex.waiting_since + lim.response_timeout);
                    }
                } else if let Some(t) = self.head_started {
                    at(t + cfg.header_timeout);
                } else {
                    at(self.last_activity + cfg.idle_timeout);
                }
                if self.window_runs() {
                    at(self.window_start + lim.body_window);
                }
            }
        }
        d
    }

    /// Acts on every deadline that has passed at `now`.
    pub fn check_timeouts(&mut self, cx: &mut Ctx<'_>, now: Instant) {
        if self.closed {
            return;
        }
        let cfg = &cx.shared.config;
        let lim = cfg.limits;
        let (idle, header) = (cfg.idle_timeout, cfg.header_timeout);
        if let Some(up) = &self.up
            && !up.established()
            && now >= up.connect_started + lim.connect_timeout
        {
            let what = if up.connected {
                "the TLS handshake with the upstream"
            } else {
                "connecting to the upstream"
            };
            let why = format!("{what} timed out after {}", words(lim.connect_timeout));
            self.deadline_entry(cx, "connect", &why);
            self.fail_upstream(cx, &why);
            return;
        }
        match self.mode {
            Mode::Ws => return,
            Mode::Tunnel => {
                if let Some(t) = lim.stream_idle_timeout
                    && now >= self.last_activity + t
                {
                    let why = format!("tunnel idle for {}", words(t));
                    self.deadline_entry(cx, "stream_idle", &why);
                    self.closed = true;
                }
                return;
            }
            Mode::Http => {}
        }
        if self.close_after {
            // Already answered and closing: a client that does not read its answer gets until
            // the idle timeout, then it is dropped (no second answer is ever queued).
            if now >= self.last_activity + idle {
                self.closed = true;
            }
            return;
        }
        if self.window_runs() && now >= self.window_start + lim.body_window {
            if self.moved - self.window_moved >= lim.body_min_bytes {
                self.window_start = now;
                self.window_moved = self.moved;
            } else {
                self.body_stalled(cx, lim);
                return;
            }
        }
        let Some(ex) = &self.ex else {
            if let Some(t) = self.head_started {
                if now >= t + header {
                    cx.shared
                        .stats
                        .timeouts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.bad_request(
                        cx,
                        408,
                        "Request Timeout",
                        "request head not received in time",
                    );
                    self.closed = self.client.flushed();
                }
            } else if now >= self.last_activity + idle {
                self.closed = true;
            }
            return;
        };
        if ex.stream {
            if let Some(t) = lim.stream_idle_timeout
                && now >= self.last_activity + t
            {
                let why = format!("event stream idle for {}", words(t));
                self.deadline_entry(cx, "stream_idle", &why);
                self.fail_upstream(cx, &why);
            }
        } else if ex.req_body.is_none()
            && matches!(ex.resp, Resp::AwaitHead)
            && now >= ex.waiting_since + lim.response_timeout
        {
            let waited = now - ex.waiting_since;
            let why = format!("no response head within {}", words(waited));
            self.deadline_entry(cx, "response_head", &why);
            let target = cx.shared.config.target_url.clone();
            self.answer_timeout(cx, answers::gateway_timeout(&target, &waited, true), &why);
        }
    }

    /// Less than `body_min_bytes` moved within the window: find out who stalled and cut it.
    fn body_stalled(&mut self, cx: &mut Ctx<'_>, lim: super::ProxyLimits) {
        let window = words(lim.body_window);
        let min = lim.body_min_bytes;
        let client_stuck = self.client.pending() > 0 && !self.client.writable;
        let resp_started = self.ex.as_ref().is_some_and(|x| x.resp_started);
        if self.ex.is_none() || (client_stuck && resp_started) {
            // Client side, something already answered: close.
            let why = format!(
                "client read less than {min} bytes in {window} ({} bytes waiting)",
                self.client.pending()
            );
            self.deadline_entry(cx, "client_read", &why);
            if let Some(ex) = &mut self.ex {
                ex.cut = Some(why);
            }
            self.closed = true;
            return;
        }
        let up_stuck = self
            .up
            .as_ref()
            .is_some_and(|u| u.half.pending() > 0 && !u.half.writable);
        let req_open = self.ex.as_ref().is_some_and(|x| x.req_body.is_some());
        if resp_started {
            let why = format!("upstream sent less than {min} bytes of the body in {window}");
            self.deadline_entry(cx, "response_body", &why);
            self.fail_upstream(cx, &why);
        } else if req_open && up_stuck {
            let why =
                format!("upstream read less than {min} bytes of the request body in {window}");
            self.deadline_entry(cx, "request_body", &why);
            let target = cx.shared.config.target_url.clone();
            let waited = self
                .ex
                .as_ref()
                .map(|x| x.start.elapsed())
                .unwrap_or_default();
            self.answer_timeout(cx, answers::gateway_timeout(&target, &waited, true), &why);
        } else {
            let why = format!("client sent less than {min} bytes of the request body in {window}");
            self.deadline_entry(cx, "request_body", &why);
            let mut rec = self.record();
            rec.status = 408;
            rec.error = Some(why.clone());
            let page = self.ex.take().and_then(|x| x.page_id);
            cx.shared.log.push_http(page, rec);
            self.bad_request(cx, 408, "Request Timeout", &why);
        }
    }

    /// Answers the exchange with the proxy's own page (a 504), logs it, drops the upstream.
    fn answer_timeout(&mut self, cx: &mut Ctx<'_>, answer: answers::BadGateway, why: &str) {
        let mut rec = self.record();
        rec.status = answer.status;
        rec.error = Some(why.to_string());
        rec.response_headers = answer.headers;
        rec.response_body = answer.body;
        let ex = self.ex.take();
        cx.shared
            .log
            .push_http(ex.as_ref().and_then(|x| x.page_id.clone()), rec);
        self.up = None;
        self.send_client(&answer.response);
        // The request may not have been read in full: never reuse the connection.
        self.close_after = true;
        self.last_activity = Instant::now();
    }

    /// The `error` entry of a fired deadline, naming the exchange (or the connection).
    pub(super) fn deadline_entry(&self, cx: &mut Ctx<'_>, which: &str, why: &str) {
        cx.shared
            .stats
            .timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (method, url, elapsed, page) = match &self.ex {
            Some(ex) => (
                ex.method.clone(),
                ex.url.clone(),
                ex.start.elapsed(),
                ex.page_id.clone(),
            ),
            None => (String::new(), String::new(), Duration::ZERO, None),
        };
        let what = if url.is_empty() {
            format!("connection from {}", self.peer)
        } else {
            format!("{method} {url}")
        };
        let message = format!(
            "proxy deadline {which}: {what}: {why} (after {})",
            words(elapsed)
        );
        log::debug!("proxy {}: {message}", cx.shared.config.id);
        cx.shared.log.push_event(
            "error",
            page,
            json!({
                "message": message,
                "source": "agnt proxy",
                "deadline": which,
                "method": method,
                "url": url,
                "elapsed_ms": elapsed.as_millis() as u64,
                "target": cx.shared.config.target_url,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_orders_moves_and_expires() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_millis(n);
        let mut d = DeadlineSet::default();
        d.set(1, Some(s(30)));
        d.set(2, Some(s(10)));
        d.set(3, Some(s(20)));
        assert_eq!(d.next(), Some(s(10)));
        d.set(2, Some(s(40)));
        d.set(3, None);
        assert_eq!(d.next(), Some(s(30)));
        assert_eq!(d.expired(s(35)), vec![1]);
        assert_eq!(d.next(), Some(s(40)));
        assert!(d.expired(s(39)).is_empty());
        assert_eq!(d.expired(s(40)), vec![2]);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn words_are_short() {
        assert_eq!(words(Duration::from_millis(300)), "300 ms");
        assert_eq!(words(Duration::from_secs(60)), "60.0 s");
    }
}
