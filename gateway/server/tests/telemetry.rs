//! Every decision traced in a real Jaeger, counted in `/metrics`, written to the audit log, and
//! the token nowhere: not in a span, a metric or a log line.

mod support;

use bytes::Bytes;
use http::StatusCode;
use support::config::GatewayConfig;
use support::jaeger::{Jaeger, Span};
use support::{Portcullis, Prometheus, enc, end, get, send};

const TOKEN: &str = "tok-3f9a1c77";

fn config(upstream: &str, otlp: &str) -> String {
    let authorizer = format!("type = \"allowlist\"\nsubjects = {{ \"{TOKEN}\" = [\"acme\"] }}");
    let telemetry = format!(
        "[telemetry]\notlp_endpoint = \"{otlp}\"\nservice_name = \"portcullis-test\"\n\n\
         [audit]\nallow_level = \"info\"\n"
    );
    GatewayConfig::new("prometheus", upstream)
        .authorizer(&authorizer)
        .extra(&telemetry)
        .render()
}

fn query(tenant: &str) -> String {
    format!(
        "/api/v1/query?tenant={tenant}&query={}&time={}",
        enc("sum(up)"),
        end()
    )
}

/// The span named `name`, or emitted by the gateway's step `step` (e.g. `upstream`).
fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let target = format!("portcullis::{name}");
    spans
        .iter()
        .find(|s| s.name == name || s.tag("target") == Some(target.as_str()))
        .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
}

fn assert_no_token(spans: &[Span]) {
    for span in spans {
        for (key, value) in &span.tags {
            assert!(
                !value.contains(TOKEN),
                "span {} tag {key} holds the token",
                span.name
            );
        }
    }
}

#[tokio::test]
async fn decisions_are_traced_in_jaeger_without_the_token() {
    let jaeger = Jaeger::start().await;
    let prometheus = Prometheus::start().await;
    let gw = Portcullis::start_with_env(
        &config(&prometheus.url(), &jaeger.otlp_endpoint()),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let bearer = format!("Bearer {TOKEN}");

    // An allowed request continuing the caller's trace.
    let allowed_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{allowed_trace}-00f067aa0ba902b7-01");
    let headers = [
        ("authorization", bearer.as_str()),
        ("traceparent", traceparent.as_str()),
    ];
    let answer = get(&gw.url(&query("acme")), &headers).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let spans = jaeger.trace(allowed_trace, 5).await;
    let request = by_name(&spans, "GET /api/v1/query");
    assert_eq!(
        request.parent_id.as_deref(),
        Some("00f067aa0ba902b7"),
        "continues the caller's span"
    );
    assert_eq!(request.tag("http.route"), Some("/api/v1/query"));
    assert_eq!(request.tag("http.response.status_code"), Some("200"));
    let authorize = by_name(&spans, "authorize");
    assert_eq!(
        authorize.parent_id.as_deref(),
        Some(request.span_id.as_str())
    );
    assert_eq!(authorize.tag("authz.decision"), Some("allow"));
    assert_eq!(authorize.tag("authz.name"), Some("demo"));
    assert_eq!(authorize.tag("authz.type"), Some("allowlist"));
    assert_eq!(authorize.tag("authz.permission"), Some("read"));
    assert_eq!(authorize.tag("tenant.requested"), Some("acme"));
    assert_eq!(authorize.tag("tenant.allowed"), Some("acme"));
    assert_eq!(authorize.tag("authz.cache_hit"), Some("false"));
    assert_eq!(
        authorize.tag("authz.subject").map(str::len),
        Some(16),
        "subject is a keyed hash"
    );
    let enforce = by_name(&spans, "enforce");
    assert_eq!(enforce.tag("enforce.label"), Some("namespace"));
    assert_eq!(enforce.tag("enforce.selectors_rewritten"), Some("1"));
    assert_eq!(
        enforce.tag("enforce.query.original"),
        None,
        "queries are off by default"
    );
    let upstream = by_name(&spans, "upstream");
    assert_eq!(upstream.tag("span.kind"), Some("client"));
    assert_eq!(upstream.tag("http.response.status_code"), Some("200"));
    assert!(spans.iter().any(|s| s.name == "authenticate"));
    assert_no_token(&spans);

    // A denied request: a deny decision with its reason, and no upstream span.
    let denied_trace = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{denied_trace}-b7ad6b7169203331-01");
    let headers = [
        ("authorization", bearer.as_str()),
        ("traceparent", traceparent.as_str()),
    ];
    let answer = get(&gw.url(&query("globex")), &headers).await.unwrap();
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let spans = jaeger.trace(denied_trace, 3).await;
    let authorize = by_name(&spans, "authorize");
    assert_eq!(authorize.tag("authz.decision"), Some("deny"));
    assert!(authorize.tag("authz.reason").is_some_and(|r| !r.is_empty()));
    assert_eq!(
        by_name(&spans, "GET /api/v1/query").tag("http.response.status_code"),
        Some("403")
    );
    assert!(
        spans.iter().all(|s| s.name != "upstream"),
        "a denied request reached upstream"
    );
    assert_no_token(&spans);

    // The audit log: one JSON line per decision, neither holding the token.
    let logs = gw.logs();
    assert!(!logs.contains(TOKEN), "the token reached the log");
    let audit: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.contains("authorization decision"))
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect();
    assert_eq!(audit.len(), 2, "{logs}");
    assert_eq!(audit[0]["authz.decision"], "allow");
    assert_eq!(audit[0]["trace_id"], allowed_trace);
    assert_eq!(audit[1]["authz.decision"], "deny");
    assert_eq!(audit[1]["tenant.requested"], "globex");
    assert_eq!(audit[1]["trace_id"], denied_trace);
}

