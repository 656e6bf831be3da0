//! Budgets, enforced before any upstream work. A request counts against
//! every budget its key belongs to: the key's own, its owner's (`user:…`)
//! and the owner's team's (`team:…`), each with any of requests per second
//! and per minute, tokens per minute and per day, cost per day and per
//! calendar month (UTC), and requests in flight.
//!
//! **No overrun.** Before forwarding, each budget *reserves* an estimate of
//! the request's tokens and cost that bounds what it can use (the prompt at
//! one token per two bytes, input it only refers to at
//! `AIGW_UNSEEN_INPUT_TOKENS` a reference, plus its `max_tokens`-style cap or
//! `AIGW_DEFAULT_MAX_OUTPUT_TOKENS`), and admits it only if what was used,
//! what is reserved by requests in flight and this estimate fit. When the
//! answer ends (streams included, and streams the app abandons) the
//! reservation is *settled* with the real usage; a failure releases it. So
//! concurrent requests can overshoot a budget only by one request's
//! estimation error, never by the number in flight. Reservations left by a
//! data plane that died expire after `RESERVATION_TTL`.
//!
//! **Where.** Without `REDIS_URL`, counters are in process. With it, one
//! Lua script per budget checks and reserves atomically in Redis, shared by
//! the data planes of a region. When Redis does not answer within
//! `AIGW_REDIS_TIMEOUT_MS`, each budget follows its `when_store_down` policy:
//! `local` (default) counts in process, `refuse` refuses the requests it
//! governs (with `aigw_ratelimit_degraded` and a log line either way).
//!
//! **Global budgets.** Tokens and cost of a global budget are limited in
//! each region by the region's lease (`Snapshot.leases`) for the period,
//! which the control plane grants out of the whole; request rates and
//! concurrency are always per region.

mod local;
mod refusals;
mod shared;

use std::sync::Arc;

use aigw_proto::model::budget::{LEASE_GRAINS, day_period, month_period, ms_to_next_month};
use aigw_proto::model::{ClientKey, Limits, Snapshot, StoreDown};

pub use local::Local;
pub use shared::{DEFAULT_TIMEOUT as DEFAULT_REDIS_TIMEOUT, Shared, SharedError};

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
/// A reservation not settled by then (its data plane died) is dropped.
pub const RESERVATION_TTL_MS: u64 = 30 * 60_000;

/// Why a request is refused: which budget, which limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    /// The limit, as the app's error message names it (`rpm`, `cost_per_day`…).
    pub limit: &'static str,
    /// The budget, for people: `key checkout`, `user alice`, `team research`.
    pub budget: String,
    /// Its id (`key:<id>`, `user:<id>`, `team:<id>`).
    pub budget_id: String,
    pub retry_after_secs: u64,
    /// The limit's value, for the `x-ratelimit-*` headers.
    pub value: f64,
    /// The request alone asks for more than the limit (its prompt and
    /// output cap): what it asks. Waiting will not help; a smaller request
    /// will.
    pub requested: Option<f64>,
}

/// The limit of `b` that `d` alone exceeds, whatever was used: such a
/// request is never admitted, and the app is told why.
fn too_large(b: &Enforced, d: Demand, now_ms: u64) -> Option<Exceeded> {
    let l = &b.limits;
    // A global budget's day and month limits are its region's lease here,
    // which grows with use: not a bound on one request.
    let leased = |v: Option<f64>| v.filter(|_| b.max_reserve.is_none());
    let checks = [
        (
            Kind::TokensPerMinute,
            l.tokens_per_minute.map(|v| v as f64),
            d.tokens as f64,
        ),
        (
            Kind::TokensPerDay,
            leased(l.tokens_per_day.map(|v| v as f64)),
            d.tokens as f64,
        ),
        (Kind::CostPerDay, leased(l.cost_per_day), d.cost),
        (Kind::CostPerMonth, leased(l.cost_per_month), d.cost),
    ];
    let (kind, limit, want) = checks
        .into_iter()
        .find_map(|(k, limit, want)| limit.filter(|l| want > l + 1e-9).map(|l| (k, l, want)))?;
    Some(Exceeded {
        limit: kind.name(),
        budget: b.name.clone(),
        budget_id: b.id.clone(),
        // Waiting does not help; the period's end is when it might.
        retry_after_secs: kind.reset_ms(now_ms).div_ceil(1000).max(1),
        value: limit,
        requested: Some(want),
    })
}

