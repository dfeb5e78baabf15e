//! The [`Authorizer`] itself: turns one request into SpiceDB questions and their answers into a
//! [`Decision`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::try_join_all;
use portcullis_api::{
    Authorizer, AuthzError, AuthzRequest, BuildError, Decision, PluginContext, Subject,
    TenantRequest, TenantSet,
};
use spicedb_rs_proto::authzed::api::v1::consistency::Requirement;
use spicedb_rs_proto::authzed::api::v1::{Consistency as ProtoConsistency, ZedToken};

use crate::cache::{Answer, DecisionCache, Key, Outcome};
use crate::calls::Spicedb;
use crate::client::{Connection, TlsRoots};
use crate::config::{Config, Consistency, Problem};
use crate::names;
use crate::secret::PresharedKey;

/// The object id used by [`Authorizer::ready`]'s probe, as both tenant and subject.
const PROBE_ID: &str = "portcullis-readiness-probe";

/// An [`Authorizer`] that asks SpiceDB.
///
/// - One named tenant: CheckPermission.
/// - Several: one CheckBulkPermissions for the ones not in the cache; all must be allowed,
///   unless `partial` keeps just the allowed ones.
/// - None named, with `lookup`: LookupResources, whose result is the allowed set.
///
/// Each decision takes at most `timeout`; SpiceDB being unreachable, slow or overloaded makes it
/// [`AuthzError::Unavailable`], and a schema that lacks the configured names makes it
/// [`AuthzError::Misconfigured`].
pub struct SpicedbAuthorizer {
    spicedb: Spicedb,
    cache: DecisionCache,
    default_permission: String,
    lookup: bool,
    max_lookup: u32,
    partial: bool,
    timeout: Duration,
}

/// SpiceDB's verdict on one named tenant, or why it was not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TenantOutcome {
    Asked(Outcome),
    NotAnObjectId,
}

impl SpicedbAuthorizer {
    /// Builds an authorizer from the configuration of section `section` (e.g.
    /// `authorizers.spicedb`): validates it, reads the preshared key and the CA file, and
    /// prepares the connection. Never contacts SpiceDB, and needs no async runtime.
    pub fn new(section: &str, config: Config, context: &PluginContext) -> Result<Self, BuildError> {
        config
            .validate()
            .map_err(|problems| build_error(section, problems))?;
        let key = load_key(&config, &context.config_dir).map_err(|message| BuildError {
            path: format!("{section}.{}", key_source_name(&config)),
            message,
        })?;
        let tls = tls_roots(&config, &context.config_dir).map_err(|message| BuildError {
            path: format!("{section}.ca_file"),
            message,
        })?;
        let connection =
            Connection::new(&config.endpoint, tls, &key, config.timeout).map_err(|err| {
                BuildError {
                    path: format!("{section}.endpoint"),
                    message: format!("cannot prepare the connection: {err}"),
                }
            })?;

        let cache = match config.consistency {
            Consistency::FullyConsistent => DecisionCache::disabled(),
            _ => DecisionCache::new(&config.cache),
        };
        let spicedb = Spicedb {
            connection,
            section: section.to_owned(),
            consistency: proto_consistency(&config),
            resource_type: config.resource_type,
            subject_type: config.subject_type,
            subject_relation: config.subject_relation.unwrap_or_default(),
            timeout: config.timeout,
        };
        Ok(Self {
            spicedb,
            cache,
            default_permission: config.permission,
            lookup: config.lookup,
            max_lookup: config.max_lookup,
            partial: config.partial,
            timeout: config.timeout,
        })
    }

    async fn decide(
        &self,
        subject: &Subject,
        tenants: &TenantRequest,
        permission: &str,
    ) -> Decided {
        match tenants {
            TenantRequest::Named(named) => self.decide_named(subject, named, permission).await,
            TenantRequest::Unspecified if self.lookup => {
                self.decide_by_lookup(subject, permission).await
            }
            TenantRequest::Unspecified => Ok(Decision::deny(
                "the request names no tenant and `lookup` is off",
            )),
            _ => Ok(Decision::deny("the tenant request is of an unknown kind")),
        }
    }

    async fn decide_named(
        &self,
        subject: &Subject,
        named: &TenantSet,
        permission: &str,
    ) -> Decided {
        let (outcomes, hit) = self.outcomes(subject, named, permission).await?;
        let allowed: Vec<&str> = named
            .iter()
            .filter(|tenant| outcomes.get(*tenant) == Some(&TenantOutcome::Asked(Outcome::Allowed)))
            .collect();

        let decision = if allowed.len() == named.len() {
            Decision::allow(named.clone())
        } else if self.partial && !allowed.is_empty() {
            let allowed = TenantSet::new(allowed).expect("a non-empty subset of a tenant set");
            Decision::allow(allowed)
        } else {
            Decision::deny(refusal(named, &outcomes, permission))
        };
        Ok(decision.from_cache(hit))
    }

