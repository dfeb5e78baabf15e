use portcullis_api::Section;

use super::*;

fn parse(text: &str) -> Result<Config, portcullis_api::BuildError> {
    let table: toml::Table = toml::from_str(text).expect("valid TOML");
    Section::new("authorizers.main", table).parse()
}

const MINIMAL: &str = r#"
endpoint = "https://spicedb.example:50051"
preshared_key_env = "SPICEDB_KEY"
resource_type = "tenant"
subject_type = "token"
"#;

fn problems(config: &Config) -> Vec<&'static str> {
    match config.validate() {
        Ok(()) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| p.key).collect(),
    }
}

#[test]
fn defaults_fill_every_optional_key() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.permission, defaults::PERMISSION);
    assert_eq!(config.consistency, Consistency::MinimizeLatency);
    assert_eq!(config.timeout, defaults::TIMEOUT);
    assert_eq!(config.max_lookup, defaults::MAX_LOOKUP);
    assert!(!config.lookup && !config.partial && !config.allow_plaintext);
    assert_eq!(config.cache, CacheConfig::default());
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn every_key_parses() {
    let text = format!(
        "{MINIMAL}\nca_file = \"ca.pem\"\npermission = \"view\"\nsubject_relation = \"member\"\n\
         consistency = \"at_least_as_fresh\"\nzed_token = \"GhUKEzE2\"\ntimeout = \"750ms\"\n\
         lookup = true\nmax_lookup = 50\npartial = true\n\
         cache = {{ max_entries = 5, allow_ttl = \"1m\", deny_ttl = \"0s\" }}\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.timeout, Duration::from_millis(750));
    assert_eq!(config.cache.allow_ttl, Duration::from_secs(60));
    assert_eq!(config.cache.deny_ttl, Duration::ZERO);
    assert_eq!(config.consistency, Consistency::AtLeastAsFresh);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let err = parse(&format!("{MINIMAL}\n[cache]\nttl = \"1s\"\n")).unwrap_err();
    assert_eq!(err.path, "authorizers.main.cache.ttl");
    assert!(
        err.message.contains("unknown field `ttl`"),
        "{}",
        err.message
    );

    let err = parse(&format!("{MINIMAL}\nconsistency = \"eventual\"\n")).unwrap_err();
    assert_eq!(err.path, "authorizers.main.consistency");
}

#[test]
fn required_keys_are_required() {
    let err = parse("endpoint = \"http://127.0.0.1:50051\"").unwrap_err();
    assert!(err.message.contains("missing field"), "{}", err.message);
}

#[test]
fn exactly_one_key_source() {
    let mut config = parse(MINIMAL).unwrap();
    config.preshared_key_file = Some("key".into());
    assert_eq!(problems(&config), ["preshared_key_env"]);
    config.preshared_key_env = None;
    assert_eq!(problems(&config), Vec::<&str>::new());
    config.preshared_key_file = None;
    assert_eq!(problems(&config), ["preshared_key_env"]);
}

#[test]
fn plaintext_is_for_loopback_unless_allowed() {
    let mut config = parse(MINIMAL).unwrap();
    for loopback in [
        "http://127.0.0.1:50051",
        "http://localhost:50051",
        "http://[::1]:50051",
    ] {
        config.endpoint = loopback.to_owned();
        assert_eq!(problems(&config), Vec::<&str>::new(), "{loopback}");
    }
    config.endpoint = "http://spicedb:50051".to_owned();
    assert_eq!(problems(&config), ["endpoint"]);
    config.allow_plaintext = true;
    assert_eq!(problems(&config), Vec::<&str>::new());
    config.ca_file = Some("ca.pem".into());
    assert_eq!(problems(&config), ["ca_file"]);
}

#[test]
fn malformed_endpoints_are_refused() {
    let mut config = parse(MINIMAL).unwrap();
    for bad in [
        "spicedb:50051",
        "grpc://spicedb:50051",
        "https://user:pw@spicedb:50051",
        "https://spicedb:50051/api",
        "not a url",
    ] {
        config.endpoint = bad.to_owned();
        assert_eq!(problems(&config), ["endpoint"], "{bad}");
    }
}

#[test]
fn names_must_be_valid_spicedb_names() {
    let mut config = parse(MINIMAL).unwrap();
    config.resource_type = "Tenant".to_owned();
    config.subject_type = "to".to_owned();
    config.permission = "read-all".to_owned();
    config.subject_relation = Some("member_".to_owned());
    assert_eq!(
        problems(&config),
        [
            "resource_type",
            "subject_type",
            "permission",
            "subject_relation"
        ]
    );
}

#[test]
fn zed_token_goes_with_at_least_as_fresh() {
    let mut config = parse(MINIMAL).unwrap();
    config.consistency = Consistency::AtLeastAsFresh;
    assert_eq!(problems(&config), ["zed_token"]);
    config.zed_token = Some("GhUKEzE2".to_owned());
    assert_eq!(problems(&config), Vec::<&str>::new());
    config.consistency = Consistency::FullyConsistent;
    assert_eq!(problems(&config), ["zed_token"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut config = parse(MINIMAL).unwrap();
    config.timeout = Duration::ZERO;
    config.lookup = true;
    config.max_lookup = 0;
    config.preshared_key_env = None;
    assert_eq!(
        problems(&config),
        ["preshared_key_env", "timeout", "max_lookup"]
    );
}

#[test]
fn the_example_fragment_is_valid() {
    let text = include_str!("../../../../examples/spicedb/portcullis.toml");
    let root: toml::Table = toml::from_str(text).unwrap();
    let mut section = root["authorizers"]["spicedb"].as_table().unwrap().clone();
    assert_eq!(section.remove("type").unwrap().as_str(), Some("spicedb"));
    let config: Config = Section::new("authorizers.spicedb", section)
        .parse()
        .unwrap();
    assert_eq!(config.validate(), Ok(()));
}
