//! The LogQL enforcer: whatever it accepts, it accepts again unchanged (its own re-scan reads
//! the output as it wrote it), and enforcing the output for other tenants changes exactly the
//! tenant matchers, one per selector, and nothing else.

use portcullis_api::{EnforceError, TenantSet};
use portcullis_enforcer_logql::{EnforcerConfig, LogqlEnforcer};

const LABEL: &str = "namespace";

/// Tenant names that ordinary input does not contain, so that their printed matchers can be
/// found and replaced in the output as text.
const ONE: &[&str] = &["t7q"];
const ONE_OTHER: &[&str] = &["z9w"];
const MANY: &[&str] = &["t7q", "u8.r"];
const MANY_OTHER: &[&str] = &["y6|v", "z9w"];

fn enforcer(strict: bool) -> LogqlEnforcer {
    let mut config = EnforcerConfig::new(LABEL);
    config.error_on_replace = strict;
    LogqlEnforcer::new(config).expect("a valid configuration")
}

fn set(values: &[&str]) -> TenantSet {
    TenantSet::new(values.iter().copied()).expect("non-empty")
}

/// The tenant matcher as the LogQL enforcer prints it.
fn printed(values: &[&str]) -> String {
    match values {
        [one] => format!("{LABEL}={one:?}"),
        many => {
            let mut sorted = many.to_vec();
            sorted.sort_unstable();
            let literals: Vec<String> = sorted.iter().map(|v| regex_literal(v)).collect();
            format!("{LABEL}=~{:?}", literals.join("|"))
        }
    }
}

fn regex_literal(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Runs `data`, as a query and as a stream selector, in both modes and for one and several
/// tenants.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let markers = ["t7q", "u8", "z9w", "y6"];
    let retenant = !markers.iter().any(|m| text.contains(m));
    for strict in [false, true] {
        let enforcer = enforcer(strict);
        for (allowed, other) in [(ONE, ONE_OTHER), (MANY, MANY_OTHER)] {
            let query = |t: &str, a: &[&str]| enforcer.enforce_query(t, &set(a));
            check_one(text, allowed, other, retenant, &query, strict);
            let selector = |t: &str, a: &[&str]| enforcer.enforce_selector(Some(t), &set(a));
            check_one(text, allowed, other, retenant, &selector, strict);
        }
    }
}

type Enforce<'a> = dyn Fn(&str, &[&str]) -> Result<String, EnforceError> + 'a;

fn check_one(
    text: &str,
    allowed: &[&str],
    other: &[&str],
    retenant: bool,
    enforce: &Enforce<'_>,
    strict: bool,
) {
    let output = match enforce(text, allowed) {
        Ok(output) => output,
        Err(EnforceError::Unsupported(message)) => panic!("unsupported on {text:?}: {message}"),
        Err(EnforceError::Conflict(_)) if !strict => panic!("conflict outside strict mode"),
        Err(_) => return,
    };
    assert_eq!(
        enforce(&output, allowed).as_deref(),
        Ok(output.as_str()),
        "enforcing {output:?} (from {text:?}) again changed it"
    );
    // A query's own matcher on the label may stay beside the enforced one when it selects some
    // of several tenants, and may not select the other tenants: the re-tenanting check is for
    // outputs where the label appears only in the enforced matchers, in the default mode.
    let own_matchers = output.matches(LABEL).count() > output.matches(&printed(allowed)).count();
    if !retenant || strict || own_matchers {
        return;
    }
    let expected = output.replace(&printed(allowed), &printed(other));
    assert_eq!(
        enforce(&output, other).as_deref(),
        Ok(expected.as_str()),
        "{text:?} became {output:?}: some selector lacks the tenant matcher or has another"
    );
}
