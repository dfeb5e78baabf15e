//! Remembered rewrites.
//!
//! A rewrite costs two parses, and promql-parser compiles every regex matcher of the query's own
//! parse: about 80 µs for a typical dashboard query with one `=~` matcher. Dashboards send the same query
//! text on every refresh, and a rewrite is a pure function of the text and the allowed tenants,
//! so the answer is remembered in a bounded `moka` cache.

use portcullis_api::{EnforceError, TenantSet};

/// The longest query that is remembered, in bytes. Longer queries are rare and are dominated by
/// parsing anyway.
const MAX_CACHED_QUERY_BYTES: usize = 4096;

/// A rewritten query and how many selectors got the tenant matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enforced {
    pub(crate) text: String,
    pub(crate) selectors: usize,
}

pub(crate) type Answer = Result<Enforced, EnforceError>;

/// A bounded memory of rewrites, keyed by the allowed tenants and the query text.
pub(crate) struct Cache {
    answers: Option<moka::sync::Cache<(TenantSet, String), Answer>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.answers.as_ref().map(|a| a.entry_count());
        f.debug_struct("Cache").field("entries", &entries).finish()
    }
}

impl Cache {
    /// A cache of up to `capacity` answers; 0 remembers nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        let answers = (capacity > 0).then(|| moka::sync::Cache::new(capacity as u64));
        Self { answers }
    }

    /// The remembered answer for `query` and `allowed`, or `rewrite`'s, which is remembered.
    pub(crate) fn get_or_insert(
        &self,
        query: &str,
        allowed: &TenantSet,
        rewrite: impl FnOnce() -> Answer,
    ) -> Answer {
        match &self.answers {
            Some(answers) if query.len() <= MAX_CACHED_QUERY_BYTES => {
                answers.get_with((allowed.clone(), query.to_owned()), rewrite)
            }
            _ => rewrite(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn tenants(values: &[&str]) -> TenantSet {
        TenantSet::new(values.iter().copied()).unwrap()
    }

    fn answer(text: &str) -> Answer {
        Ok(Enforced {
            text: text.to_owned(),
            selectors: 1,
        })
    }

    #[test]
    fn an_answer_is_computed_once_per_query_and_tenants() {
        let cache = Cache::new(10);
        let calls = Cell::new(0);
        let rewrite = |text: &str| {
            calls.set(calls.get() + 1);
            answer(text)
        };
        let acme = tenants(&["acme"]);
        assert_eq!(
            cache.get_or_insert("up", &acme, || rewrite("a")),
            answer("a")
        );
        assert_eq!(
            cache.get_or_insert("up", &acme, || rewrite("b")),
            answer("a")
        );
        assert_eq!(calls.get(), 1);
        let other = tenants(&["globex"]);
        assert_eq!(
            cache.get_or_insert("up", &other, || rewrite("c")),
            answer("c")
        );
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn long_queries_and_a_zero_capacity_are_not_remembered() {
        let acme = tenants(&["acme"]);
        let off = Cache::new(0);
        let _ = off.get_or_insert("up", &acme, || answer("a"));
        assert_eq!(off.get_or_insert("up", &acme, || answer("b")), answer("b"));
        let cache = Cache::new(10);
        let long = "x".repeat(MAX_CACHED_QUERY_BYTES + 1);
        let _ = cache.get_or_insert(&long, &acme, || answer("a"));
        assert_eq!(
            cache.get_or_insert(&long, &acme, || answer("b")),
            answer("b")
        );
    }
}