    /// Each named tenant's outcome, and whether SpiceDB's answers all came from the cache (or
    /// from another request's call in flight).
    async fn outcomes(
        &self,
        subject: &Subject,
        named: &TenantSet,
        permission: &str,
    ) -> Result<(HashMap<String, TenantOutcome>, bool), AuthzError> {
        let mut outcomes = HashMap::with_capacity(named.len());
        let mut misses = Vec::new();
        let mut asked = 0;
        for tenant in named.iter() {
            if !names::is_object_id(tenant) {
                outcomes.insert(tenant.to_owned(), TenantOutcome::NotAnObjectId);
                continue;
            }
            asked += 1;
            match self
                .cache
                .peek(&check_key(subject, tenant, permission))
                .await
            {
                Some(Answer::Check(outcome)) => {
                    outcomes.insert(tenant.to_owned(), TenantOutcome::Asked(outcome));
                }
                _ => misses.push(tenant.to_owned()),
            }
        }

        let mut all_hit = asked > 0;
        if !misses.is_empty() {
            for (tenant, outcome, hit) in self.fetch_outcomes(subject, &misses, permission).await? {
                outcomes.insert(tenant, TenantOutcome::Asked(outcome));
                all_hit &= hit;
            }
        }
        Ok((outcomes, all_hit))
    }

    /// Asks SpiceDB about `tenants` (at least one), none of them cached: one CheckPermission for
    /// one tenant, one CheckBulkPermissions for several. Each tenant still goes through the
    /// cache, so a question already in flight for another request is waited for rather than
    /// asked again.
    async fn fetch_outcomes(
        &self,
        subject: &Subject,
        tenants: &[String],
        permission: &str,
    ) -> Result<Vec<(String, Outcome, bool)>, AuthzError> {
        let raw = subject.expose();
        if let [tenant] = tenants {
            let fetch = self
                .spicedb
                .check(raw, tenant, permission)
                .map(|r| r.map(Answer::Check));
            let key = check_key(subject, tenant, permission);
            let (answer, hit) = self.cache.get_or_fetch(key, fetch).await?;
            return Ok(vec![(tenant.clone(), check_outcome(answer)?, hit)]);
        }

        // One shared bulk call: it runs when the first tenant that nobody else is asking about
        // polls it, and the other tenants read their outcome from the same answer.
        let bulk = self
            .spicedb
            .check_bulk(raw, tenants, permission)
            .map(|result| result.map(Arc::new))
            .shared();
        let per_tenant = tenants.iter().map(|tenant| {
            let bulk = bulk.clone();
            let fetch = async move {
                let answers = bulk.await?;
                let outcome = answers.get(tenant).copied();
                outcome.map(Answer::Check).ok_or_else(|| {
                    AuthzError::Unavailable("spicedb left a tenant out of its answer".to_owned())
                })
            };
            async move {
                let key = check_key(subject, tenant, permission);
                let (answer, hit) = self.cache.get_or_fetch(key, fetch).await?;
                Ok::<_, AuthzError>((tenant.clone(), check_outcome(answer)?, hit))
            }
        });
        try_join_all(per_tenant).await
    }

    async fn decide_by_lookup(&self, subject: &Subject, permission: &str) -> Decided {
        let key = Key::Lookup {
            subject: subject.clone(),
            permission: permission.to_owned(),
        };
        let fetch = async {
            let found = self
                .spicedb
                .lookup(subject.expose(), permission, self.max_lookup)
                .await?;
            let tenants = found
                .tenants
                .into_iter()
                .filter(|tenant| !tenant.is_empty());
            Ok(Answer::Lookup {
                tenants: TenantSet::new(tenants).ok(),
                truncated: found.truncated,
            })
        };
        let (answer, hit) = self.cache.get_or_fetch(key, fetch).await?;
        let Answer::Lookup { tenants, truncated } = answer else {
            return Err(AuthzError::Unavailable(
                "a lookup got a check's answer".to_owned(),
            ));
        };
        if truncated && !hit {
            tracing::warn!(
                authz.authorizer = %self.spicedb.section,
                authz.max_lookup = self.max_lookup,
                "Lookup stopped at max_lookup; the allowed tenant set may be incomplete"
            );
        }
        let decision = match tenants {
            Some(tenants) => Decision::allow(tenants),
            None => Decision::deny(format!("the subject holds `{permission}` on no tenant")),
        };
        Ok(decision.from_cache(hit))
    }
}

/// The result of one decision.
type Decided = Result<Decision, AuthzError>;

