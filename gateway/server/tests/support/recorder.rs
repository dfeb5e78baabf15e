//! A recording upstream: answers every request with an empty Prometheus success and keeps what
//! it received, so tests can assert on exactly what Portcullis forwarded.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::HeaderMap;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    /// Decoded values of parameter `name` in the URL.
    pub fn url_values(&self, name: &str) -> Vec<String> {
        values(&self.query, name)
    }

    /// Decoded values of parameter `name` in the form body.
    pub fn body_values(&self, name: &str) -> Vec<String> {
        values(&self.body, name)
    }
}

fn values(encoded: &str, name: &str) -> Vec<String> {
    form_urlencoded::parse(encoded.as_bytes())
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// A running recording upstream on a loopback port.
pub struct Recorder {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/loki/api/v1/tail", axum::routing::get(tail))
            .fallback(record)
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            received,
            task,
        }
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The single request received so far.
    pub fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(
            received.len(),
            1,
            "expected exactly one forwarded request: {received:?}"
        );
        received.into_iter().next().unwrap()
    }

    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loki's tail endpoint: records the upgrade request, greets, then echoes every text frame.
async fn tail(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    upgrade: axum::extract::WebSocketUpgrade,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body: String::new(),
    });
    upgrade.on_upgrade(|mut socket| async move {
        use axum::extract::ws::Message;
        let _ = socket
            .send(Message::text("streams for the enforced query"))
            .await;
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            if socket
                .send(Message::text(format!("echo: {}", text.as_str())))
                .await
                .is_err()
            {
                break;
            }
        }
    })
}

async fn record(State(received): State<Arc<Mutex<Vec<Received>>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let answer = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    Response::builder()
        .header("content-type", "application/json")
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "1")
        .body(Body::from(answer))
        .unwrap()
}
