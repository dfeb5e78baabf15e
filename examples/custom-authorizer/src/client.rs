//! The HTTP exchange with the policy service, and how each way it can fail is classified.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The largest answer read; a decision is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why the policy service gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No connection, or it broke before the answer was complete.
    #[error("policy service unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the configured `timeout`.
    #[error("policy service did not answer within {0:?}")]
    Timeout(Duration),
    /// A 5xx or 429 answer: the service is there but failing or overloaded.
    #[error("policy service answered {0}")]
    Failing(StatusCode),
    /// Another status that is not 2xx (a redirect, 401, 404…): `url` or the service is
    /// misconfigured, and a retry would get the same.
    #[error("policy service answered {0}")]
    Refused(StatusCode),
    /// A body over [`MAX_ANSWER_BYTES`].
    #[error("policy service answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
}

/// A client for one decision endpoint.
pub(crate) struct PolicyClient {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: Uri,
    timeout: Duration,
}

impl PolicyClient {
    /// A client POSTing to `endpoint`; nothing connects until the first decision.
    pub(crate) fn new(endpoint: Uri, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            client,
            endpoint,
            timeout,
        }
    }

    /// The endpoint's `host:port`, for the readiness probe and spans.
    pub(crate) fn authority(&self) -> String {
        let host = self.endpoint.host().unwrap_or_default();
        let port = self.endpoint.port_u16().unwrap_or(80);
        format!("{host}:{port}")
    }

    /// POSTs `body` and returns the answer's body, all within the timeout.
    pub(crate) async fn post(&self, body: Vec<u8>) -> Result<Bytes, ExchangeError> {
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(answer) => answer,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    /// Whether a TCP connection to the service opens within the timeout.
    pub(crate) async fn probe(&self) -> Result<(), ExchangeError> {
        let connect = tokio::net::TcpStream::connect(self.authority());
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(ExchangeError::Unreachable(err.to_string())),
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<Bytes, ExchangeError> {
        let request = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| ExchangeError::Unreachable(err.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| ExchangeError::Unreachable(causes(&err)))?;

        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ExchangeError::Failing(status));
        }
        if !status.is_success() {
            return Err(ExchangeError::Refused(status));
        }

        let limited = Limited::new(response.into_body(), MAX_ANSWER_BYTES);
        match limited.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                Err(ExchangeError::TooLarge)
            }
            Err(err) => Err(ExchangeError::Unreachable(causes(err.as_ref()))),
        }
    }
}

/// `err` and its sources, joined: hyper-util's own message alone ("client error (Connect)")
/// does not say that the connection was refused.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Debug for PolicyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyClient")
            .field("server", &self.authority())
            .field("timeout", &self.timeout)
            .finish()
    }
}
