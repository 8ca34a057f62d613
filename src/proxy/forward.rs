//! The HTTP forwarding flow of a connection (`Mode::Http`): a request head is parsed, rewritten
//! (`headers`) and sent upstream on the connection's upstream socket (reused across exchanges,
//! connected on demand), its body streamed through; the response head is rewritten, HTML (and
//! an `https://` target's CSS/JS) is buffered, its target URLs rewritten (`rewrite`) and HTML
//! injected (`inject`), anything else streams in its original framing; the log
//! entry is written before the last byte reaches the client. Failures before any response byte
//! become a 502 page (`answers`), after it the client connection is closed (a page held for
//! injection is sent as far as it came first), so the client sees a truncated transfer. A
//! response that arrives while the request body is still going up is forwarded as it is.

use std::{sync::atomic::Ordering, time::Instant};

use serde_json::json;

use super::{
    answers,
    exchange::{BodyState, Exchange, INJECT_LIMIT, InjectBuf, Resp},
    half::BACKPRESSURE,
    headers,
    http::{self, BodyFraming, HeadError, RequestHead, ResponseHead},
    inject, pages,
    rewrite::Rewriter,
    session::{Conn, Ctx, Mode},
    traffic::{HttpRecord, capture},
};

impl Conn {
    /// Moves the exchange's captured data into a log record (the exchange ends right after).
    pub(super) fn record(&mut self) -> HttpRecord {
        self.ex
            .as_mut()
            .map(Exchange::take_record)
            .unwrap_or_default()
    }

