//! Prometheus's rules and alerts, which no query scopes: the real Prometheus evaluates rules for
//! three tenants, and Portcullis keeps only the allowed tenants' groups, rules and alerts.

mod support;

use std::time::Duration;

use http::StatusCode;
use support::config::GatewayConfig;
use support::{Portcullis, Prometheus, get};

const RULES: &str = r#"
groups:
  - name: acme
    rules:
      - alert: AcmeUp
        expr: up{namespace="acme"} == 1
        labels: { namespace: acme }
      - record: namespace:up:sum
        expr: sum by (namespace) (up{namespace="acme"})
        labels: { namespace: acme }
  - name: globex
    rules:
      - alert: GlobexUp
        expr: up{namespace="globex"} == 1
        labels: { namespace: globex }
  - name: shared
    rules:
      - alert: AnyUp
        expr: up == 1
"#;

fn config(upstream: &str) -> String {
    GatewayConfig::new("prometheus", upstream).render()
}

const ACME: &[(&str, &str)] = &[
    ("authorization", "Bearer acme-token"),
    ("accept-encoding", "gzip"),
];

fn names(items: &[serde_json::Value], key: &str) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn rules_and_alerts_hold_only_the_allowed_tenant() {
    let prometheus = Prometheus::start_with_rules(Some(RULES)).await;
    let gw = Portcullis::start(&config(&prometheus.url())).await;

    // Wait (bounded) until Prometheus has evaluated the rules and the alerts fire.
    let mut alerts = Vec::new();
    for _ in 0..100 {
        let answer = get(&gw.url("/api/v1/alerts?tenant=acme"), ACME)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(answer.headers.get("content-encoding").is_none());
        alerts = answer.json()["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if alerts.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // AcmeUp for acme's two pods, and AnyUp's alerts for acme's series: never another tenant's.
    assert!(!alerts.is_empty(), "no alert fired");
    for alert in &alerts {
        assert_eq!(alert["labels"]["namespace"], "acme", "{alert}");
    }

    let answer = get(&gw.url("/api/v1/rules?tenant=acme"), ACME)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let groups = answer.json()["data"]["groups"].as_array().cloned().unwrap();
    assert_eq!(names(&groups, "name"), ["acme"]);
    let rules = groups[0]["rules"].as_array().cloned().unwrap();
    assert_eq!(names(&rules, "name"), ["AcmeUp", "namespace:up:sum"]);
    for rule in &rules {
        for alert in rule["alerts"].as_array().into_iter().flatten() {
            assert_eq!(alert["labels"]["namespace"], "acme");
        }
    }

    let denied = get(&gw.url("/api/v1/rules?tenant=globex"), ACME)
        .await
        .unwrap();
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}
