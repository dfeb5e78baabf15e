//! Property tests: generated PromQL queries, enforced, then checked from the output alone.
//!
//! The generator writes type-correct queries from a small grammar that covers what dashboards
//! send and what the enforcer must not lose: selectors with matchers of every operator (the
//! tenant label among them, in all three quoting styles), range selectors, subqueries, offsets
//! and `@`, aggregations with and without grouping and parameters, functions, unary and binary
//! operators with vector matching. For every query the checks are:
//!
//! - the output parses;
//! - every selector of the output carries the enforced matcher exactly once, and in the default
//!   mode no other matcher on the tenant label;
//! - the output means the query with only the tenant matchers changed: both parse to the same
//!   tree once every matcher on the tenant label is taken out;
//! - enforcing the output again gives the output (the rewrite is idempotent).
//!
//! The checks walk the parsed output with their own walker, not the enforcer's, so that a
//! selector the enforcer's walk misses is a selector the check finds.

use proptest::prelude::*;
use proptest::strategy::Union;

use crate::syntax::parse;
use portcullis_api::{EnforceError, TenantSet};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{BinModifier, Expr, LabelModifier, VectorSelector};

use crate::{EnforcerConfig, PromqlEnforcer};

const LABEL: &str = "namespace";

// === Strategies ===

/// A strategy for query text.
type Query = BoxedStrategy<String>;

/// A string literal standing for `value`, in one of PromQL's three quoting styles.
fn quoted(value: &str, style: u8) -> String {
    match style {
        0 if !value.contains(['`', '\\']) => format!("`{value}`"),
        1 => {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('\n', "\\n");
            format!("'{escaped}'")
        }
        _ => {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("\"{escaped}\"")
        }
    }
}

/// A label value: tenants, lookalikes, and text full of quotes, escapes and regex characters.
fn plain_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("acme".to_owned()),
        Just("victim".to_owned()),
        Just("acme2".to_owned()),
        Just(String::new()),
        Just("a.b".to_owned()),
        Just("c|d".to_owned()),
        Just("é\u{1F600}".to_owned()),
        "[a-z\"'`\\\\{}(),=~!|.*+ \n]{1,8}",
    ]
}

/// A regular expression that compiles both in Go's RE2 and in Rust's regex crate.
fn regex_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".*".to_owned()),
        Just(".+".to_owned()),
        Just("acme|victim".to_owned()),
        Just("acme".to_owned()),
        Just("a\\.b".to_owned()),
        Just("(acme|globex)-[0-9]+".to_owned()),
        Just(String::new()),
        Just("vict.*".to_owned()),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(LABEL.to_owned()),
        2 => Just("job".to_owned()),
        1 => Just("pod".to_owned()),
        1 => Just("Namespace".to_owned()),
        1 => Just("namespace_x".to_owned()),
        1 => Just("\"service.name\"".to_owned()),
        1 => "[a-z_][a-z0-9_]{0,6}",
    ]
}

/// One matcher, as written.
fn matcher() -> impl Strategy<Value = String> {
    let equality = (prop_oneof![Just("="), Just("!=")], plain_value());
    let regex = (prop_oneof![Just("=~"), Just("!~")], regex_value());
    (
        label_name(),
        prop_oneof![equality, regex],
        0u8..3,
        prop_oneof![Just(""), Just(" ")],
    )
        .prop_map(|(name, (op, value), style, gap)| {
            format!("{name}{gap}{op}{gap}{}", quoted(&value, style))
        })
}

/// A matcher that does not match the empty string, so that a selector without a metric name
/// is valid.
fn nonempty_matcher() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(LABEL), Just("job")],
        prop_oneof![Just("acme"), Just("victim"), Just("api")],
        0u8..3,
    )
        .prop_map(|(name, value, style)| format!("{name}={}", quoted(value, style)))
}

fn metric_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(Some("up".to_owned())),
        3 => Just(Some("http_requests_total".to_owned())),
        1 => Just(Some("job:requests:rate5m".to_owned())),
        1 => Just(Some("namespace".to_owned())),
        1 => Just(Some("offset".to_owned())),
        2 => Just(None),
    ]
}

