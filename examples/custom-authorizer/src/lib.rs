//! An example custom authorizer: asks an external HTTP policy service, in the style of the Open
//! Policy Agent's data API, which tenants a caller may read. Registered as `type = "policy"`.
//!
//! In the gateway's pipeline this is the authorization step. For each request it POSTs
//!
//! ```json
//! {"input": {"subject": "acme-token", "tenants": ["acme"], "permission": "read",
//!            "route": "/api/v1/query"}}
//! ```
//!
//! (`"tenants": null` when the request names none) to `url`, and reads the answer
//!
//! ```json
//! {"result": {"allow": true, "tenants": ["acme"], "reason": "acme-token reads acme"}}
//! ```
//!
//! - `allow: false` denies (403) with `reason`.
//! - `allow: true` with `tenants` allows those of them that were requested, so an answer that
//!   lists more than was asked is narrowed, never widened. None of them requested: deny.
//! - `allow: true` without `tenants` allows what the request named. A request that named no
//!   tenant needs `tenants` in the answer: an allow without them is a policy bug (500).
//!
//! Every failure fails closed. The service unreachable, slower than `timeout`, answering 5xx or
//! 429: [`AuthzError::Unavailable`] (503, worth a retry). An answer that is not a decision (not
//! JSON, another shape, OPA's `{}` for an undefined rule, a 3xx or another 4xx status):
//! [`AuthzError::Misconfigured`] (500), because a retry gets the same answer until someone fixes
//! `url` or the policy.
//!
//! The subject id travels to the policy service in the request body: with `identity.mode =
//! "bearer"` it is the caller's token. It appears nowhere else: not in errors, logs or `Debug`.
//!
//! [`AuthzError::Unavailable`]: portcullis_api::AuthzError::Unavailable
//! [`AuthzError::Misconfigured`]: portcullis_api::AuthzError::Misconfigured

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use portcullis_api::{Authorizer, AuthorizerFactory, BuildError, PluginContext, Section};

mod authorizer;
mod client;
mod config;
mod wire;

pub use authorizer::PolicyAuthorizer;
pub use config::PolicyConfig;

/// The `type` name that selects this authorizer in the configuration.
pub const TYPE_NAME: &str = "policy";

/// Builds [`PolicyAuthorizer`]s from `[authorizers.<name>]` sections with `type = "policy"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyFactory;

impl AuthorizerFactory for PolicyFactory {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn build(
        &self,
        section: &Section,
        _context: &PluginContext,
    ) -> Result<Arc<dyn Authorizer>, BuildError> {
        let config: PolicyConfig = section.parse()?;
        let authorizer = PolicyAuthorizer::new(section.path(), config)?;
        Ok(Arc::new(authorizer))
    }
}
