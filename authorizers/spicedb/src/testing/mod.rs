//! A real SpiceDB for tests, behind the `test-support` feature.
//!
//! [`SpiceDb::start`] runs `spicedb serve` with the in-memory datastore on a free loopback port
//! and a random preshared key, waits until it answers, and kills it when dropped. Schema and
//! relationships are written through the API and remembered, so [`SpiceDb::restart`] brings
//! back the same data on the same port. [`DelayRelay`] sits between a client and SpiceDB and
//! holds every chunk of bytes for a settable delay, to make SpiceDB look slow.
//!
//! SpiceDB runs with a 20ms revision quantization window instead of its default 5s, and every
//! write returns only once that window has passed three times, so that a `minimize_latency`
//! read sees what a test has just written.
//!
//! The binary is found through `SPICEDB_BIN`, else `$HOME/go/bin/spicedb`, else `PATH`. Without
//! one, [`SpiceDb::start`] panics with the command that installs it: tests never skip silently.
//!
//! ```no_run
//! # async fn demo() {
//! use portcullis_authorizer_spicedb::testing::SpiceDb;
//!
//! let spicedb = SpiceDb::start_with_example().await;
//! let authorizer = spicedb.authorizer(|config| config.partial = true);
//! # }
//! ```

mod relationships;
mod relay;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use portcullis_api::PluginContext;
use spicedb_rs_proto::authzed::api::v1::relationship_update::Operation;
use spicedb_rs_proto::authzed::api::v1::{
    ReadSchemaRequest, RelationshipUpdate, WriteRelationshipsRequest, WriteSchemaRequest,
};
use tonic::Code;

pub use relay::DelayRelay;

use crate::SpicedbAuthorizer;
use crate::client::{Connection, TlsRoots};
use crate::config::{CacheConfig, Config, Consistency, defaults};
use crate::secret::PresharedKey;

/// The example schema, `examples/spicedb/schema.zed`.
pub const EXAMPLE_SCHEMA: &str = include_str!("../../../../examples/spicedb/schema.zed");

/// The example relationships, `examples/spicedb/relationships`.
pub const EXAMPLE_RELATIONSHIPS: &str = include_str!("../../../../examples/spicedb/relationships");

/// How long [`SpiceDb::start`] waits for SpiceDB to answer.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// How often [`SpiceDb::start`] tries a new port when SpiceDB exits at once (e.g. a port race).
const START_ATTEMPTS: usize = 3;

/// SpiceDB's revision quantization window: a `minimize_latency` read may use a snapshot up to
/// about this old.
const QUANTIZATION: Duration = Duration::from_millis(20);

/// The deadline of each call the harness makes.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A `spicedb serve` process on a loopback port, killed on drop.
pub struct SpiceDb {
    binary: PathBuf,
    port: u16,
    key: String,
    dir: PathBuf,
    tls: Option<TlsFiles>,
    child: Mutex<Option<Child>>,
    written: Mutex<Written>,
    connection: Connection,
}

/// PEM files for a SpiceDB that serves gRPC over TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate (valid for `127.0.0.1`).
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
    /// The CA that signed the certificate, for `ca_file`.
    pub ca: PathBuf,
}

/// What was written, to write again after a restart (the datastore lives in memory).
#[derive(Default)]
struct Written {
    schema: Option<String>,
    relationships: BTreeSet<String>,
}

impl SpiceDb {
    /// Starts an empty SpiceDB and waits until it answers. Panics when it cannot.
    pub async fn start() -> Self {
        Self::launch(None).await
    }

    /// Starts an empty SpiceDB that serves gRPC over TLS with `tls`; its endpoint is
    /// `https://127.0.0.1:<port>` and [`SpiceDb::config`] sets `ca_file`.
    pub async fn start_with_tls(tls: TlsFiles) -> Self {
        Self::launch(Some(tls)).await
    }

