//! Timestamps and made-up ids for answers the gateway writes itself (a
//! provider that gave no id, `created` fields): one clock for every codec.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last [`fresh`] id body handed out.
static LAST: AtomicU64 = AtomicU64::new(0);

/// A fresh id body: the time in nanoseconds, in hex, and never the same
/// twice in a process (ids made for two answers within one clock tick, or
/// after the clock stepped back, would collide in an app's history, where
/// each call id must be unique).
pub fn fresh() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(nanos.max(last.wrapping_add(1)))
        })
        .unwrap_or(nanos);
    format!("{:x}", nanos.max(prev.wrapping_add(1)))
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
