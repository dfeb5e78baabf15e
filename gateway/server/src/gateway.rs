//! The gateway: built once from the configuration, then the pipeline every request runs through.
//!
//! route → authenticate → read parameters → read tenants → authorize → enforce → forward.
//! Each step hands a typed value to the next; nothing after tenant reading looks at the raw
//! request for tenants again, and the set the authorizer allowed is the set the enforcers inject.
//! Every request gets a server span with a child span per step (see `docs/tracing.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, header};
use http_body_util::{BodyExt, Limited};
use portcullis_api::{
    Authorizer, AuthzError, AuthzRequest, Decision, Enforcer, Expression, ExpressionKind,
    HeaderEdits, Identity, Language, Target, TenantRequest, TenantSet, Verdict,
};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::alertmanager;
use crate::authn::Authenticator;
use crate::error::GatewayError;
use crate::filter::{self, AnswerFilter};
use crate::metrics::{Metrics, method_label};
use crate::params::{self, Location, Param};
use crate::proxy::{Outgoing, Upstream, forwardable_headers};
use crate::routes::{self, Access, Endpoint, Handling};
use crate::telemetry::{self, AUDIT_TARGET, AuditConfig, AuditLevel, SubjectHasher};
use crate::tenancy::TenantReader;

mod build;

/// The built gateway, shared by every connection.
pub struct Gateway {
    authn: Authenticator,
    tenants: TenantReader,
    routes: Vec<Route>,
    max_body_bytes: usize,
    body_timeout: Duration,
    authorize_timeout: Duration,
    upstreams: BTreeMap<String, Upstream>,
    authorizers: BTreeMap<String, Arc<dyn Authorizer>>,
    metrics: Metrics,
    subjects: SubjectHasher,
    audit: AuditConfig,
    record_queries: bool,
    /// One permit per answer being read and filtered; see [`MAX_CONCURRENT_FILTERS`].
    filter_slots: Arc<tokio::sync::Semaphore>,
}

struct Route {
    language: Language,
    endpoints: &'static [Endpoint],
    upstream: Upstream,
    upstream_name: String,
    authorizer: Arc<dyn Authorizer>,
    authorizer_name: String,
    authorizer_kind: String,
    enforcers: Vec<Arc<dyn Enforcer>>,
    enforcer_names: String,
    /// Whether an enforcer of the route rewrites queries (a label enforcer), not only headers.
    rewrites_queries: bool,
    /// The label of the route's first label enforcer, by which answers are filtered.
    label: Option<String>,
    permission: String,
    write_permission: String,
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

/// Headers by which Loki, Mimir, Cortex and Thanos pick the tenants to read: a client's copy is
/// never forwarded (edge case C16).
static BACKEND_TENANT_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("x-scope-orgid"),
    HeaderName::from_static("thanos-tenant"),
];

/// The longest enforced query string forwarded in a URL; upstreams commonly refuse longer ones.
const MAX_FORWARDED_QUERY_BYTES: usize = 16 * 1024;

/// The largest upstream answer read for filtering.
const MAX_FILTERED_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How many answers are read and filtered at once. A rules or alerts answer holds every tenant's
/// items and is parsed whole, several times its size in memory: without a bound, many concurrent
/// requests by any caller would hold many such answers. Further requests wait their turn.
const MAX_CONCURRENT_FILTERS: usize = 4;

/// The route name used in spans and metrics for a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// The route name used in spans and metrics for a passthrough path.
const PASSTHROUGH: &str = "passthrough";

impl Gateway {
    /// The gateway's metrics, for the admin listener.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
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

