//! Stream selectors: reading one from its tokens, and walking every one of a query.
//!
//! In Loki's grammar a `{` outside strings and comments only ever opens a stream selector, and a
//! selector is a comma-separated list of `name op "value"` matchers, without a trailing comma.
//! Anything else between the braces is refused here; Loki would refuse it too.

use std::fmt;
use std::ops::Range;

use portcullis_api::EnforceError;

use crate::lex::{Kind, Token, invalid_at};

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Re => "=~",
            Self::Nre => "!~",
        }
    }
}

/// One matcher of a selector, borrowed from the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matcher<'a> {
    /// The label name.
    pub(crate) name: &'a str,
    /// The operator.
    pub(crate) op: MatchOp,
    /// The value's string literal exactly as written, quotes included.
    pub(crate) literal: &'a str,
}

/// Prints the matcher as `name op literal`, the literal as the query wrote it.
impl fmt::Display for Matcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.literal)
    }
}

/// One stream selector of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector<'a> {
    /// The byte span of the selector, braces included.
    pub(crate) span: Range<usize>,
    /// Its matchers, in order.
    pub(crate) matchers: Vec<Matcher<'a>>,
}

const EXPECTED_MATCHER: &str = r#"expected a label matcher such as app="api""#;
const QUOTED_NAME: &str = "label names in a stream selector must be bare identifiers such as \
                           app: [a-zA-Z_][a-zA-Z0-9_]*";

/// Calls `visit` on every stream selector of `text`, in order, and answers how many there were.
///
/// Refuses a `}` that closes no selector and parentheses that do not balance, so that nothing
/// which might be read as a selector by another parser is skipped here.
pub(crate) fn for_each<'a>(
    text: &'a str,
    tokens: &[Token],
    mut visit: impl FnMut(Selector<'a>) -> Result<(), EnforceError>,
) -> Result<usize, EnforceError> {
    let mut open_parens = Vec::new();
    let mut count = 0;
    let mut at = 0;
    while let Some(token) = tokens.get(at) {
        match token.kind {
            Kind::OpenBrace => {
                let (selector, next) = parse(text, tokens, at)?;
                visit(selector)?;
                count += 1;
                at = next;
                continue;
            }
            Kind::CloseBrace => return Err(invalid_at(token.start, "unexpected }")),
            Kind::OpenParen => open_parens.push(token.start),
            Kind::CloseParen if open_parens.pop().is_none() => {
                return Err(invalid_at(token.start, "unexpected )"));
            }
            _ => {}
        }
        at += 1;
    }
    match open_parens.last() {
        Some(&start) => Err(invalid_at(start, "unclosed (")),
        None => Ok(count),
    }
}

/// Reads the selector whose `{` is `tokens[open]`: the selector and the index of the token just
/// past its `}`.
pub(crate) fn parse<'a>(
    text: &'a str,
    tokens: &[Token],
    open: usize,
) -> Result<(Selector<'a>, usize), EnforceError> {
    let mut cursor = Cursor {
        text,
        tokens,
        at: open + 1,
    };
    let mut matchers = Vec::new();
    if cursor.peek_kind() == Some(Kind::CloseBrace) {
        return Ok(cursor.finish(tokens[open].start, cursor.at, matchers));
    }
    loop {
        matchers.push(cursor.matcher()?);
        let token = cursor.next_significant()?;
        match token.kind {
            Kind::Comma => continue,
            Kind::CloseBrace => {
                return Ok(cursor.finish(tokens[open].start, cursor.at - 1, matchers));
            }
            _ => {
                return Err(invalid_at(
                    token.start,
                    "expected , or } in a stream selector",
                ));
            }
        }
    }
}

/// A position in the tokens of a selector.
struct Cursor<'t, 'a> {
    text: &'a str,
    tokens: &'t [Token],
    at: usize,
}

