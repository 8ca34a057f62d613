//! `agnt up`: run a project's autostart scripts and proxies in the foreground, print their output
//! prefixed by name, and, with `-- CMD`, wait until they are ready, run CMD, tear everything down
//! and exit with CMD's status.
//!
//! One session, two places for the tools: when a daemon of our version runs, the scripts and
//! proxies live there (agents see them); otherwise the session creates its own `Host`, serves it
//! on the daemon socket for other clients while it runs, and reaches it over in-memory
//! connections. Either way everything goes through the tools (`link.rs`): `run` (with the
//! caller's environment as `base_env`), `proc`, `proxy`, `wait`. Signals are registered before
//! any thread starts; the first SIGINT/SIGTERM stops what this session started gracefully
//! (proxies first, then processes), a second one kills it at once.

mod cmd;
mod conflict;
mod follow;
mod link;
mod printer;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender, select};
use serde_json::json;

use self::{
    follow::{Exit, Follow, UrlWatch},
    link::{Link, Owned},
    printer::Printer,
};
use crate::{
    Error, Result,
    config::{self, Config, PortConflict, ProxyEntry, ScriptConfig},
    daemon::{BackgroundHandle, client::Client},
    host::{Host, HostOptions},
    mcp::Toolbox,
    thread::JoinOnDrop,
};

/// Options of `agnt up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Config file; `None` = find `.agnt.kdl` from the current directory up.
    pub config: Option<PathBuf>,
    /// Command to run once every autostart script is ready.
    pub cmd: Vec<String>,
}

/// Runs `agnt up` and returns the process exit code.
pub fn run(opts: UpOptions) -> ExitCode {
    match run_session(opts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("agnt up: {e}");
            ExitCode::from(1)
        }
    }
}

/// Grace for the in-process host's final shutdown (what agents started on our socket).
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Signals closer together than this count as one.
const SIGNAL_ECHO: Duration = Duration::from_millis(200);

fn run_session(opts: UpOptions) -> Result<u8> {
    // Signals first, before any thread exists, so no SIGINT between here and the first child
    // is lost.
    let signals = crate::signals::shutdown_signals()?;
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("reading current directory", None, e))?;
    let config = match &opts.config {
        Some(path) => Some(config::load(&cwd.join(path))?),
        None => config::find(&cwd).map(|p| config::load(&p)).transpose()?,
    };
    for warning in config.iter().flat_map(|c| &c.warnings) {
        eprintln!("agnt up: warning: {warning}");
    }
    if config.is_none() && opts.cmd.is_empty() {
        return Err(Error::invalid(format!(
            "no {} found in {} or above: create one (see README) or pass --config FILE",
            config::FILE_NAME,
            cwd.display()
        )));
    }
    let root = config
        .as_ref()
        .map_or_else(|| cwd.clone(), |c| c.root.clone());
    let root = root.canonicalize().unwrap_or(root);
    let scripts: Vec<&ScriptConfig> = config
        .iter()
        .flat_map(|c| &c.scripts)
        .filter(|s| s.autostart)
        .collect();
    let any_proxy = config
        .iter()
        .flat_map(|c| &c.proxies)
        .any(|p| p.autostart && p.target.is_some());
    if scripts.is_empty() && !any_proxy && opts.cmd.is_empty() {
        eprintln!(
            "agnt up: no script or proxy in {} has `autostart true`: nothing to run",
            config.as_ref().map_or(Path::new(""), |c| &c.path).display()
        );
        return Ok(0);
    }
    let entries = config
        .as_ref()
        .map(|c| c.proxies.clone())
        .unwrap_or_default();

    let mut session = Session::open(root, config.as_ref(), &scripts, signals)?;
    let result = session.start(&scripts, &entries).and_then(|()| {
        if session.interrupted {
            Ok(if opts.cmd.is_empty() {
                0
            } else {
                cmd::INTERRUPTED
            })
        } else if opts.cmd.is_empty() {
            Ok(session.supervise(scripts.len()))
        } else {
            session.run_cmd(&scripts, &opts.cmd, &cwd)
        }
    });
    session.teardown();
    result
}

/// A running session: where the tools are, what it started, who follows what.
struct Session {
    link: Link,
    /// The main connection (starts, and the proxies of the config).
    client: Client,
    /// The path of the config, sent with `run` so scripts resolve in it.
    config: Option<PathBuf>,
    owned: Arc<Owned>,
    printer: Arc<Printer>,
    signals: Receiver<i32>,
    exits: (Sender<Exit>, Receiver<Exit>),
    followers: Vec<JoinOnDrop<()>>,
    /// Set at teardown: followers of processes the session did not start stop there.
    closing: Arc<AtomicBool>,
    /// Without a daemon: the session's own host, and its socket while served.
    local: Option<Local>,
    /// A signal came while a script waited for its `depends-on`: nothing more starts.
    interrupted: bool,
    /// `project { port-conflict }`.
    port_conflict: PortConflict,
}

