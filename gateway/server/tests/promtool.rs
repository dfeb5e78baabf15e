//! A real Prometheus client through Portcullis: a current `promtool` (built with `go install`,
//! since Debian's cannot send a bearer token) queries a real Prometheus via the gateway.

mod support;

use std::process::Command;

use support::config::GatewayConfig;
use support::{Portcullis, Prometheus, end, go_bin, tool};

/// promtool cannot add a query parameter: the caller's tenants come from the authorizer.
fn config(upstream: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .tenant_also(r#"when_missing = "lookup""#)
        .render()
}

fn promtool(args: &[&str], http_config: &std::path::Path) -> String {
    let output = Command::new(tool("promtool", "PROMTOOL_CLIENT_BIN", &go_bin()))
        .args(["query"])
        .args(args)
        .arg(format!("--http.config.file={}", http_config.display()))
        .output()
        .expect("promtool runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool {args:?} failed: {stderr}"
    );
    stdout
}

fn assert_only_acme(output: &str) {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no result: {output}");
    for line in lines {
        assert!(line.contains("namespace=\"acme\""), "{line}");
    }
}

#[tokio::test]
async fn promtool_queries_through_portcullis_with_a_bearer_token() {
    let prometheus = Prometheus::start().await;
    let gw = Portcullis::start(&config(&prometheus.url())).await;
    let dir = tempfile::tempdir().unwrap();
    let http_config = dir.path().join("http.yml");
    std::fs::write(
        &http_config,
        "authorization:\n  type: Bearer\n  credentials: acme-token\n",
    )
    .unwrap();
    let server = gw.url("");
    let (start, end) = ((end() - 600).to_string(), end().to_string());

    let instant = promtool(&["instant", "--time", &end, &server, "up"], &http_config);
    assert_only_acme(&instant);
    assert_eq!(instant.lines().count(), 2, "{instant}");

    let range = promtool(
        &[
            "range",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "1m",
            &server,
            "sum by (namespace) (up)",
        ],
        &http_config,
    );
    assert!(
        range.contains("acme") && !range.contains("globex") && !range.contains("initech"),
        "{range}"
    );

    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        wrong.path(),
        "authorization:\n  type: Bearer\n  credentials: nobody\n",
    )
    .unwrap();
    let denied = Command::new(tool("promtool", "PROMTOOL_CLIENT_BIN", &go_bin()))
        .args(["query", "instant", &server, "up"])
        .arg(format!("--http.config.file={}", wrong.path().display()))
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("forbidden"),
        "{denied:?}"
    );
}
