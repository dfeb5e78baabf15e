//! Building the authorizer from its configuration section, with no SpiceDB running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use portcullis_api::{
    AuthorizerFactory, AuthzError, AuthzRequest, Identity, IdentitySource, PluginContext, Section,
    Subject, TenantRequest, TenantSet,
};
use portcullis_authorizer_spicedb::{SpicedbFactory, TYPE_NAME};

fn section(body: &str) -> Section {
    Section::new("authorizers.main", toml::from_str(body).unwrap())
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The build error, when building fails.
fn build_error(section: &Section, context: &PluginContext) -> portcullis_api::BuildError {
    match SpicedbFactory.build(section, context) {
        Ok(_) => panic!("the section built"),
        Err(err) => err,
    }
}

/// A key file in a directory of its own, removed on drop.
struct KeyFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeyFile {
    fn new(name: &str, content: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("portcullis-factory-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        Self { dir, path }
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn registered_as_spicedb() {
    assert_eq!(SpicedbFactory.type_name(), "spicedb");
    assert_eq!(TYPE_NAME, "spicedb");
}

#[test]
fn startup_never_waits_for_spicedb() {
    let key = KeyFile::new("startup-key", "s3cr3t-preshared\n");
    let body = format!(
        "endpoint = \"http://127.0.0.1:{}\"\npreshared_key_file = \"{}\"\n\
         resource_type = \"tenant\"\nsubject_type = \"token\"\ntimeout = \"1s\"\n",
        closed_port(),
        key.path.display()
    );
    // Built outside any async runtime, with nothing listening.
    let authorizer = SpicedbFactory
        .build(&section(&body), &PluginContext::default())
        .unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identity = Identity::new(Subject::new("alice-token"), IdentitySource::Bearer);
    let tenants = TenantRequest::Named(TenantSet::single("acme").unwrap());
    let request = AuthzRequest::new(&identity, &tenants, "read", "/api/v1/query");
    let started = Instant::now();
    let result = runtime.block_on(authorizer.authorize(&request));
    assert!(
        matches!(result, Err(AuthzError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(
        runtime.block_on(authorizer.ready()),
        Err(AuthzError::Unavailable(_))
    ));
}

#[test]
fn a_missing_key_source_names_the_variable_only() {
    let body = "endpoint = \"https://spicedb.example:443\"\n\
                preshared_key_env = \"PORTCULLIS_TEST_UNSET_SPICEDB_KEY\"\n\
                resource_type = \"tenant\"\nsubject_type = \"token\"\n";
    let err = build_error(&section(body), &PluginContext::default());
    assert_eq!(err.path, "authorizers.main.preshared_key_env");
    assert!(
        err.message.contains("PORTCULLIS_TEST_UNSET_SPICEDB_KEY"),
        "{err}"
    );
}

#[test]
fn relative_files_start_at_the_config_directory() {
    let key = KeyFile::new("relative-key", "s3cr3t-preshared");
    let body = "endpoint = \"https://spicedb.example:443\"\n\
                preshared_key_file = \"relative-key\"\nca_file = \"missing-ca.pem\"\n\
                resource_type = \"tenant\"\nsubject_type = \"token\"\n";
    let mut context = PluginContext::default();
    context.config_dir = key.dir.clone();
    let err = build_error(&section(body), &context);
    // The key was found next to the configuration; the CA file was looked for there too.
    assert_eq!(err.path, "authorizers.main.ca_file");
    assert!(err.message.contains("missing-ca.pem"), "{err}");
    assert!(!err.message.contains("s3cr3t"), "{err}");
}

#[test]
fn https_with_system_roots_builds() {
    let key = KeyFile::new("tls-key", "s3cr3t-preshared");
    let body = format!(
        "endpoint = \"https://spicedb.example:443\"\npreshared_key_file = \"{}\"\n\
         resource_type = \"tenant\"\nsubject_type = \"token\"\n",
        key.path.display()
    );
    assert!(
        SpicedbFactory
            .build(&section(&body), &PluginContext::default())
            .is_ok()
    );
}

#[test]
fn several_problems_are_reported_together() {
    let body = "endpoint = \"http://spicedb:50051\"\nresource_type = \"Tenant\"\n\
                subject_type = \"token\"\ntimeout = \"0s\"\n";
    let err = build_error(&section(body), &PluginContext::default());
    assert_eq!(err.path, "authorizers.main");
    for key in [
        "endpoint:",
        "preshared_key_env:",
        "resource_type:",
        "timeout:",
    ] {
        assert!(err.message.contains(key), "{key} missing from {err}");
    }
}
