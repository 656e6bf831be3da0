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

/// The fewest characters of a pool credential's secret. The data planes
/// take every secret an upstream echoes out of what apps read, and a
/// shorter one could not be told from ordinary words there (so it is not
/// searched for, and would reach apps).
pub const MIN_UPSTREAM_SECRET: usize = 8;

/// A pool credential's secret: [`secret`], and none shorter than
/// [`MIN_UPSTREAM_SECRET`] (empty stays allowed: no secret given).
pub fn upstream_secret(what: &str, value: &str) -> Result<()> {
    secret(what, value)?;
    if (1..MIN_UPSTREAM_SECRET).contains(&value.len()) {
        return Err(Error::invalid(format!(
            "{what}: the secret must be at least {MIN_UPSTREAM_SECRET} characters; a shorter one could not be kept out of what apps read when an upstream echoes it"
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

/// What is wrong with a URL, said without echoing any of it: a URL may
/// hold a secret (credentials before its host, a token in its path or
/// query: chat services' webhook URLs are secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    Scheme,
    Credentials,
    Query,
    Host,
    Port,
    Spaces,
}

impl Flaw {
    fn says(self) -> &'static str {
        match self {
            Flaw::Scheme => "must start with http:// or https://",
            Flaw::Credentials => "must not carry credentials (`user:password@` before the host)",
            Flaw::Query => "must not carry a query string",
            Flaw::Host => "has no valid host",
            Flaw::Port => "has an invalid port (after the host: a number from 1 to 65535)",
            Flaw::Spaces => "must not contain spaces or control characters",
        }
    }
}

/// The parts of an http(s) URL the checks look at.
struct HttpUrl<'a> {
    /// `http://` or `https://`.
    scheme: &'a str,
    /// `host[:port]`, as given.
    host_port: &'a str,
    /// The host without its port (an IPv6 address in its brackets).
    host: &'a str,
}

impl HttpUrl<'_> {
    /// `scheme://host[:port]`: all an error may show of a URL.
    fn origin(&self) -> String {
        format!("{}{}", self.scheme, self.host_port)
    }
}

/// Splits an http(s) URL, refusing (in this order) another scheme,
/// credentials, a query string unless `query` allows it, a missing or
/// malformed host or port, and spaces or control characters anywhere.
fn http_url(url: &str, query: bool) -> std::result::Result<HttpUrl<'_>, Flaw> {
    let scheme_len = if url.starts_with("https://") {
        8
    } else if url.starts_with("http://") {
        7
    } else {
        return Err(Flaw::Scheme);
    };
    let (scheme, rest) = url.split_at(scheme_len);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    if authority.contains('@') {
        return Err(Flaw::Credentials);
    }
    let path_and_query = after.split('#').next().unwrap_or_default();
    if !query && path_and_query.contains('?') {
        return Err(Flaw::Query);
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(Flaw::Host)?;
        let (host, port) = authority.split_at(close + 1);
        match port.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if port.is_empty() => (host, None),
            None => return Err(Flaw::Host),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(Flaw::Host);
    }
    if let Some(p) = port {
        let number = (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if !number || !(1..=65535).contains(&p.parse::<u32>().unwrap_or(0)) {
            // `https://user:pa/ss@host`: a password holding a `/` reads
            // as a host and a port; the `@` after it tells.
            return Err(if after.contains('@') {
                Flaw::Credentials
            } else {
                Flaw::Port
            });
        }
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Flaw::Spaces);
    }
    Ok(HttpUrl {
        scheme,
        host_port: authority,
        host,
    })
}

/// An optional provider `base_url`: see [`upstream_url`].
pub fn base_url(what: &str, url: &str) -> Result<()> {
    upstream_url(what, "base_url", url)
}

/// An optional upstream address (a provider's `base_url`, an OAuth
/// template's endpoints): http(s) with a host, no credentials or query
/// string (the URL is stored and shown in clear; secrets go in write-only
/// fields), and HTTPS to the providers' own APIs. An error names `field`
/// and shows at most the URL's scheme and host.
pub fn upstream_url(what: &str, field: &str, url: &str) -> Result<()> {
    if url.is_empty() {
        return Ok(());
    }
    let u = http_url(url, false).map_err(|flaw| {
        Error::invalid(match flaw {
            Flaw::Credentials | Flaw::Query => format!(
                "{what}: {field} must not carry credentials or a query string (it is stored and shown in clear); put secrets in write-only fields, such as a provider's keys"
            ),
            _ => format!("{what}: {field} {}", flaw.says()),
        })
    })?;
    // The providers' own APIs over plain HTTP (a typo for https): every
    // request would carry the pool's key in clear across the internet.
    let hostname = u.host.trim_end_matches('.').to_ascii_lowercase();
    if u.scheme == "http://"
        && (PUBLIC_API_HOSTS.contains(&hostname.as_str()) || hostname.ends_with(GOOGLE_APIS))
    {
        return Err(Error::invalid(format!(
            "{what}: {field} {:?} would send the provider's keys in clear; use https://",
            u.origin()
        )));
    }
    Ok(())
}

/// Longest webhook URL taken.
pub const MAX_WEBHOOK_URL: usize = 2048;

