//! The gateway: built once from the configuration, then the pipeline every request runs through.
//!
//! route → authenticate → read parameters → read tenants → authorize → enforce → forward.
//! Each step hands a typed value to the next; nothing after tenant reading looks at the raw
//! request for tenants again, and the set the authorizer allowed is the set the enforcers inject.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, header};
use http_body_util::{BodyExt, Limited};
use portcullis_api::{
    Authorizer, AuthzRequest, Enforcer, Expression, ExpressionKind, HeaderEdits, Language,
    PluginContext, Section, Target, TenantRequest, TenantSet, Verdict,
};

use crate::authn::Authenticator;
use crate::config::{Config, ConfigError, IdentityMode, PluginConfig, Problems, RouteConfig};
use crate::error::GatewayError;
use crate::params::{self, Location, Param};
use crate::proxy::{Outgoing, Upstream, forwardable_headers};
use crate::registry::Registry;
use crate::routes::{self, Access, Endpoint};
use crate::tenancy::TenantReader;

/// The built gateway, shared by every connection.
pub struct Gateway {
    authn: Authenticator,
    tenants: TenantReader,
    routes: Vec<Route>,
    max_body_bytes: usize,
    body_timeout: Duration,
    upstreams: BTreeMap<String, Upstream>,
    authorizers: BTreeMap<String, Arc<dyn Authorizer>>,
}

struct Route {
    language: Language,
    endpoints: &'static [Endpoint],
    upstream: Upstream,
    authorizer: Arc<dyn Authorizer>,
    authorizer_name: String,
    enforcers: Vec<Arc<dyn Enforcer>>,
    permission: String,
    passthrough: BTreeSet<String>,
}

/// What a request path resolved to.
enum Resolved<'g> {
    Endpoint {
        route: &'g Route,
        endpoint: &'static Endpoint,
        path: String,
    },
    Passthrough {
        route: &'g Route,
    },
}

