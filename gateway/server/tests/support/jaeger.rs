//! A real Jaeger v2 (built with `go install`), in-memory, on ephemeral loopback ports.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Process, free_port, get, go_bin, tool, wait_ready};

/// A running Jaeger: OTLP/gRPC receiver and query API.
pub struct Jaeger {
    pub process: Process,
    pub otlp_port: u16,
    pub query_port: u16,
    _dir: tempfile::TempDir,
}

impl Jaeger {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (otlp_port, query_port, query_grpc_port) = (free_port(), free_port(), free_port());
        // The example users run, on ephemeral ports.
        let config = include_str!("../../../../examples/tracing/jaeger.yaml")
            .replace("127.0.0.1:4317", &format!("127.0.0.1:{otlp_port}"))
            .replace("127.0.0.1:16686", &format!("127.0.0.1:{query_port}"))
            .replace("127.0.0.1:16685", &format!("127.0.0.1:{query_grpc_port}"));
        let file = dir.path().join("jaeger.yaml");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("jaeger.log")).unwrap();
        let mut process = Process::spawn(
            "jaeger",
            Command::new(tool("jaeger", "JAEGER_BIN", &go_bin()))
                .arg(format!("--config={}", file.display()))
                .stdout(Stdio::null())
                .stderr(log),
        );
        wait_ready(
            &format!("http://127.0.0.1:{query_port}/api/services"),
            &mut process,
        )
        .await;
        Self {
            process,
            otlp_port,
            query_port,
            _dir: dir,
        }
    }

    pub fn otlp_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_port)
    }

    /// The spans of trace `trace_id`, waiting (bounded, ~30 s) until `expected` spans arrived.
    pub async fn trace(&self, trace_id: &str, expected: usize) -> Vec<Span> {
        let url = format!("http://127.0.0.1:{}/api/traces/{trace_id}", self.query_port);
        let mut spans = Vec::new();
        for _ in 0..150 {
            if let Ok(answer) = get(&url, &[]).await
                && answer.status == http::StatusCode::OK
            {
                spans = parse_spans(&answer.json());
                if spans.len() >= expected {
                    return spans;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "trace {trace_id}: {} of {expected} spans after 30 s: {spans:?}",
            spans.len()
        );
    }
}

/// One span as Jaeger's query API returns it.
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub span_id: String,
    pub parent_id: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Span {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_spans(answer: &serde_json::Value) -> Vec<Span> {
    let Some(trace) = answer["data"].get(0) else {
        return Vec::new();
    };
    let spans = trace["spans"].as_array().cloned().unwrap_or_default();
    spans
        .iter()
        .map(|span| Span {
            name: span["operationName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            span_id: span["spanID"].as_str().unwrap_or_default().to_owned(),
            parent_id: span["references"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["refType"] == "CHILD_OF"))
                .and_then(|r| r["spanID"].as_str())
                .map(str::to_owned),
            tags: span["tags"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|tag| {
                    let value = match &tag["value"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (tag["key"].as_str().unwrap_or_default().to_owned(), value)
                })
                .collect(),
        })
        .collect()
}
