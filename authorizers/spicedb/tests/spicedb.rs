//! The SpiceDB authorizer against a real SpiceDB (see `testing::SpiceDb`), called directly.
//!
//! Every test starts its own SpiceDB on a free loopback port, seeded with
//! `examples/spicedb/schema.zed` and `examples/spicedb/relationships`:
//! alice-token reads acme and globex, bob-token reads initech, root-token administers acme.

use std::time::{Duration, Instant};

use portcullis_api::{
    Authorizer, AuthzError, AuthzRequest, Decision, Identity, IdentitySource, Subject,
    TenantRequest, TenantSet, Verdict,
};
use portcullis_authorizer_spicedb::Consistency;
use portcullis_authorizer_spicedb::testing::{
    DelayRelay, EXAMPLE_RELATIONSHIPS, EXAMPLE_SCHEMA, SpiceDb, TlsFiles,
};

/// Asks `authorizer` whether `subject` may use `permission` on `tenants` (none: unspecified).
async fn ask(
    authorizer: &dyn Authorizer,
    subject: &str,
    tenants: &[&str],
    permission: &str,
) -> Result<Decision, AuthzError> {
    let identity = Identity::new(Subject::new(subject), IdentitySource::Bearer);
    let tenants = match tenants {
        [] => TenantRequest::Unspecified,
        named => TenantRequest::Named(TenantSet::new(named.iter().copied()).unwrap()),
    };
    let request = AuthzRequest::new(&identity, &tenants, permission, "/api/v1/query");
    authorizer.authorize(&request).await
}

fn allowed(decision: &Decision) -> Vec<&str> {
    match &decision.verdict {
        Verdict::Allow(set) => set.iter().collect(),
        other => panic!("expected an allow, got {other:?}"),
    }
}

fn denial(decision: &Decision) -> &str {
    match &decision.verdict {
        Verdict::Deny(reason) => reason,
        other => panic!("expected a deny, got {other:?}"),
    }
}

fn misconfiguration(result: Result<Decision, AuthzError>) -> String {
    match result {
        Err(AuthzError::Misconfigured(message)) => message,
        other => panic!("expected a misconfiguration, got {other:?}"),
    }
}

#[tokio::test]
async fn a_viewer_is_allowed_and_the_answer_is_reused() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});

    let first = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&first), ["acme"]);
    assert!(!first.cache_hit);

    let second = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&second), ["acme"]);
    assert!(second.cache_hit);
}

#[tokio::test]
async fn a_subject_without_the_relation_is_denied() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});

    let decision = ask(&authorizer, "alice-token", &["initech"], "read")
        .await
        .unwrap();
    assert!(
        denial(&decision).contains("initech (no permission)"),
        "{decision:?}"
    );
    let stranger = ask(&authorizer, "unknown-token", &["acme"], "read")
        .await
        .unwrap();
    denial(&stranger);
}

#[tokio::test]
async fn the_route_permission_is_the_one_checked() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});

    let viewer_writes = ask(&authorizer, "alice-token", &["acme"], "write")
        .await
        .unwrap();
    assert!(
        denial(&viewer_writes).starts_with("`write` refused"),
        "{viewer_writes:?}"
    );
    let admin_writes = ask(&authorizer, "root-token", &["acme"], "write")
        .await
        .unwrap();
    assert_eq!(allowed(&admin_writes), ["acme"]);
    let default_permission = ask(&authorizer, "alice-token", &["globex"], "")
        .await
        .unwrap();
    assert_eq!(allowed(&default_permission), ["globex"]);
}

#[tokio::test]
async fn several_tenants_must_all_be_allowed_by_default() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});

    let all = ask(&authorizer, "alice-token", &["acme", "globex"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&all), ["acme", "globex"]);

    let one_refused = ask(
        &authorizer,
        "alice-token",
        &["acme", "globex", "initech"],
        "read",
    )
    .await
    .unwrap();
    let reason = denial(&one_refused);
    assert!(
        reason.contains("initech") && !reason.contains("acme"),
        "{reason}"
    );
}

