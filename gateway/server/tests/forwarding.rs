//! What exactly reaches the upstream: the real `portcullis` binary in front of a recording
//! upstream. Each edge case of the shared list that concerns forwarding is pinned here.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::StatusCode;
use support::config::{ALLOWLIST, GatewayConfig};
use support::recorder::Recorder;
use support::{Portcullis, enc, get, post_form, send};

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];

fn config(upstream: &str, tenant: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .server("max_body_bytes = 65536")
        .tenant(tenant)
        .render()
}

async fn stack(tenant: &str) -> (Recorder, Portcullis) {
    let recorder = Recorder::start().await;
    let portcullis = Portcullis::start(&config(&recorder.url, tenant)).await;
    (recorder, portcullis)
}

const PARAM: &str = "source = \"param\"\nname = \"tenant\"";

// C01: every copy of `query` is enforced, `time` survives the body rewrite, the tenant parameter
// and the caller's token are not forwarded, and Content-Length matches the new body.
#[tokio::test]
async fn c01_url_and_body_copies_of_query_are_both_enforced() {
    let (upstream, gw) = stack(PARAM).await;
    let answer = post_form(
        &gw.url("/api/v1/query?query=up&tenant=acme"),
        ACME,
        "query=foo&time=1700000000",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let got = upstream.only();
    assert_eq!(got.url_values("query"), ["up{namespace=\"acme\"}"]);
    assert_eq!(got.body_values("query"), ["foo{namespace=\"acme\"}"]);
    assert_eq!(got.body_values("time"), ["1700000000"]);
    assert!(got.url_values("tenant").is_empty() && got.body_values("tenant").is_empty());
    assert!(!got.headers.contains_key("authorization"));
    assert_eq!(
        got.headers["content-length"],
        got.body.len().to_string().as_str()
    );
    assert!(
        !answer.headers.contains_key("x-upstream-hop"),
        "hop-by-hop header relayed"
    );
}

// C02 and C03: a body match[] is enforced in the body, and no unenforced match[] remains; with
// none given the tenant selector is added.
#[tokio::test]
async fn c02_c03_series_selectors_are_enforced_where_they_are() {
    let (upstream, gw) = stack(PARAM).await;
    let answer = post_form(
        &gw.url("/api/v1/series?tenant=acme"),
        ACME,
        "match[]=up&start=1700000000&end=1700003600",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let got = upstream.only();
    assert_eq!(
        got.body_values("match[]"),
        ["{__name__=\"up\",namespace=\"acme\"}"]
    );
    assert!(got.url_values("match[]").is_empty());
    assert_eq!(got.body_values("start"), ["1700000000"]);
    upstream.clear();

    get(
        &gw.url("/api/v1/series?tenant=acme&start=1700000000&end=1700003600"),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(
        upstream.only().url_values("match[]"),
        ["{namespace=\"acme\"}"]
    );
}

// C04: label values, labels and federate: a missing match[] becomes the tenant selector, and
// several are each extended.
#[tokio::test]
async fn c04_label_endpoints_get_the_tenant_selector() {
    let (upstream, gw) = stack(PARAM).await;
    for path in [
        "/api/v1/label/namespace/values",
        "/api/v1/labels",
        "/federate",
    ] {
        upstream.clear();
        let answer = get(&gw.url(&format!("{path}?tenant=acme")), ACME)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            upstream.only().url_values("match[]"),
            ["{namespace=\"acme\"}"],
            "{path}"
        );
    }
    upstream.clear();
    let url = format!(
        "/api/v1/labels?tenant=acme&match[]={}&match[]=up",
        enc("{job=\"x\"}")
    );
    get(&gw.url(&url), ACME).await.unwrap();
    assert_eq!(
        upstream.only().url_values("match[]"),
        [
            "{job=\"x\",namespace=\"acme\"}",
            "{__name__=\"up\",namespace=\"acme\"}"
        ]
    );
}

// C16: a client-supplied copy of the tenant header never reaches the upstream, and a repeated
// or list-valued header is a 400 in single-tenant mode.
#[tokio::test]
async fn c16_tenant_header_is_not_smuggled() {
    let (upstream, gw) = stack("source = \"header\"\nname = \"X-Tenant\"").await;
    let url = gw.url("/api/v1/query?query=up");
    let smuggled = [
        ACME[0],
        ("x-tenant", "acme"),
        ("x-scope-orgid", "victim"),
        ("thanos-tenant", "victim"),
    ];
    let ok = get(&url, &smuggled).await.unwrap();
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let got = upstream.only();
    assert!(!got.headers.contains_key("x-tenant"));
    // Headers a multi-tenant backend would trust never travel from the client, with or without
    // a tenant_header enforcer on the route.
    assert!(!got.headers.contains_key("x-scope-orgid"));
    assert!(!got.headers.contains_key("thanos-tenant"));
    assert_eq!(got.url_values("query"), ["up{namespace=\"acme\"}"]);
    for headers in [
        vec![ACME[0], ("x-tenant", "acme"), ("x-tenant", "victim")],
        vec![ACME[0], ("x-tenant", "acme, victim")],
    ] {
        let answer = get(&url, &headers).await.unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{headers:?}");
    }
    assert_eq!(
        upstream.received().len(),
        1,
        "a rejected request was forwarded"
    );
}

// C19: a 5000-selector query is enforced in full, with a consistent Content-Length.
#[tokio::test]
async fn c19_a_very_long_query_is_fully_enforced() {
    let (upstream, gw) = stack(PARAM).await;
    let query = vec!["up"; 5000].join(" or ");
    let form = format!(
        "query={}&start=1700000000&end=1700003600&step=60&tenant=acme",
        enc(&query)
    );
    let answer = post_form(&gw.url("/api/v1/query_range"), ACME, &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let got = upstream.only();
    let forwarded = &got.body_values("query")[0];
    assert_eq!(forwarded.matches("up{namespace=\"acme\"}").count(), 5000);
    assert_eq!(forwarded.matches("up").count(), 5000);
    assert_eq!(got.body_values("step"), ["60"]);
    assert_eq!(
        got.headers["content-length"],
        got.body.len().to_string().as_str()
    );
}

// C22 and path tricks: nothing unknown is forwarded.
#[tokio::test]
async fn c22_unknown_and_non_canonical_paths_are_never_forwarded() {
    let (upstream, gw) = stack(PARAM).await;
    for path in [
        "/api/v1/status/tsdb",
        "/api/v1/metadata",
        "/api/v1/targets",
        "/api/v1/read",
        "/api/v1/status/config",
        "/api/v1/query/",
        "/api/v1//query",
        "/api/v1/./query",
        "/api/v1/%71uery",
        "/api/v1/label/%2e%2e/values",
        "/API/v1/query",
    ] {
        let answer = get(&gw.url(&format!("{path}?tenant=acme&query=up")), ACME)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.json()["errorType"], "not_found");
    }
    let wrong_method = send(
        http::Method::DELETE,
        &gw.url("/api/v1/query?tenant=acme&query=up"),
        ACME,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        upstream.received().is_empty(),
        "forwarded: {:?}",
        upstream.received()
    );

    // query_exemplars is enforced like query.
    get(
        &gw.url("/api/v1/query_exemplars?tenant=acme&query=test_exemplar_metric_total"),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(
        upstream.only().url_values("query"),
        ["test_exemplar_metric_total{namespace=\"acme\"}"]
    );
}

/// Method, path and query, extra headers, body, and the expected status.
type Malformed<'a> = (
    http::Method,
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a str,
    StatusCode,
);

// Malformed input of every kind is a clear 4xx and is not forwarded.
#[tokio::test]
async fn malformed_requests_are_rejected_before_forwarding() {
    let (upstream, gw) = stack(PARAM).await;
    let cases: Vec<Malformed> = vec![
        (
            http::Method::GET,
            "/api/v1/query?tenant=acme&query=up%zz",
            vec![],
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            http::Method::GET,
            "/api/v1/query?tenant=acme&query=up;x=1",
            vec![],
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            http::Method::GET,
            "/api/v1/query?tenant=acme&query=%ff",
            vec![],
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            http::Method::POST,
            "/api/v1/query?tenant=acme",
            vec![("content-type", "multipart/form-data; boundary=x")],
            "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nup\r\n--x--\r\n",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            http::Method::POST,
            "/api/v1/query?tenant=acme",
            vec![("content-type", "text/plain")],
            "query=up",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (method, path, mut headers, body, status) in cases {
        headers.push(ACME[0]);
        let answer = send(method, &gw.url(path), &headers, bytes::Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(answer.status, status, "{path} {body}: {}", answer.text());
        assert_eq!(answer.json()["status"], "error");
    }
    let huge = format!("tenant=acme&query={}", "a".repeat(70_000));
    let answer = post_form(&gw.url("/api/v1/query"), ACME, &huge).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let deep = format!(
        "tenant=acme&query={}",
        enc(&format!("{}up{}", "(".repeat(5_000), ")".repeat(5_000)))
    );
    let answer = post_form(&gw.url("/api/v1/query"), ACME, &deep).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(
        upstream.received().is_empty(),
        "forwarded: {:?}",
        upstream.received()
    );
    // The gateway is still serving.
    let fine = get(&gw.url("/api/v1/query?tenant=acme&query=up"), ACME)
        .await
        .unwrap();
    assert_eq!(fine.status, StatusCode::OK);
}

const ORG_ID: &str = "type = \"tenant_header\"\nheader = \"X-Scope-OrgID\"";

/// The `X-Scope-OrgID` each request of `requests` carried upstream, in order.
async fn org_ids(
    config: GatewayConfig,
    requests: &[(http::Method, &str, &str)],
) -> Vec<(String, Option<String>)> {
    let recorder = Recorder::start().await;
    let gw = Portcullis::start(&config.render().replace("{upstream}", &recorder.url)).await;
    for (method, path, body) in requests {
        let headers = [ACME[0], ("content-type", "application/json")];
        let bytes = bytes::Bytes::from(body.to_string());
        send(method.clone(), &gw.url(path), &headers, bytes)
            .await
            .unwrap();
    }
    recorder
        .received()
        .into_iter()
        .map(|r| {
            let org = r.headers.get("x-scope-orgid");
            let org = org.map(|v| v.to_str().unwrap().to_owned());
            (format!("{} {}", r.method, r.path), org)
        })
        .collect()
}

/// A tenant_header enforcer sets its header on every request of its route, endpoints whose
/// answer is scoped (rules, alerts, Alertmanager) included; on a route with no label enforcer
/// the backend scopes those by the header, so they are forwarded unfiltered.
#[tokio::test]
async fn the_tenant_header_is_set_on_every_endpoint_of_its_route() {
    use http::Method;
    let acme = Some("acme".to_owned());
    let prometheus = [
        (Method::GET, "/api/v1/query?tenant=acme&query=up", ""),
        (Method::GET, "/api/v1/rules?tenant=acme", ""),
        (Method::GET, "/api/v1/alerts?tenant=acme", ""),
    ];
    for config in [
        GatewayConfig::new("prometheus", "{upstream}").enforcer("org", ORG_ID),
        GatewayConfig::new("prometheus", "{upstream}")
            .only_enforcer("org", ORG_ID)
            .route("backend_scopes_tenants = true"),
    ] {
        let seen = org_ids(config, &prometheus).await;
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "GET /api/v1/query",
                "GET /api/v1/rules",
                "GET /api/v1/alerts"
            ]
        );
        assert!(seen.iter().all(|(_, org)| *org == acme), "{seen:?}");
    }

    let silence = r#"{"matchers":[{"name":"alertname","value":"x","isRegex":false}],
        "startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"t",
        "comment":"c"}"#;
    let alertmanager = [
        (Method::GET, "/api/v2/alerts?tenant=acme", ""),
        (Method::POST, "/api/v2/silences?tenant=acme", silence),
        (Method::GET, "/api/v2/silence/abc?tenant=acme", ""),
    ];
    let header_only = GatewayConfig::new("alertmanager", "{upstream}")
        .authorizer(&format!("{ALLOWLIST}\npermissions = [\"read\", \"write\"]"))
        .only_enforcer("org", ORG_ID)
        .route("backend_scopes_tenants = true");
    let seen = org_ids(header_only, &alertmanager).await;
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "GET /api/v2/alerts",
            "POST /api/v2/silences",
            "GET /api/v2/silence/abc"
        ]
    );
    assert!(seen.iter().all(|(_, org)| *org == acme), "{seen:?}");
}

