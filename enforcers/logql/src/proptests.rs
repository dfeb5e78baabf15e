//! Property tests: generated queries against an oracle that knows where their selectors are.
//!
//! The generator builds a query from pieces: stream selectors with random matchers (the tenant
//! label among them, comments and spacing between their tokens), pipelines whose strings and
//! comments are full of braces and quotes, metric wrappers and binary operators. Since it knows
//! which pieces are selectors, it also knows the exact output: every other piece unchanged,
//! every selector printed with the tenant matcher. A second property feeds character soup and
//! checks that the enforcer never panics and that whatever it accepts comes out enforced.

use proptest::prelude::*;

use portcullis_api::{EnforceError, TenantSet};

use crate::lex::tokenize;
use crate::rule::LabelRule;
use crate::selector;
use crate::{EnforcerConfig, LogqlEnforcer};

/// One generated matcher: how it is written, and the value it stands for.
#[derive(Debug, Clone)]
struct GenMatcher {
    name: String,
    op: &'static str,
    literal: String,
    value: String,
    written: String,
}

/// One piece of a generated query.
#[derive(Debug, Clone)]
enum Piece {
    /// Text that is not a selector and must come out unchanged.
    Text(String),
    /// A stream selector as written, and its matchers.
    Selector {
        written: String,
        matchers: Vec<GenMatcher>,
    },
}

type Pieces = Vec<Piece>;

fn text(text: impl Into<String>) -> Pieces {
    vec![Piece::Text(text.into())]
}

fn join(parts: impl IntoIterator<Item = Pieces>) -> Pieces {
    parts.into_iter().flatten().collect()
}

fn input(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.as_str(),
            Piece::Selector { written, .. } => written.as_str(),
        })
        .collect()
}

/// The output in default mode for the single tenant `acme`: selectors lose every matcher on
/// `namespace` and gain the tenant matcher; everything else is unchanged.
fn expected_default(pieces: &[Piece], enforced: &str) -> String {
    expected_keeping(pieces, enforced, |_| false)
}

/// The output in default mode when the matchers on `namespace` that `keep` picks stay where
/// they are written.
fn expected_keeping(
    pieces: &[Piece],
    enforced: &str,
    keep: impl Fn(&GenMatcher) -> bool,
) -> String {
    let print = |matchers: &[GenMatcher]| {
        let mut printed: Vec<String> = matchers
            .iter()
            .filter(|m| m.name != "namespace" || keep(m))
            .map(|m| format!("{}{}{}", m.name, m.op, m.literal))
            .collect();
        printed.push(enforced.to_owned());
        format!("{{{}}}", printed.join(", "))
    };
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.clone(),
            Piece::Selector { matchers, .. } => print(matchers),
        })
        .collect()
}

/// Whether a generated matcher selects at least one of `allowed`, as Loki reads it: a regex is
/// anchored at both ends.
fn selects_some(matcher: &GenMatcher, allowed: &[&str]) -> bool {
    let regex = |value: &str| regex::Regex::new(&format!("^(?:{value})$")).ok();
    allowed.iter().any(|tenant| match matcher.op {
        "=" => matcher.value == *tenant,
        "!=" => matcher.value != *tenant,
        "=~" => regex(&matcher.value).is_some_and(|r| r.is_match(tenant)),
        _ => regex(&matcher.value).is_some_and(|r| !r.is_match(tenant)),
    })
}