    /// Answers one request: the upstream's response, or the gateway's own error.
    pub async fn handle(&self, request: Request<Body>) -> Response {
        let method = request.method().clone();
        let resolved = self.resolve(&method, request.uri().path());
        let route_name = match &resolved {
            Ok(Resolved::Endpoint { endpoint, .. }) => endpoint.template,
            Ok(Resolved::Passthrough { .. }) => PASSTHROUGH,
            Err(_) => UNMATCHED,
        };
        let span = tracing::info_span!(
            target: telemetry::REQUEST_TARGET,
            "request",
            otel.name = format!("{} {route_name}", method_label(&method)),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method_label(&method),
            http.route = route_name,
            url.path = request.uri().path(),
            http.response.status_code = Empty,
        );
        telemetry::continue_trace(&span, request.headers());

        let served = async { self.serve(request, resolved?).await };
        // A panic in any stage (a plugin's, a parser's) fails this one request closed, with an
        // answer, instead of dropping the connection unanswered.
        let served = AssertUnwindSafe(served.instrument(span.clone())).catch_unwind();
        let response = served.await.unwrap_or_else(|_panic| {
            tracing::error!(parent: &span, "the request failed closed after a panic");
            Err(GatewayError::Internal)
        });
        let response = response.unwrap_or_else(IntoResponse::into_response);

        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.request(route_name, &method, status);
        response
    }

    async fn serve(
        &self,
        request: Request<Body>,
        resolved: Resolved<'_>,
    ) -> Result<Response, GatewayError> {
        let (mut parts, body) = request.into_parts();

        let identity = tracing::info_span!(target: "portcullis::authn", "authenticate")
            .in_scope(|| self.authn.authenticate(&parts.headers))?;

        let (route, endpoint, path) = match resolved {
            Resolved::Passthrough { route } => return self.pass_through(route, parts, body).await,
            Resolved::Endpoint {
                route,
                endpoint,
                path,
            } => (route, endpoint, path),
        };

        // A silence is JSON; every other body is a form.
        let (mut params, json) = match endpoint.handling {
            Handling::CreateSilence => {
                let query = parts.uri.query().unwrap_or_default();
                (
                    params::parse(query.as_bytes(), Location::Url)?,
                    Some(self.read_body(body).await?),
                )
            }
            _ => (self.read_params(&parts, body).await?, None),
        };

        let tenants = self.tenants.read(&mut params, &parts.headers)?;

        let allowed = self.authorize(route, endpoint, &identity, &tenants).await?;

        let mut header_edits = HeaderEdits::default();
        self.enforce(
            route,
            endpoint,
            &mut params,
            &allowed,
            &parts.method,
            &mut header_edits,
        )?;
        // A route without a label enforcer has its backend scope answers and silences by the
        // tenant header its enforcers set: those endpoints are forwarded as they are.
        let label = route.label.as_deref();
        if let (Handling::AlertFilter, Some(label)) = (endpoint.handling, label) {
            alertmanager::add_filter(&mut params, label, &allowed);
        }

        let mut outgoing = self.outgoing(route, endpoint, &parts, path, &params, &header_edits)?;
        match (endpoint.handling, label) {
            (Handling::Forward | Handling::AlertFilter, _)
            | (Handling::FilterAnswer(_) | Handling::SilenceById, None) => {
                self.forward(route, outgoing).await
            }
            (Handling::WebSocket, _) => {
                let client = websocket_upgrade(&mut parts)?;
                route.upstream.forward_upgrade(outgoing, client).await
            }
            (Handling::FilterAnswer(filter), Some(label)) => {
                // The filter reads gzip or plain answers only.
                let gzip = http::HeaderValue::from_static("gzip");
                outgoing.headers.insert(header::ACCEPT_ENCODING, gzip);
                let answer = self.forward(route, outgoing).await?;
                self.filter_answer(route, endpoint, filter, label, answer, &allowed)
                    .await
            }
            (Handling::CreateSilence, label) => {
                let json = json.unwrap_or_default();
                let silence = alertmanager::enforce_silence(&json, label, &allowed)?;
                if let (Some(id), Some(label)) = (&silence.replaces, label) {
                    let existing = routes::fill("/api/v2/silence/{name}", id);
                    self.check_silence(route, &outgoing, existing, label, &allowed)
                        .await?;
                }
                let json_type = http::HeaderValue::from_static("application/json");
                outgoing.headers.insert(header::CONTENT_TYPE, json_type);
                outgoing.body = Bytes::from(silence.body);
                self.forward(route, outgoing).await
            }
            (Handling::SilenceById, Some(label)) => {
                let path = outgoing.path.clone();
                self.check_silence(route, &outgoing, path, label, &allowed)
                    .await?;
                self.forward(route, outgoing).await
            }
        }
    }

