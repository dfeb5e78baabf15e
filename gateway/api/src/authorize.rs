//! The authorization step: which of the requested tenants may this caller read?

use crate::{Identity, TenantRequest, TenantSet};

/// What an [`Authorizer`] is asked for one request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthzRequest<'a> {
    /// The authenticated caller.
    pub identity: &'a Identity,
    /// The tenants the request asks for.
    pub tenants: &'a TenantRequest,
    /// The permission the route requires, e.g. `read` for queries or `write` for silences.
    pub permission: &'a str,
    /// The route template the request matched, e.g. `/api/v1/query`; for logs and policy.
    pub route: &'a str,
}

impl<'a> AuthzRequest<'a> {
    /// A request for `permission` on `tenants`, made through `route`.
    pub fn new(
        identity: &'a Identity,
        tenants: &'a TenantRequest,
        permission: &'a str,
        route: &'a str,
    ) -> Self {
        Self {
            identity,
            tenants,
            permission,
            route,
        }
    }
}

/// The outcome of an authorization that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The caller may read exactly these tenants. For a [`TenantRequest::Named`] request they must
    /// be a subset of the named ones; the gateway answers 500 and forwards nothing otherwise.
    Allow(TenantSet),
    /// The caller may read none of the requested tenants: the gateway answers 403. The reason is
    /// logged and traced, never sent to the caller.
    Deny(String),
}

/// An [`Authorizer`]'s answer: the verdict and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Allow with a tenant set, or deny with a reason.
    pub verdict: Verdict,
    /// Whether the verdict came from the authorizer's cache; recorded in the decision's span and
    /// metrics.
    pub cache_hit: bool,
}

impl Decision {
    /// Allows `tenants`.
    pub fn allow(tenants: TenantSet) -> Self {
        Self {
            verdict: Verdict::Allow(tenants),
            cache_hit: false,
        }
    }

    /// Denies, for `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Deny(reason.into()),
            cache_hit: false,
        }
    }

    /// Marks the decision as served from a cache.
    pub fn from_cache(mut self, hit: bool) -> Self {
        self.cache_hit = hit;
        self
    }
}

/// Why an authorizer could not decide. The gateway fails closed on every variant: nothing is
/// forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The policy source is unreachable, slow or overloaded: 503, and the caller may retry. The
    /// message is logged and traced (`authz.reason`), never sent to the caller.
    #[error("authorizer unavailable: {0}")]
    Unavailable(String),
    /// The policy source rejects the question itself (an unknown resource type or permission),
    /// or answers in a shape the authorizer does not understand: 500. The message is logged,
    /// traced (`authz.reason`) and written to the audit log, never sent to the caller; it names
    /// the key to fix and never holds the subject or a credential.
    #[error("authorizer misconfigured: {0}")]
    Misconfigured(String),
}

/// Decides which tenants a caller may read.
///
/// Runs once per request, after authentication and tenant parsing, before any enforcer, inside
/// the gateway's `authorize` span: spans the implementation creates are its children (exported to
/// OpenTelemetry when their target starts with `portcullis`). An implementation must be cheap to
/// call concurrently; it may cache, but must not widen: for a [`TenantRequest::Named`] request,
/// allow only tenants that were named. The gateway gives up on a call after
/// `server.authorize_timeout` and answers 503; an implementation that asks a remote source should
/// still bound its own wait below that and answer [`AuthzError::Unavailable`] past it, so that
/// the reason it logs is its own.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// Decides `request`.
    ///
    /// - `Ok(Decision { verdict: Allow(set), .. })`: forward, enforced to `set`.
    /// - `Ok(Decision { verdict: Deny(reason), .. })`: 403.
    /// - `Err(AuthzError::Unavailable)`: 503. `Err(AuthzError::Misconfigured)`: 500.
    async fn authorize(&self, request: &AuthzRequest<'_>) -> Result<Decision, AuthzError>;

    /// Whether the authorizer can serve decisions now; called by the admin `/readyz` endpoint.
    /// The default is always ready.
    async fn ready(&self) -> Result<(), AuthzError> {
        Ok(())
    }
}
