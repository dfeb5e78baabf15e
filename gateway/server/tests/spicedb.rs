//! The SpiceDB authorizer end to end: the real `portcullis` binary in front of a real
//! Prometheus, asking a real SpiceDB (`examples/spicedb/`: alice-token reads acme and globex,
//! bob-token reads initech).

mod support;

use http::StatusCode;
use portcullis_authorizer_spicedb::testing::SpiceDb;
use support::config::GatewayConfig;
use support::{Portcullis, Prometheus, enc, end, get, namespaces};

fn config(upstream: &str, spicedb: &SpiceDb) -> String {
    let authorizer = format!(
        "type = \"spicedb\"\n{}timeout = \"1s\"\nlookup = true",
        spicedb.config_toml()
    );
    GatewayConfig::new("prometheus", upstream)
        .tenant_also("multi = true\nwhen_missing = \"lookup\"")
        .authorizer(&authorizer)
        .render()
}

fn query(tenants: &str) -> String {
    format!(
        "/api/v1/query?{tenants}query={}&time={}",
        enc("sum by (namespace) (up)"),
        end()
    )
}

const ALICE: &[(&str, &str)] = &[("authorization", "Bearer alice-token")];
const BOB: &[(&str, &str)] = &[("authorization", "Bearer bob-token")];

async fn tenants_read(
    gw: &Portcullis,
    tenants: &str,
    who: &[(&str, &str)],
) -> (StatusCode, Vec<String>) {
    let answer = get(&gw.url(&query(tenants)), who).await.unwrap();
    let found = match answer.status {
        StatusCode::OK => namespaces(&answer.json()),
        _ => Vec::new(),
    };
    (answer.status, found)
}

#[tokio::test]
async fn spicedb_decides_and_the_gateway_enforces_exactly_that() {
    let spicedb = SpiceDb::start_with_example().await;
    let prometheus = Prometheus::start().await;
    let gw = Portcullis::start(&config(&prometheus.url(), &spicedb)).await;

    // One tenant: CheckPermission.
    assert_eq!(
        tenants_read(&gw, "tenant=acme&", ALICE).await,
        (StatusCode::OK, vec!["acme".into()])
    );
    assert_eq!(
        tenants_read(&gw, "tenant=acme&", BOB).await.0,
        StatusCode::FORBIDDEN
    );
    // Several: one bulk check, all must be allowed.
    let both = tenants_read(&gw, "tenant=acme&tenant=globex&", ALICE).await;
    assert_eq!(both, (StatusCode::OK, vec!["acme".into(), "globex".into()]));
    let with_third = tenants_read(&gw, "tenant=acme&tenant=globex&tenant=initech&", ALICE).await;
    assert_eq!(with_third.0, StatusCode::FORBIDDEN);
    // None named: the enforced set is what LookupResources returns.
    let looked_up = tenants_read(&gw, "", ALICE).await;
    assert_eq!(
        looked_up,
        (StatusCode::OK, vec!["acme".into(), "globex".into()])
    );
    assert_eq!(
        tenants_read(&gw, "", BOB).await,
        (StatusCode::OK, vec!["initech".into()])
    );
    let nobody = [("authorization", "Bearer nobody-token")];
    assert_eq!(
        tenants_read(&gw, "", &nobody).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn spicedb_down_is_503_and_the_gateway_recovers_without_a_restart() {
    let spicedb = SpiceDb::start_with_example().await;
    let prometheus = Prometheus::start().await;
    let gw = Portcullis::start(&config(&prometheus.url(), &spicedb)).await;
    // A tenant the cache has not seen, so every decision below goes to SpiceDB.
    assert_eq!(
        tenants_read(&gw, "tenant=initech&", BOB).await.0,
        StatusCode::OK
    );

    spicedb.kill();
    let answer = get(&gw.url(&query("tenant=acme&")), ALICE).await.unwrap();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text()
    );
    assert_eq!(answer.json()["errorType"], "unavailable");
    let ready = get(&format!("http://127.0.0.1:{}/readyz", gw.admin_port), &[])
        .await
        .unwrap();
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    spicedb.restart().await;
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = tenants_read(&gw, "tenant=acme&", ALICE).await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, StatusCode::OK, "no recovery within 10 s");
    assert!(
        !gw.logs().contains("alice-token"),
        "a token reached the log"
    );
    assert!(
        !gw.logs().contains(spicedb.preshared_key()),
        "the preshared key reached the log"
    );
}
