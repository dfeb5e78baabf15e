//! End to end against a real Prometheus holding three tenants (acme, globex, initech): the real
//! `portcullis` binary in front, driven over HTTP.

mod support;

use http::StatusCode;
use support::config::GatewayConfig;
use support::{Portcullis, Prometheus, enc, end, get, namespaces, post_form};

fn config(upstream: &str, tenant_extra: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .tenant_also(tenant_extra)
        .route(r#"passthrough = ["/api/v1/status/buildinfo"]"#)
        .render()
}

async fn stack(tenant_extra: &str) -> (Prometheus, Portcullis) {
    let prometheus = Prometheus::start().await;
    let portcullis = Portcullis::start(&config(&prometheus.url(), tenant_extra)).await;
    (prometheus, portcullis)
}

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];
const OPS: &[(&str, &str)] = &[("authorization", "Bearer ops-token")];

fn instant(query: &str) -> String {
    let end = end();
    format!("query={}&time={end}", enc(query))
}

fn range(query: &str) -> String {
    let end = end();
    format!("query={}&start={}&end={end}&step=60", enc(query), end - 600)
}

/// The tenants in the answer to a GET and to the same POST.
async fn both_ways(
    gw: &Portcullis,
    path: &str,
    params: &str,
    who: &[(&str, &str)],
) -> Vec<Vec<String>> {
    let by_get = get(&gw.url(&format!("{path}?{params}")), who)
        .await
        .unwrap();
    assert_eq!(
        by_get.status,
        StatusCode::OK,
        "GET {path}: {}",
        by_get.text()
    );
    let by_post = post_form(&gw.url(path), who, params).await;
    assert_eq!(
        by_post.status,
        StatusCode::OK,
        "POST {path}: {}",
        by_post.text()
    );
    vec![namespaces(&by_get.json()), namespaces(&by_post.json())]
}

#[tokio::test]
async fn an_allowed_caller_reads_only_its_tenant_on_every_endpoint() {
    let end = end();
    let (_prometheus, gw) = stack("").await;
    let acme = vec![vec!["acme".to_owned()]; 2];

    let query = format!("tenant=acme&{}", instant("http_requests_total"));
    assert_eq!(both_ways(&gw, "/api/v1/query", &query, ACME).await, acme);
    let sum = format!(
        "tenant=acme&{}",
        instant("sum by (namespace) (rate(http_requests_total[5m]))")
    );
    assert_eq!(both_ways(&gw, "/api/v1/query", &sum, ACME).await, acme);
    let query_range = format!("tenant=acme&{}", range("up"));
    assert_eq!(
        both_ways(&gw, "/api/v1/query_range", &query_range, ACME).await,
        acme
    );
    let series = format!("tenant=acme&match[]=up&start={}&end={end}", end - 600);
    assert_eq!(both_ways(&gw, "/api/v1/series", &series, ACME).await, acme);
    let all_series = format!("tenant=acme&start={}&end={end}", end - 600);
    assert_eq!(
        both_ways(&gw, "/api/v1/series", &all_series, ACME).await,
        acme
    );

    let values = |label: &str| {
        format!(
            "/api/v1/label/{label}/values?tenant=acme&start={}&end={end}",
            end - 7200
        )
    };
    let answer = get(&gw.url(&values("namespace")), ACME)
        .await
        .unwrap()
        .json();
    assert_eq!(answer["data"], serde_json::json!(["acme"]));
    let answer = get(&gw.url(&values("version")), ACME).await.unwrap().json();
    assert_eq!(answer["data"], serde_json::json!(["1.1"]));
    let by_post = post_form(
        &gw.url("/api/v1/label/version/values"),
        ACME,
        &format!("tenant=acme&start={}&end={end}", end - 7200),
    )
    .await;
    // Prometheus serves label values by GET only; so does Portcullis.
    assert_eq!(by_post.status, StatusCode::METHOD_NOT_ALLOWED);

    let labels = get(
        &gw.url(&format!(
            "/api/v1/labels?tenant=acme&match[]=build_info&start={}&end={end}",
            end - 7200
        )),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(labels.status, StatusCode::OK);
    let names = labels.json()["data"].clone();
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("version")),
        "{names}"
    );
    assert!(
        !names
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("code")),
        "{names}"
    );
}

#[tokio::test]
async fn federate_returns_only_the_allowed_tenant() {
    let (_prometheus, gw) = stack("").await;
    // Federation evaluates at the current time; the demo data ends now.
    let url = gw.url("/federate?tenant=acme&match[]=up&match[]={job%3D%22api%22}");
    let answer = get(&url, ACME).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let text = answer.text();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(!samples.is_empty(), "federate returned no sample");
    for line in samples {
        assert!(line.contains("namespace=\"acme\""), "{line}");
    }
}

