//! The enforcer's configuration: its section of the TOML file.

use serde::Deserialize;

/// The default of [`EnforcerConfig::max_query_bytes`]: 128 KiB.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 128 * 1024;

/// The default of [`EnforcerConfig::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 512;

/// Words that Loki's lexer reads as keywords wherever they stand, in any letter case. A stream
/// selector cannot name a label spelled like one of them, so none can be the tenant label.
/// (Function names such as `rate` or `ip` are keywords only before a `(`, so they can.)
const KEYWORDS: [&str; 25] = [
    "and",
    "bool",
    "by",
    "decolorize",
    "drop",
    "group_left",
    "group_right",
    "ignoring",
    "json",
    "keep",
    "label_format",
    "line_format",
    "logfmt",
    "of",
    "offset",
    "on",
    "or",
    "pattern",
    "regexp",
    "unless",
    "unpack",
    "unwrap",
    "variants",
    "without",
    "xml",
];

/// How a LogQL enforcer is configured, e.g. `[enforcers.tenant]` with `type = "logql"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnforcerConfig {
    /// The stream label that carries the tenant, e.g. `namespace`. Every stream selector of a
    /// query is restricted to the allowed values of this label. Must be a LogQL label name
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`) that is not a LogQL keyword such as `by` or `offset`.
    pub label: String,

    /// Reject, instead of replace, a selector's own matcher on `label` when it could select
    /// another tenant: an `=` matcher to a value outside the allowed set, or any `!=` matcher,
    /// answers 400. Default `false`: such a matcher is replaced. In either mode, with several
    /// allowed tenants, a matcher that selects some of them stays beside the enforced one
    /// (narrowing the answer), and one that selects none is replaced; with one tenant every
    /// other matcher on `label` is dropped.
    #[serde(default)]
    pub error_on_replace: bool,

    /// The longest query or selector accepted, in bytes; a longer one answers 400 before it is
    /// read. Default 131072 (128 KiB). Loki itself may refuse long queries sooner.
    #[serde(default = "default_max_query_bytes")]
    pub max_query_bytes: usize,

    /// The deepest nesting of brackets (`(`, `[`, `{`) accepted; a deeper query answers 400
    /// before any selector in it is rewritten. Default 512.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
}

fn default_max_query_bytes() -> usize {
    DEFAULT_MAX_QUERY_BYTES
}

fn default_max_depth() -> usize {
    DEFAULT_MAX_DEPTH
}

impl EnforcerConfig {
    /// A configuration that enforces `label`, with every other key at its default.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            error_on_replace: false,
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// Checks the rules serde cannot express; reports the first broken one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.label.is_empty() {
            return Err(ConfigError::EmptyLabel);
        }
        if !is_label_name(&self.label) {
            return Err(ConfigError::InvalidLabel);
        }
        if is_keyword(&self.label) {
            return Err(ConfigError::KeywordLabel);
        }
        let limits = [
            ("max_query_bytes", self.max_query_bytes),
            ("max_depth", self.max_depth),
        ];
        match limits.into_iter().find(|(_, value)| *value == 0) {
            Some((key, _)) => Err(ConfigError::ZeroLimit { key }),
            None => Ok(()),
        }
    }
}

/// Whether `name` is a label name as a LogQL stream selector spells it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_keyword(name: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|keyword| name.eq_ignore_ascii_case(keyword))
}

/// A configuration that deserialised but cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `label` is the empty string.
    #[error("the tenant label must not be empty")]
    EmptyLabel,
    /// `label` is not spelled like a LogQL label name.
    #[error("the tenant label must be a LogQL label name: [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidLabel,
    /// `label` is spelled like a LogQL keyword, which a stream selector cannot name.
    #[error("the tenant label must not be a LogQL keyword such as `by` or `offset`")]
    KeywordLabel,
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
            Self::EmptyLabel | Self::InvalidLabel | Self::KeywordLabel => "label",
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
        let text = "label = 'ns'\nerror_on_replace = true\nmax_query_bytes = 10\nmax_depth = 3";
        let config = parse(text).unwrap();
        assert!(config.error_on_replace);
        assert_eq!((config.max_query_bytes, config.max_depth), (10, 3));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("label = 'ns'\nmax_operators = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn the_label_must_be_a_plain_identifier() {
        for label in [
            "namespace",
            "_ns",
            "k8s_namespace_name",
            "Tenant2",
            "rate",
            "ip",
        ] {
            assert_eq!(EnforcerConfig::new(label).validate(), Ok(()), "{label}");
        }
        assert_eq!(
            EnforcerConfig::new("").validate(),
            Err(ConfigError::EmptyLabel)
        );
        for label in ["k8s.namespace", "2ns", "name space", "namé", "\"ns\""] {
            assert_eq!(
                EnforcerConfig::new(label).validate(),
                Err(ConfigError::InvalidLabel),
                "{label}"
            );
        }
        for label in ["by", "Offset", "JSON", "unwrap", "or"] {
            assert_eq!(
                EnforcerConfig::new(label).validate(),
                Err(ConfigError::KeywordLabel),
                "{label}"
            );
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = EnforcerConfig::new("a.b");
        assert_eq!(config.validate().unwrap_err().key(), "label");
        config.label = "namespace".into();
        config.max_depth = 0;
        let err = config.validate().unwrap_err();
        assert_eq!(
            (err.key(), err.to_string().as_str()),
            ("max_depth", "must be at least 1")
        );
    }
}
