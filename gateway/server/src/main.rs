//! The `portcullis` binary, with the built-in plugins.

use std::process::ExitCode;

fn main() -> ExitCode {
    portcullis::cli::run(portcullis::Registry::builtin())
}
