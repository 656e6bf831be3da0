//! Cursor pagination: a page token is the position of the last row served
//! (its time and id), so pages stay stable while new rows arrive.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// The requested page size, defaulted and capped.
pub fn size(requested: u32) -> i64 {
    i64::from(match requested {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    })
}

pub fn encode(at_ms: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at_ms}:{id}"))
}

/// None for an empty token (the first page).
pub fn decode(token: &str) -> Result<Option<(i64, String)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token is not one this server issued");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((at.parse().map_err(|_| bad())?, id.to_string())))
}

/// The next page's token when this page came back full.
pub fn next<T>(rows: &[T], limit: i64, key: impl Fn(&T) -> (i64, &str)) -> String {
    match rows.last() {
        Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => {
            let (at, id) = key(last);
            encode(at, id)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip_and_bad_ones_are_refused() {
        let t = encode(1_700_000_000_000, "req:with:colons");
        assert_eq!(
            decode(&t).unwrap(),
            Some((1_700_000_000_000, "req:with:colons".into()))
        );
        assert_eq!(decode("").unwrap(), None);
        assert!(decode("!!!").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("nocolon")).is_err());
        assert_eq!(size(0), 50);
        assert_eq!(size(10_000), 500);
        assert_eq!(next(&[1, 2], 2, |_| (5, "x")), encode(5, "x"));
        assert_eq!(next(&[1], 2, |_| (5, "x")), "");
    }
}
