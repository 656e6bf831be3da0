//! Usage statistics and pool health, computed in Rust over the rows the
//! database returns, so both backends give the same numbers (percentiles in
//! particular, which SQLite cannot compute).

use std::collections::{BTreeMap, HashMap};

use aigw_proto::pb::admin::{PoolKeyHealth, UsagePoint, UsageSeries, UsageStats};
use serde::Deserialize;

use crate::db::traces::UsageRow;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// A 429 this recent marks a key "rate limited recently".
pub const RECENT_429_MS: i64 = 5 * 60 * 1000;

/// Running totals of one bucket or group.
#[derive(Debug, Default, Clone)]
struct Acc {
    requests: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
    cost: f64,
    latencies_us: Vec<i64>,
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Acc {
    fn add(&mut self, r: &UsageRow) {
        self.requests += 1;
        if r.status >= 400 || r.has_error {
            self.errors += 1;
        }
        self.input_tokens += unsigned(r.input_tokens);
        self.output_tokens += unsigned(r.output_tokens);
        self.cached_tokens += unsigned(r.cached_tokens);
        self.cost += r.cost;
        self.latencies_us.push(r.latency_us);
    }

    fn stats(mut self) -> UsageStats {
        self.latencies_us.sort_unstable();
        let p = |q| percentile_ms(&self.latencies_us, q);
        UsageStats {
            requests: self.requests,
            errors: self.errors,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cached_tokens: self.cached_tokens,
            cost: self.cost,
            latency_p50_ms: p(0.50),
            latency_p95_ms: p(0.95),
            latency_p99_ms: p(0.99),
        }
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds; 0 for
/// no values.
pub fn percentile_ms(sorted_us: &[i64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let n = sorted_us.len();
    // The smallest value with at least q of all values at or below it.
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted_us[rank - 1] as f64 / 1000.0
}

/// The UTC start of the bucket holding `at_ms`.
pub fn bucket_start(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms.div_euclid(bucket_ms) * bucket_ms
}

/// Overall totals and one series per group (by `group_of`; one series named
/// "" for the overview), each with its points per bucket, oldest first.
/// Series are ordered by cost, largest first, then by name.
pub fn aggregate(
    rows: &[UsageRow],
    bucket_ms: i64,
    group_of: impl Fn(&UsageRow) -> String,
) -> (UsageStats, Vec<UsageSeries>) {
    let mut total = Acc::default();
    let mut groups: HashMap<String, (Acc, BTreeMap<i64, Acc>)> = HashMap::new();
    for r in rows {
        total.add(r);
        let (acc, buckets) = groups.entry(group_of(r)).or_default();
        acc.add(r);
        buckets
            .entry(bucket_start(r.started_at_ms, bucket_ms))
            .or_default()
            .add(r);
    }
    let mut series: Vec<UsageSeries> = groups
        .into_iter()
        .map(|(group, (acc, buckets))| UsageSeries {
            group,
            totals: Some(acc.stats()),
            points: buckets
                .into_iter()
                .map(|(start, a)| UsagePoint {
                    bucket_start_ms: start,
                    stats: Some(a.stats()),
                })
                .collect(),
        })
        .collect();
    let cost = |s: &UsageSeries| s.totals.as_ref().map_or(0.0, |t| t.cost);
    series.sort_by(|a, b| {
        cost(b)
            .total_cmp(&cost(a))
            .then_with(|| a.group.cmp(&b.group))
    });
    (total.stats(), series)
}

#[derive(Deserialize)]
struct AttemptJson {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    provider_key: String,
    #[serde(default)]
    status: u32,
    #[serde(default)]
    latency_us: u64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cooldown_ms: u64,
}

/// Per (provider, key): traffic, errors and the last error and success,
/// from the attempts of traces started at the given times. Configured keys
/// without traffic are listed too.
pub fn pool_health(
    rows: &[(i64, String)],
    configured: &[(String, String)],
    now_ms: i64,
) -> Vec<PoolKeyHealth> {
    let mut keys: BTreeMap<(String, String), PoolKeyHealth> = BTreeMap::new();
    let mut latencies: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for (provider, key) in configured {
        keys.insert(
            (provider.clone(), key.clone()),
            PoolKeyHealth {
                provider: provider.clone(),
                key: key.clone(),
                configured: true,
                ..Default::default()
            },
        );
    }
    for (at, json) in rows {
        let Ok(attempts) = serde_json::from_str::<Vec<AttemptJson>>(json) else {
            continue;
        };
        // Attempts run one after the other from the trace's start.
        let mut ended_ms = *at;
        for a in attempts {
            ended_ms += i64::try_from(a.latency_us / 1000).unwrap_or(0);
            if a.provider.is_empty() || a.provider_key.is_empty() {
                continue;
            }
            let h = keys
                .entry((a.provider.clone(), a.provider_key.clone()))
                .or_insert_with(|| PoolKeyHealth {
                    provider: a.provider.clone(),
                    key: a.provider_key.clone(),
                    ..Default::default()
                });
            h.requests += 1;
            let error = a.error.filter(|e| !e.is_empty());
            if a.cooldown_ms > 0 {
                let until = ended_ms + i64::try_from(a.cooldown_ms).unwrap_or(0);
                h.cooling_until_ms = h.cooling_until_ms.max(until);
            }
            if a.status >= 400 || error.is_some() {
                h.errors += 1;
                if *at >= h.last_error_at_ms {
                    h.last_error_at_ms = *at;
                    h.last_error_status = a.status;
                    h.last_error = error.unwrap_or_else(|| format!("status {}", a.status));
                }
            } else {
                if *at > h.last_success_at_ms {
                    h.last_success_at_ms = *at;
                }
                latencies
                    .entry((a.provider.clone(), a.provider_key.clone()))
                    .or_default()
                    .push(i64::try_from(a.latency_us).unwrap_or(i64::MAX));
            }
            if a.status == 429 {
                h.rate_limited += 1;
                if *at >= now_ms - RECENT_429_MS {
                    h.rate_limited_recently = true;
                }
            }
        }
    }
    for (k, mut l) in latencies {
        if let Some(h) = keys.get_mut(&k) {
            l.sort_unstable();
            h.latency_p50_ms = percentile_ms(&l, 0.50);
            h.latency_p95_ms = percentile_ms(&l, 0.95);
        }
    }
    keys.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64, model: &str, status: i32, latency_ms: i64, cost: f64) -> UsageRow {
        UsageRow {
            started_at_ms: at,
            client_key_id: "k1".into(),
            client_key_name: "app".into(),
            provider: "mock".into(),
            model: model.into(),
            region: "eu".into(),
            status,
            has_error: false,
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 2,
            cost,
            latency_us: latency_ms * 1000,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<i64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.50), 50.0);
        assert_eq!(percentile_ms(&v, 0.95), 95.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
        assert_eq!(percentile_ms(&[1000, 2000, 3000, 4000], 0.5), 2.0);
    }

    #[test]
    fn buckets_are_utc_hours_and_days() {
        assert_eq!(bucket_start(HOUR_MS * 5 + 1, HOUR_MS), HOUR_MS * 5);
        assert_eq!(bucket_start(DAY_MS * 3 - 1, DAY_MS), DAY_MS * 2);
        assert_eq!(bucket_start(-1, HOUR_MS), -HOUR_MS);
    }

    #[test]
    fn aggregates_per_group_and_bucket() {
        let h = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
        let rows = vec![
            row(h + 1, "a", 200, 10, 1.0),
            row(h + 2, "a", 500, 30, 0.0),
            row(h + HOUR_MS, "a", 200, 20, 1.0),
            row(h + 5, "b", 200, 100, 5.0),
        ];
        let (total, series) = aggregate(&rows, HOUR_MS, |r| r.model.clone());
        assert_eq!(total.requests, 4);
        assert_eq!(total.errors, 1);
        assert_eq!(total.input_tokens, 40);
        assert_eq!(total.cost, 7.0);
        assert_eq!(total.latency_p50_ms, 20.0);
        assert_eq!(total.latency_p99_ms, 100.0);
        // Largest cost first.
        assert_eq!(series[0].group, "b");
        let a = &series[1];
        assert_eq!(a.group, "a");
        assert_eq!(a.points.len(), 2);
        assert_eq!(a.points[0].bucket_start_ms, h);
        let first = a.points[0].stats.unwrap();
        assert_eq!((first.requests, first.errors), (2, 1));
        assert_eq!(first.latency_p50_ms, 10.0);
        assert_eq!(first.latency_p95_ms, 30.0);
        assert_eq!(a.points[1].stats.unwrap().requests, 1);

        let (_, overview) = aggregate(&rows, DAY_MS, |_| String::new());
        assert_eq!(overview.len(), 1);
        assert_eq!(overview[0].points.len(), 1);
        let (empty, none) = aggregate(&[], HOUR_MS, |_| String::new());
        assert_eq!(empty.requests, 0);
        assert!(none.is_empty());
    }

    #[test]
    fn pool_health_from_attempts() {
        let now = 1_000_000_000;
        let rows = vec![
            (
                now - 1000,
                r#"[{"provider":"p","provider_key":"a","status":429,"latency_us":2000,"error":"rate limited","cooldown_ms":30000},
                   {"provider":"p","provider_key":"b","status":200,"latency_us":4000,"error":null}]"#
                    .to_string(),
            ),
            (
                now - RECENT_429_MS - 10,
                r#"[{"provider":"p","provider_key":"b","status":429,"latency_us":1}]"#.to_string(),
            ),
            (now - 500, "not json".to_string()),
        ];
        let configured = vec![
            ("p".to_string(), "a".to_string()),
            ("p".to_string(), "idle".to_string()),
        ];
        let h = pool_health(&rows, &configured, now);
        assert_eq!(h.len(), 3);
        let a = h.iter().find(|k| k.key == "a").unwrap();
        assert!(a.configured && a.rate_limited_recently);
        assert_eq!((a.requests, a.errors, a.rate_limited), (1, 1, 1));
        assert_eq!(a.last_error, "rate limited");
        assert_eq!(a.last_error_at_ms, now - 1000);
        assert_eq!(a.last_error_status, 429);
        // Cooled down for 30 s from the end of its attempt (2 ms in).
        assert_eq!(a.cooling_until_ms, now - 1000 + 2 + 30_000);
        assert_eq!(a.latency_p50_ms, 0.0);
        let b = h.iter().find(|k| k.key == "b").unwrap();
        assert!(!b.configured && !b.rate_limited_recently);
        assert_eq!((b.requests, b.errors), (2, 1));
        assert_eq!(b.last_success_at_ms, now - 1000);
        assert_eq!((b.latency_p50_ms, b.cooling_until_ms), (4.0, 0));
        assert_eq!(b.last_error, "status 429");
        let idle = h.iter().find(|k| k.key == "idle").unwrap();
        assert_eq!(idle.requests, 0);
    }
}
