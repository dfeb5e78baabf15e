//! Logs, traces and the audit log.
//!
//! One `tracing` subscriber carries three layers: human or JSON logs on stderr, the audit log (one
//! JSON line per decision, target [`AUDIT_TARGET`]), and, when `[telemetry]` names an OTLP
//! endpoint, an OpenTelemetry layer that exports every request's span tree. Spans, logs and
//! metrics share dotted attribute names (`authz.decision`, `authz.subject`, `tenant.allowed`).
//! The subject is only ever recorded as a keyed hash ([`SubjectHasher`]), never in the clear,
//! unless configured visible.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use portcullis_api::Subject;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "portcullis::audit";

/// The target of the span every request runs in.
pub const REQUEST_TARGET: &str = "portcullis::request";

/// `[telemetry]`: OpenTelemetry traces. Off unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint of a collector or Jaeger, e.g. `http://127.0.0.1:4317`. Unset: no
    /// traces are exported. An unreachable collector never fails a request.
    pub otlp_endpoint: Option<String>,
    /// The OTLP protocol; only `grpc` is supported.
    pub protocol: OtlpProtocol,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces sampled, from 0.0 to 1.0; a request continuing a trace (an incoming
    /// `traceparent`) follows its parent's decision.
    pub sampling_ratio: f64,
    /// Extra resource attributes, e.g. `{ "deployment.environment" = "prod" }`.
    pub resource_attributes: BTreeMap<String, String>,
    /// Record the raw subject id in spans and the audit log instead of its keyed hash. Leave off
    /// when subjects are bearer tokens.
    pub subject_visible: bool,
    /// Environment variable holding the key of the subject hash, so hashes stay the same across
    /// restarts and replicas. Unset: a random key per process.
    pub subject_hash_key_env: Option<String>,
    /// Record the original and the enforced query in the enforce span. Queries can be sensitive.
    pub record_queries: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            protocol: OtlpProtocol::Grpc,
            service_name: "portcullis".to_owned(),
            sampling_ratio: 1.0,
            resource_attributes: BTreeMap::new(),
            subject_visible: false,
            subject_hash_key_env: None,
            record_queries: false,
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP over gRPC.
    Grpc,
}

/// `[audit]`: the audit log, one JSON line per authorization decision on stderr.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Level of the lines for denied requests (and authorizer errors).
    pub deny_level: AuditLevel,
    /// Level of the lines for allowed requests.
    pub allow_level: AuditLevel,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            deny_level: AuditLevel::Info,
            allow_level: AuditLevel::Debug,
        }
    }
}

/// A log level for audit lines; `off` drops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// Not written.
    Off,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
}

/// Log output format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the tracer provider alive; flushes pending spans when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Sends every panic to the log as one error line naming where it happened. The gateway answers
/// a request whose stage panicked with a 500 and serves on; without this, the panic's message
/// would go to stderr as raw text, outside the log format, and it may quote what the panicking
/// code held, the request's credential included. So the message is left out: the location finds
/// the code.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line()))
            .unwrap_or_default();
        tracing::error!(target: "portcullis::panic", %location, "a stage panicked");
    }));
}

