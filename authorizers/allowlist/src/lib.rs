//! The static allowlist authorizer: a fixed map from subject to the tenants it may read.
//!
//! For tests and small setups. Selected by `type = "allowlist"`:
//!
//! ```toml
//! [authorizers.demo]
//! type = "allowlist"
//! permissions = ["read"]
//!
//! [authorizers.demo.subjects]
//! "token-acme" = ["acme"]
//! "token-ops" = ["acme", "beta"]
//! ```
//!
//! A request naming tenants is allowed when the subject may read every one of them (or, with
//! `partial = true`, is narrowed to those it may read). A request naming none is allowed for all
//! the subject's tenants. Any other permission than those listed is denied.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use portcullis_api::{
    Authorizer, AuthorizerFactory, AuthzError, AuthzRequest, BuildError, Decision, PluginContext,
    Section, TenantRequest, TenantSet, async_trait,
};
use serde::Deserialize;

/// The `[authorizers.<name>]` section of an allowlist authorizer.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    /// Subject id (a bearer token or a trusted user name) → the tenant values it may read.
    #[serde(deserialize_with = "subjects")]
    pub subjects: BTreeMap<String, Vec<String>>,
    /// The permissions the listed subjects hold on their tenants; a route requiring any other
    /// permission is denied.
    #[serde(default = "default_permissions")]
    pub permissions: BTreeSet<String>,
    /// With several tenants requested, allow the subset the subject may read instead of denying.
    #[serde(default)]
    pub partial: bool,
}

/// The subjects table, read so that no error names a subject: a subject id can be a bearer
/// token, and an error's key path (`authorizers.demo.subjects.<token>`) and message would print
/// it wherever configuration errors go. Every value is read as any TOML value first, so the
/// key path stops at `subjects`, then checked.
fn subjects<'de, D>(deserializer: D) -> Result<BTreeMap<String, Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, portcullis_api::toml::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(subject, tenants)| {
            let tenants = tenants.try_into::<Vec<String>>().map_err(|_| {
                serde::de::Error::custom(
                    "the tenants of a listed subject must be an array of strings",
                )
            })?;
            Ok((subject, tenants))
        })
        .collect()
}

fn default_permissions() -> BTreeSet<String> {
    BTreeSet::from(["read".to_owned()])
}

/// An authorizer answering from a fixed subject → tenants map.
pub struct Allowlist {
    grants: BTreeMap<String, TenantSet>,
    permissions: BTreeSet<String>,
    partial: bool,
}

impl Allowlist {
    /// Builds the authorizer; a subject with no tenant or an empty tenant value is an error.
    pub fn new(config: AllowlistConfig) -> Result<Self, String> {
        let mut grants = BTreeMap::new();
        for (subject, tenants) in config.subjects {
            if subject.is_empty() {
                return Err("a subject id is empty".to_owned());
            }
            let set = TenantSet::new(tenants).map_err(|err| format!("{err} (a listed subject)"))?;
            grants.insert(subject, set);
        }
        Ok(Self {
            grants,
            permissions: config.permissions,
            partial: config.partial,
        })
    }

    fn decide(&self, granted: &TenantSet, requested: &TenantSet) -> Decision {
        if requested.is_subset(granted) {
            return Decision::allow(requested.clone());
        }
        match requested.intersection(granted) {
            Some(narrowed) if self.partial => Decision::allow(narrowed),
            _ => Decision::deny(format!("subject may not read all of tenants {requested}")),
        }
    }
}

#[async_trait]
impl Authorizer for Allowlist {
    async fn authorize(&self, request: &AuthzRequest<'_>) -> Result<Decision, AuthzError> {
        if !self.permissions.contains(request.permission) {
            return Ok(Decision::deny(format!(
                "permission {} is not granted",
                request.permission
            )));
        }
        let Some(granted) = self.grants.get(request.identity.subject.expose()) else {
            return Ok(Decision::deny("subject is not listed"));
        };
        Ok(match request.tenants {
            TenantRequest::Named(requested) => self.decide(granted, requested),
            TenantRequest::Unspecified => Decision::allow(granted.clone()),
            _ => Decision::deny("unsupported tenant request"),
        })
    }
}

// Subject ids can be bearer tokens: Debug shows how many there are, never which.
impl std::fmt::Debug for Allowlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allowlist")
            .field("subjects", &self.grants.len())
            .field("permissions", &self.permissions)
            .field("partial", &self.partial)
            .finish()
    }
}

/// Builds [`Allowlist`] authorizers from `type = "allowlist"` sections.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowlistFactory;