/// A plain series selector: an optional metric name and matchers, nothing after the braces.
fn plain_selector() -> impl Strategy<Value = String> {
    (
        metric_name(),
        nonempty_matcher(),
        prop::collection::vec(matcher(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, first, rest, braces)| {
            let mut matchers = rest;
            match name {
                Some(name) if matchers.is_empty() && !braces => name,
                Some(name) => format!("{name}{{{}}}", matchers.join(",")),
                None => {
                    matchers.insert(0, first);
                    format!("{{{}}}", matchers.join(", "))
                }
            }
        })
}

/// promql-parser's extension `{a="1" or b="2"}`.
fn or_selector() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (nonempty_matcher(), prop::collection::vec(matcher(), 0..2)),
        2..4,
    )
    .prop_map(|groups| {
        let groups: Vec<String> = groups
            .into_iter()
            .map(|(first, rest)| {
                std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        format!("{{{}}}", groups.join(" or "))
    })
}

fn duration() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("5m"),
        Just("1h"),
        Just("30s"),
        Just("1h30m"),
        Just("90s"),
        Just("1d"),
        Just("1w"),
        Just("500ms"),
    ]
}

/// ` offset …` and ` @ …` after a selector or subquery, in either order.
fn modifiers() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        2 => Just(String::new()),
        1 => duration().prop_map(|d| format!(" offset {d}")),
        1 => duration().prop_map(|d| format!(" offset -{d}")),
    ];
    let at = prop_oneof![
        3 => Just(String::new()),
        1 => Just(" @ 1609746000".to_owned()),
        1 => Just(" @ 1609746000.5".to_owned()),
        1 => Just(" @ start()".to_owned()),
        1 => Just(" @ end()".to_owned()),
    ];
    (offset, at, any::<bool>()).prop_map(|(o, a, swap)| if swap { a + &o } else { o + &a })
}

fn instant_selector() -> Query {
    prop_oneof![
        6 => (plain_selector(), modifiers()).prop_map(|(s, m)| s + &m),
        1 => or_selector(),
    ]
    .boxed()
}

fn scalar() -> Query {
    prop_oneof![
        Just("1".to_owned()),
        Just("0.5".to_owned()),
        Just("100".to_owned()),
        Just("1e3".to_owned()),
        Just("0x1f".to_owned()),
        Just("Inf".to_owned()),
        Just("time()".to_owned()),
    ]
    .boxed()
}

/// A range vector built from `instant`.
fn range(instant: Query) -> Query {
    prop_oneof![
        3 => (plain_selector(), duration(), modifiers())
            .prop_map(|(s, d, m)| format!("{s}[{d}]{m}")),
        1 => (instant, duration(), prop_oneof![Just(""), Just("1m"), Just("30s")], modifiers())
            .prop_map(|(e, d, step, m)| format!("({e})[{d}:{step}]{m}")),
    ]
    .boxed()
}

fn range_function() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("rate"),
        Just("irate"),
        Just("increase"),
        Just("delta"),
        Just("max_over_time"),
        Just("count_over_time"),
        Just("avg_over_time"),
        Just("absent_over_time"),
    ]
}

/// Up to three label names, separated by `separator`.
fn label_list(separator: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(label_name(), 0..3).prop_map(move |l| l.join(separator))
}

fn grouping() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => label_list(", ").prop_map(|l| format!(" by ({l}) ")),
        1 => label_list(", ").prop_map(|l| format!(" without ({l}) ")),
    ]
}

fn aggregation() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("sum"),
        Just("avg"),
        Just("count"),
        Just("max"),
        Just("min"),
        Just("group"),
        Just("stddev"),
    ]
}

fn arithmetic() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("%"),
        Just("^")
    ]
}

fn comparison() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("=="),
        Just("!="),
        Just(">"),
        Just("<"),
        Just(">="),
        Just("<=")
    ]
}

