//! The LogQL label enforcer of Portcullis.
//!
//! After the authorizer has allowed a request for a set of tenants, this enforcer rewrites every
//! LogQL query and stream selector of the request so that it can read only those tenants: each
//! stream selector `{…}` gets a matcher on the tenant label (`namespace="acme"`, or
//! `namespace=~"acme|beta"` for several tenants). The selector's own matchers on that label are
//! replaced, except that with several tenants one that selects some of them stays beside the
//! enforced matcher and narrows the answer; strict mode refuses what it would replace.
//!
//! Only the selectors are rewritten; every other byte of a query (pipelines, `line_format`
//! templates, comments, spacing) reaches Loki exactly as the caller wrote it. That needs no full
//! LogQL parser, because in LogQL a `{` outside strings and comments only ever opens a stream
//! selector. What it does need is to agree with Loki on where strings and comments begin and
//! end; the lexer mirrors Loki's on exactly that, and refuses what it cannot mirror.
//!
//! A query goes through five steps, each of which can only refuse, never pass something
//! through unenforced:
//!
//! 1. its length is checked against `max_query_bytes`;
//! 2. it is cut into tokens, refusing unterminated strings and comments and anything Loki's
//!    lexer would read differently, and its bracket nesting is checked against `max_depth`;
//! 3. every stream selector is read, refusing quoted or non-ASCII label names and anything
//!    else that is not a list of `name op "value"` matchers;
//! 4. each selector is printed anew with the tenant matcher, the rest copied;
//! 5. the output is read again from scratch and must hold as many selectors as the query, each
//!    carrying the tenant matcher exactly once.
//!
//! [`LogqlEnforcer`] can be used on its own; it also implements the gateway's [`Enforcer`]
//! trait, and [`LogqlEnforcerFactory`] builds it from a configuration section of `type =
//! "logql"`.
//!
//! [`Enforcer`]: portcullis_api::Enforcer

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod lex;
mod limits;
mod plugin;
mod quote;
mod rewrite;
mod rule;
mod selector;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use portcullis_api::TenantSet;

pub use config::{ConfigError, DEFAULT_MAX_DEPTH, DEFAULT_MAX_QUERY_BYTES, EnforcerConfig};
pub use plugin::LogqlEnforcerFactory;
pub use portcullis_api::EnforceError;

use lex::{Kind, Token};
use limits::Limits;
use rule::LabelRule;

/// The message for a `Selector` expression that is not a single stream selector.
const EXPECTED_SELECTOR: &str =
    r#"parse error: expected a single stream selector such as {app="api"}"#;

/// Rewrites LogQL queries and stream selectors so they read only the allowed tenants.
#[derive(Debug)]
pub struct LogqlEnforcer {
    config: EnforcerConfig,
    limits: Limits,
}

impl LogqlEnforcer {
    /// An enforcer for `config`; fails when the configuration cannot work.
    pub fn new(config: EnforcerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let limits = Limits {
            max_bytes: config.max_query_bytes,
            max_depth: config.max_depth,
        };
        Ok(Self { config, limits })
    }

    /// The configuration the enforcer was built from.
    pub fn config(&self) -> &EnforcerConfig {
        &self.config
    }

    /// Rewrites the LogQL `query` so that every stream selector in it reads only `allowed`.
    ///
    /// - `Ok(text)`: the query to send upstream: the caller's text with each selector rewritten.
    ///   A query without any selector, such as `vector(1)`, reads no logs and is returned as it
    ///   is.
    /// - `Err(TooComplex)`: the text breaks the size or depth limit.
    /// - `Err(Invalid)`: the text is empty, cannot be read the way Loki reads it (`parse error
    ///   at byte N: …`), or the rewrite failed its final check.
    /// - `Err(Conflict)`: in strict mode, a matcher of the query on the tenant label could
    ///   select another tenant.
    pub fn enforce_query(&self, query: &str, allowed: &TenantSet) -> Result<String, EnforceError> {
        self.rewrite_query(query, allowed)
            .map(|(rewritten, _)| rewritten)
    }

    /// [`LogqlEnforcer::enforce_query`], and how many selectors it rewrote.
    fn rewrite_query(
        &self,
        query: &str,
        allowed: &TenantSet,
    ) -> Result<(String, usize), EnforceError> {
        let tokens = self.tokens(query)?;
        if tokens.iter().all(|token| token.kind == Kind::Trivia) {
            return Err(EnforceError::Invalid(
                "parse error: no expression found in input".into(),
            ));
        }

        let rule = self.rule(allowed);
        let (rewritten, selectors) = rewrite::rewrite(query, &tokens, &rule)?;

        rewrite::verify(&rewritten, &rule, selectors)?;
        Ok((rewritten, selectors))
    }

    /// Rewrites one stream selector, such as a `match[]` value of `/loki/api/v1/series` or the
    /// `query` of `/loki/api/v1/labels`, so that it reads only `allowed`.
    ///
    /// Accepts a single stream selector and nothing else: no pipeline, range or operator.
    /// `None`, blank text and `{}` all mean "every stream", and give the selector of every
    /// stream of the allowed tenants: exactly `{namespace="acme"}`. Otherwise the selector is
    /// printed as `{m1, m2, namespace="acme"}`. Errors as for
    /// [`LogqlEnforcer::enforce_query`].
    pub fn enforce_selector(
        &self,
        selector: Option<&str>,
        allowed: &TenantSet,
    ) -> Result<String, EnforceError> {
        let rule = self.rule(allowed);
        let Some(text) = selector else {
            return Ok(rule.tenant_selector());
        };
        let tokens = self.tokens(text)?;
        let Some(open) = tokens.iter().position(|token| token.kind != Kind::Trivia) else {
            return Ok(rule.tenant_selector());
        };
        if tokens[open].kind != Kind::OpenBrace {
            return Err(EnforceError::Invalid(EXPECTED_SELECTOR.into()));
        }

        let (selector, next) = selector::parse(text, &tokens, open)?;
        if tokens[next..]
            .iter()
            .any(|token| token.kind != Kind::Trivia)
        {
            return Err(EnforceError::Invalid(EXPECTED_SELECTOR.into()));
        }
        let rewritten = rule.enforce(&selector)?;

        rewrite::verify(&rewritten, &rule, 1)?;
        Ok(rewritten)
    }

    /// The tokens of `text`, once it kept both limits.
    fn tokens(&self, text: &str) -> Result<Vec<Token>, EnforceError> {
        self.limits.check_length(text)?;
        let tokens = lex::tokenize(text)?;
        self.limits.check_depth(&tokens)?;
        Ok(tokens)
    }

    fn rule<'a>(&'a self, allowed: &'a TenantSet) -> LabelRule<'a> {
        LabelRule::new(&self.config.label, allowed, self.config.error_on_replace)
    }
}
