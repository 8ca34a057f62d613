//! Run: `cargo run --example supervise -- sh -c 'for i in 1 2 3; do echo tick $i; sleep 1; done'`
//!
//! Supervises one command with the agnt library: starts it in its own process group, tails
//! its combined output to stdout through `wait_output` cursors, and exits with its status.
//! Ctrl+C (or SIGTERM) stops it gracefully (SIGTERM to the group, 5 s grace, SIGKILL); a
//! second Ctrl+C kills every group at once and exits immediately.

use std::{io::Write, process::ExitCode, sync::Arc, time::Duration};

use agnt::supervisor::{
    CommandLine, ManagedProcess, ManagerConfig, OutputRequest, ProcessManager, ProcessSpec, Stream,
};
use crossbeam_channel::select;

fn main() -> ExitCode {
    env_logger::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprintln!("usage: supervise PROGRAM [ARGS...]");
        return ExitCode::from(2);
    }
    match run(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("supervise: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(argv: Vec<String>) -> agnt::Result<ExitCode> {
    // Handlers first, before any thread starts.
    let signals = agnt::signals::shutdown_signals()?;
    let project = std::env::current_dir()
        .map_err(|e| agnt::Error::io("reading the current directory", None, e))?;
    let pm = ProcessManager::new(ManagerConfig::default())?;
    let proc = pm.start(ProcessSpec::new("main", &project, CommandLine::Argv(argv)))?;

    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let tail = {
        let proc = Arc::clone(&proc);
        std::thread::Builder::new()
            .name("tail".into())
            .spawn(move || {
                tail(&proc);
                let _ = done_tx.send(());
            })
            .map_err(|e| agnt::Error::io("starting the tail thread", None, e))?
    };

    let mut interrupts = 0;
    loop {
        select! {
            recv(signals) -> _ => {
                interrupts += 1;
                if interrupts == 1 {
                    eprintln!("supervise: stopping (press Ctrl+C again to exit now)");
                    let (pm, project) = (Arc::clone(&pm), project.clone());
                    std::thread::spawn(move || pm.stop(&project, "main", false));
                } else {
                    pm.shutdown(Duration::ZERO);
                    return Ok(ExitCode::from(130));
                }
            }
            recv(done_rx) -> _ => break,
        }
    }
    let _ = tail.join();
    eprintln!("supervise: {}", proc.summary());
    let code = match (proc.exit_code(), proc.exit_signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Copies new combined output to stdout until the process ended and everything was read.
fn tail(proc: &ManagedProcess) {
    let mut cursor = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let end = proc.wait_output(cursor, Duration::MAX);
        if end > cursor {
            let read = proc.ring(Stream::Combined).read_since(cursor);
            if read.lost > 0 {
                let _ = writeln!(out, "[supervise: {} bytes lost to overflow]", read.lost);
            }
            if out
                .write_all(&read.data)
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
            cursor = read.end;
        } else if proc.state().is_terminal() {
            // The waiter let the pumps drain before it published the exit.
            let rest = proc.output(&OutputRequest {
                since: Some(cursor),
                ..Default::default()
            });
            if let Ok(r) = rest {
                let _ = out.write_all(r.text.as_bytes());
            }
            return;
        }
    }
}
