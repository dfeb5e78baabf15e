//! Finding every series selector of an expression.

use portcullis_api::EnforceError;
use promql_parser::parser::{Expr, VectorSelector};

use crate::print;

/// Every vector selector of `expr`, including those of range selectors, in no particular order.
///
/// On the way, the empty `by ()` and `ignoring ()` modifiers, which the printer leaves out, are
/// replaced by their equivalents, so that the printed query parses back to the same expression.
///
/// The walk is iterative, so it needs no stack however deep `expr` is. It matches every variant
/// of [`Expr`] by name, without a wildcard: a variant added by a new promql-parser version fails
/// to compile here instead of hiding a selector from enforcement.
pub(crate) fn selectors_mut(expr: &mut Expr) -> Result<Vec<&mut VectorSelector>, EnforceError> {
    let mut found = Vec::new();
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Aggregate(aggregate) => {
                print::drop_empty_by(&mut aggregate.modifier);
                pending.push(&mut aggregate.expr);
                pending.extend(aggregate.param.as_deref_mut());
            }
            Expr::Unary(unary) => pending.push(&mut unary.expr),
            Expr::Binary(binary) => {
                print::drop_empty_ignoring(&mut binary.modifier);
                pending.push(&mut binary.lhs);
                pending.push(&mut binary.rhs);
            }
            Expr::Paren(paren) => pending.push(&mut paren.expr),
            Expr::Subquery(subquery) => pending.push(&mut subquery.expr),
            Expr::Call(call) => pending.extend(call.args.args.iter_mut().map(|arg| &mut **arg)),
            Expr::VectorSelector(selector) => found.push(selector),
            Expr::MatrixSelector(matrix) => found.push(&mut matrix.vs),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            // The parser never builds extension nodes; whatever one holds, it cannot be
            // enforced.
            Expr::Extension(_) => {
                return Err(EnforceError::Invalid(
                    "query holds an expression the enforcer does not know".into(),
                ));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::parse;

    fn names(query: &str) -> Vec<String> {
        let mut expr = parse(query).unwrap();
        let mut names: Vec<String> = selectors_mut(&mut expr)
            .unwrap()
            .into_iter()
            .map(|selector| selector.to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn finds_selectors_in_every_position() {
        let query = "topk(scalar(count(a)), b) + -max_over_time(c[5m:]) * (d) \
                     + label_replace(rate(e[5m]), \"x\", \"$1\", \"y\", \"(.*)\") \
                     + count_values(\"v\", f) + 1 + absent(g) + vector(2)";
        assert_eq!(names(query), ["a", "b", "c", "d", "e", "f", "g"]);
    }

    #[test]
    fn literals_hold_no_selector() {
        assert!(names("1 + 1").is_empty());
        assert!(names("\"text\"").is_empty());
    }
}
