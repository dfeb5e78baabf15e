//! The policy authorizer against a small policy service started on a loopback ephemeral port:
//! called directly, and built from a TOML section through its factory.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use portcullis_api::{
    Authorizer, AuthorizerFactory, AuthzError, AuthzRequest, BuildError, Decision, Identity,
    IdentitySource, PluginContext, Section, Subject, TenantRequest, TenantSet, Verdict,
};
use portcullis_example_policy_authorizer::{PolicyAuthorizer, PolicyConfig, PolicyFactory};
use serde_json::{Value, json};

const PATH: &str = "/v1/data/portcullis/authz";

/// How long the `slow` subject keeps the policy service thinking: well past the timeouts used.
const SLOW: Duration = Duration::from_secs(3);

// === the policy service ===

/// What the policy service received: the JSON body and its content type, per request.
type Seen = Arc<Mutex<Vec<(Value, String)>>>;

/// A policy service on `127.0.0.1:<ephemeral>`, stopped when the test's runtime ends.
struct PolicyService {
    addr: SocketAddr,
    seen: Seen,
}

impl PolicyService {
    async fn start() -> Self {
        let seen = Seen::default();
        let app = Router::new()
            .route(PATH, post(answer))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    fn last_seen(&self) -> (Value, String) {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request")
    }
}

/// The policy: each subject gets every tenant it may read, whatever was asked (so the plugin
/// must narrow); some subjects make the service misbehave.
async fn answer(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let question: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push((question.clone(), content_type));
    let subject = question["input"]["subject"].as_str().unwrap_or_default();
    let ok = |value: Value| (StatusCode::OK, value.to_string());
    match subject {
        "alice-token" => ok(json!({"result": {"allow": true, "tenants": ["acme"]}})),
        "ops-token" => ok(json!({"result": {"allow": true, "tenants": ["acme", "globex"]}})),
        "any-token" => ok(json!({"result": {"allow": true, "reason": "reads what it names"}})),
        "nothing-token" => ok(json!({"result": {"allow": true, "tenants": []}})),
        "slow-token" => {
            tokio::time::sleep(SLOW).await;
            ok(json!({"result": {"allow": true, "tenants": ["acme"]}}))
        }
        "failing-token" => (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_owned()),
        "busy-token" => (StatusCode::TOO_MANY_REQUESTS, String::new()),
        "refused-token" => (StatusCode::UNAUTHORIZED, String::new()),
        "html-token" => (StatusCode::OK, "<html>secret-policy-page</html>".to_owned()),
        "shape-token" => ok(json!({"result": {"allow": "secret-yes"}})),
        "undefined-token" => ok(json!({})),
        "blank-token" => ok(json!({"result": {"allow": true, "tenants": ["acme", ""]}})),
        _ => ok(json!({"result": {"allow": false, "reason": "not on the list"}})),
    }
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// === helpers ===

fn authorizer(url: &str, timeout: Duration) -> PolicyAuthorizer {
    let mut config = PolicyConfig::new(url);
    config.timeout = timeout;
    PolicyAuthorizer::new("authorizers.policy", config).unwrap()
}

fn set(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).unwrap()
}

async fn ask(authz: &dyn Authorizer, who: &str, tenants: &[&str]) -> Result<Decision, AuthzError> {
    let identity = Identity::new(Subject::new(who), IdentitySource::Bearer);
    let tenants = match tenants {
        [] => TenantRequest::Unspecified,
        named => TenantRequest::Named(set(named)),
    };
    let request = AuthzRequest::new(&identity, &tenants, "read", "/api/v1/query");
    authz.authorize(&request).await
}

async fn verdict(authz: &dyn Authorizer, who: &str, tenants: &[&str]) -> Verdict {
    ask(authz, who, tenants).await.unwrap().verdict
}

/// The error for `who`, checked to name neither the subject nor the service's body.
async fn failure(authz: &dyn Authorizer, who: &str) -> AuthzError {
    let err = ask(authz, who, &["acme"]).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(who), "the error names the subject: {shown}");
    assert!(
        !shown.contains("secret"),
        "the error quotes the answer: {shown}"
    );
    err
}

// === decisions ===

#[tokio::test]
async fn allows_what_the_policy_allows_and_sends_the_documented_question() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    let decision = ask(&authz, "alice-token", &["acme"]).await.unwrap();
    assert_eq!(decision, Decision::allow(set(&["acme"])));
    let (question, content_type) = service.last_seen();
    let expected = json!({"input": {
        "subject": "alice-token",
        "tenants": ["acme"],
        "permission": "read",
        "route": "/api/v1/query",
    }});
    assert_eq!(question, expected);
    assert_eq!(content_type, "application/json");

    let any = verdict(&authz, "any-token", &["acme", "initech"]).await;
    assert_eq!(any, Verdict::Allow(set(&["acme", "initech"])));
}

#[tokio::test]
async fn denies_with_the_policy_reason() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    let denied = verdict(&authz, "mallory-token", &["acme"]).await;
    assert_eq!(denied, Verdict::Deny("not on the list".to_owned()));
    let elsewhere = verdict(&authz, "alice-token", &["globex"]).await;
    assert!(matches!(elsewhere, Verdict::Deny(_)), "{elsewhere:?}");
    let nothing = verdict(&authz, "nothing-token", &["acme"]).await;
    assert!(matches!(nothing, Verdict::Deny(_)), "{nothing:?}");
}

