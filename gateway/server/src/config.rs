//! The TOML configuration: its types, loading with environment overrides, and validation.
//!
//! Loading runs in two passes. The strict pass deserialises the file alone with `toml`, so a wrong
//! type or an unknown key is reported with its key path, line and column. The layered pass merges
//! `PORTCULLIS__…` environment variables over the file with the `config` crate (which would
//! otherwise turn `url = 42` into `"42"` silently) and yields the configuration that is served.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod locate;

pub use crate::telemetry::{AuditConfig, TelemetryConfig};

pub use locate::Locator;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners and request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// How callers are identified.
    pub identity: IdentityConfig,
    /// Where the tenant values of a request come from.
    pub tenant: TenantConfig,
    /// Named upstreams that routes forward to.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Named authorizers; each section's `type` selects the plugin.
    pub authorizers: BTreeMap<String, PluginConfig>,
    /// Named enforcers; each section's `type` selects the plugin.
    pub enforcers: BTreeMap<String, PluginConfig>,
    /// The APIs served, each tied to an upstream, an authorizer and its enforcers.
    pub routes: Vec<RouteConfig>,
    /// OpenTelemetry traces.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The audit log.
    #[serde(default)]
    pub audit: AuditConfig,
}

/// `[server]`: listeners and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the proxy listener.
    pub listen: SocketAddr,
    /// Address of the admin listener (`/healthz`, `/readyz`), kept apart from proxied traffic.
    pub admin_listen: SocketAddr,
    /// Largest request body read, in bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers before the connection is closed; a new
    /// connection's first request and an HTTP/2 ping's answer are bounded by it too.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body before it is answered 408.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The longest an authorizer may take to decide, whatever its own timeouts; past it the
    /// request is answered 503 and nothing is forwarded.
    #[serde(with = "humantime_serde")]
    pub authorize_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9095)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9096)),
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            authorize_timeout: Duration::from_secs(10),
        }
    }
}

/// How a caller is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// The token of `Authorization: Bearer <token>` is the subject id.
    Bearer,
    /// A header set by a trusted authenticating proxy in front names the subject.
    Header,
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// `bearer` or `header`.
    pub mode: IdentityMode,
    /// With `mode = "header"`: the trusted header, e.g. `X-Forwarded-User`.
    #[serde(default)]
    pub header: Option<String>,
}

/// Where tenant values are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantSource {
    /// A query parameter or form field, from the URL and the POST body together.
    Param,
    /// A request header.
    Header,
    /// A fixed list from the configuration.
    Static,
}

/// What happens when a request names no tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenMissing {
    /// Answer 400.
    #[default]
    Reject,
    /// Ask the authorizer for every tenant the caller may read, and enforce those.
    Lookup,
}

/// `[tenant]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// `param`, `header` or `static`.
    pub source: TenantSource,
    /// The parameter or header name, for `param` and `header`.
    #[serde(default)]
    pub name: Option<String>,
    /// The tenant values, for `static`.
    #[serde(default)]
    pub values: Vec<String>,
    /// Allow a request to name several tenants (repeated parameter, or a comma-separated header);
    /// every value is authorized. Off: more than one value is a 400.
    #[serde(default)]
    pub multi: bool,
    /// What to do when a request names no tenant: `reject` (400) or `lookup`.
    #[serde(default)]
    pub when_missing: WhenMissing,
}

/// `[upstreams.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL, `http://` or `https://`; its path, if any, is prefixed to every request path.
    pub url: String,
    /// Time allowed to open a connection; past it the request is answered 502.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response headers; past it the request is answered 504.
    #[serde(default = "default_upstream_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM file of extra CA certificates trusted for `https://` upstreams, beside the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Forward the caller's `Authorization` header upstream. Off: it is removed.
    #[serde(default)]
    pub forward_authorization: bool,
    /// Requests in flight to this upstream at once, and so its connections (WebSocket tails
    /// aside); further requests wait their turn within `timeout`. At least 1.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    64
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_upstream_timeout() -> Duration {
    Duration::from_secs(120)
}

/// `[authorizers.<name>]` or `[enforcers.<name>]`: a `type` and the plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginConfig {
    /// The registered plugin type, e.g. `allowlist` or `promql`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every other key of the section, deserialised by the plugin itself.
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// The HTTP API a route serves; it fixes the endpoints and which parameters hold queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// The Prometheus HTTP API (`/api/v1/…`, `/federate`).
    Prometheus,
    /// The Loki HTTP API (`/loki/api/v1/…`, including `tail` over WebSocket).
    Loki,
    /// The Alertmanager v2 API (`/api/v2/alerts`, `/api/v2/silences`, …).
    Alertmanager,
}

