//! `agnt mcp`: the stdio ↔ daemon-socket bridge, and `agnt mcp --standalone` (a `Host` served
//! in-process over stdio).
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

use super::client::{self, Client, OWN_ID_PREFIX};
use crate::{
    Error, Result,
    host::{Host, HostOptions},
    mcp::{
        Connection, Message, Notification, Request, RequestId, Response, Toolbox, jsonrpc::code,
        server::PROJECT_META,
    },
};

/// Runs the tools in this process over stdio until stdin closes, then stops everything it
/// started.
pub fn standalone() -> Result<()> {
    let host = Arc::new(Host::new(HostOptions::standalone(client::caller_project())));
    let (conn, threads) = Connection::stdio();
    crate::mcp::serve(conn, Arc::new(Toolbox::in_process(host.clone())));
    host.shutdown(Duration::from_secs(3));
    let _ = threads.join();
    Ok(())
}

/// Why there is no daemon connection right now.
struct Down {
    /// A daemon of another version: reconnecting cannot help until the user restarts it.
    mismatch: bool,
    /// The daemon is full: retrying at once cannot help, the next request tries again.
    refused: bool,
    message: String,
}

impl From<Error> for Down {
    fn from(e: Error) -> Down {
        let refused = client::is_refusal(&e);
        let mismatch = matches!(e, Error::VersionMismatch { .. });
        let message = match e {
            Error::Daemon { message, .. } if refused => message,
            e => e.to_string(),
        };
        Down {
            mismatch,
            refused,
            message,
        }
    }
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

/// Whether a response answers a request the bridge's own client made (not the agent's).
fn is_own(r: &Response) -> bool {
    matches!(&r.id, Some(RequestId::Str(s)) if s.starts_with(OWN_ID_PREFIX))
}

/// Runs the bridge until stdin closes.
pub fn bridge(socket: &Path) -> Result<()> {
    let project: PathBuf = client::caller_project();
    let mut upstream: std::result::Result<Client, Down> =
        Client::connect_checked(socket, project.clone()).map_err(Down::from);
    match &upstream {
        // The first thing the user reads: who is connected and how to see them.
        Err(e) if e.refused => eprintln!("agnt mcp: {}", e.message),
        Err(e) => log::error!("agnt mcp: {}", e.message),
        Ok(_) => {}
    }
    let (stdio, stdio_threads) = Connection::stdio();
    let mut pending: HashSet<RequestId> = HashSet::new();
    let mut init: Option<Request> = None;
    let mut initialized = false;
    let never = crossbeam_channel::never::<Message>();
    loop {
        let up_rx: &Receiver<Message> = match &upstream {
            Ok(up) => &up.connection().receiver,
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
                if matches!(&upstream, Err(d) if !d.mismatch) {
                    let replay = initialized && !matches!(&msg, Message::Request(r) if r.method == "initialize");
                    upstream = reconnect(socket, &project, init.as_ref(), replay);
                }
                match (&upstream, msg) {
                    (Ok(up), msg) => {
                        if let Message::Request(r) = &msg {
                            pending.insert(r.id.clone());
                        }
                        if up.connection().sender.send(msg).is_err() {
                            upstream = Err(Error::DaemonClosed.into());
                        }
                    }
                    (Err(e), Message::Request(r)) => {
                        let (code, msg) = if e.refused {
                            (super::clients::TOO_MANY_CLIENTS, e.message.clone())
                        } else {
                            (code::INTERNAL_ERROR, format!("agnt daemon unavailable: {}", e.message))
                        };
                        let _ = stdio.sender.send(Response::err(Some(r.id), code, msg).into());
                    }
                    (Err(_), _) => {}
                }
            }
            recv(up_rx) -> msg => match msg {
                Ok(Message::Response(r)) => {
                    if is_own(&r) {
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
                    upstream = reconnect(socket, &project, init.as_ref(), initialized);
                }
            }
        }
    }
    // stdin closed: answer what is still in flight (a client may close stdin right after its
    // last request) before exiting, within a bound.
    if let Ok(up) = &upstream {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pending.is_empty() {
            match up.connection().receiver.recv_deadline(deadline) {
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
    project: &Path,
    init: Option<&Request>,
    initialized: bool,
) -> std::result::Result<Client, Down> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wait = Duration::from_millis(50);
    loop {
        match Client::connect_checked(socket, project.to_path_buf()) {
            Ok(mut up) => {
                if let Some(init) = init {
                    let _ = up.request(
                        "initialize",
                        init.params.clone(),
                        Some(Duration::from_secs(5)),
                    );
                    if initialized {
                        let _ = up.connection().sender.send(
                            Notification {
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
                let down = Down::from(e);
                if down.mismatch || down.refused || Instant::now() >= deadline {
                    log::error!("agnt mcp: {}", down.message);
                    return Err(down);
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}
