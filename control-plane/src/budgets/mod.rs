//! Budgets across regions, run by the control plane: it keeps a ledger of
//! what every key used per region and day (from the traces), grants each
//! region its lease of every global budget (see `leases`), and sends an
//! alert when a budget crosses 50, 80 and 100 % of a limit, once per period
//! (see `alerts`). Every second; a lease change is a new snapshot. Alerts
//! are posted by a task of their own: a webhook that hangs never delays a
//! lease top-up.

mod alerts;

pub use alerts::{signature, webhook_context};
pub mod leases;
pub mod ledger;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aigw_proto::model::budget::{civil, day_period, month_period, ms_to_next_month};
use aigw_proto::pb::config as pb;

use crate::compile::Compiled;
use crate::compile::recompile_core;
use crate::crypto::MasterKey;
use crate::db::budgets::{self, LeaseRow};
use crate::db::config::load_core;
use crate::db::{Db, now_ms, write_tx};
use crate::error::Result;
use crate::outbound::Outbound;
use crate::push::{Publisher, Registry};
use aigw_proto::pb::admin::BudgetUse;
use ledger::{Ledger, RegionUse, Used};

const DAY_MS: i64 = 86_400_000;
const TICK: Duration = Duration::from_secs(1);

/// The periods leases exist for: today and tomorrow, this month and next
/// (a region cut off across midnight still has its first grain).
pub fn live_periods(now: i64) -> Vec<String> {
    let now = u64::try_from(now).unwrap_or(0);
    vec![
        day_period(now),
        day_period(now + DAY_MS as u64),
        month_period(now),
        month_period(now + ms_to_next_month(now)),
    ]
}

/// The first day (since the epoch) of the month `now` is in.
fn month_start_day(now: i64) -> i64 {
    let today = now / DAY_MS;
    let (_, _, d) = civil(u64::try_from(today).unwrap_or(0));
    today - i64::from(d) + 1
}

/// What the task needs.
pub struct Ctx {
    pub db: Db,
    pub master: MasterKey,
    pub publisher: Publisher,
    pub write_lock: Arc<Mutex<()>>,
    pub registry: Registry,
    pub http: Outbound,
}

/// A handle on the budgets' ledger, for ingest. Cheap to clone.
#[derive(Clone)]
pub struct Budgets {
    ledger: Arc<Ledger>,
}

impl Budgets {
    /// Loads this month's usage and starts the task.
    pub async fn start(ctx: Ctx) -> Result<Self> {
        let since = month_start_day(now_ms()) * DAY_MS;
        let ledger = Arc::new(ctx.db.run(move |c| Ledger::load(c, since)).await?);
        let ctx = Arc::new(ctx);
        tokio::spawn(run(ctx.clone(), ledger.clone()));
        tokio::spawn(alerts::run(ctx));
        Ok(Self { ledger })
    }

