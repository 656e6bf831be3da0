//! Field checks shared by the Admin API's upserts. Each error names the
//! object and field so an `apply` user can find the line to fix.

use aigw_proto::model::{MAX_SECRET, names};

use crate::error::{Error, Result};

const MAX_NAME: usize = 128;
pub const MAX_USERNAME: usize = super::throttle::MAX_USERNAME;

/// Names and model names: non-empty, short, no whitespace or control
/// characters (they appear in logs, `apply` output and trace rows).
pub fn name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what}: name must not be empty")));
    }
    if value.chars().count() > MAX_NAME {
        return Err(Error::invalid(format!(
            "{what} {:?}: name is longer than {MAX_NAME} characters",
            shorten(value)
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "{what} {value:?}: name must not contain spaces or control characters"
        )));
    }
    if let Some(c) = value.chars().find(|c| invisible(*c)) {
        return Err(Error::invalid(format!(
            "{what} {value:?}: name must not contain invisible or text-direction characters (U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Characters that show nothing, or reorder what is around them: Unicode's
/// format characters (general category Cf: zero-width spaces and joiners,
/// bidirectional controls, the BOM, ...) and the other default-ignorable
/// code points (variation selectors, fillers). In a name they make
/// `mock\u{200b}` look like `mock`, or `admins\u{202e}` read backwards.
fn invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Most model globs on one provider or client key.
pub const MAX_GLOBS: usize = 64;
/// Most entries in one provider's model map.
pub const MAX_MODEL_MAP: usize = 1024;

/// Model globs: at most `MAX_GLOBS`, each a model name that may hold `*`
/// and `?` (the data planes' own rule, `names::check_glob`).
pub fn globs(what: &str, globs: &[String]) -> Result<()> {
    if globs.len() > MAX_GLOBS {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_GLOBS} model patterns, got {}",
            globs.len()
        )));
    }
    for g in globs {
        glob(what, g)?;
    }
    Ok(())
}

/// One model glob (routes, pricing).
pub fn glob(what: &str, g: &str) -> Result<()> {
    names::check_glob(g)
        .map_err(|e| Error::invalid(format!("{what}: model pattern {:?}: {e}", shorten(g))))
}

/// One exact model name (model maps).
pub fn model(what: &str, m: &str) -> Result<()> {
    names::check_model_name(m)
        .map_err(|e| Error::invalid(format!("{what}: model {:?}: {e}", shorten(m))))
}

/// Usernames: what people type, and what logs and the audit log show.
pub fn username(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_USERNAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "user {:?}: username must be 1 to {MAX_USERNAME} letters, digits or `._@-`",
            shorten(value)
        )))
    }
}

/// An upstream secret: what an HTTP header can carry (the data planes put
/// it in one), bounded.
pub fn secret(what: &str, value: &str) -> Result<()> {
    if value.len() > MAX_SECRET || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "{what}: the secret must be at most {MAX_SECRET} visible ASCII characters, without spaces or line breaks"
        )));
    }
    Ok(())
}

/// The first characters of a long value, for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Providers' public API hosts, which serve HTTPS only.
const PUBLIC_API_HOSTS: &[&str] = &[
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    "api.deepseek.com",
    "api.mistral.ai",
    "api.groq.com",
    "api.together.xyz",
    "api.fireworks.ai",
    "openrouter.ai",
    "api.x.ai",
];

/// Google's API hosts, regional ones included (`us-central1-aiplatform…`).
const GOOGLE_APIS: &str = ".googleapis.com";

/// An optional http(s) URL with a host.
pub fn base_url(what: &str, url: &str) -> Result<()> {
    if url.is_empty() {
        return Ok(());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            // Not echoed: it may hold a secret (checked only below).
            Error::invalid(format!(
                "{what}: base_url must start with http:// or https://"
            ))
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // First, so that no message below echoes a secret: credentials belong
    // in the provider's keys (encrypted, write-only), not in a URL that is
    // stored and shown in clear. The URL is not echoed here.
    if host.contains('@') || rest.contains('?') {
        return Err(Error::invalid(format!(
            "{what}: base_url must not carry credentials or a query string; put secrets in the provider's keys"
        )));
    }
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "{what}: base_url {url:?} is not a valid URL"
        )));
    }
    // The providers' own APIs over plain HTTP (a typo for https): every
    // request would carry the pool's key in clear across the internet.
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let hostname = hostname.trim_end_matches('.').to_ascii_lowercase();
    if url.starts_with("http://")
        && (PUBLIC_API_HOSTS.contains(&hostname.as_str()) || hostname.ends_with(GOOGLE_APIS))
    {
        return Err(Error::invalid(format!(
            "{what}: base_url {url:?} would send the provider's keys in clear; use https://"
        )));
    }
    Ok(())
}

