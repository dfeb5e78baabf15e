//! Who is calling.

use std::fmt;

/// The caller's subject id: a bearer token or the user name set by a trusted proxy.
///
/// A subject can be a secret (with `identity = "bearer"` it *is* the token), so it has no
/// `Display`, its `Debug` is redacted, and the only way to read it is [`Subject::expose`]. Logs,
/// spans and metrics use a keyed hash of it instead.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// Wraps a subject id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The raw subject id, for the one place that needs it: the authorizer's own lookup.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subject(<redacted>)")
    }
}

/// How the caller's subject was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentitySource {
    /// The token of an `Authorization: Bearer` header.
    Bearer,
    /// A header set by a trusted authenticating proxy in front of Portcullis.
    TrustedHeader,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Identity {
    /// The caller's subject id.
    pub subject: Subject,
    /// Where the subject id came from.
    pub source: IdentitySource,
}

impl Identity {
    /// An identity for `subject`, found through `source`.
    pub fn new(subject: Subject, source: IdentitySource) -> Self {
        Self { subject, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_subject() {
        let identity = Identity::new(Subject::new("s3cr3t-token"), IdentitySource::Bearer);
        let shown = format!("{identity:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