/// Installs the global subscriber: logs (filtered by `PORTCULLIS_LOG`, default `info`), the
/// audit log, and the OpenTelemetry layer when configured. Must run inside the Tokio runtime.
pub fn init(
    format: LogFormat,
    telemetry: Option<&TelemetryConfig>,
    audit: &AuditConfig,
) -> anyhow::Result<TelemetryGuard> {
    let filter = env_filter();
    // Log lines carry the request span's fields (method, route, path) as context, not the
    // stages' spans: formatting every stage span's fields cost about 28% of a cached request's
    // instructions (bench/instructions.sh), and the stages' details are in the trace and the
    // audit line.
    let log_lines = filter_fn(|meta| {
        meta.target() != AUDIT_TARGET && (!meta.is_span() || meta.target() == REQUEST_TARGET)
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };
    let audit_levels = [audit.deny_level, audit.allow_level]
        .into_iter()
        .max_by_key(|l| rank(*l));
    let audit_filter = Targets::new().with_target(AUDIT_TARGET, to_filter(audit_levels));
    // Audit lines are log lines too: one at debug shows only when PORTCULLIS_LOG lets debug in.
    let audit_log_filter = env_filter();
    let audit_layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .with_filter(audit_filter)
        .with_filter(audit_log_filter);

    let provider = match telemetry.and_then(|t| t.otlp_endpoint.as_deref().map(|e| (t, e))) {
        Some((config, endpoint)) => Some(tracer_provider(config, endpoint)?),
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        let tracer = provider.tracer("portcullis");
        // Spans of the gateway and of plugins, whatever their crate; not the HTTP and gRPC
        // libraries' own, which would bury the decision under connection plumbing.
        let libraries = [
            "h2",
            "hyper",
            "hyper_util",
            "tower",
            "tonic",
            "rustls",
            "opentelemetry",
        ]
        .into_iter()
        .fold(
            Targets::new().with_default(LevelFilter::TRACE),
            |targets, library| targets.with_target(library, LevelFilter::OFF),
        );
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| meta.is_span()))
            .with_filter(libraries)
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(logs.with_filter(log_lines).with_filter(filter))
        .with(audit_layer)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// The log filter of `PORTCULLIS_LOG` (e.g. `debug`, `info,portcullis::audit=warn`); `info`
/// when unset or invalid.
fn env_filter() -> EnvFilter {
    EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

fn rank(level: AuditLevel) -> u8 {
    match level {
        AuditLevel::Off => 0,
        AuditLevel::Warn => 1,
        AuditLevel::Info => 2,
        AuditLevel::Debug => 3,
    }
}

fn to_filter(level: Option<AuditLevel>) -> LevelFilter {
    match level {
        None | Some(AuditLevel::Off) => LevelFilter::OFF,
        Some(AuditLevel::Debug) => LevelFilter::DEBUG,
        Some(AuditLevel::Info) => LevelFilter::INFO,
        Some(AuditLevel::Warn) => LevelFilter::WARN,
    }
}

fn tracer_provider(config: &TelemetryConfig, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let ratio = config.sampling_ratio.clamp(0.0, 1.0);
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)));
    let attributes = config
        .resource_attributes
        .iter()
        .map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone()));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(attributes)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

/// Makes `span` continue the trace of an incoming `traceparent` header, if any.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderReader(headers)));
    let _ = span.set_parent(parent);
}

/// Adds the W3C trace context of `span` (`traceparent`) to outgoing `headers`, replacing any
/// client-supplied copy.
pub fn inject_trace(span: &tracing::Span, headers: &mut HeaderMap) {
    headers.remove("traceparent");
    headers.remove("tracestate");
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeaderWriter(headers));
    });
}

/// The trace id of `span`, when it is being traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Turns subjects into stable, non-reversible labels for spans and logs: the first 16 hex digits
/// of an HMAC-SHA256 of the subject id under a key.
pub struct SubjectHasher {
    key: Option<ring::hmac::Key>,
}

impl SubjectHasher {
    /// A hasher from `[telemetry]`: visible subjects, a key from the environment, or a random key.
    pub fn new(config: &TelemetryConfig) -> Result<Self, String> {
        if config.subject_visible {
            return Ok(Self { key: None });
        }
        let key_bytes = match &config.subject_hash_key_env {
            Some(var) => std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set"))?
                .into_bytes(),
            None => {
                let mut random = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
                    .map_err(|_| "no randomness for the subject hash key".to_owned())?;
                random.to_vec()
            }
        };
        Ok(Self {
            key: Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes)),
        })
    }

    /// The label recorded for `subject`.
    pub fn label(&self, subject: &Subject) -> String {
        let Some(key) = &self.key else {
            return subject.expose().to_owned();
        };
        let tag = ring::hmac::sign(key, subject.expose().as_bytes());
        tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_hash_is_stable_keyed_and_hides_the_subject() {
        let config = TelemetryConfig::default();
        let hasher = SubjectHasher::new(&config).unwrap();
        let subject = Subject::new("s3cr3t-token");
        let label = hasher.label(&subject);
        assert_eq!(label.len(), 16);
        assert!(!label.contains("s3cr3t"));
        assert_eq!(label, hasher.label(&subject));
        let other = SubjectHasher::new(&config).unwrap();
        assert_ne!(
            label,
            other.label(&subject),
            "random keys differ per process"
        );
        let visible = TelemetryConfig {
            subject_visible: true,
            ..TelemetryConfig::default()
        };
        assert_eq!(
            SubjectHasher::new(&visible).unwrap().label(&subject),
            "s3cr3t-token"
        );
    }
}
