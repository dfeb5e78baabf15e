//! The endpoints each API serves, and exact matching of request paths against them.
//!
//! Matching is on the raw path, byte for byte: a trailing slash, `//`, `/./` or a percent-encoded
//! letter in a fixed segment matches nothing and is answered 404, so no spelling of a path the
//! upstream would normalise can slip past enforcement. The one variable segment (a label name)
//! is decoded, checked and re-encoded before forwarding.

use http::Method;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use portcullis_api::{ExpressionKind, Language};

use crate::config::ApiKind;
use crate::filter::AnswerFilter;

/// Which permission of the route an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The route's `permission` (reading).
    Read,
    /// The route's `write_permission` (changing state, e.g. silences).
    Write,
}

/// How a request to an endpoint is handled once it is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Enforce the query-bearing parameters, forward, relay the answer.
    Forward,
    /// As `Forward`, then upgrade to a WebSocket and relay frames both ways.
    WebSocket,
    /// Forward, then keep only the allowed tenants' items of the answer.
    FilterAnswer(AnswerFilter),
    /// Alertmanager read: add the tenant `filter` matcher.
    AlertFilter,
    /// Alertmanager silence creation or update: enforce the tenant matcher in the JSON body.
    CreateSilence,
    /// Alertmanager silence by id: only a silence of an allowed tenant is read or expired.
    SilenceById,
}

/// One endpoint of an API.
#[derive(Debug)]
pub struct Endpoint {
    /// The path template, `{name}` marking the variable label-name segment; also the route name
    /// in logs, spans and metrics.
    pub template: &'static str,
    /// Methods served.
    pub methods: &'static [Method],
    /// The parameters holding the query or selectors; every copy of each is enforced. A missing
    /// selector is added under the first name.
    pub params: &'static [&'static str],
    /// What those parameters hold.
    pub kind: ExpressionKind,
    /// The permission required.
    pub access: Access,
    /// How the request is handled once authorized.
    pub handling: Handling,
}

const GET: &[Method] = &[Method::GET];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

const fn endpoint(
    template: &'static str,
    methods: &'static [Method],
    params: &'static [&'static str],
    kind: ExpressionKind,
) -> Endpoint {
    Endpoint {
        template,
        methods,
        params,
        kind,
        access: Access::Read,
        handling: Handling::Forward,
    }
}

/// An endpoint without query parameters, handled as `handling` requires.
const fn special(
    template: &'static str,
    methods: &'static [Method],
    access: Access,
    handling: Handling,
) -> Endpoint {
    Endpoint {
        access,
        handling,
        ..endpoint(template, methods, &[], ExpressionKind::Query)
    }
}

const fn query(template: &'static str) -> Endpoint {
    endpoint(template, GET_POST, &["query"], ExpressionKind::Query)
}

const fn selectors(template: &'static str, methods: &'static [Method]) -> Endpoint {
    endpoint(template, methods, &["match[]"], ExpressionKind::Selector)
}

const fn stream_selector(template: &'static str, methods: &'static [Method]) -> Endpoint {
    endpoint(template, methods, &["query"], ExpressionKind::Selector)
}

const PROMETHEUS: &[Endpoint] = &[
    query("/api/v1/query"),
    query("/api/v1/query_range"),
    query("/api/v1/query_exemplars"),
    selectors("/api/v1/series", GET_POST),
    selectors("/api/v1/labels", GET_POST),
    // Prometheus serves label values by GET only.
    selectors("/api/v1/label/{name}/values", GET),
    selectors("/federate", GET),
    // Not scoped by a query in Prometheus: the answer is filtered to the allowed tenants.
    special(
        "/api/v1/rules",
        GET,
        Access::Read,
        Handling::FilterAnswer(AnswerFilter::Rules),
    ),
    special(
        "/api/v1/alerts",
        GET,
        Access::Read,
        Handling::FilterAnswer(AnswerFilter::Alerts),
    ),
];