#[tokio::test]
async fn narrows_an_answer_wider_than_the_request() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    let one = verdict(&authz, "ops-token", &["acme"]).await;
    assert_eq!(one, Verdict::Allow(set(&["acme"])));
    let some = verdict(&authz, "ops-token", &["acme", "initech"]).await;
    assert_eq!(some, Verdict::Allow(set(&["acme"])));
}

#[tokio::test]
async fn a_request_naming_no_tenant_gets_the_listed_ones() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    let all = verdict(&authz, "ops-token", &[]).await;
    assert_eq!(all, Verdict::Allow(set(&["acme", "globex"])));
    assert_eq!(service.last_seen().0["input"]["tenants"], Value::Null);

    let unlisted = ask(&authz, "any-token", &[]).await.unwrap_err();
    assert!(
        matches!(unlisted, AuthzError::Misconfigured(_)),
        "{unlisted}"
    );
}

// === failures: always closed ===

#[tokio::test]
async fn a_policy_service_that_is_down_is_unavailable() {
    let authz = authorizer(
        &format!("http://127.0.0.1:{}{PATH}", closed_port()),
        Duration::from_secs(2),
    );
    let err = failure(&authz, "alice-token").await;
    assert!(matches!(err, AuthzError::Unavailable(_)), "{err}");
    assert!(authz.ready().await.is_err());
}

#[tokio::test]
async fn a_slow_policy_service_is_unavailable_within_the_timeout() {
    let service = PolicyService::start().await;
    let timeout = Duration::from_millis(300);
    let authz = authorizer(&service.url(), timeout);

    let started = Instant::now();
    let err = failure(&authz, "slow-token").await;
    let took = started.elapsed();
    assert!(matches!(err, AuthzError::Unavailable(_)), "{err}");
    assert!(took >= timeout, "gave up after {took:?}");
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    assert!(authz.ready().await.is_ok());
}

#[tokio::test]
async fn server_errors_are_unavailable_and_other_statuses_misconfigured() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    for who in ["failing-token", "busy-token"] {
        let err = failure(&authz, who).await;
        assert!(matches!(err, AuthzError::Unavailable(_)), "{who}: {err}");
    }
    let err = failure(&authz, "refused-token").await;
    assert!(matches!(err, AuthzError::Misconfigured(_)), "{err}");
    assert!(err.to_string().contains("authorizers.policy.url"), "{err}");
}

#[tokio::test]
async fn a_malformed_answer_is_misconfigured_and_never_quoted() {
    let service = PolicyService::start().await;
    let authz = authorizer(&service.url(), Duration::from_secs(2));

    for who in [
        "html-token",
        "shape-token",
        "undefined-token",
        "blank-token",
    ] {
        let err = failure(&authz, who).await;
        assert!(matches!(err, AuthzError::Misconfigured(_)), "{who}: {err}");
    }
}

// === building from the configuration ===

fn section(body: &str) -> Section {
    Section::new("authorizers.policy", toml::from_str(body).unwrap())
}

fn build_error(body: &str) -> BuildError {
    match PolicyFactory.build(&section(body), &PluginContext::default()) {
        Ok(_) => panic!("built from {body:?}"),
        Err(err) => err,
    }
}

#[tokio::test]
async fn the_factory_builds_from_a_toml_section() {
    let service = PolicyService::start().await;
    assert_eq!(PolicyFactory.type_name(), "policy");
    let body = format!("url = \"{}\"\ntimeout = \"1s\"\n", service.url());
    let authz = PolicyFactory
        .build(&section(&body), &PluginContext::default())
        .unwrap();

    let narrowed = verdict(authz.as_ref(), "ops-token", &["globex", "initech"]).await;
    assert_eq!(narrowed, Verdict::Allow(set(&["globex"])));
}

#[test]
fn configuration_errors_name_their_key() {
    let url = "url = \"http://127.0.0.1:8181/v1/data/portcullis/authz\"\n";
    let err = build_error(&format!("{url}colour = \"blue\"\n"));
    assert_eq!(err.path, "authorizers.policy.colour");
    assert!(err.message.contains("unknown field `colour`"), "{err}");

    assert_eq!(build_error("").path, "authorizers.policy");
    assert_eq!(build_error("url = 8181").path, "authorizers.policy.url");
    assert_eq!(
        build_error(&format!("{url}timeout = \"soon\"")).path,
        "authorizers.policy.timeout"
    );
    assert_eq!(
        build_error(&format!("{url}timeout = \"0s\"")).path,
        "authorizers.policy.timeout"
    );
    for bad in [
        "not a url",
        "https://opa:8181/v1",
        "http://user:pw@opa:8181/v1",
        "/v1/data",
    ] {
        let err = build_error(&format!("url = \"{bad}\""));
        assert_eq!(err.path, "authorizers.policy.url", "{bad}");
        assert!(!err.message.contains("pw"), "{err}");
    }
}
