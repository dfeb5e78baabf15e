//! Filtering upstream answers that are not tenant-scoped by a query: Prometheus's rules and
//! alerts. Only what carries an allowed value of the tenant label is kept.
//!
//! The filter fails closed: an answer it cannot read (not JSON of the expected shape, an unknown
//! content encoding, an error status) is replaced by an error; an unfiltered body is never
//! passed on.

use std::io::Read;

use bytes::Bytes;
use portcullis_api::TenantSet;
use serde_json::Value;

/// What an answer is filtered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFilter {
    /// Relayed as it is.
    None,
    /// `/api/v1/rules`: groups, rules and their alerts.
    Rules,
    /// `/api/v1/alerts`: alerts.
    Alerts,
}

/// Why an answer could not be filtered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The answer is compressed in a way the gateway does not read.
    #[error("upstream answer has an unsupported content encoding")]
    Encoding,
    /// The answer is not the JSON the filter expects.
    #[error("upstream answer cannot be filtered: {0}")]
    Shape(&'static str),
    /// The answer, once decompressed, is larger than the gateway reads.
    #[error("upstream answer is too large to filter once decompressed")]
    TooLarge,
}

/// Decodes `body` as sent with `content_encoding`, into at most `limit` bytes: the limit on
/// what is read from the upstream bounds the compressed size only, and a small gzip answer can
/// inflate a thousandfold.
pub fn decode(
    body: Bytes,
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Bytes, FilterError> {
    match content_encoding.map(str::trim) {
        None | Some("" | "identity") => Ok(body),
        Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => {
            let mut plain = Vec::new();
            let most = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::GzDecoder::new(&body[..])
                .take(most)
                .read_to_end(&mut plain)
                .map_err(|_| FilterError::Encoding)?;
            if plain.len() > limit {
                return Err(FilterError::TooLarge);
            }
            Ok(Bytes::from(plain))
        }
        Some(_) => Err(FilterError::Encoding),
    }
}

/// Filters a successful Prometheus answer, keeping only the allowed tenants' items.
pub fn apply(
    filter: AnswerFilter,
    body: &[u8],
    label: &str,
    allowed: &TenantSet,
) -> Result<Vec<u8>, FilterError> {
    let mut answer: Value =
        serde_json::from_slice(body).map_err(|_| FilterError::Shape("not JSON"))?;
    if answer["status"] != "success" {
        return Err(FilterError::Shape("status is not success"));
    }
    let keep = |labels: &Value| {
        labels
            .get(label)
            .and_then(Value::as_str)
            .is_some_and(|value| allowed.contains(value))
    };
    let data = answer
        .get_mut("data")
        .ok_or(FilterError::Shape("no data"))?;
    match filter {
        AnswerFilter::None => {}
        AnswerFilter::Alerts => retain(array(data, "alerts")?, |alert| keep(&alert["labels"])),
        AnswerFilter::Rules => {
            let groups = array(data, "groups")?;
            for group in groups.iter_mut() {
                let rules = array(group, "rules")?;
                rules.retain(|rule| keep(&rule["labels"]));
                for rule in rules.iter_mut() {
                    // A kept rule's alerts are filtered in turn: alerts that are not a list
                    // cannot be, and are never relayed as they came.
                    match rule.get_mut("alerts") {
                        None | Some(Value::Null) => {}
                        Some(Value::Array(alerts)) => alerts.retain(|alert| keep(&alert["labels"])),
                        Some(_) => return Err(FilterError::Shape("alerts")),
                    }
                }
            }
            groups.retain(|group| group["rules"].as_array().is_some_and(|r| !r.is_empty()));
        }
    }
    serde_json::to_vec(&answer).map_err(|_| FilterError::Shape("cannot re-encode"))
}

fn array<'v>(value: &'v mut Value, key: &'static str) -> Result<&'v mut Vec<Value>, FilterError> {
    value
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .ok_or(FilterError::Shape(key))
}

fn retain(items: &mut Vec<Value>, keep: impl Fn(&Value) -> bool) {
    items.retain(keep);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    const LIMIT: usize = 1 << 20;

    fn acme() -> TenantSet {
        TenantSet::single("acme").unwrap()
    }

    fn rules() -> Value {
        json!({"status": "success", "data": {"groups": [
            {"name": "acme", "rules": [
                {"type": "alerting", "name": "AcmeUp", "labels": {"namespace": "acme"},
                 "alerts": [{"labels": {"namespace": "acme"}}, {"labels": {"namespace": "globex"}}]},
                {"type": "recording", "name": "shared", "labels": {}}
            ]},
            {"name": "globex", "rules": [
                {"type": "alerting", "name": "GlobexUp", "labels": {"namespace": "globex"}, "alerts": []}
            ]}
        ]}})
    }

    #[test]
    fn rules_keep_only_the_allowed_tenants_groups_rules_and_alerts() {
        let body = serde_json::to_vec(&rules()).unwrap();
        let filtered = apply(AnswerFilter::Rules, &body, "namespace", &acme()).unwrap();
        let filtered: Value = serde_json::from_slice(&filtered).unwrap();
        assert_eq!(
            filtered["data"]["groups"],
            json!([{"name": "acme", "rules": [
                {"type": "alerting", "name": "AcmeUp", "labels": {"namespace": "acme"},
                 "alerts": [{"labels": {"namespace": "acme"}}]}
            ]}])
        );
    }

    #[test]
    fn alerts_keep_only_the_allowed_tenants() {
        let body = json!({"status": "success", "data": {"alerts": [
            {"labels": {"namespace": "acme", "alertname": "A"}},
            {"labels": {"namespace": "globex"}},
            {"labels": {}}
        ]}});
        let body = serde_json::to_vec(&body).unwrap();
        let filtered = apply(AnswerFilter::Alerts, &body, "namespace", &acme()).unwrap();
        let filtered: Value = serde_json::from_slice(&filtered).unwrap();
        assert_eq!(
            filtered["data"]["alerts"],
            json!([{"labels": {"namespace": "acme", "alertname": "A"}}])
        );
    }

    // Edge case C23: a gzip answer is decompressed and filtered; what cannot be read is an error,
    // never relayed unfiltered.
    #[test]
    fn gzip_is_decoded_and_unreadable_answers_are_errors() {
        let plain = serde_json::to_vec(&rules()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        assert_eq!(decode(gz, Some("gzip"), LIMIT).unwrap(), Bytes::from(plain));
        for encoding in ["br", "deflate", "zstd", "gzip, gzip", "x-gzip", "compress"] {
            assert_eq!(
                decode(Bytes::from_static(b"x"), Some(encoding), LIMIT),
                Err(FilterError::Encoding),
                "{encoding}"
            );
        }
        assert_eq!(
            decode(Bytes::from_static(b"x"), Some("gzip"), LIMIT),
            Err(FilterError::Encoding)
        );
    }

    /// A gzip answer is bounded by its decompressed size, not only by the bytes read: a few
    /// kilobytes of gzip inflate to megabytes, a few megabytes to gigabytes.
    #[test]
    fn a_gzip_answer_that_inflates_past_the_limit_is_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(br#"{"status":"success","data":{"alerts":[],"pad":""#)
            .unwrap();
        gz.write_all(&vec![b'a'; 4 * LIMIT]).unwrap();
        gz.write_all(br#""}}"#).unwrap();
        let bomb = Bytes::from(gz.finish().unwrap());
        assert!(bomb.len() < LIMIT / 16, "{} bytes", bomb.len());
        assert_eq!(
            decode(bomb, Some("gzip"), LIMIT),
            Err(FilterError::TooLarge)
        );
    }

    /// A kept rule whose alerts are not a list (an object keyed by index, say) cannot have them
    /// filtered: the answer is an error, not the rule with every tenant's alerts.
    #[test]
    fn a_kept_rules_alerts_in_another_shape_are_an_error() {
        for alerts in [
            json!({"0": {"labels": {"namespace": "globex"}}}),
            json!("globex"),
        ] {
            let body = json!({"status": "success", "data": {"groups": [{"name": "g", "rules": [
                {"type": "alerting", "name": "A", "labels": {"namespace": "acme"}, "alerts": alerts}
            ]}]}});
            let body = serde_json::to_vec(&body).unwrap();
            let filtered = apply(AnswerFilter::Rules, &body, "namespace", &acme());
            assert_eq!(filtered, Err(FilterError::Shape("alerts")), "{alerts}");
        }
        let none = json!({"status": "success", "data": {"groups": [{"name": "g", "rules": [
            {"type": "recording", "name": "r", "labels": {"namespace": "acme"}, "alerts": null}
        ]}]}});
        let none = serde_json::to_vec(&none).unwrap();
        assert!(apply(AnswerFilter::Rules, &none, "namespace", &acme()).is_ok());
    }

    #[test]
    fn unreadable_answers_are_errors() {
        for body in [
            &b"<html>"[..],
            br#"{"status":"error"}"#,
            br#"{"status":"success","data":{}}"#,
        ] {
            assert!(apply(AnswerFilter::Rules, body, "namespace", &acme()).is_err());
        }
    }
}
