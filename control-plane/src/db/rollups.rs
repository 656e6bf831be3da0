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

pub fn find(conn: &mut AnyConnection, k: &RollupKey) -> Result<Option<RollupRow>> {
    Ok(r::table
        .filter(r::level.eq(k.level))
        .filter(r::span_ms.eq(k.span_ms))
        .filter(r::bucket_start_ms.eq(k.bucket_start_ms))
        .filter(r::client_key_id.eq(&k.client_key_id))
        .filter(r::provider.eq(&k.provider))
        .filter(r::model.eq(&k.model))
        .filter(r::region.eq(&k.region))
        .select(RollupRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut AnyConnection, row: &RollupRow) -> Result<()> {
    diesel::insert_into(r::table).values(row).execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut AnyConnection, row: &RollupRow) -> Result<()> {
    diesel::update(
        r::table
            .filter(r::level.eq(row.level))
            .filter(r::span_ms.eq(row.span_ms))
            .filter(r::bucket_start_ms.eq(row.bucket_start_ms))
            .filter(r::client_key_id.eq(&row.client_key_id))
            .filter(r::provider.eq(&row.provider))
            .filter(r::model.eq(&row.model))
            .filter(r::region.eq(&row.region)),
    )
    .set(row)
    .execute(conn)?;
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
    pub client_key: Option<String>,
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
    for ids in &f.key_ids {
        q = q.filter(r::client_key_id.eq_any(ids.clone()));
    }
    if let Some(k) = &f.client_key {
        q = q.filter(
            r::client_key_id
                .eq(k.clone())
                .or(r::client_key_name.eq(k.clone())),
        );
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
    Ok(q.select(RollupRow::as_select()).load(conn)?)
}
