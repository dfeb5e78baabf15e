//! Test harness: real processes (Prometheus, the `portcullis` binary) on ephemeral loopback
//! ports, killed when dropped, and a small HTTP client. Every wait is a bounded loop.

#![allow(dead_code)]

pub mod alertmanager;
pub mod config;
pub mod jaeger;
pub mod recorder;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The timestamp of the last demo sample, the start of this minute; queries evaluate here. The
/// data ends "now" so that `/federate`, which evaluates at the current time, sees it.
pub fn end() -> i64 {
    static END: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *END.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        now.as_secs() as i64 / 60 * 60
    })
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where Debian's packages put their binaries.
pub const DEBIAN: &str = "/usr/bin";

/// Where `go install` puts its binaries.
pub fn go_bin() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("GOBIN").unwrap_or(format!("{home}/go/bin"))
}

/// Finds tool `name`: `$ENV_VAR` if set, else in `dir`.
pub fn tool(name: &str, env_var: &str, dir: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let candidate = Path::new(dir).join(name);
    assert!(
        candidate.is_file(),
        "{name} not found in {dir}: set {env_var}, or run scripts/test.sh, which installs it"
    );
    candidate
}

/// A child process killed on drop.
pub struct Process {
    child: Child,
    pub name: &'static str,
}

impl Process {
    pub fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        Self { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits at most `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers 200, for at most ~20 s.
pub async fn wait_ready(url: &str, process: &mut Process) {
    for _ in 0..200 {
        if let Some(status) = process.wait_exit(Duration::ZERO) {
            panic!("{} exited before it was ready: {status}", process.name);
        }
        if let Ok(response) = get(url, &[]).await
            && response.status == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} not ready at {url} after 20 s", process.name);
}

/// A real Prometheus serving the demo data of three tenants.
pub struct Prometheus {
    pub process: Process,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub async fn start() -> Self {
        Self::start_with_rules(None).await
    }

    /// Like [`Prometheus::start`], evaluating the rule file `rules` (YAML) every second.
    pub async fn start_with_rules(rules: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let openmetrics = dir.path().join("demo.om");
        let script = repo_root().join("examples/quickstart/demo-data.py");
        let generated = Command::new("python3")
            .arg(script)
            .args(["--end", &end().to_string()])
            .output()
            .expect("python3 runs the demo data generator");
        assert!(generated.status.success(), "demo-data.py failed");
        std::fs::write(&openmetrics, generated.stdout).unwrap();
        let promtool = tool("promtool", "PROMTOOL_BIN", DEBIAN);
        let backfill = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&openmetrics)
            .arg(&data)
            .output()
            .unwrap();
        assert!(backfill.status.success(), "backfill failed: {backfill:?}");
        let config = dir.path().join("prometheus.yml");
        let mut text = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\n".to_owned();
        if let Some(rules) = rules {
            std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
            text.push_str("rule_files:\n  - rules.yml\n");
        }
        std::fs::write(&config, text).unwrap();
        Self::start_on(dir, free_port()).await
    }

    async fn start_on(dir: tempfile::TempDir, port: u16) -> Self {
        let mut process = Process::spawn(
            "prometheus",
            Command::new(tool("prometheus", "PROMETHEUS_BIN", DEBIAN))
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg("--storage.tsdb.retention.time=100y")
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_ready(&format!("http://127.0.0.1:{port}/-/ready"), &mut process).await;
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The real `portcullis` binary with a configuration.
pub struct Portcullis {
    pub process: Process,
    pub port: u16,
    pub admin_port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Portcullis {
    /// Starts `portcullis` with `config`, in which `{listen}` and `{admin_listen}` are replaced by
    /// free loopback addresses.
    pub async fn start(config: &str) -> Self {
        Self::start_with_env(config, &[]).await
    }

    /// Like [`Portcullis::start`], with extra environment variables.
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let config = config
            .replace("{listen}", &format!("127.0.0.1:{port}"))
            .replace("{admin_listen}", &format!("127.0.0.1:{admin_port}"));
        let file = dir.path().join("portcullis.toml");
        std::fs::write(&file, config).unwrap();
        let log = dir.path().join("portcullis.log");
        let mut process = Process::spawn(
            "portcullis",
            Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("--config")
                .arg(&file)
                .env("PORTCULLIS_LOG", "debug")
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        wait_ready(
            &format!("http://127.0.0.1:{admin_port}/healthz"),
            &mut process,
        )
        .await;
        Self {
            process,
            port,
            admin_port,
            log,
            _dir: dir,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// An HTTP answer, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, hyper_util::client::legacy::Error> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("timeout")?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub async fn get(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, hyper_util::client::legacy::Error> {
    send(Method::GET, url, headers, Bytes::new()).await
}

pub async fn post_form(url: &str, headers: &[(&str, &str)], form: &str) -> Answer {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    send(Method::POST, url, &all, Bytes::from(form.to_owned()))
        .await
        .unwrap()
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The tenant (`namespace`) of every series in a Prometheus answer, sorted and deduplicated.
pub fn namespaces(answer: &serde_json::Value) -> Vec<String> {
    let data = &answer["data"];
    let items: Vec<&serde_json::Value> = match data {
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(_) => data["result"].as_array().unwrap().iter().collect(),
        other => panic!("unexpected data: {other}"),
    };
    let mut found: Vec<String> = items
        .iter()
        .map(|item| {
            let labels = item.get("metric").unwrap_or(item);
            labels["namespace"].as_str().unwrap_or("<none>").to_owned()
        })
        .collect();
    found.sort();
    found.dedup();
    found
}
