//! The gateway with plugins of a test's own, in process: a custom registry, and the gateway's
//! own limits on a plugin that misbehaves.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use portcullis::Registry;
use portcullis::gateway::Gateway;
use portcullis_api::{
    Authorizer, AuthorizerFactory, AuthzError, AuthzRequest, BuildError, Decision, PluginContext,
    Section, TenantSet, async_trait,
};
use support::config::GatewayConfig;

/// Allows after `delay`; with `widen`, allows a tenant nobody asked for; with `panic`, panics;
/// with `misconfigured`, answers that the policy has no such permission.
struct Peculiar {
    delay: Duration,
    widen: bool,
    panic: bool,
    misconfigured: bool,
}

#[async_trait]
impl Authorizer for Peculiar {
    async fn authorize(&self, _request: &AuthzRequest<'_>) -> Result<Decision, AuthzError> {
        tokio::time::sleep(self.delay).await;
        assert!(!self.panic, "the peculiar authorizer panics, as configured");
        if self.misconfigured {
            let internals = "definition `tenant` of the schema has no permission `view`";
            return Err(AuthzError::Misconfigured(internals.into()));
        }
        let tenant = if self.widen { "initech" } else { "acme" };
        Ok(Decision::allow(TenantSet::single(tenant).unwrap()))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeculiarConfig {
    delay_ms: u64,
    widen: bool,
    #[serde(default)]
    panic: bool,
    #[serde(default)]
    misconfigured: bool,
}

struct PeculiarFactory;

impl AuthorizerFactory for PeculiarFactory {
    fn type_name(&self) -> &'static str {
        "peculiar"
    }

    fn build(
        &self,
        section: &Section,
        _: &PluginContext,
    ) -> Result<Arc<dyn Authorizer>, BuildError> {
        let config: PeculiarConfig = section.parse()?;
        Ok(Arc::new(Peculiar {
            delay: Duration::from_millis(config.delay_ms),
            widen: config.widen,
            panic: config.panic,
            misconfigured: config.misconfigured,
        }))
    }
}

/// Builds the gateway in process, with the peculiar authorizer registered.
fn build(authorizer: &str) -> Result<Gateway, portcullis::config::ConfigError> {
    let text = GatewayConfig::new("prometheus", "http://127.0.0.1:9")
        .server("authorize_timeout = \"200ms\"")
        .authorizer(authorizer)
        .render()
        .replace("{listen}", "127.0.0.1:0")
        .replace("{admin_listen}", "127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portcullis.toml");
    std::fs::write(&file, &text).unwrap();
    let (config, text) = portcullis::config::load(&file)?;
    let registry = Registry::builtin().authorizer(PeculiarFactory);
    Gateway::build(&config, &file, &text, &registry)
}

fn gateway(authorizer: &str) -> Gateway {
    build(authorizer).unwrap_or_else(|err| panic!("{err}"))
}

async fn status(gateway: &Gateway) -> StatusCode {
    answer(gateway).await.0
}

async fn answer(gateway: &Gateway) -> (StatusCode, serde_json::Value) {
    let request = Request::get("/api/v1/query?tenant=acme&query=up")
        .header("authorization", "Bearer acme-token")
        .body(Body::empty())
        .unwrap();
    let response = gateway.handle(request).await;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn a_hung_authorizer_is_503_after_the_gateways_timeout() {
    let gateway = gateway("type = \"peculiar\"\ndelay_ms = 60000\nwiden = false");
    assert_eq!(status(&gateway).await, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_authorizer_that_widens_the_request_is_a_500_and_nothing_is_forwarded() {
    let gateway = gateway("type = \"peculiar\"\ndelay_ms = 0\nwiden = true");
    // The upstream (port 9) is unreachable: a 502 would mean the request was forwarded.
    assert_eq!(status(&gateway).await, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_panicking_plugin_is_a_500_for_that_request_and_the_gateway_serves_on() {
    let gateway = gateway("type = \"peculiar\"\ndelay_ms = 0\nwiden = false\npanic = true");
    for _ in 0..2 {
        // Port 9 is unreachable: a 502 would mean the request was forwarded.
        assert_eq!(status(&gateway).await, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

#[tokio::test]
async fn a_misconfigured_authorizers_message_stays_out_of_the_answer() {
    let config = "type = \"peculiar\"\ndelay_ms = 0\nwiden = false\nmisconfigured = true";
    let (status, body) = answer(&gateway(config)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["error"],
        "authorization is misconfigured; the gateway's log has the details"
    );
    assert_eq!(body["errorType"], "internal");
}

#[tokio::test]
async fn a_plugin_section_error_names_its_key() {
    let Err(err) = build("type = \"peculiar\"\ndelay_ms = 0\nwiden = true\ncolour = 1") else {
        panic!("an unknown key was accepted");
    };
    let rendered = err.to_string();
    assert!(rendered.contains("authorizers.demo.colour"), "{rendered}");
    assert_eq!(
        err.problems.len(),
        1,
        "one problem, not a follow-up on the route: {rendered}"
    );
}
