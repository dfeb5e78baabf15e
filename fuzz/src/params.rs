//! Strict parameter parsing: what it accepts, a lenient reader (as the upstream's) reads the
//! same; its canonical re-encoding reads back to the same parameters; and the tenant parameter
//! is read from the URL and the body together, exactly once, and removed.

use http::HeaderMap;
use portcullis::config::{TenantConfig, TenantSource, WhenMissing};
use portcullis::params::{Location, Param, encode, parse};
use portcullis::tenancy::TenantReader;
use portcullis_api::TenantRequest;

const TENANT: &str = "tenant";

/// `data` is a query string and a form body, split at the first newline.
pub fn check(data: &[u8]) {
    let (url, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (Some(mut params), Some(body)) = (
        check_parse(url, Location::Url),
        check_parse(body, Location::Body),
    ) else {
        return;
    };
    params.extend(body);
    for multi in [false, true] {
        check_tenant(&params, multi);
    }
}

fn pairs(params: &[Param]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

fn lenient(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// Parses `input` at `location`; checks the properties of an accepted input, and that a
/// rejected one has a reason to be.
fn check_parse(input: &[u8], location: Location) -> Option<Vec<Param>> {
    let params = match parse(input, location) {
        Ok(params) => params,
        Err(_) => {
            assert!(
                input.contains(&b';') || !escapes_ok(input) || !decodes_to_utf8(input),
                "rejected {:?} for no reason",
                String::from_utf8_lossy(input)
            );
            return None;
        }
    };
    assert!(params.iter().all(|p| p.location == location));
    assert_eq!(
        lenient(input),
        pairs(&params),
        "a lenient reader reads {:?} differently",
        String::from_utf8_lossy(input)
    );
    let encoded = encode(&params, location);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b'#'),
        "the encoding {encoded:?} holds a byte that needs escaping"
    );
    assert_eq!(
        parse(encoded.as_bytes(), location).as_ref(),
        Ok(&params),
        "the encoding {encoded:?} reads back differently"
    );
    assert_eq!(lenient(encoded.as_bytes()), pairs(&params));
    let other = match location {
        Location::Url => Location::Body,
        Location::Body => Location::Url,
    };
    assert_eq!(encode(&params, other), "");
    Some(params)
}

/// Every `%` is followed by two hex digits.
fn escapes_ok(input: &[u8]) -> bool {
    let mut at = 0;
    while at < input.len() {
        if input[at] == b'%' {
            let hex = |i: usize| input.get(i).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(at + 1) && hex(at + 2)) {
                return false;
            }
            at += 3;
        } else {
            at += 1;
        }
    }
    true
}

/// Every name and value decodes to UTF-8 (assuming the escapes are well formed).
fn decodes_to_utf8(input: &[u8]) -> bool {
    input.split(|&b| b == b'&').all(|pair| {
        pair.split(|&b| b == b'=')
            .all(|part| percent_decode(part).is_some_and(|d| String::from_utf8(d).is_ok()))
    })
}

fn percent_decode(part: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < part.len() {
        match part[at] {
            b'%' => {
                let text = std::str::from_utf8(part.get(at + 1..at + 3)?).ok()?;
                out.push(u8::from_str_radix(text, 16).ok()?);
                at += 3;
            }
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    Some(out)
}

/// Reading the tenant parameter: exactly the values of the parameters named `tenant`, wherever
/// they are; more than one only with `multi`; none of them left behind.
fn check_tenant(params: &[Param], multi: bool) {
    let config = TenantConfig {
        source: TenantSource::Param,
        name: Some(TENANT.to_owned()),
        values: Vec::new(),
        multi,
        when_missing: WhenMissing::Reject,
    };
    let reader = TenantReader::new(&config).expect("a valid tenant section");
    let values: Vec<&str> = params
        .iter()
        .filter(|p| p.name == TENANT)
        .map(|p| p.value.as_str())
        .collect();
    let others: Vec<Param> = params
        .iter()
        .filter(|p| p.name != TENANT)
        .cloned()
        .collect();
    let mut remaining = params.to_vec();
    let answer = reader.read(&mut remaining, &HeaderMap::new());
    let acceptable =
        !values.is_empty() && (multi || values.len() == 1) && values.iter().all(|v| !v.is_empty());
    match answer {
        Ok(TenantRequest::Named(set)) => {
            assert!(
                acceptable,
                "read tenants {set} from {values:?} (multi {multi})"
            );
            let mut expected: Vec<&str> = values.clone();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(set.iter().collect::<Vec<_>>(), expected);
            assert_eq!(remaining, others, "the tenant parameter was not removed");
        }
        Ok(other) => panic!("{other:?} with when_missing = reject"),
        Err(err) => {
            assert!(!acceptable, "refused {values:?} (multi {multi}): {err}");
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        }
    }
}
