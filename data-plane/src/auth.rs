//! Finds the app's key wherever its SDK put it and resolves it against the
//! snapshot's hashed-key index. Only the SHA-256 of a key is ever compared or
//! kept; the key itself is dropped with the request.

use std::borrow::Cow;

use aigw_proto::model::ClientKey;
use http::request::Parts;

use crate::error::GatewayError;
use crate::runtime::Runtime;
use crate::schedule::now_ms;

/// The keys the app may have sent, from `Authorization: Bearer`,
/// `x-api-key`, `x-goog-api-key` and the `key` query parameter (Gemini's
/// REST style), in that order, lazily: a request with its key in the first
/// place allocates nothing. An `Authorization` header with a scheme other
/// than Bearer is not a key. More than one: a proxy in front may add its
/// own Bearer token to an Anthropic SDK's `x-api-key`, so the first one the
/// snapshot knows is the app's.
fn candidates(parts: &Parts) -> impl Iterator<Item = Cow<'_, str>> {
    let h = &parts.headers;
    let bearer = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let v = v.trim();
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                // Another scheme (`Basic …` added by a proxy in front): not
                // the app's key, which its SDK then put in another place.
                Some(_) => "",
                None if v.eq_ignore_ascii_case("bearer") => "",
                None => v,
            }
        });
    let headers = ["x-api-key", "x-goog-api-key"]
        .into_iter()
        .map(|name| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim));
    std::iter::once(bearer)
        .chain(headers)
        .flatten()
        .filter(|k| !k.is_empty())
        .map(Cow::Borrowed)
        .chain(std::iter::once_with(|| from_query(parts.uri.query())).flatten())
}

/// Every key the app sent, each once (see [`candidates`]).
pub fn presented_keys(parts: &Parts) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for k in candidates(parts) {
        if !keys.iter().any(|seen| *seen == k) {
            keys.push(k.into_owned());
        }
    }
    keys
}

/// The first key the app sent (see [`candidates`]).
pub fn presented_key(parts: &Parts) -> Option<String> {
    candidates(parts).next().map(Cow::into_owned)
}

fn from_query(q: Option<&str>) -> Option<Cow<'_, str>> {
    q?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        // Keys are URL-safe: this only guards against SDKs that escape anyway.
        (k == "key" && !v.is_empty())
            .then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    })
}

pub fn hash_key(key: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn authenticate<'r>(rt: &'r Runtime, parts: &Parts) -> Result<&'r ClientKey, GatewayError> {
    // The first known key that has not expired (a proxy's own token may be
    // an old key of this gateway); only expired ones known: expired.
    let now = now_ms() as i64;
    let (mut any, mut expired) = (false, false);
    for k in candidates(parts) {
        any = true;
        let Some(found) = rt.client_key(&hash_key(&k)) else {
            continue;
        };
        if found.expires_at_ms().is_some_and(|exp| now >= exp) {
            expired = true;
            continue;
        }
        return Ok(found);
    }
    Err(match (any, expired) {
        (false, _) => GatewayError::MissingKey,
        (true, true) => GatewayError::ExpiredKey,
        (true, false) => GatewayError::InvalidKey,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(builder: http::request::Builder) -> Parts {
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn finds_key_in_every_place() {
        let p = parts(http::Request::builder().header("authorization", "Bearer sk-a"));
        assert_eq!(presented_key(&p).as_deref(), Some("sk-a"));
        let p = parts(http::Request::builder().header("x-api-key", "sk-b"));
        assert_eq!(presented_key(&p).as_deref(), Some("sk-b"));
        let p = parts(http::Request::builder().header("x-goog-api-key", "sk-c"));
        assert_eq!(presented_key(&p).as_deref(), Some("sk-c"));
        let p = parts(http::Request::builder().uri("/v1beta/models?alt=sse&key=sk-d%2Dx"));
        assert_eq!(presented_key(&p).as_deref(), Some("sk-d-x"));
        let p = parts(http::Request::builder().uri("/v1/models"));
        assert_eq!(presented_key(&p), None);
        let p = parts(http::Request::builder().header("authorization", "Bearer "));
        assert_eq!(presented_key(&p), None);
    }

    #[test]
    fn another_authorization_scheme_does_not_hide_the_key() {
        let p = parts(
            http::Request::builder()
                .header("authorization", "Basic Zm9vOmJhcg==")
                .header("x-api-key", "sk-b"),
        );
        assert_eq!(presented_key(&p).as_deref(), Some("sk-b"));
        let p = parts(http::Request::builder().header("authorization", "sk-raw"));
        assert_eq!(presented_key(&p).as_deref(), Some("sk-raw"));
    }

    /// A proxy's own Bearer token beside the SDK's `x-api-key`: both are
    /// candidates, in order, each once.
    #[test]
    fn every_place_is_a_candidate_in_order() {
        let p = parts(
            http::Request::builder()
                .uri("/v1/messages?key=sk-q")
                .header("authorization", "Bearer proxy-token")
                .header("x-api-key", "sk-app")
                .header("x-goog-api-key", "sk-app"),
        );
        assert_eq!(presented_keys(&p), ["proxy-token", "sk-app", "sk-q"]);
    }
}
