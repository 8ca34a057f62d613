//! `agnt daemon start|stop|status|restart`: start the per-user daemon (detached or in the
//! foreground), ask it to shut down and wait until its process is gone, and report whether one
//! answers on the socket. The tool subcommands never come here: they start a daemon on demand.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use serde_json::json;

use super::{args::DaemonAction, render, socket_of};
use crate::daemon::{self, client};

/// Runs a daemon subcommand.
pub fn run(action: DaemonAction) -> ExitCode {
    match action {
        DaemonAction::Start {
            foreground,
            socket,
            http_port,
            http_allow_origin,
        } => start(foreground, socket, http_port, http_allow_origin),
        DaemonAction::Stop { common } => stop(&socket_of(&common), common.json),
        DaemonAction::Status { common } => status(&socket_of(&common), common.json, false),
        DaemonAction::Info { common } => status(&socket_of(&common), common.json, true),
        DaemonAction::Restart { common } => restart(&socket_of(&common)),
    }
}

/// How long `agnt daemon stop` waits for each answer from the daemon.
const STOP_CALL: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the daemon: in this process with `foreground`, else detached (unless one answers).
fn start(
    foreground: bool,
    socket: Option<PathBuf>,
    http_port: Option<u16>,
    http_allow_origin: Vec<String>,
) -> ExitCode {
    let mut opts = daemon::DaemonOptions::from_env();
    if let Some(s) = socket {
        opts.socket = s;
    }
    if http_port.is_some() {
        opts.http_port = http_port;
    }
    opts.http_allow_origins = http_allow_origin;
    // What the detached daemon must be told (it reads $AGNT_HTTP_PORT itself).
    let mut extra = Vec::new();
    if let Some(p) = http_port {
        extra.extend(["--http-port".to_string(), p.to_string()]);
    }
    for o in &opts.http_allow_origins {
        extra.extend(["--http-allow-origin".to_string(), o.clone()]);
    }
    if foreground {
        return match daemon::run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agnt daemon: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if client::probe(&opts.socket, Duration::from_secs(2)).is_some() {
        let serving = client::Client::connect(&opts.socket, PathBuf::from("/"))
            .and_then(|mut c| c.call_tool("daemon", json!({"action": "info"})))
            .ok()
            .and_then(|v| v["structuredContent"]["http_port"].as_u64());
        if let Some(want) = opts.http_port
            && serving != Some(u64::from(want))
            && !(want == 0 && serving.is_some())
        {
            eprintln!(
                "agnt daemon already running on {} {}; stop it (`agnt daemon stop`) and start it again with --http-port {want}",
                opts.socket.display(),
                match serving {
                    Some(p) => format!("with its HTTP face on port {p}"),
                    None => "without an HTTP face".to_string(),
                }
            );
            return ExitCode::FAILURE;
        }
        println!("agnt daemon already running on {}", opts.socket.display());
        return ExitCode::SUCCESS;
    }
    match client::ensure_daemon_with(&opts.socket, &extra) {
        Ok(()) => {
            match opts.http_port {
                Some(p) => println!(
                    "agnt daemon started on {} (http port {p})",
                    opts.socket.display()
                ),
                None => println!("agnt daemon started on {}", opts.socket.display()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agnt daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reports the daemon on `socket` (`clients`: and who is connected); exit status 3 when none
/// answers.
fn status(socket: &Path, json_out: bool, clients: bool) -> ExitCode {
    let info = client::Client::connect(socket, PathBuf::from("/"))
        .and_then(|mut c| c.call_tool("daemon", json!({"action": "status"})));
    match info {
        Ok(r) => {
            let v = &r["structuredContent"];
            if json_out {
                println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
            } else {
                print!("{}", render::daemon_status(socket, v));
                if clients {
                    print!("{}", render::daemon_clients(v));
                }
            }
            ExitCode::SUCCESS
        }
        Err(_) => {
            if json_out {
                println!("{}", json!({"running": false, "socket_path": socket}));
            } else {
                println!("agnt daemon not running ({})", socket.display());
            }
            ExitCode::from(3)
        }
    }
}

/// Stops the daemon (and everything it runs) and starts this binary's version.
fn restart(socket: &Path) -> ExitCode {
    let code = stop(socket, false);
    if code != ExitCode::SUCCESS {
        return code;
    }
    match client::ensure_daemon(socket) {
        Ok(()) => {
            println!(
                "agnt daemon {} started on {}",
                env!("CARGO_PKG_VERSION"),
                socket.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agnt daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Asks the daemon to shut down and waits until its socket is gone.
fn stop(socket: &Path, json_out: bool) -> ExitCode {
    let Ok(mut c) = client::Client::connect(socket, PathBuf::from("/")) else {
        if json_out {
            println!("{}", json!({"running": false, "stopped": false}));
        } else {
            println!("agnt daemon not running");
        }
        return ExitCode::SUCCESS;
    };
    // A wedged daemon must not hang `stop`: both calls have a deadline.
    let pid = c
        .call_tool_within("daemon", json!({"action": "info"}), Some(STOP_CALL))
        .ok()
        .and_then(|v| v["structuredContent"]["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .or_else(|| {
            std::fs::read_to_string(daemon::pid_path(socket))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(0);
    match c.call_tool_within("daemon", json!({"action": "shutdown"}), Some(STOP_CALL)) {
        Ok(_) => {}
        // We asked it to go: a daemon that closes the connection before its answer arrives is
        // doing what we asked, as long as it then exits (checked below).
        Err(crate::Error::DaemonClosed) if pid > 0 => {
            log::debug!("daemon closed the connection after the shutdown request");
        }
        Err(e) => {
            eprintln!("agnt daemon stop: {e}");
            return ExitCode::FAILURE;
        }
    }
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        // Wait for that daemon process to exit (a bridge may already have started the next one).
        if !pid_alive(pid) {
            if json_out {
                println!("{}", json!({"running": false, "stopped": true}));
            } else {
                println!("agnt daemon stopped");
            }
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("agnt daemon stop: the daemon did not exit within 15s");
    ExitCode::FAILURE
}

/// Whether `pid` is a live (non-zombie) process.
fn pid_alive(pid: i32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(true)
}
