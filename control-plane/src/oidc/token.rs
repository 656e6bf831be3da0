//! ID token verification: the signature against the issuer's JWKS (only
//! asymmetric algorithms: an `alg` of `none` or `HS*` is refused, so a
//! token cannot be forged with the client secret or without a key), the
//! issuer, the audience (our client id), expiry and the nonce we sent.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::error::{Error, Result};

/// What we read from an ID token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
}

const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn bad(why: impl std::fmt::Display) -> Error {
    Error::SignIn(format!("the ID token is not valid: {why}"))
}

/// The key id the token names (None: the JWKS must hold exactly one key).
pub fn key_id(token: &str) -> Result<Option<String>> {
    Ok(decode_header(token).map_err(bad)?.kid)
}

/// Verifies `token` with a key of `jwks`; returns its claims.
pub fn verify(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<Claims> {
    let header = decode_header(token).map_err(bad)?;
    if !ALLOWED.contains(&header.alg) {
        return Err(bad(format!("algorithm {:?} is not accepted", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| bad("it is signed with a key the issuer does not publish"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(bad)?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 60;
    let claims = decode::<Claims>(token, &key, &v).map_err(bad)?.claims;
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(bad("its nonce is not the one this sign-in sent"));
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(bad("its subject is empty or too long"));
    }
    Ok(claims)
}
