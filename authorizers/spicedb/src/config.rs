//! The `[authorizers.<name>]` section of an authorizer with `type = "spicedb"`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tonic::transport::Uri;

use crate::names;

/// Every default of the section, in one place.
pub mod defaults {
    use std::time::Duration;

    /// `permission`: checked when a route does not name its own.
    pub const PERMISSION: &str = "read";
    /// `timeout`: the longest one decision may wait for SpiceDB.
    pub const TIMEOUT: Duration = Duration::from_secs(2);
    /// `max_lookup`: SpiceDB's own default cap on LookupResources results.
    pub const MAX_LOOKUP: u32 = 1000;
    /// `cache.max_entries`.
    pub const CACHE_MAX_ENTRIES: u64 = 10_000;
    /// `cache.allow_ttl`: how long a granted permission is reused.
    pub const CACHE_ALLOW_TTL: Duration = Duration::from_secs(10);
    /// `cache.deny_ttl`: how long a refused permission is reused.
    pub const CACHE_DENY_TTL: Duration = Duration::from_secs(5);

    pub(super) fn permission() -> String {
        PERMISSION.to_owned()
    }

    pub(super) fn timeout() -> Duration {
        TIMEOUT
    }

    pub(super) fn max_lookup() -> u32 {
        MAX_LOOKUP
    }
}

/// The configuration of one SpiceDB authorizer.
///
/// ```toml
/// [authorizers.spicedb]
/// type = "spicedb"
/// endpoint = "https://spicedb.internal:50051"
/// preshared_key_file = "/run/secrets/spicedb-key"
/// resource_type = "tenant"
/// subject_type = "token"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SpiceDB's gRPC address: `https://host:port` (TLS), or `http://host:port` (plaintext, for a
    /// loopback address unless `allow_plaintext` is set).
    pub endpoint: String,
    /// PEM file of the CA that signs SpiceDB's certificate, replacing the system roots; only with
    /// an `https` endpoint. Relative paths start at the configuration file's directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allows an `http` endpoint on a non-loopback host, which sends the preshared key in clear
    /// text; for a sidecar or a mesh that encrypts on its own.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Name of the environment variable that holds the preshared key. Exactly one of
    /// `preshared_key_env` and `preshared_key_file` must be set.
    #[serde(default)]
    pub preshared_key_env: Option<String>,
    /// File that holds the preshared key (surrounding whitespace is ignored). Relative paths start
    /// at the configuration file's directory.
    #[serde(default)]
    pub preshared_key_file: Option<PathBuf>,
    /// The SpiceDB object type of a tenant, e.g. `tenant`; each tenant value is an object id.
    pub resource_type: String,
    /// The permission checked when a route names none; a route's own permission (e.g. `write`
    /// for silences) takes precedence.
    #[serde(default = "defaults::permission")]
    pub permission: String,
    /// The SpiceDB object type of the caller, e.g. `token` or `user`; the subject id is the
    /// caller's object id.
    pub subject_type: String,
    /// An optional relation on the subject, e.g. `member` to check `group:<id>#member`.
    #[serde(default)]
    pub subject_relation: Option<String>,
    /// How fresh SpiceDB's answers must be: `minimize_latency`, `fully_consistent` (also turns the
    /// decision cache off) or `at_least_as_fresh` (with `zed_token`).
    #[serde(default)]
    pub consistency: Consistency,
    /// The ZedToken that `at_least_as_fresh` reads at or after.
    #[serde(default)]
    pub zed_token: Option<String>,
    /// The longest one decision may wait for SpiceDB, e.g. `"2s"`; past it the decision fails
    /// as unavailable (503).
    #[serde(default = "defaults::timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// When a request names no tenant, allow every tenant the caller holds the permission on
    /// (LookupResources); with none, deny. Off: such a request is denied.
    #[serde(default)]
    pub lookup: bool,
    /// The most tenants a lookup returns; further tenants are left out of the allowed set.
    #[serde(default = "defaults::max_lookup")]
    pub max_lookup: u32,
    /// With several tenants, allow the permitted ones and drop the rest instead of denying the
    /// whole request.
    #[serde(default)]
    pub partial: bool,
    /// The decision cache.
    #[serde(default)]
    pub cache: CacheConfig,
}

/// How fresh SpiceDB's answers must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// SpiceDB answers from its caches; a change may take a few seconds to show.
    #[default]
    MinimizeLatency,
    /// SpiceDB answers from the latest data. The decision cache is bypassed, since reusing an
    /// answer would defeat the point.
    FullyConsistent,
    /// SpiceDB answers from data at least as new as `zed_token`.
    AtLeastAsFresh,
}

