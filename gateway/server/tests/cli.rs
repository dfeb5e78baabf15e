//! The command line: `check-config` on every shipped configuration and on broken ones, and
//! `enforce promql`.

mod support;

use std::process::Command;

use support::repo_root;

fn portcullis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("PORTCULLIS_SPICEDB_KEY", "example-key")
        .output()
        .expect("portcullis runs")
}

#[test]
fn every_example_configuration_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("portcullis.toml");
        // The custom authorizer's configuration needs its own binary, which checks it.
        if !file.is_file() || dir.ends_with("custom-authorizer") {
            continue;
        }
        let output = portcullis(&["check-config", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", file.display());
        checked += 1;
    }
    assert!(checked >= 2, "found only {checked} example configurations");
}

#[test]
fn check_config_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let quickstart =
        std::fs::read_to_string(repo_root().join("examples/quickstart/portcullis.toml"));
    let broken = quickstart
        .unwrap()
        .replace("upstream = \"prometheus\"", "upstream = \"nowhere\"")
        .replace(
            "enforcers = [\"namespace\"]",
            "enforcers = [\"namespace\", \"missing\"]",
        )
        .replace("label = \"namespace\"", "label = \"\"");
    std::fs::write(&file, broken).unwrap();
    let output = portcullis(&["check-config", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "routes[0].upstream",
        "routes[0].enforcers[1]",
        "enforcers.namespace",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 3, "{stderr}");
    assert!(lines.iter().all(|l| l.contains("bad.toml:")), "{stderr}");
}

/// A passthrough path is forwarded unenforced, and Prometheus decodes and cleans a path before
/// routing it: any spelling that could reach an enforced endpoint there is refused at load.
#[test]
fn passthrough_paths_must_be_canonical_and_unenforced() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart =
        std::fs::read_to_string(repo_root().join("examples/quickstart/portcullis.toml")).unwrap();
    let refused = [
        "/api/v1/%71uery",
        "/api//v1/query",
        "/api/v1/query/",
        "/api/v1/label/../query",
        "/api/v1/./query",
        "/api/v1/query?x=1",
        "/api/v1/query#x",
        "api/v1/status/buildinfo",
        "/api/v1/query",
        "/api/v1/label/job/values",
        "/",
    ];
    for path in refused {
        let file = dir.path().join("passthrough.toml");
        let config = quickstart.replace(
            "passthrough = [\"/api/v1/status/buildinfo\"]",
            &format!("passthrough = [{path:?}]"),
        );
        assert_ne!(config, quickstart);
        std::fs::write(&file, config).unwrap();
        let output = portcullis(&["check-config", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{path} was accepted");
        assert!(
            stderr.contains("routes[0].passthrough[0]"),
            "{path}: {stderr}"
        );
    }
}

/// A route without a label enforcer is unscoped unless its backend reads the tenant header, and
/// only the configuration can say that it does.
#[test]
fn a_header_only_route_needs_backend_scopes_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart =
        std::fs::read_to_string(repo_root().join("examples/quickstart/portcullis.toml")).unwrap();
    let header_only = quickstart.replace("enforcers = [\"namespace\"]", "enforcers = [\"org\"]")
        + "\n[enforcers.org]\ntype = \"tenant_header\"\nheader = \"X-Scope-OrgID\"\n";
    let declared = header_only.replace(
        "enforcers = [\"org\"]",
        "enforcers = [\"org\"]\nbackend_scopes_tenants = true",
    );
    let file = dir.path().join("header-only.toml");
    std::fs::write(&file, &header_only).unwrap();
    let output = portcullis(&["check-config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("routes[0].enforcers"), "{stderr}");
    assert!(stderr.contains("backend_scopes_tenants"), "{stderr}");
    std::fs::write(&file, &declared).unwrap();
    let output = portcullis(&["check-config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}

#[test]
fn enforce_promql_prints_the_rewritten_query_or_fails() {
    let output = portcullis(&[
        "enforce",
        "promql",
        "--label",
        "namespace",
        "--value",
        "a.b",
        "--value",
        "c|d",
        "up",
    ]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"up{namespace=~"a\\.b|c\\|d"}"#
    );

    let output = portcullis(&[
        "enforce",
        "promql",
        "--label",
        "namespace",
        "--value",
        "acme",
        "up +",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(!output.stderr.is_empty());
}

#[test]
fn enforce_logql_prints_the_rewritten_query() {
    let output = portcullis(&[
        "enforce",
        "logql",
        "--label",
        "namespace",
        "--value",
        "acme",
        r#"sum by (level) (count_over_time({app="web"} |= "a{b}" [5m]))"#,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"sum by (level) (count_over_time({app="web", namespace="acme"} |= "a{b}" [5m]))"#
    );
}
