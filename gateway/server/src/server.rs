//! The listeners: the proxy listener, the admin listener, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::gateway::Gateway;

/// The proxy router: every path goes through the gateway pipeline.
pub fn proxy_router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(proxy).with_state(gateway)
}

async fn proxy(State(gateway): State<Arc<Gateway>>, request: Request<Body>) -> Response {
    gateway.handle(request).await
}

/// The admin router: `/healthz` (the process is alive), `/readyz` (upstreams reachable,
/// authorizers ready) and `/metrics` (Prometheus text format).
pub fn admin_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(gateway)
}

async fn ready(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.readiness().await {
        Ok(()) => "ready\n".into_response(),
        Err(failures) => {
            (StatusCode::SERVICE_UNAVAILABLE, failures.join("\n") + "\n").into_response()
        }
    }
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(http::header::CONTENT_TYPE, content_type)],
        gateway.metrics().encode(),
    )
        .into_response()
}

/// Serves the proxy and admin listeners until `shutdown` resolves, then lets in-flight requests
/// finish for at most `server.shutdown_grace`.
pub async fn serve(
    config: &ServerConfig,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let proxy = TcpListener::bind(config.listen).await?;
    let admin = TcpListener::bind(config.admin_listen).await?;
    tracing::info!(
        listen = %proxy.local_addr()?,
        admin_listen = %admin.local_addr()?,
        "portcullis listening"
    );

    let graceful = GracefulShutdown::new();
    let proxy_app = proxy_router(Arc::clone(&gateway));
    let admin_app = admin_router(gateway);
    let header_timeout = config.header_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, app) = tokio::select! {
            () = &mut shutdown => break,
            accepted = proxy.accept() => (accepted, &proxy_app),
            accepted = admin.accept() => (accepted, &admin_app),
        };
        let Ok((stream, peer)) = stream else {
            // Accept errors (e.g. too many open files) are transient: back off briefly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        serve_connection(stream, peer, app.clone(), header_timeout, &graceful);
    }

    drop(proxy);
    drop(admin);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("shutdown grace period over: closing remaining connections");
        }
    }
    Ok(())
}

fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let service = TowerToHyperService::new(app);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let connection = graceful.watch(connection.into_owned());
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
        }
    });
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
