//! The `x-ratelimit-*` headers: on a refusal, the limit that refused; on a
//! success, the tightest request, token and cost limits the request met.
//! OpenAI's names for requests and tokens (`x-ratelimit-limit-requests`,
//! `-remaining-`, `-reset-` with a duration like `6m0s`), the same pattern
//! for cost in USD (`x-ratelimit-limit-cost`).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ratelimit::{Headroom, Standing};

/// The family a limit belongs to: requests, tokens or cost.
pub fn family(limit: &str) -> &'static str {
    match limit {
        "rps" | "rpm" | "concurrent" => "requests",
        "tokens_per_minute" | "tokens_per_day" => "tokens",
        _ => "cost",
    }
}

/// OpenAI's reset format: `1s`, `6m0s`, `2h3m4s`.
fn duration(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

fn number(v: f64, family: &str) -> String {
    if family == "cost" {
        format!("{v:.6}")
    } else {
        format!("{}", v.max(0.0).floor() as u64)
    }
}

fn put(h: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert(name, v);
    }
}

/// The header names as constants: built once, not parsed per answer.
fn names(family: &str) -> [HeaderName; 3] {
    match family {
        "requests" => [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ],
        "tokens" => [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ],
        _ => [
            HeaderName::from_static("x-ratelimit-limit-cost"),
            HeaderName::from_static("x-ratelimit-remaining-cost"),
            HeaderName::from_static("x-ratelimit-reset-cost"),
        ],
    }
}

fn standing(h: &mut HeaderMap, family: &str, s: Standing) {
    let [limit, remaining, reset] = names(family);
    put(h, limit, number(s.limit, family));
    put(h, remaining, number(s.remaining, family));
    put(h, reset, duration(s.reset_ms));
}

/// On an admitted request's answer.
pub fn success(h: &mut HeaderMap, headroom: &Headroom) {
    for (family, s) in [
        ("requests", headroom.requests),
        ("tokens", headroom.tokens),
        ("cost", headroom.cost),
    ] {
        if let Some(s) = s {
            standing(h, family, s);
        }
    }
}

/// On a refusal by `limit` (of value `value`), free again in `retry_after_secs`.
pub fn refused(h: &mut HeaderMap, limit: &str, value: f64, retry_after_secs: u64) {
    let family = family(limit);
    standing(
        h,
        family,
        Standing {
            limit: value,
            remaining: 0.0,
            reset_ms: retry_after_secs * 1000,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_style_values() {
        assert_eq!(duration(1), "1s");
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(7_384_000), "2h3m4s");
        let mut h = HeaderMap::new();
        refused(&mut h, "rpm", 60.0, 12);
        assert_eq!(h["x-ratelimit-limit-requests"], "60");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-reset-requests"], "12s");
        refused(&mut h, "cost_per_day", 2.5, 60);
        assert_eq!(h["x-ratelimit-limit-cost"], "2.500000");
    }
}