#[tokio::test]
async fn partial_keeps_the_allowed_tenants() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.partial = true);

    let decision = ask(
        &authorizer,
        "alice-token",
        &["acme", "globex", "initech"],
        "read",
    )
    .await
    .unwrap();
    assert_eq!(allowed(&decision), ["acme", "globex"]);
    assert!(!decision.cache_hit);

    // Now all three answers are cached: the same request needs no call at all.
    let again = ask(
        &authorizer,
        "alice-token",
        &["acme", "globex", "initech"],
        "read",
    )
    .await
    .unwrap();
    assert_eq!(allowed(&again), ["acme", "globex"]);
    assert!(again.cache_hit);

    let none = ask(&authorizer, "bob-token", &["acme", "globex"], "read")
        .await
        .unwrap();
    denial(&none);
}

#[tokio::test]
async fn lookup_allows_exactly_what_spicedb_returns() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.lookup = true);

    let alice = ask(&authorizer, "alice-token", &[], "read").await.unwrap();
    assert_eq!(allowed(&alice), ["acme", "globex"]);
    let root = ask(&authorizer, "root-token", &[], "write").await.unwrap();
    assert_eq!(allowed(&root), ["acme"]);

    let nobody = ask(&authorizer, "unknown-token", &[], "read")
        .await
        .unwrap();
    assert!(denial(&nobody).contains("no tenant"), "{nobody:?}");

    let capped = spicedb.authorizer(|config| {
        config.lookup = true;
        config.max_lookup = 1;
    });
    let one = ask(&capped, "alice-token", &[], "read").await.unwrap();
    assert_eq!(allowed(&one).len(), 1);

    let off = spicedb.authorizer(|_| {});
    let decision = ask(&off, "alice-token", &[], "read").await.unwrap();
    assert!(
        denial(&decision).contains("`lookup` is off"),
        "{decision:?}"
    );
}

#[tokio::test]
async fn a_new_relationship_shows_once_the_cached_refusal_expires() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| {
        config.cache.allow_ttl = Duration::from_secs(1);
        config.cache.deny_ttl = Duration::from_secs(1);
    });

    let before = ask(&authorizer, "bob-token", &["acme"], "read")
        .await
        .unwrap();
    denial(&before);
    let cached_at = Instant::now();
    spicedb
        .write_relationships("tenant:acme#viewer@token:bob-token")
        .await;

    let still = ask(&authorizer, "bob-token", &["acme"], "read")
        .await
        .unwrap();
    denial(&still);
    assert!(still.cache_hit || cached_at.elapsed() >= Duration::from_secs(1));

    // SpiceDB's own minimize_latency snapshot may lag a few seconds behind the write as well.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let decision = ask(&authorizer, "bob-token", &["acme"], "read")
            .await
            .unwrap();
        if matches!(decision.verdict, Verdict::Allow(_)) {
            assert!(cached_at.elapsed() >= Duration::from_millis(900));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new relationship never showed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn fully_consistent_sees_a_write_at_once_and_bypasses_the_cache() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.consistency = Consistency::FullyConsistent);

    let before = ask(&authorizer, "bob-token", &["globex"], "read")
        .await
        .unwrap();
    denial(&before);
    spicedb
        .write_relationships("tenant:globex#viewer@token:bob-token")
        .await;
    let after = ask(&authorizer, "bob-token", &["globex"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&after), ["globex"]);
    assert!(!after.cache_hit);

    spicedb
        .delete_relationships("tenant:globex#viewer@token:bob-token")
        .await;
    let revoked = ask(&authorizer, "bob-token", &["globex"], "read")
        .await
        .unwrap();
    denial(&revoked);
}

#[tokio::test]
async fn names_missing_from_the_schema_are_misconfigurations() {
    let spicedb = SpiceDb::start_with_example().await;

    let authorizer = spicedb.authorizer(|_| {});
    let message = misconfiguration(ask(&authorizer, "alice-token", &["acme"], "delete").await);
    assert!(
        message.contains("`delete`") && message.contains(".permission"),
        "{message}"
    );
    let bulk = ask(&authorizer, "alice-token", &["acme", "globex"], "delete").await;
    assert!(misconfiguration(bulk).contains("`delete`"));
    let lookup = spicedb.authorizer(|config| config.lookup = true);
    assert!(misconfiguration(ask(&lookup, "alice-token", &[], "delete").await).contains("delete"));

    let wrong_type = spicedb.authorizer(|config| config.resource_type = "tenants".to_owned());
    let message = misconfiguration(ask(&wrong_type, "alice-token", &["acme"], "read").await);
    assert!(
        message.contains("`tenants`") && message.contains(".resource_type"),
        "{message}"
    );
    assert!(matches!(
        wrong_type.ready().await,
        Err(AuthzError::Misconfigured(_))
    ));

    let wrong_subject = spicedb.authorizer(|config| config.subject_type = "robot".to_owned());
    let message = misconfiguration(ask(&wrong_subject, "alice-token", &["acme"], "read").await);
    assert!(message.contains("robot"), "{message}");
    assert!(!message.contains("alice-token"), "{message}");
}

