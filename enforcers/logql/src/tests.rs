//! The edge cases of `shared/cases/EDGE-CASES.md` that concern LogQL enforcement, and the kinds
//! of fault they stand for, through the public API.

use portcullis_api::{EnforceError, TenantSet};

use crate::{EnforcerConfig, LogqlEnforcer};

fn tenants(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).unwrap()
}

fn enforcer(strict: bool) -> LogqlEnforcer {
    let mut config = EnforcerConfig::new("namespace");
    config.error_on_replace = strict;
    LogqlEnforcer::new(config).unwrap()
}

/// `query` enforced for tenant `acme` in default (replace) mode.
fn acme(query: &str) -> Result<String, EnforceError> {
    enforcer(false).enforce_query(query, &tenants(&["acme"]))
}

/// `selector` enforced as a stream selector for tenant `acme` in default mode.
fn acme_selector(selector: Option<&str>) -> Result<String, EnforceError> {
    enforcer(false).enforce_selector(selector, &tenants(&["acme"]))
}

fn invalid(message: &str) -> Result<String, EnforceError> {
    Err(EnforceError::Invalid(message.into()))
}

/// Asserts that each `(query, expected)` enforces to `expected` for `acme`.
fn assert_enforced(cases: &[(&str, &str)]) {
    for &(query, expected) in cases {
        assert_eq!(acme(query), Ok(expected.to_owned()), "{query}");
    }
}

// === C28: a negative or wildcard matcher never survives alone ===

