//! Who a proxy trusts, decided by pure checks the loop calls at one point each: a request's
//! `Host` must be a name this proxy serves (loopback names, its bind address, a host the user
//! allowed; any IP literal once the user opted into the LAN), else 403 — this is what stops
//! DNS rebinding, since the dev server behind only ever sees the rewritten `Host`; a request
//! carrying this proxy's own `Via` token came back through it (508, a loop); and the page
//! channel (`/__agnt/ws`) needs an `Origin` this proxy serves, the per-instance key written
//! into the injected `<script>` tag (never into the cached `agnt.js`) and, for loopback peers
//! on Linux, a connecting socket owned by our uid (`/proc/net/tcp{,6}`). Also the per-page
//! budgets of the channel and the start-time checks (LAN opt-in, a target that is the proxy
//! itself).

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use super::http::{self, Header};
use crate::{Error, Result, util::random};

/// Largest page-channel message other than a screenshot.
pub(crate) const MAX_EVENT_MESSAGE: usize = 1024 * 1024;
/// Page-channel messages (screenshots excluded) one page may send per minute.
pub(crate) const EVENTS_PER_MINUTE: u32 = 1200;
/// Bytes of such messages one page may send per minute.
pub(crate) const EVENT_BYTES_PER_MINUTE: usize = 16 * 1024 * 1024;
/// Screenshots one page may send per minute.
pub(crate) const SCREENSHOTS_PER_MINUTE: u32 = 20;
/// Screenshot bytes (base64) one page may send per minute.
pub(crate) const SCREENSHOT_BYTES_PER_MINUTE: usize = 64 * 1024 * 1024;
/// The largest traffic log a proxy may keep.
pub const MAX_LOG_SIZE: usize = 100_000;

/// A proxy's trust settings and secrets (one per proxy instance).
#[derive(Debug)]
pub(crate) struct Trust {
    /// Allowed host names, lowercased (`name`, `name:port` or `.suffix`).
    allowed_hosts: Vec<String>,
    bind: IpAddr,
    port: u16,
    /// The user opted into serving the LAN.
    lan: bool,
    /// The page-channel key (in the injected tag).
    pub key: String,
    /// This instance's `Via` token.
    via: String,
    /// The tag injected into HTML pages, key included.
    pub script_tag: Vec<u8>,
}

