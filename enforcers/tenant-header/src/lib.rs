//! The tenant-header enforcer: instead of rewriting the query, it tells a multi-tenant backend
//! which tenants to read, in a header.
//!
//! Loki, Mimir and Cortex read `X-Scope-OrgID` (several tenants joined with `|`); Thanos reads
//! `THANOS-TENANT`. Selected by `type = "tenant_header"`:
//!
//! ```toml
//! [enforcers.org_id]
//! type = "tenant_header"
//! header = "X-Scope-OrgID"
//! separator = "|"
//! ```
//!
//! The header is set on every forwarded request of the route, replacing any copy the client
//! sent. It can be combined with a label enforcer on the same route.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use portcullis_api::{
    BuildError, EnforceError, Enforcer, EnforcerFactory, Language, PluginContext, Section, Target,
    TenantSet,
};
use serde::Deserialize;

/// The `[enforcers.<name>]` section of a tenant-header enforcer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantHeaderConfig {
    /// The header the backend reads its tenants from, e.g. `X-Scope-OrgID`.
    pub header: String,
    /// What joins several tenants in one header value; `|` for Loki, Mimir and Cortex.
    #[serde(default = "default_separator")]
    pub separator: String,
}

fn default_separator() -> String {
    "|".to_owned()
}

/// Sets the tenant header to the allowed tenants.
#[derive(Debug, Clone)]
pub struct TenantHeader {
    header: String,
    separator: String,
}

impl TenantHeader {
    /// An enforcer for `config`; fails on a header name that is not a valid token or an empty
    /// separator.
    pub fn new(config: TenantHeaderConfig) -> Result<Self, (&'static str, String)> {
        let valid_name = !config.header.is_empty()
            && config
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name {
            return Err((
                "header",
                format!("{:?} is not a valid header name", config.header),
            ));
        }
        if config.separator.is_empty() {
            return Err(("separator", "must not be empty".to_owned()));
        }
        Ok(Self {
            header: config.header,
            separator: config.separator,
        })
    }

    /// The header value for `allowed`. A value holding the separator, or a character a header
    /// cannot carry, would let the backend read other tenants: it is refused.
    pub fn value(&self, allowed: &TenantSet) -> Result<String, EnforceError> {
        for tenant in allowed.iter() {
            if tenant.contains(self.separator.as_str()) {
                return Err(EnforceError::Invalid(format!(
                    "a tenant value holds the separator {:?} of the tenant header",
                    self.separator
                )));
            }
            if !tenant.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(EnforceError::Invalid(
                    "a tenant value cannot be sent in a header".to_owned(),
                ));
            }
        }
        Ok(allowed.iter().collect::<Vec<_>>().join(&self.separator))
    }
}

impl Enforcer for TenantHeader {
    fn enforce(&self, target: &mut Target<'_>, allowed: &TenantSet) -> Result<(), EnforceError> {
        target
            .headers
            .set(self.header.clone(), self.value(allowed)?);
        Ok(())
    }

    /// A header works whatever the query language.
    fn supports(&self, _language: Language) -> bool {
        true
    }
}

/// Builds [`TenantHeader`] enforcers from `type = "tenant_header"` sections.
#[derive(Debug, Default, Clone, Copy)]
pub struct TenantHeaderFactory;

impl EnforcerFactory for TenantHeaderFactory {
    fn type_name(&self) -> &'static str {
        "tenant_header"
    }

    fn build(
        &self,
        section: &Section,
        _context: &PluginContext,
    ) -> Result<Arc<dyn Enforcer>, BuildError> {
        let config: TenantHeaderConfig = section.parse()?;
        let enforcer = TenantHeader::new(config).map_err(|(key, msg)| section.error(key, msg))?;
        Ok(Arc::new(enforcer))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_api::HeaderEdits;

    use super::*;

    fn enforcer(text: &str) -> Result<Arc<dyn Enforcer>, BuildError> {
        let section = Section::new("enforcers.org_id", toml::from_str(text).unwrap());
        TenantHeaderFactory.build(&section, &PluginContext::default())
    }

    fn header_for(values: &[&str]) -> Result<Vec<(String, String)>, EnforceError> {
        let enforcer = enforcer("header = 'X-Scope-OrgID'").unwrap();
        let allowed = TenantSet::new(values.iter().copied()).unwrap();
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(Language::LogQl, &mut [], &mut headers);
        enforcer.enforce(&mut target, &allowed)?;
        Ok(headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect())
    }

    #[test]
    fn several_tenants_are_joined_in_one_header() {
        let set = header_for(&["globex", "acme"]).unwrap();
        assert_eq!(
            set,
            [("x-scope-orgid".to_owned(), "acme|globex".to_owned())]
        );
    }

    // Edge case C16: a tenant value must not be able to name a second tenant.
    #[test]
    fn a_value_that_could_widen_the_read_is_refused() {
        assert!(matches!(
            header_for(&["acme|victim"]),
            Err(EnforceError::Invalid(_))
        ));
        assert!(matches!(
            header_for(&["acme victim"]),
            Err(EnforceError::Invalid(_))
        ));
    }

    #[test]
    fn configuration_errors_name_their_key() {
        let err = enforcer("header = 'X Scope'").err().unwrap();
        assert_eq!(err.path, "enforcers.org_id.header");
        let err = enforcer("header = 'X-Scope-OrgID'\nseparator = ''")
            .err()
            .unwrap();
        assert_eq!(err.path, "enforcers.org_id.separator");
        let err = enforcer("header = 'X-Scope-OrgID'\nlabel = 'x'")
            .err()
            .unwrap();
        assert_eq!(err.path, "enforcers.org_id.label");
    }
}