/// The labels a `group_left`/`group_right` copies: never one of `label_name`'s, since a label may
/// not be both matched on and copied.
fn extra_labels() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![Just("version"), Just("instance")], 0..2)
        .prop_map(|l| l.join(","))
}

/// `on (…)` or `ignoring (…)`, possibly with `group_left`/`group_right`.
fn vector_matching() -> impl Strategy<Value = String> {
    let side = prop_oneof![Just("on"), Just("ignoring")];
    let group = prop_oneof![
        3 => Just(String::new()),
        1 => extra_labels().prop_map(|l| format!(" group_left ({l})")),
        1 => extra_labels().prop_map(|l| format!(" group_right ({l})")),
    ];
    prop_oneof![
        2 => Just(String::new()),
        1 => (side, label_list(","), group).prop_map(|(s, l, g)| {
            // `ignoring ()` with a group modifier is a documented refusal; keep it out.
            let l = if s == "ignoring" && l.is_empty() && !g.is_empty() { "job".into() } else { l };
            format!(" {s} ({l}){g} ")
        }),
    ]
}

/// `a op b`; with vector matching, the operands are parenthesised, since precedence could
/// otherwise make one of them a scalar.
fn matched(a: &str, op: &str, b: &str, matching: &str) -> String {
    match matching.is_empty() {
        true => format!("{a} {op} {b}"),
        false => format!("({a}) {op} ({b})"),
    }
}

