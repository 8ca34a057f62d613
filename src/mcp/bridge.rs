//! `agnt mcp`: the stdio ↔ daemon-socket bridge, and `agnt mcp --standalone` (tools in-process).
//!
//! The bridge starts the daemon when none answers, checks that it is our version (a mismatch is
//! reported to the agent on every request, with the fix: `agnt daemon restart`), stamps every
//! request with the caller's project (`_meta["dev.agnt/project"]`), and reconnects when the
//! daemon goes away: calls in flight get an error, `initialize` is replayed on the new
//! connection, and the agent's session carries on.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, select};
use serde_json::{Value, json};

use super::{
    Connection, Ctx, Message, Request, RequestId, Response,
    jsonrpc::{IoThreads, Side, code},
    server::PROJECT_META,
};
use crate::{
    Error, Result,
    daemon::client::{self, version_mismatch},
    supervisor::ManagerConfig,
};

/// Runs tools in this process over stdio until stdin closes, then stops everything it started.
pub fn standalone() -> Result<()> {
    let project = client::caller_project();
    let ctx = Arc::new(Ctx::new(ManagerConfig::default(), project));
    let (conn, threads) = Connection::stdio();
    super::serve(conn, ctx.clone());
    ctx.shutdown(Duration::from_secs(3));
    let _ = threads.join();
    Ok(())
}

struct Upstream {
    conn: Connection,
    _threads: IoThreads,
}

fn connect(socket: &Path) -> Result<Upstream> {
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| Error::io("connecting to the agnt daemon", Some(socket.into()), e))?;
    let (conn, threads) =
        Connection::unix(stream, Side::Client).map_err(|e| Error::io("socket setup", None, e))?;
    Ok(Upstream {
        conn,
        _threads: threads,
    })
}

/// Sends a bridge-internal request and waits for its answer, ignoring anything else.
fn internal(up: &Upstream, n: &mut u64, method: &str, params: Value) -> Result<Value> {
    *n += 1;
    let id = RequestId::Str(format!("agnt-bridge-{n}"));
    up.conn
        .sender
        .send(
            Request {
                id: id.clone(),
                method: method.into(),
                params,
            }
            .into(),
        )
        .map_err(|_| Error::Other("daemon connection closed".into()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match up.conn.receiver.recv_deadline(deadline) {
            Ok(Message::Response(r)) if r.id.as_ref() == Some(&id) => {
                return r.outcome.map_err(|e| Error::Other(e.message));
            }
            Ok(_) => {}
            Err(_) => return Err(Error::Other("no answer from the agnt daemon".into())),
        }
    }
}

/// Connects (starting the daemon if needed) and checks its version.
fn connect_checked(socket: &Path, n: &mut u64) -> Result<Upstream> {
    // Fast path: a daemon answers. Otherwise start one (under the startup lock) and retry.
    let first = connect(socket)
        .and_then(|up| internal(&up, n, "server/discover", json!({})).map(|v| (up, v)));
    let (up, v) = match first {
        Ok(pair) => pair,
        Err(_) => {
            client::ensure_daemon(socket)?;
            let up = connect(socket)?;
            let v = internal(&up, n, "server/discover", json!({}))?;
            (up, v)
        }
    };
    let theirs = v["serverInfo"]["version"].as_str().unwrap_or("unknown");
    if theirs != env!("CARGO_PKG_VERSION") {
        return Err(Error::Other(version_mismatch(theirs)));
    }
    Ok(up)
}

fn stamp(params: &mut Value, project: &Path) {
    if params.is_null() {
        *params = json!({});
    }
    let Some(obj) = params.as_object_mut() else {
        return;
    };
    let meta = obj.entry("_meta").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.entry(PROJECT_META).or_insert_with(|| json!(project));
    }
}