    /// Fetches the silence at `path` and checks that it belongs to an allowed tenant: 404 when
    /// it does not exist, 403 when it is another tenant's.
    async fn check_silence(
        &self,
        route: &Route,
        request: &Outgoing,
        path: String,
        label: &str,
        allowed: &TenantSet,
    ) -> Result<(), GatewayError> {
        let mut headers = request.headers.clone();
        headers.remove(header::CONTENT_TYPE);
        // Not the caller's `Accept-Encoding`: the answer is read here, as gzip or plain.
        let gzip = http::HeaderValue::from_static("gzip");
        headers.insert(header::ACCEPT_ENCODING, gzip);
        let lookup = Outgoing {
            method: Method::GET,
            path,
            query: String::new(),
            headers,
            body: Bytes::new(),
        };
        let (parts, body) = self.forward(route, lookup).await?.into_parts();
        match parts.status {
            http::StatusCode::OK => {}
            http::StatusCode::NOT_FOUND => return Err(GatewayError::NotFound),
            _ => return Err(GatewayError::BadGateway),
        }
        let limited = Limited::new(body, MAX_FILTERED_ANSWER_BYTES);
        let read = tokio::time::timeout(route.upstream.timeout(), limited.collect()).await;
        let Ok(Ok(collected)) = read else {
            return Err(GatewayError::BadGateway);
        };
        let encoding = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let silence = filter::decode(collected.to_bytes(), encoding, MAX_FILTERED_ANSWER_BYTES)
            .map_err(|_| GatewayError::BadGateway)?;
        match alertmanager::belongs(&silence, label, allowed)? {
            true => Ok(()),
            false => Err(GatewayError::Forbidden),
        }
    }

    /// Keeps only the allowed tenants' items of a filtered endpoint's answer. Anything that
    /// cannot be filtered is an error: an unfiltered body is never relayed.
    async fn filter_answer(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        filter: AnswerFilter,
        label: &str,
        answer: Response,
        allowed: &TenantSet,
    ) -> Result<Response, GatewayError> {
        let (mut parts, body) = answer.into_parts();
        if parts.status != http::StatusCode::OK {
            tracing::warn!(route = endpoint.template, status = %parts.status, "upstream refused");
            return Err(GatewayError::BadGateway);
        }
        let _slot = Arc::clone(&self.filter_slots)
            .acquire_owned()
            .await
            .map_err(|_| GatewayError::Internal)?;
        let limited = Limited::new(body, MAX_FILTERED_ANSWER_BYTES);
        let read = tokio::time::timeout(route.upstream.timeout(), limited.collect()).await;
        let Ok(Ok(collected)) = read else {
            return Err(GatewayError::BadGateway);
        };
        let encoding = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (label, allowed) = (label.to_owned(), allowed.clone());
        // Decompressing and parsing up to 64 MiB takes a while: off the request threads.
        let filtered = tokio::task::spawn_blocking(move || {
            let plain = filter::decode(
                collected.to_bytes(),
                encoding.as_deref(),
                MAX_FILTERED_ANSWER_BYTES,
            )?;
            filter::apply(filter, &plain, &label, &allowed)
        })
        .await
        .map_err(|_| GatewayError::Internal)?
        .map_err(|err| {
            tracing::warn!(route = endpoint.template, error = %err, "answer not filtered");
            GatewayError::BadGateway
        })?;
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Response::from_parts(parts, Body::from(filtered)))
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
}

// === the authorize step ===

