use std::io::Write;

use super::*;

fn write(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

const MINIMAL: &str = r#"
[identity]
mode = "bearer"

[tenant]
source = "param"
name = "tenant"

[upstreams.prometheus]
url = "http://127.0.0.1:9090"

[authorizers.demo]
type = "allowlist"
subjects = { "Token-A" = ["acme"] }

[enforcers.tenant_label]
type = "promql"
label = "namespace"

[[routes]]
api = "prometheus"
upstream = "prometheus"
authorizer = "demo"
enforcers = ["tenant_label"]
"#;

#[test]
fn a_minimal_file_loads_with_defaults() {
    let file = write(MINIMAL);
    let (config, _) = load(file.path()).unwrap();
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
    assert_eq!(config.routes[0].permission, "read");
    assert_eq!(
        config.upstreams["prometheus"].timeout,
        Duration::from_secs(120)
    );
    // Keys keep their case: subject ids are case-sensitive.
    assert!(
        config.authorizers["demo"].settings["subjects"]
            .get("Token-A")
            .is_some()
    );
}

#[test]
fn a_wrong_type_names_key_path_and_line() {
    let file = write(&MINIMAL.replace("url = \"http://127.0.0.1:9090\"", "url = 42"));
    let err = load(file.path()).unwrap_err();
    let problem = &err.problems[0];
    assert_eq!(problem.path, "upstreams.prometheus.url");
    assert_eq!(problem.position, Some((10, 7)));
    assert!(
        problem.message.contains("invalid type"),
        "{}",
        problem.message
    );
    let rendered = err.to_string();
    assert!(
        rendered.contains(":10:7: upstreams.prometheus.url: "),
        "{rendered}"
    );
}

#[test]
fn an_unknown_key_is_an_error() {
    let file = write(&MINIMAL.replace("mode = \"bearer\"", "mode = \"bearer\"\nmodee = 1"));
    let err = load(file.path()).unwrap_err();
    assert_eq!(err.problems[0].path, "identity.modee");
    assert!(err.problems[0].message.contains("modee"), "{err}");
    assert_eq!(err.problems[0].position.map(|p| p.0), Some(4));
}

#[test]
fn a_syntax_error_has_a_line() {
    let file = write("[identity\nmode = 1\n");
    let err = load(file.path()).unwrap_err();
    assert_eq!(err.problems[0].position.map(|p| p.0), Some(1), "{err}");
}

#[test]
fn environment_overrides_scalars() {
    let env = [(
        "PORTCULLIS__UPSTREAMS__PROMETHEUS__URL",
        "http://10.0.0.1:1",
    )];
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = layered_pass(MINIMAL, Some(env)).unwrap();
    assert_eq!(config.upstreams["prometheus"].url, "http://10.0.0.1:1");
}
