//! Alertmanager's v2 API: alerts and silences, scoped to the allowed tenants.
//!
//! Reads get a `filter` matcher on the tenant label. Alertmanager ANDs every filter, so the
//! caller's own filters stay: they can only narrow the answer. A new silence gets exactly one
//! tenant's matcher, replacing any the caller wrote on the label; a silence is changed or expired
//! only when it already belongs to an allowed tenant.

use portcullis_api::TenantSet;
use serde_json::{Value, json};

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

/// A silence to create or update, with its tenant matcher enforced.
#[derive(Debug)]
pub struct Silence {
    /// The JSON body to forward.
    pub body: Vec<u8>,
    /// The id of the silence it replaces, if it is an update.
    pub replaces: Option<String>,
}

/// Enforces the tenant matcher in a silence posted by the caller: every matcher on the label is
/// removed and `label="tenant"` added. A silence belongs to one tenant, so several allowed
/// tenants are a 400.
pub fn enforce_silence(
    body: &[u8],
    label: &str,
    allowed: &TenantSet,
) -> Result<Silence, GatewayError> {
    let Some(tenant) = allowed.as_single() else {
        return Err(GatewayError::BadRequest(
            "a silence belongs to exactly one tenant: name only one".into(),
        ));
    };
    let mut silence: Value = serde_json::from_slice(body)
        .map_err(|_| GatewayError::BadRequest("the silence is not valid JSON".into()))?;
    let Some(matchers) = silence.get_mut("matchers").and_then(Value::as_array_mut) else {
        return Err(GatewayError::BadRequest(
            "the silence has no matchers".into(),
        ));
    };
    matchers.retain(|matcher| matcher["name"] != label);
    matchers.push(json!({"name": label, "value": tenant, "isRegex": false, "isEqual": true}));
    let replaces = match silence.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(_) => {
            return Err(GatewayError::BadRequest(
                "the silence id is not a string".into(),
            ));
        }
    };
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

    #[test]
    fn a_silence_gets_exactly_one_tenant_matcher() {
        let body = br#"{"matchers":[{"name":"namespace","value":".+","isRegex":true},
            {"name":"alertname","value":"X","isRegex":false}],"comment":"c","id":"abc"}"#;
        let silence = enforce_silence(body, "namespace", &set(&["acme"])).unwrap();
        let parsed: Value = serde_json::from_slice(&silence.body).unwrap();
        assert_eq!(
            parsed["matchers"],
            json!([{"name":"alertname","value":"X","isRegex":false},
                   {"name":"namespace","value":"acme","isRegex":false,"isEqual":true}])
        );
        assert_eq!(silence.replaces.as_deref(), Some("abc"));
        let several = enforce_silence(body, "namespace", &set(&["acme", "globex"]));
        assert_eq!(several.unwrap_err().status(), http::StatusCode::BAD_REQUEST);
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
