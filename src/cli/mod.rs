//! Command-line interface: argv → [`Cli`] (clap derive) → [`run`]. A tool subcommand
//! ([`args::ToolCommand`]) becomes the same `tools/call` an agent sends, over the daemon socket
//! (starting the daemon if needed); its result is printed as text for humans ([`render`]) or as
//! the tool's `structuredContent` with `--json`. With the MCP stdio writer, this module tree is
//! the only code that writes to stdout; the renderings themselves are pure.

#![allow(clippy::print_stdout)]

pub mod args;
mod daemon;
pub mod render;
#[cfg(test)]
mod tests;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Value, json};

use crate::daemon::client;

/// Supervise dev processes, proxy and instrument dev servers, and hand it all to AI agents.
#[derive(Debug, Parser)]
#[command(name = "agnt", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the project's autostart scripts (and proxies) in the foreground; with `-- CMD`, wait
    /// until they are ready, run CMD, tear everything down and exit with CMD's status.
    Up {
        /// Config file (default: `.agnt.kdl` found by walking up from the current directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Command to run once everything is ready.
        #[arg(last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Serve MCP on stdio for an agent: a bridge to the per-user daemon (started if needed).
    Mcp {
        /// Run the tools in this process instead (no daemon; state dies with the process).
        #[arg(long)]
        standalone: bool,
        /// Daemon socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Control the per-user daemon.
    Daemon {
        #[command(subcommand)]
        action: args::DaemonAction,
    },
    /// The tool subcommands (`agnt detect`, `agnt run`, `agnt proc …`, ...).
    #[command(flatten)]
    Tool(Box<args::ToolCommand>),
    /// Print a shell completion script.
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Up { config, cmd } => crate::up::run(crate::up::UpOptions { config, cmd }),
        Command::Mcp { standalone, socket } => {
            let r = if standalone {
                crate::daemon::bridge::standalone()
            } else {
                crate::daemon::bridge::bridge(&socket.unwrap_or_else(crate::paths::socket_path))
            };
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("agnt mcp: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Daemon { action } => daemon::run(action),
        Command::Tool(cmd) => call_tool(&cmd),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "agnt", &mut out);
            let _ = std::io::stdout().lock().write_all(&out);
            ExitCode::SUCCESS
        }
    }
}

/// A version-checked connection: the running daemon if one answers, else a freshly started one.
fn connect(socket: &Path) -> crate::Result<client::Client> {
    client::Client::connect_checked(socket, client::caller_project())
}

/// The socket a subcommand talks to: `--socket`, else the default.
fn socket_of(common: &args::Common) -> PathBuf {
    common
        .socket
        .clone()
        .unwrap_or_else(crate::paths::socket_path)
}

/// Calls the subcommand's tool over the daemon socket and prints the result.
fn call_tool(cmd: &args::ToolCommand) -> ExitCode {
    let common = cmd.common();
    let (tool, arguments) = match cmd.call() {
        Ok(call) => call,
        Err(e) => {
            eprintln!("agnt: cannot encode the tool arguments: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result =
        connect(&socket_of(common)).and_then(|mut c| c.call_tool(&tool, arguments.clone()));
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agnt {tool}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if result["isError"].as_bool().unwrap_or(false) {
        let msg = result["content"][0]["text"]
            .as_str()
            .unwrap_or("unknown error");
        if common.json {
            println!("{}", json!({"error": msg}));
        }
        eprintln!("agnt {tool}: {}", render::escape(msg));
        return ExitCode::FAILURE;
    }
    let v = &result["structuredContent"];
    if common.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        let human = render::human(&tool, &arguments, v);
        print!("{}", human.stdout);
        eprint!("{}", human.stderr);
    }
    exit_status(&tool, &arguments, v)
}

/// A tool call that answered can still be a failure for the shell: a wait that timed out, a
/// foreground run that failed, JavaScript that threw, a reply no page showed, a snapshot
/// comparison that failed.
fn exit_status(tool: &str, arguments: &Value, v: &Value) -> ExitCode {
    match tool {
        "wait" if v["matched"] == false => ExitCode::FAILURE,
        // A foreground run exits with the child's status.
        "run" => match v["exit_code"].as_i64().filter(|c| *c != 0) {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None if v["state"] == "failed" || v["timed_out"] == true => ExitCode::FAILURE,
            None => ExitCode::SUCCESS,
        },
        "proxy" if arguments["action"] == "exec" && v["success"] == false => ExitCode::FAILURE,
        // A reply no page showed, a visual comparison that found changes.
        "channel_reply" if v["delivered"].as_u64().unwrap_or(0) == 0 => ExitCode::FAILURE,
        "snapshot" if arguments["action"] == "compare" && v["pass"] != true => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
