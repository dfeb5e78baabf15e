//! The SpiceDB authorizer of Portcullis, registered as `type = "spicedb"`.
//!
//! In the gateway's pipeline this is the authorization step: given the caller's subject id and
//! the tenants a request names, it asks [SpiceDB](https://authzed.com/spicedb) whether the
//! subject (an object of `subject_type`) holds the route's permission on each tenant (an object
//! of `resource_type`), and answers with the allowed [`portcullis_api::TenantSet`] that the
//! enforcers then inject.
//!
//! - One tenant: CheckPermission. Several: one CheckBulkPermissions; every tenant must be
//!   allowed, unless `partial = true` keeps the allowed ones. None, with `lookup = true`: the
//!   allowed set is what LookupResources returns (at most `max_lookup`), and empty means deny.
//! - `HAS_PERMISSION` allows; `NO_PERMISSION` and `CONDITIONAL_PERMISSION` (a caveat that needs
//!   context the gateway cannot give) deny. A tenant value or subject id that cannot be a
//!   SpiceDB object id (e.g. `*` or `a.b`) is refused without asking.
//! - Answers are cached per subject, tenant and permission (`cache.*`), concurrent identical
//!   questions share one call, and `consistency = "fully_consistent"` bypasses the cache.
//! - SpiceDB unreachable, slow (past `timeout`) or overloaded: [`AuthzError::Unavailable`]
//!   (503). A schema without the configured type or permission, or a rejected preshared key:
//!   [`AuthzError::Misconfigured`] naming the key to fix. The connection is made lazily and
//!   re-made by tonic, so startup never waits for SpiceDB and a restarted SpiceDB is used again.
//!
//! See [`Config`] for the keys of the `[authorizers.<name>]` section.
//!
//! [`AuthzError::Unavailable`]: portcullis_api::AuthzError::Unavailable
//! [`AuthzError::Misconfigured`]: portcullis_api::AuthzError::Misconfigured

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use portcullis_api::{Authorizer, AuthorizerFactory, BuildError, PluginContext, Section};

mod authorizer;
mod cache;
mod calls;
mod client;
mod config;
mod names;
mod secret;
mod status;
#[cfg(feature = "test-support")]
pub mod testing;

pub use authorizer::SpicedbAuthorizer;
pub use config::{CacheConfig, Config, Consistency, Problem, defaults};

/// The `type` name of this authorizer in the configuration.
pub const TYPE_NAME: &str = "spicedb";

/// Builds [`SpicedbAuthorizer`]s from `[authorizers.<name>]` sections with `type = "spicedb"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpicedbFactory;

impl AuthorizerFactory for SpicedbFactory {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn build(
        &self,
        section: &Section,
        context: &PluginContext,
    ) -> Result<Arc<dyn Authorizer>, BuildError> {
        let config: Config = section.parse()?;
        let authorizer = SpicedbAuthorizer::new(section.path(), config, context)?;
        Ok(Arc::new(authorizer))
    }
}
