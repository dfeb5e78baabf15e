//! The preshared key that authenticates Portcullis to SpiceDB.

use std::fmt;
use std::path::Path;

use tonic::metadata::{Ascii, MetadataValue};

/// The preshared key, loaded once at startup.
///
/// It only leaves this type as a sensitive `authorization` header value; its `Debug` is
/// redacted and no error message quotes it.
#[derive(Clone)]
pub(crate) struct PresharedKey(String);

/// Why the preshared key could not be loaded. The messages name where the key was looked for,
/// never what was found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// The environment variable is not set, or not valid Unicode.
    #[error("environment variable `{0}` is not set")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The source holds only whitespace.
    #[error("the preshared key from {0} is empty")]
    Empty(String),
    /// The key has characters a gRPC header cannot carry.
    #[error("the preshared key from {0} has characters a gRPC header cannot carry")]
    NotAscii(String),
}

impl PresharedKey {
    /// Reads the key from environment variable `name`.
    pub(crate) fn from_env(name: &str) -> Result<Self, KeyError> {
        let value = std::env::var(name).map_err(|_| KeyError::EnvMissing(name.to_owned()))?;
        Self::checked(value, format!("`{name}`"))
    }

    /// Reads the key from the file at `path`.
    pub(crate) fn from_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let value = std::fs::read_to_string(path).map_err(|err| KeyError::File {
            path: shown.clone(),
            reason: err.kind().to_string(),
        })?;
        Self::checked(value, format!("`{shown}`"))
    }

    /// A key given directly, e.g. by a test.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    pub(crate) fn new(value: impl Into<String>) -> Result<Self, KeyError> {
        Self::checked(value.into(), "the configuration".to_owned())
    }

    /// The `authorization` header value, marked sensitive so that `http` never prints it.
    pub(crate) fn bearer_header(&self) -> MetadataValue<Ascii> {
        let mut value = MetadataValue::try_from(format!("Bearer {}", self.0))
            .expect("checked to be visible ASCII when loaded");
        value.set_sensitive(true);
        value
    }

    fn checked(value: String, source: String) -> Result<Self, KeyError> {
        let key = value.trim();
        if key.is_empty() {
            return Err(KeyError::Empty(source));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::NotAscii(source));
        }
        Ok(Self(key.to_owned()))
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_trimmed_and_never_shown() {
        let key = PresharedKey::new("  s3cr3t-key\n").unwrap();
        assert_eq!(format!("{key:?}"), "PresharedKey(<redacted>)");
        let header = key.bearer_header();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer s3cr3t-key");
        assert!(!format!("{header:?}").contains("s3cr3t"));
    }

    #[test]
    fn errors_name_the_source_not_the_value() {
        let err = PresharedKey::new("s3cr3t key").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert_eq!(
            PresharedKey::new(" \n").unwrap_err(),
            KeyError::Empty("the configuration".into())
        );
        let missing = PresharedKey::from_env("PORTCULLIS_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "environment variable `PORTCULLIS_TEST_SURELY_UNSET_VARIABLE` is not set"
        );
        let file = PresharedKey::from_file(Path::new("/nonexistent/portcullis/key")).unwrap_err();
        assert!(
            file.to_string()
                .starts_with("cannot read `/nonexistent/portcullis/key`")
        );
    }
}
