//! LogQL string literals: where one ends, what it decodes to, and how a value is written as one.
//!
//! Loki reads strings the way Go does: a double-quoted string holds Go escapes and no newline,
//! a backtick string holds its bytes as they are. Tenant values are always written double-quoted.

/// Why a string literal is not one Loki would read.
pub(crate) type QuoteError = &'static str;

/// What one escape sequence stands for.
enum Escaped {
    /// `\xhh`, an octal escape or a one-letter escape: a single byte.
    Byte(u8),
    /// `\uhhhh` or `\Uhhhhhhhh`: a character, UTF-8 encoded.
    Char(char),
}

/// The index just past the double-quoted string that opens at `start`, checking every escape
/// sequence in it the way Loki's lexer does.
pub(crate) fn scan_double_quoted(bytes: &[u8], start: usize) -> Result<usize, QuoteError> {
    let mut at = start + 1;
    loop {
        match bytes.get(at) {
            None | Some(b'\n') => return Err("unterminated string"),
            Some(b'"') => return Ok(at + 1),
            Some(b'\\') => at = escape(bytes, at + 1)?.1,
            Some(_) => at += 1,
        }
    }
}

/// The index just past the backtick string that opens at `start`.
pub(crate) fn scan_raw(bytes: &[u8], start: usize) -> Result<usize, QuoteError> {
    let rest = bytes.get(start + 1..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'`') {
        Some(offset) => Ok(start + 1 + offset + 1),
        None => Err("unterminated raw string"),
    }
}

/// The bytes a whole string literal (quotes included) stands for.
pub(crate) fn unquote(literal: &str) -> Result<Vec<u8>, QuoteError> {
    let bytes = literal.as_bytes();
    match bytes {
        [b'`', inner @ .., b'`'] if !inner.contains(&b'`') => unquote_raw(inner),
        [b'"', .., b'"'] => unquote_double(bytes),
        _ => Err("not a string literal"),
    }
}

fn unquote_raw(inner: &[u8]) -> Result<Vec<u8>, QuoteError> {
    // Known limitation: a carriage return in a backtick string is refused because Go drops it
    // from raw strings in some decoders and keeps it in others, so what Loki compares is unclear.
    if inner.contains(&b'\r') {
        return Err("a carriage return in a raw string is ambiguous");
    }
    Ok(inner.to_vec())
}

fn unquote_double(bytes: &[u8]) -> Result<Vec<u8>, QuoteError> {
    let end = bytes.len() - 1;
    let mut value = Vec::with_capacity(end);
    let mut at = 1;
    while at < end {
        if bytes[at] == b'\\' {
            let (escaped, next) = escape(bytes, at + 1)?;
            push_escaped(&mut value, escaped);
            at = next;
            continue;
        }
        if bytes[at] == b'"' || bytes[at] == b'\n' {
            return Err("not a single string literal");
        }
        value.push(bytes[at]);
        at += 1;
    }
    if at != end {
        return Err("not a single string literal");
    }
    Ok(value)
}

fn push_escaped(value: &mut Vec<u8>, escaped: Escaped) {
    match escaped {
        Escaped::Byte(byte) => value.push(byte),
        Escaped::Char(c) => value.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
    }
}

/// Reads the escape sequence whose letter is at `at` (just past the backslash): what it stands
/// for and the index just past it.
fn escape(bytes: &[u8], at: usize) -> Result<(Escaped, usize), QuoteError> {
    let Some(&letter) = bytes.get(at) else {
        return Err("unterminated string");
    };
    let simple = match letter {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' | b'"' => Some(letter),
        _ => None,
    };
    if let Some(byte) = simple {
        return Ok((Escaped::Byte(byte), at + 1));
    }
    match letter {
        b'0'..=b'7' => byte_escape(bytes, at, 8, 3),
        b'x' => byte_escape(bytes, at + 1, 16, 2),
        b'u' => char_escape(bytes, at + 1, 4),
        b'U' => char_escape(bytes, at + 1, 8),
        _ => Err("invalid escape sequence in string"),
    }
}

