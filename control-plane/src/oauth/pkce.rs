//! PKCE (RFC 7636, S256), the state that ties a redirect to the flow that
//! started it, and reading what an admin pastes back: the code alone,
//! `code#state` (Claude's callback page), or the whole redirect URL (CLI
//! clients redirect to a localhost page nobody serves).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// Longest thing an admin may paste back (a redirect URL with its query).
pub const MAX_PASTED: usize = 8192;

fn random_b64(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::internal("system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// A code verifier: 32 random bytes, base64url (43 characters of the
/// unreserved set RFC 7636 §4.1 allows).
pub fn verifier() -> Result<String> {
    random_b64(32)
}

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// A state: 32 random bytes, base64url. Stored only as its SHA-256.
pub fn state() -> Result<String> {
    random_b64(32)
}

/// What was pasted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasted {
    pub code: String,
    /// The state the redirect carried, if it carried one.
    pub state: Option<String>,
}

/// Reads a pasted code, `code#state` or redirect URL. A redirect that
/// carries an OAuth error (`?error=access_denied`) is refused with it.
pub fn parse_pasted(input: &str) -> Result<Pasted> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Error::invalid("code: paste the code or the redirect URL"));
    }
    if input.len() > MAX_PASTED || input.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "code: at most {MAX_PASTED} characters, without control characters"
        )));
    }
    if input.starts_with("http://") || input.starts_with("https://") {
        let url = url::Url::parse(input)
            .map_err(|e| Error::invalid(format!("code: not a valid redirect URL: {e}")))?;
        // Some servers answer in the fragment (response_mode=fragment).
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .chain(url::form_urlencoded::parse(
                url.fragment().unwrap_or_default().as_bytes(),
            ))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(error) = get("error") {
            let description = get("error_description").unwrap_or_default();
            return Err(Error::FailedPrecondition(format!(
                "the authorization server refused: {} {}",
                clip(&error),
                clip(&description)
            )));
        }
        let code = get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::invalid("code: the redirect URL has no code parameter"))?;
        return Ok(Pasted {
            code,
            state: get("state"),
        });
    }
    match input.split_once('#') {
        Some((code, state)) if !code.is_empty() => Ok(Pasted {
            code: code.into(),
            state: (!state.is_empty()).then(|| state.to_string()),
        }),
        Some(_) => Err(Error::invalid("code: nothing before the #")),
        None => Ok(Pasted {
            code: input.into(),
            state: None,
        }),
    }
}

/// Text from outside, cut short for a message.
pub fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_and_states_are_fresh_and_well_formed() {
        let (a, b) = (verifier().unwrap(), verifier().unwrap());
        assert_ne!(a, b);
        // RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~].
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        );
        assert_ne!(state().unwrap(), state().unwrap());
        assert_eq!(challenge(&a).len(), 43);
    }

    #[test]
    fn pasted_codes_urls_and_code_hash_state() {
        let p = |s| parse_pasted(s).unwrap();
        assert_eq!(
            p(" abc123 "),
            Pasted {
                code: "abc123".into(),
                state: None
            }
        );
        assert_eq!(
            p("abc#st8"),
            Pasted {
                code: "abc".into(),
                state: Some("st8".into())
            }
        );
        assert_eq!(
            p("http://localhost:1455/auth/callback?code=c%2F1&state=s%3D&scope=x"),
            Pasted {
                code: "c/1".into(),
                state: Some("s=".into())
            }
        );
        assert_eq!(p("https://app.test/cb#code=f&state=g").code, "f");
        let e = parse_pasted("http://localhost/cb?error=access_denied&error_description=no")
            .unwrap_err()
            .to_string();
        assert!(e.contains("access_denied"), "{e}");
        assert!(parse_pasted("http://localhost/cb?state=x").is_err());
        assert!(parse_pasted("").is_err());
        assert!(parse_pasted("#x").is_err());
        assert!(parse_pasted(&"a".repeat(MAX_PASTED + 1)).is_err());
        assert!(parse_pasted("a\nb").is_err());
    }
}