    /// A budget ledger not fed by any task (tests of other parts).
    pub fn detached() -> Self {
        Self {
            ledger: Arc::default(),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The use of `keys` today and this month, for listings (see
    /// [`UsageNow::scoped`]).
    pub fn usage_now<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> UsageNow {
        let now = now_ms();
        UsageNow(
            self.ledger
                .per_key(keys, now / DAY_MS, month_start_day(now)),
        )
    }
}

/// Each key's use per region today and this month, read once for a listing.
pub struct UsageNow(HashMap<String, Vec<RegionUse>>);

impl UsageNow {
    /// What `keys` used together, as a budget's limits count it: the whole
    /// when `global`, else each region (sorted by name), which has the whole
    /// limit to itself.
    pub fn scoped<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
        global: bool,
    ) -> Vec<BudgetUse> {
        let mut regions: BTreeMap<&str, (Used, Used)> = BTreeMap::new();
        for k in keys {
            for r in self.0.get(k).into_iter().flatten() {
                let scope = if global { "" } else { r.region.as_str() };
                let (today, month) = regions.entry(scope).or_default();
                today.merge(r.today);
                month.merge(r.month);
            }
        }
        regions
            .into_iter()
            .map(|(region, (today, month))| BudgetUse {
                region: region.to_string(),
                tokens_today: today.tokens,
                cost_today: today.cost,
                cost_this_month: month.cost,
            })
            .collect()
    }
}

/// One budget as the task sees it.
struct Subject {
    id: String,
    name: String,
    limits: pb::Limits,
    global: bool,
    keys: Vec<String>,
}

fn subjects(snap: &Compiled) -> Vec<Subject> {
    let empty = |l: &pb::Limits| {
        l.tokens_per_day.is_none() && l.cost_per_day.is_none() && l.cost_per_month.is_none()
    };
    let mut out = Vec::new();
    for k in snap.keys.iter() {
        if let Some(l) = k.limits.as_ref().filter(|l| !empty(l)) {
            out.push(Subject {
                id: format!("key:{}", k.id),
                name: format!("key {}", k.name),
                limits: l.clone(),
                global: k.global,
                keys: vec![k.id.clone()],
            });
        }
    }
    for b in &snap.core.budgets {
        if let Some(l) = b.limits.as_ref().filter(|l| !empty(l)) {
            out.push(Subject {
                id: b.id.clone(),
                name: b.name.clone(),
                limits: l.clone(),
                global: b.global,
                keys: snap
                    .keys
                    .iter()
                    .filter(|k| k.budgets.contains(&b.id))
                    .map(|k| k.id.clone())
                    .collect(),
            });
        }
    }
    out
}

async fn run(ctx: Arc<Ctx>, ledger: Arc<Ledger>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut month = month_start_day(now_ms());
    // The budgets to watch follow the keys and the users' and teams'
    // budgets, not the leases this task changes every few seconds: with
    // 100,000 keys, listing them anew each tick is worth avoiding.
    let mut cached: Option<(Arc<Compiled>, Arc<Vec<Subject>>)> = None;
    loop {
        tick.tick().await;
        let now = now_ms();
        if month_start_day(now) != month {
            month = month_start_day(now);
            ledger.forget_before(month);
        }
        let snap = ctx.publisher.current();
        let subjects = match &cached {
            Some((was, s))
                if Arc::ptr_eq(&was.keys, &snap.keys) && was.core.budgets == snap.core.budgets =>
            {
                s.clone()
            }
            _ => {
                let s = Arc::new(subjects(&snap));
                cached = Some((snap.clone(), s.clone()));
                s
            }
        };
        if let Err(e) = grant_leases(&ctx, &ledger, &subjects, now).await {
            tracing::warn!(error = %e, "budget leases not updated");
        }
        if let Err(e) = alerts::check(&ctx, &ledger, &subjects, now).await {
            tracing::warn!(error = %e, "budget alerts not checked");
        }
    }
}

/// Grows the leases of global budgets where regions need headroom; stores
/// and publishes them when any changed.
async fn grant_leases(ctx: &Ctx, ledger: &Ledger, subjects: &[Subject], now: i64) -> Result<()> {
    let global: Vec<&Subject> = subjects.iter().filter(|s| s.global).collect();
    if global.is_empty() {
        return Ok(());
    }
    let periods = live_periods(now);
    let current = ctx
        .db
        .run({
            let p = periods.clone();
            move |c| budgets::leases(c, &p)
        })
        .await?;
    let mut regions: BTreeSet<String> = ctx.registry.list().into_iter().map(|n| n.region).collect();
    regions.extend(current.iter().map(|l| l.region.clone()));
    let today = now / DAY_MS;
    let month_from = month_start_day(now);
    let mut changed: Vec<LeaseRow> = Vec::new();
    for s in global {
        let keys: Vec<&str> = s.keys.iter().map(String::as_str).collect();
        let day_used = ledger.by_region(&keys, today, today);
        let month_used = ledger.by_region(&keys, month_from, today);
        regions.extend(day_used.keys().cloned());
        let regions: Vec<String> = regions.iter().cloned().collect();
        // (period, limit, used per region, tokens or cost)
        let mut plan: Vec<(&String, f64, BTreeMap<String, f64>, bool)> = Vec::new();
        let as_map = |m: &std::collections::HashMap<String, Used>, tokens: bool| {
            m.iter()
                .map(|(r, u)| (r.clone(), if tokens { u.tokens as f64 } else { u.cost }))
                .collect::<BTreeMap<_, _>>()
        };
        if let Some(t) = s.limits.tokens_per_day {
            plan.push((&periods[0], t as f64, as_map(&day_used, true), true));
            plan.push((&periods[1], t as f64, BTreeMap::new(), true));
        }
        if let Some(c) = s.limits.cost_per_day {
            plan.push((&periods[0], c, as_map(&day_used, false), false));
            plan.push((&periods[1], c, BTreeMap::new(), false));
        }
        if let Some(c) = s.limits.cost_per_month {
            plan.push((&periods[2], c, as_map(&month_used, false), false));
            plan.push((&periods[3], c, BTreeMap::new(), false));
        }
        for (period, limit, used, tokens) in plan {
            let rows: Vec<LeaseRow> = current
                .iter()
                .chain(changed.iter())
                .filter(|l| l.budget == s.id && &l.period == period)
                .cloned()
                .collect();
            let value = |l: &LeaseRow| {
                if tokens {
                    l.tokens.map(|t| t as f64)
                } else {
                    l.cost
                }
            };
            let mut leases: BTreeMap<String, f64> = BTreeMap::new();
            for l in &rows {
                if let Some(v) = value(l) {
                    leases.insert(l.region.clone(), v);
                }
            }
            for region in leases::grow(limit, &used, &mut leases, &regions) {
                let prior = rows.iter().rev().find(|l| l.region == region).cloned();
                let mut row = prior.unwrap_or(LeaseRow {
                    budget: s.id.clone(),
                    region: region.clone(),
                    period: period.clone(),
                    tokens: None,
                    cost: None,
                    updated_at_ms: now,
                });
                if tokens {
                    row.tokens = Some(leases[&region].floor() as i64);
                } else {
                    row.cost = Some(leases[&region]);
                }
                row.updated_at_ms = now;
                changed.retain(|c| {
                    !(c.budget == row.budget && c.region == row.region && c.period == row.period)
                });
                changed.push(row);
            }
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let (master, publisher, lock) = (
        ctx.master.clone(),
        ctx.publisher.clone(),
        ctx.write_lock.clone(),
    );
    ctx.db
        .run(move |conn| {
            let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let snapshot = write_tx(conn, |conn| {
                for row in &changed {
                    budgets::put_lease(conn, row)?;
                }
                budgets::prune_leases(conn, &periods)?;
                // Leases change no client key: keep the current ones.
                recompile_core(&load_core(conn)?, &master, &publisher.current())
            })?;
            publisher.publish(snapshot);
            Ok(())
        })
        .await
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    fn region(region: &str, today: (u64, f64), month: (u64, f64)) -> RegionUse {
        RegionUse {
            region: region.into(),
            today: Used {
                tokens: today.0,
                cost: today.1,
            },
            month: Used {
                tokens: month.0,
                cost: month.1,
            },
        }
    }

    /// A global budget's use is the whole; a regional one's is each
    /// region's, summed over the budget's keys only.
    #[test]
    fn a_budget_counts_its_keys_as_its_limits_do() {
        let usage = UsageNow(HashMap::from([
            (
                "k1".to_string(),
                vec![
                    region("eu", (10, 0.5), (15, 0.75)),
                    region("us", (0, 0.0), (7, 1.0)),
                ],
            ),
            ("k2".to_string(), vec![region("eu", (1, 0.25), (1, 0.25))]),
            ("other".to_string(), vec![region("ap", (9, 9.0), (9, 9.0))]),
        ]));
        let use_of = |r: &str, t: u64, d: f64, m: f64| BudgetUse {
            region: r.into(),
            tokens_today: t,
            cost_today: d,
            cost_this_month: m,
        };
        assert_eq!(
            usage.scoped(["k1", "k2", "gone"], false),
            vec![use_of("eu", 11, 0.75, 1.0), use_of("us", 0, 0.0, 1.0)]
        );
        assert_eq!(
            usage.scoped(["k1", "k2"], true),
            vec![use_of("", 11, 0.75, 2.0)]
        );
        assert!(usage.scoped(["unused"], true).is_empty());
    }
}

#[cfg(test)]
mod tests;