impl Gateway {
    async fn authorize(
        &self,
        route: &Route,
        endpoint: &'static Endpoint,
        identity: &Identity,
        tenants: &TenantRequest,
    ) -> Result<TenantSet, GatewayError> {
        let permission = match endpoint.access {
            Access::Read => route.permission.as_str(),
            Access::Write => route.write_permission.as_str(),
        };
        let subject = self.subjects.label(&identity.subject);
        let requested = describe(tenants);
        let span = tracing::info_span!(
            target: "portcullis::authz",
            "authorize",
            authz.name = %route.authorizer_name,
            authz.type = %route.authorizer_kind,
            authz.subject = %subject,
            authz.permission = permission,
            tenant.requested = requested.as_str(),
            tenant.allowed = Empty,
            authz.decision = Empty,
            authz.reason = Empty,
            authz.cache_hit = Empty,
            authz.duration_ms = Empty,
        );

        let request = AuthzRequest::new(identity, tenants, permission, endpoint.template);
        let started = Instant::now();
        let deciding = route
            .authorizer
            .authorize(&request)
            .instrument(span.clone());
        let answer = tokio::time::timeout(self.authorize_timeout, deciding)
            .await
            .unwrap_or_else(|_| Err(AuthzError::Unavailable("the authorizer timed out".into())));
        let took = started.elapsed();
        span.record("authz.duration_ms", took.as_secs_f64() * 1000.0);

        let judgement = judge(tenants, answer);
        span.record("authz.decision", judgement.decision);
        span.record("authz.cache_hit", judgement.cache_hit);
        if let Some(reason) = &judgement.reason {
            span.record("authz.reason", reason.as_str());
        }
        if let Ok(allowed) = &judgement.outcome {
            span.record("tenant.allowed", allowed.to_string());
        }
        let name = &route.authorizer_name;
        self.metrics
            .decision(name, judgement.decision, judgement.cache_hit, took);
        self.audit(route, endpoint, &span, &subject, &requested, &judgement);
        judgement.outcome
    }

    fn audit(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        span: &Span,
        subject: &str,
        requested: &str,
        judgement: &Judgement,
    ) {
        let allowed = judgement
            .outcome
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let level = match judgement.outcome {
            Ok(_) => self.audit.allow_level,
            Err(_) => self.audit.deny_level,
        };
        let reason = judgement.reason.as_deref().unwrap_or_default();
        let trace_id = telemetry::trace_id(span).unwrap_or_default();
        // `tracing` needs the level at compile time, hence one event per level.
        macro_rules! audit_event {
            ($level:expr) => {
                tracing::event!(
                    target: AUDIT_TARGET,
                    $level,
                    authz.decision = judgement.decision,
                    authz.name = %route.authorizer_name,
                    authz.subject = subject,
                    authz.reason = reason,
                    authz.cache_hit = judgement.cache_hit,
                    tenant.requested = requested,
                    tenant.allowed = allowed,
                    http.route = endpoint.template,
                    trace_id = trace_id,
                    "authorization decision"
                )
            };
        }
        match level {
            AuditLevel::Off => {}
            AuditLevel::Debug => audit_event!(tracing::Level::DEBUG),
            AuditLevel::Info => audit_event!(tracing::Level::INFO),
            AuditLevel::Warn => audit_event!(tracing::Level::WARN),
        }
    }
}

/// The authorize step's result, with what spans, metrics and the audit log record of it.
struct Judgement {
    outcome: Result<TenantSet, GatewayError>,
    decision: &'static str,
    cache_hit: bool,
    reason: Option<String>,
}

/// Turns the authorizer's answer into the allowed set or the error to answer. An authorizer may
/// narrow a request, never widen it: a widening answer is a bug, and 500.
fn judge(tenants: &TenantRequest, answer: Result<Decision, AuthzError>) -> Judgement {
    let decision = match answer {
        Ok(decision) => decision,
        Err(err) => {
            let reason = Some(err.to_string());
            return Judgement {
                outcome: Err(err.into()),
                decision: "error",
                cache_hit: false,
                reason,
            };
        }
    };
    let cache_hit = decision.cache_hit;
    let refuse = |err, decision, reason: String| Judgement {
        outcome: Err(err),
        decision,
        cache_hit,
        reason: Some(reason),
    };
    match decision.verdict {
        Verdict::Allow(allowed) => match tenants {
            TenantRequest::Named(requested) if !allowed.is_subset(requested) => {
                let reason = format!("authorizer allowed unrequested tenants {allowed}");
                refuse(GatewayError::Internal, "error", reason)
            }
            _ => Judgement {
                outcome: Ok(allowed),
                decision: "allow",
                cache_hit,
                reason: None,
            },
        },
        Verdict::Deny(reason) => refuse(GatewayError::Forbidden, "deny", reason),
        _ => refuse(
            GatewayError::Internal,
            "error",
            "unknown verdict".to_owned(),
        ),
    }
}

fn describe(tenants: &TenantRequest) -> String {
    match tenants {
        TenantRequest::Named(set) => set.to_string(),
        _ => "(all the caller may read)".to_owned(),
    }
}