fn byte_escape(
    bytes: &[u8],
    at: usize,
    radix: u32,
    len: usize,
) -> Result<(Escaped, usize), QuoteError> {
    let value = digits(bytes, at, radix, len)?;
    let byte = u8::try_from(value).map_err(|_| "octal escape above \\377 in string")?;
    Ok((Escaped::Byte(byte), at + len))
}

fn char_escape(bytes: &[u8], at: usize, len: usize) -> Result<(Escaped, usize), QuoteError> {
    let value = digits(bytes, at, 16, len)?;
    let c = char::from_u32(value).ok_or("escape names no Unicode character")?;
    Ok((Escaped::Char(c), at + len))
}

/// The number written by exactly `len` digits of `radix` at `at`.
fn digits(bytes: &[u8], at: usize, radix: u32, len: usize) -> Result<u32, QuoteError> {
    let digits = bytes
        .get(at..at + len)
        .ok_or("invalid escape sequence in string")?;
    digits.iter().try_fold(0u32, |value, &digit| {
        let digit = char::from(digit)
            .to_digit(radix)
            .ok_or("invalid escape sequence in string")?;
        Ok(value * radix + digit)
    })
}

/// `value` as a double-quoted LogQL string that decodes to exactly `value`.
pub(crate) fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Result<usize, QuoteError> {
        scan_double_quoted(text.as_bytes(), 0)
    }

    #[test]
    fn a_double_quoted_string_ends_at_its_unescaped_quote() {
        assert_eq!(scan(r#""a{b}" x"#), Ok(6));
        assert_eq!(scan(r#""a\"}" x"#), Ok(6));
        assert_eq!(scan(r#""\\" x"#), Ok(4));
        assert_eq!(scan(r#""\x41\101\u00e9\U0001F600" x"#), Ok(26));
    }

    #[test]
    fn broken_double_quoted_strings_are_refused() {
        assert_eq!(scan(r#""abc"#), Err("unterminated string"));
        assert_eq!(scan("\"a\nb\""), Err("unterminated string"));
        assert_eq!(scan(r#""a\"#), Err("unterminated string"));
        for bad in [r#""\q""#, r#""\'""#, r#""\x4""#, r#""\12""#, r#""\u12""#] {
            assert_eq!(scan(bad), Err("invalid escape sequence in string"), "{bad}");
        }
        assert_eq!(scan(r#""\400""#), Err("octal escape above \\377 in string"));
        assert_eq!(
            scan(r#""\ud800""#),
            Err("escape names no Unicode character")
        );
    }

    #[test]
    fn raw_strings_end_at_the_next_backtick() {
        assert_eq!(scan_raw(b"`a\\`b", 0), Ok(4));
        assert_eq!(scan_raw(b"`a\"\n{`", 0), Ok(6));
        assert_eq!(scan_raw(b"`abc", 0), Err("unterminated raw string"));
    }

    #[test]
    fn literals_decode_like_go() {
        assert_eq!(unquote(r#""a\"b\\c\n""#).unwrap(), b"a\"b\\c\n");
        assert_eq!(unquote(r#""\x41\101\u00e9""#).unwrap(), "AAé".as_bytes());
        assert_eq!(unquote(r#""\xff""#).unwrap(), [0xff]);
        assert_eq!(unquote(r"`a\.b`").unwrap(), br"a\.b");
        assert_eq!(unquote(r#""""#).unwrap(), b"");
        assert!(unquote("`a\rb`").is_err());
        assert!(unquote(r#""a"b""#).is_err());
        assert!(unquote(r#"""#).is_err());
        assert!(unquote("x").is_err());
    }

    #[test]
    fn quoting_round_trips() {
        for value in [
            "acme",
            "a\"b\\c",
            "x\ny\rz\t",
            "\u{0}\u{7f}\u{85}",
            "é😀",
            "{{.x}}",
        ] {
            let quoted = quote(value);
            assert_eq!(scan(&quoted), Ok(quoted.len()), "{quoted}");
            assert_eq!(unquote(&quoted).unwrap(), value.as_bytes(), "{quoted}");
        }
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\u{1}"), r#""\u0001""#);
    }
}
