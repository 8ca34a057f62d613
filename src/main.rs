//! The `agnt` binary: logging to stderr, argv through clap, then the library's CLI.

use clap::Parser;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    agnt::cli::run(agnt::cli::Cli::parse())
}
