//! `agnt up`: run a project's autostart scripts in the foreground, print their output prefixed by
//! name, and, with `-- CMD`, wait until they are ready, run CMD, tear everything down and exit
//! with CMD's status.
//!
//! Owns the foreground session's lifecycle: signals are registered before any thread starts; the
//! first SIGINT/SIGTERM stops everything gracefully, a second one kills every process group at
//! once. Nothing the session started survives it.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;

use crate::{
    Error, Result, config,
    config::ProxyEntry,
    proxy::{ProxyConfig, ProxyManager},
    supervisor::{CommandLine, ManagedProcess, OutputRequest, ProcessManager, ProcessSpec, State},
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
    match Session::run(opts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("agnt up: {e}");
            ExitCode::from(1)
        }
    }
}

/// Grace for the normal teardown (TERM, wait, KILL) of everything.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Signals closer together than this count as one.
const SIGNAL_ECHO: Duration = Duration::from_millis(200);
/// Id of the `-- CMD` process.
const CMD_ID: &str = "cmd";
/// Lines of a failed script's output shown in the error message.
const LAST_LINES: usize = 20;

struct Session {
    pm: Arc<ProcessManager>,
    proxies: Arc<ProxyManager>,
    signals: Receiver<i32>,
    printer: Arc<Printer>,
    /// Each follower sends its process id here once the process has exited and its output is out.
    done_tx: Sender<String>,
    done_rx: Receiver<String>,
    followers: Vec<crate::thread::JoinOnDrop<()>>,
    /// This session served on the daemon socket when no daemon runs (dropped first in teardown).
    daemon: Option<crate::daemon::BackgroundHandle>,
}

impl Session {
    fn run(opts: UpOptions) -> Result<u8> {
        // Signals first, before any thread exists, so every thread inherits the mask-free setup
        // and no SIGINT between here and the first child is lost.
        let signals = crate::signals::shutdown_signals()?;
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("reading current directory", None, e))?;
        let config = match &opts.config {
            Some(path) => Some(config::load(path)?),
            None => config::find(&cwd).map(|p| config::load(&p)).transpose()?,
        };
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
        let scripts: Vec<_> = config
            .iter()
            .flat_map(|c| &c.scripts)
            .filter(|s| s.autostart)
            .collect();
        if scripts.is_empty() && opts.cmd.is_empty() {
            eprintln!(
                "agnt up: no script in {} has `autostart true`: nothing to run",
                config.as_ref().map_or(Path::new(""), |c| &c.path).display()
            );
            return Ok(0);
        }

        // A daemon runs: the scripts run there (agents and the CLI see them), output streams here.
        if !scripts.is_empty()
            && let Some(remote) =
                crate::daemon::remote::RemoteSession::connect(&crate::paths::socket_path(), &root)
        {
            let entries = config
                .as_ref()
                .map(|c| c.proxies.clone())
                .unwrap_or_default();
            return remote::run(remote, &scripts, &entries, opts.cmd, cwd, signals);
        }

        let host = Arc::new(crate::host::Host::new(crate::host::HostOptions::session(
            root.clone(),
        )));
        let pm = host.pm()?.clone();
        let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let printer = Arc::new(Printer::new(width));
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let proxies = host.proxies().clone();
        let daemon = crate::daemon::serve_if_no_daemon(host.clone());
        let mut session = Session {
            pm,
            proxies,
            signals,
            printer,
            done_tx,
            done_rx,
            followers: vec![],
            daemon,
        };
        let proxy_entries = config
            .as_ref()
            .map(|c| c.proxies.clone())
            .unwrap_or_default();

