//! What a remote party echoes back never carries our secrets on: an
//! upstream quoting the key it refused, a token endpoint or an identity
//! provider quoting the request (form-encoded) it was sent. Every error
//! text built from an answer to a request that carried secrets goes
//! through [`scrub`] before it reaches an admin, a log or a row.

use aigw_proto::json_text;

/// `text` with every secret of `secrets` (8 bytes or more: shorter ones
/// would blot out ordinary words) replaced by `[redacted]`: as sent, as it
/// reads form-encoded, and as a JSON string writes it (`\/`, `\"`, and
/// `\uXXXX` escapes, which whoever reads the JSON decodes).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 8).collect();
    let mut out = text.to_string();
    for s in &secrets {
        let json = serde_json::to_string(s).unwrap_or_default();
        let json = json.get(1..json.len().saturating_sub(1)).unwrap_or(s);
        let forms = [
            s.to_string(),
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect(),
            json.to_string(),
            json.replace('/', "\\/"),
        ];
        for form in forms.iter().filter(|f| !f.is_empty()) {
            out = out.replace(form.as_str(), "[redacted]");
        }
    }
    let find = |text: &[u8], found: &mut Vec<_>| {
        for s in &secrets {
            json_text::find_all(text, s.as_bytes(), found);
        }
    };
    if let Some(b) = json_text::replace_escaped(out.as_bytes(), find, b"[redacted]") {
        out = String::from_utf8_lossy(&b).into_owned();
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

    /// Google's refresh tokens begin `1//`, which PHP-style encoders write
    /// `1\/\/`; .NET's writes `-` as `\u002d`.
    #[test]
    fn secrets_echoed_json_escaped_are_scrubbed() {
        let rt = "1//0gSECRET-refresh-token-abcdef";
        let body = r#"{"echo":{"refresh_token":"1\/\/0gSECRET-refresh-token-abcdef"}}"#;
        assert_eq!(
            scrub(body, &[rt]),
            r#"{"echo":{"refresh_token":"[redacted]"}}"#
        );
        let body = r#"{"error":"bad key sk\u002dproj\u002dSECRET01, try again"}"#;
        assert_eq!(
            scrub(body, &["sk-proj-SECRET01"]),
            r#"{"error":"bad key [redacted], try again"}"#
        );
        let quoted = r#"x"y-SECRET-with-quote"#;
        assert_eq!(
            scrub(r#"{"k":"x\"y-SECRET-with-quote"}"#, &[quoted]),
            r#"{"k":"[redacted]"}"#
        );
    }
}
