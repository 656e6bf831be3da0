//! Trace storage: one row per request, idempotent by request_id so the data
//! planes' at-least-once delivery ends up stored exactly once.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::traces;
use crate::error::Result;

type Backend = <AnyConnection as Connection>::Backend;

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
    /// JSON array of the request fields dropped when translating.
    pub dropped_fields: String,
    /// How the token counts are known: "" the provider reported them, else
    /// how they were estimated (`TraceRecord.usage_source`).
    pub usage_source: String,
    /// `<budget id>/<limit>` of the budget that refused the request, or "".
    pub refused_by: String,
}

/// Inserts `rows`, skipping request ids already stored, in the caller's
/// transaction. Returns how many rows were new.
pub fn insert_new(conn: &mut AnyConnection, rows: &[TraceRow]) -> Result<usize> {
    Ok(insert_new_ids(conn, rows)?.len())
}

/// Like [`insert_new`], returning the request ids that were new.
pub fn insert_new_ids(conn: &mut AnyConnection, rows: &[TraceRow]) -> Result<Vec<String>> {
    match conn {
        AnyConnection::Postgres(c) => Ok(insert_unnest(c, rows)?),
        // MultiBackend cannot express ON CONFLICT, so SQLite has its own arm
        // (the statement is the one Postgres would get without UNNEST).
        AnyConnection::Sqlite(c) => {
            let mut stored = Vec::with_capacity(rows.len());
            // Only a group of the size a writer that keeps up stores gives
            // way: a larger one means it is behind, and then each yield on
            // a busy machine would hold the write lock a scheduler slice.
            let yields = rows.len() <= GIVE_WAY_ROWS;
            let rest = insert_runs::<64>(c, rows, &mut stored, yields)?;
            let rest = insert_runs::<8>(c, rest, &mut stored, false)?;
            insert_runs::<1>(c, rest, &mut stored, false)?;
            Ok(stored)
        }
    }
}

/// SQLite: inserts as many runs of exactly `N` rows as `rows` holds and
/// returns the rest. A statement of a fixed row count is prepared once per
/// connection and kept in diesel's statement cache; a `VALUES` list of
/// whatever length a batch had is new statement text, parsed and planned
/// again for every batch (a tenth of the control plane's ingest CPU). Runs
/// of 64, then 8, then 1 keep any batch to a few statements.
fn insert_runs<'a, const N: usize>(
    c: &mut diesel::SqliteConnection,
    rows: &'a [TraceRow],
    stored: &mut Vec<String>,
    yields: bool,
) -> QueryResult<&'a [TraceRow]> {
    let (runs, rest) = rows.as_chunks::<N>();
    for (i, run) in runs.iter().enumerate() {
        if yields && i > 0 {
            give_way();
        }
        stored.extend(
            diesel::insert_into(traces::table)
                .values(run)
                .on_conflict(traces::request_id)
                .do_nothing()
                .returning(traces::request_id)
                .get_results::<String>(c)?,
        );
    }
    Ok(rest)
}

/// The largest group whose inserts give way between statements (a few
/// data planes' segments: what arrives between two groups while keeping up).
const GIVE_WAY_ROWS: usize = 2048;

/// Lets a task waiting for this core run before the next statement. A
/// group of traces is milliseconds of CPU in statements of 64 rows; where
/// the control plane shares a machine with data planes, the kernel would
/// let it finish before a request's next step runs on this core, which was
/// most of the data plane's one-connection p99 (docs/benchmarks.md). A
/// yield with no one waiting returns at once; with someone waiting, the
/// write lock is held for their turn (a fraction of a millisecond). On
/// Postgres a group is one statement, worked on by the server's process.
fn give_way() {
    std::thread::yield_now();
}

#[derive(QueryableByName)]
struct StoredId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    request_id: String,
}