/// A type-correct instant-vector query.
fn instant_vector() -> Query {
    instant_selector()
        .prop_recursive(5, 48, 3, |inner| {
            let range = range(inner.clone());
            Union::new(vec![
                (range_function(), range)
                    .prop_map(|(f, r)| format!("{f}({r})"))
                    .boxed(),
                (aggregation(), grouping(), inner.clone(), any::<bool>())
                    .prop_map(|(a, g, e, before)| match before {
                        true => format!("{a}{g}({e})"),
                        false => format!("{a}({e}){g}"),
                    })
                    .boxed(),
                (
                    prop_oneof![Just("topk"), Just("bottomk"), Just("quantile")],
                    scalar_of(inner.clone()),
                    inner.clone(),
                    grouping(),
                )
                    .prop_map(|(a, s, e, g)| format!("{a}{g}({s}, {e})"))
                    .boxed(),
                inner
                    .clone()
                    .prop_map(|e| format!("count_values(\"value\", {e})"))
                    .boxed(),
                (
                    inner.clone(),
                    arithmetic(),
                    vector_matching(),
                    inner.clone(),
                )
                    .prop_map(|(a, op, m, b)| matched(&a, &format!("{op}{m}"), &b, &m))
                    .boxed(),
                (
                    inner.clone(),
                    comparison(),
                    any::<bool>(),
                    vector_matching(),
                    inner.clone(),
                )
                    .prop_map(|(a, op, b, m, c)| {
                        let bool_ = if b { " bool" } else { "" };
                        matched(&a, &format!("{op}{bool_}{m}"), &c, &m)
                    })
                    .boxed(),
                (
                    inner.clone(),
                    prop_oneof![Just("and"), Just("or"), Just("unless")],
                    inner.clone(),
                )
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}"))
                    .boxed(),
                (
                    inner.clone(),
                    arithmetic(),
                    scalar_of(inner.clone()),
                    any::<bool>(),
                )
                    .prop_map(|(v, op, s, left)| match left {
                        true => format!("{v} {op} {s}"),
                        false => format!("{s} {op} {v}"),
                    })
                    .boxed(),
                inner.clone().prop_map(|e| format!("-{e}")).boxed(),
                inner.clone().prop_map(|e| format!("({e})")).boxed(),
                inner
                    .clone()
                    .prop_map(|e| format!(r#"label_replace({e}, "dst", "$1", "src", "(.*)")"#))
                    .boxed(),
                inner
                    .clone()
                    .prop_map(|e| format!(r#"label_join({e}, "dst", ",", "a", "b")"#))
                    .boxed(),
                (scalar_of(inner.clone()), inner.clone())
                    .prop_map(|(s, e)| format!("histogram_quantile({s}, {e})"))
                    .boxed(),
                inner.clone().prop_map(|e| format!("absent({e})")).boxed(),
                (inner.clone(), scalar_of(inner.clone()))
                    .prop_map(|(e, s)| format!("clamp_min({e}, {s})"))
                    .boxed(),
                scalar_of(inner)
                    .prop_map(|s| format!("vector({s})"))
                    .boxed(),
            ])
            .boxed()
        })
        .boxed()
}

/// A scalar, possibly read from a vector with `scalar(…)`.
fn scalar_of(instant: Query) -> Query {
    prop_oneof![
        3 => scalar(),
        1 => instant.prop_map(|e| format!("scalar({e})")),
    ]
    .boxed()
}

/// Any query: mostly instant vectors, sometimes a range vector, a scalar or a string.
fn query() -> Query {
    prop_oneof![
        12 => instant_vector(),
        1 => range(instant_vector()),
        1 => scalar_of(instant_vector()),
        1 => Just("\"text\"".to_owned()),
    ]
    .boxed()
}

// === Checks ===

fn enforcer(strict: bool) -> PromqlEnforcer {
    let mut config = EnforcerConfig::new(LABEL);
    config.error_on_replace = strict;
    PromqlEnforcer::new(config).unwrap()
}

fn tenants(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).unwrap()
}

/// Every selector of `expr`, found by a walk of its own.
fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    let mut found = Vec::new();
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Aggregate(a) => {
                pending.push(&a.expr);
                pending.extend(a.param.as_deref());
            }
            Expr::Unary(u) => pending.push(&u.expr),
            Expr::Binary(b) => pending.extend([&*b.lhs, &*b.rhs]),
            Expr::Paren(p) => pending.push(&p.expr),
            Expr::Subquery(s) => pending.push(&s.expr),
            Expr::Call(c) => pending.extend(c.args.args.iter().map(|a| &**a)),
            Expr::VectorSelector(vs) => found.push(vs),
            Expr::MatrixSelector(ms) => found.push(&ms.vs),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    found
}

/// The matcher groups of a selector: its matchers, or each of its `or` groups.
fn groups(selector: &VectorSelector) -> Vec<&[Matcher]> {
    match selector.matchers.or_matchers.is_empty() {
        true => vec![&selector.matchers.matchers],
        false => selector
            .matchers
            .or_matchers
            .iter()
            .map(Vec::as_slice)
            .collect(),
    }
}

/// The matcher the enforcer must inject for `allowed`, as printed.
fn enforced_matcher(allowed: &[&str]) -> String {
    match allowed {
        [one] => format!("{LABEL}={}", quoted(one, 2)),
        many => {
            let escaped: Vec<String> = many.iter().map(|v| regex_literal(v)).collect();
            format!("{LABEL}=~{}", quoted(&escaped.join("|"), 2))
        }
    }
}

fn regex_literal(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks that every selector group of `output` carries `enforced` exactly once and, besides it,
/// only the tenant-label matchers `kept` allows.
fn check_every_selector(
    output: &str,
    enforced: &str,
    kept: impl Fn(&Matcher) -> bool,
) -> Result<(), TestCaseError> {
    let expr = parse(output).map_err(|e| TestCaseError::fail(format!("{output}: {e}")))?;
    for selector in selectors(&expr) {
        for group in groups(selector) {
            let on_label: Vec<&Matcher> = group.iter().filter(|m| m.name == LABEL).collect();
            let count = on_label
                .iter()
                .filter(|m| m.to_string() == enforced)
                .count();
            prop_assert_eq!(count, 1, "selector {} of {}", selector, output);
            for matcher in on_label {
                prop_assert!(
                    matcher.to_string() == enforced || kept(matcher),
                    "matcher {} kept in {}",
                    matcher,
                    output
                );
            }
        }
    }
    Ok(())
}

/// `expr` without any matcher on the tenant label, its matchers in a fixed order, and the empty
/// `by ()` / `ignoring ()` modifiers spelled as their equivalents.
fn stripped(text: &str) -> Expr {
    let mut expr = parse(text).unwrap();
    let mut pending = vec![&mut expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Aggregate(a) => {
                if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.is_empty()) {
                    a.modifier = None;
                }
                pending.push(&mut a.expr);
                pending.extend(a.param.as_deref_mut());
            }
            Expr::Unary(u) => pending.push(&mut u.expr),
            Expr::Binary(b) => {
                normalize_matching(&mut b.modifier);
                pending.push(&mut b.lhs);
                pending.push(&mut b.rhs);
            }
            Expr::Paren(p) => pending.push(&mut p.expr),
            Expr::Subquery(s) => pending.push(&mut s.expr),
            Expr::Call(c) => pending.extend(c.args.args.iter_mut().map(|a| &mut **a)),
            Expr::VectorSelector(vs) => strip_selector(vs),
            Expr::MatrixSelector(ms) => strip_selector(&mut ms.vs),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    expr
}

fn strip_selector(selector: &mut VectorSelector) {
    let strip = |matchers: &mut Vec<Matcher>| {
        matchers.retain(|m| m.name != LABEL);
        matchers.sort_by_cached_key(ToString::to_string);
    };
    strip(&mut selector.matchers.matchers);
    selector.matchers.or_matchers.iter_mut().for_each(strip);
}

fn normalize_matching(modifier: &mut Option<BinModifier>) {
    let Some(binary) = modifier else {
        return;
    };
    let empty_ignoring =
        matches!(&binary.matching, Some(LabelModifier::Exclude(l)) if l.is_empty());
    if empty_ignoring && binary.card.labels().is_none() {
        binary.matching = None;
    }
    if *binary == BinModifier::default() {
        *modifier = None;
    }
}

/// All checks of the default mode for `query` and `allowed`.
fn check_default(query: &str, allowed: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(
        parse(query).is_ok(),
        "the generator wrote an invalid query: {}",
        query
    );
    let enforcer = enforcer(false);
    let set = tenants(allowed);
    let output = enforcer
        .enforce_query(query, &set)
        .map_err(|e| TestCaseError::fail(format!("{query}: {e:?}")))?;
    let enforced = enforced_matcher(allowed);
    check_every_selector(&output, &enforced, |m| narrows(m, allowed))?;
    prop_assert_eq!(
        stripped(query),
        stripped(&output),
        "{} -> {}",
        query,
        output
    );
    // What stays of the query's own matchers on the label: exactly those that narrow.
    let own = |text: &str| label_matchers(text, |m| m.to_string() != enforced);
    prop_assert_eq!(
        label_matchers(query, |m| narrows(m, allowed) && m.to_string() != enforced),
        own(&output),
        "{} -> {}",
        query,
        output
    );
    prop_assert_eq!(enforcer.enforce_query(&output, &set), Ok(output.clone()));
    Ok(())
}

/// Whether a query's own matcher on the label stays beside the enforced one: with several
/// allowed tenants, when it selects at least one of them.
fn narrows(matcher: &Matcher, allowed: &[&str]) -> bool {
    allowed.len() > 1 && allowed.iter().any(|value| matcher.is_match(value))
}

/// The matchers on the label in `text` that `keep` picks, printed and sorted.
fn label_matchers(text: &str, keep: impl Fn(&Matcher) -> bool) -> Vec<String> {
    let expr = parse(text).unwrap();
    let mut found: Vec<String> = selectors(&expr)
        .iter()
        .flat_map(|selector| groups(selector))
        .flatten()
        .filter(|m| m.name == LABEL && keep(m))
        .map(ToString::to_string)
        .collect();
    found.sort();
    found
}

/// Whether strict mode must refuse `query` for `allowed`: a matcher on the label that is `!=`,
/// or `=` to a value outside `allowed`.
fn strict_conflict(query: &str, allowed: &[&str]) -> bool {
    let expr = parse(query).unwrap();
    selectors(&expr).iter().any(|selector| {
        groups(selector).iter().any(|group| {
            group.iter().any(|m| {
                m.name == LABEL
                    && match m.op {
                        MatchOp::NotEqual => true,
                        MatchOp::Equal => !allowed.contains(&m.value.as_str()),
                        MatchOp::Re(_) | MatchOp::NotRe(_) => false,
                    }
            })
        })
    })
}

/// 384 cases per property in the normal test suite; `PROPTEST_CASES` sets another count for a
/// longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 384;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn one_tenant_every_selector_carries_exactly_the_tenant(query in query()) {
        check_default(&query, &["acme"])?;
    }

    #[test]
    fn several_tenants_are_one_escaped_alternation_in_every_selector(query in query()) {
        check_default(&query, &["a.b", "acme", "c|d"])?;
    }

    #[test]
    fn strict_mode_refuses_exactly_what_could_widen(query in query()) {
        let allowed = ["acme", "acme2"];
        let set = tenants(&allowed);
        let answer = enforcer(true).enforce_query(&query, &set);
        if strict_conflict(&query, &allowed) {
            prop_assert!(matches!(answer, Err(EnforceError::Conflict(_))), "{}: {:?}", query, answer);
            return Ok(());
        }
        let output = answer.map_err(|e| TestCaseError::fail(format!("{query}: {e:?}")))?;
        let enforced = enforced_matcher(&allowed);
        let kept = |m: &Matcher| match m.op {
            MatchOp::Equal => allowed.contains(&m.value.as_str()),
            MatchOp::NotEqual => false,
            MatchOp::Re(_) | MatchOp::NotRe(_) => narrows(m, &allowed),
        };
        check_every_selector(&output, &enforced, kept)?;
        prop_assert_eq!(enforcer(true).enforce_query(&output, &set), Ok(output.clone()));
    }

    #[test]
    fn a_series_selector_comes_out_as_one_enforced_selector(selector in plain_selector()) {
        let set = tenants(&["acme"]);
        let enforcer = enforcer(false);
        let output = enforcer
            .enforce_selector(Some(&selector), &set)
            .map_err(|e| TestCaseError::fail(format!("{selector}: {e:?}")))?;
        check_every_selector(&output, &enforced_matcher(&["acme"]), |_| false)?;
        let Ok(Expr::VectorSelector(parsed)) = parse(&output) else {
            return Err(TestCaseError::fail(format!("{output} is not a selector")));
        };
        prop_assert!(parsed.name.is_none(), "{}", output);
        let Ok(Expr::VectorSelector(original)) = parse(&selector) else {
            return Err(TestCaseError::fail(format!("{selector} is not a selector")));
        };
        if let Some(name) = &original.name {
            let named = parsed.matchers.matchers.iter().any(|m| {
                m.name == "__name__" && m.op == MatchOp::Equal && &m.value == name
            });
            prop_assert!(named, "{} lost its metric name: {}", selector, output);
        }
        prop_assert_eq!(enforcer.enforce_selector(Some(&output), &set), Ok(output.clone()));
    }

    #[test]
    fn soup_never_panics_and_what_passes_is_enforced(
        soup in "[a-z_{}()\\[\\]\"'`\\\\=~!,+*/^<>@:. 0-9\n#-]{0,48}"
    ) {
        let set = tenants(&["acme"]);
        let enforcer = enforcer(false);
        if let Ok(output) = enforcer.enforce_query(&soup, &set) {
            check_every_selector(&output, &enforced_matcher(&["acme"]), |_| false)?;
            prop_assert_eq!(stripped(&soup), stripped(&output), "{} -> {}", soup, output);
        }
        if let Ok(output) = enforcer.enforce_selector(Some(&soup), &set) {
            check_every_selector(&output, &enforced_matcher(&["acme"]), |_| false)?;
        }
    }
}