        for entry in proxy_entries.iter().filter(|e| e.autostart) {
            if let Some(target) = &entry.target
                && let Err(e) =
                    start_proxy(&session.proxies, &session.printer, entry, target, &root)
            {
                session.teardown();
                return Err(e);
            }
        }
        let mut procs = Vec::new();
        for (i, script) in scripts.iter().enumerate() {
            let watch = UrlWatch::for_script(script, &proxy_entries, &session.proxies, &root);
            match session.pm.start(script.to_spec(&script.name, &root)) {
                Ok(p) => {
                    session.follow(&p, &script.name, i, watch)?;
                    procs.push((p, script.ready_timeout));
                }
                Err(e) => {
                    session.teardown();
                    return Err(Error::Other(format!(
                        "script {:?} failed to start: {e}",
                        script.name
                    )));
                }
            }
        }

        let code = if opts.cmd.is_empty() {
            session.supervise(procs.len())
        } else {
            session.run_cmd(&procs, opts.cmd, cwd)?
        };
        session.teardown();
        Ok(code)
    }

    /// Without CMD: runs until a signal, or until every script has exited (0 if all passed).
    fn supervise(&self, mut running: usize) -> u8 {
        let mut all_passed = true;
        while running > 0 {
            select! {
                recv(self.signals) -> _ => return 0,
                recv(self.done_rx) -> id => {
                    running -= 1;
                    if let Ok(id) = id
                        && let Some(p) = self.pm.list(None).into_iter().find(|p| p.id() == id)
                    {
                        all_passed &= p.exit_code() == Some(0);
                    }
                }
            }
        }
        if all_passed { 0 } else { 1 }
    }

    /// With CMD: waits for readiness, runs CMD, returns its exit status.
    fn run_cmd(
        &mut self,
        procs: &[(Arc<ManagedProcess>, Duration)],
        cmd: Vec<String>,
        cwd: PathBuf,
    ) -> Result<u8> {
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        for (p, timeout) in procs {
            let (p, timeout, tx) = (p.clone(), *timeout, ready_tx.clone());
            // Detached: `wait_ready` ends by its timeout or the exit; its answer may go unread.
            crate::thread::spawn(
                format!("agnt-ready-{}", p.id()),
                crate::thread::SMALL_STACK,
                move || {
                    let _ = tx.send((p.clone(), p.wait_ready(timeout)));
                },
            )
            .map_err(|e| Error::io("starting readiness thread", None, e))?;
        }
        drop(ready_tx);
        for _ in procs {
            select! {
                recv(self.signals) -> _ => return Ok(130),
                recv(ready_rx) -> msg => {
                    let Ok((p, result)) = msg else { break };
                    if let Err(e) = result {
                        let last = p.output(&OutputRequest { tail: Some(LAST_LINES), ..Default::default() })
                            .map(|r| r.text)
                            .unwrap_or_default();
                        eprintln!("agnt up: script {:?} did not become ready: {e}", p.id());
                        if !last.trim().is_empty() {
                            eprintln!("agnt up: last output of {:?}:\n{}", p.id(), last.trim_end());
                        }
                        return Ok(1);
                    }
                }
            }
        }

        let mut spec = ProcessSpec::new(
            CMD_ID,
            self.pm_root(procs, &cwd),
            CommandLine::Argv(cmd.clone()),
        );
        spec.cwd = Some(cwd);
        let p = match self.pm.start(spec) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("agnt up: {e}");
                return Ok(127);
            }
        };
        self.follow(&p, "", usize::MAX, None)?;
        loop {
            select! {
                recv(self.signals) -> _ => return Ok(130),
                recv(self.done_rx) -> id => {
                    if id.as_deref() == Ok(CMD_ID) {
                        return Ok(exit_status(&p));
                    }
                }
            }
        }
    }

    /// CMD's registry scope: the project of the scripts, so ids never clash with theirs.
    fn pm_root(&self, procs: &[(Arc<ManagedProcess>, Duration)], cwd: &Path) -> PathBuf {
        procs
            .first()
            .map_or_else(|| cwd.to_path_buf(), |(p, _)| p.project().to_path_buf())
    }

    /// Starts a thread that prints the process's output as it arrives and reports its exit.
    fn follow(
        &mut self,
        p: &Arc<ManagedProcess>,
        name: &str,
        color: usize,
        mut watch: Option<UrlWatch>,
    ) -> Result<()> {
        let (p, printer, done) = (p.clone(), self.printer.clone(), self.done_tx.clone());
        let prefix = printer.prefix(name, color);
        let handle = crate::thread::spawn(
            format!("agnt-up-{}", p.id()),
            crate::thread::SMALL_STACK,
            move || {
                let mut cursor = 0;
                let mut partial = String::new();
                loop {
                    let end = p.wait_output(cursor, Duration::from_secs(3600));
                    if end > cursor {
                        let req = OutputRequest {
                            since: Some(cursor),
                            ..Default::default()
                        };
                        if let Ok(read) = p.output(&req) {
                            if read.lost_bytes > 0 {
                                printer.line(
                                    &prefix,
                                    &format!(
                                        "[agnt: {} bytes of output lost to the ring buffer]",
                                        read.lost_bytes
                                    ),
                                );
                            }
                            partial.push_str(&read.text);
                            let printed = printer.complete_lines(&prefix, &mut partial);
                            if let Some(w) = &mut watch {
                                w.scan(&printed, &printer);
                            }
                            cursor = read.next_offset.max(cursor);
                            continue;
                        }
                        cursor = end; // unreadable (never expected): skip it rather than spin
                    }
                    if p.state().is_terminal()
                        && p.output_end(crate::supervisor::Stream::Combined) <= cursor
                    {
                        break;
                    }
                }
                if !partial.is_empty() {
                    printer.line(&prefix, &partial);
                }
                if !prefix.is_empty() {
                    printer.line(&prefix, &format!("[agnt: exited, {}]", p.summary()));
                }
                let _ = done.send(p.id().to_string());
            },
        )
        .map_err(|e| Error::io("starting output thread", None, e))?;
        self.followers.push(crate::thread::JoinOnDrop::new(handle));
        Ok(())
    }

    /// Stops everything: gracefully, or at once if another signal arrives meanwhile.
    fn teardown(&mut self) {
        // Stop taking socket clients before stopping what they could control.
        drop(self.daemon.take());
        let live = self
            .pm
            .list(None)
            .iter()
            .filter(|p| !p.state().is_terminal())
            .count();
        if live > 0 {
            eprintln!("agnt up: stopping {live} process(es) (Ctrl+C again to kill them at once)");
        }
        let (pm, proxies) = (self.pm.clone(), self.proxies.clone());
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        // Detached: a second signal must not wait for it; shutdown is idempotent and bounded.
        let graceful =
            crate::thread::spawn("agnt-up-teardown", crate::thread::SMALL_STACK, move || {
                proxies.shutdown(TEARDOWN_DEADLINE);
                pm.shutdown(TEARDOWN_DEADLINE);
                let _ = tx.send(());
            });
        if graceful.is_err() {
            self.pm.shutdown(Duration::ZERO);
        }
        // A signal sent to our whole process group (as `timeout` and some CI runners do) can
        // arrive twice at once; only one that comes noticeably later is a second Ctrl+C.
        let started = std::time::Instant::now();
        loop {
            select! {
                recv(rx) -> _ => break,
                recv(self.signals) -> _ => {
                    if started.elapsed() < SIGNAL_ECHO {
                        continue;
                    }
                    eprintln!("agnt up: second signal: killing every process group now");
                    self.pm.shutdown(Duration::ZERO);
                    self.proxies.shutdown(Duration::ZERO);
                    let _ = rx.recv_timeout(Duration::from_secs(2));
                    break;
                }
            }
        }
        // Followers end once their process has exited and its output is printed.
        for f in self.followers.drain(..) {
            f.join();
        }
    }
}

