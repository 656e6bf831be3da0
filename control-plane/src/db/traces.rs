//! Trace storage: one row per request, idempotent by request_id so the data
//! planes' at-least-once delivery ends up stored exactly once.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::traces;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = traces, treat_none_as_default_value = false)]
pub struct TraceRow {
    pub request_id: String,
    pub started_at_ms: i64,
    pub received_at_ms: i64,
    pub client_key_id: String,
    pub client_key_name: String,
    pub model: String,
    pub provider: String,
    pub provider_key: String,
    pub status: i32,
    pub latency_us: i64,
    pub ttfb_us: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost: f64,
    pub region: String,
    pub node_id: String,
    pub stream: bool,
    pub endpoint: String,
    pub api_format: String,
    /// NULL when the request succeeded.
    pub error: Option<String>,
    /// JSON array of attempts.
    pub attempts: String,
}

/// Rows per INSERT statement: 23 columns each keeps a chunk well under
/// SQLite's (32766) and Postgres' (65535) bind-parameter limits.
const CHUNK: usize = 500;

/// Inserts `rows`, skipping request ids already stored, in the caller's
/// transaction. Returns how many rows were new.
pub fn insert_new(conn: &mut AnyConnection, rows: &[TraceRow]) -> Result<usize> {
    let mut stored = 0;
    for chunk in rows.chunks(CHUNK) {
        // MultiBackend cannot express ON CONFLICT, so dispatch per backend;
        // the statement is the same on both.
        stored += match conn {
            AnyConnection::Sqlite(c) => diesel::insert_into(traces::table)
                .values(chunk)
                .on_conflict(traces::request_id)
                .do_nothing()
                .execute(c)?,
            AnyConnection::Postgres(c) => diesel::insert_into(traces::table)
                .values(chunk)
                .on_conflict(traces::request_id)
                .do_nothing()
                .execute(c)?,
        };
    }
    Ok(stored)
}

#[cfg(test)]
pub fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(traces::table.count().get_result(conn)?)
}

#[cfg(test)]
pub fn get(conn: &mut AnyConnection, request_id: &str) -> Result<TraceRow> {
    Ok(traces::table
        .filter(traces::request_id.eq(request_id))
        .select(TraceRow::as_select())
        .first(conn)?)
}