/// The kinds of limit, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Concurrent,
    Rps,
    Rpm,
    TokensPerMinute,
    TokensPerDay,
    CostPerDay,
    CostPerMonth,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Concurrent => "concurrent",
            Self::Rps => "rps",
            Self::Rpm => "rpm",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::TokensPerDay => "tokens_per_day",
            Self::CostPerDay => "cost_per_day",
            Self::CostPerMonth => "cost_per_month",
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Concurrent,
            2 => Self::Rps,
            3 => Self::Rpm,
            4 => Self::TokensPerMinute,
            5 => Self::TokensPerDay,
            6 => Self::CostPerDay,
            7 => Self::CostPerMonth,
            _ => return None,
        })
    }

    /// When a limit of this kind is free again, from `now`.
    fn reset_ms(self, now: u64) -> u64 {
        match self {
            Self::Concurrent => SECOND_MS,
            Self::Rps => SECOND_MS - now % SECOND_MS,
            Self::Rpm | Self::TokensPerMinute => MINUTE_MS - now % MINUTE_MS,
            Self::TokensPerDay | Self::CostPerDay => DAY_MS - now % DAY_MS,
            Self::CostPerMonth => ms_to_next_month(now),
        }
    }
}

/// How much of the previous minute a one-minute window ending now covers.
fn overlap(now_ms: u64) -> f64 {
    (MINUTE_MS - now_ms % MINUTE_MS) as f64 / MINUTE_MS as f64
}

/// What a refused request's window holds: for the per-minute limits, this
/// minute's use (`cur`, reservations included) and the last minute's
/// (`prev`); the other kinds reset at their boundary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub cur: f64,
    pub prev: f64,
}

/// Seconds until a limit of `kind` admits `want` more (the `Retry-After`
/// of its refusal). The per-minute limits slide: their use is this
/// minute's plus the last minute's weighted by how much of it the window
/// still covers, which falls as time passes; at the minute's end this
/// minute becomes the last. So the wait is when that sum first leaves room
/// for `want` (assuming nothing else is admitted meanwhile), not the next
/// minute's start, which is too early when this minute is full and too
/// late when only the last one was.
pub fn retry_after_secs(kind: Kind, limit: f64, w: Window, want: f64, now: u64) -> u64 {
    let ms = match kind {
        Kind::Rpm | Kind::TokensPerMinute => minute_wait_ms(limit - want, w, now),
        _ => kind.reset_ms(now),
    };
    ms.div_ceil(1000).max(1)
}

/// Milliseconds until this minute's use plus the last minute's weighted
/// share is at most `room`.
fn minute_wait_ms(room: f64, w: Window, now: u64) -> u64 {
    let minute = MINUTE_MS as f64;
    let left = (MINUTE_MS - now % MINUTE_MS) as f64;
    let wait = if w.cur <= room + 1e-9 {
        // Within this minute, once the last minute weighs little enough:
        // cur + prev * (left - t) / minute <= room.
        if w.prev <= 0.0 {
            0.0
        } else {
            left - (room - w.cur) * minute / w.prev
        }
    } else if w.cur <= 0.0 || room <= 0.0 {
        // Only a whole minute without this one's use leaves room.
        left + minute
    } else {
        // In the next minute, where this minute's use weighs
        // (minute - s) / minute: cur * (minute - s) / minute <= room.
        left + minute * (w.cur - room) / w.cur
    };
    wait.clamp(0.0, left + minute).ceil() as u64
}

