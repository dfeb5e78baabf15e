//! `portcullis-policy`: the Portcullis gateway with its built-in plugins plus the example
//! `policy` authorizer. It takes the same arguments as `portcullis` (`--config FILE`,
//! `check-config FILE`, …).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use portcullis_example_policy_authorizer::PolicyFactory;

fn main() -> ExitCode {
    portcullis::cli::run(portcullis::Registry::builtin().authorizer(PolicyFactory))
}
