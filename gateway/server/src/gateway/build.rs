//! Building the gateway from its configuration: every plugin, upstream and route, with every
//! problem reported at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use http::HeaderName;
use portcullis_api::{Authorizer, BuildError, Enforcer, PluginContext, Section};

use super::{Gateway, Route};
use crate::authn::Authenticator;
use crate::config::{Config, ConfigError, IdentityMode, PluginConfig, Problems, RouteConfig};
use crate::metrics::Metrics;
use crate::proxy::Upstream;
use crate::registry::Registry;
use crate::routes;
use crate::telemetry::SubjectHasher;
use crate::tenancy::TenantReader;

impl Gateway {
    /// Builds every plugin, upstream and route of `config`, reporting every problem at once with
    /// its key path and, where found, its line in `text` (the text of `file`).
    pub fn build(
        config: &Config,
        file: &Path,
        text: &str,
        registry: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut problems = Problems::new(file, text);
        let context = PluginContext::new(file.parent().unwrap_or(Path::new(".")));

        let authn = authenticator(config, &mut problems);
        let tenants = TenantReader::new(&config.tenant)
            .map_err(|msg| problems.push(tenant_key(config), msg))
            .ok();
        let upstreams = build_upstreams(config, &mut problems);
        let authorizers = build_authorizers(config, registry, &context, &mut problems);
        let enforcers = build_enforcers(config, registry, &context, &mut problems);
        let built = Built {
            upstreams: &upstreams,
            authorizers: &authorizers,
            enforcers: &enforcers,
        };
        let routes = config
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, route)| {
                build_route(
                    config,
                    route,
                    &format!("routes[{i}]"),
                    &built,
                    &mut problems,
                )
            })
            .collect::<Vec<_>>();
        let subjects = SubjectHasher::new(&config.telemetry)
            .map_err(|msg| problems.push("telemetry.subject_hash_key_env", msg))
            .ok();
        if config.routes.is_empty() {
            problems.push("routes", "at least one route is required");
        }
        problems.finish()?;

        Ok(Self {
            authn: authn.expect("checked above"),
            tenants: tenants.expect("checked above"),
            routes,
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.body_timeout,
            authorize_timeout: config.server.authorize_timeout,
            upstreams,
            authorizers,
            metrics: Metrics::new(),
            subjects: subjects.expect("checked above"),
            audit: config.audit.clone(),
            record_queries: config.telemetry.record_queries,
            filter_slots: Arc::new(tokio::sync::Semaphore::new(super::MAX_CONCURRENT_FILTERS)),
        })
    }
}

fn tenant_key(config: &Config) -> &'static str {
    match config.tenant.source {
        crate::config::TenantSource::Static => "tenant.values",
        _ => "tenant.name",
    }
}

fn authenticator(config: &Config, problems: &mut Problems<'_>) -> Option<Authenticator> {
    match (config.identity.mode, config.identity.header.as_deref()) {
        (IdentityMode::Bearer, _) => Some(Authenticator::Bearer),
        (IdentityMode::Header, Some(name)) => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => Some(Authenticator::TrustedHeader(header)),
            Err(_) => {
                problems.push(
                    "identity.header",
                    format!("{name:?} is not a valid header name"),
                );
                None
            }
        },
        (IdentityMode::Header, None) => {
            problems.push("identity.header", "required with mode = \"header\"");
            None
        }
    }
}

/// Section names become environment variable path parts, which are lowercased.
fn check_name(kind: &str, name: &str, problems: &mut Problems<'_>) -> bool {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        let message = "names must be lowercase letters, digits and `_`, starting with a letter";
        problems.push(format!("{kind}.{name}"), message);
    }
    valid
}

fn build_upstreams(config: &Config, problems: &mut Problems<'_>) -> BTreeMap<String, Upstream> {
    let mut built = BTreeMap::new();
    for (name, upstream) in &config.upstreams {
        if !check_name("upstreams", name, problems) {
            continue;
        }
        match Upstream::new(upstream) {
            Ok(upstream) => {
                built.insert(name.clone(), upstream);
            }
            Err(msg) => problems.push(format!("upstreams.{name}.url"), msg),
        }
    }
    built
}