impl<'a> Cursor<'_, 'a> {
    /// The kind of the next token that is not trivia, without moving past it.
    fn peek_kind(&mut self) -> Option<Kind> {
        self.skip_trivia();
        self.tokens.get(self.at).map(|token| token.kind)
    }

    /// The next token that is not trivia; the end of the text is an unclosed selector.
    fn next_significant(&mut self) -> Result<Token, EnforceError> {
        self.skip_trivia();
        let Some(&token) = self.tokens.get(self.at) else {
            return Err(invalid_at(
                self.text.len(),
                "unclosed { of a stream selector",
            ));
        };
        self.at += 1;
        Ok(token)
    }

    fn skip_trivia(&mut self) {
        while self
            .tokens
            .get(self.at)
            .is_some_and(|token| token.kind == Kind::Trivia)
        {
            self.at += 1;
        }
    }

    fn matcher(&mut self) -> Result<Matcher<'a>, EnforceError> {
        let name = self.label_name()?;
        let op = self.next_significant()?;
        let Kind::Op(op) = op.kind else {
            return Err(invalid_at(op.start, EXPECTED_MATCHER));
        };
        let value = self.next_significant()?;
        if value.kind != Kind::String {
            return Err(invalid_at(value.start, "expected a quoted label value"));
        }
        Ok(Matcher {
            name,
            op,
            literal: self.slice(value),
        })
    }

    /// A label name: an ASCII identifier not run on by a non-ASCII character, which Loki would
    /// read as part of the name.
    // Known limitation: names with non-ASCII letters, which Loki's lexer accepts, are refused
    // because Go and Rust do not class every character alike as a letter, and a disagreement
    // would move the end of the name.
    fn label_name(&mut self) -> Result<&'a str, EnforceError> {
        let token = self.next_significant()?;
        match token.kind {
            Kind::Ident if self.text[token.end..].starts_with(|c: char| !c.is_ascii()) => {
                Err(invalid_at(token.start, QUOTED_NAME))
            }
            Kind::Ident => Ok(self.slice(token)),
            Kind::String => Err(invalid_at(token.start, QUOTED_NAME)),
            Kind::Other if !self.slice(token).is_ascii() => {
                Err(invalid_at(token.start, QUOTED_NAME))
            }
            _ => Err(invalid_at(token.start, EXPECTED_MATCHER)),
        }
    }

    fn slice(&self, token: Token) -> &'a str {
        &self.text[token.start..token.end]
    }

    /// The selector from byte `start` to the `}` at `tokens[close]`, and the index past it.
    fn finish(
        &self,
        start: usize,
        close: usize,
        matchers: Vec<Matcher<'a>>,
    ) -> (Selector<'a>, usize) {
        let selector = Selector {
            span: start..self.tokens[close].end,
            matchers,
        };
        (selector, close + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::tokenize;

    /// Every selector of `text`, printed back as `{m1, m2}`.
    fn selectors(text: &str) -> Result<Vec<String>, EnforceError> {
        let tokens = tokenize(text)?;
        let mut found = Vec::new();
        for_each(text, &tokens, |selector| {
            let matchers: Vec<String> = selector.matchers.iter().map(|m| m.to_string()).collect();
            found.push(format!("{{{}}}", matchers.join(", ")));
            Ok(())
        })?;
        Ok(found)
    }

    fn error(text: &str) -> String {
        selectors(text).unwrap_err().to_string()
    }

    #[test]
    fn every_selector_is_found_with_its_matchers() {
        let query =
            r#"sum(rate({a="1"} |= "{x}" [5m])) / count_over_time({ b !~ `2` , c!="3" }[1m])"#;
        assert_eq!(
            selectors(query).unwrap(),
            [r#"{a="1"}"#, r#"{b!~`2`, c!="3"}"#]
        );
        assert_eq!(selectors("{}").unwrap(), ["{}"]);
        assert_eq!(selectors("vector(1) + 2").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn comments_inside_a_selector_are_skipped() {
        let query = "{a=\"1\" # }\n, b=/* } */\"2\"}";
        assert_eq!(selectors(query).unwrap(), [r#"{a="1", b="2"}"#]);
    }

    #[test]
    fn the_span_covers_the_braces() {
        let text = r#"x({a="1"})"#;
        let tokens = tokenize(text).unwrap();
        let mut spans = Vec::new();
        for_each(text, &tokens, |selector| {
            spans.push((selector.span.start, selector.span.end));
            Ok(())
        })
        .unwrap();
        assert_eq!(spans, [(2, 9)]);
    }

    #[test]
    fn names_that_are_not_bare_identifiers_are_refused() {
        for (query, at) in [
            (r#"{"service.name"="api"}"#, 1),
            (r#"{a="1", `b`="2"}"#, 8),
            (r#"{namé="x"}"#, 1),
            (r#"{é="x"}"#, 1),
        ] {
            assert_eq!(
                error(query),
                format!("parse error at byte {at}: {QUOTED_NAME}"),
                "{query}"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_refused() {
        let cases = [
            (
                r#"{a="1",}"#,
                "parse error at byte 7: expected a label matcher such as app=\"api\"",
            ),
            (
                r#"{a=="1"}"#,
                "parse error at byte 2: expected a label matcher such as app=\"api\"",
            ),
            (
                r#"{a=b}"#,
                "parse error at byte 3: expected a quoted label value",
            ),
            (
                r#"{a="1" b="2"}"#,
                "parse error at byte 7: expected , or } in a stream selector",
            ),
            (
                r#"{a="1"{b="2"}}"#,
                "parse error at byte 6: expected , or } in a stream selector",
            ),
            (
                r#"{a="1""#,
                "parse error at byte 6: unclosed { of a stream selector",
            ),
            (
                r#"{1="1"}"#,
                "parse error at byte 1: expected a label matcher such as app=\"api\"",
            ),
            (
                r#"{a|="1"}"#,
                "parse error at byte 2: expected a label matcher such as app=\"api\"",
            ),
            (
                r#"{a= ~"1"}"#,
                "parse error at byte 4: expected a quoted label value",
            ),
        ];
        for (query, message) in cases {
            assert_eq!(error(query), message, "{query}");
        }
    }

    #[test]
    fn unbalanced_brackets_are_refused() {
        assert_eq!(error(r#"{a="1"}}"#), "parse error at byte 7: unexpected }");
        assert_eq!(error(r#"sum({a="1"}"#), "parse error at byte 3: unclosed (");
        assert_eq!(error(r#"{a="1"})"#), "parse error at byte 7: unexpected )");
    }
}
