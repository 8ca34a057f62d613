//! The per-proxy event loop thread: binds/rebinds the listener, polls with `mio`, accepts
//! clients (within the manager's connection budget, else a 503), dispatches readiness to
//! connections (`session::Conn`), runs control messages from other threads (exec, stop), acts on
//! connection deadlines (`deadline::DeadlineSet`: `poll` sleeps until the next one), and restarts
//! itself after a panic or a fatal poll error (at most 5 times a minute).
//!
//! Invariant: nothing in here blocks — every socket is non-blocking, locks are taken only for a
//! push or a map lookup, never across a socket call.

use std::{
    collections::{HashMap, VecDeque},
    io::{self, Write},
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use crossbeam_channel::Sender;
use mio::{Events, Interest, Poll, Token, Waker, net::TcpListener};
use serde_json::json;

use super::{
    Shared, answers,
    channel::{self, ExecMeta},
    control::{Control, ControlRx},
    deadline::DeadlineSet,
    session::{Conn, Ctx, Mode, client_token},
};
use crate::{Error, Result};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// How often the loop forgets exec bookkeeping nobody answered.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
const MAX_CONNS: usize = 16 * 1024;
const MAX_RESTARTS_PER_MINUTE: usize = 5;

/// Binds the listening socket; a busy port is `PortInUse` naming the address.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            Error::PortInUse {
                addr: addr.to_string(),
                source: e,
            }
        } else {
            Error::io("binding the proxy listener", None, e)
        }
    })
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Body of the proxy thread: runs the loop, restarting it after a crash.
pub(crate) fn run_thread(
    shared: Arc<Shared>,
    ctl: ControlRx,
    listener: TcpListener,
    ready: Sender<()>,
) {
    let mut listener = Some(listener);
    let mut restarts: VecDeque<Instant> = VecDeque::new();
    let mut ready = Some(ready);
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match bind(shared.listen_addr) {
                Ok(l) => l,
                Err(e) => {
                    *shared.last_error.lock() = Some(format!("restart failed: {e}"));
                    break;
                }
            },
        };
        let r = catch_unwind(AssertUnwindSafe(|| run_loop(&shared, &ctl, l, &mut ready)));
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let why = match r {
            Ok(Ok(())) => break,
            Ok(Err(e)) => format!("event loop failed: {e}"),
            Err(p) => format!("event loop panicked: {}", panic_message(p.as_ref())),
        };
        log::error!("proxy {}: {why}", shared.config.id);
        *shared.inbox.waker.lock() = None;
        let now = Instant::now();
        while restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            restarts.pop_front();
        }
        if restarts.len() >= MAX_RESTARTS_PER_MINUTE {
            *shared.last_error.lock() = Some(format!(
                "{why}; not restarting: {MAX_RESTARTS_PER_MINUTE} restarts within a minute"
            ));
            break;
        }
        restarts.push_back(now);
        shared.restart_count.fetch_add(1, Ordering::SeqCst);
        *shared.last_error.lock() = Some(why);
    }
    shared.running.store(false, Ordering::SeqCst);
    *shared.inbox.waker.lock() = None;
    // Fail every exec still waiting.
    for (_, tx) in shared.pending.lock().drain() {
        let _ = tx.try_send(Err("the proxy stopped".into()));
    }
}

struct Loop<'a> {
    shared: &'a Shared,
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<usize, Conn>,
    next_id: usize,
    scratch: Vec<u8>,
    exec_meta: HashMap<String, ExecMeta>,
    deadlines: DeadlineSet,
}

fn run_loop(
    shared: &Shared,
    ctl: &ControlRx,
    mut listener: TcpListener,
    ready: &mut Option<Sender<()>>,
) -> io::Result<()> {
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    *shared.inbox.waker.lock() = Some(waker);
    shared.running.store(true, Ordering::SeqCst);
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    let mut lp = Loop {
        shared,
        poll,
        listener,
        conns: HashMap::new(),
        next_id: 0,
        scratch: vec![0; 64 * 1024],
        exec_meta: HashMap::new(),
        deadlines: DeadlineSet::default(),
    };
    let result = lp.run(ctl);
    shared
        .stats
        .active_connections
        .fetch_sub(lp.conns.len() as u64, Ordering::Relaxed);
    let ws = lp.conns.values().filter(|c| c.mode == Mode::Ws).count() as u64;
    shared.stats.ws_clients.fetch_sub(ws, Ordering::Relaxed);
    result
}