    async fn launch(tls: Option<TlsFiles>) -> Self {
        let binary = spicedb_binary();
        let dir = scratch_dir();
        let key = random_hex();
        std::fs::write(dir.join("preshared-key"), &key).expect("write the preshared key file");
        let secret = PresharedKey::new(key.clone()).expect("a hex key is a valid key");

        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(&binary, port, &key, &dir, tls.as_ref());
            let roots = tls
                .as_ref()
                .map(|tls| TlsRoots::Pem(std::fs::read(&tls.ca).expect("read the CA file")));
            let connection =
                Connection::new(&endpoint(port, tls.is_some()), roots, &secret, CALL_TIMEOUT)
                    .expect("a loopback endpoint is valid");
            match wait_until_ready(&mut child, &connection, &dir).await {
                Ok(()) => {
                    return Self {
                        binary,
                        port,
                        key,
                        dir,
                        tls,
                        child: Mutex::new(Some(child)),
                        written: Mutex::default(),
                        connection,
                    };
                }
                Err(log) => {
                    stop(child);
                    last_log = log;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("SpiceDB did not start; the end of its log:\n{last_log}");
    }

    /// Starts a SpiceDB holding the example schema and relationships of `examples/spicedb/`.
    pub async fn start_with_example() -> Self {
        let spicedb = Self::start().await;
        spicedb.write_schema(EXAMPLE_SCHEMA).await;
        spicedb.write_relationships(EXAMPLE_RELATIONSHIPS).await;
        spicedb
    }

    /// The gRPC endpoint, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        endpoint(self.port, self.tls.is_some())
    }

    /// The gRPC address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// A file holding the preshared key, for `preshared_key_file`.
    pub fn preshared_key_file(&self) -> PathBuf {
        self.dir.join("preshared-key")
    }

    /// The preshared key itself, for a test that needs to send it some other way.
    pub fn preshared_key(&self) -> &str {
        &self.key
    }

    /// An authorizer configuration for this SpiceDB and the example schema (tenants are
    /// `tenant` objects, callers `token` objects), with every other key at its default.
    pub fn config(&self) -> Config {
        let mut config = config_for(&self.endpoint(), &self.preshared_key_file());
        config.ca_file = self.tls.as_ref().map(|tls| tls.ca.clone());
        config
    }

    /// The body of an `[authorizers.<name>]` section (without `type`) equal to
    /// [`SpiceDb::config`], for tests that write a whole gateway configuration.
    pub fn config_toml(&self) -> String {
        let mut toml = format!(
            "endpoint = \"{}\"\npreshared_key_file = \"{}\"\nresource_type = \"tenant\"\n\
             subject_type = \"token\"\n",
            self.endpoint(),
            self.preshared_key_file().display(),
        );
        if let Some(tls) = &self.tls {
            toml.push_str(&format!("ca_file = \"{}\"\n", tls.ca.display()));
        }
        toml
    }

    /// An authorizer built from [`SpiceDb::config`] after `edit`. Panics when it cannot be built.
    pub fn authorizer(&self, edit: impl FnOnce(&mut Config)) -> SpicedbAuthorizer {
        let mut config = self.config();
        edit(&mut config);
        SpicedbAuthorizer::new("authorizers.spicedb", config, &PluginContext::default())
            .unwrap_or_else(|err| panic!("cannot build the authorizer: {err}"))
    }

    /// Replaces the schema. Panics when SpiceDB rejects it.
    pub async fn write_schema(&self, schema: &str) {
        self.send_schema(schema).await;
        self.written.lock().expect("not poisoned").schema = Some(schema.to_owned());
    }

    /// Creates (or keeps) the relationships in `text`: one per line in the notation
    /// `tenant:acme#viewer@token:alice`, optionally with a caveat name as `[caveat]`; empty lines
    /// and lines starting with `#` or `//` are skipped. Panics when SpiceDB rejects them.
    pub async fn write_relationships(&self, text: &str) {
        let lines = relationships::lines(text);
        self.send_relationships(&lines, Operation::Touch).await;
        self.written
            .lock()
            .expect("not poisoned")
            .relationships
            .extend(lines);
    }

    /// Deletes the relationships in `text` (same notation as [`SpiceDb::write_relationships`]).
    pub async fn delete_relationships(&self, text: &str) {
        let lines = relationships::lines(text);
        self.send_relationships(&lines, Operation::Delete).await;
        let mut written = self.written.lock().expect("not poisoned");
        for line in &lines {
            written.relationships.remove(line);
        }
    }

    /// Kills the process at once (no graceful shutdown), as a crash would.
    pub fn kill(&self) {
        if let Some(child) = self.child.lock().expect("not poisoned").take() {
            stop(child);
        }
    }

    /// Starts SpiceDB again on the same port and writes back the schema and relationships
    /// written so far. Panics when it does not come up.
    pub async fn restart(&self) {
        self.kill();
        let tls = self.tls.as_ref();
        let mut child = spawn(&self.binary, self.port, &self.key, &self.dir, tls);
        if let Err(log) = wait_until_ready(&mut child, &self.connection, &self.dir).await {
            stop(child);
            panic!(
                "SpiceDB did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
        *self.child.lock().expect("not poisoned") = Some(child);
        let written = std::mem::take(&mut *self.written.lock().expect("not poisoned"));
        if let Some(schema) = &written.schema {
            self.write_schema(schema).await;
        }
        let relationships: Vec<String> = written.relationships.into_iter().collect();
        self.write_relationships(&relationships.join("\n")).await;
    }

    async fn send_schema(&self, schema: &str) {
        let mut request = tonic::Request::new(WriteSchemaRequest {
            schema: schema.to_owned(),
        });
        request.set_timeout(CALL_TIMEOUT);
        if let Err(status) = self.connection.schema().write_schema(request).await {
            panic!("SpiceDB rejected the schema: {}", status.message());
        }
        tokio::time::sleep(QUANTIZATION * 3).await;
    }

    async fn send_relationships(&self, lines: &[String], operation: Operation) {
        if lines.is_empty() {
            return;
        }
        let updates = lines
            .iter()
            .map(|line| RelationshipUpdate {
                operation: operation as i32,
                relationship: Some(
                    relationships::parse(line).unwrap_or_else(|err| panic!("{err}")),
                ),
            })
            .collect();
        let mut request = tonic::Request::new(WriteRelationshipsRequest {
            updates,
            ..Default::default()
        });
        request.set_timeout(CALL_TIMEOUT);
        if let Err(status) = self
            .connection
            .permissions()
            .write_relationships(request)
            .await
        {
            panic!("SpiceDB rejected the relationships: {}", status.message());
        }
        tokio::time::sleep(QUANTIZATION * 3).await;
    }
}

/// Waits until SpiceDB answers a call, or returns the end of its log when it exits or takes
/// longer than [`STARTUP_LIMIT`].
async fn wait_until_ready(
    child: &mut Child,
    connection: &Connection,
    dir: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < STARTUP_LIMIT {
        if !matches!(child.try_wait(), Ok(None)) {
            return Err(log_tail(dir));
        }
        let mut request = tonic::Request::new(ReadSchemaRequest {});
        request.set_timeout(Duration::from_secs(1));
        match connection.schema().read_schema(request).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::NotFound => return Ok(()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(format!(
        "no answer within {STARTUP_LIMIT:?}\n{}",
        log_tail(dir)
    ))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("spicedb.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl std::fmt::Debug for SpiceDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiceDb")
            .field("endpoint", &self.endpoint())
            .field("preshared_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Drop for SpiceDb {
    // Known limitation: a test process killed with SIGKILL runs no destructor, so its SpiceDB
    // keeps running, because the standard library cannot tie a child's life to its parent's.
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The SpiceDB binary: `SPICEDB_BIN`, else `$HOME/go/bin/spicedb`, else `spicedb` on `PATH`.
///
/// Panics with the install command when none exists.
pub fn spicedb_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPICEDB_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "SPICEDB_BIN points at `{}`, which is no file",
            path.display()
        );
        return path;
    }
    let home = std::env::var_os("HOME").map(|home| Path::new(&home).join("go/bin/spicedb"));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("spicedb"));
    home.into_iter()
        .chain(on_path)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no SpiceDB binary: these tests need one. Install it with \
                 `go install github.com/authzed/spicedb/cmd/spicedb@v1.56.2` (it lands in \
                 $HOME/go/bin), or point SPICEDB_BIN at one"
            )
        })
}

