//! Helpers of the hardening tests (attacks, faults, shutdown, the differential check): raw
//! HTTP/1.1 over TCP, the gateway's resident memory, and checking what reached an upstream.
//! Every wait is bounded.

#![allow(dead_code)]

use std::time::Duration;

use http::StatusCode;
use portcullis_api::TenantSet;
use portcullis_enforcer_promql::{EnforcerConfig, PromqlEnforcer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::recorder::{Received, Recorder};
use crate::support::{Portcullis, get};

/// What came back on a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status of every response read, in order.
    pub statuses: Vec<u16>,
    /// Everything read, lossily decoded.
    pub text: String,
    /// Whether the server closed the connection (rather than the read timing out).
    pub closed: bool,
}

impl RawAnswer {
    /// The first status, if any response came back.
    pub fn status(&self) -> Option<u16> {
        self.statuses.first().copied()
    }
}

/// Sends `request` as is on a new connection to `port`, then reads until the server closes the
/// connection or `wait` passes without a byte.
pub async fn raw(port: u16, request: &[u8], wait: Duration) -> RawAnswer {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the gateway");
    // The server may answer and close before it has read everything: a write error then is
    // part of the answer, not a failure.
    let _ = stream.write_all(request).await;
    read_all(&mut stream, wait).await
}

/// Reads from `stream` until EOF, an error, or `wait` without a byte.
pub async fn read_all(stream: &mut TcpStream, wait: Duration) -> RawAnswer {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let closed = loop {
        match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => bytes.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    RawAnswer {
        statuses: statuses(&text),
        text,
        closed,
    }
}

/// The status codes of the HTTP/1.1 responses in `text`.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text.get(at + 9..at + 12)?.parse().ok())
        .collect()
}

/// The resident memory of process `pid`, in KiB, from `/proc/<pid>/status`.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Asserts the gateway process is still running and its admin listener answers `/healthz`.
pub async fn assert_alive(gw: &mut Portcullis) {
    assert!(
        gw.process.wait_exit(Duration::ZERO).is_none(),
        "the gateway exited; its log:\n{}",
        gw.logs()
    );
    let health = get(&format!("http://127.0.0.1:{}/healthz", gw.admin_port), &[])
        .await
        .expect("the admin listener answers");
    assert_eq!(health.status, StatusCode::OK);
}

/// Whether `query` already reads only `tenants`: enforcing it again changes nothing. The
/// enforcer's own properties (fuzzed and property-tested) make this a check that every selector
/// carries exactly the tenant matcher.
pub fn is_enforced(query: &str, tenants: &[&str], selector: bool) -> bool {
    let enforcer = PromqlEnforcer::new(EnforcerConfig::new("namespace")).expect("valid");
    let allowed = TenantSet::new(tenants.iter().copied()).expect("non-empty");
    // promql-parser recurses once per operator: a long chain needs more than a test thread's
    // stack, as the gateway's own threads have.
    let query = query.to_owned();
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            let again = match selector {
                true => enforcer.enforce_selector(Some(&query), &allowed),
                false => enforcer.enforce_query(&query, &allowed),
            };
            again.as_deref() == Ok(query.as_str())
        })
        .expect("a thread")
        .join()
        .expect("the check did not panic")
}

/// Asserts that every request `recorder` received reads only `tenants`: each `query` and
/// `match[]`, in the URL and the body, is enforced; neither the tenant parameter nor the
/// caller's credential reached it.
pub fn assert_all_enforced(recorder: &Recorder, tenants: &[&str]) {
    for received in recorder.received() {
        assert_enforced(&received, tenants);
    }
}

/// [`assert_all_enforced`] for one request.
pub fn assert_enforced(received: &Received, tenants: &[&str]) {
    let queries = [received.url_values("query"), received.body_values("query")].concat();
    let selectors = [
        received.url_values("match[]"),
        received.body_values("match[]"),
    ]
    .concat();
    for query in &queries {
        assert!(
            is_enforced(query, tenants, false),
            "unenforced query {query:?}: {received:?}"
        );
    }
    for selector in &selectors {
        assert!(
            is_enforced(selector, tenants, true),
            "unenforced selector {selector:?}: {received:?}"
        );
    }
    assert!(
        !(queries.is_empty() && selectors.is_empty()),
        "a request without any query or selector reached the upstream: {received:?}"
    );
    assert!(received.url_values("tenant").is_empty() && received.body_values("tenant").is_empty());
    assert!(
        !received.headers.contains_key("authorization"),
        "{received:?}"
    );
}

/// Whether the LogQL `query` (or stream selector) already reads only `tenants`: enforcing it
/// again changes nothing.
pub fn is_logql_enforced(query: &str, tenants: &[&str], selector: bool) -> bool {
    use portcullis_enforcer_logql::{EnforcerConfig, LogqlEnforcer};

    let enforcer = LogqlEnforcer::new(EnforcerConfig::new("namespace")).expect("valid");
    let allowed = TenantSet::new(tenants.iter().copied()).expect("non-empty");
    let again = match selector {
        true => enforcer.enforce_selector(Some(query), &allowed),
        false => enforcer.enforce_query(query, &allowed),
    };
    again.as_deref() == Ok(query)
}