impl Loop<'_> {
    fn run(&mut self, ctl: &ControlRx) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_sweep = Instant::now();
        loop {
            let now = Instant::now();
            let wake = self
                .deadlines
                .next()
                .map_or(last_sweep + HOUSEKEEPING, |d| {
                    d.min(last_sweep + HOUSEKEEPING)
                });
            match self
                .poll
                .poll(&mut events, Some(wake.saturating_duration_since(now)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let id = (t - 2) / 2;
                        let upstream = (t - 2) % 2 == 1;
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                        let closed = ev.is_read_closed() || ev.is_error();
                        if let Some(c) = self.conns.get_mut(&id) {
                            if upstream {
                                c.upstream_ready(readable, writable, closed);
                            } else {
                                c.client_ready(readable, writable, closed);
                            }
                        }
                        self.drive(id);
                    }
                }
            }
            // Control messages (cheap when empty).
            while let Ok(c) = ctl.try_recv() {
                match c {
                    Control::Stop => return Ok(()),
                    Control::Panic => panic!("test hook: proxy loop panic requested"),
                    Control::Exec { id, code } => self.exec(id, code),
                    Control::Screenshot(done) => self.screenshot_done(done),
                    Control::Broadcast { text, reply } => {
                        let _ = reply.try_send(self.broadcast(text));
                    }
                }
            }
            // A stop whose message could not be queued (full channel) is still seen.
            if self.shared.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = Instant::now();
            self.expire(now);
            if now.duration_since(last_sweep) >= HOUSEKEEPING {
                last_sweep = now;
                self.exec_meta
                    .retain(|_, m| now.duration_since(m.started) < Duration::from_secs(600));
            }
        }
    }

    fn ctx_drive(&mut self, id: usize, f: impl FnOnce(&mut Conn, &mut Ctx<'_>)) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut cx = Ctx {
            shared: self.shared,
            registry: self.poll.registry(),
            scratch: &mut self.scratch,
            exec_meta: &mut self.exec_meta,
        };
        f(conn, &mut cx);
        conn.drive(&mut cx);
        if conn.closed {
            conn.on_close(&mut cx);
            let was_ws = conn.mode == Mode::Ws;
            self.conns.remove(&id);
            self.deadlines.set(id, None);
            self.shared
                .stats
                .active_connections
                .fetch_sub(1, Ordering::Relaxed);
            if was_ws {
                self.shared.stats.ws_clients.fetch_sub(1, Ordering::Relaxed);
            }
        } else {
            let next = conn.next_deadline(&cx);
            self.deadlines.set(id, next);
        }
    }

    fn drive(&mut self, id: usize) {
        self.ctx_drive(id, |_, _| {});
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, peer)) => {
                    let fd = match self.shared.fds.lease(1) {
                        Some(fd) if self.conns.len() < MAX_CONNS => fd,
                        _ => {
                            // Over the budget: say so (best effort, the socket buffer is empty)
                            // and close, so the client neither hangs nor takes a descriptor.
                            self.shared
                                .stats
                                .rejected_connections
                                .fetch_add(1, Ordering::Relaxed);
                            log::debug!(
                                "proxy {}: connection budget in use, refusing {peer}",
                                self.shared.config.id
                            );
                            let _ = sock.write(&answers::over_budget());
                            let _ = sock.shutdown(std::net::Shutdown::Write);
                            continue;
                        }
                    };
                    let _ = sock.set_nodelay(true);
                    let id = self.next_id;
                    self.next_id += 1;
                    if let Err(e) = self.poll.registry().register(
                        &mut sock,
                        client_token(id),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!(
                            "proxy {}: cannot register client: {e}",
                            self.shared.config.id
                        );
                        continue;
                    }
                    self.shared
                        .stats
                        .active_connections
                        .fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .stats
                        .total_connections
                        .fetch_add(1, Ordering::Relaxed);
                    self.conns.insert(id, Conn::new(id, sock, peer, fd));
                    self.drive(id);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: keep serving the connections we have.
                    log::warn!("proxy {}: accept failed: {e}", self.shared.config.id);
                    return;
                }
            }
        }
    }

    fn exec(&mut self, id: String, code: String) {
        let Some(cid) = channel::exec_target(self.conns.values()) else {
            if let Some(tx) = self.shared.pending.lock().remove(&id) {
                let _ = tx.try_send(Err(
                    "no page connected: open the proxy URL in a browser (the agnt script connects to /__agnt/ws)".into(),
                ));
            }
            return;
        };
        let msg = json!({"type": "execute", "id": id, "code": code}).to_string();
        self.exec_meta.insert(
            id.clone(),
            ExecMeta {
                code,
                started: Instant::now(),
            },
        );
        let mut sent = false;
        self.ctx_drive(cid, |c, _| sent = c.ws_send(msg));
        if !sent {
            self.exec_meta.remove(&id);
            if let Some(tx) = self.shared.pending.lock().remove(&id) {
                let _ = tx.try_send(Err(
                    "the page connection closed before the code could be sent".into(),
                ));
            }
        }
    }

    /// The writer finished a screenshot: log it and answer the page (if it is still there).
    fn screenshot_done(&mut self, done: channel::ShotDone) {
        let (conn, generation) = (done.conn, done.generation);
        let ack = channel::screenshot_done(self.shared, done);
        if generation == self.shared.restart_count.load(Ordering::SeqCst) {
            self.ctx_drive(conn, |c, _| {
                c.ws_send(ack);
            });
        }
    }

    /// Sends `text` to every top-level page; returns how many it reached.
    fn broadcast(&mut self, text: String) -> usize {
        let pages: Vec<usize> = self
            .conns
            .values()
            .filter(|c| c.mode == Mode::Ws && !c.closed)
            .filter(|c| c.ws.as_ref().is_some_and(|w| !w.frame))
            .map(|c| c.id)
            .collect();
        let mut reached = 0;
        for cid in pages {
            self.ctx_drive(cid, |c, _| reached += usize::from(c.ws_send(text.clone())));
        }
        reached
    }

    /// Acts on the connections whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        for id in self.deadlines.expired(now) {
            self.ctx_drive(id, |c, cx| c.check_timeouts(cx, now));
        }
    }
}
