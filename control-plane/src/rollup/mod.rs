//! Usage rollups, kept at ingest so the overview reads a few thousand rows
//! whatever the number of traces. Each stored trace adds to one row per
//! span (5 minutes, an hour, 6 hours, a day) at each level: the full
//! (client key, provider, model, region) combination, used for filtered
//! overviews and members; the totals; and one dimension at a time (key,
//! provider, model, region), used for the unfiltered overview's breakdowns.
//! Rows older than their span is ever shown for are pruned.
//!
//! Rollups are written in the trace batch's transaction and only for
//! traces stored for the first time, so like the traces themselves they
//! count each request exactly once. On Postgres concurrent batches take a
//! transaction-scoped advisory lock first: rows are read, merged and
//! written back, which must not interleave.

pub mod histogram;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use diesel::RunQueryDsl as _;
use serde::Deserialize;
use tokio::sync::watch;

use self::histogram::Histogram;
use crate::db::rollups::{self, RollupKey, RollupRow};
use crate::db::traces::TraceRow;
use crate::db::{AnyConnection, now_ms};
use crate::error::Result;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The spans rows are kept at, and how long rows of each are kept: long
/// enough for the longest period shown at that span and the one before it.
pub const SPANS: [(i64, i64); 4] = [
    (5 * MINUTE_MS, 3 * HOUR_MS),
    (HOUR_MS, 3 * DAY_MS),
    (6 * HOUR_MS, 16 * DAY_MS),
    (DAY_MS, 800 * DAY_MS),
];

/// What a row is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// (client key, provider, model, region).
    Full = 0,
    Total = 1,
    Key = 2,
    Provider = 3,
    Model = 4,
    Region = 5,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Full,
        Level::Total,
        Level::Key,
        Level::Provider,
        Level::Model,
        Level::Region,
    ];
}

/// Running sums of one row.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost: f64,
    pub latency: Histogram,
    pub ttfb: Histogram,
    pub overhead: Histogram,
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Sums {
    fn add_trace(&mut self, t: &TraceRow, overhead_us: u64) {
        self.requests += 1;
        if t.status >= 400 || t.error.is_some() {
            self.errors += 1;
        }
        self.input_tokens += unsigned(t.input_tokens);
        self.output_tokens += unsigned(t.output_tokens);
        self.cached_tokens += unsigned(t.cached_tokens);
        self.reasoning_tokens += unsigned(t.reasoning_tokens);
        self.cost += t.cost;
        self.latency.record(unsigned(t.latency_us));
        if t.ttfb_us > 0 {
            self.ttfb.record(unsigned(t.ttfb_us));
        }
        self.overhead.record(overhead_us);
    }

    pub fn merge(&mut self, o: &Sums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cached_tokens += o.cached_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost += o.cost;
        self.latency.merge(&o.latency);
        self.ttfb.merge(&o.ttfb);
        self.overhead.merge(&o.overhead);
    }

    /// Adds a stored row (counters and histograms).
    pub fn add_row(&mut self, r: &RollupRow) {
        self.add_decoded(&Decoded::of(r));
    }

    /// Adds a row decoded once (the overview adds each row to several sums).
    pub fn add_decoded(&mut self, d: &Decoded<'_>) {
        self.add_counts(d.row);
        self.latency.add_pairs(&d.latency);
        self.ttfb.add_pairs(&d.ttfb);
        self.overhead.add_pairs(&d.overhead);
    }

    /// Adds a stored row's counters only (for series that show no
    /// percentiles: decoding histograms is most of a scan's cost).
    pub fn add_counts(&mut self, r: &RollupRow) {
        self.requests += unsigned(r.requests);
        self.errors += unsigned(r.errors);
        self.input_tokens += unsigned(r.input_tokens);
        self.output_tokens += unsigned(r.output_tokens);
        self.cached_tokens += unsigned(r.cached_tokens);
        self.reasoning_tokens += unsigned(r.reasoning_tokens);
        self.cost += r.cost;
    }

    fn row(&self, k: RollupKey, client_key_name: String) -> RollupRow {
        RollupRow {
            level: k.level,
            span_ms: k.span_ms,
            bucket_start_ms: k.bucket_start_ms,
            client_key_id: k.client_key_id,
            provider: k.provider,
            model: k.model,
            region: k.region,
            client_key_name,
            requests: signed(self.requests),
            errors: signed(self.errors),
            input_tokens: signed(self.input_tokens),
            output_tokens: signed(self.output_tokens),
            cached_tokens: signed(self.cached_tokens),
            reasoning_tokens: signed(self.reasoning_tokens),
            cost: self.cost,
            latency_hist: self.latency.encode(),
            ttfb_hist: self.ttfb.encode(),
            overhead_hist: self.overhead.encode(),
        }
    }
}

/// A stored row with its histograms parsed.
pub struct Decoded<'a> {
    pub row: &'a RollupRow,
    latency: histogram::Pairs,
    ttfb: histogram::Pairs,
    overhead: histogram::Pairs,
}

impl<'a> Decoded<'a> {
    pub fn of(row: &'a RollupRow) -> Self {
        Self {
            row,
            latency: Histogram::parse(&row.latency_hist),
            ttfb: Histogram::parse(&row.ttfb_hist),
            overhead: Histogram::parse(&row.overhead_hist),
        }
    }
}

#[derive(Deserialize)]
struct AttemptLatency {
    #[serde(default)]
    latency_us: u64,
}

