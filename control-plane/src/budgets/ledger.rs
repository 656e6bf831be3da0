//! What each client key has used, per region and UTC day, since the start
//! of the month: the control plane's view of budgets across regions, fed by
//! every trace stored for the first time (never twice: the ingest passes
//! only new rows) and loaded from the traces table at start.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};

use crate::db::traces::TraceRow;
use crate::db::{AnyConnection, now_ms};
use crate::error::Result;

const DAY_MS: i64 = 86_400_000;
/// Refusals remembered (budget, limit, region, day): a few per budget and
/// region a day in practice.
const MAX_REFUSED: usize = 4096;

/// Tokens and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Used {
    pub tokens: u64,
    pub cost: f64,
}

impl Used {
    fn add(&mut self, tokens: u64, cost: f64) {
        self.tokens = self.tokens.saturating_add(tokens);
        if cost.is_finite() && cost > 0.0 {
            self.cost += cost;
        }
    }

    /// Adds sums made by [`Used::add`] (their cost is finite or was
    /// built only of finite, positive parts).
    pub fn merge(&mut self, o: Used) {
        self.tokens = self.tokens.saturating_add(o.tokens);
        self.cost += o.cost;
    }
}

/// One region's use today and this month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionUse {
    pub region: String,
    pub today: Used,
    pub month: Used,
}

/// One key's use: (region, day since the epoch) → usage.
type KeyDays = HashMap<(String, i64), Used>;

/// Client key id → its use per region and day. Indexed by key, so what a
/// budget or a listing reads costs its own keys' entries, not the whole
/// ledger's (100,000 keys a month hold millions).
#[derive(Debug, Default)]
pub struct Ledger {
    days: Mutex<HashMap<String, KeyDays>>,
    /// (budget id, limit, region, day) of the refusals data planes
    /// reported: with reservations a budget refuses before its use reaches
    /// the limit, so a refusal is what "used up" means.
    refused: Mutex<std::collections::HashSet<(String, String, String, i64)>>,
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Text)]
    client_key_id: String,
    #[diesel(sql_type = Text)]
    region: String,
    #[diesel(sql_type = BigInt)]
    day: i64,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
    #[diesel(sql_type = Double)]
    cost: f64,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, KeyDays>> {
        self.days.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the usage since `since_ms` (the month's start) from the traces.
    pub fn load(conn: &mut AnyConnection, since_ms: i64) -> Result<Self> {
        let rows: Vec<DayRow> = diesel::sql_query(
            "SELECT client_key_id, region, started_at_ms / 86400000 AS day, \
             CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT) AS tokens, \
             CAST(COALESCE(SUM(cost), 0) AS DOUBLE PRECISION) AS cost \
             FROM traces WHERE started_at_ms >= $1 \
             GROUP BY client_key_id, region, started_at_ms / 86400000",
        )
        .bind::<BigInt, _>(since_ms)
        .load(conn)?;
        let ledger = Self::default();
        {
            let mut days = ledger.lock();
            for r in rows {
                days.entry(r.client_key_id)
                    .or_default()
                    .entry((r.region, r.day))
                    .or_default()
                    .add(u64::try_from(r.tokens).unwrap_or(0), r.cost);
            }
        }
        Ok(ledger)
    }

    /// Counts traces stored for the first time.
    pub fn add<'a>(&self, rows: impl Iterator<Item = &'a TraceRow>) {
        // Summed on borrowed keys first: a batch holds a few (key, region,
        // day) groups, so the shared map sees a few lookups and copies, not
        // two string copies per trace under its lock.
        let mut batch: HashMap<(&str, &str, i64), Used> = HashMap::new();
        for r in rows {
            let tokens = u64::try_from(r.input_tokens.saturating_add(r.output_tokens)).unwrap_or(0);
            batch
                .entry((&r.client_key_id, &r.region, r.started_at_ms / DAY_MS))
                .or_default()
                .add(tokens, r.cost);
        }
        let mut days = self.lock();
        for ((key, region, day), used) in batch {
            if !days.contains_key(key) {
                days.insert(key.to_string(), KeyDays::new());
            }
            if let Some(k) = days.get_mut(key) {
                k.entry((region.to_string(), day)).or_default().merge(used);
            }
        }
    }

    /// A data plane refused a request: `refused_by` is `<budget>/<limit>`.
    /// Only the limits budget alerts read (a used-up day or month), and at
    /// most [`MAX_REFUSED`]: when full, days before this month make room
    /// (what a node names is its own; rate refusals, the common kind, are
    /// not kept, so they cannot crowd out the ones alerts need).
    pub fn note_refused(&self, refused_by: &str, region: &str, started_at_ms: i64) {
        if let Some((budget, limit)) = refused_by.rsplit_once('/') {
            if !matches!(limit, "tokens_per_day" | "cost_per_day" | "cost_per_month") {
                return;
            }
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            if refused.len() >= MAX_REFUSED {
                let month_start = (started_at_ms / DAY_MS).saturating_sub(31);
                refused.retain(|(_, _, _, day)| *day >= month_start);
                if refused.len() >= MAX_REFUSED {
                    return;
                }
            }
            refused.insert((
                budget.into(),
                limit.into(),
                region.into(),
                started_at_ms / DAY_MS,
            ));
        }
    }

    /// Regions where `budget`'s `limit` refused a request in `from..=to`.
    pub fn refused_in(&self, budget: &str, limit: &str, from: i64, to: i64) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(b, l, _, d)| b == budget && l == limit && (from..=to).contains(d))
            .map(|(_, _, r, _)| r.clone())
            .collect()
    }

    /// Usage of `keys` per region over the days `from..=to`.
    pub fn by_region(&self, keys: &[&str], from: i64, to: i64) -> HashMap<String, Used> {
        let mut out: HashMap<String, Used> = HashMap::new();
        let days = self.lock();
        for k in keys {
            for ((region, day), used) in days.get(*k).into_iter().flatten() {
                if (from..=to).contains(day) {
                    match out.get_mut(region) {
                        Some(o) => o.merge(*used),
                        None => {
                            out.insert(region.clone(), *used);
                        }
                    }
                }
            }
        }
        out
    }

    /// The use of each of `keys` per region, today and over the days
    /// `month_from..=today` (keys without use are left out).
    pub fn per_key<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
        today: i64,
        month_from: i64,
    ) -> HashMap<String, Vec<RegionUse>> {
        let mut out: HashMap<String, Vec<RegionUse>> = HashMap::new();
        let days = self.lock();
        for key in keys {
            let Some(k) = days.get(key) else {
                continue;
            };
            let mut regions: Vec<RegionUse> = Vec::new();
            for ((region, day), used) in k {
                if !(month_from..=today).contains(day) {
                    continue;
                }
                let i = match regions.iter().position(|r| r.region == *region) {
                    Some(i) => i,
                    None => {
                        regions.push(RegionUse {
                            region: region.clone(),
                            ..RegionUse::default()
                        });
                        regions.len() - 1
                    }
                };
                regions[i].month.merge(*used);
                if *day == today {
                    regions[i].today.merge(*used);
                }
            }
            if !regions.is_empty() {
                out.insert(key.to_string(), regions);
            }
        }
        out
    }

    /// Forgets days before `from` (last month's).
    pub fn forget_before(&self, from: i64) {
        self.lock().retain(|_, k| {
            k.retain(|(_, day), _| *day >= from);
            !k.is_empty()
        });
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, _, _, day)| *day >= from);
    }
}