impl AuthorizerFactory for AllowlistFactory {
    fn type_name(&self) -> &'static str {
        "allowlist"
    }

    fn build(
        &self,
        section: &Section,
        _context: &PluginContext,
    ) -> Result<Arc<dyn Authorizer>, BuildError> {
        let config: AllowlistConfig = section.parse()?;
        let allowlist = Allowlist::new(config).map_err(|msg| section.error("subjects", msg))?;
        Ok(Arc::new(allowlist))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_api::{Identity, IdentitySource, Subject, Verdict};

    use super::*;

    fn allowlist(partial: bool) -> Allowlist {
        let text =
            format!("partial = {partial}\n[subjects]\nalice = ['acme']\nops = ['acme', 'beta']\n");
        let section = Section::new("authorizers.test", toml::from_str(&text).unwrap());
        Allowlist::new(section.parse().unwrap()).unwrap()
    }

    async fn verdict(authz: &Allowlist, who: &str, tenants: &[&str], permission: &str) -> Verdict {
        let identity = Identity::new(Subject::new(who), IdentitySource::Bearer);
        let tenants = match tenants {
            [] => TenantRequest::Unspecified,
            named => TenantRequest::Named(TenantSet::new(named.iter().copied()).unwrap()),
        };
        let request = AuthzRequest::new(&identity, &tenants, permission, "/api/v1/query");
        authz.authorize(&request).await.unwrap().verdict
    }

    /// A subject can be a bearer token: no configuration error names one, in its key path or
    /// its message.
    #[test]
    fn configuration_errors_never_name_a_subject() {
        for subjects in [
            "{ 's3cr3t-token' = 'acme' }",
            "{ 's3cr3t-token' = [1] }",
            "{ 's3cr3t-token' = [''] }",
            "{ 's3cr3t-token' = { a = 1 } }",
            "{ 's3cr3t-token' = [] }",
        ] {
            let text = format!("subjects = {subjects}");
            let section = Section::new("authorizers.test", toml::from_str(&text).unwrap());
            let Err(err) = AllowlistFactory.build(&section, &PluginContext::default()) else {
                panic!("{subjects}: built");
            };
            assert_eq!(err.path, "authorizers.test.subjects", "{subjects}");
            assert!(
                !err.message.contains("s3cr3t"),
                "{subjects}: {}",
                err.message
            );
        }
    }

    fn set(values: &[&str]) -> TenantSet {
        TenantSet::new(values.iter().copied()).unwrap()
    }

    #[tokio::test]
    async fn allows_only_granted_tenants() {
        let authz = allowlist(false);
        assert_eq!(
            verdict(&authz, "alice", &["acme"], "read").await,
            Verdict::Allow(set(&["acme"]))
        );
        assert!(matches!(
            verdict(&authz, "alice", &["beta"], "read").await,
            Verdict::Deny(_)
        ));
        assert!(matches!(
            verdict(&authz, "mallory", &["acme"], "read").await,
            Verdict::Deny(_)
        ));
        assert!(matches!(
            verdict(&authz, "alice", &["acme"], "write").await,
            Verdict::Deny(_)
        ));
    }

    #[tokio::test]
    async fn several_tenants_need_all_unless_partial() {
        let strict = allowlist(false);
        let both = ["acme", "beta"];
        assert_eq!(
            verdict(&strict, "ops", &both, "read").await,
            Verdict::Allow(set(&both))
        );
        let three = ["acme", "beta", "gamma"];
        assert!(matches!(
            verdict(&strict, "ops", &three, "read").await,
            Verdict::Deny(_)
        ));
        let partial = allowlist(true);
        assert_eq!(
            verdict(&partial, "ops", &three, "read").await,
            Verdict::Allow(set(&both))
        );
        assert!(matches!(
            verdict(&partial, "alice", &["gamma"], "read").await,
            Verdict::Deny(_)
        ));
    }

    #[tokio::test]
    async fn no_named_tenant_allows_all_granted() {
        let authz = allowlist(false);
        assert_eq!(
            verdict(&authz, "ops", &[], "read").await,
            Verdict::Allow(set(&["acme", "beta"]))
        );
    }

    #[test]
    fn a_subject_without_tenants_is_a_build_error() {
        let table = toml::from_str("[subjects]\nalice = []").unwrap();
        let Err(err) =
            AllowlistFactory.build(&Section::new("authorizers.a", table), &Default::default())
        else {
            panic!("built an allowlist with an empty grant");
        };
        assert_eq!(err.path, "authorizers.a.subjects");
    }
}
