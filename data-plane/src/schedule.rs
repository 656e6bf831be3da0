//! Picks which of a provider's credentials serves the next attempt, by the
//! provider's strategy, skipping credentials that are cooling down after a
//! 429, an auth failure or a connection error. Lock-free: the request path
//! only touches atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aigw_proto::model::Strategy;
use http::{HeaderName, HeaderValue};

/// Health of one credential. Kept across snapshot swaps (matched by provider
/// and key name) so a new config does not forget a rate-limited key.
#[derive(Debug, Default)]
pub struct KeyHealth {
    cooldown_until_ms: AtomicU64,
    /// Until when its last cool-down was for the provider rejecting it
    /// (not a rate limit or a dropped connection): no point in an app
    /// retrying soon.
    rejected_until_ms: AtomicU64,
    /// Exponentially weighted latency in microseconds; 0 = no sample yet.
    ewma_latency_us: AtomicU64,
    /// Transport failures (timeouts, refused or dropped connections) since
    /// the credential last answered: each doubles the next bench.
    strikes: AtomicU32,
    /// Until when its bench is only for an attempt that failed fast (a
    /// refused or dropped connection): trying it costs an app little, so
    /// one attempt at a time may probe it (see [`Pool::probe`]).
    fast_bench_until_ms: AtomicU64,
}

/// The longest a credential is benched for failing to answer at all.
pub const MAX_TRANSPORT_COOL_DOWN_MS: u64 = 300_000;

impl KeyHealth {
    pub fn cool_down(&self, for_ms: u64) {
        self.cooldown_until_ms
            .fetch_max(now_ms() + for_ms, Ordering::Relaxed);
    }

    /// Benched because the provider rejected it (401/403, a revoked key).
    pub fn reject(&self, for_ms: u64) {
        self.cool_down(for_ms);
        self.rejected_until_ms
            .fetch_max(now_ms() + for_ms, Ordering::Relaxed);
    }

    /// Ends a bench set because the provider rejected the credential (a
    /// rate limit's bench stays: a health check does not show it over).
    pub fn forgive_rejection(&self) {
        let rejected = self.rejected_until_ms.swap(0, Ordering::Relaxed);
        if rejected > now_ms() {
            // Unless a longer bench (a rate limit's) was set since.
            let _ = self.cooldown_until_ms.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |until| (until <= rejected).then_some(0),
            );
        }
    }

    fn is_rejected(&self, now: u64) -> bool {
        self.rejected_until_ms.load(Ordering::Relaxed) > now
    }

    /// Benched after a timeout or a connection failure: `base_ms` the
    /// first time, doubled for each further one before the credential
    /// answers again, up to [`MAX_TRANSPORT_COOL_DOWN_MS`]. A credential
    /// whose requests hang costs each app that reaches it the whole
    /// timeout; a fixed short bench would keep sending apps to it.
    /// Returns the bench given.
    ///
    /// A failure while the credential is already benched is the same
    /// incident (requests that were in flight when it began, timing out
    /// together): it adds no strike and returns the bench that is left. A
    /// failed probe is the same incident too: its bench starts again at the
    /// length it had, no longer (probes come one after another, as fast as
    /// refused connections, and must not push the bench to its cap).
    /// `fast`: the attempt failed quickly (see `fast_bench_until_ms`).
    pub fn transport_failure(&self, base_ms: u64, fast: bool, probe: bool) -> u64 {
        let now = now_ms();
        let left = self.cooling_ms(now);
        if left > 0 && !probe {
            return left;
        }
        let strikes = if left > 0 {
            self.strikes.load(Ordering::Relaxed).saturating_sub(1)
        } else {
            self.strikes.fetch_add(1, Ordering::Relaxed)
        };
        let ms = base_ms
            .saturating_mul(1 << strikes.min(16))
            .min(MAX_TRANSPORT_COOL_DOWN_MS);
        // One instant for both, so a fast bench is exactly the bench.
        let until = now + ms;
        self.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        if fast {
            self.fast_bench_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        ms
    }

    /// An answer's head came back, whatever its status: the credential's
    /// host is reachable again, so a bench for failing fast ends (any other
    /// bench, a rate limit's or a timeout's, stays).
    pub fn reached(&self) {
        if self.strikes.load(Ordering::Relaxed) != 0 {
            self.strikes.store(0, Ordering::Relaxed);
            let fast = self.fast_bench_until_ms.swap(0, Ordering::Relaxed);
            let _ = self.cooldown_until_ms.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |until| (until <= fast).then_some(0),
            );
        }
    }

    /// Benched only for failing fast: a probe may try it.
    fn fails_fast_only(&self, now: u64) -> bool {
        let until = self.cooldown_until_ms.load(Ordering::Relaxed);
        until > now
            && until <= self.fast_bench_until_ms.load(Ordering::Relaxed)
            && !self.is_rejected(now)
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
    /// The header that carries the credential and its ready-made value
    /// (marked sensitive so it is never logged).
    pub auth_header: HeaderName,
    pub auth: HeaderValue,
    /// Headers sent with this key (an OAuth account's flags and ids).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub secret: String,
    /// Takes this secret out of what an upstream sends back.
    pub redactor: Arc<crate::redact::Redactor>,
    pub weight: u32,
    pub health: Arc<KeyHealth>,
    /// The control plane's health check found it unusable: skipped until
    /// this time (ms since the epoch; `u64::MAX`: until a check clears it).
    pub blocked_until_ms: u64,
    /// Blocked only because the control plane could not reach the upstream
    /// (network error, upstream down): the data plane may see it otherwise,
    /// so such a key is still tried when no other is left.
    pub blocked_for_reach: bool,
    /// For rendezvous placement under prompt-cache affinity.
    pub seed: u64,
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
    /// A probe is out (one at a time per pool, see [`Pool::probe`]).
    probing: Arc<AtomicBool>,
}

