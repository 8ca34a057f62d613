//! Command-line interface: argv → [`Cli`] (clap derive) → the command's `run`. With the MCP stdio
//! writer, the only code that writes to stdout.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};

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
    /// MCP, daemon and tool subcommands (`agnt mcp`, `agnt daemon`, `agnt proc`, ...).
    #[command(flatten)]
    Tools(Box<crate::toolcli::ToolCommand>),
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
        Command::Tools(cmd) => crate::toolcli::run(*cmd),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "agnt", &mut out);
            let _ = std::io::stdout().lock().write_all(&out);
            ExitCode::SUCCESS
        }
    }
}