/// One budget as this request meets it: its limits, with a global budget's
/// tokens and cost limited by this region's lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Enforced {
    pub id: String,
    pub name: String,
    pub limits: Limits,
    /// The most one request reserves here (a global budget: half a grain
    /// of its limit, what the control plane keeps free in the region's
    /// lease; a reservation bigger than the lease's headroom would be
    /// refused for the whole period, however little was spent). What it
    /// really uses is counted in full when it settles.
    pub max_reserve: Option<Demand>,
}

impl Enforced {
    /// What a request asking for `d` reserves in this budget.
    pub fn reserve(&self, d: Demand) -> Demand {
        match self.max_reserve {
            Some(m) => Demand {
                tokens: d.tokens.min(m.tokens),
                cost: d.cost.min(m.cost),
            },
            None => d,
        }
    }
}

/// What a request may use at most: the reservation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Demand {
    pub tokens: u64,
    pub cost: f64,
}

/// What is left of the tightest limits of one kind family, for the
/// `x-ratelimit-*` headers of an admitted request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Standing {
    pub limit: f64,
    pub remaining: f64,
    pub reset_ms: u64,
}

/// The tightest request, token and cost limits met by an admitted request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Headroom {
    pub requests: Option<Standing>,
    pub tokens: Option<Standing>,
    pub cost: Option<Standing>,
}

impl Headroom {
    fn merge(&mut self, other: Headroom) {
        fn tighter(a: &mut Option<Standing>, b: Option<Standing>) {
            if let Some(b) = b
                && a.is_none_or(|a| b.remaining < a.remaining)
            {
                *a = Some(b);
            }
        }
        tighter(&mut self.requests, other.requests);
        tighter(&mut self.tokens, other.tokens);
        tighter(&mut self.cost, other.cost);
    }
}

/// Where a budget's reservation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Local,
    Shared,
}

/// The budgets a request holds a reservation in, until it is settled.
#[derive(Debug)]
pub struct Reservation {
    request_id: String,
    demand: Demand,
    at_ms: u64,
    held: Vec<(String, Store)>,
    pub headroom: Headroom,
}

impl Reservation {
    /// A reservation that holds nothing (a key without budgets).
    pub fn none() -> Self {
        Self {
            request_id: String::new(),
            demand: Demand::default(),
            at_ms: 0,
            held: Vec::new(),
            headroom: Headroom::default(),
        }
    }
}

pub struct Limiter {
    local: Local,
    shared: Option<Shared>,
    /// What the shared store refused lately (see [`refusals`]).
    refusals: refusals::Refusals,
    region: String,
}

impl Limiter {
    /// In-process only.
    pub fn new(region: &str) -> Self {
        Self {
            local: Local::new(),
            shared: None,
            refusals: Default::default(),
            region: region.to_string(),
        }
    }