/// The highest price accepted, in USD per million tokens: far above any
/// real model's, and low enough that a request's cost cannot overflow to
/// infinity (which would be traced, and charged, as 0).
pub const MAX_PRICE: f64 = 1_000_000.0;

/// An amount of USD (a budget's cost limit): finite and not negative
/// (`-0` included: it reads as a negative number wherever it is shown).
pub fn usd(what: &str, field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v.is_sign_positive() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what}: {field} must be a non-negative number, got {v}"
        )))
    }
}

/// USD per million tokens: finite, not negative, at most [`MAX_PRICE`].
pub fn price(what: &str, field: &str, v: f64) -> Result<()> {
    usd(what, field, v)?;
    if v > MAX_PRICE {
        return Err(Error::invalid(format!(
            "{what}: {field} must be at most {MAX_PRICE} USD per million tokens, got {v}"
        )));
    }
    Ok(())
}

/// Counters stored as BIGINT.
pub fn limit(what: &str, field: &str, v: Option<u64>) -> Result<Option<i64>> {
    v.map(|n| {
        i64::try_from(n).map_err(|_| Error::invalid(format!("{what}: {field} {n} is too large")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(name("provider", "openai-main").is_ok());
        assert!(name("provider", "").is_err());
        assert!(name("provider", "a b").is_err());
        assert!(name("provider", &"x".repeat(129)).is_err());
        // Invisible and text-direction characters: a name that looks like
        // another, or reads backwards.
        for bad in [
            "mock\u{200b}",
            "admins\u{202e}",
            "\u{feff}bom",
            "a\u{2066}b",
            "soft\u{ad}hyphen",
            "vs\u{fe0f}",
            "tag\u{e0041}",
        ] {
            let e = name("provider", bad).unwrap_err().to_string();
            assert!(e.contains("invisible or text-direction"), "{e}");
        }
        assert!(name("team", "équipe-東京-ops_1.0").is_ok());
        assert!(globs("p", &["gpt-4o*".into()]).is_ok());
        assert!(globs("p", &["".into()]).is_err());
        assert!(globs("p", &vec!["a*".to_string(); MAX_GLOBS + 1]).is_err());
        assert!(globs("p", &["x".repeat(300)]).is_err());
        assert!(username("ann.lee@example").is_ok());
        assert!(username(&"a".repeat(65)).is_err());
        assert!(username("a b").is_err());
        assert!(secret("k", "sk-abc").is_ok());
        assert!(secret("k", "sk-abc\nX-Evil: 1").is_err());
        assert!(secret("k", &"a".repeat(MAX_SECRET + 1)).is_err());
        assert!(base_url("p", "").is_ok());
        assert!(base_url("p", "http://127.0.0.1:8080/v1").is_ok());
        // A provider's own API over plain HTTP: its keys would go in clear.
        for url in ["http://api.openai.com", "http://API.Anthropic.com:80/v1"] {
            let e = base_url("p", url).unwrap_err().to_string();
            assert!(e.contains("https://"), "{e}");
        }
        assert!(base_url("p", "https://api.openai.com/v1").is_ok());
        assert!(base_url("p", "http://litellm:4000").is_ok());
        let e = base_url("p", "http://us-central1-aiplatform.googleapis.com./v1").unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        // A key in the query is refused without being echoed.
        let e = base_url(
            "p",
            "http://generativelanguage.googleapis.com/v1beta?key=AIzaSECRET",
        )
        .unwrap_err()
        .to_string();
        assert!(
            !e.contains("AIzaSECRET") && e.contains("query string"),
            "{e}"
        );
        assert!(base_url("p", "ftp://x").is_err());
        assert!(base_url("p", "https://").is_err());
        assert!(base_url("p", "https://a b").is_err());
        assert!(price("m", "input", 0.0).is_ok());
        assert!(price("m", "input", -1.0).is_err());
        let e = usd("team:a", "cost_per_day", -0.0).unwrap_err().to_string();
        assert!(e.contains("non-negative"), "{e}");
        assert!(price("m", "input", f64::NAN).is_err());
        assert!(price("m", "input", MAX_PRICE).is_ok());
        assert!(price("m", "input", MAX_PRICE * 1.0001).is_err());
        assert!(price("m", "input", 1e308).is_err());
        assert!(usd("m", "cost_per_month", 1e9).is_ok());
        assert!(limit("k", "rpm", Some(u64::MAX)).is_err());
        assert_eq!(limit("k", "rpm", Some(5)).unwrap(), Some(5));
    }
}
