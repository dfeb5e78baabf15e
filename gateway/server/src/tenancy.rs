//! Reading the tenant values a request asks for, once, from one configured source.

use http::{HeaderMap, HeaderName};
use portcullis_api::{TenantRequest, TenantSet};

use crate::config::{TenantConfig, TenantSource, WhenMissing};
use crate::error::GatewayError;
use crate::params::Param;

/// Where to read tenant values, and how many a request may name.
#[derive(Debug, Clone)]
pub struct TenantReader {
    source: Source,
    multi: bool,
    when_missing: WhenMissing,
}

#[derive(Debug, Clone)]
enum Source {
    Param(String),
    Header(HeaderName),
    Static(TenantSet),
}

impl TenantReader {
    /// Builds the reader from a validated `[tenant]` section.
    pub fn new(config: &TenantConfig) -> Result<Self, String> {
        let name = || config.name.clone().filter(|n| !n.is_empty());
        let source = match config.source {
            TenantSource::Param => Source::Param(name().ok_or("`name` is required")?),
            TenantSource::Header => {
                let name = name().ok_or("`name` is required")?;
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a valid header name"))?;
                Source::Header(header)
            }
            TenantSource::Static => Source::Static(
                TenantSet::new(config.values.iter().cloned()).map_err(|err| err.to_string())?,
            ),
        };
        Ok(Self {
            source,
            multi: config.multi,
            when_missing: config.when_missing,
        })
    }

    /// The header holding tenant values, which is never forwarded.
    pub fn header(&self) -> Option<&HeaderName> {
        match &self.source {
            Source::Header(name) => Some(name),
            _ => None,
        }
    }

    /// Reads the requested tenants and removes the tenant parameter from `params`.
    pub fn read(
        &self,
        params: &mut Vec<Param>,
        headers: &HeaderMap,
    ) -> Result<TenantRequest, GatewayError> {
        let (described, values) = match &self.source {
            Source::Static(set) => return Ok(TenantRequest::Named(set.clone())),
            Source::Param(name) => (format!("parameter {name:?}"), take_params(params, name)),
            Source::Header(name) => (
                format!("header {:?}", name.as_str()),
                self.header_values(headers, name)?,
            ),
        };
        if values.is_empty() {
            return match self.when_missing {
                WhenMissing::Lookup => Ok(TenantRequest::Unspecified),
                WhenMissing::Reject => Err(GatewayError::BadRequest(format!(
                    "missing tenant: the {described} must be provided"
                ))),
            };
        }
        if values.len() > 1 && !self.multi {
            return Err(GatewayError::BadRequest(format!(
                "the tenant {described} must be given exactly once"
            )));
        }
        let set = TenantSet::new(values).map_err(|err| {
            GatewayError::BadRequest(format!("invalid tenant {described}: {err}"))
        })?;
        Ok(TenantRequest::Named(set))
    }

    fn header_values(
        &self,
        headers: &HeaderMap,
        name: &HeaderName,
    ) -> Result<Vec<String>, GatewayError> {
        let mut values = Vec::new();
        for value in headers.get_all(name) {
            let value = value.to_str().map_err(|_| {
                GatewayError::BadRequest(format!(
                    "the tenant header {:?} is not valid text",
                    name.as_str()
                ))
            })?;
            // A list value counts as several tenants: allowed only with `multi`.
            values.extend(value.split(',').map(|v| v.trim().to_owned()));
        }
        Ok(values)
    }
}

fn take_params(params: &mut Vec<Param>, name: &str) -> Vec<String> {
    let mut values = Vec::new();
    params.retain(|param| {
        let tenant = param.name == name;
        if tenant {
            values.push(param.value.clone());
        }
        !tenant
    });
    values
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::params::{Location, parse};

    fn reader(source: TenantSource, multi: bool) -> TenantReader {
        let config = TenantConfig {
            source,
            name: Some(
                if source == TenantSource::Header {
                    "X-Tenant"
                } else {
                    "tenant"
                }
                .into(),
            ),
            values: vec!["acme".into()],
            multi,
            when_missing: WhenMissing::Reject,
        };
        TenantReader::new(&config).unwrap()
    }

    fn params(url: &str, body: &str) -> Vec<Param> {
        let mut params = parse(url.as_bytes(), Location::Url).unwrap();
        params.extend(parse(body.as_bytes(), Location::Body).unwrap());
        params
    }

    fn named(values: &[&str]) -> TenantRequest {
        TenantRequest::Named(TenantSet::new(values.iter().copied()).unwrap())
    }

    #[test]
    fn param_is_read_from_url_and_body_and_removed() {
        let mut p = params("tenant=acme&query=up", "time=1");
        let read = reader(TenantSource::Param, false).read(&mut p, &HeaderMap::new());
        assert_eq!(read.unwrap(), named(&["acme"]));
        assert!(p.iter().all(|param| param.name != "tenant"));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn conflicting_copies_are_400_unless_multi() {
        for (url, body) in [
            ("tenant=mine", "tenant=victim"),
            ("tenant=mine&tenant=victim", ""),
            ("tenant=mine&te%6Eant=victim", ""),
            ("tenant=mine&tenant=mine", ""),
        ] {
            let mut p = params(url, body);
            let err = reader(TenantSource::Param, false).read(&mut p, &HeaderMap::new());
            assert_eq!(
                err.unwrap_err().status(),
                http::StatusCode::BAD_REQUEST,
                "{url} {body}"
            );
        }
        let mut p = params("tenant=mine", "tenant=victim");
        let read = reader(TenantSource::Param, true).read(&mut p, &HeaderMap::new());
        assert_eq!(read.unwrap(), named(&["mine", "victim"]));
    }

    #[test]
    fn missing_or_empty_tenant_is_400() {
        for url in ["query=up", "tenant="] {
            let mut p = params(url, "");
            let err = reader(TenantSource::Param, false).read(&mut p, &HeaderMap::new());
            assert_eq!(
                err.unwrap_err().status(),
                http::StatusCode::BAD_REQUEST,
                "{url}"
            );
        }
    }

    // Edge case C16: a repeated tenant header, or a list value, must not widen the request.
    #[test]
    fn repeated_or_list_header_is_400_in_single_mode() {
        let mut twice = HeaderMap::new();
        twice.append("x-tenant", HeaderValue::from_static("acme"));
        twice.append("x-tenant", HeaderValue::from_static("victim"));
        let mut list = HeaderMap::new();
        list.append("x-tenant", HeaderValue::from_static("acme, victim"));
        for headers in [&twice, &list] {
            let err = reader(TenantSource::Header, false).read(&mut Vec::new(), headers);
            assert_eq!(err.unwrap_err().status(), http::StatusCode::BAD_REQUEST);
            let read = reader(TenantSource::Header, true).read(&mut Vec::new(), headers);
            assert_eq!(read.unwrap(), named(&["acme", "victim"]));
        }
    }

    #[test]
    fn static_source_ignores_the_request() {
        let mut p = params("tenant=victim", "");
        let read = reader(TenantSource::Static, false).read(&mut p, &HeaderMap::new());
        assert_eq!(read.unwrap(), named(&["acme"]));
    }
}