#[test]
fn c28_the_allow_list_matcher_is_always_present() {
    let enforcer = LogqlEnforcer::new(EnforcerConfig::new("kubernetes_namespace_name")).unwrap();
    // In C28 the peer treats `openshift-.*` as a regex entry of its allow-list. Portcullis
    // tenant values are always literals: `openshift-.*` is escaped and matches only the
    // namespace of that very name.
    // A query's own matcher stays beside the allow-list matcher when it selects some of the
    // allowed tenants, and is replaced when it selects none; it never stands alone.
    let allowed = tenants(&["ns-a", "ns-b", "openshift-.*"]);
    let enforced = r#"kubernetes_namespace_name=~"ns-a|ns-b|openshift-\\.\\*""#;
    for (query, kept) in [
        (
            r#"{kubernetes_namespace_name!="ns-a", app="web"}"#,
            r#"kubernetes_namespace_name!="ns-a", "#,
        ),
        (
            r#"{kubernetes_namespace_name=~"openshift-.*|victim-ns", app="web"}"#,
            r#"kubernetes_namespace_name=~"openshift-.*|victim-ns", "#,
        ),
        (
            r#"{kubernetes_namespace_name!~"ns-a", app="web"}"#,
            r#"kubernetes_namespace_name!~"ns-a", "#,
        ),
        (r#"{kubernetes_namespace_name=~"victim.*", app="web"}"#, ""),
        (r#"{kubernetes_namespace_name="victim", app="web"}"#, ""),
    ] {
        assert_eq!(
            enforcer.enforce_query(query, &allowed),
            Ok(format!(r#"{{{kept}app="web", {enforced}}}"#)),
            "{query}"
        );
    }
}

#[test]
fn c28_strict_mode_rejects_a_negative_matcher() {
    let mut config = EnforcerConfig::new("kubernetes_namespace_name");
    config.error_on_replace = true;
    let strict = LogqlEnforcer::new(config).unwrap();
    let allowed = tenants(&["ns-a", "ns-b"]);
    assert_eq!(
        strict.enforce_query(r#"{kubernetes_namespace_name!="ns-a", app="web"}"#, &allowed),
        Err(EnforceError::Conflict(
            r#"matcher kubernetes_namespace_name!="ns-a" conflicts with the tenants this request may read"#
                .into()
        ))
    );
    assert_eq!(
        strict.enforce_query(
            r#"{kubernetes_namespace_name=~"ns-.*|victim", app="web"}"#,
            &allowed
        ),
        Ok(
            r#"{kubernetes_namespace_name=~"ns-.*|victim", app="web", kubernetes_namespace_name=~"ns-a|ns-b"}"#
                .into()
        )
    );
}

// === C07, C11: the query's own matchers on the tenant label ===

#[test]
fn c07_default_mode_replaces_every_matcher_on_the_label() {
    for query in [
        r#"{namespace="victim"}"#,
        r#"{namespace!="acme"}"#,
        r#"{namespace=~"acme|victim"}"#,
        r#"{namespace!~"acme"}"#,
        r#"{namespace="acme",namespace=~".+"}"#,
        r#"{namespace=`victim`}"#,
    ] {
        assert_eq!(acme(query).unwrap(), r#"{namespace="acme"}"#, "{query}");
    }
}

#[test]
fn c07_strict_mode_rejects_what_could_select_another_tenant() {
    let strict = enforcer(true);
    let allowed = tenants(&["acme"]);
    for query in [
        r#"{namespace="victim"}"#,
        r#"{namespace!="acme"}"#,
        r#"{app="a"} or {namespace="victim"}"#,
    ] {
        let err = strict.enforce_query(query, &allowed).unwrap_err();
        assert!(matches!(err, EnforceError::Conflict(_)), "{query}: {err:?}");
    }
    for query in [r#"{namespace=~"acme|victim"}"#, r#"{namespace!~"x"}"#] {
        assert_eq!(
            strict.enforce_query(query, &allowed),
            Ok(r#"{namespace="acme"}"#.into()),
            "{query}"
        );
    }
}

#[test]
fn c11_strict_mode_keeps_an_allowed_equality_and_never_panics() {
    let strict = enforcer(true);
    let allowed = tenants(&["acme", "acme2"]);
    assert_eq!(
        strict.enforce_query(r#"{namespace="acme2"}"#, &allowed),
        Ok(r#"{namespace="acme2", namespace=~"acme|acme2"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"{namespace=`acme2`, app="a"}"#, &allowed),
        Ok(r#"{namespace=`acme2`, app="a", namespace=~"acme|acme2"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"{namespace="other"}"#, &allowed),
        Err(EnforceError::Conflict(
            r#"matcher namespace="other" conflicts with the tenants this request may read"#.into()
        ))
    );
}

#[test]
fn strict_mode_compares_decoded_values() {
    let strict = enforcer(true);
    let allowed = tenants(&["a\"b", "c"]);
    assert_eq!(
        strict.enforce_query(r#"{namespace="a\"b"}"#, &allowed),
        Ok(r#"{namespace="a\"b", namespace=~"a\"b|c"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"{namespace="\x63"}"#, &allowed),
        Ok(r#"{namespace="\x63", namespace=~"a\"b|c"}"#.into())
    );
}

#[test]
fn strict_mode_does_not_repeat_the_enforced_matcher() {
    assert_eq!(
        enforcer(true).enforce_query(r#"{namespace="acme"}"#, &tenants(&["acme"])),
        Ok(r#"{namespace="acme"}"#.into())
    );
}

#[test]
fn conflict_messages_name_no_allowed_tenant() {
    let allowed = tenants(&["acme", "secret-tenant"]);
    for query in [r#"{namespace="victim"}"#, r#"{namespace!="x"}"#] {
        let err = enforcer(true).enforce_query(query, &allowed).unwrap_err();
        let message = err.to_string();
        assert!(
            !message.contains("acme") && !message.contains("secret"),
            "{message}"
        );
    }
}

// === C08: several tenants ===

#[test]
fn c08_several_tenants_are_an_alternation_of_escaped_literals() {
    let enforcer = enforcer(false);
    assert_eq!(
        enforcer.enforce_query(r#"{app="x"}"#, &tenants(&["a.b", "c|d"])),
        Ok(r#"{app="x", namespace=~"a\\.b|c\\|d"}"#.into())
    );
    assert_eq!(
        enforcer.enforce_query(r#"{app="x"}"#, &tenants(&["c|d"])),
        Ok(r#"{app="x", namespace="c|d"}"#.into())
    );
}

#[test]
fn tenant_values_are_quoted_in_the_output() {
    let enforcer = enforcer(false);
    assert_eq!(
        enforcer.enforce_query("{}", &tenants(&[r#"a"b\c"#])),
        Ok(r#"{namespace="a\"b\\c"}"#.into())
    );
    assert_eq!(
        enforcer.enforce_query("{}", &tenants(&["x\ny", "é"])),
        Ok(r#"{namespace=~"x\ny|é"}"#.into())
    );
}

// === C30: stream selectors of the label endpoints ===

#[test]
fn c30_a_missing_selector_selects_exactly_the_allowed_tenants() {
    assert_eq!(acme_selector(None), Ok(r#"{namespace="acme"}"#.into()));
    assert_eq!(
        enforcer(false).enforce_selector(None, &tenants(&["acme", "b.c"])),
        Ok(r#"{namespace=~"acme|b\\.c"}"#.into())
    );
}

#[test]
fn c30_a_selector_is_extended() {
    let cases = [
        (r#"{foo="bar"}"#, r#"{foo="bar", namespace="acme"}"#),
        (
            r#"  { foo = "bar" , job=~`a.*` }  "#,
            r#"{foo="bar", job=~`a.*`, namespace="acme"}"#,
        ),
        (r#"{namespace="victim"}"#, r#"{namespace="acme"}"#),
        (
            "# every stream\n{foo=\"bar\"} /* x */",
            r#"{foo="bar", namespace="acme"}"#,
        ),
    ];
    for (selector, expected) in cases {
        assert_eq!(
            acme_selector(Some(selector)),
            Ok(expected.into()),
            "{selector}"
        );
    }
}

#[test]
fn an_empty_selector_means_every_stream_of_the_tenant() {
    for selector in ["{}", "{ }", "", "  ", "# nothing\n"] {
        assert_eq!(
            acme_selector(Some(selector)),
            Ok(r#"{namespace="acme"}"#.into()),
            "{selector:?}"
        );
    }
}

#[test]
fn anything_but_a_single_selector_is_rejected_as_a_selector() {
    let expected = invalid(r#"parse error: expected a single stream selector such as {app="api"}"#);
    for selector in [
        r#"{a="b"} |= "x""#,
        r#"{a="b"}[5m]"#,
        r#"rate({a="b"}[5m])"#,
        r#"({a="b"})"#,
        r#"{a="b"} {c="d"}"#,
        "app",
        "vector(1)",
    ] {
        assert_eq!(acme_selector(Some(selector)), expected, "{selector}");
    }
    assert_eq!(
        acme_selector(Some(r#"{"a"="b"}"#)),
        invalid(
            "parse error at byte 1: label names in a stream selector must be bare identifiers \
             such as app: [a-zA-Z_][a-zA-Z0-9_]*"
        )
    );
    let err = acme_selector(Some(&"{".repeat(1000))).unwrap_err();
    assert!(matches!(err, EnforceError::TooComplex(_)), "{err:?}");
}

// === C31: everything around a selector survives ===

#[test]
fn c31_metric_operations_and_parentheses_survive() {
    assert_enforced(&[
        (
            r#"quantile_over_time(0.5,{app="foo"}[15s]) by (app)"#,
            r#"quantile_over_time(0.5,{app="foo", namespace="acme"}[15s]) by (app)"#,
        ),
        (
            r#"topk(25,(count_over_time({first="value"}[10h])))"#,
            r#"topk(25,(count_over_time({first="value", namespace="acme"}[10h])))"#,
        ),
    ]);
}

#[test]
fn selectors_in_every_metric_position_are_enforced() {
    assert_enforced(&[
        (
            r#"rate({app="a"}[5m])"#,
            r#"rate({app="a", namespace="acme"}[5m])"#,
        ),
        (
            r#"count_over_time({app="a"} |= "err" [5m] offset 1h)"#,
            r#"count_over_time({app="a", namespace="acme"} |= "err" [5m] offset 1h)"#,
        ),
        (
            r#"sum by (level) (count_over_time({app="a"} | json | level!="" [1m]))"#,
            r#"sum by (level) (count_over_time({app="a", namespace="acme"} | json | level!="" [1m]))"#,
        ),
        (
            r#"quantile_over_time(0.99, {app="a"} | logfmt | unwrap duration_seconds(latency) | __error__="" [5m]) by (route)"#,
            r#"quantile_over_time(0.99, {app="a", namespace="acme"} | logfmt | unwrap duration_seconds(latency) | __error__="" [5m]) by (route)"#,
        ),
        (
            r#"label_replace(rate({app="a"}[1m]), "dst", "$1", "src", "(.*)")"#,
            r#"label_replace(rate({app="a", namespace="acme"}[1m]), "dst", "$1", "src", "(.*)")"#,
        ),
        (
            r#"sum(rate({app="a"}[1m])) or vector(0)"#,
            r#"sum(rate({app="a", namespace="acme"}[1m])) or vector(0)"#,
        ),
        (
            r#"variants(count_over_time({app="a"}[1m]), bytes_over_time({app="a"}[1m])) of ({app="a"}[1m])"#,
            r#"variants(count_over_time({app="a", namespace="acme"}[1m]), bytes_over_time({app="a", namespace="acme"}[1m])) of ({app="a", namespace="acme"}[1m])"#,
        ),
    ]);
}

#[test]
fn both_sides_of_binary_operators_are_enforced() {
    assert_enforced(&[
        (
            r#"sum(rate({app="a"}[1m])) / sum(rate({namespace="victim"}[1m]))"#,
            r#"sum(rate({app="a", namespace="acme"}[1m])) / sum(rate({namespace="acme"}[1m]))"#,
        ),
        (
            r#"sum by (app) (rate({app="a"}[1m])) > bool on(app) group_left sum by (app) (rate({app="b"}[1m]))"#,
            r#"sum by (app) (rate({app="a", namespace="acme"}[1m])) > bool on(app) group_left sum by (app) (rate({app="b", namespace="acme"}[1m]))"#,
        ),
    ]);
}

#[test]
fn queries_without_selectors_are_forwarded_unchanged() {
    assert_enforced(&[
        ("vector(1)", "vector(1)"),
        ("1 + 1", "1 + 1"),
        (
            "vector(1) # {namespace=\"victim\"}",
            "vector(1) # {namespace=\"victim\"}",
        ),
    ]);
}

// === Strings, templates and comments are never touched ===

#[test]
fn braces_in_line_filters_and_templates_are_text() {
    assert_enforced(&[
        (
            r#"{app="a"} |= "{namespace=\"victim\"}" != "}" |~ "a{2,3}" |> "<_> {<_>}""#,
            r#"{app="a", namespace="acme"} |= "{namespace=\"victim\"}" != "}" |~ "a{2,3}" |> "<_> {<_>}""#,
        ),
        (
            r#"{app="a"} | json | line_format "{{.namespace}} {{ .msg | trunc 10 }}""#,
            r#"{app="a", namespace="acme"} | json | line_format "{{.namespace}} {{ .msg | trunc 10 }}""#,
        ),
        (
            r#"{app="a"} | label_format ns="{{.namespace}}", foo=bar | drop namespace"#,
            r#"{app="a", namespace="acme"} | label_format ns="{{.namespace}}", foo=bar | drop namespace"#,
        ),
    ]);
}

#[test]
fn backtick_strings_are_text() {
    assert_enforced(&[(
        r#"{app="a"} |~ `\{"level":"error"\}` | line_format `{{ .x }} "}`"#,
        r#"{app="a", namespace="acme"} |~ `\{"level":"error"\}` | line_format `{{ .x }} "}`"#,
    )]);
}

#[test]
fn comments_are_kept_and_never_read_as_selectors() {
    assert_enforced(&[
        (
            "{app=\"a\"} # {namespace=\"victim\"}\n|= \"x\"",
            "{app=\"a\", namespace=\"acme\"} # {namespace=\"victim\"}\n|= \"x\"",
        ),
        (
            r##"{app="a"} /* {namespace="victim"} */ |= "#{""##,
            r##"{app="a", namespace="acme"} /* {namespace="victim"} */ |= "#{""##,
        ),
        (
            "{app=\"a\"} // }\n",
            "{app=\"a\", namespace=\"acme\"} // }\n",
        ),
    ]);
}

/// Loki reads `/* … */` and `//` as comments (Go's scanner does), so a quote inside one opens
/// no string: a lexer that missed this would read the selector between the comments as string
/// content and leave it unenforced.
#[test]
fn a_quote_inside_a_comment_cannot_hide_a_selector() {
    assert_enforced(&[
        (
            r#"/* " */ {namespace="victim"} /* " */"#,
            r#"/* " */ {namespace="acme"} /* " */"#,
        ),
        (
            "count_over_time({a=\"1\"}[1m]) // \"\n+ count_over_time({namespace=\"victim\"}[1m]) // \"",
            "count_over_time({a=\"1\", namespace=\"acme\"}[1m]) // \"\n+ count_over_time({namespace=\"acme\"}[1m]) // \"",
        ),
        (
            "{a=\"1\"} # \"\n or {namespace=\"victim\"} # \"",
            "{a=\"1\", namespace=\"acme\"} # \"\n or {namespace=\"acme\"} # \"",
        ),
    ]);
}

/// Loki reads everything from `[` to the next `]` as a duration, quotes included, so a quote
/// inside a range opens no string either.
#[test]
fn a_quote_inside_a_range_cannot_hide_a_selector() {
    assert_enforced(&[(
        r#"rate({a="1"}[5m"]) or rate({namespace="victim"}[5m"])"#,
        r#"rate({a="1", namespace="acme"}[5m"]) or rate({namespace="acme"}[5m"])"#,
    )]);
}

#[test]
fn a_tenant_label_filter_in_a_pipeline_only_narrows() {
    // `| namespace="victim"` filters the lines of the enforced streams; it selects no stream.
    assert_enforced(&[(
        r#"{app="a"} | namespace="victim""#,
        r#"{app="a", namespace="acme"} | namespace="victim""#,
    )]);
}

#[test]
fn whitespace_and_layout_outside_selectors_are_kept() {
    assert_enforced(&[
        (
            "  sum(\n  count_over_time( {app=\"a\"}\t| json [1m])\n)  ",
            "  sum(\n  count_over_time( {app=\"a\", namespace=\"acme\"}\t| json [1m])\n)  ",
        ),
        (
            "{ app = \"a\" , job=~`x` }",
            "{app=\"a\", job=~`x`, namespace=\"acme\"}",
        ),
        ("{}", r#"{namespace="acme"}"#),
    ]);
}

// === What is refused ===

#[test]
fn quoted_and_non_ascii_label_names_are_invalid() {
    let message = "label names in a stream selector must be bare identifiers such as app: \
                   [a-zA-Z_][a-zA-Z0-9_]*";
    for (query, at) in [
        (r#"{"service.name"="api"}"#, 1),
        (r#"rate({app="a", `x`="b"}[1m])"#, 15),
        (r#"{nämespace="victim"}"#, 1),
    ] {
        assert_eq!(
            acme(query),
            invalid(&format!("parse error at byte {at}: {message}")),
            "{query}"
        );
    }
}

#[test]
fn malformed_queries_are_invalid() {
    let cases = [
        (
            r#"{app="a} |= "x""#,
            "parse error at byte 14: unterminated string",
        ),
        (
            r#"{app="a"} |= `x"#,
            "parse error at byte 13: unterminated raw string",
        ),
        (
            r#"{app='a'}"#,
            "parse error at byte 5: single-quoted literals are not LogQL: use double quotes or backticks",
        ),
        (
            r#"{app="\q"}"#,
            "parse error at byte 5: invalid escape sequence in string",
        ),
        (
            r#"{app="a"} /* x"#,
            "parse error at byte 10: unterminated /* comment",
        ),
        (
            r#"rate({app="a"}[5m)"#,
            "parse error at byte 14: missing closing ] of a range",
        ),
        (
            r#"sum(rate({app="a"}[5m])"#,
            "parse error at byte 3: unclosed (",
        ),
        (
            r#"rate({app="a"}[5m]))"#,
            "parse error at byte 19: unexpected )",
        ),
        (r#"{app="a"}}"#, "parse error at byte 9: unexpected }"),
        (
            r#"{app="a""#,
            "parse error at byte 8: unclosed { of a stream selector",
        ),
        (
            r#"{app="a",}"#,
            "parse error at byte 9: expected a label matcher such as app=\"api\"",
        ),
        (
            r#"{app}"#,
            "parse error at byte 4: expected a label matcher such as app=\"api\"",
        ),
        ("", "parse error: no expression found in input"),
        (
            " # only a comment",
            "parse error: no expression found in input",
        ),
    ];
    for (query, message) in cases {
        assert_eq!(acme(query), invalid(message), "{query}");
    }
}

// === Limits (C19) ===

#[test]
fn limits_answer_too_complex() {
    let deep = format!("{}{{app=\"a\"}}{}", "(".repeat(600), ")".repeat(600));
    assert_eq!(
        acme(&deep),
        Err(EnforceError::TooComplex(
            "query nests brackets deeper than 512 levels".into()
        ))
    );
    let long = format!("{{app=\"{}\"}}", "a".repeat(200_000));
    assert_eq!(
        acme(&long),
        Err(EnforceError::TooComplex(
            "query is longer than 131072 bytes".into()
        ))
    );
}

#[test]
fn the_deepest_accepted_nesting_is_enforced() {
    let query = format!("{}{{app=\"a\"}}{}", "(".repeat(511), ")".repeat(511));
    let enforced = acme(&query).unwrap();
    assert!(enforced.contains(r#"{app="a", namespace="acme"}"#));
    assert_eq!(enforced.len(), query.len() + r#", namespace="acme""#.len());
}

#[test]
fn c19_thousands_of_selectors_are_all_enforced() {
    let query = vec![r#"count_over_time({a="b"}[1m])"#; 3000].join(" or ");
    let enforced = acme(&query).unwrap();
    assert_eq!(
        enforced.matches(r#"{a="b", namespace="acme"}"#).count(),
        3000
    );
    assert_eq!(enforced.matches('{').count(), 3000);
}