// === the enforce and forward steps ===

impl Gateway {
    /// Runs the route's enforcers over every query-bearing parameter, then writes the results
    /// back where each parameter was.
    fn enforce(
        &self,
        route: &Route,
        endpoint: &'static Endpoint,
        params: &mut Vec<Param>,
        allowed: &TenantSet,
        method: &Method,
        header_edits: &mut HeaderEdits,
    ) -> Result<(), GatewayError> {
        let span = tracing::info_span!(
            target: "portcullis::enforce",
            "enforce",
            enforce.enforcers = %route.enforcer_names,
            enforce.label = Empty,
            enforce.expressions = Empty,
            enforce.selectors_rewritten = Empty,
            enforce.query.original = Empty,
            enforce.query.enforced = Empty,
        );
        let _entered = span.enter();
        let started = Instant::now();
        // An endpoint without query parameters has its answer scoped instead, yet every enforcer
        // still runs: a header enforcer sets its tenant header on every request of the route.
        let Some(&param_name) = endpoint.params.first() else {
            for enforcer in &route.enforcers {
                let mut none = Vec::new();
                let mut target = Target::new(route.language, &mut none, header_edits);
                enforcer
                    .enforce(&mut target, allowed)
                    .map_err(|err| GatewayError::from_enforce(None, err))?;
            }
            return Ok(());
        };

        let positions: Vec<usize> = params
            .iter()
            .enumerate()
            .filter(|(_, p)| endpoint.params.contains(&p.name.as_str()))
            .map(|(i, _)| i)
            .collect();
        let mut expressions: Vec<Expression> = positions
            .iter()
            .map(|&i| Expression::new(endpoint.kind, Some(params[i].value.clone())))
            .collect();
        match endpoint.kind {
            ExpressionKind::Query if expressions.iter().all(|e| e.text.as_deref() == Some("")) => {
                let message = "no expression found in input";
                return Err(GatewayError::invalid_param(param_name, message));
            }
            // Only a label enforcer can fill in a missing selector; a header-only route has none
            // to fill.
            ExpressionKind::Selector if expressions.is_empty() && route.rewrites_queries => {
                expressions.push(Expression::new(ExpressionKind::Selector, None));
            }
            _ => {}
        }
        span.record("enforce.expressions", expressions.len());
        if self.record_queries {
            span.record("enforce.query.original", joined(&expressions));
        }

        let mut rewritten = 0;
        for enforcer in &route.enforcers {
            if let Some(label) = enforcer.label() {
                span.record("enforce.label", label);
            }
            let mut target = Target::new(route.language, &mut expressions, header_edits);
            enforcer
                .enforce(&mut target, allowed)
                .map_err(|err| GatewayError::from_enforce(Some(param_name), err))?;
            rewritten += target.selectors_rewritten;
        }
        span.record("enforce.selectors_rewritten", rewritten);
        if self.record_queries {
            span.record("enforce.query.enforced", joined(&expressions));
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
                    name: param_name.to_owned(),
                    value: text,
                    location,
                }),
            }
        }
        self.metrics.enforced(endpoint.template, started.elapsed());
        Ok(())
    }

    /// The enforced request for the upstream. A query string that outgrows
    /// [`MAX_FORWARDED_QUERY_BYTES`] once enforced (every selector gains the tenant matcher)
    /// moves into a POST form where the endpoint takes one, and is otherwise a 414: never
    /// truncated.
    fn outgoing(
        &self,
        route: &Route,
        endpoint: &Endpoint,
        parts: &Parts,
        path: String,
        params: &[Param],
        header_edits: &HeaderEdits,
    ) -> Result<Outgoing, GatewayError> {
        let mut headers = self.forwardable(route, &parts.headers);
        for (name, value) in header_edits.iter() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| GatewayError::Internal)?;
            let value = value.parse().map_err(|_| GatewayError::Internal)?;
            headers.insert(name, value);
        }
        let mut method = parts.method.clone();
        let mut query = params::encode(params, Location::Url);
        let mut body = params::encode(params, Location::Body);
        if query.len() > MAX_FORWARDED_QUERY_BYTES {
            if !endpoint.methods.contains(&Method::POST) {
                return Err(GatewayError::UriTooLong);
            }
            // Body copies first, then the URL's: the order in which Prometheus reads a form.
            method = Method::POST;
            let url = std::mem::take(&mut query);
            body = [body, url]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("&");
        }
        if method == Method::POST {
            let form = http::HeaderValue::from_static("application/x-www-form-urlencoded");
            headers.insert(header::CONTENT_TYPE, form);
        } else {
            headers.remove(header::CONTENT_TYPE);
            body.clear();
        }
        Ok(Outgoing {
            method,
            path,
            query,
            headers,
            body: Bytes::from(body),
        })
    }

    /// The client's headers that may travel upstream: never the tenant header nor a tenant
    /// header a multi-tenant backend trusts (a `tenant_header` enforcer sets its own), and the
    /// credential only when the upstream is configured to receive it.
    fn forwardable(&self, route: &Route, headers: &HeaderMap) -> HeaderMap {
        let mut drop: Vec<&HeaderName> = self.tenants.header().into_iter().collect();
        drop.extend(BACKEND_TENANT_HEADERS.iter());
        if !route.upstream.forward_authorization {
            drop.push(self.authn.credential_header());
        }
        forwardable_headers(headers, &drop)
    }

    async fn forward(
        &self,
        route: &Route,
        mut outgoing: Outgoing,
    ) -> Result<Response, GatewayError> {
        let span = tracing::info_span!(
            target: "portcullis::upstream",
            "upstream",
            otel.name = %outgoing.method,
            otel.kind = "client",
            http.request.method = %outgoing.method,
            upstream.name = %route.upstream_name,
            server.address = %route.upstream.authority(),
            url.path = %outgoing.path,
            http.response.status_code = Empty,
        );
        telemetry::inject_trace(&span, &mut outgoing.headers);
        let started = Instant::now();
        let answer = route
            .upstream
            .forward(outgoing)
            .instrument(span.clone())
            .await;
        self.metrics
            .upstream(&route.upstream_name, started.elapsed());
        if let Ok(response) = &answer {
            span.record("http.response.status_code", response.status().as_u16());
        }
        answer
    }

    async fn pass_through(
        &self,
        route: &Route,
        parts: Parts,
        body: Body,
    ) -> Result<Response, GatewayError> {
        let body = self.read_body(body).await?;
        let outgoing = Outgoing {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: self.forwardable(route, &parts.headers),
            body,
        };
        self.forward(route, outgoing).await
    }
}