/// Postgres: every row in one statement of one array per column
/// (`INSERT … SELECT * FROM UNNEST(…)`). A multi-row `VALUES` list is a new
/// statement text for every row count, parsed and planned each time with a
/// bind parameter per value; this is one plan whatever the count, and
/// several times faster. The column list must follow [`TraceRow`]'s fields
/// (`pg_tests` reads a row back field by field).
fn insert_unnest(c: &mut diesel::PgConnection, rows: &[TraceRow]) -> QueryResult<Vec<String>> {
    use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text};
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    fn col<'a, T>(rows: &'a [TraceRow], f: impl Fn(&'a TraceRow) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    let q = diesel::sql_query(
        "INSERT INTO traces (request_id, started_at_ms, received_at_ms, client_key_id, \
         client_key_name, model, provider, provider_key, status, latency_us, ttfb_us, \
         input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, region, node_id, \
         stream, endpoint, api_format, error, attempts, dropped_fields, usage_source, refused_by) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::int[], $10::bigint[], $11::bigint[], \
         $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::float8[], $17::text[], \
         $18::text[], $19::bool[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], \
         $25::text[], $26::text[]) \
         ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
    )
    .bind::<Array<Text>, _>(col(rows, |r| r.request_id.as_str()))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.started_at_ms))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.received_at_ms))
    .bind::<Array<Text>, _>(col(rows, |r| r.client_key_id.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.client_key_name.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.model.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.provider.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.provider_key.as_str()))
    .bind::<Array<Integer>, _>(col(rows, |r| r.status))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.latency_us))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.ttfb_us))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.input_tokens))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.output_tokens))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.cached_tokens))
    .bind::<Array<BigInt>, _>(col(rows, |r| r.reasoning_tokens))
    .bind::<Array<Double>, _>(col(rows, |r| r.cost))
    .bind::<Array<Text>, _>(col(rows, |r| r.region.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.node_id.as_str()))
    .bind::<Array<Bool>, _>(col(rows, |r| r.stream))
    .bind::<Array<Text>, _>(col(rows, |r| r.endpoint.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.api_format.as_str()))
    .bind::<Array<Nullable<Text>>, _>(col(rows, |r| r.error.as_deref()))
    .bind::<Array<Text>, _>(col(rows, |r| r.attempts.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.dropped_fields.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.usage_source.as_str()))
    .bind::<Array<Text>, _>(col(rows, |r| r.refused_by.as_str()));
    Ok(q.load::<StoredId>(c)?
        .into_iter()
        .map(|r| r.request_id)
        .collect())
}

/// Deletes up to `limit` traces that started before `before_ms`, oldest
/// first; returns how many went. Bounded, so a large backlog is removed in
/// many short transactions instead of one that holds the database.
pub fn delete_older(conn: &mut AnyConnection, before_ms: i64, limit: i64) -> Result<usize> {
    let oldest: Vec<String> = traces::table
        .select(traces::request_id)
        .filter(traces::started_at_ms.lt(before_ms))
        .order(traces::started_at_ms)
        .limit(limit)
        .load(conn)?;
    if oldest.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(traces::table.filter(traces::request_id.eq_any(oldest))).execute(conn)?)
}

/// Which statuses a trace listing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success2xx,
    Client4xx,
    Server5xx,
    /// status < 400 and no error.
    Ok,
    /// status >= 400 or an error.
    Error,
}

/// Filters shared by trace listing, usage and pool health. Every `Some`
/// narrows the result.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    /// started_at_ms >= since_ms.
    pub since_ms: Option<i64>,
    /// started_at_ms < until_ms.
    pub until_ms: Option<i64>,
    /// A client key's name or id (matches either column; see
    /// [`resolve_client_key`] for the form an index can serve).
    pub client_key: Option<String>,
    /// Exactly this client key id.
    pub client_key_id: Option<String>,
    /// Exactly this client key name.
    pub client_key_name: Option<String>,
    /// Only traces of these client key ids (a user's keys).
    pub key_ids: Option<Vec<String>>,
    /// Also only these (the caller's own keys, for members): kept apart from
    /// `key_ids` so a user filter can never widen a member's scope.
    pub scope_key_ids: Option<Vec<String>>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
    pub status: Option<i32>,
    pub status_class: Option<StatusClass>,
    pub node_id: Option<String>,
}

/// The predicate of the partial index on failed traces (migration
/// `2026-12-08-000000_trace_indexes`), word for word.
const FAILED: &str = "(status >= 400 OR error IS NOT NULL)";

