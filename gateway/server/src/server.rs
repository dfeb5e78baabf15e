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
    // An HTTP/2 peer that stops answering pings is gone, or holding the connection open.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    // hyper's header timer starts only once it knows the protocol, which it learns from the
    // first bytes, and HTTP/2 has none: a connection that sends nothing, part of the HTTP/2
    // preface or an unfinished first HEADERS frame would be held for ever, and enough of them
    // use up the process's file descriptors. So the first request must arrive within
    // `header_timeout`, whatever the protocol.
    let first_request = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::clone(&first_request);
    let inner = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |request| {
        arrived.notify_one();
        hyper::service::Service::call(&inner, request)
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let connection = graceful.watch(connection.into_owned());
    tokio::spawn(async move {
        tokio::pin!(connection);
        let first = tokio::time::timeout(header_timeout, first_request.notified());
        let ended = tokio::select! {
            ended = &mut connection => ended,
            arrived = first => {
                if arrived.is_err() {
                    tracing::debug!(peer = %peer, "no request within the header timeout");
                    return;
                }
                connection.await
            }
        };
        if let Err(err) = ended {
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
