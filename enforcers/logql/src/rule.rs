//! The tenant matcher, how it is merged into a stream selector, and the check that it was.

use portcullis_api::{EnforceError, TenantSet};

use crate::quote;
use crate::selector::{MatchOp, Matcher, Selector};

/// The message of a rewrite whose output fails the final check. It names no tenant.
pub(crate) const UNFAITHFUL: &str = "query cannot be enforced faithfully: a stream selector of the rewritten query does not \
     carry the tenant matcher";

/// One enforced label: the matcher every stream selector must carry, and what happens to a
/// selector's own matchers on the same label.
#[derive(Debug, Clone)]
pub(crate) struct LabelRule<'a> {
    label: &'a str,
    allowed: &'a TenantSet,
    strict: bool,
    /// The operator of the enforced matcher.
    op: MatchOp,
    /// The value of the enforced matcher, unquoted: a tenant, or an alternation of tenants.
    value: String,
    /// The enforced matcher as printed into every selector.
    printed: String,
}

impl<'a> LabelRule<'a> {
    /// The rule restricting `label` to `allowed`; `strict` is the `error_on_replace` mode.
    pub(crate) fn new(label: &'a str, allowed: &'a TenantSet, strict: bool) -> Self {
        let (op, value) = match allowed.as_single() {
            Some(value) => (MatchOp::Eq, value.to_owned()),
            None => (MatchOp::Re, allowed.regex_alternation()),
        };
        let literal = quote::quote(&value);
        let printed = Matcher {
            name: label,
            op,
            literal: &literal,
        }
        .to_string();
        Self {
            label,
            allowed,
            strict,
            op,
            value,
            printed,
        }
    }

    /// The selector that reads every stream of the allowed tenants: `{label="v"}`.
    pub(crate) fn tenant_selector(&self) -> String {
        format!("{{{}}}", self.printed)
    }

    /// `selector` with the rule applied, printed as `{m1, m2, …, enforced}`.
    ///
    /// The selector's other matchers keep their order and their literals as written. A matcher
    /// on the label stays beside the enforced one only when it narrows the answer to some of
    /// several allowed tenants; see [`LabelRule::keeps`].
    pub(crate) fn enforce(&self, selector: &Selector<'_>) -> Result<String, EnforceError> {
        let mut printed = String::with_capacity(selector.span.len() + self.printed.len() + 4);
        printed.push('{');
        for matcher in &selector.matchers {
            if matcher.name != self.label || self.keeps(matcher)? {
                printed.push_str(&matcher.to_string());
                printed.push_str(", ");
            }
        }
        printed.push_str(&self.printed);
        printed.push('}');
        Ok(printed)
    }

    /// Whether a matcher on the label is kept beside the enforced one.
    ///
    /// Keeping a matcher can only narrow what the enforced matcher allows, so the choice is
    /// about the answer's meaning, never its safety:
    ///
    /// - with one allowed tenant nothing is kept: a matcher that selects that tenant adds
    ///   nothing, and one that does not is replaced;
    /// - with several, a matcher that selects at least one of them is kept, and one that selects
    ///   none is replaced, as with one tenant;
    /// - strict mode (`error_on_replace`) refuses an `=` or `!=` it would replace, and a `!=`
    ///   whatever it selects.
    fn keeps(&self, matcher: &Matcher<'_>) -> Result<bool, EnforceError> {
        let value = unquote(matcher)?;
        let conflict = match matcher.op {
            MatchOp::Neq => self.strict,
            MatchOp::Eq => self.strict && !self.allowed.iter().any(|v| v.as_bytes() == value),
            MatchOp::Re | MatchOp::Nre => false,
        };
        if conflict {
            return Err(EnforceError::Conflict(format!(
                "matcher {matcher} conflicts with the tenants this request may read"
            )));
        }
        Ok(self.may_stay(matcher.op, &value))
    }

    /// Whether a matcher on the label with `op` and the unquoted `value` may stay beside the
    /// enforced one: it is not the enforced matcher itself, there are several allowed tenants,
    /// it selects at least one of them, and strict mode would not refuse it.
    fn may_stay(&self, op: MatchOp, value: &[u8]) -> bool {
        if self.allowed.len() < 2 || (op == self.op && value == self.value.as_bytes()) {
            return false;
        }
        match op {
            MatchOp::Eq => self.allowed.iter().any(|v| v.as_bytes() == value),
            MatchOp::Neq => !self.strict && self.allowed.iter().any(|v| v.as_bytes() != value),
            MatchOp::Re | MatchOp::Nre => {
                // Loki anchors a matcher's regex at both ends. One the regex crate cannot
                // compile as Loki's Go would, or that is too large, selects nothing here: it
                // is replaced, and the enforced matcher alone decides.
                let Some(regex) = std::str::from_utf8(value).ok().and_then(|text| {
                    regex::RegexBuilder::new(&format!("^(?:{text})$"))
                        .size_limit(1 << 20)
                        .build()
                        .ok()
                }) else {
                    return false;
                };
                let wanted = op == MatchOp::Re;
                self.allowed.iter().any(|v| regex.is_match(v) == wanted)
            }
        }
    }