/// Starts one proxy of the config and prints its address.
fn start_proxy(
    proxies: &ProxyManager,
    printer: &Printer,
    entry: &ProxyEntry,
    target: &str,
    root: &Path,
) -> Result<()> {
    let mut cfg = ProxyConfig::new(&entry.name, target, root);
    cfg.port = entry.port;
    if let Some(n) = entry.max_log_size {
        cfg.max_log_size = n;
    }
    let server = proxies
        .start(cfg)
        .map_err(|e| Error::Other(format!("proxy {:?} failed to start: {e}", entry.name)))?;
    printer.line(
        "",
        &format!(
            "agnt: proxy {} listening on {} -> {target}",
            entry.name,
            server.url()
        ),
    );
    Ok(())
}

/// Proxies waiting for their script to print a local URL.
struct UrlWatch {
    matchers: Vec<regex::Regex>,
    pending: Vec<ProxyEntry>,
    proxies: Arc<ProxyManager>,
    root: PathBuf,
}

impl UrlWatch {
    fn for_script(
        script: &config::ScriptConfig,
        entries: &[ProxyEntry],
        proxies: &Arc<ProxyManager>,
        root: &Path,
    ) -> Option<UrlWatch> {
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
        Some(UrlWatch {
            matchers,
            pending,
            proxies: proxies.clone(),
            root: root.to_path_buf(),
        })
    }

