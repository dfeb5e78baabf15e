//! Alertmanager's alerts and silences through Portcullis, against a real Alertmanager: reads are
//! filtered to the caller's tenant, silences are created, changed and expired only for it, and
//! changing state needs the write permission.

mod support;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::alertmanager::Alertmanager;
use support::config::{ALLOWLIST, GatewayConfig};
use support::{Portcullis, get, send};

fn config(upstream: &str, permissions: &str) -> String {
    let authorizer = format!("{ALLOWLIST}\npermissions = {permissions}");
    GatewayConfig::new("alertmanager", upstream)
        .authorizer(&authorizer)
        .render()
}

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];

async fn json_send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> support::Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(method, url, &all, Bytes::from(body.to_string()))
        .await
        .unwrap()
}

fn silence(namespace: &str) -> Value {
    json!({
        "matchers": [
            {"name": "alertname", "value": "Down", "isRegex": false, "isEqual": true},
            {"name": "namespace", "value": namespace, "isRegex": false, "isEqual": true}
        ],
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "test",
        "comment": "maintenance"
    })
}

fn namespaces_of(alerts: &Value) -> Vec<String> {
    let mut found: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["labels"]["namespace"]
                .as_str()
                .unwrap_or("<none>")
                .to_owned()
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn alerts_and_silences_are_scoped_to_the_callers_tenant() {
    let am = Alertmanager::start().await;
    let gw = Portcullis::start(&config(&am.url(), r#"["read", "write"]"#)).await;
    let alerts = json!([
        {"labels": {"alertname": "Down", "namespace": "acme"}},
        {"labels": {"alertname": "Down", "namespace": "globex"}},
        {"labels": {"alertname": "Down"}}
    ]);
    let posted = json_send(
        Method::POST,
        &format!("{}/api/v2/alerts", am.url()),
        &[],
        &alerts,
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text());

    // Reads: only acme's alerts, whatever filter the caller adds.
    let answer = get(&gw.url("/api/v2/alerts?tenant=acme"), ACME)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(namespaces_of(&answer.json()), ["acme"]);
    let sneaky = get(
        &gw.url("/api/v2/alerts?tenant=acme&filter=namespace%3D%22globex%22"),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(namespaces_of(&sneaky.json()), Vec::<String>::new());
    let groups = get(&gw.url("/api/v2/alerts/groups?tenant=acme"), ACME)
        .await
        .unwrap()
        .json();
    let grouped: Vec<String> = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| namespaces_of(&g["alerts"]))
        .collect();
    assert_eq!(grouped, ["acme"]);

    // A silence posted for acme gets acme's matcher, whatever the caller wrote.
    let created = json_send(
        Method::POST,
        &gw.url("/api/v2/silences?tenant=acme"),
        ACME,
        &silence("globex"),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let acme_id = created.json()["silenceID"].as_str().unwrap().to_owned();
    let direct = get(&format!("{}/api/v2/silence/{acme_id}", am.url()), &[])
        .await
        .unwrap()
        .json();
    let namespace: Vec<&Value> = direct["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "namespace")
        .collect();
    assert_eq!(
        namespace,
        [&json!({"name": "namespace", "value": "acme", "isRegex": false, "isEqual": true})]
    );

    // Another tenant's silence, made directly: invisible, and neither changed nor expired.
    let other = json_send(
        Method::POST,
        &format!("{}/api/v2/silences", am.url()),
        &[],
        &silence("globex"),
    )
    .await;
    let globex_id = other.json()["silenceID"].as_str().unwrap().to_owned();
    let listed = get(&gw.url("/api/v2/silences?tenant=acme"), ACME)
        .await
        .unwrap()
        .json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [acme_id.as_str()]);
    let peek = get(
        &gw.url(&format!("/api/v2/silence/{globex_id}?tenant=acme")),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(peek.status, StatusCode::FORBIDDEN);
    let mut takeover = silence("acme");
    takeover["id"] = json!(globex_id);
    let update = json_send(
        Method::POST,
        &gw.url("/api/v2/silences?tenant=acme"),
        ACME,
        &takeover,
    )
    .await;
    assert_eq!(update.status, StatusCode::FORBIDDEN, "{}", update.text());
    let expire = send(
        Method::DELETE,
        &gw.url(&format!("/api/v2/silence/{globex_id}?tenant=acme")),
        ACME,
        Bytes::new(),
    )
    .await
    .unwrap();
    assert_eq!(expire.status, StatusCode::FORBIDDEN);
    let missing = send(
        Method::DELETE,
        &gw.url("/api/v2/silence/00000000-0000-0000-0000-000000000000?tenant=acme"),
        ACME,
        Bytes::new(),
    )
    .await
    .unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let globex_state = get(&format!("{}/api/v2/silence/{globex_id}", am.url()), &[])
        .await
        .unwrap()
        .json();
    assert_eq!(globex_state["status"]["state"], "active");

    // Its own silence: read and expired.
    let own = get(
        &gw.url(&format!("/api/v2/silence/{acme_id}?tenant=acme")),
        ACME,
    )
    .await
    .unwrap();
    assert_eq!(own.status, StatusCode::OK);
    let expire = send(
        Method::DELETE,
        &gw.url(&format!("/api/v2/silence/{acme_id}?tenant=acme")),
        ACME,
        Bytes::new(),
    )
    .await
    .unwrap();
    assert_eq!(expire.status, StatusCode::OK, "{}", expire.text());
    let acme_state = get(&format!("{}/api/v2/silence/{acme_id}", am.url()), &[])
        .await
        .unwrap()
        .json();
    assert_eq!(acme_state["status"]["state"], "expired");

    // Not tenant-scoped: not served.
    for path in ["/api/v2/status", "/api/v2/receivers"] {
        assert_eq!(
            get(&gw.url(&format!("{path}?tenant=acme")), ACME)
                .await
                .unwrap()
                .status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn changing_silences_needs_the_write_permission() {
    let am = Alertmanager::start().await;
    let gw = Portcullis::start(&config(&am.url(), r#"["read"]"#)).await;
    let created = json_send(
        Method::POST,
        &gw.url("/api/v2/silences?tenant=acme"),
        ACME,
        &silence("acme"),
    )
    .await;
    assert_eq!(created.status, StatusCode::FORBIDDEN);
    let listed = get(&gw.url("/api/v2/silences?tenant=acme"), ACME)
        .await
        .unwrap();
    assert_eq!(listed.status, StatusCode::OK);
    let direct = get(&format!("{}/api/v2/silences", am.url()), &[])
        .await
        .unwrap()
        .json();
    assert_eq!(direct, json!([]), "a denied silence reached Alertmanager");
}

/// Alertmanager reads JSON keys as Go does (case folded, `ſ` as `s`, the last spelling winning):
/// a key the gateway did not read could override the matchers it enforced or the id it checked.
/// Every such silence is a 400, and Alertmanager never sees it.
#[tokio::test]
async fn silence_keys_alertmanager_would_fold_are_refused() {
    let am = Alertmanager::start().await;
    let gw = Portcullis::start(&config(&am.url(), r#"["read", "write"]"#)).await;
    let other = json_send(
        Method::POST,
        &format!("{}/api/v2/silences", am.url()),
        &[],
        &silence("globex"),
    )
    .await;
    let globex_id = other.json()["silenceID"].as_str().unwrap().to_owned();

    let times = r#""startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"t","comment":"c""#;
    let decoy = r#""matchers":[{"name":"alertname","value":"decoy","isRegex":false}]"#;
    let globex = r#"[{"name":"namespace","value":"globex","isRegex":false,"isEqual":true},{"name":"alertname","value":".+","isRegex":true}]"#;
    let bodies = [
        format!(r#"{{{decoy},"matcherſ":{globex},{times}}}"#),
        format!(r#"{{{decoy},"MATCHERS":{globex},{times}}}"#),
        format!(r#"{{{decoy},"iD":"{globex_id}",{times}}}"#),
        format!(r#"{{"id":null,"ID":"{globex_id}",{decoy},{times}}}"#),
    ];
    for body in bodies {
        let answer = send(
            Method::POST,
            &gw.url("/api/v2/silences?tenant=acme"),
            &[ACME[0], ("content-type", "application/json")],
            Bytes::from(body.clone()),
        )
        .await
        .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["errorType"], "bad_data");
    }

    let all = get(&format!("{}/api/v2/silences", am.url()), &[])
        .await
        .unwrap()
        .json();
    let silences = all.as_array().unwrap();
    assert_eq!(silences.len(), 1, "only globex's own silence: {all}");
    assert_eq!(silences[0]["id"], globex_id.as_str());
    assert_eq!(silences[0]["status"]["state"], "active");
}

/// Alertmanager behind a compressing front (a proxy, or Mimir's): the silence the gateway looks
/// up before reading or expiring one comes back gzip-compressed whenever the request accepts it.
async fn compressing_alertmanager() -> (String, tokio::task::JoinHandle<()>) {
    use std::io::Write;

    let silence = json!({
        "id": "acme-silence",
        "matchers": [{"name": "namespace", "value": "acme", "isRegex": false, "isEqual": true}],
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "t", "comment": "c", "status": {"state": "active"}
    })
    .to_string();
    let answer = move |headers: http::HeaderMap| {
        let silence = silence.clone();
        async move {
            let gzip = headers
                .get_all("accept-encoding")
                .iter()
                .any(|v| v.to_str().unwrap_or_default().contains("gzip"));
            if !gzip {
                return ([("content-encoding", "identity")], silence.into_bytes());
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(silence.as_bytes()).unwrap();
            ([("content-encoding", "gzip")], gz.finish().unwrap())
        }
    };
    let app = axum::Router::new().route(
        "/api/v2/silence/{id}",
        axum::routing::get(answer).delete(|| async { "" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// The lookup of a silence's owner carried the caller's `Accept-Encoding`: a client that
/// accepts gzip (Go's HTTP client, curl --compressed, every browser) had its own silence
/// answered 502, unreadable to the gateway. The lookup reads gzip itself.
#[tokio::test]
async fn a_compressed_silence_lookup_is_read() {
    let (url, task) = compressing_alertmanager().await;
    let gw = Portcullis::start(&config(&url, r#"["read", "write"]"#)).await;
    for accept in ["gzip", "identity", "gzip, deflate, br"] {
        let headers = [ACME[0], ("accept-encoding", accept)];
        let path = "/api/v2/silence/acme-silence?tenant=acme";
        let read = get(&gw.url(path), &headers).await.unwrap();
        assert_eq!(read.status, StatusCode::OK, "{accept}: {}", read.text());
        let expired = send(Method::DELETE, &gw.url(path), &headers, Bytes::new())
            .await
            .unwrap();
        assert_eq!(
            expired.status,
            StatusCode::OK,
            "{accept}: {}",
            expired.text()
        );
        // Read as globex's, by a caller allowed globex: the silence is acme's.
        let ops = [
            ("authorization", "Bearer ops-token"),
            ("accept-encoding", accept),
        ];
        let theirs = get(&gw.url("/api/v2/silence/acme-silence?tenant=globex"), &ops)
            .await
            .unwrap();
        assert_eq!(theirs.status, StatusCode::FORBIDDEN, "{accept}");
    }
    task.abort();
}