/// The configuration [`SpiceDb::config`] returns, for any endpoint and key file.
fn config_for(endpoint: &str, key_file: &Path) -> Config {
    Config {
        endpoint: endpoint.to_owned(),
        ca_file: None,
        allow_plaintext: false,
        preshared_key_env: None,
        preshared_key_file: Some(key_file.to_path_buf()),
        resource_type: "tenant".to_owned(),
        permission: defaults::PERMISSION.to_owned(),
        subject_type: "token".to_owned(),
        subject_relation: None,
        consistency: Consistency::default(),
        zed_token: None,
        timeout: defaults::TIMEOUT,
        lookup: false,
        max_lookup: defaults::MAX_LOOKUP,
        partial: false,
        cache: CacheConfig::default(),
    }
}

impl DelayRelay {
    /// [`SpiceDb::config`], but through this relay.
    pub fn config(&self, spicedb: &SpiceDb) -> Config {
        config_for(&self.endpoint(), &spicedb.preshared_key_file())
    }
}

fn spawn(binary: &Path, port: u16, key: &str, dir: &Path, tls: Option<&TlsFiles>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("spicedb.log"))
        .expect("open the SpiceDB log file");
    let log_err = log.try_clone().expect("clone the log file handle");
    let mut command = Command::new(binary);
    command.arg("serve");
    if let Some(tls) = tls {
        command
            .arg(format!("--grpc-tls-cert-path={}", tls.cert.display()))
            .arg(format!("--grpc-tls-key-path={}", tls.key.display()));
    }
    command
        .args(["--datastore-engine", "memory"])
        .arg(format!("--grpc-addr=127.0.0.1:{port}"))
        .args(["--http-enabled=false", "--metrics-enabled=false"])
        .args(["--dispatch-cluster-enabled=false", "--telemetry-endpoint="])
        .args(["--skip-release-check", "--log-level=warn"])
        // Production's 5s window would let a `minimize_latency` read miss a write for seconds.
        .arg(format!(
            "--datastore-revision-quantization-interval={QUANTIZATION:?}"
        ))
        // The key goes through the environment so that it does not show in `ps`.
        .env("SPICEDB_GRPC_PRESHARED_KEY", key)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run `{}`: {err}", binary.display()))
}

fn endpoint(port: u16, tls: bool) -> String {
    match tls {
        true => format!("https://127.0.0.1:{port}"),
        false => format!("http://127.0.0.1:{port}"),
    }
}

/// A port that was free a moment ago; SpiceDB binds it right after.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

/// A fresh directory under the system's temporary directory.
fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("portcullis-spicedb-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// 32 hex digits that differ from run to run; good enough for a test's preshared key.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};

    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_usize(i);
        *part = hasher.finish();
    }
    format!("{:016x}{:016x}", parts[0], parts[1])
}
