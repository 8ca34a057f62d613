//! The `agnt` binary: logging to stderr, argv through clap, then the library's CLI.
//!
//! An `AGNT_PROCESS` marker inherited from a supervisor (agnt run as a supervised script) is
//! dropped at the one place agnt starts children, `supervisor::spawn::command`, instead of with
//! `std::env::remove_var` here (unsafe in edition 2024; the crate denies unsafe code): agnt
//! never reads the variable itself, so nothing it starts, such as an auto-started daemon,
//! carries its parent's marker, and marker kills spare agnt's own ancestors.

use clap::Parser;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    agnt::cli::run(agnt::cli::Cli::parse())
}
