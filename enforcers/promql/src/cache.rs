//! Remembered rewrites.
//!
//! A rewrite costs two parses, and promql-parser compiles every regex matcher on each: about
//! 200 µs for a typical dashboard query with one `=~` matcher. Dashboards send the same query
//! text on every refresh, and a rewrite is a pure function of the text and the allowed tenants,
//! so the answer is remembered.

use std::collections::HashMap;
use std::sync::Mutex;

use portcullis_api::{EnforceError, TenantSet};

/// The longest query that is remembered, in bytes. Longer queries are rare and are dominated by
/// parsing anyway.
const MAX_CACHED_QUERY_BYTES: usize = 4096;

type Answer = Result<String, EnforceError>;
type Generation = HashMap<TenantSet, HashMap<String, Answer>>;

/// A bounded memory of rewrites, keyed by the allowed tenants and the query text.
///
/// Two generations approximate least-recently-used eviction without bookkeeping: new answers go
/// into the current one; when it is full it becomes the previous one and the old previous one is
/// dropped; an answer found in the previous generation moves back into the current one.
#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    generations: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: Generation,
    current_len: usize,
    previous: Generation,
}

impl Cache {
    /// A cache of up to `capacity` answers per generation; 0 remembers nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Mutex::default(),
        }
    }

    /// The remembered answer for `query` and `allowed`, or `rewrite`'s, which is remembered.
    pub(crate) fn get_or_insert(
        &self,
        query: &str,
        allowed: &TenantSet,
        rewrite: impl FnOnce() -> Answer,
    ) -> Answer {
        if self.capacity == 0 || query.len() > MAX_CACHED_QUERY_BYTES {
            return rewrite();
        }
        if let Some(answer) = self.lock().get(query, allowed, self.capacity) {
            return answer;
        }
        let answer = rewrite();
        self.lock()
            .insert(query, allowed, answer.clone(), self.capacity);
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // A panic while holding the lock leaves both maps consistent: nothing in here panics
        // halfway through an update.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Generations {
    fn get(&mut self, query: &str, allowed: &TenantSet, capacity: usize) -> Option<Answer> {
        if let Some(answer) = self.current.get(allowed).and_then(|q| q.get(query)) {
            return Some(answer.clone());
        }
        let answer = self.previous.get_mut(allowed)?.remove(query)?;
        self.insert(query, allowed, answer.clone(), capacity);
        Some(answer)
    }

    fn insert(&mut self, query: &str, allowed: &TenantSet, answer: Answer, capacity: usize) {
        if self.current_len >= capacity {
            self.previous = std::mem::take(&mut self.current);
            self.current_len = 0;
        }
        let queries = self.current.entry(allowed.clone()).or_default();
        if queries.insert(query.to_owned(), answer).is_none() {
            self.current_len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantSet {
        TenantSet::single("acme").unwrap()
    }

    #[test]
    fn an_answer_is_computed_once() {
        let cache = Cache::new(4);
        let mut calls = 0;
        for _ in 0..3 {
            let answer = cache.get_or_insert("up", &acme(), || {
                calls += 1;
                Ok("enforced".into())
            });
            assert_eq!(answer, Ok("enforced".into()));
        }
        assert_eq!(calls, 1);
    }

    #[test]
    fn answers_are_kept_apart_by_tenants() {
        let cache = Cache::new(4);
        let beta = TenantSet::single("beta").unwrap();
        let _ = cache.get_or_insert("up", &acme(), || Ok("a".into()));
        assert_eq!(
            cache.get_or_insert("up", &beta, || Ok("b".into())),
            Ok("b".into())
        );
        assert_eq!(
            cache.get_or_insert("up", &acme(), || Ok("x".into())),
            Ok("a".into())
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = Cache::new(2);
        for i in 0..10 {
            let query = i.to_string();
            let _ = cache.get_or_insert(&query, &acme(), || Ok(query.clone()));
        }
        let generations = cache.lock();
        let count = |g: &Generation| g.values().map(HashMap::len).sum::<usize>();
        assert!(count(&generations.current) <= 2);
        assert!(count(&generations.previous) <= 2);
    }

    #[test]
    fn a_recent_answer_survives_one_eviction() {
        let cache = Cache::new(2);
        let _ = cache.get_or_insert("a", &acme(), || Ok("a".into()));
        let _ = cache.get_or_insert("b", &acme(), || Ok("b".into()));
        let _ = cache.get_or_insert("c", &acme(), || Ok("c".into()));
        assert_eq!(
            cache.get_or_insert("a", &acme(), || Ok("again".into())),
            Ok("a".into())
        );
    }

    #[test]
    fn long_queries_and_a_zero_capacity_are_not_remembered() {
        let long = "u".repeat(MAX_CACHED_QUERY_BYTES + 1);
        for (cache, query) in [(Cache::new(0), "up"), (Cache::new(4), long.as_str())] {
            let _ = cache.get_or_insert(query, &acme(), || Ok("first".into()));
            let answer = cache.get_or_insert(query, &acme(), || Ok("second".into()));
            assert_eq!(answer, Ok("second".into()));
        }
    }
}