    /// Starts the waiting proxies once a line of `text` names the script's URL.
    fn scan(&mut self, text: &str, printer: &Printer) {
        if self.pending.is_empty() {
            return;
        }
        let Some(url) = text
            .lines()
            .find_map(|l| crate::urlwatch::find_url(l, &self.matchers))
        else {
            return;
        };
        for entry in self.pending.drain(..) {
            if let Err(e) = start_proxy(&self.proxies, printer, &entry, &url, &self.root) {
                eprintln!("agnt up: {e}");
            }
        }
    }
}

/// Exit status of a finished process as a shell would report it.
fn exit_status(p: &ManagedProcess) -> u8 {
    match (p.exit_code(), p.exit_signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ if p.state() == State::Stopped => 0,
        _ => 1,
    }
}

/// Writes prefixed lines to stdout, one whole line at a time.
struct Printer {
    color: bool,
    width: usize,
    out: Mutex<()>,
}

impl Printer {
    fn new(width: usize) -> Printer {
        Printer {
            color: std::io::stdout().is_terminal(),
            width,
            out: Mutex::new(()),
        }
    }

    /// `name | ` padded to the widest name, coloured on a terminal; empty name = no prefix.
    fn prefix(&self, name: &str, color: usize) -> String {
        if name.is_empty() {
            return String::new();
        }
        const COLORS: [u8; 6] = [36, 33, 32, 35, 34, 31];
        let padded = format!("{name:<width$} | ", width = self.width);
        if self.color {
            format!("\x1b[{}m{padded}\x1b[0m", COLORS[color % COLORS.len()])
        } else {
            padded
        }
    }

    /// Prints every complete line of `buf`, keeps the unfinished rest in it, and returns what
    /// was printed.
    fn complete_lines(&self, prefix: &str, buf: &mut String) -> String {
        let Some(last_nl) = buf.rfind('\n') else {
            return String::new();
        };
        let rest = buf.split_off(last_nl + 1);
        {
            let _guard = self.out.lock();
            let mut out = std::io::stdout().lock();
            for line in buf.lines() {
                let _ = writeln!(out, "{prefix}{line}");
            }
            let _ = out.flush();
        }
        std::mem::replace(buf, rest)
    }

