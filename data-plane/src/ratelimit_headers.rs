//! The `x-ratelimit-*` headers: on a refusal, the limit that refused; on a
//! success, the tightest request, token and cost limits the request met.
//! OpenAI's names for requests and tokens (`x-ratelimit-limit-requests`,
//! `-remaining-`, `-reset-` with a duration like `6m0s`), the same pattern
//! for cost in USD (`x-ratelimit-limit-cost`).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ratelimit::{Headroom, Standing};

/// The `limit` of a refusal made because the shared limit store did not
/// answer (a budget with `when_store_down: refuse`).
pub const STORE_DOWN: &str = "limit store";

/// The family a limit belongs to: requests, tokens or cost.
pub fn family(limit: &str) -> &'static str {
    match limit {
        "rps" | "rpm" | "concurrent" => "requests",
        "tokens_per_minute" | "tokens_per_day" => "tokens",
        _ => "cost",
    }
}

/// A header value written on the stack: these headers go on every answer
/// of a limited key, so no `format!` machinery and no `String` per value.
struct Value {
    buf: [u8; 48],
    len: usize,
}

impl Value {
    fn new() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) -> &mut Self {
        let end = (self.len + s.len()).min(self.buf.len());
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&s[..n]);
        self.len = end;
        self
    }

    fn int(&mut self, v: u64) -> &mut Self {
        self.push(itoa::Buffer::new().format(v).as_bytes())
    }

    fn put(&self, h: &mut HeaderMap, name: HeaderName) {
        if let Ok(v) = HeaderValue::from_bytes(&self.buf[..self.len]) {
            h.insert(name, v);
        }
    }
}

/// OpenAI's reset format: `1s`, `6m0s`, `2h3m4s`.
fn duration(ms: u64) -> Value {
    let s = ms.div_ceil(1000);
    let mut v = Value::new();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => v.int(s).push(b"s"),
        (0, m, s) => v.int(m).push(b"m").int(s).push(b"s"),
        (h, m, s) => v.int(h).push(b"h").int(m).push(b"m").int(s).push(b"s"),
    };
    v
}

/// Whole requests and tokens; cost in USD with six decimals.
fn number(v: f64, family: &str) -> Value {
    let mut out = Value::new();
    let v = v.max(0.0);
    if family == "cost" {
        let micros = (v * 1e6).round() as u64;
        // The fraction as six digits: one more than needed, the leading 1 dropped.
        let mut frac = itoa::Buffer::new();
        let frac = frac.format(1_000_000 + micros % 1_000_000);
        out.int(micros / 1_000_000)
            .push(b".")
            .push(&frac.as_bytes()[1..]);
    } else {
        out.int(v.floor() as u64);
    }
    out
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
    number(s.limit, family).put(h, limit);
    number(s.remaining, family).put(h, remaining);
    duration(s.reset_ms).put(h, reset);
}

/// On an admitted request's answer.
pub fn success(h: &mut HeaderMap, headroom: &Headroom) {
    h.reserve(9);
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
    // Refused because the limit store is away (`when_store_down: refuse`):
    // no limit was reached, so no limit's headers.
    if limit == STORE_DOWN {
        return;
    }
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
    fn a_refusal_for_the_store_being_away_names_no_limit() {
        let mut h = HeaderMap::new();
        refused(&mut h, STORE_DOWN, 0.0, 1);
        assert!(h.is_empty(), "{h:?}");
        refused(&mut h, "rpm", 60.0, 12);
        assert_eq!(h["x-ratelimit-limit-requests"], "60");
    }

    #[test]
    fn openai_style_values() {
        let text = |v: Value| String::from_utf8(v.buf[..v.len].to_vec()).unwrap();
        assert_eq!(text(duration(1)), "1s");
        assert_eq!(text(duration(360_000)), "6m0s");
        assert_eq!(text(duration(7_384_000)), "2h3m4s");
        assert_eq!(text(number(12.9, "tokens")), "12");
        assert_eq!(text(number(0.000_042, "cost")), "0.000042");
        assert_eq!(text(number(1_000_000_000.5, "cost")), "1000000000.500000");
        assert_eq!(text(number(-3.0, "cost")), "0.000000");
        let mut h = HeaderMap::new();
        refused(&mut h, "rpm", 60.0, 12);
        assert_eq!(h["x-ratelimit-limit-requests"], "60");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-reset-requests"], "12s");
        refused(&mut h, "cost_per_day", 2.5, 60);
        assert_eq!(h["x-ratelimit-limit-cost"], "2.500000");
    }
}
