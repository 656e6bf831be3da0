//! The in-process limiter: the default without `REDIS_URL`, and the
//! fallback when Redis does not answer.

use std::collections::HashMap;
use std::sync::Mutex;

use aigw_proto::model::ClientKey;

use super::{DAY_MS, Exceeded, MINUTE_MS};

#[derive(Debug, Default)]
struct Counters {
    minute: u64,
    this_minute: u64,
    last_minute: u64,
    day: u64,
    tokens: u64,
    cost: f64,
}

#[derive(Debug, Default)]
pub struct Local {
    keys: Mutex<HashMap<String, Counters>>,
}

impl Local {
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits one request for `key` at `now_ms`, or says which limit stops it.
    pub fn admit(&self, key: &ClientKey, now_ms: u64) -> Result<(), Exceeded> {
        let l = key.limits;
        if !super::has_limits(key) {
            return Ok(());
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let c = keys.entry(key.id.clone()).or_default();
        roll(c, now_ms);
        let until_midnight = super::secs_to_midnight(now_ms);
        if let Some(max) = l.tokens_per_day
            && c.tokens >= max
        {
            return Err(Exceeded {
                limit: "tokens_per_day",
                retry_after_secs: until_midnight,
            });
        }
        if let Some(max) = l.cost_per_day
            && c.cost >= max
        {
            return Err(Exceeded {
                limit: "cost_per_day",
                retry_after_secs: until_midnight,
            });
        }
        if let Some(rpm) = l.rpm {
            let estimate = c.last_minute as f64 * super::overlap(now_ms) + c.this_minute as f64;
            if estimate + 1.0 > rpm as f64 {
                return Err(Exceeded {
                    limit: "rpm",
                    retry_after_secs: super::secs_to_next_minute(now_ms),
                });
            }
            c.this_minute += 1;
        }
        Ok(())
    }

    /// Counts a finished request's tokens and cost against its key's day.
    pub fn record(&self, key_id: &str, tokens: u64, cost: f64, now_ms: u64) {
        if key_id.is_empty() || (tokens == 0 && cost == 0.0) {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let c = keys.entry(key_id.to_string()).or_default();
        roll(c, now_ms);
        c.tokens = c.tokens.saturating_add(tokens);
        if cost.is_finite() && cost > 0.0 {
            c.cost += cost;
        }
    }
}

/// Moves the windows forward to `now_ms`.
fn roll(c: &mut Counters, now_ms: u64) {
    let minute = now_ms / MINUTE_MS;
    if minute != c.minute {
        c.last_minute = if minute == c.minute + 1 {
            c.this_minute
        } else {
            0
        };
        c.this_minute = 0;
        c.minute = minute;
    }
    let day = now_ms / DAY_MS;
    if day != c.day {
        c.day = day;
        c.tokens = 0;
        c.cost = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use aigw_proto::model::Limits;

    use super::*;

    fn key(limits: Limits) -> ClientKey {
        ClientKey {
            id: "k1".into(),
            name: "k".into(),
            key_hash: [0; 32],
            models: vec![],
            limits,
            expires_at_ms: None,
        }
    }

    const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 3 * 3_600_000;

    #[test]
    fn rpm_is_a_sliding_window() {
        let l = Local::new();
        let k = key(Limits {
            rpm: Some(2),
            ..Default::default()
        });
        let t = T0 + 59_000;
        assert!(l.admit(&k, t).is_ok());
        assert!(l.admit(&k, t + 1).is_ok());
        let e = l.admit(&k, t + 2).unwrap_err();
        assert_eq!(e.limit, "rpm");
        assert_eq!(e.retry_after_secs, 1);
        // Just after the minute turns, the last minute still counts almost whole.
        assert!(l.admit(&k, t + 2_000).is_err());
        // Half a minute later, one slot is free again.
        assert!(l.admit(&k, t + 31_000).is_ok());
        assert!(l.admit(&k, t + 31_001).is_err());
        // Two quiet minutes later, both are.
        assert!(l.admit(&k, t + 180_000).is_ok());
        assert!(l.admit(&k, t + 180_001).is_ok());
    }

    #[test]
    fn daily_tokens_and_cost_refuse_the_next_request_until_midnight() {
        let l = Local::new();
        let k = key(Limits {
            tokens_per_day: Some(100),
            cost_per_day: Some(1.0),
            ..Default::default()
        });
        assert!(l.admit(&k, T0).is_ok());
        l.record("k1", 150, 0.01, T0);
        let e = l.admit(&k, T0 + 1).unwrap_err();
        assert_eq!(e.limit, "tokens_per_day");
        assert_eq!(e.retry_after_secs, 21 * 3600);
        assert!(
            l.admit(&k, T0 + 21 * 3_600_000).is_ok(),
            "a new day starts afresh"
        );

        let k = key(Limits {
            cost_per_day: Some(0.5),
            ..Default::default()
        });
        l.record("k1", 1, 0.6, T0 + 21 * 3_600_000 + 5);
        assert_eq!(
            l.admit(&k, T0 + 21 * 3_600_000 + 6).unwrap_err().limit,
            "cost_per_day"
        );
    }

    #[test]
    fn keys_without_limits_are_not_tracked() {
        let l = Local::new();
        for i in 0..1000 {
            assert!(l.admit(&key(Limits::default()), T0 + i).is_ok());
        }
        assert!(l.keys.lock().unwrap().is_empty());
    }
}