#[tokio::test]
async fn a_wrong_preshared_key_is_a_misconfiguration() {
    let spicedb = SpiceDb::start_with_example().await;
    let wrong_key =
        std::env::temp_dir().join(format!("portcullis-wrong-key-{}", std::process::id()));
    std::fs::write(&wrong_key, "not-the-key").unwrap();
    let authorizer =
        spicedb.authorizer(|config| config.preshared_key_file = Some(wrong_key.clone()));

    let message = misconfiguration(ask(&authorizer, "alice-token", &["acme"], "read").await);
    assert!(message.contains("preshared key"), "{message}");
    assert!(!message.contains("not-the-key"), "{message}");
    let _ = std::fs::remove_file(wrong_key);
}

#[tokio::test]
async fn ready_when_spicedb_answers_with_the_configured_names() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});
    authorizer.ready().await.unwrap();
}

#[tokio::test]
async fn a_killed_spicedb_is_unavailable_and_a_restarted_one_is_used_again() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.cache.max_entries = 0);
    let before = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&before), ["acme"]);

    spicedb.kill();
    let started = Instant::now();
    let down = ask(&authorizer, "alice-token", &["acme"], "read").await;
    assert!(matches!(down, Err(AuthzError::Unavailable(_))), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        authorizer.ready().await,
        Err(AuthzError::Unavailable(_))
    ));

    spicedb.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ask(&authorizer, "alice-token", &["acme"], "read").await {
            Ok(decision) => {
                assert_eq!(allowed(&decision), ["acme"]);
                break;
            }
            Err(AuthzError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("no recovery: {err:?}"),
        }
    }
    authorizer.ready().await.unwrap();
}

#[tokio::test]
async fn a_slow_spicedb_is_unavailable_within_the_timeout() {
    let spicedb = SpiceDb::start_with_example().await;
    let relay = DelayRelay::start(spicedb.addr()).await;
    let timeout = Duration::from_millis(500);
    let mut config = relay.config(&spicedb);
    config.timeout = timeout;
    config.cache.max_entries = 0;
    let authorizer = portcullis_authorizer_spicedb::SpicedbAuthorizer::new(
        "authorizers.spicedb",
        config,
        &Default::default(),
    )
    .unwrap();
    let through_relay = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&through_relay), ["acme"]);

    relay.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let slow = ask(&authorizer, "alice-token", &["acme"], "read").await;
    let took = started.elapsed();
    match slow {
        Err(AuthzError::Unavailable(message)) => assert!(message.contains("500ms"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );

    relay.set_delay(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(15);
    while ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no recovery after the slowdown");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_caveat_without_context_denies() {
    let spicedb = SpiceDb::start().await;
    spicedb
        .write_schema(
            "caveat on_weekdays(day string) { day != \"saturday\" && day != \"sunday\" }\n\
             definition token {}\n\
             definition tenant {\n\
                 relation viewer: token | token with on_weekdays\n\
                 permission read = viewer\n\
             }\n",
        )
        .await;
    spicedb
        .write_relationships(
            "tenant:acme#viewer@token:alice-token[on_weekdays]\n\
             tenant:globex#viewer@token:alice-token",
        )
        .await;
    let authorizer = spicedb.authorizer(|config| config.lookup = true);

    let decision = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert!(denial(&decision).contains("caveat"), "{decision:?}");
    let looked_up = ask(&authorizer, "alice-token", &[], "read").await.unwrap();
    assert_eq!(allowed(&looked_up), ["globex"]);
}

#[tokio::test]
async fn values_spicedb_cannot_hold_are_refused_without_asking() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.partial = true);

    let wildcard = ask(&authorizer, "alice-token", &["*"], "read")
        .await
        .unwrap();
    assert!(denial(&wildcard).contains("not a SpiceDB object id"));
    let mixed = ask(&authorizer, "alice-token", &["acme", "a.b"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&mixed), ["acme"]);
    let dotted_subject = ask(&authorizer, "eyJ.payload.sig", &["acme"], "read")
        .await
        .unwrap();
    denial(&dotted_subject);
    let wildcard_subject = ask(&authorizer, "*", &["acme"], "read").await.unwrap();
    denial(&wildcard_subject);
    let bad_permission = ask(&authorizer, "alice-token", &["acme"], "Read!").await;
    assert!(misconfiguration(bad_permission).contains("Read!"));
}

