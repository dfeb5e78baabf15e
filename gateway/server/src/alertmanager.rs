//! Alertmanager's v2 API: alerts and silences, scoped to the allowed tenants.
//!
//! Reads get a `filter` matcher on the tenant label. Alertmanager ANDs every filter, so the
//! caller's own filters stay: they can only narrow the answer. A new silence gets exactly one
//! tenant's matcher, replacing any the caller wrote on the label; a silence is changed or expired
//! only when it already belongs to an allowed tenant.

use portcullis_api::TenantSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::GatewayError;
use crate::params::{Location, Param};

/// Adds the tenant filter (`label="v"`, or `label=~"v1|v2"` for several) to a read's parameters.
pub fn add_filter(params: &mut Vec<Param>, label: &str, allowed: &TenantSet) {
    let value = match allowed.as_single() {
        Some(value) => format!("{label}={}", quote(value)),
        None => format!("{label}=~{}", quote(&allowed.regex_alternation())),
    };
    params.push(Param {
        name: "filter".to_owned(),
        value,
        location: Location::Url,
    });
}

/// A double-quoted string as Alertmanager's matcher parser reads it.
fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A silence as Alertmanager's v2 API accepts it (`PostableSilence`), read strictly.
///
/// Alertmanager reads JSON keys as Go does: case-insensitively, Unicode case folding included,
/// the last of several spellings winning. A key the gateway skipped (`"matcherſ"`, `"iD"`) could
/// then override what it checked. So nothing but these exact keys is accepted (an unknown or
/// repeated key is a 400), and the upstream receives a fresh serialization of this struct, in
/// which each key appears once, spelled exactly.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

/// One matcher of a silence.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SilenceMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_equal: Option<bool>,
}

/// A silence to create or update, with its tenant matcher enforced.
#[derive(Debug)]
pub struct Silence {
    /// The JSON body to forward.
    pub body: Vec<u8>,
    /// The id of the silence it replaces, if it is an update.
    pub replaces: Option<String>,
}

/// Reads a silence posted by the caller and, with `label`, enforces its tenant matcher: every
/// matcher on the label is removed and `label="tenant"` added. A silence belongs to one tenant,
/// so several allowed tenants are a 400. Without a label (a route whose backend scopes silences
/// by a tenant header) the silence is only read strictly and written afresh.
pub fn enforce_silence(
    body: &[u8],
    label: Option<&str>,
    allowed: &TenantSet,
) -> Result<Silence, GatewayError> {
    let mut silence: PostableSilence = serde_json::from_slice(body)
        .map_err(|err| GatewayError::BadRequest(format!("invalid silence: {err}")))?;
    if let Some(label) = label {
        let Some(tenant) = allowed.as_single() else {
            return Err(GatewayError::BadRequest(
                "a silence belongs to exactly one tenant: name only one".into(),
            ));
        };
        silence.matchers.retain(|matcher| matcher.name != label);
        silence.matchers.push(SilenceMatcher {
            name: label.to_owned(),
            value: tenant.to_owned(),
            is_regex: false,
            is_equal: Some(true),
        });
    }
    // An empty id creates a silence, as Alertmanager reads it.
    let replaces = silence.id.clone().filter(|id| !id.is_empty());
    let body = serde_json::to_vec(&silence).map_err(|_| GatewayError::Internal)?;
    Ok(Silence { body, replaces })
}