/// The client's side of a WebSocket upgrade; a request that does not ask for one is a 400, and
/// one a browser sent from another site's page is a 403.
fn websocket_upgrade(parts: &mut Parts) -> Result<hyper::upgrade::OnUpgrade, GatewayError> {
    let asks = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let upgrade = match (asks, upgrade) {
        (true, Some(upgrade)) => upgrade,
        _ => {
            return Err(GatewayError::BadRequest(
                "this endpoint needs a WebSocket upgrade".into(),
            ));
        }
    };
    if !same_origin(&parts.headers, &parts.uri) {
        return Err(GatewayError::Forbidden);
    }
    Ok(upgrade)
}

/// Whether a WebSocket upgrade comes from a page of the gateway's own origin, or from a client
/// that is not a browser (no `Origin`). A WebSocket is not bound by CORS: any site's page can
/// open one with the browser's cookies, and read every frame. Where an authenticating proxy in
/// front identifies callers by a cookie (`identity.mode = "header"`), that page would read the
/// victim's log tail.
fn same_origin(headers: &HeaderMap, uri: &http::Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str().unwrap_or_default().parse::<http::Uri>() else {
        return false;
    };
    let (Some(scheme), Some(origin)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let host = match headers.get(header::HOST) {
        Some(host) => host.to_str().ok().and_then(|h| h.parse().ok()),
        None => uri.authority().cloned(),
    };
    let Some(host): Option<http::uri::Authority> = host else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    origin.host().eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
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

fn joined(expressions: &[Expression]) -> String {
    let texts: Vec<&str> = expressions
        .iter()
        .map(|e| e.text.as_deref().unwrap_or(""))
        .collect();
    texts.join("\n")
}
