//! The plugin API of Portcullis.
//!
//! Portcullis handles every request in five steps: it identifies the caller, reads the tenant
//! values the request asks for, asks an [`Authorizer`] which of them the caller may read, lets one
//! or more [`Enforcer`]s rewrite the request so that it can only read those tenants, and proxies
//! it upstream. This crate holds the two traits and the typed values that pass between the steps:
//!
//! - authentication yields an [`Identity`];
//! - the request yields a [`TenantRequest`], parsed once;
//! - the authorizer turns both into a [`Decision`], whose allowed [`TenantSet`] is the only set an
//!   enforcer ever sees.
//!
//! A custom authorizer or enforcer depends on this crate alone: it pulls in no HTTP stack and no
//! async runtime. Plugins are built from their own section of the TOML file through a factory
//! ([`AuthorizerFactory`], [`EnforcerFactory`]) registered under the section's `type` name.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authorize;
mod enforce;
mod identity;
mod plugin;
mod tenant;

pub use authorize::{Authorizer, AuthzError, AuthzRequest, Decision, Verdict};
pub use enforce::{
    EnforceError, Enforcer, Expression, ExpressionKind, HeaderEdits, Language, Target,
};
pub use identity::{Identity, IdentitySource, Subject};
pub use plugin::{AuthorizerFactory, BuildError, EnforcerFactory, PluginContext, Section};
pub use tenant::{TenantError, TenantRequest, TenantSet};

/// `async_trait`, re-exported so that a plugin implements [`Authorizer`] without naming the crate.
pub use async_trait::async_trait;
/// The `toml` crate whose `Table` a [`Section`] holds, so that a plugin's tests build sections
/// without matching its version.
pub use toml;