/// The answer in strict mode for the single tenant `acme`: a conflict when any selector has a
/// `!=` matcher or an `=` matcher to another value on `namespace`, the default output otherwise.
fn expected_strict(pieces: &[Piece]) -> Option<String> {
    let conflict = pieces.iter().any(|piece| match piece {
        Piece::Text(_) => false,
        Piece::Selector { matchers, .. } => matchers
            .iter()
            .any(|m| m.name == "namespace" && (m.op == "!=" || (m.op == "=" && m.value != "acme"))),
    });
    (!conflict).then(|| expected_default(pieces, r#"namespace="acme""#))
}

// === Strategies ===

/// Characters that matter to a lexer: braces, quotes, escapes, comment openers.
const NASTY: &str = "[a-z{}\"'`\\\\#|/*.=~!,()\\[\\] \n]{0,8}";

fn double_quoted(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// A string literal and the value it stands for.
fn literal() -> impl Strategy<Value = (String, String)> {
    let value = prop_oneof![Just("acme".to_owned()), NASTY];
    let backtick_value = prop_oneof![Just("acme".to_owned()), "[a-z{}\"'\\\\#|/*.=~!, \n]{0,8}"];
    prop_oneof![
        value.prop_map(|v| (double_quoted(&v), v)),
        backtick_value.prop_map(|v| (format!("`{v}`"), v)),
    ]
}

/// What may stand between two tokens of a selector.
fn gap() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(" "),
        Just("\n\t"),
        Just("/* } { \" ` */"),
        Just("# } {\"`\n"),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("namespace".to_owned()),
        Just("app".to_owned()),
        Just("Namespace".to_owned()),
        "[a-z_][a-z0-9_]{0,5}",
    ]
}

fn matcher() -> impl Strategy<Value = GenMatcher> {
    let op = prop_oneof![Just("="), Just("!="), Just("=~"), Just("!~")];
    (label_name(), op, literal(), [gap(), gap(), gap(), gap()]).prop_map(
        |(name, op, (literal, value), gaps)| {
            let written = format!(
                "{}{name}{}{op}{}{literal}{}",
                gaps[0], gaps[1], gaps[2], gaps[3]
            );
            GenMatcher {
                name,
                op,
                literal,
                value,
                written,
            }
        },
    )
}

fn stream_selector() -> impl Strategy<Value = Pieces> {
    (prop::collection::vec(matcher(), 0..4), gap()).prop_map(|(matchers, gap)| {
        let inner: Vec<&str> = matchers.iter().map(|m| m.written.as_str()).collect();
        let written = match inner.is_empty() {
            true => format!("{{{gap}}}"),
            false => format!("{{{}}}", inner.join(",")),
        };
        vec![Piece::Selector { written, matchers }]
    })
}

/// A pipeline stage, or a comment, that holds no selector however many braces it holds.
fn stage() -> impl Strategy<Value = String> {
    let filter = prop_oneof![Just("|="), Just("!="), Just("|~"), Just("!~"), Just("|>")];
    prop_oneof![
        (filter, literal()).prop_map(|(f, (l, _))| format!(" {f} {l}")),
        literal().prop_map(|(l, _)| format!(" | line_format {l}")),
        literal().prop_map(|(l, _)| format!(" | label_format x={l}, y=app")),
        literal().prop_map(|(l, _)| format!(" | namespace={l}")),
        Just(" | json".to_owned()),
        Just(" | logfmt --strict".to_owned()),
        Just(" | drop namespace, __error__".to_owned()),
        "[a-z{}\"'`\\\\|/*=,() ]{0,10}".prop_map(|c| format!(" # {c}\n")),
        "[a-z{}\"'`\\\\|/=,() ]{0,10}".prop_map(|c| format!(" /* {c} */")),
        "[a-z{}\"'`\\\\|/*=,() ]{0,10}".prop_map(|c| format!(" // {c}\n")),
    ]
}

fn log_query() -> impl Strategy<Value = Pieces> {
    (stream_selector(), prop::collection::vec(stage(), 0..4))
        .prop_map(|(selector, stages)| join([selector, text(stages.concat())]))
}

fn range_aggregation() -> impl Strategy<Value = Pieces> {
    prop_oneof![
        log_query().prop_map(|log| join([text("count_over_time("), log, text(" [5m])")])),
        log_query().prop_map(|log| join([text("rate(("), log, text("[1m]) offset 1h)")])),
        log_query().prop_map(|log| join([
            text("quantile_over_time(0.5,"),
            log,
            text(" | unwrap latency [15s]) by (app)")
        ])),
        stream_selector().prop_map(|s| join([text("bytes_rate("), s, text("[\"5m])")])),
    ]
}

fn metric_query() -> impl Strategy<Value = Pieces> {
    let leaf = prop_oneof![range_aggregation(), Just(text("vector(1)"))];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|m| join([text("sum by (app) ("), m, text(")")])),
            inner
                .clone()
                .prop_map(|m| join([text("topk(25,("), m, text("))")])),
            inner.clone().prop_map(|m| join([
                text("label_replace("),
                m,
                text(r#", "dst", "$1", "src", "(.*)")"#)
            ])),
            (inner.clone(), inner).prop_map(|(a, b)| join([a, text(" / on(app) "), b])),
        ]
    })
}

