//! Command-line interface: argv → [`Cli`] (clap derive) → the command's `run`. With the MCP stdio
//! writer, the only code that writes to stdout.

use std::{io::Write, process::ExitCode};

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
        Command::Tools(cmd) => crate::toolcli::run(*cmd),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "agnt", &mut out);
            let _ = std::io::stdout().lock().write_all(&out);
            ExitCode::SUCCESS
        }
    }
}