/// Runs the bridge until stdin closes.
pub fn bridge(socket: &Path) -> Result<()> {
    let project: PathBuf = client::caller_project();
    let mut n = 0u64;
    let mut upstream: std::result::Result<Upstream, String> =
        connect_checked(socket, &mut n).map_err(|e| e.to_string());
    if let Err(e) = &upstream {
        log::error!("agnt mcp: {e}");
    }
    let (stdio, stdio_threads) = Connection::stdio();
    let mut pending: HashSet<RequestId> = HashSet::new();
    let mut init: Option<Request> = None;
    let mut initialized = false;
    let never = crossbeam_channel::never::<Message>();
    loop {
        let up_rx: &Receiver<Message> = match &upstream {
            Ok(up) => &up.conn.receiver,
            Err(_) => &never,
        };
        select! {
            recv(stdio.receiver) -> msg => {
                let Ok(mut msg) = msg else { break };
                if let Message::Request(r) = &mut msg {
                    stamp(&mut r.params, &project);
                    if r.method == "initialize" {
                        init = Some(r.clone());
                    }
                }
                if let Message::Notification(nt) = &msg && nt.method == "notifications/initialized" {
                    initialized = true;
                }
                // Reconnect lazily after a failure.
                if let Err(e) = &upstream {
                    let mismatch = e.contains("agnt daemon restart");
                    if !mismatch {
                        upstream = reconnect(socket, &mut n, init.as_ref(), initialized && !matches!(&msg, Message::Request(r) if r.method == "initialize"));
                    }
                }
                match (&upstream, msg) {
                    (Ok(up), msg) => {
                        if let Message::Request(r) = &msg {
                            pending.insert(r.id.clone());
                        }
                        if up.conn.sender.send(msg).is_err() {
                            upstream = Err("daemon connection closed".into());
                        }
                    }
                    (Err(e), Message::Request(r)) => {
                        let _ = stdio.sender.send(Response::err(Some(r.id), code::INTERNAL_ERROR, format!("agnt daemon unavailable: {e}")).into());
                    }
                    (Err(_), _) => {}
                }
            }
            recv(up_rx) -> msg => match msg {
                Ok(Message::Response(r)) => {
                    if let Some(RequestId::Str(s)) = &r.id && s.starts_with("agnt-bridge-") {
                        continue;
                    }
                    if let Some(id) = &r.id {
                        pending.remove(id);
                    }
                    let _ = stdio.sender.send(r.into());
                }
                Ok(other) => {
                    let _ = stdio.sender.send(other);
                }
                Err(_) => {
                    log::warn!("agnt mcp: daemon connection lost; reconnecting");
                    for id in pending.drain() {
                        let _ = stdio.sender.send(Response::err(Some(id), code::INTERNAL_ERROR,
                            "the agnt daemon connection was lost (daemon restarted?); the bridge reconnected, retry the call").into());
                    }
                    upstream = reconnect(socket, &mut n, init.as_ref(), initialized);
                }
            }
        }
    }
    // stdin closed: answer what is still in flight (a client may close stdin right after its
    // last request) before exiting, within a bound.
    if let Ok(up) = &upstream {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pending.is_empty() {
            match up.conn.receiver.recv_deadline(deadline) {
                Ok(Message::Response(r)) => {
                    if let Some(id) = &r.id {
                        pending.remove(id);
                    }
                    let _ = stdio.sender.send(r.into());
                }
                Ok(other) => {
                    let _ = stdio.sender.send(other);
                }
                Err(_) => break,
            }
        }
    }
    drop(stdio);
    // The writer flushes what is queued and ends; the reader already saw EOF.
    let _ = stdio_threads.join();
    Ok(())
}

/// Reconnects, retrying for a few seconds, and replays the handshake.
fn reconnect(
    socket: &Path,
    n: &mut u64,
    init: Option<&Request>,
    initialized: bool,
) -> std::result::Result<Upstream, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wait = Duration::from_millis(50);
    loop {
        match connect_checked(socket, n) {
            Ok(up) => {
                if let Some(init) = init {
                    let _ = internal(&up, n, "initialize", init.params.clone());
                    if initialized {
                        let _ = up.conn.sender.send(
                            super::Notification {
                                method: "notifications/initialized".into(),
                                params: Value::Null,
                            }
                            .into(),
                        );
                    }
                }
                return Ok(up);
            }
            Err(e) => {
                let msg = e.to_string();
                if msg.contains("agnt daemon restart") || Instant::now() >= deadline {
                    log::error!("agnt mcp: {msg}");
                    return Err(msg);
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}