struct Local {
    host: Arc<Host>,
    socket: Option<BackgroundHandle>,
}

impl Session {
    /// Connects to a daemon of our version, or creates and serves the session's own host.
    fn open(
        root: PathBuf,
        config: Option<&Config>,
        scripts: &[&ScriptConfig],
        signals: Receiver<i32>,
    ) -> Result<Session> {
        let socket = crate::paths::socket_path();
        let daemon = Client::connect(&socket, root.clone()).and_then(|mut c| {
            c.check_version()?;
            Ok(c)
        });
        let (link, client, local) = match daemon {
            Ok(client) => {
                eprintln!(
                    "agnt up: an agnt daemon runs: starting the scripts there (agents see them too)"
                );
                let link = Link::Socket {
                    socket,
                    project: root,
                };
                (link, client, None)
            }
            Err(e) => {
                if let Error::VersionMismatch { theirs } = &e {
                    eprintln!(
                        "agnt up: the agnt daemon on {} is version {theirs} (this is {}): running this session on its own",
                        socket.display(),
                        env!("CARGO_PKG_VERSION")
                    );
                }
                let host = Arc::new(Host::new(HostOptions::session(root.clone())));
                let link = Link::InProcess {
                    toolbox: Arc::new(Toolbox::in_process(host.clone())),
                    project: root,
                };
                let client = link.connect()?;
                let socket = crate::daemon::serve_if_no_daemon(host.clone());
                (link, client, Some(Local { host, socket }))
            }
        };
        let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(0);
        Ok(Session {
            link,
            client,
            config: config.map(|c| c.path.canonicalize().unwrap_or(c.path.clone())),
            owned: Arc::default(),
            printer: Arc::new(Printer::new(width)),
            signals,
            exits: crossbeam_channel::unbounded(),
            followers: Vec::new(),
            closing: Arc::default(),
            local,
            interrupted: false,
            port_conflict: config.map(|c| c.project.port_conflict).unwrap_or_default(),
        })
    }