    fn line(&self, prefix: &str, line: &str) {
        let _guard = self.out.lock();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{prefix}{}", line.trim_end_matches('\n'));
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_lines() {
        let p = Printer {
            color: false,
            width: 5,
            out: Mutex::new(()),
        };
        assert_eq!(p.prefix("web", 0), "web   | ");
        assert_eq!(p.prefix("", 0), "");
        let colored = Printer {
            color: true,
            width: 3,
            out: Mutex::new(()),
        };
        assert_eq!(colored.prefix("api", 1), "\x1b[33mapi | \x1b[0m");
        let mut buf = "a\nb\npart".to_string();
        p.complete_lines("", &mut buf);
        assert_eq!(buf, "part");
        let mut buf = "no newline".to_string();
        p.complete_lines("", &mut buf);
        assert_eq!(buf, "no newline");
    }
}

/// `agnt up` when a daemon already runs: the same contract (prefixed output, readiness, `-- CMD`
/// exit status, nothing left behind), with the scripts and proxies living in the daemon.
mod remote {
    use std::{
        path::PathBuf,
        sync::Arc,
        time::{Duration, Instant},
    };

    use crossbeam_channel::{Receiver, select};

    use super::{CMD_ID, Printer, SIGNAL_ECHO};
    use crate::{
        Error, Result,
        config::{ProxyEntry, ScriptConfig},
        daemon::remote::RemoteSession,
    };

    pub(super) fn run(
        mut remote: RemoteSession,
        scripts: &[&ScriptConfig],
        entries: &[ProxyEntry],
        cmd: Vec<String>,
        cwd: PathBuf,
        signals: Receiver<i32>,
    ) -> Result<u8> {
        eprintln!("agnt up: an agnt daemon runs: starting the scripts there (agents see them too)");
        let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let printer = Arc::new(Printer::new(width));
        for entry in entries.iter().filter(|e| e.autostart) {
            if let Some(target) = &entry.target {
                let v = remote.start_proxy(entry, target)?;
                announce(
                    &printer,
                    &entry.name,
                    v["url"].as_str().unwrap_or("?"),
                    target,
                );
            }
        }
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
        let mut followers = Vec::new();
        for (i, s) in scripts.iter().enumerate() {
            let mut watch = remote.script_proxies(s, entries)?;
            remote
                .start_script(&s.name)
                .map_err(|e| Error::Other(format!("script {:?} failed to start: {e}", s.name)))?;
            let (printer, prefix) = (printer.clone(), printer.prefix(&s.name, i));
            let mut partial = String::new();
            let follower = remote.follow(&s.name, move |t| {
                partial.push_str(t);
                let lines = printer.complete_lines(&prefix, &mut partial);
                if let Some(w) = &mut watch {
                    for started in w.scan(&lines) {
                        match started {
                            Ok(p) => announce(&printer, &p.name, &p.url, &p.target),
                            Err(e) => eprintln!("agnt up: {e}"),
                        }
                    }
                }
            })?;
            let tx = done_tx.clone();
            let waiter =
                crate::thread::spawn("agnt-up-done", crate::thread::SMALL_STACK, move || {
                    follower.join();
                    let _ = tx.send(());
                })
                .map_err(|e| Error::io("starting a follower", None, e))?;
            followers.push(crate::thread::JoinOnDrop::new(waiter));
        }
        drop(done_tx);
        let code = if cmd.is_empty() {
            let mut running = scripts.len();
            loop {
                if running == 0 {
                    break 0;
                }
                select! {
                    recv(signals) -> _ => break 0,
                    recv(done_rx) -> d => match d {
                        Ok(()) => running -= 1,
                        Err(_) => break 0,
                    },
                }
            }
        } else {
            run_cmd(&remote, scripts, cmd, cwd, &signals)?
        };
        teardown(remote, &signals);
        drop(followers);
        Ok(code)
    }

    /// Prints a started proxy the way the in-process path does.
    fn announce(printer: &Printer, name: &str, url: &str, target: &str) {
        printer.line(
            "",
            &format!("agnt: proxy {name} listening on {url} -> {target}"),
        );
    }

