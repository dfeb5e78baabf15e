//! Header handling: the caller's identity (a bearer token, or a trusted header), the tenant
//! header, and the headers that may travel upstream.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use portcullis::authn::Authenticator;
use portcullis::config::{TenantConfig, TenantSource, WhenMissing};
use portcullis::proxy::forwardable_headers;
use portcullis::tenancy::TenantReader;
use portcullis_api::TenantRequest;

const TENANT_HEADER: &str = "x-tenant";
const USER_HEADER: &str = "x-forwarded-user";

/// Reads `data` as header lines `Name: value`; lines that are not a valid header are skipped.
fn headers(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

pub fn check(data: &[u8]) {
    let map = headers(data);
    check_bearer(&map);
    check_trusted(&map);
    for multi in [false, true] {
        check_tenant(&map, multi);
    }
    check_forwardable(&map);
}

/// The one value of `name` as text, or `None` when it is missing, repeated or not text.
fn single<'h>(map: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = map.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// Every message a refused bearer credential may get.
const FIXED: [&str; 4] = [
    "missing bearer token",
    "malformed bearer token",
    "credential header given more than once",
    "malformed credential header",
];

fn check_bearer(map: &HeaderMap) {
    let answer = Authenticator::Bearer.authenticate(map);
    let Ok(identity) = answer else {
        let err = answer.unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
        // Fixed sentences only: an error never echoes the credential.
        let message = err.to_string();
        assert!(FIXED.contains(&message.as_str()), "error {message:?}");
        return;
    };
    let value = single(map, "authorization").expect("accepted without one authorization header");
    let token = identity.subject.expose();
    let (scheme, rest) = value.trim().split_once(' ').expect("a scheme and a token");
    assert!(scheme.eq_ignore_ascii_case("bearer"), "scheme {scheme:?}");
    assert_eq!(rest.trim_start(), token);
    assert!(
        !token.is_empty() && !token.chars().any(|c| c.is_whitespace() || c.is_control()),
        "token {token:?}"
    );
}

fn check_trusted(map: &HeaderMap) {
    let authenticator = Authenticator::TrustedHeader(HeaderName::from_static(USER_HEADER));
    match authenticator.authenticate(map) {
        Ok(identity) => {
            let value = single(map, USER_HEADER).expect("accepted without one identity header");
            assert_eq!(identity.subject.expose(), value.trim());
            assert!(!value.trim().is_empty());
        }
        Err(err) => {
            assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
            let well_formed = single(map, USER_HEADER).is_some_and(|v| !v.trim().is_empty());
            assert!(!well_formed, "refused a well-formed identity header");
        }
    }
}

fn check_tenant(map: &HeaderMap, multi: bool) {
    let config = TenantConfig {
        source: TenantSource::Header,
        name: Some("X-Tenant".to_owned()),
        values: Vec::new(),
        multi,
        when_missing: WhenMissing::Reject,
    };
    let reader = TenantReader::new(&config).expect("a valid tenant section");
    assert_eq!(reader.header().map(HeaderName::as_str), Some(TENANT_HEADER));
    let answer = reader.read(&mut Vec::new(), map);
    let texts: Option<Vec<&str>> = map
        .get_all(TENANT_HEADER)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    let values: Option<Vec<&str>> =
        texts.map(|t| t.iter().flat_map(|v| v.split(',')).map(str::trim).collect());
    match answer {
        Ok(TenantRequest::Named(set)) => {
            let values = values.expect("accepted a tenant header that is not text");
            assert!(
                multi || values.len() == 1,
                "several tenants read without multi"
            );
            assert!(values.iter().all(|v| !v.is_empty()));
            let mut expected = values.clone();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(set.iter().collect::<Vec<_>>(), expected);
        }
        Ok(other) => panic!("{other:?} with when_missing = reject"),
        Err(err) => {
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
            if let Some(values) = values {
                let acceptable = !values.is_empty()
                    && (multi || values.len() == 1)
                    && values.iter().all(|v| !v.is_empty());
                assert!(!acceptable, "refused tenant header values {values:?}");
            }
        }
    }
}

/// Headers that describe a connection, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn check_forwardable(map: &HeaderMap) {
    let tenant = HeaderName::from_static(TENANT_HEADER);
    let kept = forwardable_headers(map, &[&header::AUTHORIZATION, &tenant]);
    let named: Vec<String> = map
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for name in kept.keys() {
        let name = name.as_str();
        assert!(!HOP_BY_HOP.contains(&name), "{name} forwarded");
        assert!(
            !named.iter().any(|n| n == name),
            "{name}, named by Connection, forwarded"
        );
        assert!(
            !matches!(
                name,
                "host" | "content-length" | "authorization" | TENANT_HEADER
            ),
            "{name} forwarded"
        );
        assert_eq!(
            kept.get_all(name).iter().collect::<Vec<_>>(),
            map.get_all(name).iter().collect::<Vec<_>>(),
            "{name} changed on its way"
        );
    }
    for (name, _) in map {
        let dropped = HOP_BY_HOP.contains(&name.as_str())
            || named.iter().any(|n| n == name.as_str())
            || matches!(
                name.as_str(),
                "host" | "content-length" | "authorization" | TENANT_HEADER
            );
        assert!(dropped || kept.contains_key(name), "{name} lost on its way");
    }
}
