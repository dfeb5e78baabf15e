//! Authentication: who is calling.

use http::{HeaderMap, HeaderName, header};
use portcullis_api::{Identity, IdentitySource, Subject};

use crate::error::GatewayError;

/// Finds the caller's identity in the request headers.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// `Authorization: Bearer <token>`; the token is the subject id.
    Bearer,
    /// A header set by a trusted authenticating proxy.
    TrustedHeader(HeaderName),
}

impl Authenticator {
    /// The caller's identity, or 401. Error messages never include the credential.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, GatewayError> {
        match self {
            Self::Bearer => bearer(headers),
            Self::TrustedHeader(name) => trusted(headers, name),
        }
    }

    /// The header holding the credential, removed before forwarding unless configured otherwise.
    pub fn credential_header(&self) -> &HeaderName {
        match self {
            Self::Bearer => &header::AUTHORIZATION,
            Self::TrustedHeader(name) => name,
        }
    }
}

fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, GatewayError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GatewayError::Unauthenticated(
            "credential header given more than once",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| GatewayError::Unauthenticated("malformed credential header"))?;
    Ok(Some(value))
}

fn bearer(headers: &HeaderMap) -> Result<Identity, GatewayError> {
    let Some(value) = single(headers, &header::AUTHORIZATION)? else {
        return Err(GatewayError::Unauthenticated("missing bearer token"));
    };
    let malformed = GatewayError::Unauthenticated("malformed bearer token");
    let (scheme, token) = value.trim().split_once(' ').ok_or(malformed.clone())?;
    let token = token.trim_start();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && !token.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control());
    if !well_formed {
        return Err(malformed);
    }
    Ok(Identity::new(Subject::new(token), IdentitySource::Bearer))
}

fn trusted(headers: &HeaderMap, name: &HeaderName) -> Result<Identity, GatewayError> {
    let Some(value) = single(headers, name)? else {
        return Err(GatewayError::Unauthenticated("missing identity header"));
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(GatewayError::Unauthenticated("empty identity header"));
    }
    Ok(Identity::new(
        Subject::new(value),
        IdentitySource::TrustedHeader,
    ))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_is_the_subject() {
        let id = Authenticator::Bearer.authenticate(&headers(&[("authorization", "Bearer t0k")]));
        assert_eq!(id.unwrap().subject.expose(), "t0k");
        let id = Authenticator::Bearer.authenticate(&headers(&[("authorization", "bearer  t0k")]));
        assert_eq!(id.unwrap().subject.expose(), "t0k");
    }

    #[test]
    fn missing_or_malformed_bearer_is_401_without_the_token() {
        for case in [
            vec![],
            vec![("authorization", "Basic dXNlcjpwYXNz")],
            vec![("authorization", "Bearer")],
            vec![("authorization", "Bearer ")],
            vec![("authorization", "Bearer a b")],
            vec![
                ("authorization", "Bearer secret1"),
                ("authorization", "Bearer secret2"),
            ],
        ] {
            let err = Authenticator::Bearer
                .authenticate(&headers(&case))
                .unwrap_err();
            assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn trusted_header_names_the_subject() {
        let auth = Authenticator::TrustedHeader(HeaderName::from_static("x-forwarded-user"));
        let id = auth
            .authenticate(&headers(&[("x-forwarded-user", "alice")]))
            .unwrap();
        assert_eq!(id.subject.expose(), "alice");
        assert!(auth.authenticate(&headers(&[])).is_err());
        assert!(
            auth.authenticate(&headers(&[("x-forwarded-user", " ")]))
                .is_err()
        );
        let twice = [("x-forwarded-user", "alice"), ("x-forwarded-user", "bob")];
        assert!(auth.authenticate(&headers(&twice)).is_err());
    }
}