    /// Checks that a selector of a rewritten query obeys the rule: it carries the enforced
    /// matcher exactly once, and any other matcher on the label is one `enforce` may keep.
    pub(crate) fn verify(&self, selector: &Selector<'_>) -> Result<(), EnforceError> {
        let unfaithful = || EnforceError::Invalid(UNFAITHFUL.into());
        let mut enforced = 0;
        for matcher in selector.matchers.iter().filter(|m| m.name == self.label) {
            let value = unquote(matcher).map_err(|_| unfaithful())?;
            if matcher.op == self.op && value == self.value.as_bytes() {
                enforced += 1;
            } else if !self.may_stay(matcher.op, &value) {
                return Err(unfaithful());
            }
        }
        match enforced {
            1 => Ok(()),
            _ => Err(unfaithful()),
        }
    }
}

fn unquote(matcher: &Matcher<'_>) -> Result<Vec<u8>, EnforceError> {
    quote::unquote(matcher.literal).map_err(|message| {
        EnforceError::Invalid(format!("parse error: {message} in matcher {matcher}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(values: &[&str]) -> TenantSet {
        TenantSet::new(values.iter().copied()).unwrap()
    }

    fn selector<'a>(matchers: &[(&'a str, MatchOp, &'a str)]) -> Selector<'a> {
        let matchers = matchers
            .iter()
            .map(|&(name, op, literal)| Matcher { name, op, literal })
            .collect();
        Selector {
            span: 0..0,
            matchers,
        }
    }

    #[test]
    fn one_value_is_an_equality_even_with_regex_characters() {
        let allowed = tenants(&["c|d"]);
        let rule = LabelRule::new("namespace", &allowed, false);
        assert_eq!(rule.tenant_selector(), r#"{namespace="c|d"}"#);
    }

    #[test]
    fn several_values_are_escaped_literals() {
        let allowed = tenants(&["a.b", "c|d", r"e\f", "(g)[h]{i}^$*+?", "q\""]);
        let rule = LabelRule::new("namespace", &allowed, false);
        assert_eq!(rule.value, r#"\(g\)\[h\]\{i\}\^\$\*\+\?|a\.b|c\|d|e\\f|q""#);
        assert_eq!(
            rule.printed,
            r#"namespace=~"\\(g\\)\\[h\\]\\{i\\}\\^\\$\\*\\+\\?|a\\.b|c\\|d|e\\\\f|q\"""#
        );
    }

    #[test]
    fn verify_accepts_exactly_one_enforced_matcher() {
        use MatchOp::*;
        let allowed = tenants(&["acme"]);
        let rule = LabelRule::new("ns", &allowed, false);
        assert_eq!(
            rule.verify(&selector(&[("a", Eq, "`x`"), ("ns", Eq, "`acme`")])),
            Ok(())
        );
        let unfaithful = Err(EnforceError::Invalid(UNFAITHFUL.into()));
        for bad in [
            selector(&[("a", Eq, r#""x""#)]),
            selector(&[("ns", Eq, r#""acme""#), ("ns", Eq, r#""acme""#)]),
            selector(&[("ns", Eq, r#""acme""#), ("ns", Neq, r#""b""#)]),
            selector(&[("ns", Re, r#""acme""#)]),
            selector(&[("ns", Eq, r#""acm""#)]),
        ] {
            assert_eq!(rule.verify(&bad), unfaithful, "{bad:?}");
        }
    }

    #[test]
    fn verify_allows_what_strict_mode_keeps() {
        use MatchOp::*;
        let allowed = tenants(&["a", "b"]);
        let strict = LabelRule::new("ns", &allowed, true);
        let kept = selector(&[("ns", Eq, r#""b""#), ("ns", Re, r#""a|b""#)]);
        assert_eq!(strict.verify(&kept), Ok(()));
        assert_eq!(LabelRule::new("ns", &allowed, false).verify(&kept), Ok(()));
        let unequal = selector(&[("ns", Neq, r#""b""#), ("ns", Re, r#""a|b""#)]);
        assert!(strict.verify(&unequal).is_err());
        let other = selector(&[("ns", Eq, r#""c""#), ("ns", Re, r#""a|b""#)]);
        assert!(strict.verify(&other).is_err());
    }
}
