//! The `agnt` binary: parses argv and hands over to the library's CLI.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