/// Builds every plugin of one kind (`authorizers` or `enforcers`) through `build`, which answers
/// `None` for a `type` no factory is registered under.
fn build_plugins<T: ?Sized>(
    kind: &str,
    sections: &BTreeMap<String, PluginConfig>,
    known: &[&str],
    build: impl Fn(&str, &Section) -> Option<Result<Arc<T>, BuildError>>,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Arc<T>> {
    let mut built = BTreeMap::new();
    for (name, plugin) in sections {
        if !check_name(kind, name, problems) {
            continue;
        }
        let section = Section::new(format!("{kind}.{name}"), plugin.settings.clone());
        match build(&plugin.kind, &section) {
            None => {
                let known = known.join(", ");
                let message = format!("unknown type {:?} (known: {known})", plugin.kind);
                problems.push(format!("{kind}.{name}.type"), message);
            }
            Some(Err(err)) => problems.push(err.path, err.message),
            Some(Ok(plugin)) => {
                built.insert(name.clone(), plugin);
            }
        }
    }
    built
}

fn build_authorizers(
    config: &Config,
    registry: &Registry,
    context: &PluginContext,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Arc<dyn Authorizer>> {
    let build = |kind: &str, section: &Section| {
        let factory = registry.authorizer_factory(kind)?;
        Some(factory.build(section, context))
    };
    let known = registry.authorizer_types();
    build_plugins("authorizers", &config.authorizers, &known, build, problems)
}

fn build_enforcers(
    config: &Config,
    registry: &Registry,
    context: &PluginContext,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Arc<dyn Enforcer>> {
    let build = |kind: &str, section: &Section| {
        let factory = registry.enforcer_factory(kind)?;
        Some(factory.build(section, context))
    };
    let known = registry.enforcer_types();
    build_plugins("enforcers", &config.enforcers, &known, build, problems)
}

/// The named parts built so far, that routes refer to.
struct Built<'a> {
    upstreams: &'a BTreeMap<String, Upstream>,
    authorizers: &'a BTreeMap<String, Arc<dyn Authorizer>>,
    enforcers: &'a BTreeMap<String, Arc<dyn Enforcer>>,
}

fn build_route(
    whole: &Config,
    config: &RouteConfig,
    path: &str,
    built: &Built<'_>,
    problems: &mut Problems<'_>,
) -> Option<Route> {
    let (language, endpoints) = routes::endpoints(config.api);
    let upstream = built.upstreams.get(&config.upstream).cloned();
    // A section that exists but failed to build has its own problem already.
    if upstream.is_none() && !whole.upstreams.contains_key(&config.upstream) {
        problems.push(
            format!("{path}.upstream"),
            format!("no upstream {:?}", config.upstream),
        );
    }
    let authorizer = built.authorizers.get(&config.authorizer).cloned();
    if authorizer.is_none() && !whole.authorizers.contains_key(&config.authorizer) {
        let message = format!("no authorizer {:?}", config.authorizer);
        problems.push(format!("{path}.authorizer"), message);
    }
    let mut chain = Vec::new();
    for (i, name) in config.enforcers.iter().enumerate() {
        match built.enforcers.get(name) {
            Some(enforcer) if enforcer.supports(language) => chain.push(Arc::clone(enforcer)),
            Some(_) => problems.push(
                format!("{path}.enforcers[{i}]"),
                format!("enforcer {name:?} cannot enforce {language:?} queries"),
            ),
            None if whole.enforcers.contains_key(name) => {}
            None => problems.push(
                format!("{path}.enforcers[{i}]"),
                format!("no enforcer {name:?}"),
            ),
        }
    }
    let labelled = chain.iter().any(|enforcer| enforcer.label().is_some());
    if config.enforcers.is_empty() {
        problems.push(
            format!("{path}.enforcers"),
            "at least one enforcer is required",
        );
    } else if chain.len() == config.enforcers.len() && !labelled && !config.backend_scopes_tenants {
        // Nothing in the file says the upstream reads the tenant header: without a label
        // enforcer, a plain Prometheus or Loki would answer every tenant's data.
        problems.push(
            format!("{path}.enforcers"),
            "no label enforcer (promql, logql): queries would reach the upstream unscoped; add \
             one, or set backend_scopes_tenants = true if the upstream scopes every request by \
             the tenant header itself (Mimir, Cortex, multi-tenant Loki)",
        );
    }
    if config.permission.is_empty() {
        problems.push(format!("{path}.permission"), "must not be empty");
    }
    if config.write_permission.is_empty() {
        problems.push(format!("{path}.write_permission"), "must not be empty");
    }
    for (i, passthrough) in config.passthrough.iter().enumerate() {
        let enforced = endpoints
            .iter()
            .any(|e| routes::match_template(e.template, passthrough).is_some());
        if !is_canonical_path(passthrough) || enforced {
            let message = "must be an absolute path in canonical form (segments of letters, \
                           digits and `-._~`, no `.` or `..` segment, no `//`, no trailing `/`) \
                           that no enforced endpoint serves";
            problems.push(format!("{path}.passthrough[{i}]"), message);
        }
    }
    Some(Route {
        language,
        endpoints,
        upstream: upstream?,
        upstream_name: config.upstream.clone(),
        authorizer: authorizer?,
        authorizer_name: config.authorizer.clone(),
        authorizer_kind: whole.authorizers[&config.authorizer].kind.clone(),
        enforcers: chain.clone(),
        enforcer_names: config.enforcers.join(","),
        rewrites_queries: labelled,
        label: chain
            .iter()
            .find_map(|enforcer| enforcer.label().map(str::to_owned)),
        permission: config.permission.clone(),
        write_permission: config.write_permission.clone(),
        passthrough: config.passthrough.iter().cloned().collect(),
    })
}

/// Whether `path` is spelled the one way an upstream reads it. Passthrough paths are matched byte
/// for byte and forwarded unenforced, while the upstream decodes and cleans a path before routing
/// it: `/api/v1/%71uery` or `/api//v1/query` would reach the enforced `/api/v1/query` there. A
/// canonical path is its own cleaned form, so the comparison with the enforced endpoints holds.
fn is_canonical_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    })
}
