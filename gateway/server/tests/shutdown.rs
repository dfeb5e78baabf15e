//! Graceful shutdown of the real `portcullis` binary: on SIGTERM the listeners close at once,
//! requests already in flight run to their end (the upstream here holds them until the test
//! lets go), idle connections are closed, and the process exits within
//! `server.shutdown_grace`, cutting whatever is still running by then.

mod hardening;
mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use support::config::GatewayConfig;
use support::{Portcullis, get};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use hardening::read_all;

/// An upstream that holds every request whose query mentions `slow` until released, and
/// answers the others at once.
struct GatedUpstream {
    url: String,
    held: Arc<Gate>,
    task: tokio::task::JoinHandle<()>,
}

struct Gate {
    arrived: AtomicU64,
    release: Semaphore,
}

impl GatedUpstream {
    async fn start() -> Self {
        let held = Arc::new(Gate {
            arrived: AtomicU64::new(0),
            release: Semaphore::new(0),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&held));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, held, task }
    }

    /// Waits (at most 10 s) until `n` held requests have arrived.
    async fn wait_for(&self, n: u64) {
        for _ in 0..200 {
            if self.held.arrived.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the held request never reached the upstream");
    }

    fn release_all(&self) {
        self.held.release.add_permits(1000);
    }
}

impl Drop for GatedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let slow = request.uri().query().is_some_and(|q| q.contains("slow"));
    let mut body = "fast";
    if slow {
        gate.arrived.fetch_add(1, Ordering::SeqCst);
        let permit = tokio::time::timeout(Duration::from_secs(60), gate.release.acquire()).await;
        body = match permit {
            Ok(Ok(_)) => "released",
            _ => "gave up",
        };
    }
    let json =
        format!(r#"{{"status":"success","data":{{"resultType":"string","result":[0,"{body}"]}}}}"#);
    Response::builder()
        .header("content-type", "application/json")
        .body(json.into())
        .unwrap()
}

fn config(upstream: &str, grace: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .server(&format!("shutdown_grace = \"{grace}\""))
        .render()
}

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];

fn sigterm(gw: &Portcullis) {
    let status = Command::new("kill")
        .args(["-TERM", &gw.process.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits (at most 5 s) until nothing accepts connections on `port`.
async fn refused(port: u16) -> bool {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Starts a slow request in the background.
fn in_flight(gw: &Portcullis) -> tokio::task::JoinHandle<Result<support::Answer, String>> {
    let url = gw.url("/api/v1/query?tenant=acme&query=slow");
    tokio::spawn(async move { get(&url, ACME).await.map_err(|e| e.to_string()) })
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let upstream = GatedUpstream::start().await;
    let mut gw = Portcullis::start(&config(&upstream.url, "10s")).await;

    // An idle keep-alive connection that has finished one request.
    let mut idle = TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let request = "GET /api/v1/query?tenant=acme&query=fast HTTP/1.1\r\nHost: gw\r\n\
                   Authorization: Bearer acme-token\r\n\r\n";
    idle.write_all(request.as_bytes()).await.unwrap();
    let first = read_all(&mut idle, Duration::from_millis(500)).await;
    assert_eq!(first.status(), Some(200), "{}", first.text);
    assert!(!first.closed);

    let slow = [in_flight(&gw), in_flight(&gw)];
    upstream.wait_for(2).await;

    sigterm(&gw);
    assert!(
        refused(gw.port).await,
        "the proxy listener still accepts after SIGTERM"
    );
    assert!(
        refused(gw.admin_port).await,
        "the admin listener still accepts after SIGTERM"
    );
    let closed = read_all(&mut idle, Duration::from_secs(5)).await;
    assert!(
        closed.closed,
        "an idle connection was kept open: {}",
        closed.text
    );
    assert!(
        gw.process.wait_exit(Duration::ZERO).is_none(),
        "exited before its requests finished"
    );

    upstream.release_all();
    for request in slow {
        let answer = request
            .await
            .unwrap()
            .expect("the in-flight request is answered");
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(answer.text().contains("released"), "{}", answer.text());
    }
    let status = gw.process.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        gw.logs()
    );
    assert!(
        gw.logs().contains("all connections closed"),
        "{}",
        gw.logs()
    );
}

#[tokio::test]
async fn sigterm_cuts_requests_that_outlast_the_grace_period() {
    let upstream = GatedUpstream::start().await;
    let mut gw = Portcullis::start(&config(&upstream.url, "1s")).await;
    let slow = in_flight(&gw);
    upstream.wait_for(1).await;

    sigterm(&gw);
    // The upstream never answers; the grace period is 1 s. Bounded wait, with room for a
    // loaded machine.
    let status = gw.process.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        gw.logs()
    );
    let answer = slow.await.unwrap();
    assert!(
        answer.as_ref().is_err() || answer.as_ref().is_ok_and(|a| a.status != StatusCode::OK),
        "a cut request looked answered: {answer:?}"
    );
    assert!(gw.logs().contains("grace period over"), "{}", gw.logs());
    upstream.release_all();
}
