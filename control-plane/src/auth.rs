//! Bearer-token checks for the gRPC services. Tokens are compared by their
//! SHA-256 digests (see `crypto::token_matches`), and nothing about the
//! presented token is logged.

use tonic::metadata::MetadataMap;

use crate::crypto;
use crate::error::Error;

/// The token from `authorization: Bearer TOKEN`, if any.
pub fn bearer(meta: &MetadataMap) -> Option<&str> {
    let value = meta.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Accepts the request when its bearer token hashes to one of `accepted`.
pub fn check(meta: &MetadataMap, accepted: &[[u8; 32]]) -> Result<(), Error> {
    let Some(token) = bearer(meta) else {
        return Err(Error::Unauthenticated(
            "missing authorization: Bearer token",
        ));
    };
    let hash = crypto::sha256(token);
    if accepted.contains(&hash) {
        Ok(())
    } else {
        Err(Error::Unauthenticated("invalid token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn meta(v: &'static str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", MetadataValue::from_static(v));
        m
    }

    #[test]
    fn checks_bearer_tokens() {
        let ok = [crypto::sha256("secret-token")];
        assert!(check(&meta("Bearer secret-token"), &ok).is_ok());
        assert!(check(&meta("bearer  secret-token "), &ok).is_ok());
        assert!(check(&meta("Bearer other"), &ok).is_err());
        assert!(check(&meta("Basic secret-token"), &ok).is_err());
        assert!(check(&meta("Bearer "), &ok).is_err());
        assert!(check(&MetadataMap::new(), &ok).is_err());
    }
}
