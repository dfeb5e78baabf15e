//! Building plugins from their section of the TOML file.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Authorizer, Enforcer};

/// One plugin's section of the configuration, e.g. `[authorizers.main]`, without its `type` key.
#[derive(Debug, Clone)]
pub struct Section {
    path: String,
    table: toml::Table,
}

impl Section {
    /// A section found at key path `path` (e.g. `authorizers.main`).
    pub fn new(path: impl Into<String>, table: toml::Table) -> Self {
        Self {
            path: path.into(),
            table,
        }
    }

    /// The section's key path in the configuration, e.g. `authorizers.main`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Deserialises the section into the plugin's own config type.
    ///
    /// Give the type `#[serde(deny_unknown_fields)]`: an unknown key is then an error whose key
    /// path names it, like every other configuration error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, BuildError> {
        let value = toml::Value::Table(self.table.clone());
        serde_path_to_error::deserialize(value).map_err(|err| {
            let inner = err.path().to_string();
            let path = match inner.as_str() {
                "" | "." => self.path.clone(),
                inner => format!("{}.{inner}", self.path),
            };
            BuildError {
                path,
                message: err.into_inner().to_string(),
            }
        })
    }

    /// An error about key `key` of this section (`""` for the section itself).
    pub fn error(&self, key: &str, message: impl Into<String>) -> BuildError {
        let path = match key {
            "" => self.path.clone(),
            key => format!("{}.{key}", self.path),
        };
        BuildError {
            path,
            message: message.into(),
        }
    }
}

/// A plugin that could not be built; startup stops with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BuildError {
    /// The key path of the offending key, e.g. `authorizers.main.subjects`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// What the gateway shares with every plugin it builds.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PluginContext {
    /// The directory of the configuration file, against which plugins resolve relative paths.
    pub config_dir: std::path::PathBuf,
}

impl PluginContext {
    /// A context for plugins of a configuration file in `config_dir`.
    pub fn new(config_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            config_dir: config_dir.into(),
        }
    }
}

/// Builds authorizers of one `type` from their configuration sections.
pub trait AuthorizerFactory: Send + Sync {
    /// The `type` name that selects this factory, e.g. `allowlist`.
    fn type_name(&self) -> &'static str;

    /// Builds an authorizer from `section`. Runs once at startup (and for `check-config`); an
    /// error stops startup and names the section. Check files and values here, but do not
    /// contact a remote policy source: the gateway should start while it is down.
    fn build(
        &self,
        section: &Section,
        context: &PluginContext,
    ) -> Result<Arc<dyn Authorizer>, BuildError>;
}

/// Builds enforcers of one `type` from their configuration sections.
pub trait EnforcerFactory: Send + Sync {
    /// The `type` name that selects this factory, e.g. `promql`.
    fn type_name(&self) -> &'static str;

    /// Builds an enforcer from `section`. Runs once at startup (and for `check-config`); an error
    /// stops startup and names the section.
    fn build(
        &self,
        section: &Section,
        context: &PluginContext,
    ) -> Result<Arc<dyn Enforcer>, BuildError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        label: String,
        limits: Limits,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        depth: u32,
    }

    #[test]
    fn parse_errors_carry_the_full_key_path() {
        let table: toml::Table =
            toml::from_str("label = 'x'\nlimits = { depth = 'deep' }").unwrap();
        let err = Section::new("enforcers.promql", table)
            .parse::<Demo>()
            .unwrap_err();
        assert_eq!(err.path, "enforcers.promql.limits.depth");
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }
}
