//! The PromQL label enforcer of Portcullis.
//!
//! After the authorizer has allowed a request for a set of tenants, this enforcer rewrites every
//! PromQL query and series selector of the request so that it can read only those tenants: each
//! series selector gets a matcher on the tenant label (`namespace="acme"`, or
//! `namespace=~"acme|beta"` for several tenants). The selector's own matchers on that label are
//! replaced, except that with several tenants one that selects some of them stays beside the
//! enforced matcher and narrows the answer; strict mode refuses what it would replace.
//!
//! A query goes through four steps, each of which can only refuse, never pass something through
//! unenforced:
//!
//! 1. a scan of the raw text against size, bracket-depth and operator-count limits;
//! 2. parsing with promql-parser, contained so that no input can panic through it ([`syntax`]);
//! 3. an exhaustive walk that enforces every selector;
//! 4. printing, then parsing the printed text again: the upstream receives the text only if it
//!    parses back to exactly the enforced expression (regex matchers are checked as
//!    equalities with the same values, which print alike, so that their regexes are not
//!    compiled a second time).
//!
//! The upstream always receives the printed text, never the caller's own: the canonical spelling
//! stays clear of corners where promql-parser and Prometheus read the same text differently
//! (escapes in backtick strings, for one).
//!
//! Rewrites are remembered per query text and tenant set (see
//! [`EnforcerConfig::cache_entries`]): a rewrite parses twice, and dashboards repeat their
//! queries.
//!
//! [`PromqlEnforcer`] can be used on its own; it also implements the gateway's
//! [`Enforcer`](portcullis_api::Enforcer) trait, and [`PromqlEnforcerFactory`] builds it from a
//! configuration section of `type = "promql"`.
//!
//! Parsing, printing, comparing and dropping recurse inside promql-parser, once per level of
//! nesting and once per operator of a chain: run enforcement on a thread with a stack large
//! enough for the configured limits. With the default limits the worst case needs 2.4 MiB in a
//! release build and 6.8 MiB in a debug build; the crate README has the measurements and the
//! probe that makes them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod config;
mod limits;
mod plugin;
mod print;
mod rule;
pub mod syntax;
mod walk;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use portcullis_api::TenantSet;
use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

pub use config::{
    ConfigError, DEFAULT_CACHE_ENTRIES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_OPERATORS,
    DEFAULT_MAX_QUERY_BYTES, EnforcerConfig,
};
pub use plugin::PromqlEnforcerFactory;
pub use portcullis_api::EnforceError;

use cache::Cache;

/// How many sets of several tenants keep their compiled tenant matcher.
const TENANT_MATCHERS: u64 = 1024;
use limits::Limits;
use rule::LabelRule;

/// Rewrites PromQL queries and series selectors so they read only the allowed tenants.
pub struct PromqlEnforcer {
    config: EnforcerConfig,
    limits: Limits,
    cache: Cache,
    /// The tenant matcher of each recent set of several tenants: its regex is compiled once,
    /// not on every rewrite.
    tenant_matchers: moka::sync::Cache<TenantSet, Result<Matcher, EnforceError>>,
}

impl std::fmt::Debug for PromqlEnforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromqlEnforcer")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .field("tenant_matchers", &self.tenant_matchers.entry_count())
            .finish_non_exhaustive()
    }
}

impl PromqlEnforcer {
    /// An enforcer for `config`; fails when the configuration cannot work.
    pub fn new(config: EnforcerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let limits = Limits {
            max_bytes: config.max_query_bytes,
            max_depth: config.max_depth,
            max_operators: config.max_operators,
        };
        let cache = Cache::new(config.cache_entries);
        Ok(Self {
            config,
            limits,
            cache,
            tenant_matchers: moka::sync::Cache::new(TENANT_MATCHERS),
        })
    }

    /// The configuration the enforcer was built from.
    pub fn config(&self) -> &EnforcerConfig {
        &self.config
    }

    /// Rewrites the PromQL `query` so that every series selector in it reads only `allowed`.
    /// The answer for a query of at most 4 KiB is remembered, errors included.
    ///
    /// - `Ok(text)`: the query to send upstream, in promql-parser's canonical spelling.
    /// - `Err(TooComplex)`: the text breaks a size, depth or operator limit.
    /// - `Err(Invalid)`: the text does not parse (`parse error: …`), or the rewrite cannot be
    ///   printed faithfully.
    /// - `Err(Conflict)`: in strict mode, a matcher of the query on the tenant label could select
    ///   another tenant.
    pub fn enforce_query(&self, query: &str, allowed: &TenantSet) -> Result<String, EnforceError> {
        self.enforce_query_counted(query, allowed)
            .map(|enforced| enforced.text)
    }