/// Today, as a day number.
pub fn today() -> i64 {
    now_ms() / DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_refusals_cannot_crowd_out_the_ones_alerts_read() {
        let ledger = Ledger::default();
        let now = 20_000 * DAY_MS;
        for i in 0..2 * MAX_REFUSED {
            ledger.note_refused(&format!("key:k{i}/rpm"), "eu", now);
        }
        // Old days make room when the table is full.
        for i in 0..MAX_REFUSED {
            ledger.note_refused(&format!("key:old{i}/cost_per_day"), "eu", now - 60 * DAY_MS);
        }
        ledger.note_refused("team:t1/cost_per_day", "us", now);
        let today = now / DAY_MS;
        assert_eq!(
            ledger.refused_in("team:t1", "cost_per_day", today, today),
            vec!["us".to_string()]
        );
        assert!(ledger.refused_in("key:k1", "rpm", today, today).is_empty());
    }

    #[test]
    fn per_key_reads_today_and_the_month_and_nothing_older() {
        let ledger = Ledger::default();
        let today = 20_000;
        let used = |tokens, cost| Used { tokens, cost };
        {
            let mut days = ledger.lock();
            let mut put = |k: &str, r: &str, d: i64, u: Used| {
                days.entry(k.into()).or_default().insert((r.into(), d), u);
            };
            put("k1", "eu", today, used(10, 0.5));
            put("k1", "eu", today - 3, used(5, 0.25));
            put("k1", "us", today - 1, used(7, 1.0));
            // Last month's: not counted.
            put("k1", "us", today - 40, used(1000, 99.0));
            put("k2", "eu", today - 40, used(1000, 99.0));
            put("k3", "eu", today, used(1, 1.0));
        }
        let mut got = ledger.per_key(["k1", "k2", "nope"], today, today - 10);
        assert!(
            !got.contains_key("k2") && !got.contains_key("k3"),
            "{got:?}"
        );
        assert_eq!(
            ledger.by_region(&["k1", "k3"], today, today)["eu"],
            used(11, 1.5)
        );
        ledger.forget_before(today - 10);
        assert!(ledger.lock().get("k2").is_none());
        let mut k1 = got.remove("k1").unwrap_or_default();
        k1.sort_by(|a, b| a.region.cmp(&b.region));
        assert_eq!(
            k1,
            vec![
                RegionUse {
                    region: "eu".into(),
                    today: used(10, 0.5),
                    month: used(15, 0.75),
                },
                RegionUse {
                    region: "us".into(),
                    today: Used::default(),
                    month: used(7, 1.0),
                },
            ]
        );
    }
}