/// Whether the silence `body` (as Alertmanager returns it) belongs to an allowed tenant: it has
/// an equality, non-regex matcher on the label whose value is allowed.
pub fn belongs(body: &[u8], label: &str, allowed: &TenantSet) -> Result<bool, GatewayError> {
    let silence: Value = serde_json::from_slice(body).map_err(|_| GatewayError::BadGateway)?;
    let matchers = silence["matchers"]
        .as_array()
        .ok_or(GatewayError::BadGateway)?;
    Ok(matchers.iter().any(|matcher| {
        matcher["name"] == label
            && matcher["isRegex"] == false
            && matcher.get("isEqual").is_none_or(|equal| *equal == true)
            && matcher["value"]
                .as_str()
                .is_some_and(|value| allowed.contains(value))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(values: &[&str]) -> TenantSet {
        TenantSet::new(values.iter().copied()).unwrap()
    }

    #[test]
    fn the_filter_is_added_beside_the_callers() {
        let mut params = vec![Param {
            name: "filter".into(),
            value: "namespace=\"victim\"".into(),
            location: Location::Url,
        }];
        add_filter(&mut params, "namespace", &set(&["acme"]));
        add_filter(&mut params, "namespace", &set(&["a.b", "c"]));
        let values: Vec<&str> = params.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "namespace=\"victim\"",
                "namespace=\"acme\"",
                r#"namespace=~"a\\.b|c""#
            ]
        );
    }

    const TIMES: &str =
        r#""startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-02T00:00:00Z","createdBy":"me""#;

    fn silence(fields: &str) -> Vec<u8> {
        format!("{{{fields},{TIMES}}}").into_bytes()
    }

    #[test]
    fn a_silence_gets_exactly_one_tenant_matcher() {
        let body = silence(
            r#""matchers":[{"name":"namespace","value":".+","isRegex":true},
            {"name":"alertname","value":"X","isRegex":false}],"comment":"c","id":"abc""#,
        );
        let enforced = enforce_silence(&body, Some("namespace"), &set(&["acme"])).unwrap();
        let parsed: Value = serde_json::from_slice(&enforced.body).unwrap();
        assert_eq!(
            parsed,
            json!({"id":"abc","matchers":[{"name":"alertname","value":"X","isRegex":false},
                   {"name":"namespace","value":"acme","isRegex":false,"isEqual":true}],
                   "startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-02T00:00:00Z",
                   "createdBy":"me","comment":"c"})
        );
        assert_eq!(enforced.replaces.as_deref(), Some("abc"));
        let several = enforce_silence(&body, Some("namespace"), &set(&["acme", "globex"]));
        assert_eq!(several.unwrap_err().status(), http::StatusCode::BAD_REQUEST);
    }

    /// Go's JSON decoder folds key case (ſ is s, K is k) and the last spelling wins: a key the
    /// gateway did not read would override one it enforced. Every such body is a 400.
    #[test]
    fn keys_alertmanager_would_read_differently_are_refused() {
        let matchers = r#""matchers":[{"name":"alertname","value":"x","isRegex":false}]"#;
        let theirs = r#"[{"name":"namespace","value":"globex","isRegex":false}]"#;
        for fields in [
            format!(r#"{matchers},"comment":"c","matcherſ":{theirs}"#),
            format!(r#"{matchers},"comment":"c","Matchers":{theirs}"#),
            format!(r#"{matchers},"comment":"c","iD":"globex-silence""#),
            format!(r#"{matchers},"comment":"c","ID":"globex-silence","id":null"#),
            format!(r#"{matchers},"comment":"c","matchers":{theirs}"#),
            format!(r#"{matchers},"comment":"c","id":"a","id":"b""#),
            r#""matchers":[{"name":"alertname","value":"x","isRegex":false,"Name":"namespace"}],"comment":"c""#.to_owned(),
        ] {
            let answer = enforce_silence(&silence(&fields), Some("namespace"), &set(&["acme"]));
            let err = answer.expect_err(&fields);
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{fields}");
        }
    }

    #[test]
    fn an_empty_id_creates_and_a_missing_field_is_named() {
        let body = silence(r#""matchers":[],"comment":"c","id":"""#);
        let enforced = enforce_silence(&body, Some("namespace"), &set(&["acme"])).unwrap();
        assert_eq!(enforced.replaces, None);
        let err = enforce_silence(br#"{"matchers":[]}"#, None, &set(&["acme"])).unwrap_err();
        assert!(err.to_string().contains("startsAt"), "{err}");
    }

    #[test]
    fn a_silence_belongs_only_through_an_equality_matcher() {
        let owned =
            br#"{"matchers":[{"name":"namespace","value":"acme","isRegex":false,"isEqual":true}]}"#;
        let regex = br#"{"matchers":[{"name":"namespace","value":"acme","isRegex":true}]}"#;
        let negated = br#"{"matchers":[{"name":"namespace","value":"acme","isRegex":false,"isEqual":false}]}"#;
        let other = br#"{"matchers":[{"name":"namespace","value":"globex","isRegex":false}]}"#;
        let acme = set(&["acme"]);
        assert!(belongs(owned, "namespace", &acme).unwrap());
        for body in [&regex[..], negated, other] {
            assert!(!belongs(body, "namespace", &acme).unwrap());
        }
    }
}
