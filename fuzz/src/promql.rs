//! The PromQL enforcer: whatever it accepts comes out parseable, with exactly the tenant
//! matcher in every selector, meaning the same query otherwise, and stable under a second pass.

use portcullis_api::{EnforceError, TenantSet};
use portcullis_enforcer_promql::syntax::parse;
use portcullis_enforcer_promql::{EnforcerConfig, PromqlEnforcer};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{BinModifier, Expr, LabelModifier, VectorSelector};

const LABEL: &str = "namespace";

/// One way of enforcing: the mode and the allowed tenants.
struct Case {
    strict: bool,
    allowed: &'static [&'static str],
}

const CASES: [Case; 3] = [
    Case {
        strict: false,
        allowed: &["acme"],
    },
    Case {
        strict: false,
        allowed: &["a.b", "acme", "c|d"],
    },
    Case {
        strict: true,
        allowed: &["acme", "acme2"],
    },
];

fn enforcer(strict: bool) -> PromqlEnforcer {
    let mut config = EnforcerConfig::new(LABEL);
    config.error_on_replace = strict;
    // Every input goes through the rewrite itself, not a remembered answer.
    config.cache_entries = 0;
    PromqlEnforcer::new(config).expect("a valid configuration")
}

/// Runs `data`, as a query and as a series selector, through every case.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for case in &CASES {
        let enforcer = enforcer(case.strict);
        let allowed = TenantSet::new(case.allowed.iter().copied()).expect("non-empty");
        check_query(&enforcer, case, &allowed, text);
        check_selector(&enforcer, case, &allowed, text);
    }
}

fn check_query(enforcer: &PromqlEnforcer, case: &Case, allowed: &TenantSet, query: &str) {
    let answer = enforcer.enforce_query(query, allowed);
    let parsed = parse(query);
    let output = match answer {
        Ok(output) => output,
        Err(EnforceError::Unsupported(message)) => panic!("unsupported on {query:?}: {message}"),
        Err(EnforceError::Conflict(_)) => {
            assert!(case.strict, "a conflict outside strict mode: {query:?}");
            let input = parsed.expect("a conflict is only found in a parsed query");
            assert!(
                strict_conflict(&input, case.allowed),
                "strict mode refused a query that cannot widen: {query:?}"
            );
            return;
        }
        Err(_) => return,
    };
    let input = parsed.unwrap_or_else(|e| panic!("accepted {query:?}, which does not parse: {e}"));
    if case.strict {
        assert!(
            !strict_conflict(&input, case.allowed),
            "strict mode accepted {query:?} as {output:?}"
        );
    }
    let enforced = enforced_matcher(case.allowed);
    check_every_selector(&output, &enforced, case);
    assert_eq!(
        stripped(input),
        stripped(parse(&output).expect("checked above")),
        "{query:?} became {output:?}, which means something else"
    );
    assert_eq!(
        enforcer.enforce_query(&output, allowed).as_deref(),
        Ok(output.as_str()),
        "enforcing {output:?} again changed it"
    );
}

fn check_selector(enforcer: &PromqlEnforcer, case: &Case, allowed: &TenantSet, text: &str) {
    let Ok(output) = enforcer.enforce_selector(Some(text), allowed) else {
        return;
    };
    let Ok(Expr::VectorSelector(input)) = parse(text) else {
        panic!("accepted {text:?} as a series selector, which it is not");
    };
    check_every_selector(&output, &enforced_matcher(case.allowed), case);
    let Ok(Expr::VectorSelector(selector)) = parse(&output) else {
        panic!("{text:?} became {output:?}, which is not a series selector");
    };
    assert!(
        selector.name.is_none() && selector.offset.is_none() && selector.at.is_none(),
        "{text:?} became {output:?}"
    );
    if let Some(name) = &input.name {
        let named = groups(&selector).iter().all(|group| {
            group
                .iter()
                .any(|m| m.name == "__name__" && m.op == MatchOp::Equal && &m.value == name)
        });
        assert!(named, "{text:?} lost its metric name in {output:?}");
    }
    assert_eq!(
        enforcer.enforce_selector(Some(&output), allowed).as_deref(),
        Ok(output.as_str()),
        "enforcing the selector {output:?} again changed it"
    );
}

/// The matcher every selector must carry, as promql-parser prints it.
fn enforced_matcher(allowed: &[&str]) -> String {
    match allowed {
        [one] => format!("{LABEL}={one:?}"),
        many => {
            let literals: Vec<String> = many.iter().map(|v| regex_literal(v)).collect();
            format!("{LABEL}=~{:?}", literals.join("|"))
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

/// Every selector group of `output` carries `enforced` exactly once; any other matcher on the
/// label narrows the answer to some of several allowed tenants, and in strict mode is no `!=`.
fn check_every_selector(output: &str, enforced: &str, case: &Case) {
    let expr = parse(output).unwrap_or_else(|e| panic!("output {output:?} does not parse: {e}"));
    for selector in selectors(&expr) {
        for group in groups(selector) {
            let mut count = 0;
            for matcher in group.iter().filter(|m| m.name == LABEL) {
                if matcher.to_string() == enforced {
                    count += 1;
                    continue;
                }
                let kept = narrows(matcher, case.allowed)
                    && !(case.strict && matcher.op == MatchOp::NotEqual);
                assert!(kept, "{matcher} survived in {output:?}");
            }
            assert_eq!(count, 1, "selector {selector} of {output:?}");
        }
    }
}

/// Whether a query's own matcher on the label may stay: with several allowed tenants, when it
/// selects at least one of them.
fn narrows(matcher: &Matcher, allowed: &[&str]) -> bool {
    allowed.len() > 1 && allowed.iter().any(|value| matcher.is_match(value))
}

/// Whether strict mode must refuse `expr`: a `!=` matcher on the label, or an `=` matcher to a
/// value outside `allowed`.
fn strict_conflict(expr: &Expr, allowed: &[&str]) -> bool {
    selectors(expr).iter().any(|selector| {
        groups(selector).iter().any(|group| {
            group.iter().any(|m| {
                m.name == LABEL
                    && match &m.op {
                        MatchOp::NotEqual => true,
                        MatchOp::Equal => !allowed.contains(&m.value.as_str()),
                        MatchOp::Re(_) | MatchOp::NotRe(_) => false,
                    }
            })
        })
    })
}

/// Every selector of `expr`, found by a walk of its own rather than the enforcer's.
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
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            Expr::Extension(_) => panic!("the parser built an extension node"),
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

/// `expr` without any matcher on the label, matchers in a fixed order, and the empty `by ()` and
/// `ignoring ()` written as their equivalents: what must not change in a rewrite.
fn stripped(mut expr: Expr) -> Expr {
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
