//! The `portcullis` command line: serve, check a configuration, or enforce one query.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use portcullis_api::TenantSet;

use crate::config;
use crate::gateway::Gateway;
use crate::registry::Registry;
use crate::server;
use crate::telemetry;

/// Stack size of the runtime's threads. Parsing and printing a query recurse once per level of
/// nesting; the enforcers bound the depth, and this leaves room for the deepest they accept.
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;

/// An authorization gateway for Prometheus: authorizes each caller for tenants and rewrites
/// queries so they read only those tenants.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version)]
struct Cli {
    /// Serve with this configuration file.
    #[arg(long, value_name = "FILE", required = false)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file, report every problem, and exit non-zero if there is one.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print a query rewritten to read only the given tenants.
    Enforce {
        #[command(subcommand)]
        language: EnforceLanguage,
    },
}

#[derive(Debug, Subcommand)]
enum EnforceLanguage {
    /// Enforce a PromQL query.
    Promql(EnforceArgs),
    /// Enforce a LogQL query.
    Logql(EnforceArgs),
}

#[derive(Debug, clap::Args)]
struct EnforceArgs {
    /// The tenant label.
    #[arg(long)]
    label: String,
    /// An allowed tenant value; repeat for several.
    #[arg(long = "value", required = true)]
    values: Vec<String>,
    /// Reject a query whose own matcher on the label conflicts, instead of replacing it.
    #[arg(long)]
    error_on_replace: bool,
    /// The query.
    query: String,
}

/// Runs the command line with the plugins of `registry`; a custom binary calls this from `main`
/// with its own plugins added.
pub fn run(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::CheckConfig { file }), _) => check_config(&file, &registry),
        (Some(Command::Enforce { language }), _) => enforce(language),
        (None, Some(file)) => serve(&file, registry, cli.log_format),
        (None, None) => {
            eprintln!("portcullis: give --config FILE to serve, or a command (see --help)");
            ExitCode::from(2)
        }
    }
}

fn load(
    file: &Path,
    registry: &Registry,
) -> Result<(config::Config, Gateway), config::ConfigError> {
    let (config, text) = config::load(file)?;
    let gateway = Gateway::build(&config, file, &text, registry)?;
    Ok((config, gateway))
}

fn check_config(file: &Path, registry: &Registry) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    let _guard = runtime.enter();
    match load(file, registry) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(file: &Path, registry: Registry, format: telemetry::LogFormat) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    runtime.block_on(async {
        let (config, gateway) = match load(file, &registry) {
            Ok(loaded) => loaded,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        };
        let _telemetry = match telemetry::init(format, Some(&config.telemetry), &config.audit) {
            Ok(guard) => guard,
            Err(err) => return fail(&err),
        };
        telemetry::log_panics();
        let served = server::serve(&config.server, Arc::new(gateway), server::shutdown_signal());
        match served.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        }
    })
}

fn enforce(language: EnforceLanguage) -> ExitCode {
    let (EnforceLanguage::Promql(args) | EnforceLanguage::Logql(args)) = &language;
    let Ok(allowed) = TenantSet::new(args.values.iter().cloned()) else {
        eprintln!("portcullis: every --value must be non-empty");
        return ExitCode::from(2);
    };
    let rewritten = match language {
        EnforceLanguage::Promql(args) => {
            let mut config = portcullis_enforcer_promql::EnforcerConfig::new(&args.label);
            config.error_on_replace = args.error_on_replace;
            portcullis_enforcer_promql::PromqlEnforcer::new(config)
                .map_err(|err| err.to_string())
                .map(|enforcer| enforcer.enforce_query(&args.query, &allowed))
        }
        EnforceLanguage::Logql(args) => {
            let mut config = portcullis_enforcer_logql::EnforcerConfig::new(&args.label);
            config.error_on_replace = args.error_on_replace;
            portcullis_enforcer_logql::LogqlEnforcer::new(config)
                .map_err(|err| err.to_string())
                .map(|enforcer| enforcer.enforce_query(&args.query, &allowed))
        }
    };
    match rewritten {
        Err(config_error) => {
            eprintln!("portcullis: {config_error}");
            ExitCode::from(2)
        }
        Ok(Ok(query)) => {
            println!("{query}");
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One crypto provider for every rustls user in the binary.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()?;
    Ok(runtime)
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {err}");
    ExitCode::FAILURE
}
