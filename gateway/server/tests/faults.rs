//! Load with faults: `wrk` drives 256 connections at the real `portcullis` binary for about ten
//! seconds while SpiceDB is killed and restarted and the upstream is stopped and started again.
//! Afterwards: the upstream never received a request that was not enforced or not authorized,
//! every request wrk sent got an HTTP status (an error status when it failed, never a dropped
//! connection), and the same gateway process serves again once both are back.

mod hardening;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use portcullis_authorizer_spicedb::testing::SpiceDb;
use support::config::GatewayConfig;
use support::{DEBIAN, Portcullis, get, tool};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The query alice sends, and what the upstream must receive for it.
const QUERY: &str = "sum(rate(http_requests_total[5m]))";
const ENFORCED: &str = "sum(rate(http_requests_total{namespace=\"acme\"}[5m]))";

/// The query bob sends for acme, which he may not read: it must never arrive.
const DENIED: &str = "bob_probe";

#[derive(Default)]
struct Counts {
    enforced: AtomicU64,
    unenforced: AtomicU64,
    unauthorized: AtomicU64,
}

/// An upstream that can be stopped (its listener and every open connection dropped, as in a
/// crash) and started again on the same port, counting what it receives.
struct FlakyUpstream {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: Option<JoinHandle<()>>,
}

impl FlakyUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let task = Some(tokio::spawn(serve(listener, Arc::clone(&counts))));
        Self { addr, counts, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("the upstream's port is free again within 5 s");
        self.task = Some(tokio::spawn(serve(listener, Arc::clone(&self.counts))));
    }
}

impl Drop for FlakyUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections until aborted; aborting drops the listener and every connection task.
async fn serve(listener: TcpListener, counts: Arc<Counts>) {
    let app = axum::Router::new().fallback(record).with_state(counts);
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn record(State(counts): State<Arc<Counts>>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let queries: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "query")
        .map(|(_, value)| value.into_owned())
        .collect();
    let counter = match queries.as_slice() {
        [one] if one == ENFORCED => &counts.enforced,
        other if other.iter().any(|q| q.contains(DENIED)) => &counts.unauthorized,
        _ => &counts.unenforced,
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let answer = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    Response::builder()
        .header("content-type", "application/json")
        .body(answer.into())
        .unwrap()
}

fn config(upstream: &str, spicedb: &SpiceDb) -> String {
    // Decisions are reused for a moment only, so that SpiceDB's absence shows under load.
    let authorizer = format!(
        "type = \"spicedb\"\n{}timeout = \"1s\"\n\
         cache = {{ max_entries = 1000, allow_ttl = \"100ms\", deny_ttl = \"100ms\" }}",
        spicedb.config_toml()
    );
    GatewayConfig::new("prometheus", upstream)
        .authorizer(&authorizer)
        .render()
}

/// The wrk script: nine requests in ten from alice for acme, one from bob for acme (denied);
/// every status counted per thread and summed at the end, with wrk's socket errors.
const WRK_SCRIPT: &str = r#"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sent = 0
end

function request()
  sent = sent + 1
  if sent % 10 == 0 then
    return wrk.format("GET", "/api/v1/query?tenant=acme&query=DENIED",
      { ["Authorization"] = "Bearer bob-token" })
  end
  return wrk.format("GET", "/api/v1/query?tenant=acme&query=QUERY",
    { ["Authorization"] = "Bearer alice-token" })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  local e = summary.errors
  io.write(string.format("socket_errors %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
  io.write(string.format("requests %d\n", summary.requests))
end
"#;

/// What wrk reported.
#[derive(Debug, Default)]
struct WrkReport {
    statuses: BTreeMap<u16, u64>,
    /// connect, read, write and timeout errors.
    socket_errors: [u64; 4],
    requests: u64,
}

fn parse_report(stdout: &str) -> WrkReport {
    let mut report = WrkReport::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| {
            words
                .get(i)
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match words.first() {
            Some(&"status") => {
                report.statuses.insert(number(1) as u16, number(2));
            }
            Some(&"socket_errors") => {
                report.socket_errors = [number(1), number(2), number(3), number(4)];
            }
            Some(&"requests") => report.requests = number(1),
            _ => {}
        }
    }
    report
}

#[tokio::test]
async fn under_load_restarts_of_spicedb_and_the_upstream_leak_nothing() {
    let spicedb = SpiceDb::start_with_example().await;
    let mut upstream = FlakyUpstream::start().await;
    let mut gw = Portcullis::start(&config(&upstream.url(), &spicedb)).await;
    let pid = gw.process.pid();

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("statuses.lua");
    let query: String = form_urlencoded::byte_serialize(QUERY.as_bytes()).collect();
    let lua = WRK_SCRIPT
        .replace("QUERY", &query)
        .replace("DENIED", DENIED);
    std::fs::write(&script, lua).unwrap();
    let wrk = tokio::process::Command::new(tool("wrk", "WRK_BIN", DEBIAN))
        .args(["-t2", "-c256", "-d10s", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(gw.url("/"))
        .kill_on_drop(true)
        .output();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        spicedb.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        spicedb.restart().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        upstream.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        upstream.restart().await;
    };
    let (output, ()) = tokio::join!(wrk, faults);
    let output = output.expect("wrk runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = parse_report(&stdout);
    eprintln!("wrk: {report:?}");

    // Nothing unenforced or unauthorized ever reached the upstream.
    let counts = &upstream.counts;
    assert_eq!(
        counts.unenforced.load(Ordering::SeqCst),
        0,
        "unenforced requests forwarded"
    );
    assert_eq!(
        counts.unauthorized.load(Ordering::SeqCst),
        0,
        "bob's requests forwarded"
    );
    // Every request got a status, and every failure an error status of its own kind.
    assert_eq!(
        report.socket_errors, [0; 4],
        "requests without an answer: {stdout}"
    );
    let answered: u64 = report.statuses.values().sum();
    assert_eq!(answered, report.requests, "{stdout}");
    // 503 while SpiceDB is down or slow, 502 while the upstream is, 504 if it stalls. 500 in the
    // moment after SpiceDB's restart, before the harness has written the schema back into its
    // in-memory datastore: the authorizer reports a schema without `tenant` as a
    // misconfiguration. All fail closed.
    for status in report.statuses.keys() {
        assert!(
            [200, 403, 500, 502, 503, 504].contains(status),
            "status {status}: {stdout}"
        );
    }
    assert!(
        report.statuses.get(&200).copied().unwrap_or(0) > 0,
        "{stdout}"
    );
    assert!(
        report.statuses.get(&403).copied().unwrap_or(0) > 0,
        "bob was never refused: {stdout}"
    );

    // The same process recovers: ready again, and alice is served.
    let mut recovered = false;
    for _ in 0..100 {
        let ready = get(&format!("http://127.0.0.1:{}/readyz", gw.admin_port), &[]).await;
        let query = format!("/api/v1/query?tenant=acme&query={query}");
        let served = get(&gw.url(&query), &[("authorization", "Bearer alice-token")]).await;
        if ready.is_ok_and(|r| r.status == StatusCode::OK)
            && served.is_ok_and(|r| r.status == StatusCode::OK)
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "no recovery within 10 s; the gateway's log:\n{}",
        gw.logs()
    );
    assert_eq!(gw.process.pid(), pid);
    hardening::assert_alive(&mut gw).await;
    assert!(
        !gw.logs().contains("alice-token"),
        "a token reached the log"
    );
}