/// A webhook's `url` (required): http(s) with a host, no credentials, and
/// one the alerts can be posted to. Its path and query may hold the
/// receiver's token (Slack's and Discord's hook URLs are secrets; others
/// take `?token=`), so no error shows any part of it.
pub fn webhook_url(what: &str, url: &str) -> Result<()> {
    if url.is_empty() {
        return Err(Error::invalid(format!("{what}: url is required")));
    }
    if url.len() > MAX_WEBHOOK_URL {
        return Err(Error::invalid(format!(
            "{what}: url is longer than {MAX_WEBHOOK_URL} bytes"
        )));
    }
    http_url(url, true).map_err(|flaw| {
        Error::invalid(match flaw {
            Flaw::Credentials => format!(
                "{what}: url {}; receivers check an alert by its signature (the webhook's secret), or by a token in the URL's path or query",
                flaw.says()
            ),
            _ => format!("{what}: url {}", flaw.says()),
        })
    })?;
    // What the alerts are posted with (`budgets::alerts::deliver`).
    if http::Uri::try_from(url).is_err() {
        return Err(Error::invalid(format!(
            "{what}: url is not a valid URL: check its host, and percent-encode `<`, `>`, `\"` and backquotes"
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

    /// Every way a URL is refused, each holding `SECRET` where a token
    /// would be: the error names the field and shows at most the URL's
    /// scheme and host.
    const BAD_URLS: &[(&str, &str)] = &[
        (
            "ftp://hooks.example/SECRET",
            "must start with http:// or https://",
        ),
        (
            "hooks.example/SECRET",
            "must start with http:// or https://",
        ),
        ("https://ann:SECRET@hooks.example/x", "credentials"),
        // A password holding `/` reads as a host and a port.
        ("https://ann:SEC/RET@hooks.example/x", "credentials"),
        ("https:///SECRET", "has no valid host"),
        ("https://[::1/SECRET", "has no valid host"),
        ("https://hooks.example:99999/SECRET", "invalid port"),
        ("https://hooks.example:0/SECRET", "invalid port"),
        (
            "https://hooks.example/services/SECRET and more",
            "spaces or control",
        ),
        ("https://hooks.example/SECRET\n", "spaces or control"),
        ("https://hooks .example/SECRET", "spaces or control"),
    ];

    #[test]
    fn base_url_errors_show_no_more_than_scheme_and_host() {
        for (url, says) in BAD_URLS {
            let e = base_url("provider \"p\"", url).unwrap_err().to_string();
            assert!(e.starts_with("provider \"p\": base_url "), "{url}: {e}");
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("SEC") && !e.contains("ann"), "{url}: {e}");
        }
        for url in [
            "https://gw.example/v1?key=SECRET",
            "https://gw.example?SECRET",
            "https://gw.example/v1/SECRET?",
        ] {
            let e = base_url("p", url).unwrap_err().to_string();
            assert!(e.contains("query string"), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
        }
        // Plain HTTP to a provider's API: its scheme and host are shown.
        let e = base_url("p", "http://API.openai.com:80/v1/SECRET/").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p: base_url \"http://API.openai.com:80\" would send the provider's keys in clear; use https://"
        );
        for ok in [
            "http://[::1]:8080/v1",
            "https://[2001:db8::1]/v1",
            "https://gw.example:443/v1#part",
            "https://gw.example/v1/me@example",
        ] {
            assert!(base_url("p", ok).is_ok(), "{ok}");
        }
        // OAuth templates' endpoints are named by their field.
        let e = upstream_url("oauth template \"acme\"", "token_url", "ftp://x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "oauth template \"acme\": token_url must start with http:// or https://"
        );
    }

    #[test]
    fn webhook_url_errors_name_url_and_show_none_of_it() {
        let what = "webhook \"ops\"";
        for (url, says) in BAD_URLS {
            let e = webhook_url(what, url).unwrap_err().to_string();
            assert!(e.starts_with("webhook \"ops\": url "), "{url}: {e}");
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("SEC") && !e.contains("ann"), "{url}: {e}");
            assert!(
                !e.contains("hooks") && !e.contains("base_url"),
                "{url}: {e}"
            );
        }
        // What the alerts could not be posted with.
        for url in [
            "https://hooks.example/<SECRET>",
            "https://hooks.example/x?SECRET=\"1\"",
            "https://hooks.example/`SECRET`",
            "https://hooks\"example/SECRET",
        ] {
            let e = webhook_url(what, url).unwrap_err().to_string();
            assert!(
                e.starts_with("webhook \"ops\": url is not a valid URL"),
                "{url}: {e}"
            );
            assert!(!e.contains("SECRET") && !e.contains("hooks"), "{url}: {e}");
        }
        assert_eq!(
            webhook_url(what, "").unwrap_err().to_string(),
            "webhook \"ops\": url is required"
        );
        let long = format!("https://hooks.example/{}", "S".repeat(MAX_WEBHOOK_URL));
        let e = webhook_url(what, &long).unwrap_err().to_string();
        assert_eq!(e, "webhook \"ops\": url is longer than 2048 bytes");
        // A receiver's token in the query is taken, as in the path.
        for ok in [
            "https://chat.example/v1/spaces/AAA/messages?key=k-1&token=t-2",
            "https://hooks.example?token=SECRET",
            "http://10.0.0.5:8080/alerts",
            "https://hooks.slack.com/services/T0/B0/abc#x",
            "https://[::1]:9000/hook",
            // Plain HTTP to any host: the body is signed, no key goes along.
            "http://api.openai.com/hook",
        ] {
            assert!(webhook_url(what, ok).is_ok(), "{ok}");
        }
    }
}
