//! The edge cases of `shared/cases/EDGE-CASES.md` that concern PromQL enforcement, and the kinds
//! of fault they stand for, through the public API.

use portcullis_api::{EnforceError, TenantSet};

use crate::print::UNFAITHFUL;
use crate::{EnforcerConfig, PromqlEnforcer};

fn tenants(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).unwrap()
}

fn enforcer(strict: bool) -> PromqlEnforcer {
    let mut config = EnforcerConfig::new("namespace");
    config.error_on_replace = strict;
    PromqlEnforcer::new(config).unwrap()
}

/// `query` enforced for tenant `acme` in default (replace) mode.
fn acme(query: &str) -> Result<String, EnforceError> {
    enforcer(false).enforce_query(query, &tenants(&["acme"]))
}

fn invalid(message: &str) -> Result<String, EnforceError> {
    Err(EnforceError::Invalid(message.into()))
}

/// Runs `f` on a thread with a stack of `mib` MiB, as the gateway runs enforcement.
fn with_stack<T: Send + 'static>(mib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(mib << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

// === C05, C06: subqueries, offsets and @ survive ===

#[test]
fn c05_subquery_selector_is_enforced_and_its_offset_kept() {
    assert_eq!(
        acme("max_over_time(rate(http_requests_total[5m])[1h:1m] offset 30m)").unwrap(),
        r#"max_over_time(rate(http_requests_total{namespace="acme"}[5m])[1h:1m] offset 30m)"#
    );
}

#[test]
fn c06_at_modifiers_and_negative_offsets_survive() {
    let query = "rate(http_requests_total[5m] @ 1609746000 offset -5m) \
                 + irate(kube_pod_info[1h:1m] @ start())";
    assert_eq!(
        acme(query).unwrap(),
        r#"rate(http_requests_total{namespace="acme"}[5m] @ 1609746000.000 offset -5m) + irate(kube_pod_info{namespace="acme"}[1h:1m] @ start())"#
    );
}

#[test]
fn subquery_modifiers_stay_attached_to_the_subquery() {
    assert_eq!(
        acme("min_over_time(x[10m:30s] @ end() offset -1h)").unwrap(),
        r#"min_over_time(x{namespace="acme"}[10m:30s] @ end() offset -1h)"#
    );
    assert_eq!(
        acme("max_over_time(max_over_time(x offset 1m [5m:])[1h:5m])").unwrap(),
        r#"max_over_time(max_over_time(x{namespace="acme"} offset 1m[5m:])[1h:5m])"#
    );
    assert_eq!(
        acme("x @ 1.5 offset 1d").unwrap(),
        r#"x{namespace="acme"} @ 1.500 offset 1d"#
    );
}

// === C07, C11: the query's own matchers on the tenant label ===

