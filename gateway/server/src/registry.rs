//! The plugin registry: factories keyed by the `type` name used in the TOML file.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_api::{AuthorizerFactory, EnforcerFactory};

/// Every authorizer and enforcer type the gateway can build.
///
/// [`Registry::builtin`] holds the plugins shipped with Portcullis; a custom binary adds its own
/// with [`Registry::authorizer`] and [`Registry::enforcer`] and hands the registry to
/// [`crate::cli::run`].
#[derive(Clone, Default)]
pub struct Registry {
    authorizers: BTreeMap<&'static str, Arc<dyn AuthorizerFactory>>,
    enforcers: BTreeMap<&'static str, Arc<dyn EnforcerFactory>>,
}

impl Registry {
    /// A registry with no plugin at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The plugins shipped with Portcullis: authorizers `allowlist` and `spicedb`; enforcers
    /// `promql`, `logql` and `tenant_header`.
    pub fn builtin() -> Self {
        Self::empty()
            .authorizer(portcullis_authorizer_allowlist::AllowlistFactory)
            .authorizer(portcullis_authorizer_spicedb::SpicedbFactory)
            .enforcer(portcullis_enforcer_promql::PromqlEnforcerFactory)
            .enforcer(portcullis_enforcer_logql::LogqlEnforcerFactory)
            .enforcer(portcullis_enforcer_tenant_header::TenantHeaderFactory)
    }

    /// Adds (or replaces) the authorizer factory for its `type` name.
    pub fn authorizer(mut self, factory: impl AuthorizerFactory + 'static) -> Self {
        self.authorizers
            .insert(factory.type_name(), Arc::new(factory));
        self
    }

    /// Adds (or replaces) the enforcer factory for its `type` name.
    pub fn enforcer(mut self, factory: impl EnforcerFactory + 'static) -> Self {
        self.enforcers
            .insert(factory.type_name(), Arc::new(factory));
        self
    }

    /// The authorizer factory registered under `kind`.
    pub fn authorizer_factory(&self, kind: &str) -> Option<&dyn AuthorizerFactory> {
        self.authorizers.get(kind).map(Arc::as_ref)
    }

    /// The enforcer factory registered under `kind`.
    pub fn enforcer_factory(&self, kind: &str) -> Option<&dyn EnforcerFactory> {
        self.enforcers.get(kind).map(Arc::as_ref)
    }

    /// The registered authorizer type names, for error messages.
    pub fn authorizer_types(&self) -> Vec<&'static str> {
        self.authorizers.keys().copied().collect()
    }

    /// The registered enforcer type names, for error messages.
    pub fn enforcer_types(&self) -> Vec<&'static str> {
        self.enforcers.keys().copied().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("authorizers", &self.authorizer_types())
            .field("enforcers", &self.enforcer_types())
            .finish()
    }
}
