//! The enforcement step: rewrite the request so it reads only the allowed tenants.

use crate::TenantSet;

/// The query language of a route's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Language {
    /// Prometheus's PromQL (and its series selectors).
    PromQl,
    /// Loki's LogQL (and its stream selectors).
    LogQl,
}

/// What a request parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpressionKind {
    /// A whole query, e.g. `query` on `/api/v1/query`.
    Query,
    /// A series selector, e.g. each `match[]` on `/api/v1/series`.
    Selector,
}

/// One query-bearing parameter of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expression {
    /// What the parameter holds.
    pub kind: ExpressionKind,
    /// The text. `None` for a [`ExpressionKind::Selector`] the request left out: a label enforcer
    /// fills in a selector that matches exactly the allowed tenants.
    pub text: Option<String>,
}

impl Expression {
    /// An expression of `kind` with `text`.
    pub fn new(kind: ExpressionKind, text: Option<String>) -> Self {
        Self { kind, text }
    }
}

/// Headers an enforcer sets on the upstream request, replacing any client-supplied copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    set: Vec<(String, String)>,
}

impl HeaderEdits {
    /// Sets header `name` (case-insensitive) to `value`; a later call for the same name wins.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into().to_ascii_lowercase();
        self.set.retain(|(existing, _)| *existing != name);
        self.set.push((name, value.into()));
    }

    /// The headers to set, with lowercase names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.set.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The parts of one request that enforcers may rewrite.
#[derive(Debug)]
#[non_exhaustive]
pub struct Target<'a> {
    /// The language of `expressions`.
    pub language: Language,
    /// Every query-bearing parameter of the request, from the URL and the form body alike.
    pub expressions: &'a mut [Expression],
    /// Headers to set on the upstream request.
    pub headers: &'a mut HeaderEdits,
    /// How many selectors the enforcer rewrote; a label enforcer adds its count, for the enforce
    /// span and logs.
    pub selectors_rewritten: usize,
}

impl<'a> Target<'a> {
    /// A target over `expressions` in `language`, with header edits collected in `headers`.
    pub fn new(
        language: Language,
        expressions: &'a mut [Expression],
        headers: &'a mut HeaderEdits,
    ) -> Self {
        Self {
            language,
            expressions,
            headers,
            selectors_rewritten: 0,
        }
    }
}

/// Why a request could not be enforced. Nothing is forwarded on any variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnforceError {
    /// The expression does not parse, or asks for something the enforcer will not rewrite
    /// faithfully: 400 `bad_data`. The message is shown to the caller.
    #[error("{0}")]
    Invalid(String),
    /// The expression conflicts with the allowed tenants (strict `error_on_replace` mode): 400.
    #[error("{0}")]
    Conflict(String),
    /// The expression exceeds a configured size or depth limit: 400.
    #[error("{0}")]
    TooComplex(String),
    /// The enforcer cannot handle this route's language: 500, a configuration error.
    #[error("{0}")]
    Unsupported(String),
}

/// Rewrites a request so that it can read only the allowed tenants.
///
/// Runs after the authorizer allowed the request, once per configured enforcer of the route, in
/// order. It must be a pure function of its inputs: it never looks at the raw request.
pub trait Enforcer: Send + Sync + 'static {
    /// Rewrites every expression of `target` (and/or sets headers) so the request reads only
    /// `allowed`. On `Err` the request is answered with an error and not forwarded.
    fn enforce(&self, target: &mut Target<'_>, allowed: &TenantSet) -> Result<(), EnforceError>;

    /// Whether this enforcer can enforce expressions of `language`; checked at startup against
    /// every route it is attached to. A header-setting enforcer supports every language.
    fn supports(&self, language: Language) -> bool;

    /// The label this enforcer injects, recorded in the enforce span; `None` (the default) for an
    /// enforcer that sets headers instead.
    fn label(&self) -> Option<&str> {
        None
    }
}
