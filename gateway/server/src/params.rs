//! Strict parsing and canonical re-encoding of query strings and form bodies.
//!
//! The gateway and the upstream must read the same parameters, or a value the gateway never saw
//! reaches the upstream unenforced. So parsing is strict where Go's `url.ParseQuery` (which
//! Prometheus uses) is lenient or skips input: a malformed percent escape, a `;` separator or a
//! value that is not UTF-8 rejects the whole request. What is forwarded is never the client's
//! text but a canonical re-encoding of what was parsed.

use std::fmt;

/// Where a parameter was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The URL's query string.
    Url,
    /// The `application/x-www-form-urlencoded` body of a POST.
    Body,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Url => "URL",
            Location::Body => "form body",
        })
    }
}

/// One decoded `name=value` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Decoded name.
    pub name: String,
    /// Decoded value.
    pub value: String,
    /// Where it came from.
    pub location: Location,
}

/// Why a query string or form body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding in the {0}")]
    BadEscape(Location),
    /// A `;` inside a pair: Go rejects it and skips the pair, so it would be read differently.
    #[error("invalid semicolon separator in the {0}")]
    Semicolon(Location),
    /// The decoded bytes are not UTF-8.
    #[error("parameter is not valid UTF-8 in the {0}")]
    NotUtf8(Location),
}

/// Parses `input` (without the leading `?`) strictly into decoded pairs.
pub fn parse(input: &[u8], location: Location) -> Result<Vec<Param>, ParamError> {
    let mut params = Vec::new();
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        if pair.contains(&b';') {
            return Err(ParamError::Semicolon(location));
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        params.push(Param {
            name: decode(name, location)?,
            value: decode(value, location)?,
            location,
        });
    }
    Ok(params)
}

fn decode(raw: &[u8], location: Location) -> Result<String, ParamError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        out.push(match byte {
            b'+' => b' ',
            b'%' => {
                let high = bytes.next().and_then(|&b| hex(b));
                let low = bytes.next().and_then(|&b| hex(b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(ParamError::BadEscape(location));
                };
                high << 4 | low
            }
            other => other,
        });
    }
    String::from_utf8(out).map_err(|_| ParamError::NotUtf8(location))
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

/// Encodes the parameters found at `location`, in order, as `application/x-www-form-urlencoded`.
pub fn encode<'a>(params: impl IntoIterator<Item = &'a Param>, location: Location) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for param in params.into_iter().filter(|p| p.location == location) {
        serializer.append_pair(&param.name, &param.value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Result<Vec<(String, String)>, ParamError> {
        let params = parse(input.as_bytes(), Location::Url)?;
        Ok(params.into_iter().map(|p| (p.name, p.value)).collect())
    }

    #[test]
    fn decodes_names_and_values() {
        let parsed = pairs("query=up%7Bjob%3D%22a%22%7D+or+x&te%6Eant=acme&&flag").unwrap();
        assert_eq!(
            parsed,
            [
                ("query".into(), "up{job=\"a\"} or x".into()),
                ("tenant".into(), "acme".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(
            pairs("match%5B%5D=up").unwrap(),
            [("match[]".into(), "up".into())]
        );
    }

    #[test]
    fn rejects_what_go_would_read_differently() {
        assert_eq!(
            pairs("query=up%zz"),
            Err(ParamError::BadEscape(Location::Url))
        );
        assert_eq!(
            pairs("query=up%2"),
            Err(ParamError::BadEscape(Location::Url))
        );
        assert_eq!(
            pairs("query=up;tenant=x"),
            Err(ParamError::Semicolon(Location::Url))
        );
        assert_eq!(pairs("query=%ff"), Err(ParamError::NotUtf8(Location::Url)));
    }

    #[test]
    fn encoding_is_canonical_and_round_trips() {
        let params = parse(b"query=a%20b&x=%2B&tenant=t", Location::Body).unwrap();
        let encoded = encode(&params, Location::Body);
        assert_eq!(encoded, "query=a+b&x=%2B&tenant=t");
        assert_eq!(parse(encoded.as_bytes(), Location::Body).unwrap(), params);
        assert_eq!(encode(&params, Location::Url), "");
    }
}
