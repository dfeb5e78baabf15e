//! docs/configuration.md documents every configuration key: a key added to a config struct
//! without a line in the reference fails here.

mod support;

use serde::de::{self, Deserialize, Visitor};

/// The field names of a `#[derive(Deserialize)]` struct, read from what serde asks for.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Capture(Option<&'static [&'static str]>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    impl<'de> de::Deserializer<'de> for &mut Capture {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut capture = Capture(None);
    let _ = T::deserialize(&mut capture);
    capture.0.expect("a struct")
}

/// The text of the section of `doc` whose heading contains `heading`, up to the next heading of
/// the same or a higher level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("docs/configuration.md has no heading {heading:?}"));
    let level = doc[..start].rfind('\n').map_or(0, |nl| nl + 1);
    let hashes = doc[level..start].chars().take_while(|c| *c == '#').count();
    let rest = &doc[start + heading.len()..];
    let end = rest
        .match_indices("\n#")
        .find(|(at, _)| rest[at + 1..].chars().take_while(|c| *c == '#').count() <= hashes)
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

fn assert_documented(doc: &str, heading: &str, fields: &[&str]) {
    let text = section(doc, heading);
    for field in fields {
        assert!(
            text.contains(&format!("| `{field}` |")),
            "docs/configuration.md, section {heading}: key `{field}` is not documented"
        );
    }
}

#[test]
fn every_configuration_key_is_documented() {
    use portcullis::config as core;
    let doc = std::fs::read_to_string(support::repo_root().join("docs/configuration.md")).unwrap();
    let top: Vec<&str> = fields::<core::Config>().to_vec();
    for key in top {
        assert!(
            doc.contains(&format!("[{key}")),
            "top-level section [{key}] is not documented"
        );
    }
    let sections: Vec<(&str, &[&str])> = vec![
        ("## `[server]`", fields::<core::ServerConfig>()),
        ("## `[identity]`", fields::<core::IdentityConfig>()),
        ("## `[tenant]`", fields::<core::TenantConfig>()),
        ("## `[upstreams.<name>]`", fields::<core::UpstreamConfig>()),
        ("## `[[routes]]`", fields::<core::RouteConfig>()),
        ("## `[telemetry]`", fields::<core::TelemetryConfig>()),
        ("## `[audit]`", fields::<core::AuditConfig>()),
        (
            "### `type = \"allowlist\"`",
            fields::<portcullis_authorizer_allowlist::AllowlistConfig>(),
        ),
        (
            "### `type = \"spicedb\"`",
            fields::<portcullis_authorizer_spicedb::Config>(),
        ),
        (
            "### `type = \"spicedb\"`",
            fields::<portcullis_authorizer_spicedb::CacheConfig>(),
        ),
        (
            "### `type = \"promql\"`",
            fields::<portcullis_enforcer_promql::EnforcerConfig>(),
        ),
        (
            "### `type = \"logql\"`",
            fields::<portcullis_enforcer_logql::EnforcerConfig>(),
        ),
        (
            "### `type = \"tenant_header\"`",
            fields::<portcullis_enforcer_tenant_header::TenantHeaderConfig>(),
        ),
    ];
    for (heading, fields) in sections {
        assert_documented(&doc, heading, fields);
    }
}

#[test]
fn the_capture_sees_every_field() {
    let server = fields::<portcullis::config::ServerConfig>();
    assert!(
        server.contains(&"listen") && server.contains(&"shutdown_grace"),
        "{server:?}"
    );
}
