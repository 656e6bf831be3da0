//! Per-client-key quotas from the snapshot: requests per minute, tokens and
//! cost per UTC day. Requests are admitted before any upstream work; tokens
//! and cost are counted from each finished request's trace, so a request
//! that pushes a key over its daily budget completes and the next is refused.
//!
//! The minute limit is a sliding window estimated from two fixed windows
//! (the previous minute's count weighted by how much of it still overlaps),
//! so a burst across a minute boundary cannot double the rate.
//!
//! With `REDIS_URL` the counters live in Redis and every data plane of a
//! deployment shares them; when Redis does not answer within a few
//! milliseconds the in-process counters decide (fail open: an outage of the
//! limit store must not become an outage of the gateway).

mod local;
mod shared;

use aigw_proto::model::ClientKey;

pub use local::Local;
pub use shared::Shared;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    /// Which limit, as the app's error message names it.
    pub limit: &'static str,
    pub retry_after_secs: u64,
}

pub struct Limiter {
    local: Local,
    shared: Option<Shared>,
}

impl Limiter {
    /// In-process only.
    pub fn new() -> Self {
        Self {
            local: Local::new(),
            shared: None,
        }
    }

    /// Shared through Redis, in-process when Redis does not answer.
    pub fn with_redis(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            local: Local::new(),
            shared: Some(Shared::new(url)?),
        })
    }

    pub async fn admit(&self, key: &ClientKey, now_ms: u64) -> Result<(), Exceeded> {
        if !has_limits(key) {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            match shared.admit(key, now_ms).await {
                Ok(decision) => {
                    metrics::gauge!(crate::telemetry::metrics::REDIS_DEGRADED).set(0.0);
                    return decision;
                }
                Err(e) => {
                    metrics::gauge!(crate::telemetry::metrics::REDIS_DEGRADED).set(1.0);
                    metrics::counter!("aigw_ratelimit_fallback_total").increment(1);
                    if !matches!(e, shared::SharedError::Backoff) {
                        tracing::warn!(error = %e, "rate-limit store unavailable; limiting in process for a second");
                    }
                }
            }
        }
        self.local.admit(key, now_ms)
    }

    /// Counts a finished request's tokens and cost against its key's day.
    pub fn record(&self, key_id: &str, tokens: u64, cost: f64, now_ms: u64) {
        self.local.record(key_id, tokens, cost, now_ms);
        if let Some(shared) = &self.shared {
            shared.record(key_id, tokens, cost, now_ms);
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

fn has_limits(key: &ClientKey) -> bool {
    let l = key.limits;
    l.rpm.is_some() || l.tokens_per_day.is_some() || l.cost_per_day.is_some()
}

/// How much of the previous minute a one-minute window ending now covers.
fn overlap(now_ms: u64) -> f64 {
    (MINUTE_MS - now_ms % MINUTE_MS) as f64 / MINUTE_MS as f64
}

fn secs_to_next_minute(now_ms: u64) -> u64 {
    (MINUTE_MS - now_ms % MINUTE_MS).div_ceil(1000).max(1)
}

fn secs_to_midnight(now_ms: u64) -> u64 {
    (DAY_MS - now_ms % DAY_MS).div_ceil(1000).max(1)
}
