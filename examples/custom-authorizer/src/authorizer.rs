//! The [`Authorizer`] itself: one POST per request, and the answer turned into a [`Decision`].

use portcullis_api::{
    Authorizer, AuthzError, AuthzRequest, BuildError, Decision, TenantError, TenantRequest,
    TenantSet, async_trait,
};
use tracing::Instrument;
use tracing::field::Empty;

use crate::client::{ExchangeError, PolicyClient};
use crate::config::PolicyConfig;
use crate::wire::{Answer, Outcome, Question};

/// An [`Authorizer`] that asks an OPA-style policy service; see the crate documentation for the
/// protocol and how each failure maps to a status.
#[derive(Debug)]
pub struct PolicyAuthorizer {
    /// The section's key path, e.g. `authorizers.policy`, named in misconfiguration messages.
    section: String,
    client: PolicyClient,
}

impl PolicyAuthorizer {
    /// Builds an authorizer from `config`, the section at key path `section` (e.g.
    /// `authorizers.policy`). Checks `url` and `timeout`; never contacts the service, and needs no
    /// async runtime.
    pub fn new(section: &str, config: PolicyConfig) -> Result<Self, BuildError> {
        let key_error = |key: &str, message: &str| BuildError {
            path: format!("{section}.{key}"),
            message: message.to_owned(),
        };
        let endpoint = config.endpoint().map_err(|msg| key_error("url", msg))?;
        config
            .check_timeout()
            .map_err(|msg| key_error("timeout", msg))?;
        Ok(Self {
            section: section.to_owned(),
            client: PolicyClient::new(endpoint, config.timeout),
        })
    }

    /// Asks the policy service about `request`.
    async fn ask(&self, request: &AuthzRequest<'_>) -> Result<Outcome, AuthzError> {
        let body = Question::new(request).to_json();
        let answer = self
            .client
            .post(body)
            .await
            .map_err(|err| self.failed(err))?;
        Answer::parse(&answer).map_err(|detail| self.malformed(&detail))
    }

    /// Turns the policy's outcome into a decision that never allows an unrequested tenant.
    fn decide(&self, outcome: Outcome, requested: &TenantRequest) -> Result<Decision, AuthzError> {
        if !outcome.allow {
            let reason = outcome.reason.as_deref().unwrap_or("the policy denied");
            return Ok(Decision::deny(reason));
        }
        let listed = match outcome.tenants.map(TenantSet::new).transpose() {
            Ok(listed) => listed,
            Err(TenantError::Empty) => return Ok(Decision::deny("the policy allows no tenant")),
            Err(err) => return Err(self.malformed(&err.to_string())),
        };
        match (requested, listed) {
            (TenantRequest::Named(named), None) => Ok(Decision::allow(named.clone())),
            (TenantRequest::Named(named), Some(listed)) => Ok(narrow(named, &listed)),
            (TenantRequest::Unspecified, Some(listed)) => Ok(Decision::allow(listed)),
            (TenantRequest::Unspecified, None) => Err(AuthzError::Misconfigured(format!(
                "the policy allowed a request naming no tenant without listing `tenants`; \
                 check the policy behind {}.url",
                self.section
            ))),
            _ => Ok(Decision::deny("unsupported tenant request")),
        }
    }

    fn failed(&self, err: ExchangeError) -> AuthzError {
        match err {
            ExchangeError::Refused(_) | ExchangeError::TooLarge => {
                AuthzError::Misconfigured(format!("{err}; check {}.url", self.section))
            }
            _ => AuthzError::Unavailable(err.to_string()),
        }
    }

    /// An answer that is not a decision: the message says where it broke, never what it held.
    fn malformed(&self, detail: &str) -> AuthzError {
        AuthzError::Misconfigured(format!(
            "the policy service's answer is not a decision ({detail}); check {}.url and the policy",
            self.section
        ))
    }
}

/// Allows the requested tenants the policy listed: a policy that answers with more is narrowed.
fn narrow(requested: &TenantSet, listed: &TenantSet) -> Decision {
    match requested.intersection(listed) {
        Some(allowed) => Decision::allow(allowed),
        None => Decision::deny("the policy allows none of the requested tenants"),
    }
}

#[async_trait]
impl Authorizer for PolicyAuthorizer {
    async fn authorize(&self, request: &AuthzRequest<'_>) -> Result<Decision, AuthzError> {
        // A child of the gateway's `authorize` span. Its target starts with `portcullis`, which
        // is what the gateway exports to OpenTelemetry.
        let span = tracing::info_span!(
            target: "portcullis::authz::policy",
            "policy request",
            otel.kind = "client",
            server.address = %self.client.authority(),
            http.response.status_code = Empty,
        );
        let outcome = self.ask(request).instrument(span).await?;
        self.decide(outcome, request.tenants)
    }

    /// Ready when a TCP connection to the policy service opens within `timeout`.
    async fn ready(&self) -> Result<(), AuthzError> {
        self.client
            .probe()
            .await
            .map_err(|err| AuthzError::Unavailable(err.to_string()))
    }
}
