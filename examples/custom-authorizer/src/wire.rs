//! The JSON exchanged with the policy service.

use portcullis_api::{AuthzRequest, TenantRequest};
use serde::{Deserialize, Serialize};

/// The body POSTed for one decision: `{"input": {…}}`.
///
/// No `Debug`: it holds the subject id, which can be the caller's token.
#[derive(Serialize)]
pub(crate) struct Question<'a> {
    input: Input<'a>,
}

#[derive(Serialize)]
struct Input<'a> {
    subject: &'a str,
    /// `null` when the request names no tenant.
    tenants: Option<Vec<&'a str>>,
    permission: &'a str,
    route: &'a str,
}

impl<'a> Question<'a> {
    /// The question for `request`.
    pub(crate) fn new(request: &'a AuthzRequest<'_>) -> Self {
        let tenants = match request.tenants {
            TenantRequest::Named(set) => Some(set.iter().collect()),
            _ => None,
        };
        Self {
            input: Input {
                subject: request.identity.subject.expose(),
                tenants,
                permission: request.permission,
                route: request.route,
            },
        }
    }

    /// The JSON body.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serialising strings and an optional list of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The whole answer: `{"result": {…}}`. OPA answers `{}` when the rule at the URL is undefined;
/// unknown keys (OPA's `decision_id`, say) are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    pub(crate) result: Option<Outcome>,
}

/// The policy's decision.
#[derive(Debug, Deserialize)]
pub(crate) struct Outcome {
    /// Whether the caller may read (some of) the tenants.
    pub(crate) allow: bool,
    /// The tenants the caller may read; required when the request named none.
    #[serde(default)]
    pub(crate) tenants: Option<Vec<String>>,
    /// Why, for the logs and the `authorize` span.
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

impl Answer {
    /// Parses an answer body; the error says what is wrong without quoting the body.
    pub(crate) fn parse(body: &[u8]) -> Result<Outcome, String> {
        let answer: Answer = serde_json::from_slice(body).map_err(|err| {
            format!(
                "{:?} error at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            )
        })?;
        answer
            .result
            .ok_or_else(|| "no `result`: is the rule at `url` defined?".to_owned())
    }
}
