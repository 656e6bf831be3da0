//! Timestamps and made-up ids for answers the gateway writes itself (a
//! provider that gave no id, `created` fields): one clock for every codec.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh id body: the time in nanoseconds, in hex.
pub fn fresh() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

/// `id` with the format's `prefix` (`msg_`, `resp_`, …), or a fresh one when
/// the provider gave none.
pub fn prefixed(prefix: &str, id: &str) -> String {
    if id.is_empty() {
        format!("{prefix}{}", fresh())
    } else {
        with_prefix(prefix, id)
    }
}

/// `id` with the format's `prefix`, unless it has it already.
pub fn with_prefix(prefix: &str, id: &str) -> String {
    if id.starts_with(prefix) {
        id.to_string()
    } else {
        format!("{prefix}{id}")
    }
}