/// The gateway's own added latency: time to the first byte sent to the app
/// (the whole latency when none was sent) not spent waiting for upstream
/// response headers.
pub fn overhead_us(t: &TraceRow) -> u64 {
    let upstream: u64 = serde_json::from_str::<Vec<AttemptLatency>>(&t.attempts)
        .map(|a| a.iter().map(|a| a.latency_us).sum())
        .unwrap_or(0);
    let first = if t.ttfb_us > 0 {
        t.ttfb_us
    } else {
        t.latency_us
    };
    unsigned(first).saturating_sub(upstream)
}

/// The UTC start of the bucket of `span_ms` holding `at_ms`.
pub fn bucket_start(at_ms: i64, span_ms: i64) -> i64 {
    at_ms.div_euclid(span_ms) * span_ms
}

/// What a group of traces is keyed by.
struct Ids<'a> {
    client_key_id: &'a str,
    provider: &'a str,
    model: &'a str,
    region: &'a str,
}

fn key(level: Level, span_ms: i64, start: i64, t: &Ids<'_>) -> RollupKey {
    let pick = |yes: bool, v: &str| if yes { v.to_string() } else { String::new() };
    let (k, p, m, r) = match level {
        Level::Full => (true, true, true, true),
        Level::Total => (false, false, false, false),
        Level::Key => (true, false, false, false),
        Level::Provider => (false, true, false, false),
        Level::Model => (false, false, true, false),
        Level::Region => (false, false, false, true),
    };
    RollupKey {
        level: level as i32,
        span_ms,
        bucket_start_ms: start,
        client_key_id: pick(k, t.client_key_id),
        provider: pick(p, t.provider),
        model: pick(m, t.model),
        region: pick(r, t.region),
    }
}

/// Adds `traces` (stored for the first time, in the caller's write
/// transaction) to their rollup rows.
pub fn record<'a>(
    conn: &mut AnyConnection,
    traces: impl IntoIterator<Item = &'a TraceRow>,
) -> Result<()> {
    // First the batch's traces are summed per (key, provider, model,
    // region) and finest bucket, on borrowed strings; only those groups
    // (a handful per batch, whatever its size) are then spread over every
    // span and level. Every span is a whole number of the finest one, so
    // the finest bucket says which bucket of each span a trace is in.
    type Group<'t> = (&'t str, &'t str, &'t str, &'t str, i64);
    let finest = SPANS[0].0;
    let mut index: HashMap<Group<'a>, usize> = HashMap::new();
    let mut groups: Vec<(Group<'a>, &'a str, Sums)> = Vec::new();
    for t in traces {
        let g = (
            t.client_key_id.as_str(),
            t.provider.as_str(),
            t.model.as_str(),
            t.region.as_str(),
            bucket_start(t.started_at_ms, finest),
        );
        let i = *index.entry(g).or_insert_with(|| {
            groups.push((g, "", Sums::default()));
            groups.len() - 1
        });
        let (_, name, sums) = &mut groups[i];
        *name = &t.client_key_name;
        sums.add_trace(t, overhead_us(t));
    }
    let mut delta: BTreeMap<RollupKey, (String, Sums)> = BTreeMap::new();
    for ((key_id, provider, model, region, start), name, sums) in &groups {
        let ids = Ids {
            client_key_id: key_id,
            provider,
            model,
            region,
        };
        for (span, _) in SPANS {
            let start = bucket_start(*start, span);
            for level in Level::ALL {
                let e = delta
                    .entry(key(level, span, start, &ids))
                    .or_insert_with(|| (String::new(), Sums::default()));
                if matches!(level, Level::Full | Level::Key) {
                    (*name).clone_into(&mut e.0);
                }
                e.1.merge(sums);
            }
        }
    }
    if delta.is_empty() {
        return Ok(());
    }
    if let AnyConnection::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7253711)").execute(c)?;
    }
    // One read for every bucket the batch touches (at any level and span;
    // rows the batch does not touch are ignored), one multi-row upsert for
    // all: a batch costs a few statements whatever the number of keys,
    // models and regions in it, and the lock above is held that much less.
    let mut starts: Vec<i64> = delta.keys().map(|k| k.bucket_start_ms).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut stored: HashMap<RollupKey, RollupRow> = HashMap::new();
    let levels = Level::ALL.map(|l| l as i32);
    let spans = SPANS.map(|(span, _)| span);
    for row in rollups::in_buckets(conn, &levels, &spans, &starts)? {
        let k = row.key();
        if delta.contains_key(&k) {
            stored.insert(k, row);
        }
    }
    let rows: Vec<RollupRow> = delta
        .into_iter()
        .map(|(k, (name, sums))| match stored.get(&k) {
            Some(old) => {
                let mut total = Sums::default();
                total.add_row(old);
                total.merge(&sums);
                total.row(k, name)
            }
            None => sums.row(k, name),
        })
        .collect();
    rollups::upsert(conn, &rows)?;
    prune(conn, now_ms())
}

/// Deletes rows past their span's retention, at most once a minute.
fn prune(conn: &mut AnyConnection, now: i64) -> Result<()> {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let last = LAST.load(Ordering::Relaxed);
    if now - last < MINUTE_MS
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    for (span, keep) in SPANS {
        for level in Level::ALL {
            rollups::delete_before(conn, level as i32, span, bucket_start(now - keep, span))?;
        }
    }
    Ok(())
}

/// Tells overview watchers that traces were stored.
#[derive(Clone)]
pub struct Signal(Arc<watch::Sender<u64>>);

impl Default for Signal {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl Signal {
    pub fn stored(&self, n: u32) {
        if n > 0 {
            self.0.send_modify(|c| *c = c.wrapping_add(u64::from(n)));
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests;