/// The decision cache: answers keyed by subject, tenant and permission.
///
/// Concurrent identical questions share one SpiceDB call even when the TTLs are zero.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// The most answers kept; `0` turns the cache off.
    pub max_entries: u64,
    /// How long a granted permission is reused, e.g. `"10s"`; `"0s"` never reuses one.
    #[serde(with = "humantime_serde")]
    pub allow_ttl: Duration,
    /// How long a refused permission is reused, e.g. `"5s"`; `"0s"` never reuses one.
    #[serde(with = "humantime_serde")]
    pub deny_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: defaults::CACHE_MAX_ENTRIES,
            allow_ttl: defaults::CACHE_ALLOW_TTL,
            deny_ttl: defaults::CACHE_DENY_TTL,
        }
    }
}

/// One problem with a configuration, at a key of the section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, relative to the section, e.g. `cache.allow_ttl`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

impl Config {
    /// Checks the rules that span keys or that serde cannot express; returns every problem.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        self.validate_endpoint(&mut problems);
        self.validate_key_source(&mut problems);
        self.validate_names(&mut problems);
        self.validate_consistency(&mut problems);
        if self.timeout.is_zero() {
            problems.push(Problem::new("timeout", "must be longer than zero"));
        }
        if self.lookup && self.max_lookup == 0 {
            problems.push(Problem::new("max_lookup", "must be at least 1 with lookup"));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems),
        }
    }

    /// Whether the endpoint uses TLS; only meaningful once [`Config::validate`] passed.
    pub(crate) fn uses_tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    fn validate_endpoint(&self, problems: &mut Vec<Problem>) {
        let uri = match self.endpoint.parse::<Uri>() {
            Ok(uri) => uri,
            Err(err) => {
                problems.push(Problem::new("endpoint", format!("not a URL: {err}")));
                return;
            }
        };
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                let message = "must start with `https://` (or `http://` for plaintext)";
                problems.push(Problem::new("endpoint", message));
                return;
            }
        };
        let Some(authority) = uri.authority() else {
            problems.push(Problem::new("endpoint", "has no host"));
            return;
        };
        if authority.as_str().contains('@') {
            let message = "must not carry credentials; use `preshared_key_env` or `_file`";
            problems.push(Problem::new("endpoint", message));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            problems.push(Problem::new("endpoint", "must not have a path or a query"));
        }
        if !tls && !self.allow_plaintext && !is_loopback(authority.host()) {
            let message = "`http` sends the preshared key in clear text: use `https`, a loopback \
                           address, or set `allow_plaintext = true`";
            problems.push(Problem::new("endpoint", message));
        }
        if !tls && self.ca_file.is_some() {
            problems.push(Problem::new("ca_file", "needs an `https` endpoint"));
        }
    }

    fn validate_key_source(&self, problems: &mut Vec<Problem>) {
        match (&self.preshared_key_env, &self.preshared_key_file) {
            (Some(_), Some(_)) => problems.push(Problem::new(
                "preshared_key_env",
                "set only one of `preshared_key_env` and `preshared_key_file`",
            )),
            (None, None) => problems.push(Problem::new(
                "preshared_key_env",
                "set one of `preshared_key_env` and `preshared_key_file`",
            )),
            (Some(name), None) if name.is_empty() => {
                problems.push(Problem::new("preshared_key_env", "must not be empty"));
            }
            _ => {}
        }
    }

    fn validate_names(&self, problems: &mut Vec<Problem>) {
        let types = [
            ("resource_type", &self.resource_type),
            ("subject_type", &self.subject_type),
        ];
        for (key, value) in types {
            if !names::is_object_type(value) {
                problems.push(Problem::new(key, not_a_spicedb_name(value, "object type")));
            }
        }
        if !names::is_relation_name(&self.permission) {
            let message = not_a_spicedb_name(&self.permission, "permission");
            problems.push(Problem::new("permission", message));
        }
        if let Some(relation) = &self.subject_relation
            && !names::is_relation_name(relation)
        {
            let message = not_a_spicedb_name(relation, "relation");
            problems.push(Problem::new("subject_relation", message));
        }
    }

    fn validate_consistency(&self, problems: &mut Vec<Problem>) {
        match (self.consistency, &self.zed_token) {
            (Consistency::AtLeastAsFresh, None) => problems.push(Problem::new(
                "zed_token",
                "is required with `consistency = \"at_least_as_fresh\"`",
            )),
            (Consistency::AtLeastAsFresh, Some(token)) if token.is_empty() => {
                problems.push(Problem::new("zed_token", "must not be empty"));
            }
            (Consistency::MinimizeLatency | Consistency::FullyConsistent, Some(_)) => {
                problems.push(Problem::new(
                    "zed_token",
                    "is only read with `consistency = \"at_least_as_fresh\"`",
                ));
            }
            _ => {}
        }
    }
}

fn not_a_spicedb_name(value: &str, what: &str) -> String {
    format!("`{value}` is not a valid SpiceDB {what} (lowercase letters, digits and `_`)")
}

/// Whether `host` (as found in a URL, IPv6 in brackets) is a loopback address.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