#[test]
fn c07_default_mode_replaces_every_matcher_on_the_label() {
    for query in [
        r#"up{namespace="victim"}"#,
        r#"up{namespace!="acme"}"#,
        r#"up{namespace=~"acme|victim"}"#,
        r#"up{namespace!~"acme"}"#,
        r#"up{namespace="acme",namespace=~".+"}"#,
    ] {
        assert_eq!(acme(query).unwrap(), r#"up{namespace="acme"}"#, "{query}");
    }
}

#[test]
fn c07_strict_mode_rejects_what_could_select_another_tenant() {
    let strict = enforcer(true);
    let allowed = tenants(&["acme"]);
    for query in [r#"up{namespace="victim"}"#, r#"up{namespace!="acme"}"#] {
        let err = strict.enforce_query(query, &allowed).unwrap_err();
        assert!(matches!(err, EnforceError::Conflict(_)), "{query}: {err:?}");
    }
    assert_eq!(
        strict.enforce_query(r#"up{namespace=~"acme|victim"}"#, &allowed),
        Ok(r#"up{namespace="acme"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"up{namespace!~"x"}"#, &allowed),
        Ok(r#"up{namespace="acme"}"#.into())
    );
}

#[test]
fn c11_strict_mode_keeps_an_allowed_equality_and_never_panics() {
    let strict = enforcer(true);
    let allowed = tenants(&["acme", "acme2"]);
    assert_eq!(
        strict.enforce_query(r#"up{namespace="acme2"}"#, &allowed),
        Ok(r#"up{namespace="acme2",namespace=~"acme|acme2"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"up{namespace="other"}"#, &allowed),
        Err(EnforceError::Conflict(
            r#"matcher namespace="other" conflicts with the tenants this request may read"#.into()
        ))
    );
}

/// With several tenants, a query's own matcher on the label narrows the answer to the allowed
/// tenants it selects (prom-label-proxy's answer); one that selects none of them is replaced, as
/// with a single tenant.
#[test]
fn several_tenants_keep_a_matcher_that_selects_some_of_them() {
    let enforcer = enforcer(false);
    let allowed = tenants(&["acme", "globex"]);
    let enforced = r#"namespace=~"acme|globex""#;
    for (query, output) in [
        (
            r#"up{namespace="globex"}"#,
            r#"up{namespace="globex",namespace=~"acme|globex"}"#,
        ),
        (
            r#"up{namespace!="acme"}"#,
            r#"up{namespace!="acme",namespace=~"acme|globex"}"#,
        ),
        (
            r#"up{namespace=~"glob.*|initech"}"#,
            r#"up{namespace=~"acme|globex",namespace=~"glob.*|initech"}"#,
        ),
        (
            r#"up{namespace!~"acme"}"#,
            r#"up{namespace!~"acme",namespace=~"acme|globex"}"#,
        ),
        (
            r#"up{namespace="initech"}"#,
            r#"up{namespace=~"acme|globex"}"#,
        ),
        (
            r#"up{namespace=~"init.*"}"#,
            r#"up{namespace=~"acme|globex"}"#,
        ),
        (
            r#"up{namespace!~"acme|globex"}"#,
            r#"up{namespace=~"acme|globex"}"#,
        ),
        (r#"up{namespace=""}"#, r#"up{namespace=~"acme|globex"}"#),
        (
            r#"up{namespace=~"acme|globex",namespace=~"acme|globex"}"#,
            r#"up{namespace=~"acme|globex"}"#,
        ),
    ] {
        assert_eq!(
            enforcer.enforce_query(query, &allowed),
            Ok(output.to_owned()),
            "{query}"
        );
    }
    // Each matcher is judged on its own: two that each select an allowed tenant stay, and
    // together select nothing, as the query asked.
    assert_eq!(
        enforcer.enforce_query(r#"up{namespace="acme",namespace="globex"}"#, &allowed),
        Ok(format!(
            r#"up{{namespace="acme",namespace="globex",{enforced}}}"#
        ))
    );
}

#[test]
fn strict_mode_with_several_tenants_keeps_narrowing_regexes_and_refuses_inequality() {
    let strict = enforcer(true);
    let allowed = tenants(&["acme", "acme2"]);
    assert_eq!(
        strict.enforce_query(r#"up{namespace=~"acme2|x"}"#, &allowed),
        Ok(r#"up{namespace=~"acme2|x",namespace=~"acme|acme2"}"#.into())
    );
    assert_eq!(
        strict.enforce_query(r#"up{namespace=~"x"}"#, &allowed),
        Ok(r#"up{namespace=~"acme|acme2"}"#.into())
    );
    let err = strict
        .enforce_query(r#"up{namespace!="x"}"#, &allowed)
        .unwrap_err();
    assert!(matches!(err, EnforceError::Conflict(_)), "{err:?}");
}

#[test]
fn strict_mode_does_not_repeat_the_enforced_matcher() {
    assert_eq!(
        enforcer(true).enforce_query(r#"up{namespace="acme"}"#, &tenants(&["acme"])),
        Ok(r#"up{namespace="acme"}"#.into())
    );
}

#[test]
fn conflict_messages_name_no_allowed_tenant() {
    let allowed = tenants(&["acme", "secret-tenant"]);
    for query in [r#"up{namespace="victim"}"#, r#"up{namespace!="x"}"#] {
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
        enforcer.enforce_query("up", &tenants(&["a.b", "c|d"])),
        Ok(r#"up{namespace=~"a\\.b|c\\|d"}"#.into())
    );
    assert_eq!(
        enforcer.enforce_query("up", &tenants(&["c|d"])),
        Ok(r#"up{namespace="c|d"}"#.into())
    );
}

#[test]
fn tenant_values_are_quoted_in_the_output() {
    let enforcer = enforcer(false);
    assert_eq!(
        enforcer.enforce_query("up", &tenants(&[r#"a"b\c"#])),
        Ok(r#"up{namespace="a\"b\\c"}"#.into())
    );
    assert_eq!(
        enforcer.enforce_query("up", &tenants(&["x\ny", "é"])),
        Ok(r#"up{namespace=~"x\ny|é"}"#.into())
    );
}

// === C10: several enforced labels ===

#[test]
fn c10_rules_for_several_labels_all_apply() {
    use crate::rule::LabelRule;

    let namespaces = tenants(&["NS"]);
    let pods = tenants(&["POD"]);
    let rules = [
        LabelRule::new("namespace", &namespaces, false).unwrap(),
        LabelRule::new("pod", &pods, false).unwrap(),
    ];
    let mut expr = promql_parser::parser::parse(r#"round(metric1{label="baz"},3)"#).unwrap();
    for selector in crate::walk::selectors_mut(&mut expr).unwrap() {
        crate::enforce_selector(selector, &rules).unwrap();
    }
    assert_eq!(
        crate::print::print_faithfully(&expr).unwrap(),
        r#"round(metric1{label="baz",namespace="NS",pod="POD"}, 3)"#
    );
}

// === C12: parse errors ===

#[test]
fn c12_invalid_promql_is_a_parse_error() {
    assert_eq!(acme("up +"), invalid("parse error: invalid promql query"));
    assert_eq!(
        acme("sum(up"),
        invalid("parse error: unclosed left parenthesis")
    );
    assert_eq!(
        acme(""),
        invalid("parse error: no expression found in input")
    );
    assert_eq!(
        acme("rate(up)"),
        invalid("parse error: expected type matrix in call to function 'rate', got vector")
    );
}

#[test]
fn durations_the_parser_rejects_are_parse_errors() {
    assert_eq!(
        acme("x offset 0s"),
        invalid("parse error: duration must be greater than 0")
    );
    assert_eq!(
        acme("x[5m+1m]"),
        invalid("parse error: unexpected character inside brackets: '+'")
    );
}

// === Printer faithfulness ===

#[test]
fn printer_bugs_answer_invalid_instead_of_a_wrong_rewrite() {
    assert_eq!(acme("x @ -100"), invalid(UNFAITHFUL));
    assert_eq!(acme("rate(x[1.0005])"), invalid(UNFAITHFUL));
    assert_eq!(acme("max_over_time(x[1h:0.0001])"), invalid(UNFAITHFUL));
}

#[test]
fn empty_modifiers_the_printer_drops_are_rewritten_to_their_equivalents() {
    assert_eq!(
        acme("sum by () (up)").unwrap(),
        r#"sum(up{namespace="acme"})"#
    );
    assert_eq!(
        acme("sum without () (up)").unwrap(),
        r#"sum without () (up{namespace="acme"})"#
    );
    assert_eq!(
        acme("a + ignoring () b").unwrap(),
        r#"a{namespace="acme"} + b{namespace="acme"}"#
    );
    assert_eq!(
        acme("a and ignoring () b").unwrap(),
        r#"a{namespace="acme"} and b{namespace="acme"}"#
    );
    assert_eq!(
        acme("a > bool ignoring () b").unwrap(),
        r#"a{namespace="acme"} > bool b{namespace="acme"}"#
    );
    assert_eq!(acme("a + ignoring () group_left () b"), invalid(UNFAITHFUL));
}

#[test]
fn unfaithful_messages_name_no_tenant() {
    let err = enforcer(false)
        .enforce_query("x @ -100", &tenants(&["secret-tenant"]))
        .unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

// === C19: long queries ===

#[test]
fn c19_a_chain_of_5000_selectors_is_enforced_whole() {
    let query = vec!["up"; 5000].join(" or ");
    assert!(query.len() > 29_000);
    let enforced = with_stack(64, move || acme(&query)).unwrap();
    assert_eq!(enforced.matches(r#"up{namespace="acme"}"#).count(), 5000);
    assert_eq!(enforced.matches("up").count(), 5000);
}

#[test]
fn limits_answer_too_complex_before_parsing() {
    let deep = format!("{}up{}", "(".repeat(100_000), ")".repeat(100_000));
    let err = acme(&deep).unwrap_err();
    assert!(matches!(err, EnforceError::TooComplex(_)), "{err:?}");

    let long_chain = vec!["a"; 5002].join("+");
    let err = acme(&long_chain).unwrap_err();
    assert_eq!(
        err,
        EnforceError::TooComplex("query has more than 5000 operators".into())
    );

    let err = acme(&"a".repeat(200_000)).unwrap_err();
    assert!(matches!(err, EnforceError::TooComplex(_)), "{err:?}");
}

#[test]
fn the_deepest_accepted_nesting_is_enforced() {
    for (open, close) in [("(", ")"), ("abs(", ")"), ("sum(", ")"), ("-(", ")")] {
        let query = format!("{}up{}", open.repeat(512), close.repeat(512));
        let enforced = with_stack(64, move || acme(&query)).unwrap();
        assert!(enforced.contains(r#"up{namespace="acme"}"#), "{open}");
    }
}

// === C24: UTF-8 names ===

#[test]
fn c24_quoted_names_stay_quoted() {
    assert_eq!(
        acme(
            r#"sum by ("service.name") (rate({"http.requests.total", "service.name"="api"}[5m]))"#
        )
        .unwrap(),
        r#"sum by ("service.name") (rate({"service.name"="api",__name__="http.requests.total",namespace="acme"}[5m]))"#
    );
}

#[test]
fn a_utf8_tenant_label_is_quoted() {
    let enforcer = PromqlEnforcer::new(EnforcerConfig::new("k8s.namespace")).unwrap();
    assert_eq!(
        enforcer.enforce_query("up", &tenants(&["acme"])),
        Ok(r#"up{"k8s.namespace"="acme"}"#.into())
    );
}

// === Every position of a selector ===

#[test]
fn aggregation_parameters_are_enforced() {
    assert_eq!(
        acme("topk(scalar(count(secret)), up)").unwrap(),
        r#"topk(scalar(count(secret{namespace="acme"})), up{namespace="acme"})"#
    );
    assert_eq!(
        acme(r#"count_values("v", x) + quantile(scalar(q), y)"#).unwrap(),
        r#"count_values("v", x{namespace="acme"}) + quantile(scalar(q{namespace="acme"}), y{namespace="acme"})"#
    );
}

#[test]
fn function_arguments_are_enforced() {
    assert_eq!(
        acme(r#"label_replace(up{job="api"}, "dst", "$1", "src", "(.*)")"#).unwrap(),
        r#"label_replace(up{job="api",namespace="acme"}, "dst", "$1", "src", "(.*)")"#
    );
    assert_eq!(
        acme("absent(nonexistent) or absent_over_time(x[5m])").unwrap(),
        r#"absent(nonexistent{namespace="acme"}) or absent_over_time(x{namespace="acme"}[5m])"#
    );
    assert_eq!(
        acme("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))").unwrap(),
        r#"histogram_quantile(0.9, sum by (le) (rate(h_bucket{namespace="acme"}[5m])))"#
    );
}

#[test]
fn both_sides_of_binary_operators_are_enforced() {
    assert_eq!(
        acme("a / on (pod) group_left (node) b").unwrap(),
        r#"a{namespace="acme"} / on (pod) group_left (node) b{namespace="acme"}"#
    );
    assert_eq!(
        acme("a > bool 1 and b unless c").unwrap(),
        r#"a{namespace="acme"} > bool 1 and b{namespace="acme"} unless c{namespace="acme"}"#
    );
    assert_eq!(acme("-(a) ^ 2").unwrap(), r#"-(a{namespace="acme"}) ^ 2"#);
}

#[test]
fn queries_without_selectors_are_forwarded_in_canonical_spelling() {
    assert_eq!(acme("1+1").unwrap(), "1 + 1");
    assert_eq!(acme("vector(1)").unwrap(), "vector(1)");
    assert_eq!(acme(r#""text""#).unwrap(), r#""text""#);
    assert_eq!(acme("`raw`").unwrap(), r#""raw""#);
}

#[test]
fn comments_and_odd_spellings_are_normalised() {
    assert_eq!(
        acme("up # all of them\n").unwrap(),
        r#"up{namespace="acme"}"#
    );
    assert_eq!(
        acme(r#"up{job='api',}"#).unwrap(),
        r#"up{job="api",namespace="acme"}"#
    );
    assert_eq!(
        acme(r#"sum{job="api"}"#).unwrap(),
        r#"sum{job="api",namespace="acme"}"#
    );
}

#[test]
fn or_groups_inside_braces_are_each_enforced() {
    assert_eq!(
        acme(r#"up{a="1" or namespace="victim", b="2"}"#).unwrap(),
        r#"up{a="1", namespace="acme" or b="2", namespace="acme"}"#
    );
}

// === Series selectors (match[]) ===

#[test]
fn a_missing_selector_selects_exactly_the_allowed_tenants() {
    let enforcer = enforcer(false);
    assert_eq!(
        enforcer.enforce_selector(None, &tenants(&["acme"])),
        Ok(r#"{namespace="acme"}"#.into())
    );
    assert_eq!(
        enforcer.enforce_selector(None, &tenants(&["acme", "b.c"])),
        Ok(r#"{namespace=~"acme|b\\.c"}"#.into())
    );
}

#[test]
fn selectors_are_extended_in_braces_form() {
    let enforcer = enforcer(false);
    let acme = tenants(&["acme"]);
    let cases = [
        ("up", r#"{__name__="up",namespace="acme"}"#),
        (r#"{job="x"}"#, r#"{job="x",namespace="acme"}"#),
        (
            r#"up{namespace="victim"}"#,
            r#"{__name__="up",namespace="acme"}"#,
        ),
        (
            r#"{"http.requests.total"}"#,
            r#"{__name__="http.requests.total",namespace="acme"}"#,
        ),
    ];
    for (selector, expected) in cases {
        assert_eq!(
            enforcer.enforce_selector(Some(selector), &acme),
            Ok(expected.into()),
            "{selector}"
        );
    }
}

#[test]
fn anything_but_a_plain_selector_is_rejected_as_match() {
    let enforcer = enforcer(false);
    let acme = tenants(&["acme"]);
    for selector in [
        "up[5m]",
        "up offset 5m",
        "up @ 10",
        "(up)",
        "rate(up[5m])",
        "up or down",
    ] {
        assert_eq!(
            enforcer.enforce_selector(Some(selector), &acme),
            invalid(r#"parse error: expected a series selector such as up{job="api"}"#),
            "{selector}"
        );
    }
    assert_eq!(
        enforcer.enforce_selector(Some("{}"), &acme),
        invalid("parse error: vector selector must contain at least one non-empty matcher")
    );
    let err = enforcer
        .enforce_selector(Some(&"(".repeat(1000)), &acme)
        .unwrap_err();
    assert!(matches!(err, EnforceError::TooComplex(_)), "{err:?}");
}

/// The fuzzer's find: promql-parser panicked on a unit-less duration no `Duration` can hold.
#[test]
fn unitless_durations_out_of_range_are_parse_errors_not_panics() {
    let out_of_range = invalid("parse error: duration out of range");
    assert_eq!(
        acme("x[044444444444444444444444444444444444444444444444444.0001]"),
        out_of_range
    );
    assert_eq!(acme("max_over_time(x[1h:1e300])"), out_of_range);
    assert_eq!(acme("x offset Inf"), out_of_range);
    let selector = enforcer(false).enforce_selector(Some("x offset 1e300"), &tenants(&["acme"]));
    assert_eq!(selector, out_of_range);
}