/// An attempt sent to a benched credential because none was open; while it
/// lives no other probe goes to the pool.
#[derive(Debug)]
pub struct Probe(Arc<AtomicBool>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// No credential can take the attempt now.
#[derive(Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// Until the first cooling credential is back, in seconds (at least 1).
    pub retry_after_secs: u64,
    /// None is coming back by itself: every credential left is rejected by
    /// the provider or disabled (revoked, found invalid) until an operator
    /// acts, or the pool has none.
    pub unusable: bool,
}

impl Pool {
    pub fn new(keys: Vec<PoolKey>, strategy: Strategy) -> Self {
        let total_weight = keys.iter().map(|k| u64::from(k.weight.max(1))).sum();
        Self {
            keys,
            strategy,
            cursor: AtomicU64::new(0),
            total_weight,
            probing: Arc::default(),
        }
    }

    /// When [`Pool::pick`] finds no credential open: one benched only
    /// because an attempt with it failed fast (a refused or dropped
    /// connection) may take this attempt, one probe at a time per pool, so
    /// a pool whose only host dropped a connection serves again at the next
    /// request instead of refusing apps until the bench ends. Benches for a
    /// timeout (trying costs the app the whole timeout), a rate limit or a
    /// rejection are kept, as are health checks' blocks. The soonest back
    /// goes first.
    /// Whether a probe is out now: then the pool may serve again in a
    /// moment (an app is told to retry after 1 s, not the bench's length).
    pub fn probe_out(&self) -> bool {
        self.probing.load(Ordering::Acquire)
    }

    pub fn probe(&self, tried: &[usize]) -> Option<(usize, Probe)> {
        let now = now_ms();
        let i = (0..self.keys.len())
            .filter(|i| !tried.contains(i))
            .filter(|&i| {
                let k = &self.keys[i];
                k.blocked_until_ms <= now && k.health.fails_fast_only(now)
            })
            .min_by_key(|&i| self.keys[i].health.cooling_ms(now))?;
        self.probing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some((i, Probe(self.probing.clone())))
    }

    /// Index of the credential for the next attempt, never one in `tried`.
    /// With an `affinity` hash (requests sharing a prompt cache), the same
    /// hash always gets the same usable credential (rendezvous hashing:
    /// when that one is out, the next best takes over, and it comes back
    /// when the first returns); without, the provider's strategy picks.
    pub fn pick(&self, tried: &[usize], affinity: Option<u64>) -> Result<usize, Exhausted> {
        let n = self.keys.len();
        if n == 0 {
            return Err(Exhausted {
                retry_after_secs: 60,
                unusable: true,
            });
        }
        let now = now_ms();
        let open = |i: usize| !tried.contains(&i) && self.keys[i].health.cooling_ms(now) == 0;
        // Keys the control plane could not reach stay a last resort: its
        // network is not the data plane's, and a wrong verdict there must
        // not take a whole provider offline.
        let last_resort = !(0..n).any(|i| open(i) && self.keys[i].blocked_until_ms <= now);
        let usable = |i: usize| {
            open(i)
                && (self.keys[i].blocked_until_ms <= now
                    || (last_resort && self.keys[i].blocked_for_reach))
        };
        if let Some(h) = affinity {
            if let Some(i) = (0..n)
                .filter(|&i| usable(i))
                .max_by_key(|&i| mix(h ^ self.keys[i].seed))
            {
                return Ok(i);
            }
            return Err(self.exhausted(tried, now));
        }
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
        Err(self.exhausted(tried, now))
    }