    /// Starts the config's autostart proxies, then each script (with a follower).
    fn start(&mut self, scripts: &[&ScriptConfig], entries: &[ProxyEntry]) -> Result<()> {
        for entry in entries.iter().filter(|e| e.autostart) {
            if let Some(target) = &entry.target {
                let url = link::start_proxy(&mut self.client, &self.owned, entry, target)?;
                self.printer.proxy(&entry.name, &url, target);
            }
        }
        let base_env: serde_json::Map<String, serde_json::Value> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?.into())))
            .collect();
        for (i, script) in scripts.iter().enumerate() {
            if !self.await_dependencies(script, scripts)? {
                self.interrupted = true;
                return Ok(());
            }
            if !script.ports.is_empty() && !self.is_running(&script.name) {
                conflict::preflight(script, self.port_conflict)?;
            }
            let mut args = json!({
                "script_name": script.name,
                "id": script.name,
                "path": self.link.project(),
                "base_env": base_env,
            });
            if let Some(config) = &self.config {
                args["config"] = json!(config);
            }
            let v = link::tool(&mut self.client, "run", args).map_err(|e| {
                Error::Other(format!("script {:?} failed to start: {e}", script.name))
            })?;
            let owned = v["reused"] != true;
            if owned {
                self.owned.add_process(&script.name);
            } else {
                eprintln!(
                    "agnt up: script {:?} was already running (pid {}); following it, it keeps running after agnt up",
                    script.name, v["pid"]
                );
            }
            let follow = Follow {
                id: script.name.clone(),
                prefix: self.printer.prefix(&script.name, i),
                watch: UrlWatch::for_script(script, entries),
                owned,
            };
            let follower = follow::spawn(
                &self.link,
                follow,
                self.printer.clone(),
                self.owned.clone(),
                self.closing.clone(),
                self.exits.0.clone(),
            )?;
            self.followers.push(follower);
        }
        Ok(())
    }

    /// Whether process `id` runs already (then its ports are its own).
    fn is_running(&mut self, id: &str) -> bool {
        let args = json!({"action": "status", "process_id": id, "path": self.link.project()});
        link::tool(&mut self.client, "proc", args).is_ok_and(|st| st["state"] == "running")
    }

    /// Waits for each of `script`'s `depends-on` that this session started to be ready (a
    /// dependency that dies, times out or was not started is a warning: the script starts
    /// anyway). `false` when a signal came meanwhile.
    fn await_dependencies(&self, script: &ScriptConfig, started: &[&ScriptConfig]) -> Result<bool> {
        if script.depends_on.is_empty() {
            return Ok(true);
        }
        let mut waits = Vec::new();
        for dep in &script.depends_on {
            match started.iter().find(|s| s.name == dep.script) {
                Some(s) => waits.push((dep.script.clone(), s.ready.clone(), dep.timeout)),
                None => eprintln!(
                    "agnt up: warning: script {:?} depends on {:?}, which is not an autostart script: starting it anyway",
                    script.name, dep.script
                ),
            }
        }
        let mut client = self.link.connect()?;
        let (tx, rx) = crossbeam_channel::bounded(waits.len().max(1));
        let name = script.name.clone();
        let waiter = crate::thread::spawn(
            format!("agnt-deps-{name}"),
            crate::thread::SMALL_STACK * 2,
            move || {
                for (dep, ready, timeout) in waits {
                    let result = cmd::ready_one(&mut client, &dep, ready.as_ref(), timeout);
                    if tx.send((dep, result)).is_err() {
                        return;
                    }
                }
            },
        )
        .map_err(|e| Error::io("starting a dependency wait", None, e))?;
        let waiter = JoinOnDrop::new(waiter);
        loop {
            select! {
                recv(self.signals) -> _ => {
                    // The wait ends once teardown has stopped the dependency.
                    waiter.detach();
                    return Ok(false);
                }
                recv(rx) -> msg => match msg {
                    Ok((dep, Err(e))) => eprintln!(
                        "agnt up: warning: script {name:?} starts without {dep:?} being ready: {e}"
                    ),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        waiter.join();
        Ok(true)
    }

    /// Without CMD: runs until a signal, or until every script has exited (0 if all passed); with
    /// proxies only, until a signal.
    fn supervise(&self, mut running: usize) -> u8 {
        if running == 0 {
            let _ = self.signals.recv();
            return 0;
        }
        let mut all_passed = true;
        while running > 0 {
            select! {
                recv(self.signals) -> _ => return 0,
                recv(self.exits.1) -> exit => {
                    running -= 1;
                    if let Ok(Exit { abort: Some(why), .. }) = &exit {
                        eprintln!("agnt up: {why}");
                        return 1;
                    }
                    all_passed &= exit.is_ok_and(|e| e.passed);
                }
            }
        }
        if all_passed { 0 } else { 1 }
    }

    /// With CMD: waits for readiness, runs CMD, returns its exit status.
    fn run_cmd(&self, scripts: &[&ScriptConfig], argv: &[String], cwd: &Path) -> Result<u8> {
        if let Some(code) = cmd::wait_ready(&self.link, scripts, &self.signals)? {
            return Ok(code);
        }
        cmd::run(argv, cwd, &self.signals)
    }

    /// Stops what the session started: gracefully, or at once if another signal arrives
    /// meanwhile; then, without a daemon, the session's host.
    fn teardown(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        // Stop taking socket clients before stopping what they could control.
        let host = self.local.take().map(|mut l| {
            drop(l.socket.take());
            l.host
        });
        let (processes, proxies) = self.owned.close();
        if !processes.is_empty() {
            eprintln!(
                "agnt up: stopping {} process(es) (Ctrl+C again to kill them at once)",
                processes.len()
            );
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        let (link, graceful_host) = (self.link.clone(), host.clone());
        let (procs, pxs) = (processes.clone(), proxies.clone());
        let graceful = crate::thread::spawn(
            "agnt-up-teardown",
            crate::thread::SMALL_STACK * 2,
            move || {
                link::stop(&link, &procs, &pxs, false);
                if let Some(h) = graceful_host {
                    h.shutdown(TEARDOWN_DEADLINE);
                }
                let _ = tx.send(());
            },
        )
        .map(JoinOnDrop::new);
        if graceful.is_err() {
            self.kill(&processes, &proxies, host.as_deref());
        }
        // A signal sent to our whole process group (as `timeout` and some CI runners do) can
        // arrive twice at once; only one that comes noticeably later is a second Ctrl+C.
        let started = Instant::now();
        let finished = loop {
            select! {
                recv(rx) -> _ => break true,
                recv(self.signals) -> _ => {
                    if started.elapsed() < SIGNAL_ECHO {
                        continue;
                    }
                    eprintln!("agnt up: second signal: killing every process group now");
                    self.kill(&processes, &proxies, host.as_deref());
                    break rx.recv_timeout(Duration::from_secs(2)).is_ok();
                }
            }
        };
        match graceful {
            Ok(g) if finished => drop(g),
            // A graceful stop stuck past the kill must not hold the exit up.
            Ok(g) => g.detach(),
            Err(_) => {}
        }
        // Followers end once their process has exited and its output is printed.
        for f in self.followers.drain(..) {
            f.join();
        }
    }

    /// Kills what the session started at once (and, without a daemon, everything in its host).
    fn kill(&self, processes: &[String], proxies: &[String], host: Option<&Host>) {
        link::stop(&self.link, processes, proxies, true);
        if let Some(h) = host {
            h.shutdown(Duration::ZERO);
        }
    }
}