#[tokio::test]
async fn concurrent_requests_get_consistent_answers() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.partial = true);
    let requests = (0..20).map(|i| {
        let tenants: &[&str] = match i % 2 {
            0 => &["acme", "initech"],
            _ => &["acme", "globex", "initech"],
        };
        ask(&authorizer, "alice-token", tenants, "read")
    });
    for (i, decision) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .enumerate()
    {
        let decision = decision.unwrap();
        let expected: &[&str] = match i % 2 {
            0 => &["acme"],
            _ => &["acme", "globex"],
        };
        assert_eq!(allowed(&decision), expected);
    }
}

#[tokio::test]
async fn debug_output_never_shows_the_preshared_key() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|_| {});
    let shown = format!("{authorizer:?}");
    assert!(!shown.contains(spicedb.preshared_key()), "{shown}");
    assert!(shown.contains(&spicedb.endpoint()), "{shown}");
}

#[tokio::test]
async fn more_tenants_than_one_bulk_call_takes_are_split() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| {
        config.partial = true;
        config.timeout = Duration::from_secs(30);
    });
    let mut tenants: Vec<String> = (0..10_050).map(|i| format!("t{i}")).collect();
    tenants.push("acme".to_owned());
    let tenants: Vec<&str> = tenants.iter().map(String::as_str).collect();

    let decision = ask(&authorizer, "alice-token", &tenants, "read")
        .await
        .unwrap();
    assert_eq!(allowed(&decision), ["acme"]);
}

#[tokio::test]
async fn a_user_subject_type_checks_user_objects() {
    let spicedb = SpiceDb::start_with_example().await;
    let authorizer = spicedb.authorizer(|config| config.subject_type = "user".to_owned());

    let carol = ask(&authorizer, "carol", &["globex"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&carol), ["globex"]);
    let token_is_not_a_user = ask(&authorizer, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    denial(&token_is_not_a_user);
}

/// A CA and a certificate for `127.0.0.1` signed by it, written to `dir`.
fn tls_files(dir: &std::path::Path) -> TlsFiles {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    std::fs::create_dir_all(dir).unwrap();
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(&files.cert, server.pem()).unwrap();
    std::fs::write(&files.key, server_key.serialize_pem()).unwrap();
    std::fs::write(&files.ca, ca.pem()).unwrap();
    files
}

#[tokio::test]
async fn tls_verifies_spicedb_against_the_configured_ca() {
    let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
    let spicedb = SpiceDb::start_with_tls(tls_files(&dir)).await;
    spicedb.write_schema(EXAMPLE_SCHEMA).await;
    spicedb.write_relationships(EXAMPLE_RELATIONSHIPS).await;
    assert!(spicedb.endpoint().starts_with("https://"));

    let with_ca = spicedb.authorizer(|_| {});
    let decision = ask(&with_ca, "alice-token", &["acme"], "read")
        .await
        .unwrap();
    assert_eq!(allowed(&decision), ["acme"]);

    // The system roots do not know the test CA: the handshake fails, nothing is sent in clear.
    let system_roots = spicedb.authorizer(|config| config.ca_file = None);
    let refused = ask(&system_roots, "alice-token", &["acme"], "read").await;
    assert!(
        matches!(refused, Err(AuthzError::Unavailable(_))),
        "{refused:?}"
    );

    // Plaintext to a TLS port gets no answer either.
    let plaintext = spicedb.authorizer(|config| {
        config.endpoint = config.endpoint.replace("https://", "http://");
        config.ca_file = None;
    });
    let refused = ask(&plaintext, "alice-token", &["acme"], "read").await;
    assert!(
        matches!(refused, Err(AuthzError::Unavailable(_))),
        "{refused:?}"
    );

    drop(spicedb);
    let _ = std::fs::remove_dir_all(dir);
}
