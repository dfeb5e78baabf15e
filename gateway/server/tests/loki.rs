//! Loki routes: the real `portcullis` binary in front of a recording upstream speaking HTTP and
//! WebSocket (Loki is AGPL and cannot be installed here), asserting on exactly what it received.

mod support;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use support::config::GatewayConfig;
use support::recorder::Recorder;
use support::{Portcullis, enc, get, post_form};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];
const OPS: &[(&str, &str)] = &[("authorization", "Bearer ops-token")];

fn config(upstream: &str) -> String {
    GatewayConfig::new("loki", upstream)
        .tenant_also("multi = true")
        .enforcer(
            "org_id",
            "type = \"tenant_header\"\nheader = \"X-Scope-OrgID\"",
        )
        .render()
}

async fn stack() -> (Recorder, Portcullis) {
    let recorder = Recorder::start().await;
    let portcullis = Portcullis::start(&config(&recorder.url)).await;
    (recorder, portcullis)
}

/// What the upstream received as `param` (URL) for a GET of `path_and_query`.
async fn forwarded(
    upstream: &Recorder,
    gw: &Portcullis,
    path_and_query: &str,
    param: &str,
) -> Vec<String> {
    upstream.clear();
    let answer = get(&gw.url(path_and_query), ACME).await.unwrap();
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path_and_query}: {}",
        answer.text()
    );
    let got = upstream.only();
    assert_eq!(got.headers["x-scope-orgid"], "acme", "{path_and_query}");
    assert!(got.url_values("tenant").is_empty());
    got.url_values(param)
}