fn filtered(f: &TraceFilter) -> traces::BoxedQuery<'static, Backend> {
    let mut q = traces::table.into_boxed();
    if let Some(t) = f.since_ms {
        q = q.filter(traces::started_at_ms.ge(t));
    }
    if let Some(t) = f.until_ms {
        q = q.filter(traces::started_at_ms.lt(t));
    }
    if let Some(k) = &f.client_key {
        q = q.filter(
            traces::client_key_name
                .eq(k.clone())
                .or(traces::client_key_id.eq(k.clone())),
        );
    }
    if let Some(id) = &f.client_key_id {
        q = q.filter(traces::client_key_id.eq(id.clone()));
    }
    if let Some(name) = &f.client_key_name {
        q = q.filter(traces::client_key_name.eq(name.clone()));
    }
    for ids in [&f.key_ids, &f.scope_key_ids].into_iter().flatten() {
        q = q.filter(traces::client_key_id.eq_any(ids.clone()));
    }
    if let Some(m) = &f.model {
        q = q.filter(traces::model.eq(m.clone()));
    }
    if let Some(p) = &f.provider {
        q = q.filter(traces::provider.eq(p.clone()));
    }
    if let Some(r) = &f.region {
        q = q.filter(traces::region.eq(r.clone()));
    }
    if let Some(s) = f.status {
        q = q.filter(traces::status.eq(s));
    }
    if let Some(n) = &f.node_id {
        q = q.filter(traces::node_id.eq(n.clone()));
    }
    let failures_only = f.status.is_some_and(|s| s >= 400)
        || matches!(
            f.status_class,
            Some(StatusClass::Client4xx | StatusClass::Server5xx | StatusClass::Error)
        );
    if failures_only {
        // Implied by the filters above and below; spelled out as the partial
        // index `traces_failed_at` is, so both engines page through it.
        q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(FAILED));
    }
    match f.status_class {
        None => {}
        Some(StatusClass::Success2xx) => {
            q = q.filter(traces::status.ge(200).and(traces::status.lt(300)));
        }
        Some(StatusClass::Client4xx) => {
            q = q.filter(traces::status.ge(400).and(traces::status.lt(500)));
        }
        Some(StatusClass::Server5xx) => {
            q = q.filter(traces::status.ge(500).and(traces::status.lt(600)));
        }
        Some(StatusClass::Ok) => {
            q = q.filter(traces::status.lt(400).and(traces::error.is_null()));
        }
        Some(StatusClass::Error) => {
            q = q.filter(traces::status.ge(400).or(traces::error.is_not_null()));
        }
    }
    q
}

/// Which column a "name or id" of a client key means, so the query can use
/// that column's index instead of an `OR` no index serves: the id when
/// traces carry it as an id, the name otherwise. (Ids are 32 hex digits that
/// no key is named, so this matches what `name = v OR id = v` matches.)
pub enum KeyMatch {
    Id(String),
    Name(String),
}

pub fn resolve_client_key(conn: &mut AnyConnection, v: &str) -> Result<KeyMatch> {
    let is_id = traces::table
        .filter(traces::client_key_id.eq(v))
        .select(traces::request_id)
        .first::<String>(conn)
        .optional()?
        .is_some()
        || super::config::find_client_key_by_id(conn, v)?;
    Ok(if is_id {
        KeyMatch::Id(v.to_string())
    } else {
        KeyMatch::Name(v.to_string())
    })
}