/// A refused request: status, reason phrase, why.
pub(crate) type Refusal = (u16, &'static str, String);

impl Trust {
    pub(crate) fn new(allowed_hosts: &[String], lan: bool, listen: SocketAddr) -> Result<Trust> {
        let secret = |n| random::hex(n).map_err(|e| Error::io("reading /dev/urandom", None, e));
        let key = secret(16)?;
        let via = format!("agnt-{}", secret(6)?);
        let script_tag = super::inject::script_tag(Some(&key));
        Ok(Trust {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            bind: listen.ip(),
            port: listen.port(),
            lan,
            key,
            via,
            script_tag,
        })
    }

    /// Whether a `Host` value names this proxy (see the module docs). No `Host` (HTTP/1.0
    /// tools) passes: browsers always send one.
    pub(crate) fn host_ok(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let Some((name, _)) = split_host(host) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        if is_loopback_name(&name) {
            return true;
        }
        let ip = name.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip == self.bind || (self.lan && !self.bind.is_loopback())) {
            return true;
        }
        let whole = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|a| {
            *a == name
                || *a == whole
                || a.strip_prefix('.')
                    .is_some_and(|s| name == s || name.ends_with(a.as_str()))
        })
    }

    /// The check of a request head as it is accepted: 403 for a foreign `Host`, 508 when our
    /// own `Via` token shows the request looped back through us.
    pub(crate) fn check_request(&self, headers: &[Header]) -> std::result::Result<(), Refusal> {
        let host = http::header_str(headers, "host");
        if !self.host_ok(host.as_deref()) {
            let h = host.unwrap_or_default();
            let name = split_host(&h).map_or(h.as_str(), |(n, _)| n);
            return Err((
                403,
                "Forbidden",
                format!(
                    "refused Host {h:?}: this proxy serves localhost, 127.0.0.1 and [::1] (DNS \
                     rebinding defence). To allow it, start the proxy with allowed_hosts: \
                     [\"{name}\"] (CLI --allowed-host {name}) or add `allowed-hosts \"{name}\"` \
                     to its block in .agnt.kdl"
                ),
            ));
        }
        let looped = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("via"))
            .any(|(_, v)| memchr::memmem::find(v, self.via.as_bytes()).is_some());
        if looped {
            return Err((
                508,
                "Loop Detected",
                "this request came back through the same agnt proxy: its target leads to \
                 itself"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Adds this proxy's `Via` entry to a request going upstream.
    pub(crate) fn add_via(&self, headers: &mut Vec<Header>) {
        let ours = format!("1.1 {}", self.via);
        let value = match http::header_str(headers, "via") {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ours}"),
            _ => ours,
        };
        http::set(headers, "Via", value);
    }

    /// Whether a page-channel handshake may open: an `Origin` this proxy serves, our key in
    /// the query (`?key=`), and a loopback peer owned by our uid (`local` is our end).
    pub(crate) fn channel_ok(
        &self,
        target: &str,
        headers: &[Header],
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> std::result::Result<(), String> {
        let origin = http::header_str(headers, "origin").ok_or("no Origin")?;
        if !self.origin_ok(&origin) {
            return Err(format!("Origin {origin:?} is not served by this proxy"));
        }
        let key = target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("key="))
            .ok_or("no page key")?;
        if !random::same_secret(key.as_bytes(), self.key.as_bytes()) {
            return Err("wrong page key".into());
        }
        // A `::` listener sees IPv4 peers as `::ffff:a.b.c.d`: judge (and look up) the IPv4 form.
        let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (peer, local) = (canon(peer), local.map(canon));
        if cfg!(target_os = "linux")
            && peer.ip().is_loopback()
            && let Some(local) = local
        {
            let me = rustix::process::getuid().as_raw();
            match crate::util::tcp_owner::socket_uid(peer, local) {
                Some(uid) if uid == me => {}
                Some(uid) => return Err(format!("the connecting socket belongs to uid {uid}")),
                None => return Err("the connecting socket's owner is unknown".into()),
            }
        }
        Ok(())
    }

    /// An origin this proxy serves: its listen origin under a loopback name or the bind
    /// address (our port), or an allowed host (any port, http or https).
    fn origin_ok(&self, origin: &str) -> bool {
        let (scheme_http, rest) = match origin.split_once("://") {
            Some(("http", r)) => (true, r),
            Some(("https", r)) => (false, r),
            _ => return false,
        };
        if rest.contains('/') || !self.host_ok(Some(rest)) {
            return false;
        }
        let Some((name, port)) = split_host(rest) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        let listen_name = is_loopback_name(&name) || name.parse::<IpAddr>().is_ok();
        if listen_name {
            return scheme_http && port == Some(self.port);
        }
        true
    }
}

/// `host[:port]` or `[v6][:port]` → (name, port); `None` when malformed.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((name, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((name, None)),
            None => None,
        };
    }
    match host.rsplit_once(':') {
        Some((n, p)) => Some((n, Some(p.parse().ok()?))),
        None => Some((host, None)),
    }
}

fn is_loopback_name(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "::1") || name.ends_with(".localhost")
}

/// The start-time checks: a non-loopback bind needs `allow_lan` (returns the warning to show
/// when it is given), the log size is bounded, and a target that is the listener itself is
/// refused.
pub(crate) fn check_start(
    bind: IpAddr,
    allow_lan: bool,
    max_log_size: usize,
) -> Result<Option<String>> {
    if max_log_size > MAX_LOG_SIZE {
        return Err(Error::invalid(format!(
            "max_log_size {max_log_size} is over the limit of {MAX_LOG_SIZE} entries"
        )));
    }
    if bind.is_loopback() {
        return Ok(None);
    }
    let reach = if bind.is_unspecified() {
        "every network this machine is on".to_string()
    } else {
        format!("the network of {bind}")
    };
    if !allow_lan {
        return Err(Error::invalid(format!(
            "bind_address {bind} would let hosts on {reach} reach the dev server and its \
             captured traffic through this proxy; pass allow_lan: true (CLI --allow-lan, \
             `allow-lan true` in .agnt.kdl) to opt in, or bind 127.0.0.1"
        )));
    }
    Ok(Some(format!(
        "warning: bound to {bind}: hosts on {reach} can load the dev server through this proxy \
         and see its pages (the page channel still only accepts pages this proxy served)"
    )))
}