    fn enforce_query_counted(&self, query: &str, allowed: &TenantSet) -> cache::Answer {
        self.cache
            .get_or_insert(query, allowed, || self.rewrite_query(query, allowed))
    }

    fn rewrite_query(&self, query: &str, allowed: &TenantSet) -> cache::Answer {
        self.limits.check(query)?;
        let mut expr = syntax::parse(query)?;

        let rule = self.rule(allowed)?;
        let selectors = walk::selectors_mut(&mut expr)?;
        let count = selectors.len();
        for selector in selectors {
            enforce_selector(selector, std::slice::from_ref(&rule))?;
        }

        let text = print::print_faithfully(&expr)?;
        Ok(cache::Enforced {
            text,
            selectors: count,
        })
    }

    /// Rewrites one series selector, such as a `match[]` value, so that it reads only `allowed`.
    ///
    /// Like Prometheus, accepts only a plain vector selector: no range, offset, `@` or
    /// operator. The metric name moves into the braces, so `up` becomes
    /// `{__name__="up",namespace="acme"}`. `None`, for a request without a selector, gives the
    /// selector of every series of the allowed tenants: exactly `{namespace="acme"}`. Errors as
    /// for [`PromqlEnforcer::enforce_query`].
    pub fn enforce_selector(
        &self,
        selector: Option<&str>,
        allowed: &TenantSet,
    ) -> Result<String, EnforceError> {
        let mut selector = match selector {
            Some(text) => parse_selector(text, &self.limits)?,
            None => VectorSelector::default(),
        };
        name_into_matchers(&mut selector);

        let rule = self.rule(allowed)?;
        enforce_selector(&mut selector, std::slice::from_ref(&rule))?;

        print::print_faithfully(&Expr::VectorSelector(selector))
    }

    fn rule<'a>(&'a self, allowed: &'a TenantSet) -> Result<LabelRule<'a>, EnforceError> {
        let (label, strict) = (self.config.label.as_str(), self.config.error_on_replace);
        if allowed.as_single().is_some() {
            return LabelRule::new(label, allowed, strict);
        }
        let matcher = self
            .tenant_matchers
            .get_with_by_ref(allowed, || rule::tenant_matcher(label, allowed))?;
        Ok(LabelRule::with_matcher(label, allowed, matcher, strict))
    }
}

/// Applies `rules` to `selector`: to its matchers, or to each of its `or` groups.
fn enforce_selector(
    selector: &mut VectorSelector,
    rules: &[LabelRule],
) -> Result<(), EnforceError> {
    let matchers = &mut selector.matchers;
    if matchers.or_matchers.is_empty() {
        for rule in rules {
            rule.apply(&mut matchers.matchers)?;
        }
        print::sort_like_printer(&mut matchers.matchers);
        return Ok(());
    }
    // promql-parser's own extension `{a="1" or b="2"}`, which Prometheus rejects: every group
    // is a selector of its own and is enforced as one.
    for group in &mut matchers.or_matchers {
        for rule in rules {
            rule.apply(group)?;
        }
    }
    Ok(())
}

/// Parses `text` as Prometheus parses a `match[]` value: a vector selector and nothing else.
fn parse_selector(text: &str, limits: &Limits) -> Result<VectorSelector, EnforceError> {
    limits.check(text)?;
    match syntax::parse(text)? {
        Expr::VectorSelector(selector) if selector.offset.is_none() && selector.at.is_none() => {
            Ok(selector)
        }
        _ => Err(EnforceError::Invalid(
            "parse error: expected a series selector such as up{job=\"api\"}".into(),
        )),
    }
}

/// Turns `up{…}` into `{__name__="up",…}`: the form Prometheus itself prints a selector in.
fn name_into_matchers(selector: &mut VectorSelector) {
    let Some(name) = selector.name.take() else {
        return;
    };
    let name_matcher = Matcher::new(MatchOp::Equal, METRIC_NAME, &name);
    let matchers = &mut selector.matchers;
    if matchers.or_matchers.is_empty() {
        matchers.matchers.insert(0, name_matcher);
        return;
    }
    for group in &mut matchers.or_matchers {
        group.insert(0, name_matcher.clone());
    }
}
