//! Field checks shared by the Admin API's upserts. Each error names the
//! object and field so an `apply` user can find the line to fix.

use crate::error::{Error, Result};

const MAX_NAME: usize = 128;

/// Names and model names: non-empty, short, no whitespace or control
/// characters (they appear in logs, `apply` output and trace rows).
pub fn name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what}: name must not be empty")));
    }
    if value.chars().count() > MAX_NAME {
        return Err(Error::invalid(format!(
            "{what} {value:?}: name is longer than {MAX_NAME} characters"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "{what} {value:?}: name must not contain spaces or control characters"
        )));
    }
    Ok(())
}

/// Model globs: each non-empty, without whitespace.
pub fn globs(what: &str, globs: &[String]) -> Result<()> {
    for g in globs {
        if g.is_empty() || g.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(format!(
                "{what}: model pattern {g:?} must be non-empty and contain no spaces"
            )));
        }
    }
    Ok(())
}

/// An optional http(s) URL with a host.
pub fn base_url(what: &str, url: &str) -> Result<()> {
    if url.is_empty() {
        return Ok(());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{what}: base_url {url:?} must start with http:// or https://"
            ))
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "{what}: base_url {url:?} is not a valid URL"
        )));
    }
    // Credentials belong in the provider's keys (encrypted, write-only), not
    // in a URL that is stored and shown in clear. The URL is not echoed here.
    if host.contains('@') || rest.contains('?') {
        return Err(Error::invalid(format!(
            "{what}: base_url must not carry credentials or a query string; put secrets in the provider's keys"
        )));
    }
    Ok(())
}

/// USD per million tokens: finite and not negative.
pub fn price(what: &str, field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what}: {field} must be a non-negative number, got {v}"
        )))
    }
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
        assert!(globs("p", &["gpt-4o*".into()]).is_ok());
        assert!(globs("p", &["".into()]).is_err());
        assert!(base_url("p", "").is_ok());
        assert!(base_url("p", "http://127.0.0.1:8080/v1").is_ok());
        assert!(base_url("p", "ftp://x").is_err());
        assert!(base_url("p", "https://").is_err());
        assert!(base_url("p", "https://a b").is_err());
        assert!(price("m", "input", 0.0).is_ok());
        assert!(price("m", "input", -1.0).is_err());
        assert!(price("m", "input", f64::NAN).is_err());
        assert!(limit("k", "rpm", Some(u64::MAX)).is_err());
        assert_eq!(limit("k", "rpm", Some(5)).unwrap(), Some(5));
    }
}
