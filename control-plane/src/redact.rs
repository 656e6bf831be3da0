//! What a remote party echoes back never carries our secrets on: an
//! upstream quoting the key it refused, a token endpoint or an identity
//! provider quoting the request (form-encoded) it was sent. Every error
//! text built from an answer to a request that carried secrets goes
//! through [`scrub`] before it reaches an admin, a log or a row.

/// `text` with every secret of `secrets` (8 bytes or more: shorter ones
/// would blot out ordinary words), as sent and as it reads form-encoded,
/// replaced by `[redacted]`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s, "[redacted]");
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        if encoded != *s {
            out = out.replace(&encoded, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn secrets_go_plain_and_form_encoded_and_short_ones_stay() {
        let text = "bad key sk-a/b+c-123 (client_secret=sk-a%2Fb%2Bc-123), code abc";
        assert_eq!(
            scrub(text, &["sk-a/b+c-123", "abc"]),
            "bad key [redacted] (client_secret=[redacted]), code abc"
        );
    }
}
