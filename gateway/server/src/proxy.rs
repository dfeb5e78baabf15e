//! Forwarding the enforced request to an upstream and streaming its answer back.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::UpstreamConfig;
use crate::error::GatewayError;

/// Headers that describe one connection, not the request: never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A request ready for the upstream: already enforced and re-encoded.
#[derive(Debug)]
pub struct Outgoing {
    /// The method.
    pub method: Method,
    /// The canonical path, without the upstream's own prefix.
    pub path: String,
    /// The encoded query string, without `?`; empty for none.
    pub query: String,
    /// End-to-end headers to send.
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
}

/// One configured upstream and its connection pool.
#[derive(Debug, Clone)]
pub struct Upstream {
    base: Uri,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// One permit per request in flight, held until its answer's body is dropped: it bounds the
    /// connections the pool opens, and with them the buffers each holds.
    in_flight: Arc<Semaphore>,
    /// Whether the caller's credential header travels upstream.
    pub forward_authorization: bool,
}

impl Upstream {
    /// Builds the client for `config`; fails on a bad URL or an unreadable CA file.
    pub fn new(config: &UpstreamConfig) -> Result<Self, String> {
        let base: Uri = config
            .url
            .parse()
            .map_err(|err| format!("invalid url: {err}"))?;
        match (base.scheme_str(), base.authority()) {
            (Some("http" | "https"), Some(_)) => {}
            _ => return Err("url must be http:// or https:// with a host".to_owned()),
        }
        if base.query().is_some() {
            return Err("url must not have a query string".to_owned());
        }
        // A credential in the URL would reach logs wherever the URL does, and nothing sends it.
        if base.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("url must not hold a user or password".to_owned());
        }
        if config.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        let tls = tls_config(config.ca_file.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            base,
            client,
            timeout: config.timeout,
            in_flight: Arc::new(Semaphore::new(config.max_connections)),
            forward_authorization: config.forward_authorization,
        })
    }

    /// Time allowed for the upstream's answer.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Host and port, for the readiness probe.
    pub fn authority(&self) -> String {
        let authority = self
            .base
            .authority()
            .map(|a| a.as_str())
            .unwrap_or_default();
        match (authority.contains(':'), self.base.scheme_str()) {
            (true, _) => authority.to_owned(),
            (false, Some("https")) => format!("{authority}:443"),
            (false, _) => format!("{authority}:80"),
        }
    }

    /// Sends `outgoing` and streams the answer back; 502 when unreachable, 504 on timeout.
    pub async fn forward(&self, outgoing: Outgoing) -> Result<Response, GatewayError> {
        let in_flight = Arc::clone(&self.in_flight);
        let asked = async move {
            let permit = in_flight
                .acquire_owned()
                .await
                .map_err(|_| GatewayError::Internal)?;
            Ok::<_, GatewayError>((permit, self.send(outgoing).await?))
        };
        let (permit, response) = tokio::time::timeout(self.timeout, asked)
            .await
            .map_err(|_| GatewayError::GatewayTimeout)??;
        Ok(relay(response, Some(permit)))
    }

    /// Sends `outgoing` as a WebSocket upgrade. When the upstream switches protocols, the
    /// client's connection (`client`, from the request being answered) and the upstream's are
    /// joined, and bytes are relayed both ways until either side closes. Any other answer is
    /// relayed as [`Upstream::forward`] relays it.
    pub async fn forward_upgrade(
        &self,
        mut outgoing: Outgoing,
        client: hyper::upgrade::OnUpgrade,
    ) -> Result<Response, GatewayError> {
        ask_websocket(&mut outgoing.headers);
        let mut response = self.send(outgoing).await?;
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(relay(response, None));
        }
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(upstream), Ok(client)) = tokio::join!(upstream, client) else {
                tracing::debug!("websocket upgrade did not complete");
                return;
            };
            let (mut upstream, mut client) = (TokioIo::new(upstream), TokioIo::new(client));
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        let (mut parts, _) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        ask_websocket(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::empty()))
    }

    async fn send(&self, outgoing: Outgoing) -> Result<http::Response<Incoming>, GatewayError> {
        let uri = self.uri_for(&outgoing.path, &outgoing.query)?;
        let length = outgoing.body.len();
        let mut headers = outgoing.headers;
        if length > 0 || outgoing.method == Method::POST {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        let mut request = Request::new(Full::new(outgoing.body));
        *request.method_mut() = outgoing.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;

        let answer = tokio::time::timeout(self.timeout, self.client.request(request)).await;
        match answer {
            Err(_) => Err(GatewayError::GatewayTimeout),
            Ok(Err(err)) => {
                tracing::warn!(upstream = %self.base, error = %err, "upstream request failed");
                Err(GatewayError::BadGateway)
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    fn uri_for(&self, path: &str, query: &str) -> Result<Uri, GatewayError> {
        let prefix = self.base.path().trim_end_matches('/');
        let path_and_query = match query {
            "" => format!("{prefix}{path}"),
            query => format!("{prefix}{path}?{query}"),
        };
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(path_and_query.parse().map_err(|_| GatewayError::Internal)?);
        Uri::from_parts(parts).map_err(|_| GatewayError::Internal)
    }
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("cannot read ca_file {}: {err}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| format!("bad certificate in ca_file: {err}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The upstream's answer as relayed to the client: its hop-by-hop headers removed, its body
/// streamed, holding `permit` (its request's place among those in flight) until it is dropped.
fn relay(response: http::Response<Incoming>, permit: Option<OwnedSemaphorePermit>) -> Response {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Permitted {
        body,
        _permit: permit,
    };
    Response::from_parts(parts, Body::new(body))
}

/// An answer's body holding its request's place among the upstream's requests in flight, until
/// the body is dropped: sent whole, or abandoned.
struct Permitted {
    body: Incoming,
    _permit: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Permitted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The two hop-by-hop headers of a WebSocket upgrade, which travel on purpose.
fn ask_websocket(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

/// The client's headers as they may travel upstream: hop-by-hop headers, `Host`,
/// `Content-Length` and every header in `drop` are removed.
pub fn forwardable_headers(headers: &HeaderMap, drop: &[&HeaderName]) -> HeaderMap {
    let mut headers = headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    for name in drop {
        headers.remove(*name);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::HOST, HeaderValue::from_static("client"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let kept = forwardable_headers(&headers, &[&header::AUTHORIZATION]);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept.contains_key(header::ACCEPT));
    }

    fn config(url: &str) -> UpstreamConfig {
        UpstreamConfig {
            url: url.into(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            ca_file: None,
            forward_authorization: false,
            max_connections: 1,
        }
    }

    #[test]
    fn max_connections_is_at_least_one() {
        let mut none = config("http://127.0.0.1:9090");
        none.max_connections = 0;
        let err = Upstream::new(&none).unwrap_err();
        assert_eq!(err, "max_connections must be at least 1");
    }

    #[test]
    fn a_url_with_a_credential_is_refused() {
        for url in [
            "http://user:secret@127.0.0.1:9",
            "https://token@prom.example",
        ] {
            let err = Upstream::new(&config(url)).unwrap_err();
            assert_eq!(err, "url must not hold a user or password");
            assert!(!err.contains("secret"));
        }
    }

    #[test]
    fn upstream_path_prefix_is_kept() {
        let upstream = Upstream::new(&config("http://127.0.0.1:9/prom/")).unwrap();
        let uri = upstream.uri_for("/api/v1/query", "query=up").unwrap();
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:9/prom/api/v1/query?query=up"
        );
        assert_eq!(upstream.authority(), "127.0.0.1:9");
    }
}
