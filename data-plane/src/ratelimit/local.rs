//! In-process budgets: the default without `REDIS_URL`, and the fallback
//! of budgets whose policy is `local` while Redis does not answer. The same
//! rules as the Lua script in `shared`, on a map.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use aigw_proto::model::budget::month_period;

use super::{
    DAY_MS, Demand, Enforced, Exceeded, Headroom, Kind, MINUTE_MS, RESERVATION_TTL_MS, SECOND_MS,
    Standing, overlap,
};

#[derive(Debug, Default)]
struct Counters {
    second: u64,
    this_second: u64,
    minute: u64,
    this_minute: Window,
    last_minute: Window,
    day: u64,
    day_tokens: u64,
    day_cost: f64,
    month: String,
    month_cost: f64,
    /// Reservations in flight: request id → (tokens, cost, expiry).
    reserved: HashMap<String, (u64, f64, u64)>,
    reserved_tokens: u64,
    reserved_cost: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    requests: u64,
    tokens: u64,
}

#[derive(Debug, Default)]
pub struct Local {
    budgets: Mutex<HashMap<String, Counters>>,
}

impl Local {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Counters>> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `b` refuses any request now, whatever it asks for (a rate
    /// or concurrency limit reached, or tokens or cost used up): asked
    /// before the body is read, so a key past its limits does not get its
    /// bodies read and parsed. Reserves nothing.
    pub fn precheck(&self, b: &Enforced, now: u64) -> Result<(), Exceeded> {
        let mut all = self.lock();
        let Some(c) = all.get_mut(&b.id) else {
            return Ok(());
        };
        roll(c, now);
        refusal(c, b, Demand::default(), now).map_or(Ok(()), Err)
    }

    /// Checks `demand` against `b` and reserves it, or says which limit stops it.
    pub fn admit(
        &self,
        b: &Enforced,
        request_id: &str,
        demand: Demand,
        now: u64,
    ) -> Result<Headroom, Exceeded> {
        let mut all = self.lock();
        let c = all.entry(b.id.clone()).or_default();
        roll(c, now);
        if let Some(e) = refusal(c, b, demand, now) {
            return Err(e);
        }
        let l = &b.limits;
        let (minute_req, minute_tok) = minute_use(c, now);
        c.this_second += 1;
        c.this_minute.requests += 1;
        c.reserved.insert(
            request_id.to_string(),
            (demand.tokens, demand.cost, now + RESERVATION_TTL_MS),
        );
        c.reserved_tokens += demand.tokens;
        c.reserved_cost += demand.cost;
        let mut h = Headroom::default();
        let standing = |slot: &mut Option<Standing>, kind: Kind, limit: Option<f64>, used: f64| {
            if let Some(limit) = limit {
                let s = Standing {
                    limit,
                    remaining: (limit - used).max(0.0),
                    reset_ms: kind.reset_ms(now),
                };
                if slot.is_none_or(|o| s.remaining < o.remaining) {
                    *slot = Some(s);
                }
            }
        };
        standing(
            &mut h.requests,
            Kind::Rps,
            l.rps.map(|v| v as f64),
            c.this_second as f64,
        );
        standing(
            &mut h.requests,
            Kind::Rpm,
            l.rpm.map(|v| v as f64),
            minute_req + 1.0,
        );
        standing(
            &mut h.tokens,
            Kind::TokensPerMinute,
            l.tokens_per_minute.map(|v| v as f64),
            minute_tok + c.reserved_tokens as f64,
        );
        standing(
            &mut h.tokens,
            Kind::TokensPerDay,
            l.tokens_per_day.map(|v| v as f64),
            (c.day_tokens + c.reserved_tokens) as f64,
        );
        standing(
            &mut h.cost,
            Kind::CostPerDay,
            l.cost_per_day,
            c.day_cost + c.reserved_cost,
        );
        standing(
            &mut h.cost,
            Kind::CostPerMonth,
            l.cost_per_month,
            c.month_cost + c.reserved_cost,
        );
        Ok(h)
    }

    /// Releases the reservation and counts the real usage.
    pub fn settle(
        &self,
        budget: &str,
        request_id: &str,
        at_ms: u64,
        tokens: u64,
        cost: f64,
        now: u64,
    ) {
        let mut all = self.lock();
        let Some(c) = all.get_mut(budget) else {
            return;
        };
        roll(c, now);
        if let Some((t, k, _)) = c.reserved.remove(request_id) {
            c.reserved_tokens = c.reserved_tokens.saturating_sub(t);
            c.reserved_cost = (c.reserved_cost - k).max(0.0);
        }
        // Tokens count in the minute the request was admitted in (or the
        // current one, for a request that outlived the window).
        let minute = super::settle_minute(at_ms, now);
        if minute == c.minute {
            c.this_minute.tokens = c.this_minute.tokens.saturating_add(tokens);
        } else if minute + 1 == c.minute {
            c.last_minute.tokens = c.last_minute.tokens.saturating_add(tokens);
        }
        c.day_tokens = c.day_tokens.saturating_add(tokens);
        c.day_cost += cost;
        c.month_cost += cost;
    }
}

/// Requests and tokens of the sliding minute: this minute's, and the last
/// one's weighted by how much of it the window still covers.
fn minute_use(c: &Counters, now: u64) -> (f64, f64) {
    let w = overlap(now);
    (
        c.last_minute.requests as f64 * w + c.this_minute.requests as f64,
        c.last_minute.tokens as f64 * w + c.this_minute.tokens as f64,
    )
}

/// The limit of `b` that stops a request asking for `demand` now, if any.
fn refusal(c: &Counters, b: &Enforced, demand: Demand, now: u64) -> Option<Exceeded> {
    let l = &b.limits;
    let est_t = demand.tokens as f64;
    let res_t = c.reserved_tokens as f64;
    let (minute_req, minute_tok) = minute_use(c, now);
    let requests = super::Window {
        cur: c.this_minute.requests as f64,
        prev: c.last_minute.requests as f64,
    };
    let tokens = super::Window {
        cur: c.this_minute.tokens as f64 + res_t,
        prev: c.last_minute.tokens as f64,
    };
    let none = super::Window::default();
    let checks: [(Kind, Option<f64>, f64, f64, super::Window); 7] = [
        (
            Kind::Concurrent,
            l.concurrent.map(|v| v as f64),
            c.reserved.len() as f64,
            1.0,
            none,
        ),
        (
            Kind::Rps,
            l.rps.map(|v| v as f64),
            c.this_second as f64,
            1.0,
            none,
        ),
        (
            Kind::Rpm,
            l.rpm.map(|v| v as f64),
            minute_req,
            1.0,
            requests,
        ),
        (
            Kind::TokensPerMinute,
            l.tokens_per_minute.map(|v| v as f64),
            minute_tok + res_t,
            est_t,
            tokens,
        ),
        (
            Kind::TokensPerDay,
            l.tokens_per_day.map(|v| v as f64),
            c.day_tokens as f64 + res_t,
            est_t,
            none,
        ),
        (
            Kind::CostPerDay,
            l.cost_per_day,
            c.day_cost + c.reserved_cost,
            demand.cost,
            none,
        ),
        (
            Kind::CostPerMonth,
            l.cost_per_month,
            c.month_cost + c.reserved_cost,
            demand.cost,
            none,
        ),
    ];
    for (kind, limit, used, want, window) in checks {
        if let Some(limit) = limit
            && used + want > limit + 1e-9
        {
            return Some(Exceeded {
                limit: kind.name(),
                budget: b.name.clone(),
                budget_id: b.id.clone(),
                retry_after_secs: super::retry_after_secs(kind, limit, window, want, now),
                value: limit,
                requested: None,
            });
        }
    }
    None
}

/// Moves the windows forward to `now`, and drops expired reservations.
fn roll(c: &mut Counters, now: u64) {
    let second = now / SECOND_MS;
    if second != c.second {
        c.second = second;
        c.this_second = 0;
    }
    let minute = now / MINUTE_MS;
    if minute != c.minute {
        c.last_minute = if minute == c.minute + 1 {
            c.this_minute
        } else {
            Window::default()
        };
        c.this_minute = Window::default();
        c.minute = minute;
    }
    let day = now / DAY_MS;
    if day != c.day {
        c.day = day;
        c.day_tokens = 0;
        c.day_cost = 0.0;
        // A month can only turn with a day (no string to build otherwise).
        let month = month_period(now);
        if month != c.month {
            c.month = month;
            c.month_cost = 0.0;
        }
    }
    if c.reserved.values().any(|(_, _, exp)| *exp <= now) {
        let mut freed = (0u64, 0f64);
        c.reserved.retain(|_, (t, k, exp)| {
            let keep = *exp > now;
            if !keep {
                freed.0 += *t;
                freed.1 += *k;
            }
            keep
        });
        c.reserved_tokens = c.reserved_tokens.saturating_sub(freed.0);
        c.reserved_cost = (c.reserved_cost - freed.1).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use aigw_proto::model::Limits;

    use super::*;

    fn budget(limits: Limits) -> Enforced {
        Enforced {
            id: "key:k1".into(),
            name: "key k".into(),
            limits,
            max_reserve: None,
        }
    }

    const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 3 * 3_600_000;

    fn demand(tokens: u64, cost: f64) -> Demand {
        Demand { tokens, cost }
    }

    #[test]
    fn rpm_is_a_sliding_window() {
        let l = Local::new();
        let b = budget(Limits {
            rpm: Some(2),
            ..Default::default()
        });
        let t = T0 + 59_000;
        let d = Demand::default();
        assert!(l.admit(&b, "r1", d, t).is_ok());
        assert!(l.admit(&b, "r2", d, t + 1).is_ok());
        let e = l.admit(&b, "r3", d, t + 2).unwrap_err();
        // This minute is full: its two requests weigh until half of the
        // next minute has passed (at t + 31 s, when r5 is admitted).
        assert_eq!((e.limit, e.retry_after_secs), ("rpm", 31));
        // Just after the minute turns, the last minute still counts almost whole.
        assert!(l.admit(&b, "r4", d, t + 2_000).is_err());
        // Half a minute later, one slot is free again.
        assert!(l.admit(&b, "r5", d, t + 31_000).is_ok());
        assert!(l.admit(&b, "r6", d, t + 31_001).is_err());
    }

    /// A refused app that waits its `Retry-After` is admitted, and one that
    /// waits a second less is not: whether this minute, the last, or both
    /// hold the use, and for requests and tokens alike.
    #[test]
    fn retry_after_is_when_the_sliding_minute_admits_again() {
        let rpm = budget(Limits {
            rpm: Some(3),
            ..Default::default()
        });
        let tpm = budget(Limits {
            tokens_per_minute: Some(300),
            ..Default::default()
        });
        let minute = T0 + 60_000;
        let mut refused = 0;
        for (b, want) in [(&rpm, 0), (&tpm, 100)] {
            for (before, now_in) in [(0, 2), (3, 0), (2, 1), (1, 2), (3, 3)] {
                for at in [0, 1_500, 20_000, 45_250, 59_999] {
                    // `before` requests late last minute, `now_in` at the
                    // start of this one (each of 100 tokens; those the
                    // limit refuses are not counted), then one at `at`.
                    let fresh = || {
                        let l = Local::new();
                        for (n, when, tag) in [(before, minute - 1, "p"), (now_in, minute, "c")] {
                            for i in 0..n {
                                let id = format!("{tag}{i}");
                                if l.admit(b, &id, demand(100, 0.0), when).is_ok() {
                                    l.settle("key:k1", &id, when, 100, 0.0, when);
                                }
                            }
                        }
                        l
                    };
                    let now = minute + at;
                    let Err(e) = fresh().admit(b, "x", demand(want, 0.0), now) else {
                        continue;
                    };
                    refused += 1;
                    let wait = e.retry_after_secs * 1000;
                    let case = format!("{} {before}+{now_in} at {at}: {wait}", e.limit);
                    let admitted = |after: u64| {
                        fresh()
                            .admit(b, "x", demand(want, 0.0), now + after)
                            .is_ok()
                    };
                    assert!(admitted(wait), "not admitted after waiting: {case}");
                    if wait > 1000 {
                        assert!(!admitted(wait - 1000), "admitted a second early: {case}");
                    }
                }
            }
        }
        assert!(refused >= 20, "only {refused} cases were refused");
    }

    #[test]
    fn reservations_stop_concurrent_requests_from_overrunning() {
        let l = Local::new();
        let b = budget(Limits {
            tokens_per_day: Some(1_000),
            ..Default::default()
        });
        // Four requests that might each use 300: only three fit at once.
        for i in 0..3 {
            assert!(l.admit(&b, &format!("r{i}"), demand(300, 0.0), T0).is_ok());
        }
        let e = l.admit(&b, "r3", demand(300, 0.0), T0).unwrap_err();
        assert_eq!(e.limit, "tokens_per_day");
        // One ends having used 50: its unused reservation is free again.
        l.settle("key:k1", "r0", T0, 50, 0.0, T0 + 1);
        assert!(l.admit(&b, "r3", demand(300, 0.0), T0 + 2).is_ok());
        // Released without use, the rest goes back too; used is kept.
        for i in 1..4 {
            l.settle("key:k1", &format!("r{i}"), T0, 0, 0.0, T0 + 3);
        }
        assert!(l.admit(&b, "r4", demand(950, 0.0), T0 + 4).is_ok());
        assert!(l.admit(&b, "r5", demand(1, 0.0), T0 + 4).is_err());
    }

    /// A request that ran for minutes (a long stream) is counted in the
    /// minute it ends in, not in one the window no longer reads.
    #[test]
    fn tokens_of_a_request_longer_than_the_window_still_count() {
        let l = Local::new();
        let b = budget(Limits {
            tokens_per_minute: Some(1_000),
            ..Default::default()
        });
        assert!(l.admit(&b, "long", demand(10, 0.0), T0).is_ok());
        let end = T0 + 5 * MINUTE_MS;
        l.settle("key:k1", "long", T0, 900, 0.0, end);
        let e = l.admit(&b, "next", demand(200, 0.0), end + 1).unwrap_err();
        assert_eq!(e.limit, "tokens_per_minute");
        assert!(l.admit(&b, "small", demand(50, 0.0), end + 2).is_ok());
    }

    #[test]
    fn concurrency_counts_requests_in_flight_and_expired_ones_leave() {
        let l = Local::new();
        let b = budget(Limits {
            concurrent: Some(2),
            ..Default::default()
        });
        let d = Demand::default();
        assert!(l.admit(&b, "a", d, T0).is_ok());
        assert!(l.admit(&b, "b", d, T0).is_ok());
        assert_eq!(l.admit(&b, "c", d, T0).unwrap_err().limit, "concurrent");
        l.settle("key:k1", "a", T0, 0, 0.0, T0 + 1);
        assert!(l.admit(&b, "c", d, T0 + 1).is_ok());
        // A data plane that never settles: its reservations expire.
        assert!(l.admit(&b, "d", d, T0 + RESERVATION_TTL_MS + 1).is_ok());
    }

    #[test]
    fn cost_per_day_and_month_and_headroom() {
        let l = Local::new();
        let b = budget(Limits {
            cost_per_day: Some(1.0),
            cost_per_month: Some(1.5),
            rpm: Some(10),
            ..Default::default()
        });
        let h = l.admit(&b, "a", demand(10, 0.4), T0).unwrap();
        let c = h.cost.unwrap();
        assert!((c.remaining - 0.6).abs() < 1e-9 && c.limit == 1.0);
        assert_eq!(h.requests.unwrap().remaining, 9.0);
        l.settle("key:k1", "a", T0, 10, 0.9, T0);
        assert_eq!(
            l.admit(&b, "b", demand(1, 0.2), T0).unwrap_err().limit,
            "cost_per_day"
        );
        // Next day: the day is fresh, the month is not.
        let e = l.admit(&b, "c", demand(1, 0.7), T0 + DAY_MS).unwrap_err();
        assert_eq!(e.limit, "cost_per_month");
        assert!(l.admit(&b, "d", demand(1, 0.5), T0 + DAY_MS).is_ok());
    }
}