fn query() -> impl Strategy<Value = Pieces> {
    prop_oneof![log_query(), metric_query()]
}

// === Properties ===

fn enforcer(strict: bool) -> LogqlEnforcer {
    let mut config = EnforcerConfig::new("namespace");
    config.error_on_replace = strict;
    LogqlEnforcer::new(config).unwrap()
}

fn tenants(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).unwrap()
}

/// The text of `text` outside its selectors, and how many selectors it has.
fn outside_selectors(text: &str) -> (Vec<String>, usize) {
    let tokens = tokenize(text).unwrap();
    let mut outside = Vec::new();
    let mut copied = 0;
    let count = selector::for_each(text, &tokens, |selector| {
        outside.push(text[copied..selector.span.start].to_owned());
        copied = selector.span.end;
        Ok(())
    })
    .unwrap();
    outside.push(text[copied..].to_owned());
    (outside, count)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_queries_come_out_exactly_enforced(pieces in query()) {
        let query = input(&pieces);
        let enforced = enforcer(false).enforce_query(&query, &tenants(&["acme"]));
        prop_assert_eq!(enforced, Ok(expected_default(&pieces, r#"namespace="acme""#)));
    }

    #[test]
    fn several_tenants_are_one_escaped_alternation(pieces in query()) {
        let query = input(&pieces);
        let allowed = ["a.b", "c|d", "e"];
        let enforced = enforcer(false).enforce_query(&query, &tenants(&allowed));
        let matcher = r#"namespace=~"a\\.b|c\\|d|e""#;
        // A query's own matcher on the label stays when it selects some of the tenants.
        let keep = |m: &GenMatcher| selects_some(m, &allowed);
        prop_assert_eq!(enforced, Ok(expected_keeping(&pieces, matcher, keep)));
    }

    #[test]
    fn strict_mode_keeps_nothing_that_could_widen(pieces in query()) {
        let query = input(&pieces);
        let enforced = enforcer(true).enforce_query(&query, &tenants(&["acme"]));
        match expected_strict(&pieces) {
            Some(expected) => prop_assert_eq!(enforced, Ok(expected)),
            None => prop_assert!(matches!(enforced, Err(EnforceError::Conflict(_))), "{enforced:?}"),
        }
    }

    #[test]
    fn a_single_generated_selector_is_enforced_as_a_selector(pieces in stream_selector()) {
        let selector = input(&pieces);
        let enforced = enforcer(false).enforce_selector(Some(&selector), &tenants(&["acme"]));
        prop_assert_eq!(enforced, Ok(expected_default(&pieces, r#"namespace="acme""#)));
    }

    #[test]
    fn soup_never_panics_and_what_passes_is_enforced(
        soup in "[a-z{}\"'`\\\\#|/*=~!,()\\[\\] \n0-9]{0,40}"
    ) {
        let allowed = tenants(&["acme"]);
        let _ = enforcer(false).enforce_selector(Some(&soup), &allowed);
        let Ok(enforced) = enforcer(false).enforce_query(&soup, &allowed) else {
            return Ok(());
        };
        let (before, count) = outside_selectors(&soup);
        let (after, enforced_count) = outside_selectors(&enforced);
        prop_assert_eq!(before, after);
        prop_assert_eq!(count, enforced_count);

        let rule = LabelRule::new("namespace", &allowed, false);
        let tokens = tokenize(&enforced).unwrap();
        selector::for_each(&enforced, &tokens, |selector| rule.verify(&selector)).unwrap();
    }
}