/// One page of traces, newest first (started_at_ms, then request_id, both
/// descending: a stable order for cursors). `before` is the last row of the
/// previous page.
pub fn list(
    conn: &mut AnyConnection,
    f: &TraceFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<TraceRow>> {
    if let Some(ids) = few_keys(f) {
        // A page for a few keys (a member's own, or one user's) is the
        // newest rows of each key's own index, merged: neither engine
        // merges the ranges of an `IN` list in time order, and either
        // alternative (all the keys' rows then a sort, or the time index
        // filtered) reads a large part of the table for some key mix.
        let mut rows = Vec::new();
        for id in ids {
            let one = TraceFilter {
                client_key_id: Some(id),
                key_ids: None,
                scope_key_ids: None,
                ..f.clone()
            };
            rows.extend(page(conn, &one, before.clone(), limit)?);
        }
        rows.sort_unstable_by(|a, b| {
            (b.started_at_ms, &b.request_id).cmp(&(a.started_at_ms, &a.request_id))
        });
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        return Ok(rows);
    }
    page(conn, f, before, limit)
}

/// Key lists up to this long are paged key by key (see [`list`]).
const FEW_KEYS: usize = 16;

/// The keys a filter narrows to, when it is a short list and no single key
/// is named: the intersection of `key_ids` and `scope_key_ids` (the scope
/// never widens), deduplicated.
fn few_keys(f: &TraceFilter) -> Option<Vec<String>> {
    if f.client_key_id.is_some() {
        return None;
    }
    let mut ids: Vec<String> = match (&f.key_ids, &f.scope_key_ids) {
        (None, None) => return None,
        (Some(a), None) | (None, Some(a)) => a.clone(),
        (Some(a), Some(scope)) => a.iter().filter(|id| scope.contains(id)).cloned().collect(),
    };
    ids.sort_unstable();
    ids.dedup();
    (!ids.is_empty() && ids.len() <= FEW_KEYS).then_some(ids)
}

/// One statement: the newest `limit` rows matching `f` before the cursor.
fn page(
    conn: &mut AnyConnection,
    f: &TraceFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<TraceRow>> {
    let mut q = filtered(f);
    if let Some((at, id)) = before {
        q = q.filter(
            traces::started_at_ms
                .lt(at)
                .or(traces::started_at_ms.eq(at).and(traces::request_id.lt(id))),
        );
    }
    Ok(
        q.order((traces::started_at_ms.desc(), traces::request_id.desc()))
            .limit(limit)
            .select(TraceRow::as_select())
            .load(conn)?,
    )
}

pub fn find(conn: &mut AnyConnection, request_id: &str) -> Result<Option<TraceRow>> {
    Ok(traces::table
        .filter(traces::request_id.eq(request_id))
        .select(TraceRow::as_select())
        .first(conn)
        .optional()?)
}

/// What usage statistics need of a trace.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct UsageRow {
    pub started_at_ms: i64,
    pub client_key_id: String,
    pub client_key_name: String,
    pub provider: String,
    pub model: String,
    pub region: String,
    pub status: i32,
    pub has_error: bool,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost: f64,
    pub latency_us: i64,
}

/// The usage columns of the matching traces, at most `cap` + 1 of them (so
/// the caller can tell that there were more).
pub fn usage_rows(conn: &mut AnyConnection, f: &TraceFilter, cap: i64) -> Result<Vec<UsageRow>> {
    Ok(filtered(f)
        .select((
            traces::started_at_ms,
            traces::client_key_id,
            traces::client_key_name,
            traces::provider,
            traces::model,
            traces::region,
            traces::status,
            traces::error.is_not_null(),
            traces::input_tokens,
            traces::output_tokens,
            traces::cached_tokens,
            traces::cost,
            traces::latency_us,
        ))
        .limit(cap.saturating_add(1))
        .load(conn)?)
}

/// (started_at_ms, attempts JSON) of the matching traces, newest first, at
/// most `cap` + 1.
pub fn attempt_rows(
    conn: &mut AnyConnection,
    f: &TraceFilter,
    cap: i64,
) -> Result<Vec<(i64, String)>> {
    Ok(filtered(f)
        .order(traces::started_at_ms.desc())
        .select((traces::started_at_ms, traces::attempts))
        .limit(cap.saturating_add(1))
        .load(conn)?)
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

/// The request log never reads the whole table for a filtered page: each
/// filter the admin UI offers pages through an index (SQLite's plan of the
/// very statement `list` sends, captured as it is sent).
#[cfg(test)]
mod plan_tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::sql_types::Text;

    use super::*;
    use crate::db::testing::{temp_db, trace_row};

    #[derive(QueryableByName)]
    struct Step {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// Records the SQL of every statement started, without its binds.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Capture {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default();
                self.0.lock().unwrap().push(sql.to_string());
            }
        }
    }

    /// What SQLite plans for `list(filter)`: the steps of its query plan.
    fn plan_of(conn: &mut AnyConnection, f: &TraceFilter) -> Vec<String> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        conn.set_instrumentation(Capture(seen.clone()));
        list(conn, f, Some((1_700_000_000_000, "z".repeat(32))), 50).unwrap();
        conn.set_instrumentation(Capture(Arc::default()));
        let sql = seen.lock().unwrap().pop().expect("a statement ran");
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Step>(conn)
            .unwrap()
            .into_iter()
            .map(|s| s.detail)
            .collect()
    }

    /// Paged key by key and merged, a few keys' log reads as one ordered
    /// log: newest first, ties by request id, cursors continuing where the
    /// page ended, and a member's scope never widened by a user filter.
    #[tokio::test]
    async fn a_few_keys_page_as_one_log_newest_first_within_the_scope() {
        let t = temp_db();
        let ids = |rows: Vec<TraceRow>| rows.into_iter().map(|r| r.request_id).collect::<Vec<_>>();
        let pages =
            t.db.run(|conn| {
                // a, b and c interleaved in time; r5 and r6 share a millisecond.
                let rows = vec![
                    trace_row("r1", 10, "a", "m", 200),
                    trace_row("r2", 20, "b", "m", 200),
                    trace_row("r3", 30, "c", "m", 200),
                    trace_row("r4", 40, "a", "m", 200),
                    trace_row("r5", 50, "b", "m", 200),
                    trace_row("r6", 50, "a", "m", 200),
                    trace_row("r7", 60, "c", "m", 200),
                ];
                insert_new(conn, &rows)?;
                let ab = TraceFilter {
                    key_ids: Some(vec!["id-a".into(), "id-b".into()]),
                    ..Default::default()
                };
                let first = list(conn, &ab, None, 3)?;
                let last = first
                    .last()
                    .map(|r| (r.started_at_ms, r.request_id.clone()));
                let second = list(conn, &ab, last, 3)?;
                let scoped = TraceFilter {
                    key_ids: Some(vec!["id-a".into(), "id-b".into()]),
                    scope_key_ids: Some(vec!["id-b".into(), "id-c".into()]),
                    ..Default::default()
                };
                let outside = TraceFilter {
                    key_ids: Some(vec!["id-a".into()]),
                    scope_key_ids: Some(vec!["id-c".into()]),
                    ..Default::default()
                };
                Ok((
                    first,
                    second,
                    list(conn, &scoped, None, 10)?,
                    list(conn, &outside, None, 10)?,
                ))
            })
            .await
            .unwrap();
        let (first, second, scoped, outside) = pages;
        assert_eq!(ids(first), ["r6", "r5", "r4"]);
        assert_eq!(ids(second), ["r2", "r1"]);
        assert_eq!(
            ids(scoped),
            ["r5", "r2"],
            "only b: in the filter and the scope"
        );
        assert!(
            outside.is_empty(),
            "a user filter outside the scope finds nothing"
        );
    }

    /// Batches of any size are stored whole through the fixed-size
    /// statements (runs of 64, 8 and 1): 75 rows take one of each size and
    /// more; a second batch overlapping the first stores only what is new
    /// and names exactly those ids.
    #[tokio::test]
    async fn any_batch_size_is_stored_once_and_only_new_ids_come_back() {
        let t = temp_db();
        let row = |i: usize| trace_row(&format!("r{i:03}"), i as i64, "a", "m", 200);
        let (first, second, stored) =
            t.db.run(move |conn| {
                let first = insert_new_ids(conn, &(0..75).map(row).collect::<Vec<_>>())?;
                let second = insert_new_ids(conn, &(60..150).map(row).collect::<Vec<_>>())?;
                let stored = list(conn, &TraceFilter::default(), None, 500)?;
                Ok((first, second, stored))
            })
            .await
            .unwrap();
        let ids = |r: std::ops::Range<usize>| r.map(|i| format!("r{i:03}")).collect::<Vec<_>>();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(first), ids(0..75));
        assert_eq!(sorted(second), ids(75..150));
        assert_eq!(
            sorted(stored.into_iter().map(|r| r.request_id).collect()),
            ids(0..150)
        );
    }

    #[tokio::test]
    async fn every_filter_of_the_request_log_pages_through_an_index() {
        let t = temp_db();
        let one = |f: fn(&mut TraceFilter)| {
            let mut filter = TraceFilter::default();
            f(&mut filter);
            filter
        };
        let cases: Vec<(&str, TraceFilter, &str)> = vec![
            ("no filter", one(|_| {}), "traces_started_request"),
            (
                "model",
                one(|f| f.model = Some("gpt-4o".into())),
                "traces_model_at",
            ),
            (
                "provider",
                one(|f| f.provider = Some("openai".into())),
                "traces_provider_at",
            ),
            (
                "region",
                one(|f| f.region = Some("eu".into())),
                "traces_region_at",
            ),
            (
                "data plane",
                one(|f| f.node_id = Some("n1".into())),
                "traces_node_at",
            ),
            (
                "key id",
                one(|f| f.client_key_id = Some("k".into())),
                "traces_key_at",
            ),
            (
                "key name",
                one(|f| f.client_key_name = Some("ci".into())),
                "traces_key_name_at",
            ),
            (
                "a user's keys",
                one(|f| f.key_ids = Some(vec!["a".into(), "b".into()])),
                "traces_key_at",
            ),
            (
                "status 503",
                one(|f| f.status = Some(503)),
                "traces_failed_at",
            ),
            (
                "4xx",
                one(|f| f.status_class = Some(StatusClass::Client4xx)),
                "traces_failed_at",
            ),
            (
                "5xx",
                one(|f| f.status_class = Some(StatusClass::Server5xx)),
                "traces_failed_at",
            ),
            (
                "errors",
                one(|f| f.status_class = Some(StatusClass::Error)),
                "traces_failed_at",
            ),
        ];
        let plans =
            t.db.run(move |conn| {
                Ok(cases
                    .into_iter()
                    .map(|(what, f, index)| (what, index, plan_of(conn, &f)))
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap();
        for (what, index, plan) in plans {
            assert!(
                plan.iter()
                    .any(|s| s.contains(&format!("USING INDEX {index}"))),
                "{what}: expected {index}, planned {plan:?}"
            );
            assert!(
                !plan.iter().any(|s| s == "SCAN traces"),
                "{what}: reads the whole table: {plan:?}"
            );
        }
    }
}