    /// Shared through Redis, each budget's policy when Redis does not
    /// answer within `timeout`.
    pub fn with_redis(
        url: &str,
        region: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, shared::SharedError> {
        Ok(Self {
            local: Local::new(),
            shared: Some(Shared::new(url, timeout)?),
            refusals: Default::default(),
            region: region.to_string(),
        })
    }

    /// The budgets `key`'s requests count against now, with leases applied.
    /// Whether one of `budgets` refuses any request now (see
    /// [`Local::precheck`]), asked in process only: asking Redis would cost
    /// every request a round trip, so budgets kept there are refused here
    /// only while a refusal Redis gave lately stands.
    pub fn precheck(&self, budgets: &[Enforced], now_ms: u64) -> Result<(), Exceeded> {
        if self.shared.is_some() {
            return budgets
                .iter()
                .try_for_each(|b| self.refusals.check(b, now_ms));
        }
        budgets
            .iter()
            .try_for_each(|b| self.local.precheck(b, now_ms))
    }

    pub fn budgets_of(&self, snap: &Snapshot, key: &ClientKey, now_ms: u64) -> Vec<Enforced> {
        let mut out = Vec::with_capacity(1 + key.budgets().len());
        // Named only when it has limits (most keys have none: no strings
        // made for them per request).
        let own = (!key.limits().is_empty()).then(|| {
            (
                format!("key:{}", key.id()),
                format!("key {}", key.name()),
                *key.limits(),
                key.global(),
            )
        });
        let others = key
            .budgets()
            .iter()
            .filter_map(|id| snap.budgets.get(id))
            .map(|b| (b.id.clone(), b.name.clone(), b.limits, b.global));
        for (id, name, mut limits, global) in own.into_iter().chain(others) {
            if limits.is_empty() {
                continue;
            }
            let mut max_reserve = None;
            if global {
                let half_grain = 2.0 * LEASE_GRAINS;
                let cost = [limits.cost_per_day, limits.cost_per_month]
                    .into_iter()
                    .flatten()
                    .map(|c| c / half_grain)
                    .fold(f64::INFINITY, f64::min);
                max_reserve = Some(Demand {
                    tokens: limits
                        .tokens_per_day
                        .map_or(u64::MAX, |t| (t as f64 / half_grain) as u64),
                    cost,
                });
                let lease = |period: String| {
                    snap.leases
                        .get(&(id.clone(), self.region.clone(), period))
                        .copied()
                        .unwrap_or_default()
                };
                // No lease for this period (the control plane has not been
                // heard): nothing may be spent here beyond what was granted.
                let day = lease(day_period(now_ms));
                if limits.tokens_per_day.is_some() {
                    limits.tokens_per_day = Some(day.tokens.unwrap_or(0));
                }
                if limits.cost_per_day.is_some() {
                    limits.cost_per_day = Some(day.cost.unwrap_or(0.0));
                }
                if limits.cost_per_month.is_some() {
                    limits.cost_per_month = Some(lease(month_period(now_ms)).cost.unwrap_or(0.0));
                }
            }
            out.push(Enforced {
                id,
                name,
                limits,
                max_reserve,
            });
        }
        out
    }

    /// Reserves `demand` in every budget, or refuses naming the first that
    /// cannot take it (and releases what was reserved in the others). With
    /// Redis, the budgets are asked at once (one round trip, not one per
    /// budget); a refusal releases whatever the others reserved meanwhile.
    pub async fn admit(
        &self,
        budgets: &[Enforced],
        request_id: &str,
        demand: Demand,
        now_ms: u64,
    ) -> Result<Reservation, Exceeded> {
        let mut r = Reservation {
            request_id: request_id.to_string(),
            demand,
            at_ms: now_ms,
            held: Vec::with_capacity(budgets.len()),
            headroom: Headroom::default(),
        };
        if let Some(e) = budgets
            .iter()
            .find_map(|b| too_large(b, b.reserve(demand), now_ms))
        {
            return Err(e);
        }
        let asked: Vec<Option<_>> = match &self.shared {
            Some(shared) => futures_util::future::join_all(
                budgets
                    .iter()
                    .map(|b| shared.admit(b, request_id, b.reserve(demand), now_ms)),
            )
            .await
            .into_iter()
            .map(Some)
            .collect(),
            None => budgets.iter().map(|_| None).collect(),
        };
        let mut refused = None;
        for (b, answer) in budgets.iter().zip(asked) {
            let outcome = match answer {
                Some(Ok(decision)) => {
                    if let Err(e) = &decision {
                        self.refusals.remember(b, e, now_ms);
                    }
                    decision.map(|h| (h, Store::Shared))
                }
                // Counted in process only while nothing was refused: a
                // refused request is released anyway.
                _ if refused.is_some() => continue,
                Some(Err(e)) => self.degraded(b, request_id, b.reserve(demand), now_ms, &e),
                None => self
                    .local
                    .admit(b, request_id, b.reserve(demand), now_ms)
                    .map(|h| (h, Store::Local)),
            };
            match outcome {
                Ok((headroom, store)) => {
                    r.headroom.merge(headroom);
                    r.held.push((b.id.clone(), store));
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        match refused {
            Some(e) => {
                self.settle(r, 0, 0.0, now_ms);
                Err(e)
            }
            None => Ok(r),
        }
    }

    /// A budget whose store did not answer follows its policy.
    fn degraded(
        &self,
        b: &Enforced,
        request_id: &str,
        demand: Demand,
        now_ms: u64,
        e: &shared::SharedError,
    ) -> Result<(Headroom, Store), Exceeded> {
        metrics::counter!("aigw_ratelimit_degraded_total", "policy" => match b.limits.when_store_down {
            StoreDown::Local => "local",
            StoreDown::Refuse => "refuse",
        })
        .increment(1);
        if !matches!(e, shared::SharedError::Backoff) {
            tracing::warn!(error = %e, "limit store unavailable; budgets follow their degraded policy for a second");
        }
        match b.limits.when_store_down {
            StoreDown::Local => self
                .local
                .admit(b, request_id, demand, now_ms)
                .map(|h| (h, Store::Local)),
            StoreDown::Refuse => Err(Exceeded {
                limit: crate::ratelimit_headers::STORE_DOWN,
                budget: b.name.clone(),
                budget_id: b.id.clone(),
                retry_after_secs: 1,
                value: 0.0,
                requested: None,
            }),
        }
    }

    /// Ends a reservation: the real usage is counted, the estimate released.
    pub fn settle(&self, r: Reservation, tokens: u64, cost: f64, now_ms: u64) {
        let cost = if cost.is_finite() && cost > 0.0 {
            cost
        } else {
            0.0
        };
        // No request has this many tokens; an upstream that says so must
        // not wrap a counter (or, past 10^14, reach Redis's Lua as a float
        // that `HINCRBY` refuses, which would charge nothing).
        let tokens = tokens.min(MAX_SETTLED_TOKENS);
        for (budget, store) in &r.held {
            match (store, &self.shared) {
                (Store::Shared, Some(shared)) => {
                    shared.settle(budget, &r.request_id, r.at_ms, tokens, cost, now_ms);
                }
                _ => self
                    .local
                    .settle(budget, &r.request_id, r.at_ms, tokens, cost, now_ms),
            }
        }
        let _ = r.demand;
    }
}

/// The minute a request's tokens count in: the one it was admitted in, so
/// a reservation and its settlement meet in one window; but a request that
/// ran longer than the window reads (this minute and the last) counts in
/// the current one, or its tokens would land where no check looks.
fn settle_minute(at_ms: u64, now: u64) -> u64 {
    let (admitted, current) = (at_ms / MINUTE_MS, now / MINUTE_MS);
    if admitted + 1 >= current {
        admitted
    } else {
        current
    }
}

use aigw_proto::trace_bounds::MAX_TOKENS as MAX_SETTLED_TOKENS;

/// A reservation held by a request, settled when it ends: the pipeline
/// settles it with the request's usage; dropped unsettled (a panic, a
/// cancelled future), it releases the estimate.
pub struct Held {
    limiter: Arc<Limiter>,
    reservation: Option<Reservation>,
}

impl Held {
    pub fn new(limiter: Arc<Limiter>, reservation: Reservation) -> Self {
        Self {
            limiter,
            reservation: Some(reservation),
        }
    }

    pub fn headroom(&self) -> Headroom {
        self.reservation
            .as_ref()
            .map(|r| r.headroom)
            .unwrap_or_default()
    }

    pub fn demand(&self) -> Demand {
        self.reservation
            .as_ref()
            .map(|r| r.demand)
            .unwrap_or_default()
    }

    pub fn settle(mut self, tokens: u64, cost: f64) {
        if let Some(r) = self.reservation.take() {
            self.limiter
                .settle(r, tokens, cost, crate::schedule::now_ms());
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(r) = self.reservation.take() {
            self.limiter.settle(r, 0, 0.0, crate::schedule::now_ms());
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("reservation", &self.reservation)
            .finish()
    }
}