    /// Stops what the session started, gracefully on a thread; a signal that comes later than
    /// an echo of the first escalates to killing everything at once.
    fn teardown(mut remote: RemoteSession, signals: &Receiver<i32>) {
        let live = remote.process_count();
        if live > 0 {
            eprintln!("agnt up: stopping {live} process(es) (Ctrl+C again to kill them at once)");
        }
        let killer = remote.killer();
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        // Detached: a second signal must not wait for it; the daemon bounds each stop.
        let graceful =
            crate::thread::spawn("agnt-up-teardown", crate::thread::SMALL_STACK, move || {
                remote.stop_all();
                drop(remote);
                let _ = tx.send(());
            });
        if graceful.is_err() {
            // `remote` went with the failed spawn's closure and was stopped by its drop.
            return;
        }
        let started = Instant::now();
        loop {
            select! {
                recv(rx) -> _ => return,
                recv(signals) -> _ => {
                    if started.elapsed() < SIGNAL_ECHO {
                        continue;
                    }
                    eprintln!("agnt up: second signal: killing every process group now");
                    if let Some(mut k) = killer {
                        k.kill_all();
                    }
                    let _ = rx.recv_timeout(Duration::from_secs(2));
                    return;
                }
            }
        }
    }

    fn run_cmd(
        remote: &RemoteSession,
        scripts: &[&ScriptConfig],
        cmd: Vec<String>,
        cwd: PathBuf,
        signals: &Receiver<i32>,
    ) -> Result<u8> {
        // Readiness on a second connection, so a signal is seen while waiting.
        let waits: Vec<_> = scripts
            .iter()
            .map(|s| (s.name.clone(), s.ready.clone(), s.ready_timeout))
            .collect();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let checker = remote.second_connection();
        // Detached: it ends by the scripts' ready timeouts; its answer may go unread.
        crate::thread::spawn("agnt-up-ready", crate::thread::SMALL_STACK * 2, move || {
            let result = match checker {
                Some(mut c) => waits.iter().try_for_each(|(name, ready, timeout)| {
                    c.wait_ready(name, ready.as_ref(), *timeout)
                        .map_err(|e| format!("script {name:?} did not become ready: {e}"))
                }),
                None => Err("lost the agnt daemon".to_string()),
            };
            let _ = ready_tx.send(result);
        })
        .map_err(|e| Error::io("starting readiness thread", None, e))?;
        select! {
            recv(signals) -> _ => return Ok(130),
            recv(ready_rx) -> r => if let Ok(Err(e)) = r {
                eprintln!("agnt up: {e}");
                return Ok(1);
            },
        }
        let mut child = match crate::supervisor::spawn::command(&cmd[0])
            .args(&cmd[1..])
            .current_dir(&cwd)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("agnt up: cannot run {:?} ({CMD_ID}): {e}", cmd[0]);
                return Ok(127);
            }
        };
        let pgid = child.id();
        let (exit_tx, exit_rx) = crossbeam_channel::bounded(1);
        // Detached: it ends when the command exits, which we TERM and KILL on the way out.
        crate::thread::spawn("agnt-up-cmd", crate::thread::SMALL_STACK, move || {
            let _ = exit_tx.send(child.wait());
        })
        .map_err(|e| Error::io("starting the command waiter", None, e))?;
        select! {
            recv(signals) -> _ => {
                let _ = crate::supervisor::spawn::signal_group(pgid, rustix::process::Signal::TERM);
                let _ = exit_rx.recv_timeout(std::time::Duration::from_secs(5));
                let _ = crate::supervisor::spawn::signal_group(pgid, rustix::process::Signal::KILL);
                Ok(130)
            }
            recv(exit_rx) -> st => {
                use std::os::unix::process::ExitStatusExt;
                Ok(match st {
                    Ok(Ok(s)) => s.code().map(|c| c as u8).or_else(|| s.signal().map(|n| 128 + n as u8)).unwrap_or(1),
                    _ => 1,
                })
            }
        }
    }
}