/// Errors when `target` is the proxy's own listener `listen`.
pub(crate) fn refuse_self_target(target: SocketAddr, listen: SocketAddr) -> Result<()> {
    if target.port() != listen.port() {
        return Ok(());
    }
    let (t, l) = (target.ip(), listen.ip());
    let same = t == l
        || (t.is_loopback() && (l.is_loopback() || l.is_unspecified()))
        || (l.is_unspecified() && std::net::TcpListener::bind((t, 0)).is_ok());
    if same {
        return Err(Error::invalid(format!(
            "the target {target} is this proxy's own listener {listen}: every request would \
             loop; point target_url at the dev server"
        )));
    }
    Ok(())
}

/// One page channel's budget: messages and bytes per minute, events and screenshots apart.
#[derive(Debug)]
pub(crate) struct PageBudget {
    window: Instant,
    events: u32,
    event_bytes: usize,
    shots: u32,
    shot_bytes: usize,
    /// Messages dropped this window (reported once per window).
    pub dropped: u32,
}

impl PageBudget {
    pub(crate) fn new() -> PageBudget {
        PageBudget {
            window: Instant::now(),
            events: 0,
            event_bytes: 0,
            shots: 0,
            shot_bytes: 0,
            dropped: 0,
        }
    }

    /// Counts one message of `len` bytes; `Err(why)` when it is over a cap (dropped).
    pub(crate) fn admit(
        &mut self,
        screenshot: bool,
        len: usize,
        now: Instant,
    ) -> std::result::Result<(), String> {
        if now.duration_since(self.window) >= Duration::from_secs(60) {
            *self = PageBudget::new();
            self.window = now;
        }
        let over = if screenshot {
            self.shots += 1;
            self.shot_bytes += len;
            (self.shots > SCREENSHOTS_PER_MINUTE || self.shot_bytes > SCREENSHOT_BYTES_PER_MINUTE)
                .then(|| {
                    format!(
                        "over {SCREENSHOTS_PER_MINUTE} screenshots or \
                         {SCREENSHOT_BYTES_PER_MINUTE} bytes per minute"
                    )
                })
        } else if len > MAX_EVENT_MESSAGE {
            Some(format!(
                "a message of {len} bytes (limit {MAX_EVENT_MESSAGE})"
            ))
        } else {
            self.events += 1;
            self.event_bytes += len;
            (self.events > EVENTS_PER_MINUTE || self.event_bytes > EVENT_BYTES_PER_MINUTE).then(
                || {
                    format!(
                        "over {EVENTS_PER_MINUTE} messages or {EVENT_BYTES_PER_MINUTE} bytes per \
                         minute"
                    )
                },
            )
        };
        match over {
            Some(why) => {
                self.dropped += 1;
                Err(why)
            }
            None => Ok(()),
        }
    }
}

// The loop-side glue: where the checks above meet a connection.

impl super::session::Conn {
    /// Answers a refused request (403 foreign `Host`, 508 loop) and closes; a refused `Host`
    /// also leaves an `error` entry saying how to allow it.
    pub(super) fn refuse_request(
        &mut self,
        cx: &mut super::session::Ctx<'_>,
        headers: &[Header],
        r: Refusal,
    ) {
        let (status, reason, why) = r;
        let mut data =
            serde_json::json!({"message": why, "status": status, "source": "agnt proxy"});
        if status == 403 {
            data["host"] = http::header_str(headers, "host").into();
        }
        cx.shared.log.push_event("error", None, data);
        self.bad_request(cx, status, reason, &why);
    }
}

/// Counts one page-channel message against `page`'s budget; false = drop it. The first drop of
/// each window leaves an `error` entry.
pub(crate) fn admit(
    cx: &mut super::session::Ctx<'_>,
    page: &mut super::channel::WsPage,
    typ: &str,
    len: usize,
) -> bool {
    match page.budget.admit(typ == "screenshot", len, Instant::now()) {
        Ok(()) => true,
        Err(why) => {
            if page.budget.dropped == 1 {
                let msg = format!(
                    "page channel message dropped: {why} (more drops this minute are not logged)"
                );
                cx.shared.log.push_event(
                    "error",
                    page.page_id.clone(),
                    serde_json::json!({"message": msg, "source": "agnt proxy"}),
                );
            }
            false
        }
    }
}

#[cfg(test)]
mod tests;