const ALERTMANAGER: &[Endpoint] = &[
    special("/api/v2/alerts", GET, Access::Read, Handling::AlertFilter),
    special(
        "/api/v2/alerts/groups",
        GET,
        Access::Read,
        Handling::AlertFilter,
    ),
    special("/api/v2/silences", GET, Access::Read, Handling::AlertFilter),
    special(
        "/api/v2/silences",
        &[Method::POST],
        Access::Write,
        Handling::CreateSilence,
    ),
    special(
        "/api/v2/silence/{name}",
        GET,
        Access::Read,
        Handling::SilenceById,
    ),
    special(
        "/api/v2/silence/{name}",
        &[Method::DELETE],
        Access::Write,
        Handling::SilenceById,
    ),
];

const LOKI: &[Endpoint] = &[
    query("/loki/api/v1/query"),
    query("/loki/api/v1/query_range"),
    stream_selector("/loki/api/v1/labels", GET_POST),
    stream_selector("/loki/api/v1/label/{name}/values", GET),
    // Loki reads both spellings of the series selector.
    endpoint(
        "/loki/api/v1/series",
        GET_POST,
        &["match[]", "match"],
        ExpressionKind::Selector,
    ),
    stream_selector("/loki/api/v1/index/stats", GET_POST),
    stream_selector("/loki/api/v1/index/volume", GET_POST),
    stream_selector("/loki/api/v1/index/volume_range", GET_POST),
    Endpoint {
        handling: Handling::WebSocket,
        ..endpoint("/loki/api/v1/tail", GET, &["query"], ExpressionKind::Query)
    },
];

/// The language and endpoints of an API.
pub fn endpoints(api: ApiKind) -> (Language, &'static [Endpoint]) {
    match api {
        ApiKind::Prometheus => (Language::PromQl, PROMETHEUS),
        ApiKind::Loki => (Language::LogQl, LOKI),
        // Alertmanager's matchers are Prometheus's: a PromQL label enforcer names the label.
        ApiKind::Alertmanager => (Language::PromQl, ALERTMANAGER),
    }
}

/// Characters escaped when a decoded path segment is re-encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `template` with its `{name}` segment set to `value`, percent-encoded.
pub fn fill(template: &str, value: &str) -> String {
    template.replacen(
        "{name}",
        &utf8_percent_encode(value, SEGMENT).to_string(),
        1,
    )
}

/// Matches `path` against `template`; on a match, the canonical path to forward.
pub fn match_template(template: &str, path: &str) -> Option<String> {
    let Some((prefix, suffix)) = template.split_once("{name}") else {
        return (template == path).then(|| path.to_owned());
    };
    let segment = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let decoded = percent_decode_str(segment).decode_utf8().ok()?;
    let valid = !decoded.is_empty()
        && decoded != "."
        && decoded != ".."
        && !decoded.contains('/')
        && !decoded.chars().any(char::is_control);
    valid.then(|| format!("{prefix}{}{suffix}", utf8_percent_encode(&decoded, SEGMENT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "/api/v1/label/{name}/values";

    #[test]
    fn fixed_paths_match_exactly() {
        assert_eq!(
            match_template("/api/v1/query", "/api/v1/query").as_deref(),
            Some("/api/v1/query")
        );
        for tricky in [
            "/api/v1/query/",
            "/api/v1//query",
            "/api/v1/./query",
            "/api/v1/%71uery",
            "/api/v1/QUERY",
            "//api/v1/query",
            "/api/v1/query/../query",
        ] {
            assert_eq!(match_template("/api/v1/query", tricky), None, "{tricky}");
        }
    }

    #[test]
    fn label_name_segment_is_decoded_checked_and_reencoded() {
        let matched = |path| match_template(VALUES, path);
        assert_eq!(
            matched("/api/v1/label/job/values").as_deref(),
            Some("/api/v1/label/job/values")
        );
        assert_eq!(
            matched("/api/v1/label/%6Aob/values").as_deref(),
            Some("/api/v1/label/job/values")
        );
        assert_eq!(
            matched("/api/v1/label/service.name/values").as_deref(),
            Some("/api/v1/label/service.name/values")
        );
        for tricky in [
            "/api/v1/label//values",
            "/api/v1/label/../values",
            "/api/v1/label/%2e%2e/values",
            "/api/v1/label/a%2Fb/values",
            "/api/v1/label/a/b/values",
            "/api/v1/label/%ff/values",
            "/api/v1/label/job/values/",
        ] {
            assert_eq!(matched(tricky), None, "{tricky}");
        }
    }
}