#[portcullis_api::async_trait]
impl Authorizer for SpicedbAuthorizer {
    async fn authorize(&self, request: &AuthzRequest<'_>) -> Result<Decision, AuthzError> {
        let permission = match request.permission {
            "" => self.default_permission.as_str(),
            named => named,
        };
        if !names::is_relation_name(permission) {
            return Err(AuthzError::Misconfigured(format!(
                "the route's permission `{permission}` is not a valid SpiceDB permission name"
            )));
        }
        let subject = &request.identity.subject;
        if !names::is_object_id(subject.expose()) {
            return Ok(Decision::deny(
                "the subject id cannot be a SpiceDB object id",
            ));
        }

        let decision = self.decide(subject, request.tenants, permission);
        let result = tokio::time::timeout(self.timeout, decision)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()));
        if let Err(err) = &result {
            tracing::debug!(
                authz.authorizer = %self.spicedb.section,
                error = %err,
                "SpiceDB failed"
            );
        }
        result
    }

    /// Asks SpiceDB one CheckPermission about a placeholder tenant and subject: it succeeds when
    /// SpiceDB answers, accepts the preshared key and knows the configured types and the
    /// default permission.
    async fn ready(&self) -> Result<(), AuthzError> {
        let probe = self
            .spicedb
            .check(PROBE_ID, PROBE_ID, &self.default_permission);
        match tokio::time::timeout(self.timeout, probe).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(self.timed_out()),
        }
    }
}

impl SpicedbAuthorizer {
    fn timed_out(&self) -> AuthzError {
        AuthzError::Unavailable(format!("spicedb did not answer within {:?}", self.timeout))
    }
}

impl fmt::Debug for SpicedbAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpicedbAuthorizer")
            .field("spicedb", &self.spicedb)
            .field("default_permission", &self.default_permission)
            .field("lookup", &self.lookup)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

fn check_key(subject: &Subject, tenant: &str, permission: &str) -> Key {
    Key::Check {
        subject: subject.clone(),
        tenant: tenant.to_owned(),
        permission: permission.to_owned(),
    }
}

fn check_outcome(answer: Answer) -> Result<Outcome, AuthzError> {
    match answer {
        Answer::Check(outcome) => Ok(outcome),
        Answer::Lookup { .. } => Err(AuthzError::Unavailable(
            "a check got a lookup's answer".to_owned(),
        )),
    }
}

/// Why a named request is denied: each refused tenant with its reason.
fn refusal(
    named: &TenantSet,
    outcomes: &HashMap<String, TenantOutcome>,
    permission: &str,
) -> String {
    let refused: Vec<String> = named
        .iter()
        .filter_map(|tenant| {
            let why = match outcomes.get(tenant)? {
                TenantOutcome::Asked(Outcome::Allowed) => return None,
                TenantOutcome::Asked(Outcome::Denied) => "no permission",
                TenantOutcome::Asked(Outcome::Conditional) => "caveat lacks context",
                TenantOutcome::NotAnObjectId => "not a SpiceDB object id",
            };
            Some(format!("{tenant} ({why})"))
        })
        .collect();
    format!("`{permission}` refused on {}", refused.join(", "))
}

fn proto_consistency(config: &Config) -> ProtoConsistency {
    let requirement = match config.consistency {
        Consistency::MinimizeLatency => Requirement::MinimizeLatency(true),
        Consistency::FullyConsistent => Requirement::FullyConsistent(true),
        Consistency::AtLeastAsFresh => Requirement::AtLeastAsFresh(ZedToken {
            token: config.zed_token.clone().unwrap_or_default(),
        }),
    };
    ProtoConsistency {
        requirement: Some(requirement),
    }
}

fn build_error(section: &str, problems: Vec<Problem>) -> BuildError {
    if let [problem] = problems.as_slice() {
        return BuildError {
            path: format!("{section}.{}", problem.key),
            message: problem.message.clone(),
        };
    }
    let listed: Vec<String> = problems
        .iter()
        .map(|problem| format!("{}: {}", problem.key, problem.message))
        .collect();
    BuildError {
        path: section.to_owned(),
        message: listed.join("; "),
    }
}

fn key_source_name(config: &Config) -> &'static str {
    match config.preshared_key_env {
        Some(_) => "preshared_key_env",
        None => "preshared_key_file",
    }
}

fn load_key(config: &Config, config_dir: &Path) -> Result<PresharedKey, String> {
    let loaded = match (&config.preshared_key_env, &config.preshared_key_file) {
        (Some(name), _) => PresharedKey::from_env(name),
        (None, Some(file)) => PresharedKey::from_file(&resolve(config_dir, file)),
        (None, None) => return Err("no preshared key source".to_owned()),
    };
    loaded.map_err(|err| err.to_string())
}

fn tls_roots(config: &Config, config_dir: &Path) -> Result<Option<TlsRoots>, String> {
    if !config.uses_tls() {
        return Ok(None);
    }
    let Some(file) = &config.ca_file else {
        return Ok(Some(TlsRoots::System));
    };
    let path = resolve(config_dir, file);
    let pem = std::fs::read(&path)
        .map_err(|err| format!("cannot read `{}`: {}", path.display(), err.kind()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(Some(TlsRoots::Pem(pem)))
}

fn resolve(config_dir: &Path, file: &Path) -> PathBuf {
    match file.is_absolute() {
        true => file.to_path_buf(),
        false => config_dir.join(file),
    }
}
