//! The decision cache: SpiceDB's answers, reused for a short while.
//!
//! Answers are keyed by subject, tenant (or "every tenant", for a lookup) and permission, and
//! live for `allow_ttl` when they grant and `deny_ttl` when they refuse. Concurrent identical
//! questions wait for one SpiceDB call, whatever the TTLs. Errors are never cached.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use portcullis_api::{AuthzError, Subject, TenantSet};

use crate::config::CacheConfig;

/// SpiceDB's answer for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `PERMISSIONSHIP_HAS_PERMISSION`.
    Allowed,
    /// `PERMISSIONSHIP_NO_PERMISSION`.
    Denied,
    /// `PERMISSIONSHIP_CONDITIONAL_PERMISSION`: a caveat needs context the gateway cannot give.
    Conditional,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The answer for one tenant.
    Check(Outcome),
    /// The tenants a lookup found, `None` for none; `truncated` when it stopped at `max_lookup`.
    Lookup {
        /// The tenants found.
        tenants: Option<TenantSet>,
        /// Whether more tenants may exist.
        truncated: bool,
    },
}

impl Answer {
    fn grants(&self) -> bool {
        match self {
            Answer::Check(outcome) => *outcome == Outcome::Allowed,
            Answer::Lookup { tenants, .. } => tenants.is_some(),
        }
    }
}

/// What a cached answer is about. The subject's `Debug` is redacted, so a key can be logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// One tenant.
    Check {
        /// The caller.
        subject: Subject,
        /// The tenant value.
        tenant: String,
        /// The permission.
        permission: String,
    },
    /// Every tenant the caller holds the permission on.
    Lookup {
        /// The caller.
        subject: Subject,
        /// The permission.
        permission: String,
    },
}

/// Answers for the TTL that matches them.
struct TtlByAnswer {
    allow: Duration,
    deny: Duration,
}

impl Expiry<Key, Answer> for TtlByAnswer {
    fn expire_after_create(&self, _key: &Key, answer: &Answer, _now: Instant) -> Option<Duration> {
        Some(match answer.grants() {
            true => self.allow,
            false => self.deny,
        })
    }
}

/// The cache, or nothing when it is turned off.
#[derive(Clone)]
pub(crate) struct DecisionCache {
    inner: Option<Cache<Key, Answer>>,
}

impl DecisionCache {
    /// A cache as configured; none when `max_entries` is 0.
    pub(crate) fn new(config: &CacheConfig) -> Self {
        let inner = (config.max_entries > 0).then(|| {
            Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(TtlByAnswer {
                    allow: config.allow_ttl,
                    deny: config.deny_ttl,
                })
                .build()
        });
        Self { inner }
    }

    /// No cache at all: every question goes to SpiceDB.
    pub(crate) fn disabled() -> Self {
        Self { inner: None }
    }

    /// The cached answer for `key`, if any; does not wait for a call in flight.
    pub(crate) async fn peek(&self, key: &Key) -> Option<Answer> {
        self.inner.as_ref()?.get(key).await
    }

    /// The answer for `key`: from the cache, from an identical call in flight, or from `fetch`.
    /// The flag tells whether this call did *not* run `fetch` itself (a hit).
    pub(crate) async fn get_or_fetch<F>(
        &self,
        key: Key,
        fetch: F,
    ) -> Result<(Answer, bool), AuthzError>
    where
        F: Future<Output = Result<Answer, AuthzError>>,
    {
        let Some(cache) = &self.inner else {
            return fetch.await.map(|answer| (answer, false));
        };
        let entry = cache
            .entry(key)
            .or_try_insert_with(fetch)
            .await
            .map_err(|err: Arc<AuthzError>| AuthzError::clone(&err))?;
        let hit = !entry.is_fresh();
        Ok((entry.into_value(), hit))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key(tenant: &str) -> Key {
        Key::Check {
            subject: Subject::new("s3cr3t"),
            tenant: tenant.to_owned(),
            permission: "read".to_owned(),
        }
    }

    fn config(allow_ms: u64, deny_ms: u64) -> CacheConfig {
        CacheConfig {
            max_entries: 100,
            allow_ttl: Duration::from_millis(allow_ms),
            deny_ttl: Duration::from_millis(deny_ms),
        }
    }

    #[tokio::test]
    async fn concurrent_identical_questions_share_one_call() {
        let cache = DecisionCache::new(&config(0, 0));
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Answer::Check(Outcome::Allowed))
        };
        let (a, b) = tokio::join!(
            cache.get_or_fetch(key("acme"), fetch()),
            cache.get_or_fetch(key("acme"), fetch()),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(a.unwrap().0, b.unwrap().0);
    }

    #[tokio::test]
    async fn grants_and_refusals_live_for_their_own_ttl() {
        let cache = DecisionCache::new(&config(60_000, 0));
        let allow = || async { Ok(Answer::Check(Outcome::Allowed)) };
        let deny = || async { Ok(Answer::Check(Outcome::Denied)) };
        assert!(!cache.get_or_fetch(key("a"), allow()).await.unwrap().1);
        assert!(cache.get_or_fetch(key("a"), allow()).await.unwrap().1);
        assert!(!cache.get_or_fetch(key("d"), deny()).await.unwrap().1);
        assert!(!cache.get_or_fetch(key("d"), deny()).await.unwrap().1);
        assert_eq!(
            cache.peek(&key("a")).await,
            Some(Answer::Check(Outcome::Allowed))
        );
        assert_eq!(cache.peek(&key("d")).await, None);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = DecisionCache::new(&config(60_000, 60_000));
        let fail = async { Err(AuthzError::Unavailable("down".into())) };
        assert!(cache.get_or_fetch(key("a"), fail).await.is_err());
        assert_eq!(cache.peek(&key("a")).await, None);
    }

    #[test]
    fn a_key_never_shows_the_subject() {
        assert!(!format!("{:?}", key("acme")).contains("s3cr3t"));
    }
}
