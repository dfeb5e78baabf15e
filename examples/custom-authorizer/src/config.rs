//! The `[authorizers.<name>]` section of a policy authorizer.

use std::time::Duration;

use http::Uri;
use serde::Deserialize;

/// The keys of a `type = "policy"` section.
///
/// ```toml
/// [authorizers.policy]
/// type = "policy"
/// url = "http://127.0.0.1:8181/v1/data/portcullis/authz"
/// timeout = "2s"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy service's decision endpoint, an `http://` URL; every decision POSTs to it.
    pub url: String,
    /// The longest one decision may take, connecting included; past it the request is a 503.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

impl PolicyConfig {
    /// A configuration for the decision endpoint `url`, with the default `timeout` (2 s).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: default_timeout(),
        }
    }

    /// The parsed `url`, or why it is not usable; the message never repeats the URL, which could
    /// hold a credential.
    pub(crate) fn endpoint(&self) -> Result<Uri, &'static str> {
        let uri: Uri = self.url.parse().map_err(|_| "not a valid URL")?;
        // Known limitation: only plain HTTP, because the example targets a policy service on
        // loopback or in a sidecar; a remote one needs a TLS connector (hyper-rustls).
        if uri.scheme_str() != Some("http") {
            return Err("must be an http:// URL (this example speaks no TLS)");
        }
        let Some(authority) = uri.authority() else {
            return Err("must name a host");
        };
        if authority.as_str().contains('@') {
            return Err("must not hold credentials");
        }
        Ok(uri)
    }

    /// Whether `timeout` is usable.
    pub(crate) fn check_timeout(&self) -> Result<(), &'static str> {
        if self.timeout.is_zero() {
            return Err("must be longer than zero");
        }
        Ok(())
    }
}