// === impl Gateway: building ===

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
        let routes = config
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, route)| {
                let path = format!("routes[{i}]");
                build_route(
                    route,
                    &path,
                    &upstreams,
                    &authorizers,
                    &enforcers,
                    &mut problems,
                )
            })
            .collect::<Vec<_>>();
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
            upstreams,
            authorizers,
        })
    }

    /// Whether every upstream accepts connections and every authorizer is ready; each failure is
    /// named (upstream or authorizer name, never a credential).
    pub async fn readiness(&self) -> Result<(), Vec<String>> {
        let mut failures = Vec::new();
        for (name, upstream) in &self.upstreams {
            let probe = tokio::net::TcpStream::connect(upstream.authority());
            let reachable = tokio::time::timeout(Duration::from_secs(2), probe).await;
            if !matches!(reachable, Ok(Ok(_))) {
                failures.push(format!("upstream {name} unreachable"));
            }
        }
        for (name, authorizer) in &self.authorizers {
            if let Err(err) = authorizer.ready().await {
                failures.push(format!("authorizer {name}: {err}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
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

fn plugin_section(kind: &str, name: &str, plugin: &PluginConfig) -> Section {
    Section::new(format!("{kind}.{name}"), plugin.settings.clone())
}

fn build_authorizers(
    config: &Config,
    registry: &Registry,
    context: &PluginContext,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Arc<dyn Authorizer>> {
    let mut built = BTreeMap::new();
    for (name, plugin) in &config.authorizers {
        if !check_name("authorizers", name, problems) {
            continue;
        }
        let Some(factory) = registry.authorizer_factory(&plugin.kind) else {
            let known = registry.authorizer_types().join(", ");
            let message = format!("unknown authorizer type {:?} (known: {known})", plugin.kind);
            problems.push(format!("authorizers.{name}.type"), message);
            continue;
        };
        match factory.build(&plugin_section("authorizers", name, plugin), context) {
            Ok(authorizer) => {
                built.insert(name.clone(), authorizer);
            }
            Err(err) => problems.push(err.path, err.message),
        }
    }
    built
}

fn build_enforcers(
    config: &Config,
    registry: &Registry,
    context: &PluginContext,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Arc<dyn Enforcer>> {
    let mut built = BTreeMap::new();
    for (name, plugin) in &config.enforcers {
        if !check_name("enforcers", name, problems) {
            continue;
        }
        let Some(factory) = registry.enforcer_factory(&plugin.kind) else {
            let known = registry.enforcer_types().join(", ");
            let message = format!("unknown enforcer type {:?} (known: {known})", plugin.kind);
            problems.push(format!("enforcers.{name}.type"), message);
            continue;
        };
        match factory.build(&plugin_section("enforcers", name, plugin), context) {
            Ok(enforcer) => {
                built.insert(name.clone(), enforcer);
            }
            Err(err) => problems.push(err.path, err.message),
        }
    }
    built
}

fn build_route(
    config: &RouteConfig,
    path: &str,
    upstreams: &BTreeMap<String, Upstream>,
    authorizers: &BTreeMap<String, Arc<dyn Authorizer>>,
    enforcers: &BTreeMap<String, Arc<dyn Enforcer>>,
    problems: &mut Problems<'_>,
) -> Option<Route> {
    let (language, endpoints) = routes::endpoints(config.api);
    let upstream = upstreams.get(&config.upstream).cloned();
    if upstream.is_none() {
        problems.push(
            format!("{path}.upstream"),
            format!("no upstream {:?}", config.upstream),
        );
    }
    let authorizer = authorizers.get(&config.authorizer).cloned();
    if authorizer.is_none() {
        let message = format!("no authorizer {:?}", config.authorizer);
        problems.push(format!("{path}.authorizer"), message);
    }
    let mut chain = Vec::new();
    for (i, name) in config.enforcers.iter().enumerate() {
        match enforcers.get(name) {
            Some(enforcer) if enforcer.supports(language) => chain.push(Arc::clone(enforcer)),
            Some(_) => problems.push(
                format!("{path}.enforcers[{i}]"),
                format!("enforcer {name:?} cannot enforce {language:?} queries"),
            ),
            None => problems.push(
                format!("{path}.enforcers[{i}]"),
                format!("no enforcer {name:?}"),
            ),
        }
    }
    if config.enforcers.is_empty() {
        problems.push(
            format!("{path}.enforcers"),
            "at least one enforcer is required",
        );
    }
    if config.permission.is_empty() {
        problems.push(format!("{path}.permission"), "must not be empty");
    }
    for (i, passthrough) in config.passthrough.iter().enumerate() {
        let enforced = endpoints
            .iter()
            .any(|e| routes::match_template(e.template, passthrough).is_some());
        if !passthrough.starts_with('/') || enforced {
            let message = "must be an absolute path that no enforced endpoint serves";
            problems.push(format!("{path}.passthrough[{i}]"), message);
        }
    }
    Some(Route {
        language,
        endpoints,
        upstream: upstream?,
        authorizer: authorizer?,
        authorizer_name: config.authorizer.clone(),
        enforcers: chain,
        permission: config.permission.clone(),
        passthrough: config.passthrough.iter().cloned().collect(),
    })
}

// === impl Gateway: the pipeline ===

impl Gateway {
    /// Answers one request: the upstream's response, or the gateway's own error.
    pub async fn handle(&self, request: Request<Body>) -> Response {
        match self.serve(request).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    }

    async fn serve(&self, request: Request<Body>) -> Result<Response, GatewayError> {
        let (parts, body) = request.into_parts();
        let resolved = self.resolve(&parts.method, parts.uri.path())?;

        let identity = self.authn.authenticate(&parts.headers)?;

        let (route, endpoint, path) = match resolved {
            Resolved::Passthrough { route } => return self.pass_through(route, parts, body).await,
            Resolved::Endpoint {
                route,
                endpoint,
                path,
            } => (route, endpoint, path),
        };

        let mut params = self.read_params(&parts, body).await?;

        let tenants = self.tenants.read(&mut params, &parts.headers)?;

        let allowed = self.authorize(route, endpoint, &identity, &tenants).await?;

        let mut header_edits = HeaderEdits::default();
        enforce(
            route,
            endpoint,
            &mut params,
            &allowed,
            &parts.method,
            &mut header_edits,
        )?;

        let outgoing = self.outgoing(route, &parts, path, &params, &header_edits)?;
        route.upstream.forward(outgoing).await
    }

    fn resolve(&self, method: &Method, path: &str) -> Result<Resolved<'_>, GatewayError> {
        let mut wrong_method = false;
        for route in &self.routes {
            for endpoint in route.endpoints {
                let Some(canonical) = routes::match_template(endpoint.template, path) else {
                    continue;
                };
                if !endpoint.methods.contains(method) {
                    wrong_method = true;
                    continue;
                }
                return Ok(Resolved::Endpoint {
                    route,
                    endpoint,
                    path: canonical,
                });
            }
            if route.passthrough.contains(path) {
                return Ok(Resolved::Passthrough { route });
            }
        }
        Err(if wrong_method {
            GatewayError::MethodNotAllowed
        } else {
            GatewayError::NotFound
        })
    }

    /// Parameters from the URL and, for a POST, the form body. A GET's body is never read: like
    /// Prometheus, the gateway does not treat it as form input, and it is not forwarded.
    async fn read_params(&self, parts: &Parts, body: Body) -> Result<Vec<Param>, GatewayError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut params = params::parse(query.as_bytes(), Location::Url)?;
        if parts.method != Method::POST {
            return Ok(params);
        }
        let bytes = self.read_body(body).await?;
        if bytes.is_empty() {
            return Ok(params);
        }
        if !is_form(&parts.headers) {
            return Err(GatewayError::UnsupportedMediaType);
        }
        params.extend(params::parse(&bytes, Location::Body)?);
        Ok(params)
    }

    async fn read_body(&self, body: Body) -> Result<Bytes, GatewayError> {
        let limited = Limited::new(body, self.max_body_bytes);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Err(_) => Err(GatewayError::RequestTimeout),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
                Err(GatewayError::PayloadTooLarge)
            }
            Ok(Err(_)) => Err(GatewayError::BadRequest(
                "the request body was cut short".into(),
            )),
        }
    }

    async fn authorize(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        identity: &portcullis_api::Identity,
        tenants: &TenantRequest,
    ) -> Result<TenantSet, GatewayError> {
        let permission = match endpoint.access {
            Access::Read => route.permission.as_str(),
        };
        let request = AuthzRequest::new(identity, tenants, permission, endpoint.template);
        let decision = route
            .authorizer
            .authorize(&request)
            .await
            .inspect_err(|err| {
                tracing::warn!(
                    authz.name = %route.authorizer_name,
                    route = endpoint.template,
                    error = %err,
                    "authorizer failed"
                );
            })?;
        match decision.verdict {
            Verdict::Allow(allowed) => self.check_allowed(route, endpoint, tenants, allowed),
            Verdict::Deny(reason) => {
                tracing::info!(
                    authz.name = %route.authorizer_name,
                    authz.decision = "deny",
                    authz.reason = %reason,
                    route = endpoint.template,
                    tenant.requested = ?tenants,
                    "request denied"
                );
                Err(GatewayError::Forbidden)
            }
            _ => Err(GatewayError::Internal),
        }
    }

    /// An authorizer may narrow a request, never widen it: anything else is a bug, and 500.
    fn check_allowed(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        tenants: &TenantRequest,
        allowed: TenantSet,
    ) -> Result<TenantSet, GatewayError> {
        if let TenantRequest::Named(requested) = tenants
            && !allowed.is_subset(requested)
        {
            tracing::error!(
                authz.name = %route.authorizer_name,
                tenant.requested = %requested,
                tenant.allowed = %allowed,
                "authorizer allowed tenants that were not requested"
            );
            return Err(GatewayError::Internal);
        }
        tracing::debug!(
            authz.name = %route.authorizer_name,
            authz.decision = "allow",
            route = endpoint.template,
            tenant.allowed = %allowed,
            "request allowed"
        );
        Ok(allowed)
    }

    fn outgoing(
        &self,
        route: &Route,
        parts: &Parts,
        path: String,
        params: &[Param],
        header_edits: &HeaderEdits,
    ) -> Result<Outgoing, GatewayError> {
        let mut drop: Vec<&HeaderName> = self.tenants.header().into_iter().collect();
        if !route.upstream.forward_authorization {
            drop.push(self.authn.credential_header());
        }
        let mut headers = forwardable_headers(&parts.headers, &drop);
        for (name, value) in header_edits.iter() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| GatewayError::Internal)?;
            let value = value.parse().map_err(|_| GatewayError::Internal)?;
            headers.insert(name, value);
        }
        let body = if parts.method == Method::POST {
            let form = http::HeaderValue::from_static("application/x-www-form-urlencoded");
            headers.insert(header::CONTENT_TYPE, form);
            Bytes::from(params::encode(params, Location::Body))
        } else {
            headers.remove(header::CONTENT_TYPE);
            Bytes::new()
        };
        Ok(Outgoing {
            method: parts.method.clone(),
            path,
            query: params::encode(params, Location::Url),
            headers,
            body,
        })
    }

    async fn pass_through(
        &self,
        route: &Route,
        parts: Parts,
        body: Body,
    ) -> Result<Response, GatewayError> {
        let body = self.read_body(body).await?;
        let mut drop: Vec<&HeaderName> = self.tenants.header().into_iter().collect();
        if !route.upstream.forward_authorization {
            drop.push(self.authn.credential_header());
        }
        let outgoing = Outgoing {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: forwardable_headers(&parts.headers, &drop),
            body,
        };
        route.upstream.forward(outgoing).await
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Runs the route's enforcers over every query-bearing parameter, then writes the results back.
fn enforce(
    route: &Route,
    endpoint: &Endpoint,
    params: &mut Vec<Param>,
    allowed: &TenantSet,
    method: &Method,
    header_edits: &mut HeaderEdits,
) -> Result<(), GatewayError> {
    let positions: Vec<usize> = params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.name == endpoint.param)
        .map(|(i, _)| i)
        .collect();
    let mut expressions: Vec<Expression> = positions
        .iter()
        .map(|&i| Expression::new(endpoint.kind, Some(params[i].value.clone())))
        .collect();
    match endpoint.kind {
        ExpressionKind::Query if expressions.iter().all(|e| e.text.as_deref() == Some("")) => {
            let message = "no expression found in input";
            return Err(GatewayError::invalid_param(endpoint.param, message));
        }
        ExpressionKind::Selector if expressions.is_empty() => {
            expressions.push(Expression::new(ExpressionKind::Selector, None));
        }
        _ => {}
    }

    for enforcer in &route.enforcers {
        let mut target = Target::new(route.language, &mut expressions, header_edits);
        enforcer
            .enforce(&mut target, allowed)
            .map_err(|err| GatewayError::from_enforce(endpoint.param, err))?;
    }

    let location = if *method == Method::POST {
        Location::Body
    } else {
        Location::Url
    };
    for (i, expression) in expressions.into_iter().enumerate() {
        let Some(text) = expression.text else {
            // An enforcer that leaves a selector unfilled has not enforced it: fail closed.
            return Err(GatewayError::Internal);
        };
        match positions.get(i) {
            Some(&at) => params[at].value = text,
            None => params.push(Param {
                name: endpoint.param.to_owned(),
                value: text,
                location,
            }),
        }
    }
    Ok(())
}
