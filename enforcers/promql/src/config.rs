//! The enforcer's configuration: its section of the TOML file.

use serde::Deserialize;

/// The default of [`EnforcerConfig::max_query_bytes`]: 128 KiB.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 128 * 1024;

/// The default of [`EnforcerConfig::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 512;

/// The default of [`EnforcerConfig::cache_entries`].
pub const DEFAULT_CACHE_ENTRIES: usize = 1_000;

/// The default of [`EnforcerConfig::max_operators`]. A chain of 5,000 selectors joined by `or`
/// (4,999 operators) fits.
pub const DEFAULT_MAX_OPERATORS: usize = 5_000;

/// How a PromQL enforcer is configured, e.g. `[enforcers.tenant]` with `type = "promql"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnforcerConfig {
    /// The label that carries the tenant, e.g. `namespace`. Every series selector of a query is
    /// restricted to the allowed values of this label. Must not be empty or `__name__`.
    pub label: String,

    /// Reject, instead of replace, a query's own matcher on `label` when it could select another
    /// tenant: an `=` matcher to a value outside the allowed set, or any `!=` matcher, answers
    /// 400. Default `false`: such a matcher is replaced. In either mode, with several allowed
    /// tenants, a matcher that selects some of them stays beside the enforced one (narrowing the
    /// answer), and one that selects none is replaced; with one tenant every other matcher on
    /// `label` is dropped.
    #[serde(default)]
    pub error_on_replace: bool,

    /// The longest query or selector accepted, in bytes; a longer one answers 400 before it is
    /// parsed. Default 131072 (128 KiB).
    #[serde(default = "default_max_query_bytes")]
    pub max_query_bytes: usize,

    /// The deepest nesting of brackets (`(`, `[`, `{`) accepted; a deeper query answers 400
    /// before it is parsed. Bounds the stack that parsing, printing and dropping a query need.
    /// Default 512.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,

    /// The most operators accepted outside label matchers: binary and unary operators, counting
    /// `and`, `or`, `unless` and `atan2`. A longer chain answers 400 before it is parsed. The
    /// parser needs time that grows with the square of a chain's length, and stack that grows
    /// with it. Default 5000.
    #[serde(default = "default_max_operators")]
    pub max_operators: usize,

    /// How many rewritten queries (of at most 4 KiB each) to remember, keyed by query text and
    /// allowed tenants; dashboards repeat the same queries on every refresh, and a rewrite costs
    /// two parses. Up to twice this many are held at once. 0 remembers nothing. Default 1000.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

fn default_max_query_bytes() -> usize {
    DEFAULT_MAX_QUERY_BYTES
}

fn default_max_depth() -> usize {
    DEFAULT_MAX_DEPTH
}

fn default_max_operators() -> usize {
    DEFAULT_MAX_OPERATORS
}

fn default_cache_entries() -> usize {
    DEFAULT_CACHE_ENTRIES
}

impl EnforcerConfig {
    /// A configuration that enforces `label`, with every other key at its default.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            error_on_replace: false,
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_operators: DEFAULT_MAX_OPERATORS,
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }

    /// Checks the rules serde cannot express; reports the first broken one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.label.is_empty() {
            return Err(ConfigError::EmptyLabel);
        }
        if self.label == promql_parser::label::METRIC_NAME {
            return Err(ConfigError::MetricNameLabel);
        }
        let limits = [
            ("max_query_bytes", self.max_query_bytes),
            ("max_depth", self.max_depth),
            ("max_operators", self.max_operators),
        ];
        match limits.into_iter().find(|(_, value)| *value == 0) {
            Some((key, _)) => Err(ConfigError::ZeroLimit { key }),
            None => Ok(()),
        }
    }
}

/// A configuration that deserialised but cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `label` is the empty string.
    #[error("the tenant label must not be empty")]
    EmptyLabel,
    /// `label` is `__name__`, which holds metric names.
    #[error("__name__ holds metric names, not tenants")]
    MetricNameLabel,
    /// A limit is zero, which would reject every query.
    #[error("must be at least 1")]
    ZeroLimit {
        /// The limit's key.
        key: &'static str,
    },
}

impl ConfigError {
    /// The key of the offending setting, e.g. `max_depth`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::EmptyLabel | Self::MetricNameLabel => "label",
            Self::ZeroLimit { key } => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EnforcerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn only_the_label_is_required() {
        let config = parse("label = 'namespace'").unwrap();
        assert_eq!(config, EnforcerConfig::new("namespace"));
        assert_eq!(config.validate(), Ok(()));
        assert!(parse("").is_err());
    }

    #[test]
    fn every_key_can_be_set() {
        let text = "label = 'ns'\nerror_on_replace = true\nmax_query_bytes = 10\n\
                    max_depth = 3\nmax_operators = 7\ncache_entries = 0";
        let config = parse(text).unwrap();
        assert!(config.error_on_replace);
        assert_eq!(
            (
                config.max_query_bytes,
                config.max_depth,
                config.max_operators,
                config.cache_entries
            ),
            (10, 3, 7, 0)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("label = 'ns'\nmax_dept = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = EnforcerConfig::new("");
        assert_eq!(config.validate().unwrap_err().key(), "label");
        config.label = "__name__".into();
        assert_eq!(config.validate(), Err(ConfigError::MetricNameLabel));
        config.label = "namespace".into();
        config.max_operators = 0;
        let err = config.validate().unwrap_err();
        assert_eq!(
            (err.key(), err.to_string().as_str()),
            ("max_operators", "must be at least 1")
        );
    }
}