#[tokio::test]
async fn metrics_count_a_known_sequence_of_requests() {
    let prometheus = Prometheus::start().await;
    // An unreachable collector never fails a request.
    let gw = Portcullis::start(&config(&prometheus.url(), "http://127.0.0.1:9")).await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    for _ in 0..2 {
        assert_eq!(
            get(&gw.url(&query("acme")), &auth).await.unwrap().status,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(&gw.url(&query("globex")), &auth).await.unwrap().status,
        StatusCode::FORBIDDEN
    );
    let unauthenticated = get(&gw.url(&query("acme")), &[]).await.unwrap();
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let unknown = get(&gw.url("/api/v1/status/tsdb"), &auth).await.unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // A method of the client's own invention, twice: one `_OTHER` label, never its text.
    for invented in ["SeCrEtTok3n1", "Another"] {
        let method = http::Method::from_bytes(invented.as_bytes()).unwrap();
        let answer = send(method, &gw.url(&query("acme")), &auth, Bytes::new())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    let metrics = get(&format!("http://127.0.0.1:{}/metrics", gw.admin_port), &[])
        .await
        .unwrap();
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text();
    for line in [
        "portcullis_requests_total{route=\"/api/v1/query\",method=\"GET\",status=\"200\"} 2",
        "portcullis_requests_total{route=\"/api/v1/query\",method=\"GET\",status=\"403\"} 1",
        "portcullis_requests_total{route=\"/api/v1/query\",method=\"GET\",status=\"401\"} 1",
        "portcullis_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "portcullis_requests_total{route=\"unmatched\",method=\"_OTHER\",status=\"405\"} 2",
        "portcullis_decisions_total{authorizer=\"demo\",decision=\"allow\"} 2",
        "portcullis_decisions_total{authorizer=\"demo\",decision=\"deny\"} 1",
        "portcullis_decision_cache_total{authorizer=\"demo\",result=\"miss\"} 3",
        "portcullis_authorize_seconds_count{name=\"demo\"} 3",
        "portcullis_enforce_seconds_count{name=\"/api/v1/query\"} 2",
        "portcullis_upstream_seconds_count{name=\"prometheus\"} 2",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains(TOKEN));
    assert!(!text.contains("SeCrEtTok3n1"));
    assert!(!gw.logs().contains(TOKEN), "the token reached the log");
}
