//! Prometheus metrics of the gateway itself, served as text on the admin listener's `/metrics`.
//!
//! Labels hold only bounded, non-secret values: route templates, status codes, configured names
//! and decision outcomes. Never a subject, a token or a tenant value.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The method as a label: a standard method by name, any other `_OTHER`. A client chooses the
/// method freely (`curl -X <anything>`), so its text would make a label set without bound and
/// could carry anything, a credential included.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("_OTHER", |known| known.as_str())
}

/// `route`, `method` and `status` of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template, or `unmatched`.
    pub route: String,
    /// The HTTP method, one of [`method_label`]'s.
    pub method: &'static str,
    /// The answered status code.
    pub status: u16,
}

/// `authorizer` and `decision` (`allow`, `deny`, `error`) of an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The configured authorizer name.
    pub authorizer: String,
    /// `allow`, `deny` or `error`.
    pub decision: &'static str,
}

/// A configured name (authorizer, upstream) or route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NameLabels {
    /// The name.
    pub name: String,
}

/// `authorizer` and `result` (`hit` or `miss`) of a decision-cache lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabels {
    /// The configured authorizer name.
    pub authorizer: String,
    /// `hit` or `miss`.
    pub result: &'static str,
}

#[derive(Clone)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        // 100 µs to ~26 s.
        Histogram::new(exponential_buckets(0.0001, 2.0, 19))
    }
}

/// Every metric the gateway records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    authorize_seconds: Family<NameLabels, Histogram, Buckets>,
    enforce_seconds: Family<NameLabels, Histogram, Buckets>,
    upstream_seconds: Family<NameLabels, Histogram, Buckets>,
}

impl Metrics {
    /// Registers every metric under the `portcullis_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests answered, by route, method and status",
            requests.clone(),
        );
        let decisions = Family::default();
        registry.register(
            "decisions",
            "Authorization decisions, by authorizer and outcome",
            decisions.clone(),
        );
        let cache = Family::default();
        registry.register(
            "decision_cache",
            "Decision cache lookups, by authorizer and result",
            cache.clone(),
        );
        let histogram = || Family::new_with_constructor(Buckets);
        let authorize_seconds = histogram();
        registry.register(
            "authorize_seconds",
            "Time spent in the authorizer, by authorizer",
            authorize_seconds.clone(),
        );
        let enforce_seconds = histogram();
        registry.register(
            "enforce_seconds",
            "Time spent enforcing queries, by route",
            enforce_seconds.clone(),
        );
        let upstream_seconds = histogram();
        registry.register(
            "upstream_seconds",
            "Time to the upstream's response headers, by upstream",
            upstream_seconds.clone(),
        );
        Self {
            registry,
            requests,
            decisions,
            cache,
            authorize_seconds,
            enforce_seconds,
            upstream_seconds,
        }
    }

    /// Counts an answered request.
    pub fn request(&self, route: &str, method: &http::Method, status: http::StatusCode) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method_label(method),
            status: status.as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Records an authorization: its outcome, duration and cache use.
    pub fn decision(
        &self,
        authorizer: &str,
        decision: &'static str,
        cache_hit: bool,
        took: Duration,
    ) {
        let authorizer = authorizer.to_owned();
        let labels = DecisionLabels {
            authorizer: authorizer.clone(),
            decision,
        };
        self.decisions.get_or_create(&labels).inc();
        let result = if cache_hit { "hit" } else { "miss" };
        if decision != "error" {
            self.cache
                .get_or_create(&CacheLabels {
                    authorizer: authorizer.clone(),
                    result,
                })
                .inc();
        }
        let name = NameLabels { name: authorizer };
        self.authorize_seconds
            .get_or_create(&name)
            .observe(took.as_secs_f64());
    }

    /// Records the time spent enforcing one request on `route`.
    pub fn enforced(&self, route: &str, took: Duration) {
        let name = NameLabels {
            name: route.to_owned(),
        };
        self.enforce_seconds
            .get_or_create(&name)
            .observe(took.as_secs_f64());
    }

    /// Records the time `upstream` took to answer.
    pub fn upstream(&self, upstream: &str, took: Duration) {
        let name = NameLabels {
            name: upstream.to_owned(),
        };
        self.upstream_seconds
            .get_or_create(&name)
            .observe(took.as_secs_f64());
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