/// An upstream that counts its connections and the requests it holds at once, and answers none
/// until released: what the gateway's `max_connections` bounds.
struct GatedUpstream {
    url: String,
    connections: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    most_held: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl GatedUpstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (release, released) = tokio::sync::watch::channel(false);
        let upstream = Self {
            url,
            connections: Arc::default(),
            held: Arc::default(),
            most_held: Arc::default(),
            release,
        };
        let (connections, held, most_held) = (
            Arc::clone(&upstream.connections),
            Arc::clone(&upstream.held),
            Arc::clone(&upstream.most_held),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (held, most_held) = (Arc::clone(&held), Arc::clone(&most_held));
                let released = released.clone();
                tokio::spawn(serve_gated(stream, held, most_held, released));
            }
        });
        upstream
    }
}

/// Answers each request of one keep-alive connection once the upstream is released.
async fn serve_gated(
    mut stream: tokio::net::TcpStream,
    held: Arc<AtomicUsize>,
    most_held: Arc<AtomicUsize>,
    mut released: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pending = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        // A GET has no body: a request ends at its blank line.
        while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buffer[..n]),
            }
        }
        let end = pending.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        pending.drain(..end);
        let now = held.fetch_add(1, Ordering::SeqCst) + 1;
        most_held.fetch_max(now, Ordering::SeqCst);
        if released.wait_for(|released| *released).await.is_err() {
            return;
        }
        held.fetch_sub(1, Ordering::SeqCst);
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

// An upstream gets at most `max_connections` requests at once, over as many connections; the
// others wait their turn and are answered.
#[tokio::test]
async fn requests_in_flight_to_an_upstream_are_bounded() {
    let upstream = GatedUpstream::start().await;
    let config = GatewayConfig::new("prometheus", &upstream.url)
        .upstream_also("max_connections = 2")
        .render();
    let gw = Portcullis::start(&config).await;
    let url = gw.url(&format!("/api/v1/query?tenant=acme&query={}", enc("up")));
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url, ACME).await.unwrap().status })
        })
        .collect();
    // Two requests arrive and are held; give the others every chance to arrive too.
    for _ in 0..200 {
        if upstream.held.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(upstream.held.load(Ordering::SeqCst), 2);
    upstream.release.send(true).unwrap();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(upstream.most_held.load(Ordering::SeqCst), 2);
    assert!(upstream.connections.load(Ordering::SeqCst) <= 2);
}
