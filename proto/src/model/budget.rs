//! Budgets: the limits a request counts against. Every client key has its
//! own (`key:<id>`); a key's requests also count toward its owner's budget
//! (`user:<id>`) and the owner's team's (`team:<id>`). Request rates and
//! concurrency are per region; tokens and cost are per region unless the
//! budget is global, where each region draws on a lease the control plane
//! grants out of the whole (see docs/architecture.md, Budgets).

use std::collections::HashMap;

/// A global budget's lease grows a grain at a time: this many grains make
/// the limit. The control plane keeps each region's headroom (lease − used)
/// at least half a grain, so a data plane reserves at most half a grain per
/// request in a global budget: a bigger reservation might never fit.
pub const LEASE_GRAINS: f64 = 20.0;

use super::snapshot::InvalidSnapshot;
use crate::pb::config as pb;

/// What a budget allows. `None`: no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub rps: Option<u64>,
    pub rpm: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub cost_per_day: Option<f64>,
    pub cost_per_month: Option<f64>,
    pub concurrent: Option<u64>,
    /// What to do when the shared limit store does not answer.
    pub when_store_down: StoreDown,
}

/// A budget's policy while the shared limit store is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoreDown {
    /// Count in process (each data plane alone): serving goes on, the
    /// limit may be exceeded by the number of data planes at most.
    #[default]
    Local,
    /// Refuse the requests this budget governs until the store answers.
    Refuse,
}

impl Limits {
    /// No limit at all, the default policy.
    pub const NONE: Limits = Limits {
        rps: None,
        rpm: None,
        tokens_per_minute: None,
        tokens_per_day: None,
        cost_per_day: None,
        cost_per_month: None,
        concurrent: None,
        when_store_down: StoreDown::Local,
    };

    /// As the control plane sends them.
    pub fn to_pb(&self) -> pb::Limits {
        pb::Limits {
            rps: self.rps,
            rpm: self.rpm,
            tokens_per_minute: self.tokens_per_minute,
            tokens_per_day: self.tokens_per_day,
            cost_per_day: self.cost_per_day,
            cost_per_month: self.cost_per_month,
            concurrent: self.concurrent,
            when_store_down: match self.when_store_down {
                StoreDown::Local => String::new(),
                StoreDown::Refuse => "refuse".into(),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rps.is_none()
            && self.rpm.is_none()
            && self.tokens_per_minute.is_none()
            && self.tokens_per_day.is_none()
            && self.cost_per_day.is_none()
            && self.cost_per_month.is_none()
            && self.concurrent.is_none()
    }

    pub fn from_pb(owner: &str, l: Option<pb::Limits>) -> Result<Self, InvalidSnapshot> {
        let Some(l) = l else {
            return Ok(Self::default());
        };
        let cost = |field: &'static str, v: Option<f64>| match v {
            Some(c) if !(c.is_finite() && c >= 0.0) => Err(InvalidSnapshot::BadLimit {
                owner: owner.into(),
                field,
            }),
            other => Ok(other),
        };
        Ok(Self {
            rps: l.rps,
            rpm: l.rpm,
            tokens_per_minute: l.tokens_per_minute,
            tokens_per_day: l.tokens_per_day,
            cost_per_day: cost("cost_per_day", l.cost_per_day)?,
            cost_per_month: cost("cost_per_month", l.cost_per_month)?,
            concurrent: l.concurrent,
            when_store_down: match l.when_store_down.as_str() {
                "" | "local" => StoreDown::Local,
                "refuse" => StoreDown::Refuse,
                _ => {
                    return Err(InvalidSnapshot::BadLimit {
                        owner: owner.into(),
                        field: "when_store_down",
                    });
                }
            },
        })
    }
}

/// One budget as the data planes enforce it.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// `key:<id>`, `user:<id>` or `team:<id>`.
    pub id: String,
    /// For people (error messages): `key checkout`, `user alice`, `team research`.
    pub name: String,
    pub limits: Limits,
    pub global: bool,
}

/// A region's share of a global budget for one period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lease {
    pub tokens: Option<u64>,
    pub cost: Option<f64>,
}

/// Leases by (budget id, region, period).
pub type Leases = HashMap<(String, String, String), Lease>;

/// The period keys a lease names: `d:YYYYMMDD`, `mo:YYYYMM` (UTC).
pub fn day_period(now_ms: u64) -> String {
    let (y, m, d) = civil(now_ms / 86_400_000);
    format!("d:{y:04}{m:02}{d:02}")
}

pub fn month_period(now_ms: u64) -> String {
    let (y, m, _) = civil(now_ms / 86_400_000);
    format!("mo:{y:04}{m:02}")
}

/// Milliseconds from `now_ms` to the start of the next UTC month.
pub fn ms_to_next_month(now_ms: u64) -> u64 {
    let (y, m, _) = civil(now_ms / 86_400_000);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1)
        .saturating_mul(86_400_000)
        .saturating_sub(now_ms)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// civil-from-days), for the periods and month boundaries of budgets.
pub fn civil(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar() {
        // 2026-12-31T23:59:59Z and a second later.
        let t = 1_798_761_599_000;
        assert_eq!(day_period(t), "d:20261231");
        assert_eq!(month_period(t), "mo:202612");
        assert_eq!(ms_to_next_month(t), 1_000);
        assert_eq!(day_period(t + 1_000), "d:20270101");
        assert_eq!(month_period(t + 1_000), "mo:202701");
        // Leap day.
        let feb29 = days_from_civil(2028, 2, 29) * 86_400_000;
        assert_eq!(day_period(feb29), "d:20280229");
        assert_eq!(ms_to_next_month(feb29), 86_400_000);
        for d in [0u64, 59, 365, 10_957, 20_000, 30_000] {
            let (y, m, dd) = civil(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