    pub(super) fn process_http_client(&mut self, cx: &mut Ctx<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.close_after || self.closed || self.mode != Mode::Http {
                return progress;
            }
            if self.ex.is_none() {
                if self.client.inb.is_empty() || self.client.pending() > BACKPRESSURE {
                    return progress;
                }
                if self.head_started.is_none() {
                    self.head_started = Some(Instant::now());
                }
                match http::parse_request(&self.client.inb) {
                    Err(HeadError::TooLarge) => {
                        self.bad_request(
                            cx,
                            431,
                            "Request Header Fields Too Large",
                            "request head over 64 KiB",
                        );
                        return true;
                    }
                    Err(HeadError::Malformed(m)) => {
                        self.bad_request(cx, 400, "Bad Request", &m);
                        return true;
                    }
                    Ok(None) => return progress,
                    Ok(Some((head, n))) => {
                        self.client.inb.drain(..n);
                        self.head_started = None;
                        progress = true;
                        self.start_exchange(cx, head);
                        continue;
                    }
                }
            }
            // Forward the request body as it arrives (wire bytes unchanged; decoded for capture).
            let Some(ex) = &mut self.ex else {
                return progress;
            };
            let Some(body) = &mut ex.req_body else {
                return progress;
            };
            if self.client.inb.is_empty() || self.up.is_none() {
                return progress;
            }
            if self.up.as_ref().is_some_and(|u| u.write_dead) {
                // The upstream stopped reading (an early answer): the rest of the body is
                // dropped; the connection closes once the answer is through.
                self.client.inb.clear();
                return true;
            }
            let (req_cap, req_trunc) = (&mut ex.req_cap, &mut ex.req_trunc);
            match body.take(&self.client.inb, false, |d| capture(req_cap, req_trunc, d)) {
                Ok((n, done)) => {
                    let bytes: Vec<u8> = self.client.inb.drain(..n).collect();
                    if done {
                        ex.req_body = None;
                        ex.waiting_since = Instant::now();
                    }
                    self.send_upstream(&bytes);
                    progress |= n > 0;
                    if !done {
                        return progress;
                    }
                }
                Err(e) => {
                    // The head already went upstream; the exchange cannot be completed.
                    let mut rec = self.record();
                    rec.error = Some(format!("bad request body: {e}"));
                    cx.shared
                        .log
                        .push_http(self.ex.as_ref().and_then(|x| x.page_id.clone()), rec);
                    self.ex = None;
                    self.bad_request(cx, 400, "Bad Request", &e);
                    return true;
                }
            }
        }
    }

    fn start_exchange(&mut self, cx: &mut Ctx<'_>, head: RequestHead) {
        cx.shared
            .stats
            .total_requests
            .fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        self.last_activity = now;
        self.reset_window(now);
        if let Err(refusal) = cx.shared.trust.check_request(&head.headers) {
            return self.refuse_request(cx, &head.headers, refusal);
        }
        if head.target.starts_with("/__agnt/") {
            self.local_route(cx, &head);
            return;
        }
        let framing = match http::request_framing(&head) {
            Ok(f) => f,
            Err(e) => {
                self.bad_request(cx, 400, "Bad Request", &e.to_string());
                return;
            }
        };
        let client_host = http::header_str(&head.headers, "host");
        let page_id = headers::page_cookie(&head.headers);
        let client_keep_alive = http::keep_alive(head.version, &head.headers);
        let mut up_head = head.clone();
        headers::rewrite_request(
            &mut up_head.headers,
            &cx.shared.target.host_header,
            self.peer.ip(),
            cx.shared.target.tls.is_some(),
        );
        cx.shared.trust.add_via(&mut up_head.headers);
        let mut bytes = Vec::with_capacity(512);
        http::write_request(&up_head, &mut bytes);
        let reuse = self
            .up
            .as_ref()
            .is_some_and(|u| !u.half.eof && u.connected && u.half.inb.is_empty());
        if !reuse && let Err(e) = self.connect_upstream(cx) {
            self.ex = Some(Exchange::new(
                head,
                client_host,
                page_id,
                client_keep_alive,
                None,
                framing,
            ));
            self.fail_upstream(cx, &e);
            return;
        }
        self.send_upstream(&bytes);
        let retry = (framing == BodyFraming::None).then_some(bytes);
        self.ex = Some(Exchange::new(
            head,
            client_host,
            page_id,
            client_keep_alive,
            retry,
            framing,
        ));
    }

    /// The upstream connection failed (connect refused, reset, garbage, early close).
    pub(super) fn fail_upstream(&mut self, cx: &mut Ctx<'_>, e: &dyn std::fmt::Display) {
        let served = self.up.as_ref().map_or(0, |u| u.served);
        let read_err = self.up.as_mut().and_then(|u| u.read_err.take());
        self.up = None;
        if self.mode == Mode::Tunnel {
            self.close_after = true;
            return;
        }
        let Some(ex) = &mut self.ex else { return };
        // A pooled connection the upstream had already closed: retry once on a fresh one.
        if !ex.resp_started
            && !ex.retried
            && served > 0
            && let Some(head) = ex.retry_head.clone()
        {
            ex.retried = true;
            if self.connect_upstream(cx).is_ok() {
                self.send_upstream(&head);
                return;
            }
        }
        let Some(ex) = &self.ex else { return };
        cx.shared
            .stats
            .upstream_errors
            .fetch_add(1, Ordering::Relaxed);
        let cause = match read_err {
            Some(r) if !ex.resp_started => format!("{e} ({r})"),
            _ => e.to_string(),
        };
        let ex_started = ex.resp_started;
        let req_done = ex.req_body.is_none();
        let close = !req_done || !ex.client_keep_alive;
        let held = self.ex.as_mut().and_then(|x| x.inject.take());
        let mut rec = self.record();
        rec.error = Some(cause.clone());
        if !ex_started {
            rec.status = 502;
            let answer = answers::bad_gateway(&cx.shared.config.target_url, &cause, close);
            rec.response_headers = answer.headers;
            rec.response_body = answer.body;
            let resp = answer.response;
            let page = self.ex.as_ref().and_then(|x| x.page_id.clone());
            cx.shared.log.push_http(page, rec);
            self.send_client(&resp);
            if close {
                self.close_after = true;
            }
        } else {
            // Part of the response already went out (or is held for injection: it goes out as
            // far as it came): all we can do is close, so the client sees a truncated transfer.
            if let Some(ib) = held {
                let mut out = Vec::with_capacity(ib.raw.len() + 512);
                http::write_response(&ib.head, &mut out);
                out.extend_from_slice(&ib.raw);
                rec.response_headers = ib.head.headers;
                self.send_client(&out);
            }
            self.close_after = true;
            let page = self.ex.as_ref().and_then(|x| x.page_id.clone());
            cx.shared.log.push_http(page, rec);
        }
        self.ex = None;
        self.last_activity = Instant::now();
    }

    pub(super) fn process_http_upstream(&mut self, cx: &mut Ctx<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.closed || self.mode != Mode::Http {
                return progress;
            }
            let Some(up) = &mut self.up else {
                return progress;
            };
            let Some(ex) = &mut self.ex else {
                // Idle: the upstream closing (or chattering) ends this pooled connection.
                if up.half.eof || !up.half.inb.is_empty() {
                    self.up = None;
                    return true;
                }
                return progress;
            };
            match &mut ex.resp {
                Resp::AwaitHead => {
                    if up.half.inb.is_empty() {
                        if up.half.eof {
                            self.fail_upstream(
                                cx,
                                &"upstream closed the connection without responding",
                            );
                            return true;
                        }
                        return progress;
                    }
                    match http::parse_response(&up.half.inb) {
                        Err(e) => {
                            self.fail_upstream(cx, &format!("invalid response from upstream: {e}"));
                            return true;
                        }
                        Ok(None) => {
                            if up.half.eof {
                                self.fail_upstream(cx, &"upstream closed the connection mid-head");
                                return true;
                            }
                            return progress;
                        }
                        Ok(Some((head, n))) => {
                            up.half.inb.drain(..n);
                            progress = true;
                            self.on_response_head(cx, head);
                        }
                    }
                }
                Resp::Body(state) => {
                    let eof = up.half.eof;
                    if up.half.inb.is_empty() && !eof {
                        return progress;
                    }
                    let mut decoded = Vec::new();
                    let keep_decoded = ex.inject.is_some() || ex.dechunk;
                    let (cap, trunc) = (&mut ex.resp_cap, &mut ex.resp_trunc);
                    let r = state.take(&up.half.inb, eof, |d| {
                        if !keep_decoded || cap.len() < 10 * 1024 {
                            capture(cap, trunc, d);
                        } else {
                            *trunc = true;
                        }
                        if keep_decoded {
                            decoded.extend_from_slice(d);
                        }
                    });
                    match r {
                        Err(e) => {
                            self.fail_upstream(cx, &format!("bad response body: {e}"));
                            return true;
                        }
                        Ok((n, done)) => {
                            if !done && n == 0 {
                                if eof {
                                    // Upstream closed before the body ended.
                                    self.fail_upstream(
                                        cx,
                                        &"upstream closed the connection mid-body",
                                    );
                                    return true;
                                }
                                return progress;
                            }
                            progress = true;
                            // Move the buffer out so its bytes can be sent without a copy.
                            let mut inb = std::mem::take(&mut up.half.inb);
                            let raw = &inb[..n];
                            if let Some(ib) = &mut ex.inject {
                                ib.raw.extend_from_slice(raw);
                                ib.decoded.extend_from_slice(&decoded);
                                let fits = ib.lease.resize(ib.raw.len() + ib.decoded.len());
                                if !fits || (ib.raw.len() > INJECT_LIMIT && !done) {
                                    // Too big to buffer, or the proxy's budget for held HTML is
                                    // in use: send what we have and stream the rest.
                                    let ib = ex.inject.take().unwrap_or_else(|| unreachable!());
                                    let mut out = Vec::with_capacity(ib.raw.len() + 512);
                                    http::write_response(&ib.head, &mut out);
                                    out.extend_from_slice(&ib.raw);
                                    drop(ib.lease);
                                    ex.resp_headers = ib.head.headers;
                                    inb.drain(..n);
                                    up.half.inb = inb;
                                    if !fits {
                                        self.over_inject_budget(cx, ib.html);
                                    }
                                    if done {
                                        self.log_exchange(cx);
                                    }
                                    self.send_client(&out);
                                    if done {
                                        self.finish_exchange(cx);
                                    }
                                    continue;
                                }
                                inb.drain(..n);
                                up.half.inb = inb;
                                if done {
                                    self.finish_inject(cx);
                                }
                            } else {
                                if done {
                                    self.log_exchange(cx);
                                }
                                let dechunk = self.ex.as_ref().is_some_and(|x| x.dechunk);
                                self.send_client(if dechunk { &decoded } else { raw });
                                inb.drain(..n);
                                if let Some(up) = &mut self.up {
                                    up.half.inb = inb;
                                }
                            }
                            if done {
                                self.finish_exchange(cx);
                            }
                        }
                    }
                }
            }
        }
    }

    fn on_response_head(&mut self, cx: &mut Ctx<'_>, mut head: ResponseHead) {
        let origin = headers::proxy_origin(
            self.ex.as_ref().and_then(|x| x.client_host.as_deref()),
            &cx.shared.url,
        );
        headers::rewrite_response(&mut head.headers, &cx.shared.target, &origin);
        let Some(ex) = &mut self.ex else { return };
        if head.status == 101 {
            ex.status = 101;
            ex.resp_headers = head.headers.clone();
            let mut out = Vec::new();
            http::write_response(&head, &mut out);
            let mut rec = self.record();
            rec.status = 101;
            cx.shared
                .log
                .push_http(self.ex.as_ref().and_then(|x| x.page_id.clone()), rec);
            self.ex = None;
            self.mode = Mode::Tunnel;
            self.send_client(&out);
            return;
        }
        if head.status < 200 {
            // 100 Continue and friends: pass on, keep waiting for the real head.
            let mut out = Vec::new();
            http::write_response(&head, &mut out);
            self.send_client(&out);
            return;
        }
        let framing = match http::response_framing(&head, &ex.method) {
            Ok(f) => f,
            Err(e) => {
                self.fail_upstream(cx, &format!("invalid response from upstream: {e}"));
                return;
            }
        };
        ex.resp_started = true;
        ex.status = head.status;
        ex.stream = http::header(&head.headers, "content-type")
            .is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"));
        ex.upstream_keep_alive =
            http::keep_alive(head.version, &head.headers) && framing != BodyFraming::UntilClose;
        let ct = http::header(&head.headers, "content-type");
        let ce = http::header(&head.headers, "content-encoding");
        let html = inject::is_html(ct);
        // HTML always; CSS/JS only from an https:// target (their URLs on it would be refused).
        let injectable = framing != BodyFraming::None
            && (html || (cx.shared.target.tls.is_some() && inject::is_css_or_js(ct)))
            && inject::Encoding::parse(ce).is_some()
            && http::header(&head.headers, "content-range").is_none();
        match BodyState::from(framing) {
            None => {
                ex.resp_headers = head.headers.clone();
                let mut out = Vec::new();
                http::write_response(&head, &mut out);
                self.log_exchange(cx);
                self.send_client(&out);
                self.finish_exchange(cx);
            }
            Some(state) => {
                if injectable {
                    ex.inject = Some(InjectBuf {
                        lease: cx.shared.inject.empty(),
                        head,
                        html,
                        rewrite: Rewriter::new(&cx.shared.target.origins, &origin),
                        raw: Vec::new(),
                        decoded: Vec::new(),
                    });
                } else {
                    ex.raw_until_close = framing == BodyFraming::UntilClose;
                    if ex.client_http10 && framing == BodyFraming::Chunked {
                        http::remove(&mut head.headers, "transfer-encoding");
                        ex.dechunk = true;
                        ex.raw_until_close = true;
                    }
                    ex.resp_headers = head.headers.clone();
                    let mut out = Vec::new();
                    http::write_response(&head, &mut out);
                    // Sent together with the first body bytes (or by write_client).
                    self.queue_client(&out);
                }
                if let Some(ex) = &mut self.ex {
                    ex.resp = Resp::Body(state);
                }
                self.reset_window(Instant::now());
            }
        }
    }

    /// The buffered HTML body is complete: inject and send it with a `Content-Length`.
    fn finish_inject(&mut self, cx: &mut Ctx<'_>) {
        let Some(ex) = &mut self.ex else { return };
        let Some(ib) = ex.inject.take() else { return };
        let mut lease = ib.lease;
        let mut head = ib.head;
        let ce = http::header(&head.headers, "content-encoding").map(<[u8]>::to_vec);
        http::remove(&mut head.headers, "transfer-encoding");
        let tag = ib.html.then_some(&cx.shared.trust.script_tag[..]);
        let body = match inject::prepare_body(ce.as_deref(), &ib.decoded, tag, ib.rewrite.as_ref())
        {
            Some(new) => {
                http::remove(&mut head.headers, "content-encoding");
                if new.injected {
                    ex.injected = true;
                    cx.shared.stats.injected.fetch_add(1, Ordering::Relaxed);
                }
                // The log shows what the client got.
                ex.resp_cap.clear();
                ex.resp_trunc = false;
                capture(&mut ex.resp_cap, &mut ex.resp_trunc, &new.body);
                new.body
            }
            None => ib.decoded,
        };
        http::set(&mut head.headers, "Content-Length", body.len().to_string());
        ex.resp_headers = head.headers.clone();
        let mut out = Vec::with_capacity(body.len() + 512);
        http::write_response(&head, &mut out);
        out.extend_from_slice(&body);
        drop(body);
        // The page stays counted in the budget until the client has read it.
        lease.resize(out.len());
        self.held_out = Some(lease);
        self.log_exchange(cx);
        self.send_client(&out);
        if self.client.flushed() {
            self.held_out = None;
        }
    }

    /// An HTML page (CSS/JS: `html` false) passes through uninjected (unrewritten) because the
    /// proxy's budget for held bodies is in use: an `error` entry says so.
    fn over_inject_budget(&mut self, cx: &mut Ctx<'_>, html: bool) {
        let Some(ex) = &self.ex else { return };
        let budget = cx.shared.config.limits.inject_budget;
        let (what, held) = if html {
            ("uninjected", "HTML held for injection")
        } else {
            ("unrewritten", "bodies held for rewriting")
        };
        cx.shared.log.push_event(
            "error",
            ex.page_id.clone(),
            json!({
                "message": format!(
                    "proxy: {} {} passed through {what}: the {} MiB budget for {held} is in use",
                    ex.method, ex.url, budget / (1024 * 1024)
                ),
                "source": "agnt proxy",
                "method": ex.method,
                "url": ex.url,
            }),
        );
    }

    /// Writes the exchange's log entry and page attribution (once).
    fn log_exchange(&mut self, cx: &mut Ctx<'_>) {
        let Some(ex) = &self.ex else { return };
        if ex.logged {
            return;
        }
        let accept = http::header_str(&ex.req_headers, "accept").unwrap_or_default();
        let xhr = http::header_str(&ex.req_headers, "x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
        let rtype = http::header_str(&ex.resp_headers, "content-type").unwrap_or_default();
        let document = pages::is_document(&ex.method, &ex.url, &accept, xhr, &rtype);
        let referer = http::header_str(&ex.req_headers, "referer");
        cx.shared
            .pages
            .on_http(&ex.url, document, referer.as_deref(), ex.page_id.as_deref());
        let page = ex.page_id.clone();
        let rec = self.record();
        cx.shared.log.push_http(page, rec);
        if let Some(ex) = &mut self.ex {
            ex.logged = true;
        }
    }

    fn finish_exchange(&mut self, cx: &mut Ctx<'_>) {
        self.log_exchange(cx);
        let Some(ex) = &self.ex else { return };
        let keep_client = ex.client_keep_alive && !ex.raw_until_close && ex.req_body.is_none();
        let keep_up = ex.upstream_keep_alive && ex.req_body.is_none();
        self.ex = None;
        let now = Instant::now();
        self.last_activity = now;
        self.reset_window(now);
        if !keep_client {
            self.close_after = true;
        }
        if keep_up {
            if let Some(up) = &mut self.up {
                up.served += 1;
                if up.half.inb.capacity() > 4 * BACKPRESSURE {
                    up.half.inb.shrink_to(64 * 1024);
                }
            }
        } else {
            self.up = None;
        }
        if self.client.inb.is_empty() && self.client.inb.capacity() > 64 * 1024 {
            self.client.inb.shrink_to(0);
        }
    }
}
