//! Picks which of a provider's credentials serves the next attempt, by the
//! provider's strategy, skipping credentials that are cooling down after a
//! 429, an auth failure or a connection error. Lock-free: the request path
//! only touches atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aigw_proto::model::Strategy;
use http::HeaderValue;

/// Health of one credential. Kept across snapshot swaps (matched by provider
/// and key name) so a new config does not forget a rate-limited key.
#[derive(Debug, Default)]
pub struct KeyHealth {
    cooldown_until_ms: AtomicU64,
    /// Exponentially weighted latency in microseconds; 0 = no sample yet.
    ewma_latency_us: AtomicU64,
}

impl KeyHealth {
    pub fn cool_down(&self, for_ms: u64) {
        self.cooldown_until_ms
            .fetch_max(now_ms() + for_ms, Ordering::Relaxed);
    }

    pub fn observe_latency(&self, us: u64) {
        let old = self.ewma_latency_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 4 + us) / 5 };
        self.ewma_latency_us.store(new.max(1), Ordering::Relaxed);
    }

    /// Whether the scheduler skips this credential at `now` (epoch ms).
    pub fn is_cooling(&self, now: u64) -> bool {
        self.cooling_ms(now) > 0
    }

    fn cooling_ms(&self, now: u64) -> u64 {
        self.cooldown_until_ms
            .load(Ordering::Relaxed)
            .saturating_sub(now)
    }
}

pub struct PoolKey {
    pub name: String,
    /// The ready-made auth header value (marked sensitive so it is never logged).
    pub auth: HeaderValue,
    pub secret: String,
    pub weight: u32,
    pub health: Arc<KeyHealth>,
}

/// Never prints the secret, whoever logs a pool.
impl std::fmt::Debug for PoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolKey")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Pool {
    pub keys: Vec<PoolKey>,
    strategy: Strategy,
    cursor: AtomicU64,
    total_weight: u64,
}

/// No credential can take the attempt now.
#[derive(Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// Until the first cooling credential is back, in seconds (at least 1).
    pub retry_after_secs: u64,
}

impl Pool {
    pub fn new(keys: Vec<PoolKey>, strategy: Strategy) -> Self {
        let total_weight = keys.iter().map(|k| u64::from(k.weight.max(1))).sum();
        Self {
            keys,
            strategy,
            cursor: AtomicU64::new(0),
            total_weight,
        }
    }

    /// Index of the credential for the next attempt, never one in `tried`.
    pub fn pick(&self, tried: &[usize]) -> Result<usize, Exhausted> {
        let n = self.keys.len();
        if n == 0 {
            return Err(Exhausted {
                retry_after_secs: 60,
            });
        }
        let now = now_ms();
        let usable = |i: usize| !tried.contains(&i) && self.keys[i].health.cooling_ms(now) == 0;
        let start = match self.strategy {
            Strategy::FillFirst => 0,
            Strategy::RoundRobin => {
                (self.cursor.fetch_add(1, Ordering::Relaxed) % n as u64) as usize
            }
            Strategy::Weighted => {
                let mut ticket =
                    self.cursor.fetch_add(1, Ordering::Relaxed) % self.total_weight.max(1);
                let mut idx = 0;
                for (i, k) in self.keys.iter().enumerate() {
                    let w = u64::from(k.weight.max(1));
                    if ticket < w {
                        idx = i;
                        break;
                    }
                    ticket -= w;
                }
                idx
            }
            Strategy::LeastLatency => {
                // Unmeasured keys first (latency 0), so every key gets sampled.
                let best = (0..n)
                    .filter(|&i| usable(i))
                    .min_by_key(|&i| self.keys[i].health.ewma_latency_us.load(Ordering::Relaxed));
                if let Some(i) = best {
                    return Ok(i);
                }
                0
            }
        };
        if let Some(i) = (0..n).map(|off| (start + off) % n).find(|&i| usable(i)) {
            return Ok(i);
        }
        let soonest = (0..n)
            .filter(|i| !tried.contains(i))
            .map(|i| self.keys[i].health.cooling_ms(now))
            .min()
            .unwrap_or(1000);
        Err(Exhausted {
            retry_after_secs: soonest.div_ceil(1000).max(1),
        })
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(weights: &[u32], strategy: Strategy) -> Pool {
        let keys = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| PoolKey {
                name: format!("k{i}"),
                auth: HeaderValue::from_static("x"),
                secret: String::new(),
                weight: w,
                health: Arc::default(),
            })
            .collect();
        Pool::new(keys, strategy)
    }

    #[test]
    fn weighted_follows_weights() {
        let p = pool(&[3, 1], Strategy::Weighted);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[p.pick(&[]).unwrap()] += 1;
        }
        assert_eq!(counts, [300, 100]);
    }

    #[test]
    fn round_robin_alternates_and_skips_tried() {
        let p = pool(&[1, 1, 1], Strategy::RoundRobin);
        let picks: Vec<_> = (0..3).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2]);
        assert_eq!(p.pick(&[0, 1]).unwrap(), 2);
    }

    #[test]
    fn cooling_keys_are_skipped_then_exhausted() {
        let p = pool(&[1, 1], Strategy::FillFirst);
        assert_eq!(p.pick(&[]).unwrap(), 0);
        p.keys[0].health.cool_down(5_000);
        assert_eq!(p.pick(&[]).unwrap(), 1);
        p.keys[1].health.cool_down(2_500);
        let e = p.pick(&[]).unwrap_err();
        assert_eq!(e.retry_after_secs, 3);
    }

    #[test]
    fn least_latency_prefers_fastest() {
        let p = pool(&[1, 1], Strategy::LeastLatency);
        p.keys[0].health.observe_latency(900);
        p.keys[1].health.observe_latency(100);
        assert_eq!(p.pick(&[]).unwrap(), 1);
        assert_eq!(p.pick(&[1]).unwrap(), 0);
    }
}
