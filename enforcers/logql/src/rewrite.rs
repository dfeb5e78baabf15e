//! Rewriting every stream selector of a query, and checking the result.
//!
//! Only the selectors are printed anew; every other byte of the query is copied as it was, so
//! pipelines, templates, comments and spacing reach Loki untouched.

use portcullis_api::EnforceError;

use crate::lex::{self, Token};
use crate::rule::{LabelRule, UNFAITHFUL};
use crate::selector;

/// `text` with `rule` applied to each of its selectors, and how many selectors there were.
pub(crate) fn rewrite(
    text: &str,
    tokens: &[Token],
    rule: &LabelRule<'_>,
) -> Result<(String, usize), EnforceError> {
    let mut rewritten = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    let count = selector::for_each(text, tokens, |selector| {
        rewritten.push_str(&text[copied..selector.span.start]);
        rewritten.push_str(&rule.enforce(&selector)?);
        copied = selector.span.end;
        Ok(())
    })?;
    rewritten.push_str(&text[copied..]);
    Ok((rewritten, count))
}

/// Reads `rewritten` again from scratch and checks that it holds exactly `expected` selectors,
/// each obeying `rule`. Any failure is [`EnforceError::Invalid`]: the query is not forwarded.
pub(crate) fn verify(
    rewritten: &str,
    rule: &LabelRule<'_>,
    expected: usize,
) -> Result<(), EnforceError> {
    let unfaithful = |_| EnforceError::Invalid(UNFAITHFUL.into());
    let tokens = lex::tokenize(rewritten).map_err(unfaithful)?;
    let found = selector::for_each(rewritten, &tokens, |selector| rule.verify(&selector))
        .map_err(unfaithful)?;
    match found == expected {
        true => Ok(()),
        false => Err(EnforceError::Invalid(UNFAITHFUL.into())),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_api::TenantSet;

    use super::*;

    #[test]
    fn verify_fails_closed() {
        let allowed = TenantSet::single("acme").unwrap();
        let rule = LabelRule::new("namespace", &allowed, false);
        let unfaithful = Err(EnforceError::Invalid(UNFAITHFUL.into()));
        assert_eq!(verify(r#"{namespace="acme"} |= "{""#, &rule, 1), Ok(()));
        assert_eq!(verify(r#"{namespace="acme"}"#, &rule, 2), unfaithful);
        assert_eq!(
            verify(r#"{namespace="acme"} or {a="b"}"#, &rule, 2),
            unfaithful
        );
        assert_eq!(verify(r#"{namespace="acme""#, &rule, 1), unfaithful);
    }
}
