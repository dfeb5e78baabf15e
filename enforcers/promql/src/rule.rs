//! The tenant matcher and how it is merged into a selector's own matchers.

use portcullis_api::{EnforceError, TenantSet};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::{T_EQL, T_EQL_REGEX};

/// One enforced label: the matcher every selector must carry, and what happens to a selector's
/// own matchers on the same label.
///
/// A rule edits a matcher list in place and touches only matchers on its own label, so several
/// rules (one per enforced label) can be applied one after the other to the same list.
#[derive(Debug, Clone)]
pub(crate) struct LabelRule<'a> {
    label: &'a str,
    allowed: &'a TenantSet,
    enforced: Matcher,
    strict: bool,
}

impl<'a> LabelRule<'a> {
    /// The rule restricting `label` to `allowed`; `strict` is the `error_on_replace` mode.
    pub(crate) fn new(
        label: &'a str,
        allowed: &'a TenantSet,
        strict: bool,
    ) -> Result<Self, EnforceError> {
        Ok(Self::with_matcher(
            label,
            allowed,
            tenant_matcher(label, allowed)?,
            strict,
        ))
    }

    /// The same rule with its matcher built already, by [`tenant_matcher`].
    pub(crate) fn with_matcher(
        label: &'a str,
        allowed: &'a TenantSet,
        enforced: Matcher,
        strict: bool,
    ) -> Self {
        Self {
            label,
            allowed,
            enforced,
            strict,
        }
    }

    /// Merges the rule into one list of matchers that are AND-ed together.
    ///
    /// Afterwards the list holds the enforced matcher exactly once. A user matcher on the label
    /// is kept beside it only when it narrows the answer to some of the allowed tenants, so that
    /// `up{namespace="b"}` read by a caller of `a` and `b` answers `b` alone; see
    /// [`LabelRule::keeps`].
    pub(crate) fn apply(&self, matchers: &mut Vec<Matcher>) -> Result<(), EnforceError> {
        let mut merged = Vec::with_capacity(matchers.len() + 1);
        for matcher in matchers.drain(..) {
            let own = matcher.name == self.label;
            if !own || (matcher != self.enforced && self.keeps(&matcher)?) {
                merged.push(matcher);
            }
        }
        merged.push(self.enforced.clone());
        *matchers = merged;
        Ok(())
    }

    /// Whether a user matcher on the label is kept beside the enforced one.
    ///
    /// Keeping a matcher can only narrow what the enforced matcher allows, so the choice is
    /// about the answer's meaning, never its safety:
    ///
    /// - with one allowed tenant nothing is kept: a matcher that selects that tenant adds
    ///   nothing, and one that does not is replaced (edge case C07);
    /// - with several, a matcher that selects at least one of them is kept, and one that selects
    ///   none is replaced, as with one tenant;
    /// - strict mode (`error_on_replace`) refuses an `=` or `!=` it would replace, and a `!=`
    ///   whatever it selects.
    fn keeps(&self, matcher: &Matcher) -> Result<bool, EnforceError> {
        let several = self.allowed.as_single().is_none();
        match matcher.op {
            MatchOp::Equal | MatchOp::NotEqual if self.strict => {
                if matcher.op == MatchOp::Equal && self.allowed.contains(&matcher.value) {
                    Ok(several)
                } else {
                    Err(EnforceError::Conflict(format!(
                        "matcher {matcher} conflicts with the tenants this request may read"
                    )))
                }
            }
            _ => Ok(several && self.allowed.iter().any(|value| matcher.is_match(value))),
        }
    }
}

/// `label="v"` for a single allowed value, `label=~"v1|v2|…"` with every value escaped as a
/// literal otherwise.
pub(crate) fn tenant_matcher(label: &str, allowed: &TenantSet) -> Result<Matcher, EnforceError> {
    let (op, value) = match allowed.as_single() {
        Some(value) => (T_EQL, value.to_owned()),
        None => (T_EQL_REGEX, allowed.regex_alternation()),
    };
    // Built through the parser's own constructor, so that the regex is compiled exactly as a
    // re-parse of the printed matcher compiles it.
    Matcher::new_matcher(op, label.to_owned(), value)
        .map_err(|_| EnforceError::TooComplex("too many allowed tenants to enforce".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(values: &[&str]) -> TenantSet {
        TenantSet::new(values.iter().copied()).unwrap()
    }

    fn matcher(op: u16, name: &str, value: &str) -> Matcher {
        Matcher::new_matcher(op, name.into(), value.into()).unwrap()
    }

    fn rendered(matchers: &[Matcher]) -> Vec<String> {
        matchers.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn one_value_is_an_equality_even_with_regex_characters() {
        let allowed = tenants(&["c|d"]);
        let rule = LabelRule::new("namespace", &allowed, false).unwrap();
        assert_eq!(rule.enforced.to_string(), r#"namespace="c|d""#);
    }

    #[test]
    fn several_values_are_escaped_literals() {
        let allowed = tenants(&["a.b", "c|d", r"e\f", "(g)[h]{i}^$*+?"]);
        let rule = LabelRule::new("namespace", &allowed, false).unwrap();
        assert_eq!(
            rule.enforced.value,
            r"\(g\)\[h\]\{i\}\^\$\*\+\?|a\.b|c\|d|e\\f"
        );
        for value in allowed.iter() {
            assert!(rule.enforced.is_match(value), "{value}");
        }
        for other in ["axb", "c", "d", "ef", "a.b|c"] {
            assert!(!rule.enforced.is_match(other), "{other}");
        }
    }

    #[test]
    fn rules_for_two_labels_compose() {
        let namespaces = tenants(&["NS"]);
        let pods = tenants(&["POD"]);
        let mut matchers = vec![matcher(T_EQL, "label", "baz")];
        LabelRule::new("namespace", &namespaces, false)
            .unwrap()
            .apply(&mut matchers)
            .unwrap();
        LabelRule::new("pod", &pods, false)
            .unwrap()
            .apply(&mut matchers)
            .unwrap();
        assert_eq!(
            rendered(&matchers),
            [r#"label="baz""#, r#"namespace="NS""#, r#"pod="POD""#]
        );
    }
}
