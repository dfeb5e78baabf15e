//! The one way this crate calls promql-parser's parser: contained, so that no text a caller
//! sends can panic through it.
//!
//! promql-parser 0.11 panics on some inputs instead of answering an error: a unit-less
//! duration the standard library cannot hold (`x[1e300]`, `x[1h:1e300]`, `x offset Inf`)
//! reaches `Duration::from_secs_f64`, which panics. Two guards close that kind of fault:
//!
//! 1. a scan of the raw text finds every unit-less number in a duration position (inside a range
//!    or subquery bracket, after `offset`) and refuses one that is not a finite number of
//!    seconds Prometheus can hold, with the error Prometheus gives;
//! 2. the parser runs under `catch_unwind`, so a panic the scan does not foresee still becomes a
//!    parse error for that one request rather than a dropped connection.
//!
//! The scan comes first because it gives the clearer message, and because the fuzz targets
//! abort on any panic at all: they prove the scan covers what the fuzzer finds.

use std::panic::{AssertUnwindSafe, catch_unwind};

use portcullis_api::EnforceError;
use promql_parser::parser::Expr;

use crate::limits::{skip_comment, skip_string};

/// The longest duration Prometheus holds: `i64::MAX` nanoseconds, about 292 years.
const MAX_DURATION_SECONDS: f64 = i64::MAX as f64 / 1e9;

/// The message for a unit-less duration that no duration can hold.
const OUT_OF_RANGE: &str = "parse error: duration out of range";

/// The message for an input that made the parser panic.
const PARSER_FAILED: &str = "parse error: the query could not be parsed";

/// Parses `text` as PromQL. Every error is [`EnforceError::Invalid`] with a message that
/// starts `parse error: `.
pub fn parse(text: &str) -> Result<Expr, EnforceError> {
    check_unitless_durations(text.as_bytes())?;
    match catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(text))) {
        Ok(Ok(expr)) => Ok(expr),
        Ok(Err(message)) => Err(EnforceError::Invalid(format!("parse error: {message}"))),
        Err(_panic) => Err(EnforceError::Invalid(PARSER_FAILED.into())),
    }
}

/// Refuses a unit-less number in a duration position that is not a finite, non-negative number
/// of seconds within [`MAX_DURATION_SECONDS`]. Strings and comments are skipped as the lexer
/// skips them; anything else is left to the parser.
fn check_unitless_durations(bytes: &[u8]) -> Result<(), EnforceError> {
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at = match byte {
            b'"' | b'\'' | b'`' => skip_string(bytes, at),
            b'#' => skip_comment(bytes, at),
            b'[' => {
                let end = bytes[at..]
                    .iter()
                    .position(|&b| b == b']')
                    .map_or(bytes.len(), |close| at + close);
                for part in bytes[at + 1..end].split(|&b| b == b':') {
                    check_duration(part)?;
                }
                end
            }
            _ if is_word(byte) => {
                let end = word_end(bytes, at);
                if bytes[at..end].eq_ignore_ascii_case(b"offset") {
                    check_duration(offset_operand(bytes, end))?;
                }
                end
            }
            _ => at + 1,
        };
    }
    Ok(())
}

/// The number after `offset`: past blanks and comments, and past one sign.
fn offset_operand(bytes: &[u8], mut at: usize) -> &[u8] {
    let mut signed = false;
    while let Some(&byte) = bytes.get(at) {
        at = match byte {
            _ if byte.is_ascii_whitespace() => at + 1,
            b'#' => skip_comment(bytes, at),
            b'+' | b'-' if !signed => {
                signed = true;
                at + 1
            }
            _ => break,
        };
    }
    let start = at;
    while let Some(&byte) = bytes.get(at) {
        let exponent_sign = matches!(byte, b'+' | b'-') && matches!(bytes[at - 1], b'e' | b'E');
        if !(is_word(byte) || exponent_sign) || byte == b':' {
            break;
        }
        at += 1;
    }
    &bytes[start..at]
}

/// Refuses `text` when it reads as a number of seconds a duration cannot hold. Text that is not
/// a plain decimal number (a duration with units, a hexadecimal number, a syntax error) passes:
/// the parser handles it without panicking.
fn check_duration(text: &[u8]) -> Result<(), EnforceError> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok(());
    };
    let Ok(seconds) = text.trim().parse::<f64>() else {
        return Ok(());
    };
    if seconds.is_finite() && (0.0..=MAX_DURATION_SECONDS).contains(&seconds) {
        Ok(())
    } else {
        Err(EnforceError::Invalid(OUT_OF_RANGE.into()))
    }
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':' | b'.')
}

fn word_end(bytes: &[u8], start: usize) -> usize {
    let rest = &bytes[start..];
    start + rest.iter().position(|&b| !is_word(b)).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_of_range() -> Result<(), EnforceError> {
        Err(EnforceError::Invalid(OUT_OF_RANGE.into()))
    }

    fn check(text: &str) -> Result<(), EnforceError> {
        check_unitless_durations(text.as_bytes())
    }

    /// Each of these made promql-parser 0.11 panic; the first is the fuzzer's find.
    #[test]
    fn durations_that_panicked_the_parser_are_out_of_range() {
        for query in [
            "x[044444444444444444444444444444444444444444444444444.0001]",
            "x[1e300]",
            "x[ 1e300 ]",
            "x [1e300\n]",
            "x[1e+300]",
            "x[18446744073709551616]",
            "x[1h:1e300]",
            "x[1e300:1h]",
            "x offset 1e300",
            "x OFFSET -1e300",
            "x offset Inf",
            "x offset NaN",
            "x offset\n# a comment\n+1e300",
            "rate(x[5m] offset 1e300)",
        ] {
            assert_eq!(check(query), out_of_range(), "{query:?}");
            assert_eq!(
                parse(query).map(|_| ()),
                Err(EnforceError::Invalid(OUT_OF_RANGE.into())),
                "{query:?}"
            );
        }
    }

    #[test]
    fn ordinary_durations_and_numbers_pass() {
        for query in [
            "x[5m]",
            "x[300]",
            "x[1.5]",
            "x[1h:30]",
            "x offset 5m",
            "x offset -300",
            "x[9223372036]",
            "x > 1e300",
            "x > Inf",
            r#"x{offset="1e300"}"#,
            r#"label_replace(x, "a", "[1e300]", "b", "offset 1e300")"#,
            "x # [1e300] offset Inf",
            "sum by (offset) (x)",
        ] {
            assert_eq!(check(query), Ok(()), "{query:?}");
        }
    }

    #[test]
    fn parse_errors_keep_the_parser_message() {
        assert_eq!(
            parse("x[5m+1m]").map(|_| ()),
            Err(EnforceError::Invalid(
                "parse error: unexpected character inside brackets: '+'".into()
            ))
        );
    }
}
