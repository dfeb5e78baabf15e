//! Splitting LogQL text into tokens at the same places Loki's lexer splits it.
//!
//! Only some boundaries matter for enforcement, and those are mirrored exactly: where string
//! literals, comments and range durations begin and end, since a `{` inside any of them is text,
//! and every other `{` opens a stream selector. Loki reads text with Go's `text/scanner` in its
//! default mode and adds a few rules of its own, which gives:
//!
//! - `"…"` with Go escapes and no newline, and `` `…` `` with no escapes at all, are strings;
//! - `'…'` is a Go character literal. It is not LogQL, and is refused: reading it differently
//!   from Loki could hide a selector;
//! - `#`, `//` (both to the end of the line) and `/* … */` are comments;
//! - `[` is read raw up to the next `]`, as a duration;
//! - a NUL character anywhere is an error.
//!
//! Everything else is cut into single characters, identifiers and the four matcher operators,
//! which is all a stream selector is made of.

use portcullis_api::EnforceError;

use crate::quote;
use crate::selector::MatchOp;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Whitespace or a comment.
    Trivia,
    /// A double-quoted or backtick string literal.
    String,
    /// `[` … `]`: a range duration, brackets included.
    Range,
    /// `{`
    OpenBrace,
    /// `}`
    CloseBrace,
    /// `(`
    OpenParen,
    /// `)`
    CloseParen,
    /// `,`
    Comma,
    /// An ASCII identifier: a letter or `_`, then letters, digits and `_`.
    Ident,
    /// `=`, `!=`, `=~` or `!~`.
    Op(MatchOp),
    /// Anything else: a character, or a two-character operator such as `==` or `|=`.
    Other,
}

/// One token: its kind and its byte span in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Every token of `text`, in order; their spans cover the text without gap or overlap.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, EnforceError> {
    let bytes = text.as_bytes();
    // Loki refuses a NUL anywhere, inside strings and comments too.
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        return Err(invalid_at(nul, "NUL character"));
    }
    let mut tokens = Vec::with_capacity(bytes.len() / 4);
    let mut at = 0;
    while at < bytes.len() {
        let (kind, end) = token_at(text, at).map_err(|message| invalid_at(at, message))?;
        tokens.push(Token {
            kind,
            start: at,
            end,
        });
        at = end;
    }
    Ok(tokens)
}

/// An [`EnforceError::Invalid`] about the text at byte `offset`.
pub(crate) fn invalid_at(offset: usize, message: &str) -> EnforceError {
    EnforceError::Invalid(format!("parse error at byte {offset}: {message}"))
}

/// The kind and end of the token that starts at byte `at`.
fn token_at(text: &str, at: usize) -> Result<(Kind, usize), &'static str> {
    let bytes = text.as_bytes();
    let next = bytes.get(at + 1).copied();
    let single = |kind| Ok((kind, at + 1));
    match bytes[at] {
        b' ' | b'\t' | b'\n' | b'\r' => Ok((Kind::Trivia, skip_whitespace(bytes, at))),
        b'#' => Ok((Kind::Trivia, line_end(bytes, at, true))),
        b'/' if next == Some(b'/') => Ok((Kind::Trivia, line_end(bytes, at, false))),
        b'/' if next == Some(b'*') => Ok((Kind::Trivia, block_comment_end(bytes, at)?)),
        b'"' => Ok((Kind::String, quote::scan_double_quoted(bytes, at)?)),
        b'`' => Ok((Kind::String, quote::scan_raw(bytes, at)?)),
        // Known limitation: Loki's lexer reads a Go character literal such as 'a' and lets it
        // stand as a name (`by ('a')`); it is refused because mirroring that buys nothing a
        // LogQL query needs, and any mismatch in where it ends could hide a selector.
        b'\'' => Err("single-quoted literals are not LogQL: use double quotes or backticks"),
        b'[' => Ok((Kind::Range, range_end(bytes, at)?)),
        b']' => Err("unexpected ] without ["),
        b'{' => single(Kind::OpenBrace),
        b'}' => single(Kind::CloseBrace),
        b'(' => single(Kind::OpenParen),
        b')' => single(Kind::CloseParen),
        b',' => single(Kind::Comma),
        b'=' | b'!' | b'|' => Ok(operator(at, bytes[at], next)),
        b'A'..=b'Z' | b'a'..=b'z' | b'_' => Ok((Kind::Ident, identifier_end(bytes, at))),
        _ => Ok((Kind::Other, at + char_len(text, at))),
    }
}

fn skip_whitespace(bytes: &[u8], at: usize) -> usize {
    let rest = &bytes[at..];
    let len = rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(rest.len());
    at + len
}

/// The end of a line comment that starts at `at`: just past its newline when `with_newline`
/// (as Loki reads `#`), just before it otherwise (as Go reads `//`).
fn line_end(bytes: &[u8], at: usize, with_newline: bool) -> usize {
    match bytes[at..].iter().position(|&b| b == b'\n') {
        Some(newline) => at + newline + usize::from(with_newline),
        None => bytes.len(),
    }
}

fn block_comment_end(bytes: &[u8], at: usize) -> Result<usize, &'static str> {
    let body = at + 2;
    match bytes[body..].windows(2).position(|pair| pair == b"*/") {
        Some(offset) => Ok(body + offset + 2),
        None => Err("unterminated /* comment"),
    }
}

