//! Printing a rewritten expression, and proving the text means what the expression means.
//!
//! promql-parser's printer is not faithful for every expression: `x @ -100` prints as
//! `x @ 0.000`, a sub-millisecond duration loses its fraction, and matchers in `matchers` are
//! dropped when a selector also has `or` groups. Rather than guard against each such bug, every
//! printed text is parsed again and must give back the very expression that was printed.

use portcullis_api::EnforceError;
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{BinModifier, Expr, LabelModifier};

use crate::syntax::parse;
use crate::walk;

/// The message of a rewrite whose printed text would mean something else.
pub(crate) const UNFAITHFUL: &str = "query cannot be rewritten faithfully: part of it, such \
    as an @ timestamp before 1970 or a duration finer than a millisecond, would change when \
    printed";

/// Sorts `matchers` the way the printer orders them, so that a re-parse of the printed text
/// yields them in the same order.
pub(crate) fn sort_like_printer(matchers: &mut [Matcher]) {
    if matchers.len() > 1 {
        matchers.sort_by_cached_key(ToString::to_string);
    }
}

/// Turns `sum by () (x)` into its equivalent `sum(x)`: the printer leaves an empty `by ()` out.
pub(crate) fn drop_empty_by(modifier: &mut Option<LabelModifier>) {
    if matches!(modifier, Some(LabelModifier::Include(labels)) if labels.is_empty()) {
        *modifier = None;
    }
}

/// Turns `a + ignoring () b` into its equivalent `a + b`: the printer leaves an empty
/// `ignoring ()` out.
pub(crate) fn drop_empty_ignoring(modifier: &mut Option<BinModifier>) {
    let Some(binary) = modifier else {
        return;
    };
    let empty = matches!(&binary.matching, Some(LabelModifier::Exclude(l)) if l.is_empty());
    // Known limitation: `ignoring () group_left` is rejected as unfaithful, because the printer
    // drops the `ignoring ()` and `group_left` alone does not parse.
    if !empty || binary.card.labels().is_some() {
        return;
    }
    binary.matching = None;
    if *binary == BinModifier::default() {
        *modifier = None;
    }
}

/// Prints `expr`, or answers [`EnforceError::Invalid`] when the text would parse back to anything
/// but `expr`. The message never shows the text: it holds the enforced tenant values.
///
/// The check parses a copy of `expr` whose regex matchers are turned into (in)equality matchers
/// with the same values: promql-parser compiles every regex it parses, which costs more than the
/// rest of a parse, and the printer writes a matcher's value the same way whatever its
/// operator. So the copy's text differs from `expr`'s only in the operators `=~` and `!~` (and
/// in the order of matchers, which the printer sorts by their text), and whatever else the
/// printer gets wrong shows in the copy as in `expr`. A text without those operators is parsed
/// as it is. Either way `expr`'s matchers must already be in the printer's order
/// ([`sort_like_printer`]).
pub(crate) fn print_faithfully(expr: &Expr) -> Result<String, EnforceError> {
    let text = expr.to_string();
    // Without a regex operator in the text, there is no regex to spare: parse the text itself.
    let faithful = if !text.contains("=~") && !text.contains("!~") {
        parse(&text).is_ok_and(|reparsed| reparsed == *expr)
    } else {
        let mut plain = expr.clone();
        without_regexes(&mut plain).is_ok()
            && parse(&plain.to_string()).is_ok_and(|reparsed| reparsed == plain)
    };
    match faithful {
        true => Ok(text),
        false => Err(EnforceError::Invalid(UNFAITHFUL.into())),
    }
}

/// Turns every `=~` matcher of `expr` into `=` and every `!~` into `!=`, values unchanged, and
/// orders the matchers as the printer will.
fn without_regexes(expr: &mut Expr) -> Result<(), EnforceError> {
    for selector in walk::selectors_mut(expr)? {
        let matchers = &mut selector.matchers;
        let all = matchers
            .matchers
            .iter_mut()
            .chain(matchers.or_matchers.iter_mut().flatten());
        for matcher in all {
            match matcher.op {
                MatchOp::Re(_) => matcher.op = MatchOp::Equal,
                MatchOp::NotRe(_) => matcher.op = MatchOp::NotEqual,
                MatchOp::Equal | MatchOp::NotEqual => {}
            }
        }
        if matchers.or_matchers.is_empty() {
            sort_like_printer(&mut matchers.matchers);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(query: &str) -> Result<String, EnforceError> {
        print_faithfully(&parse(query).unwrap())
    }

    #[test]
    fn faithful_prints_pass() {
        assert_eq!(round_trip("x @ 100").unwrap(), "x @ 100.000");
        assert_eq!(round_trip("x offset -5m").unwrap(), "x offset -5m");
        assert_eq!(round_trip("x[1h:] @ end()").unwrap(), "x[1h:] @ end()");
    }

    #[test]
    fn printer_bugs_are_caught() {
        let invalid = Err(EnforceError::Invalid(UNFAITHFUL.into()));
        assert_eq!(round_trip("x @ -100"), invalid);
        assert_eq!(round_trip("x[1.0005]"), invalid);
        assert_eq!(round_trip("x[1h:0.0001]"), invalid);
    }

    #[test]
    fn unsorted_matchers_do_not_round_trip_until_sorted() {
        let mut expr = parse(r#"x{b="1",a="2"}"#).unwrap();
        assert!(print_faithfully(&expr).is_err());
        let Expr::VectorSelector(selector) = &mut expr else {
            unreachable!("a selector parses as a selector")
        };
        sort_like_printer(&mut selector.matchers.matchers);
        assert_eq!(print_faithfully(&expr).unwrap(), r#"x{a="2",b="1"}"#);
    }

    #[test]
    fn regex_matchers_are_checked_like_equalities() {
        assert_eq!(
            round_trip(r#"x{b=~"1|2",a!~"a\\.b",c="3"}"#).unwrap(),
            r#"x{a!~"a\\.b",b=~"1|2",c="3"}"#
        );
        assert_eq!(
            round_trip(r#"x{a=~"z",a="b"}[5m] @ -100"#),
            Err(EnforceError::Invalid(UNFAITHFUL.into()))
        );
    }
}