// C31: the metric operation, its parameter, range and grouping survive.
#[tokio::test]
async fn c31_queries_are_enforced_and_otherwise_untouched() {
    let (upstream, gw) = stack().await;
    let cases = [
        (
            r#"quantile_over_time(0.5,{app="foo"}[15s]) by (app)"#,
            r#"quantile_over_time(0.5,{app="foo", namespace="acme"}[15s]) by (app)"#,
        ),
        (
            r#"topk(25,(count_over_time({first="value"}[10h])))"#,
            r#"topk(25,(count_over_time({first="value", namespace="acme"}[10h])))"#,
        ),
        (
            r#"{app="web", namespace="victim"} |= "a{b}" | line_format "{{.msg}}""#,
            r#"{app="web", namespace="acme"} |= "a{b}" | line_format "{{.msg}}""#,
        ),
    ];
    for path in ["/loki/api/v1/query", "/loki/api/v1/query_range"] {
        for (query, expected) in cases {
            let url = format!("{path}?tenant=acme&query={}", enc(query));
            assert_eq!(
                forwarded(&upstream, &gw, &url, "query").await,
                [expected],
                "{path}"
            );
        }
    }
    upstream.clear();
    let answer = post_form(
        &gw.url("/loki/api/v1/query_range"),
        ACME,
        &format!("tenant=acme&query={}", enc(r#"{app="x"}"#)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        upstream.only().body_values("query"),
        [r#"{app="x", namespace="acme"}"#]
    );
}

// C30: label names and values get a stream selector when none is given, and a given one is
// extended.
#[tokio::test]
async fn c30_label_endpoints_get_the_tenant_selector() {
    let (upstream, gw) = stack().await;
    for path in ["/loki/api/v1/labels", "/loki/api/v1/label/namespace/values"] {
        let url = format!("{path}?tenant=acme");
        assert_eq!(
            forwarded(&upstream, &gw, &url, "query").await,
            [r#"{namespace="acme"}"#]
        );
        let url = format!("{path}?tenant=acme&query={}", enc(r#"{foo="bar"}"#));
        assert_eq!(
            forwarded(&upstream, &gw, &url, "query").await,
            [r#"{foo="bar", namespace="acme"}"#]
        );
    }
    for path in [
        "/loki/api/v1/index/stats",
        "/loki/api/v1/index/volume",
        "/loki/api/v1/index/volume_range",
    ] {
        let url = format!("{path}?tenant=acme&query={}", enc(r#"{job="x"}"#));
        assert_eq!(
            forwarded(&upstream, &gw, &url, "query").await,
            [r#"{job="x", namespace="acme"}"#],
            "{path}"
        );
    }
}

// Series: both spellings of the selector are enforced; a lone `{}` means all series and becomes
// the tenant selector; none given adds it.
#[tokio::test]
async fn series_selectors_in_both_spellings_are_enforced() {
    let (upstream, gw) = stack().await;
    upstream.clear();
    let url = format!(
        "/loki/api/v1/series?tenant=acme&match={}&match[]={}",
        enc(r#"{a="1"}"#),
        enc("{}")
    );
    let answer = get(&gw.url(&url), ACME).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let got = upstream.only();
    assert_eq!(got.url_values("match"), [r#"{a="1", namespace="acme"}"#]);
    assert_eq!(got.url_values("match[]"), [r#"{namespace="acme"}"#]);
    assert_eq!(
        forwarded(&upstream, &gw, "/loki/api/v1/series?tenant=acme", "match[]").await,
        [r#"{namespace="acme"}"#]
    );
}

// C16 for Loki: a client's X-Scope-OrgID never reaches the upstream; the allowed tenants do.
#[tokio::test]
async fn the_org_id_header_is_the_allowed_set_never_the_clients() {
    let (upstream, gw) = stack().await;
    let url = gw.url(&format!(
        "/loki/api/v1/query?tenant=acme&tenant=globex&query={}",
        enc(r#"{app="x"}"#)
    ));
    let headers = [OPS[0], ("x-scope-orgid", "victim|initech")];
    let answer = get(&url, &headers).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let got = upstream.only();
    assert_eq!(got.headers.get_all("x-scope-orgid").iter().count(), 1);
    assert_eq!(got.headers["x-scope-orgid"], "acme|globex");
    assert_eq!(
        got.url_values("query"),
        [r#"{app="x", namespace=~"acme|globex"}"#]
    );
}

#[tokio::test]
async fn tail_is_enforced_before_the_upgrade_and_frames_flow_both_ways() {
    let (upstream, gw) = stack().await;
    let url = format!(
        "ws://127.0.0.1:{}/loki/api/v1/tail?tenant=acme&query={}",
        gw.port,
        enc(r#"{app="x"} |= "err""#)
    );
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer acme-token".parse().unwrap());
    let connected = tokio_tungstenite::connect_async(request).await;
    let Ok((mut socket, response)) = connected else {
        panic!(
            "no upgrade: {connected:?}; upstream got {:?}",
            upstream.received()
        );
    };
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let greeting = socket.next().await.unwrap().unwrap();
    assert_eq!(greeting, Message::text("streams for the enforced query"));
    socket.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("echo: ping")
    );
    socket.close(None).await.unwrap();

    let got = upstream.only();
    assert_eq!(got.path, "/loki/api/v1/tail");
    assert_eq!(
        got.url_values("query"),
        [r#"{app="x", namespace="acme"} |= "err""#]
    );
    assert!(got.url_values("tenant").is_empty());
    assert!(!got.headers.contains_key("authorization"));
    assert_eq!(got.headers["x-scope-orgid"], "acme");
    upstream.clear();

    // Denied: no upgrade, a 403, nothing forwarded.
    let mut request = url
        .replace("tenant=acme", "tenant=initech")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer acme-token".parse().unwrap());
    let Err(tokio_tungstenite::tungstenite::Error::Http(denied)) =
        tokio_tungstenite::connect_async(request).await
    else {
        panic!("a denied tail was upgraded");
    };
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    // A plain GET is not a tail.
    let plain = get(
        &gw.url(&format!(
            "/loki/api/v1/tail?tenant=acme&query={}",
            enc(r#"{app="x"}"#)
        )),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    assert!(
        upstream.received().is_empty(),
        "forwarded: {:?}",
        upstream.received()
    );
}

/// A WebSocket is not bound by CORS: any site's page can open one to the gateway with the
/// browser's cookies and read every frame. Behind an authenticating proxy that identifies callers
/// by a cookie, that page would read the victim's logs. A browser's upgrade from another origin
/// is refused before anything is forwarded; the gateway's own origin, and clients that are not
/// browsers (no `Origin`), are served.
#[tokio::test]
async fn a_tail_opened_from_another_sites_page_is_refused() {
    let (upstream, gw) = stack().await;
    let url = format!(
        "ws://127.0.0.1:{}/loki/api/v1/tail?tenant=acme&query={}",
        gw.port,
        enc(r#"{app="x"}"#)
    );
    let tail = |origin: Option<String>| {
        let mut request = url.clone().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("authorization", "Bearer acme-token".parse().unwrap());
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    for origin in [
        "https://evil.example".to_owned(),
        format!("http://127.0.0.1.evil.example:{}", gw.port),
        format!("http://127.0.0.1:{}", gw.port + 1),
        "http://127.0.0.1".to_owned(),
        "null".to_owned(),
    ] {
        let Err(tokio_tungstenite::tungstenite::Error::Http(refused)) =
            tail(Some(origin.clone())).await
        else {
            panic!("{origin}: a cross-site tail was upgraded");
        };
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    assert!(
        upstream.received().is_empty(),
        "forwarded: {:?}",
        upstream.received()
    );
    for origin in [None, Some(format!("http://127.0.0.1:{}", gw.port))] {
        let (mut socket, _) = tail(origin.clone())
            .await
            .unwrap_or_else(|err| panic!("{origin:?}: {err}"));
        let greeting = socket.next().await.unwrap().unwrap();
        assert_eq!(greeting, Message::text("streams for the enforced query"));
        socket.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn other_loki_paths_are_not_served() {
    let (upstream, gw) = stack().await;
    for path in [
        "/loki/api/v1/push",
        "/loki/api/v1/patterns",
        "/loki/api/v1/detected_fields",
        "/loki/api/v1/query/",
        "/loki/api/v1//query",
        "/loki/api/v1/%71uery",
        "/api/v1/query",
    ] {
        let answer = get(
            &gw.url(&format!("{path}?tenant=acme&query={}", enc("{a=\"b\"}"))),
            ACME,
        )
        .await
        .unwrap();
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let bad = get(
        &gw.url(&format!(
            "/loki/api/v1/query?tenant=acme&query={}",
            enc(r#"{"a.b"="c"}"#)
        )),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "quoted label names are refused"
    );
    assert!(upstream.received().is_empty());
}
