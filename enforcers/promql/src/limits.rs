//! Size limits checked on the raw text, before the parser sees it.
//!
//! promql-parser recurses while it type-checks, prints, compares and drops an expression, once per
//! level of nesting, and its type check walks the whole left spine of a binary chain at every
//! operator, so a chain of n operators costs n² time and n stack frames. A cheap scan of the bytes
//! bounds both before any of that runs: the length, the bracket nesting and the operator count.

use portcullis_api::EnforceError;

/// The limits a query's text must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_bytes: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_operators: usize,
}

impl Limits {
    /// Rejects `text` with [`EnforceError::TooComplex`] when it breaks a limit.
    pub(crate) fn check(&self, text: &str) -> Result<(), EnforceError> {
        if text.len() > self.max_bytes {
            return Err(too_complex(format!(
                "query is longer than {} bytes",
                self.max_bytes
            )));
        }

        let shape = Shape::of(text.as_bytes());
        if shape.depth > self.max_depth {
            return Err(too_complex(format!(
                "query nests brackets deeper than {} levels",
                self.max_depth
            )));
        }
        if shape.operators > self.max_operators {
            return Err(too_complex(format!(
                "query has more than {} operators",
                self.max_operators
            )));
        }
        Ok(())
    }
}

fn too_complex(message: String) -> EnforceError {
    EnforceError::TooComplex(message)
}

/// What the scan measures. Both counts are upper bounds of what the parser will find: the scan
/// skips string literals and comments the way promql-parser's lexer does (a backslash escapes
/// the next character in all three kinds of quotes), and errs on the side of counting.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    /// The deepest nesting of `(`, `[` and `{`.
    depth: usize,
    /// Operator characters (`+ - * / % ^ < > = !`) and keyword operators outside braces.
    operators: usize,
}

impl Shape {
    fn of(bytes: &[u8]) -> Self {
        let mut shape = Shape::default();
        let mut open = 0usize;
        let mut braces = 0usize;
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            at = match byte {
                b'"' | b'\'' | b'`' => skip_string(bytes, at),
                b'#' => skip_comment(bytes, at),
                b'(' | b'[' | b'{' => {
                    open += 1;
                    braces += usize::from(byte == b'{');
                    shape.depth = shape.depth.max(open);
                    at + 1
                }
                b')' | b']' | b'}' => {
                    open = open.saturating_sub(1);
                    braces = braces.saturating_sub(usize::from(byte == b'}'));
                    at + 1
                }
                _ if is_word(byte) => {
                    let end = skip_word(bytes, at);
                    let keyword = braces == 0 && is_keyword_operator(&bytes[at..end]);
                    shape.operators += usize::from(keyword);
                    end
                }
                _ => {
                    let operator = braces == 0 && b"+-*/%^<>=!".contains(&byte);
                    shape.operators += usize::from(operator);
                    at + 1
                }
            };
        }
        shape
    }
}

/// The index just past the string literal that opens at `start`, or the end of the input.
pub(crate) fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 2,
            _ if byte == quote => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The index just past the line comment that opens at `start`.
pub(crate) fn skip_comment(bytes: &[u8], start: usize) -> usize {
    let rest = &bytes[start..];
    match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(end) => start + end + 1,
        None => bytes.len(),
    }
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':' | b'.')
}

fn skip_word(bytes: &[u8], start: usize) -> usize {
    let rest = &bytes[start..];
    start + rest.iter().position(|&b| !is_word(b)).unwrap_or(rest.len())
}

fn is_keyword_operator(word: &[u8]) -> bool {
    ["and", "or", "unless", "atan2"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> (usize, usize) {
        let shape = Shape::of(text.as_bytes());
        (shape.depth, shape.operators)
    }

    #[test]
    fn counts_brackets_and_operators() {
        assert_eq!(shape("up"), (0, 0));
        assert_eq!(shape("sum(rate(x[5m])) / 2"), (3, 1));
        assert_eq!(shape("a or b AND c unless d atan2 e"), (0, 4));
        assert_eq!(shape("(((a)))"), (3, 0));
        assert_eq!(shape("- - -a"), (0, 3));
        assert_eq!(shape("a >= bool b"), (0, 2));
    }

    #[test]
    fn ignores_strings_comments_and_matchers() {
        assert_eq!(shape(r#"x{a="((((",b=~"+"}"#), (1, 0));
        assert_eq!(
            shape(r#"label_replace(x, "a", "\"(((", "b", `\`((`)"#),
            (1, 0)
        );
        assert_eq!(shape("x # ((( or or\n + y"), (0, 1));
        assert_eq!(shape("order_total or by_or"), (0, 1));
        assert_eq!(shape(r#"{a="1" or b="2"}"#), (1, 0));
    }

    #[test]
    fn an_unterminated_string_ends_the_scan() {
        assert_eq!(shape(r#"(x{a="(((("#), (2, 0));
        assert_eq!(shape(r#"("\"#), (1, 0));
    }

    #[test]
    fn each_limit_answers_too_complex() {
        let limits = Limits {
            max_bytes: 20,
            max_depth: 2,
            max_operators: 2,
        };
        assert_eq!(limits.check("((a))"), Ok(()));
        assert_eq!(
            limits.check("a + b - c * d"),
            Err(EnforceError::TooComplex(
                "query has more than 2 operators".into()
            ))
        );
        assert_eq!(
            limits.check("(((a)))"),
            Err(EnforceError::TooComplex(
                "query nests brackets deeper than 2 levels".into()
            ))
        );
        assert_eq!(
            limits.check(&"a".repeat(21)),
            Err(EnforceError::TooComplex(
                "query is longer than 20 bytes".into()
            ))
        );
    }
}
