//! Usage rollup rows: read, upsert, range scans and retention. The
//! arithmetic (what a row adds up) is in `crate::rollup`.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::usage_rollups as r;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = r, treat_none_as_default_value = false)]
pub struct RollupRow {
    pub level: i32,
    pub span_ms: i64,
    pub bucket_start_ms: i64,
    pub client_key_id: String,
    pub provider: String,
    pub model: String,
    pub region: String,
    pub client_key_name: String,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost: f64,
    pub latency_hist: String,
    pub ttfb_hist: String,
    pub overhead_hist: String,
}

/// The primary key of a rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub level: i32,
    pub span_ms: i64,
    pub bucket_start_ms: i64,
    pub client_key_id: String,
    pub provider: String,
    pub model: String,
    pub region: String,
}

impl RollupRow {
    pub fn key(&self) -> RollupKey {
        RollupKey {
            level: self.level,
            span_ms: self.span_ms,
            bucket_start_ms: self.bucket_start_ms,
            client_key_id: self.client_key_id.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            region: self.region.clone(),
        }
    }
}

/// The rows of the given levels and spans that start at one of `starts`
/// (a superset of the rows one batch touches, read in one statement; each
/// `IN` is on a leading column of the primary key, which serves it).
pub fn in_buckets(
    conn: &mut AnyConnection,
    levels: &[i32],
    spans: &[i64],
    starts: &[i64],
) -> Result<Vec<RollupRow>> {
    let mut rows = Vec::new();
    for chunk in starts.chunks(CHUNK) {
        rows.extend(
            r::table
                .filter(r::level.eq_any(levels))
                .filter(r::span_ms.eq_any(spans))
                .filter(r::bucket_start_ms.eq_any(chunk))
                .select(RollupRow::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}

/// Rows per statement: 18 columns each stays under both backends' bind limits.
const CHUNK: usize = 500;

/// Writes `rows` whole: inserted, or replacing the row with the same key
/// (their values are already merged with what was stored).
pub fn upsert(conn: &mut AnyConnection, rows: &[RollupRow]) -> Result<()> {
    use diesel::upsert::excluded;
    for chunk in rows.chunks(CHUNK) {
        // MultiBackend cannot express ON CONFLICT: the same statement per backend.
        macro_rules! upsert_on {
            ($c:expr) => {
                diesel::insert_into(r::table)
                    .values(chunk)
                    .on_conflict((
                        r::level,
                        r::span_ms,
                        r::bucket_start_ms,
                        r::client_key_id,
                        r::provider,
                        r::model,
                        r::region,
                    ))
                    .do_update()
                    .set((
                        r::client_key_name.eq(excluded(r::client_key_name)),
                        r::requests.eq(excluded(r::requests)),
                        r::errors.eq(excluded(r::errors)),
                        r::input_tokens.eq(excluded(r::input_tokens)),
                        r::output_tokens.eq(excluded(r::output_tokens)),
                        r::cached_tokens.eq(excluded(r::cached_tokens)),
                        r::reasoning_tokens.eq(excluded(r::reasoning_tokens)),
                        r::cost.eq(excluded(r::cost)),
                        r::latency_hist.eq(excluded(r::latency_hist)),
                        r::ttfb_hist.eq(excluded(r::ttfb_hist)),
                        r::overhead_hist.eq(excluded(r::overhead_hist)),
                    ))
                    .execute($c)?
            };
        }
        match conn {
            AnyConnection::Sqlite(c) => upsert_on!(c),
            AnyConnection::Postgres(c) => upsert_on!(c),
        };
    }
    Ok(())
}

/// Deletes the rows of one level and span that start before `before`.
pub fn delete_before(
    conn: &mut AnyConnection,
    level: i32,
    span_ms: i64,
    before: i64,
) -> Result<usize> {
    Ok(diesel::delete(
        r::table
            .filter(r::level.eq(level))
            .filter(r::span_ms.eq(span_ms))
            .filter(r::bucket_start_ms.lt(before)),
    )
    .execute(conn)?)
}

/// Which rows an overview reads.
#[derive(Debug, Clone, Default)]
pub struct RollupFilter {
    pub level: i32,
    pub span_ms: i64,
    /// bucket_start_ms in [since_ms, until_ms).
    pub since_ms: i64,
    pub until_ms: i64,
    /// Only these client key ids (each list narrows further).
    pub key_ids: Vec<Vec<String>>,
    pub client_key_id: Option<String>,
    pub client_key_name: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub region: Option<String>,
}

pub fn scan(conn: &mut AnyConnection, f: &RollupFilter) -> Result<Vec<RollupRow>> {
    let mut q = r::table
        .filter(r::level.eq(f.level))
        .filter(r::span_ms.eq(f.span_ms))
        .filter(r::bucket_start_ms.ge(f.since_ms))
        .filter(r::bucket_start_ms.lt(f.until_ms))
        .into_boxed();
    // A long list (a team of many keys) is applied to the rows read: as
    // parameters it would pass the bind limit (32,766 for SQLite).
    let (short, long): (Vec<&Vec<String>>, Vec<&Vec<String>>) =
        f.key_ids.iter().partition(|ids| ids.len() <= MAX_BOUND_IDS);
    for ids in short {
        q = q.filter(r::client_key_id.eq_any(ids.clone()));
    }
    if let Some(id) = &f.client_key_id {
        q = q.filter(r::client_key_id.eq(id.clone()));
    }
    if let Some(name) = &f.client_key_name {
        q = q.filter(r::client_key_name.eq(name.clone()));
    }
    if let Some(p) = &f.provider {
        q = q.filter(r::provider.eq(p.clone()));
    }
    if let Some(m) = &f.model {
        q = q.filter(r::model.eq(m.clone()));
    }
    if let Some(g) = &f.region {
        q = q.filter(r::region.eq(g.clone()));
    }
    let rows = q.select(RollupRow::as_select()).load(conn)?;
    if long.is_empty() {
        return Ok(rows);
    }
    let sets: Vec<std::collections::HashSet<&str>> = long
        .iter()
        .map(|ids| ids.iter().map(String::as_str).collect())
        .collect();
    Ok(rows
        .into_iter()
        .filter(|row| sets.iter().all(|s| s.contains(row.client_key_id.as_str())))
        .collect())
}

/// Most key ids a scan sends as SQL parameters (see [`scan`]).
const MAX_BOUND_IDS: usize = 1_000;