    /// When the first credential not yet tried is back (cooling down, or
    /// blocked by a health check with a retry time; a minute if none says).
    fn exhausted(&self, tried: &[usize], now: u64) -> Exhausted {
        let left = || (0..self.keys.len()).filter(|i| !tried.contains(i));
        let disabled = |k: &PoolKey| {
            (k.blocked_until_ms == u64::MAX && !k.blocked_for_reach) || k.health.is_rejected(now)
        };
        let unusable = left().all(|i| disabled(&self.keys[i]));
        let soonest = left()
            .map(|i| {
                let k = &self.keys[i];
                let blocked = match k.blocked_until_ms {
                    u64::MAX => 60_000,
                    t => t.saturating_sub(now),
                };
                k.health.cooling_ms(now).max(blocked)
            })
            .min()
            .unwrap_or(1000);
        Exhausted {
            retry_after_secs: soonest.div_ceil(1000).clamp(1, 60),
            unusable,
        }
    }
}

/// A 64-bit mixer (splitmix64's finalizer): rendezvous scores.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a: a stable 64-bit hash of bytes (the same in every data plane and
/// every build), for key seeds and affinity keys.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // Separates parts: ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
                auth_header: http::header::AUTHORIZATION,
                auth: HeaderValue::from_static("x"),
                headers: vec![],
                secret: String::new(),
                redactor: Arc::default(),
                weight: w,
                health: Arc::default(),
                blocked_until_ms: 0,
                blocked_for_reach: false,
                seed: stable_hash(&[format!("k{i}").as_bytes()]),
            })
            .collect();
        Pool::new(keys, strategy)
    }

    #[test]
    fn weighted_follows_weights() {
        let p = pool(&[3, 1], Strategy::Weighted);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[p.pick(&[], None).unwrap()] += 1;
        }
        assert_eq!(counts, [300, 100]);
    }

    #[test]
    fn round_robin_alternates_and_skips_tried() {
        let p = pool(&[1, 1, 1], Strategy::RoundRobin);
        let picks: Vec<_> = (0..3).map(|_| p.pick(&[], None).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2]);
        assert_eq!(p.pick(&[0, 1], None).unwrap(), 2);
    }

    /// A credential that keeps failing to answer is benched twice as long
    /// each time, up to the cap; one answer and it starts again from the
    /// base.
    #[test]
    fn transport_failures_double_the_bench_until_an_answer() {
        let h = KeyHealth::default();
        let benches: Vec<u64> = (0..10)
            .map(|_| {
                let ms = h.transport_failure(2_000, false, false);
                // The bench runs out before the next attempt.
                h.cooldown_until_ms.store(0, Ordering::Relaxed);
                ms
            })
            .collect();
        assert_eq!(
            benches,
            [
                2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000
            ]
        );
        h.reached();
        assert_eq!(h.transport_failure(2_000, false, false), 2_000);
        // Failures of attempts that were in flight as the bench began: the
        // same incident, no longer a bench.
        for _ in 0..20 {
            assert!(h.transport_failure(2_000, false, false) <= 2_000);
        }
        h.cooldown_until_ms.store(0, Ordering::Relaxed);
        assert_eq!(h.transport_failure(2_000, false, false), 4_000);
        // Any answer (a 500 included) shows the host is back.
        h.reached();
        h.cooldown_until_ms.store(0, Ordering::Relaxed);
        assert_eq!(h.transport_failure(2_000, false, false), 2_000);
    }

    /// With no credential open, one benched only for a fast failure takes
    /// one probe at a time; a timeout's, a rate limit's or a health check's
    /// bench is kept. An answer ends the fast bench.
    #[test]
    fn a_fast_failures_bench_is_probed_one_attempt_at_a_time() {
        let p = pool(&[1, 1], Strategy::FillFirst);
        p.keys[0].health.transport_failure(2_000, true, false);
        // Another credential is open: no probe.
        assert_eq!(p.pick(&[], None).unwrap(), 1);
        p.keys[1].health.transport_failure(2_000, false, false);
        assert!(p.pick(&[], None).is_err());
        let (i, probe) = p.probe(&[]).expect("the fast-failing one is probed");
        assert_eq!(i, 0);
        assert!(p.probe(&[]).is_none(), "one probe at a time");
        assert!(p.probe(&[0]).is_none(), "never one this request tried");
        drop(probe);
        // The probe failed fast again: benched anew at the same length (not
        // doubled per probe), still probeable.
        assert_eq!(p.keys[0].health.transport_failure(2_000, true, true), 2_000);
        assert_eq!(p.keys[0].health.transport_failure(2_000, true, true), 2_000);
        let (i, probe) = p.probe(&[]).expect("probed again");
        assert_eq!(i, 0);
        // It answered: the fast bench is over; the timeout's stays.
        p.keys[0].health.reached();
        drop(probe);
        assert_eq!(p.pick(&[], None).unwrap(), 0);
        assert!(p.keys[1].health.is_cooling(now_ms()));

        // A rate limit on top of a fast failure, a rejection, or a health
        // check's block: no probe.
        let q = pool(&[1, 1, 1], Strategy::FillFirst);
        for k in &q.keys {
            k.health.transport_failure(2_000, true, false);
        }
        q.keys[0].health.cool_down(10_000);
        q.keys[1].health.reject(1_000);
        assert_eq!(q.probe(&[]).map(|(i, _)| i), Some(2));
        let mut r = pool(&[1], Strategy::FillFirst);
        r.keys[0].blocked_until_ms = u64::MAX;
        r.keys[0].health.transport_failure(2_000, true, false);
        assert!(r.probe(&[]).is_none());
    }

    #[test]
    fn cooling_keys_are_skipped_then_exhausted() {
        let p = pool(&[1, 1], Strategy::FillFirst);
        assert_eq!(p.pick(&[], None).unwrap(), 0);
        p.keys[0].health.cool_down(5_000);
        assert_eq!(p.pick(&[], None).unwrap(), 1);
        p.keys[1].health.cool_down(2_500);
        let e = p.pick(&[], None).unwrap_err();
        assert_eq!(e.retry_after_secs, 3);
    }

    #[test]
    fn least_latency_prefers_fastest() {
        let p = pool(&[1, 1], Strategy::LeastLatency);
        p.keys[0].health.observe_latency(900);
        p.keys[1].health.observe_latency(100);
        assert_eq!(p.pick(&[], None).unwrap(), 1);
        assert_eq!(p.pick(&[1], None).unwrap(), 0);
    }

    #[test]
    fn keys_blocked_by_a_health_check_are_skipped_until_their_time() {
        let mut p = pool(&[1, 1], Strategy::FillFirst);
        p.keys[0].blocked_until_ms = u64::MAX;
        assert_eq!(p.pick(&[], None).unwrap(), 1);
        p.keys[1].blocked_until_ms = now_ms() + 3_000;
        let e = p.pick(&[], None).unwrap_err();
        assert_eq!(e.retry_after_secs, 3);
        p.keys[1].blocked_until_ms = now_ms().saturating_sub(1);
        assert_eq!(p.pick(&[], None).unwrap(), 1);
    }

    #[test]
    fn a_pool_only_rejected_or_disabled_keys_is_unusable_not_cooling() {
        let mut p = pool(&[1, 1], Strategy::FillFirst);
        p.keys[0].health.cool_down(5_000);
        p.keys[1].health.reject(60_000);
        let e = p.pick(&[], None).unwrap_err();
        assert!(!e.unusable, "one is only rate limited: it comes back");
        assert_eq!(e.retry_after_secs, 5);
        p.keys[0].blocked_until_ms = u64::MAX;
        assert!(p.pick(&[], None).unwrap_err().unusable);
        p.keys[0].blocked_for_reach = true;
        assert!(
            !p.pick(&[], None).unwrap_err().unusable,
            "unreachable from the control plane is not disabled"
        );
        assert!(
            pool(&[], Strategy::FillFirst)
                .pick(&[], None)
                .unwrap_err()
                .unusable
        );
    }

    #[test]
    fn keys_the_control_plane_could_not_reach_are_a_last_resort() {
        let mut p = pool(&[1, 1], Strategy::FillFirst);
        p.keys[0].blocked_until_ms = u64::MAX;
        p.keys[0].blocked_for_reach = true;
        assert_eq!(p.pick(&[], None).unwrap(), 1, "a good key first");
        p.keys[1].blocked_until_ms = u64::MAX;
        assert_eq!(p.pick(&[], None).unwrap(), 0, "then the unreachable one");
        assert!(p.pick(&[0], None).is_err(), "never a key found invalid");
    }

    #[test]
    fn affinity_keeps_a_cache_key_on_one_credential_and_spreads_them() {
        let p = pool(&[1, 1, 1, 1], Strategy::RoundRobin);
        let mut owner = std::collections::HashMap::new();
        let mut used = [0; 4];
        for round in 0..20 {
            for c in 0..50 {
                let h = stable_hash(&[format!("cache-{c}").as_bytes()]);
                let k = p.pick(&[], Some(h)).unwrap();
                assert_eq!(
                    *owner.entry(c).or_insert(k),
                    k,
                    "cache key {c}, round {round}"
                );
                used[k] += 1;
            }
        }
        assert!(used.iter().all(|&n| n >= 100), "{used:?}");
        // Its credential cooling down: the key moves, and comes back after.
        let h = stable_hash(&[b"cache-0"]);
        let first = owner[&0];
        p.keys[first].health.cool_down(60_000);
        let second = p.pick(&[], Some(h)).unwrap();
        assert_ne!(second, first);
        assert_eq!(p.pick(&[second], Some(h)).map(|i| i != first), Ok(true));
    }
}
