//! Every error the gateway answers itself, and the one function that renders them.
//!
//! Bodies follow the Prometheus API: `{"status":"error","errorType":"…","error":"…"}` with
//! `Content-Type: application/json`. Messages are fixed sentences or echo only what the caller
//! sent about its query; they never hold a token, a denial reason or policy internals.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use portcullis_api::{AuthzError, EnforceError};

use crate::params::ParamError;

/// An error answered by the gateway; nothing is forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No route serves this path (deny by default).
    #[error("not found")]
    NotFound,
    /// The path is served, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No credentials, or malformed ones.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The enforced URL would be too long, and the endpoint takes no POST.
    #[error("the enforced request is too long for a URL")]
    UriTooLong,
    /// The body is larger than `server.max_body_bytes`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// A POST body that is not `application/x-www-form-urlencoded`.
    #[error("unsupported content type: POST bodies must be application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// The body did not arrive within `server.body_timeout`.
    #[error("timed out reading the request body")]
    RequestTimeout,
    /// The authorizer denied the request; the reason is logged, not sent.
    #[error("forbidden")]
    Forbidden,
    /// The authorizer could not decide: fail closed.
    #[error("authorization is unavailable")]
    AuthzUnavailable,
    /// The authorizer rejected the question itself: a configuration error. The authorizer's
    /// message goes to the log and the audit log only: it can name policy internals (a schema,
    /// a definition), and the caller may hold any credential at all.
    #[error("authorization is misconfigured; the gateway's log has the details")]
    AuthzMisconfigured(String),
    /// Something inside the gateway broke; details are logged.
    #[error("internal error")]
    Internal,
    /// The upstream could not be reached.
    #[error("upstream unreachable")]
    BadGateway,
    /// The upstream did not answer within its `timeout`.
    #[error("upstream timed out")]
    GatewayTimeout,
}

impl GatewayError {
    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::AuthzUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::AuthzMisconfigured(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The Prometheus `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthenticated(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::BadRequest(_)
            | Self::PayloadTooLarge
            | Self::UriTooLong
            | Self::UnsupportedMediaType => "bad_data",
            Self::RequestTimeout | Self::GatewayTimeout => "timeout",
            Self::AuthzUnavailable | Self::BadGateway => "unavailable",
            Self::AuthzMisconfigured(_) | Self::Internal => "internal",
        }
    }

    /// A `bad_data` error about parameter `name`, worded as Prometheus words its own.
    pub fn invalid_param(name: &str, message: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("invalid parameter {name:?}: {message}"))
    }

    /// Maps an enforcer's error on parameter `name`, or on the request as a whole (`None`, an
    /// endpoint without query parameters).
    pub fn from_enforce(name: Option<&str>, err: EnforceError) -> Self {
        match (err, name) {
            (EnforceError::Unsupported(_), _) => Self::Internal,
            (other, Some(name)) => Self::invalid_param(name, other),
            (other, None) => Self::BadRequest(other.to_string()),
        }
    }
}

impl From<AuthzError> for GatewayError {
    fn from(err: AuthzError) -> Self {
        match err {
            AuthzError::Misconfigured(message) => Self::AuthzMisconfigured(message),
            _ => Self::AuthzUnavailable,
        }
    }
}

impl From<ParamError> for GatewayError {
    fn from(err: ParamError) -> Self {
        Self::BadRequest(err.to_string())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "status": "error",
            "errorType": self.error_type(),
            "error": self.to_string(),
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Self::Unauthenticated(_) = self {
            let challenge = HeaderValue::from_static("Bearer realm=\"portcullis\"");
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn render(err: GatewayError) -> (StatusCode, String, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn errors_are_prometheus_style_json() {
        let (status, content_type, body) =
            render(GatewayError::invalid_param("query", "1:4: parse error")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/json");
        assert_eq!(
            body,
            serde_json::json!({
                "status": "error",
                "errorType": "bad_data",
                "error": "invalid parameter \"query\": 1:4: parse error",
            })
        );
    }

    #[tokio::test]
    async fn authorizer_failures_fail_closed_with_503_or_500() {
        let unavailable = AuthzError::Unavailable("connection refused".into());
        let (status, _, body) = render(unavailable.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["errorType"], "unavailable");
        let misconfigured = AuthzError::Misconfigured("unknown permission `raed`".into());
        let (status, _, body) = render(misconfigured.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        // The authorizer's message names policy internals: it is logged, never answered.
        assert!(!body["error"].as_str().unwrap().contains("raed"));
        assert_eq!(body["errorType"], "internal");
    }
}