/// Loki reads everything after `[` up to the first `]` as a duration, strings and all.
fn range_end(bytes: &[u8], at: usize) -> Result<usize, &'static str> {
    match bytes[at..].iter().position(|&b| b == b']') {
        Some(offset) => Ok(at + offset + 1),
        None => Err("missing closing ] of a range"),
    }
}

/// The token of an operator starting with `first`, followed by `next`. Loki joins a character
/// with the next one whenever the pair is one of its operators, so `==` and `|=` are single
/// tokens and never contain an `=` matcher operator.
fn operator(at: usize, first: u8, next: Option<u8>) -> (Kind, usize) {
    match (first, next) {
        (b'=', Some(b'~')) => (Kind::Op(MatchOp::Re), at + 2),
        (b'=', Some(b'=')) => (Kind::Other, at + 2),
        (b'=', _) => (Kind::Op(MatchOp::Eq), at + 1),
        (b'!', Some(b'=')) => (Kind::Op(MatchOp::Neq), at + 2),
        (b'!', Some(b'~')) => (Kind::Op(MatchOp::Nre), at + 2),
        (b'|', Some(b'=' | b'~' | b'>')) => (Kind::Other, at + 2),
        _ => (Kind::Other, at + 1),
    }
}

fn identifier_end(bytes: &[u8], at: usize) -> usize {
    let rest = &bytes[at..];
    let len = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(rest.len());
    at + len
}

/// The length in bytes of the character at byte `at`, which is a character boundary.
fn char_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds and texts of the tokens of `text`.
    fn lex(text: &str) -> Vec<(Kind, &str)> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|token| (token.kind, &text[token.start..token.end]))
            .collect()
    }

    fn error(text: &str) -> String {
        tokenize(text).unwrap_err().to_string()
    }

    #[test]
    fn a_selector_is_cut_into_its_parts() {
        assert_eq!(
            lex(r#"{app="a", ns!~`b`}"#),
            [
                (Kind::OpenBrace, "{"),
                (Kind::Ident, "app"),
                (Kind::Op(MatchOp::Eq), "="),
                (Kind::String, r#""a""#),
                (Kind::Comma, ","),
                (Kind::Trivia, " "),
                (Kind::Ident, "ns"),
                (Kind::Op(MatchOp::Nre), "!~"),
                (Kind::String, "`b`"),
                (Kind::CloseBrace, "}"),
            ]
        );
    }

    #[test]
    fn braces_inside_strings_comments_and_ranges_are_text() {
        let kinds = |text| {
            lex(text)
                .into_iter()
                .map(|(kind, _)| kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(r#""{a=\"b\"}""#), [Kind::String]);
        assert_eq!(kinds("`{{.x}}`"), [Kind::String]);
        assert_eq!(kinds("# {a=\"b\"}\n"), [Kind::Trivia]);
        assert_eq!(kinds("// {a=\"b\"}"), [Kind::Trivia]);
        assert_eq!(kinds("/* {a=\"b\"} */"), [Kind::Trivia]);
        assert_eq!(kinds("[{\"5m]"), [Kind::Range]);
    }

    #[test]
    fn comments_end_where_loki_ends_them() {
        assert_eq!(
            lex("#x\n{"),
            [(Kind::Trivia, "#x\n"), (Kind::OpenBrace, "{")]
        );
        assert_eq!(
            lex("//x\n{"),
            [
                (Kind::Trivia, "//x"),
                (Kind::Trivia, "\n"),
                (Kind::OpenBrace, "{")
            ]
        );
        assert_eq!(
            lex("/*/{*/{"),
            [(Kind::Trivia, "/*/{*/"), (Kind::OpenBrace, "{")]
        );
        assert_eq!(lex("a / b")[2], (Kind::Other, "/"));
    }

    #[test]
    fn two_character_operators_are_one_token() {
        let texts = |text| lex(text).into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        assert_eq!(texts("a==b"), ["a", "==", "b"]);
        assert_eq!(texts("|=|~|>|"), ["|=", "|~", "|>", "|"]);
        assert_eq!(texts("!=!~!>"), ["!=", "!~", "!", ">"]);
        assert_eq!(texts("=~="), ["=~", "="]);
    }

    #[test]
    fn other_characters_are_whole_characters() {
        assert_eq!(lex("é1"), [(Kind::Other, "é"), (Kind::Other, "1")]);
        assert_eq!(lex("a_1b")[0], (Kind::Ident, "a_1b"));
    }

    #[test]
    fn what_loki_cannot_read_is_refused() {
        assert_eq!(
            error("{a=\"b}"),
            "parse error at byte 3: unterminated string"
        );
        assert_eq!(
            error("x `abc"),
            "parse error at byte 2: unterminated raw string"
        );
        assert_eq!(
            error("x /* {"),
            "parse error at byte 2: unterminated /* comment"
        );
        assert_eq!(
            error("{a='b'}"),
            "parse error at byte 3: single-quoted literals are not LogQL: use double quotes or \
             backticks"
        );
        assert_eq!(error("a\0"), "parse error at byte 1: NUL character");
        assert_eq!(error("\"a\0\""), "parse error at byte 2: NUL character");
        assert_eq!(
            error("x[5m"),
            "parse error at byte 1: missing closing ] of a range"
        );
        assert_eq!(error("x]"), "parse error at byte 1: unexpected ] without [");
        assert_eq!(
            error(r#""\q""#),
            "parse error at byte 0: invalid escape sequence in string"
        );
    }
}