/// `[[routes]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The API served.
    pub api: ApiKind,
    /// The upstream name.
    pub upstream: String,
    /// The authorizer name.
    pub authorizer: String,
    /// Enforcer names, applied in order.
    pub enforcers: Vec<String>,
    /// The permission asked of the authorizer on reading endpoints.
    #[serde(default = "default_read_permission")]
    pub permission: String,
    /// The permission asked of the authorizer on endpoints that change state (silences).
    #[serde(default = "default_write_permission")]
    pub write_permission: String,
    /// Exact paths forwarded to the upstream after authentication, without tenant handling or
    /// enforcement. List only paths that reveal no tenant's data.
    #[serde(default)]
    pub passthrough: Vec<String>,
    /// The upstream itself scopes every request by the tenant header a `tenant_header` enforcer
    /// of this route sets (Mimir, Cortex, multi-tenant Loki or Alertmanager): the route may then
    /// run without a label enforcer.
    #[serde(default)]
    pub backend_scopes_tenants: bool,
}

fn default_read_permission() -> String {
    "read".to_owned()
}

fn default_write_permission() -> String {
    "write".to_owned()
}

/// One problem found in the configuration, located in the file where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `routes[0].upstream`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line and column of the key in the file, when found.
    pub position: Option<(usize, usize)>,
}

/// Every problem of a configuration file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file the problems are in.
    pub file: PathBuf,
    /// The problems, in file order where known.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    fn render(&self) -> String {
        let file = self.file.display();
        let lines: Vec<String> = self
            .problems
            .iter()
            .map(|p| match (p.position, p.path.as_str()) {
                (Some((line, col)), path) => format!("{file}:{line}:{col}: {path}: {}", p.message),
                (None, "") => format!("{file}: {}", p.message),
                (None, path) => format!("{file}: {path}: {}", p.message),
            })
            .collect();
        lines.join("\n")
    }
}

/// Collects problems with their positions, for one file.
#[derive(Debug)]
pub struct Problems<'a> {
    file: &'a Path,
    locator: Locator<'a>,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    /// A collector for `file`, whose text is `text`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            locator: Locator::new(text),
            found: Vec::new(),
        }
    }

    /// Records that the key at `path` is wrong.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let position = self.locator.position_of(&path);
        self.found.push(Problem {
            path,
            message: message.into(),
            position,
        });
    }

    /// `Ok` when nothing was recorded, else every problem.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.found.is_empty() {
            return Ok(());
        }
        let mut problems = self.found;
        problems.sort_by_key(|p| p.position.unwrap_or((usize::MAX, 0)));
        Err(ConfigError {
            file: self.file.to_path_buf(),
            problems,
        })
    }
}

/// Environment variables whose names start with this override file keys: `PORTCULLIS__A__B`
/// sets key `a.b` (names are lowercased, hence section names are lowercase).
pub const ENV_PREFIX: &str = "PORTCULLIS";

/// Reads `file`, applies environment overrides and checks types and unknown keys.
///
/// Cross-references and plugin sections are checked later, by [`crate::gateway::Gateway::build`].
pub fn load(file: &Path) -> Result<(Config, String), ConfigError> {
    let fail = |message: String| ConfigError {
        file: file.to_path_buf(),
        problems: vec![Problem {
            path: String::new(),
            message,
            position: None,
        }],
    };
    let text = std::fs::read_to_string(file).map_err(|err| fail(format!("cannot read: {err}")))?;
    strict_pass(file, &text)?;
    let config = layered_pass(&text, None).map_err(fail)?;
    Ok((config, text))
}

fn strict_pass(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut problems = Problems::new(file, text);
    let deserializer = match toml::de::Deserializer::parse(text) {
        Ok(deserializer) => deserializer,
        Err(err) => {
            problems.found.push(toml_problem(String::new(), &err, text));
            return Err(problems.finish().unwrap_err());
        }
    };
    match serde_path_to_error::deserialize::<_, Config>(deserializer) {
        Ok(config) => Ok(config),
        Err(err) => {
            let path = err.path().to_string();
            problems.found.push(toml_problem(path, err.inner(), text));
            Err(problems.finish().unwrap_err())
        }
    }
}

fn toml_problem(path: String, err: &toml::de::Error, text: &str) -> Problem {
    let path = if path == "." { String::new() } else { path };
    let position = err.span().map(|span| locate::line_col(text, span.start));
    Problem {
        path,
        message: err.message().trim().to_owned(),
        position,
    }
}

/// Merges environment overrides over `text`: from the process environment, or from `env` in tests.
fn layered_pass(
    text: &str,
    env: Option<std::collections::HashMap<String, String>>,
) -> Result<Config, String> {
    let environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(env);
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(environment)
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|err| format!("after environment overrides: {err}"))
}

#[cfg(test)]
mod tests;
