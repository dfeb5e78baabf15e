//! Size limits: the length of the text, checked before it is read, and the nesting of its
//! brackets, checked on its tokens before any selector is read or rewritten.

use portcullis_api::EnforceError;

use crate::lex::{Kind, Token};

/// The limits a query's text must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_bytes: usize,
    pub(crate) max_depth: usize,
}

impl Limits {
    /// Rejects `text` with [`EnforceError::TooComplex`] when it is too long.
    pub(crate) fn check_length(&self, text: &str) -> Result<(), EnforceError> {
        if text.len() > self.max_bytes {
            return Err(EnforceError::TooComplex(format!(
                "query is longer than {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Rejects `tokens` with [`EnforceError::TooComplex`] when their brackets nest too deep.
    pub(crate) fn check_depth(&self, tokens: &[Token]) -> Result<(), EnforceError> {
        if depth(tokens) > self.max_depth {
            return Err(EnforceError::TooComplex(format!(
                "query nests brackets deeper than {} levels",
                self.max_depth
            )));
        }
        Ok(())
    }
}

/// The deepest nesting of `(`, `{` and `[` among `tokens`; a range is one level for itself.
fn depth(tokens: &[Token]) -> usize {
    let mut open = 0usize;
    let mut deepest = 0;
    for token in tokens {
        match token.kind {
            Kind::OpenParen | Kind::OpenBrace => {
                open += 1;
                deepest = deepest.max(open);
            }
            Kind::CloseParen | Kind::CloseBrace => open = open.saturating_sub(1),
            Kind::Range => deepest = deepest.max(open + 1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::tokenize;

    fn depth_of(text: &str) -> usize {
        depth(&tokenize(text).unwrap())
    }

    #[test]
    fn counts_brackets_outside_strings_and_comments() {
        assert_eq!(depth_of("vector(1)"), 1);
        assert_eq!(depth_of(r#"sum(rate({a="(((("}[5m]))"#), 3);
        assert_eq!(depth_of("((x)) # ((((((\n"), 2);
        assert_eq!(depth_of(r#"{a="b"} |= "((((((""#), 1);
    }

    #[test]
    fn each_limit_answers_too_complex() {
        let limits = Limits {
            max_bytes: 10,
            max_depth: 2,
        };
        assert_eq!(limits.check_length(&"a".repeat(10)), Ok(()));
        assert_eq!(
            limits.check_length(&"a".repeat(11)),
            Err(EnforceError::TooComplex(
                "query is longer than 10 bytes".into()
            ))
        );
        assert_eq!(limits.check_depth(&tokenize("((a))").unwrap()), Ok(()));
        assert_eq!(
            limits.check_depth(&tokenize("(({a=\"\"}))").unwrap()),
            Err(EnforceError::TooComplex(
                "query nests brackets deeper than 2 levels".into()
            ))
        );
    }
}
