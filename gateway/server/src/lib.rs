//! The Portcullis gateway: configuration, routing, the request pipeline and the proxy.
//!
//! The plugin API lives in `portcullis-api`; this crate builds plugins from the TOML file
//! through a [`Registry`], and runs every request through [`gateway::Gateway`]. A custom binary
//! adds its own plugins:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     portcullis::cli::run(portcullis::Registry::builtin())
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alertmanager;
pub mod authn;
pub mod cli;
pub mod config;
pub mod error;
pub mod filter;
pub mod gateway;
pub mod metrics;
pub mod params;
pub mod proxy;
pub mod registry;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod tenancy;

pub use registry::Registry;