#[tokio::test]
async fn a_caller_allowed_two_tenants_gets_both_and_never_a_third() {
    let (_prometheus, gw) = stack("multi = true").await;
    let both = vec!["acme".to_owned(), "globex".to_owned()];

    let params = format!(
        "tenant=acme&tenant=globex&{}",
        instant("sum by (namespace) (up)")
    );
    assert_eq!(
        both_ways(&gw, "/api/v1/query", &params, OPS).await,
        vec![both.clone(); 2]
    );
    // The caller's own matcher on the tenant label is replaced, not trusted.
    let sneaky = format!(
        "tenant=acme&tenant=globex&{}",
        instant("up{namespace=\"initech\"} or up{namespace=~\".+\"}")
    );
    assert_eq!(
        both_ways(&gw, "/api/v1/query", &sneaky, OPS).await,
        vec![both.clone(); 2]
    );
    // No tenant named and `when_missing` left at reject: 400, never "everything".
    let none = get(&gw.url(&format!("/api/v1/query?{}", instant("up"))), OPS)
        .await
        .unwrap();
    assert_eq!(none.status, StatusCode::BAD_REQUEST);

    let third = format!(
        "/api/v1/query?tenant=acme&tenant=globex&tenant=initech&{}",
        instant("up")
    );
    let answer = get(&gw.url(&third), OPS).await.unwrap();
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["errorType"], "forbidden");
}

/// Path and query, headers, and the expected status and `errorType`.
type Refused<'a> = (String, Vec<(&'a str, &'a str)>, StatusCode, &'a str);

#[tokio::test]
async fn denied_unauthenticated_and_bad_requests_get_prometheus_style_errors() {
    let (_prometheus, gw) = stack("").await;
    let cases: Vec<Refused> = vec![
        (
            format!("/api/v1/query?tenant=globex&{}", instant("up")),
            ACME.to_vec(),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            format!("/api/v1/query?tenant=acme&{}", instant("up")),
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            format!("/api/v1/query?tenant=acme&{}", instant("up")),
            vec![("authorization", "Bearer nobody")],
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            format!("/api/v1/query?tenant=acme&{}", instant("up +")),
            ACME.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query?tenant=acme".to_owned(),
            ACME.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query?tenant=acme&query=".to_owned(),
            ACME.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            format!("/api/v1/query?{}", instant("up")),
            ACME.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/status/tsdb?tenant=acme".to_owned(),
            ACME.to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/query/?tenant=acme&query=up".to_owned(),
            ACME.to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/%71uery?tenant=acme&query=up".to_owned(),
            ACME.to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (path, headers, status, error_type) in cases {
        let answer = get(&gw.url(&path), &headers).await.unwrap();
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert_eq!(answer.headers["content-type"], "application/json", "{path}");
        let body = answer.json();
        assert_eq!(body["status"], "error", "{path}");
        assert_eq!(body["errorType"], error_type, "{path}");
        assert!(!answer.text().contains("acme-token"), "{path}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(answer.headers.contains_key("www-authenticate"));
        }
    }
    let parse_error = get(
        &gw.url(&format!("/api/v1/query?tenant=acme&{}", instant("up +"))),
        ACME,
    )
    .await
    .unwrap();
    let message = parse_error.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("invalid parameter \"query\": "),
        "{message}"
    );

    let passthrough = get(&gw.url("/api/v1/status/buildinfo"), ACME)
        .await
        .unwrap();
    assert_eq!(passthrough.status, StatusCode::OK, "{}", passthrough.text());
    assert!(!gw.logs().contains("acme-token"), "a token reached the log");
}

// Edge cases C01 and C02 on real data: Prometheus evaluates the body copy of a POST; it must be
// enforced too. Without enforcement these queries would return all three tenants.
#[tokio::test]
async fn post_bodies_are_enforced_where_prometheus_reads_them() {
    let end = end();
    let (_prometheus, gw) = stack("").await;
    let url = gw.url(&format!(
        "/api/v1/query?tenant=acme&query=build_info&time={end}"
    ));
    let answer = post_form(&url, ACME, &instant("http_requests_total")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(namespaces(&body), ["acme"]);
    assert_eq!(
        body["data"]["result"][0]["metric"]["__name__"],
        "http_requests_total"
    );

    let series = post_form(
        &gw.url("/api/v1/series"),
        ACME,
        &format!("match[]=up&start={}&end={end}&tenant=acme", end - 600),
    )
    .await;
    assert_eq!(namespaces(&series.json()), ["acme"]);

    // Edge case C13: a GET's form body is not a query.
    let get_with_body = support::send(
        http::Method::GET,
        &gw.url("/api/v1/query?tenant=acme"),
        &[
            ("authorization", "Bearer acme-token"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        bytes::Bytes::from_static(b"query=up{namespace=\"victim\"}"),
    )
    .await
    .unwrap();
    assert_eq!(get_with_body.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn conflicting_tenant_copies_are_rejected_in_single_tenant_mode() {
    let (_prometheus, gw) = stack("").await;
    let url = gw.url("/api/v1/query?tenant=acme");
    let answer = post_form(&url, ACME, &format!("tenant=globex&{}", instant("up"))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let answer = get(
        &gw.url(&format!(
            "/api/v1/query?tenant=acme&tenant=acme&{}",
            instant("up")
        )),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_stopped_prometheus_is_502_and_readiness_fails() {
    let (mut prometheus, gw) = stack("").await;
    let admin = format!("http://127.0.0.1:{}/readyz", gw.admin_port);
    assert_eq!(get(&admin, &[]).await.unwrap().status, StatusCode::OK);
    prometheus.process.kill();
    let answer = get(
        &gw.url(&format!("/api/v1/query?tenant=acme&{}", instant("up"))),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer.json()["errorType"], "unavailable");
    assert_eq!(
        get(&admin, &[]).await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
