//! TraceService.Report: the data planes deliver traces at least once; we
//! store them exactly once. Batches go to the one [`TraceWriter`], which
//! commits them with `ON CONFLICT (request_id) DO NOTHING`, grouped with
//! other streams' batches; each batch is acked only after its commit, so an
//! ack always means "durable" and a resent batch only counts duplicates.
//! A stream keeps reading while its earlier batches are being stored (the
//! data plane keeps several in flight) and acks them in order.

use aigw_proto::pb::trace::trace_service_server::TraceService;
use aigw_proto::pb::trace::{Attempt, TraceAck, TraceBatch, TraceRecord};
use aigw_proto::trace_bounds::{MAX_BATCH_RECORDS, MAX_TOKENS, mark_refusals, refused_batch};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::db::traces::{TraceRow, insert_new_ids};
use crate::db::{Db, now_ms, write_tx};
use crate::error::{Error, Result};
use crate::node_auth::{NodeAuth, NodeIdentity, Revocation};
use crate::rollup::{self, Signal};
use crate::trace_writer::{Outcome, TraceWriter, writer_gone};

/// Batches of one stream stored or being stored but not yet acked.
const MAX_PENDING: usize = 32;

pub struct TraceSvc {
    pub writer: TraceWriter,
    pub nodes: NodeAuth,
    /// Told of credentials that failed real requests, to check them at once.
    pub checker: crate::health::Checker,
    /// Counts every newly stored trace toward its budgets.
    pub budgets: crate::budgets::Budgets,
    /// Told of credentials an upstream refused (401): an OAuth account's
    /// access token is refreshed at once.
    pub oauth: crate::oauth::Refresher,
    pub shutdown: watch::Receiver<bool>,
    /// Told how many traces each batch stored (the live overview).
    pub signal: Signal,
}

#[tonic::async_trait]
impl TraceService for TraceSvc {
    type ReportStream = ReceiverStream<Result<TraceAck, Status>>;

    async fn report(
        &self,
        request: Request<Streaming<TraceBatch>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let (identity, revocation) = self.nodes.authenticate(request.metadata()).await?;
        let (tx, rx) = mpsc::channel(16);
        let (pending_tx, pending_rx) = mpsc::channel(MAX_PENDING);
        tokio::spawn(ack_in_order(pending_rx, tx.clone(), self.signal.clone()));
        tokio::spawn(receive(
            self.writer.clone(),
            request.into_inner(),
            (tx, pending_tx),
            self.shutdown.clone(),
            (identity, revocation),
            (self.checker.clone(), self.oauth.clone()),
            self.budgets.clone(),
        ));
        let mut resp = Response::new(ReceiverStream::new(rx));
        mark_refusals(resp.metadata_mut());
        Ok(resp)
    }
}

/// A batch handed to the writer: its sequence number, its metrics, and
/// where its outcome will arrive.
type Pending = (u64, crate::telemetry::Batch, oneshot::Receiver<Outcome>);

/// A batch that failed to arrive for what it holds (its bytes do not
/// decode, or it is over the message limit) would fail the same on every
/// resend: the data plane is told it is refused, and sets it aside. Ending
/// the stream without a word, it would take that for a failure to retry
/// and resend the same batch, with every later trace behind it, forever.
fn refusal_of(status: &Status) -> Option<Status> {
    let refusal = match status.code() {
        tonic::Code::OutOfRange => Status::out_of_range(status.message().to_string()),
        // tonic-prost's decode error: prost's `DecodeError`, as `Internal`.
        tonic::Code::Internal
            if status
                .message()
                .starts_with("failed to decode Protobuf message") =>
        {
            Status::invalid_argument(format!(
                "a trace batch that does not decode: {}",
                status.message()
            ))
        }
        _ => return None,
    };
    Some(refused_batch(refusal))
}

/// Reads batches in arrival order and hands them to the writer. When
/// shutdown comes, reading stops; batches already handed over are still
/// stored and acked, then the stream ends and the data plane resends
/// whatever was not acked.
async fn receive(
    writer: TraceWriter,
    mut inbound: Streaming<TraceBatch>,
    (tx, pending): (
        mpsc::Sender<Result<TraceAck, Status>>,
        mpsc::Sender<Pending>,
    ),
    mut shutdown: watch::Receiver<bool>,
    (node, mut revocation): (NodeIdentity, Revocation),
    (checker, oauth): (crate::health::Checker, crate::oauth::Refresher),
    budgets: crate::budgets::Budgets,
) {
    loop {
        let batch = tokio::select! {
            m = inbound.message() => m,
            () = down(&mut shutdown) => return,
            () = revocation.wait() => {
                let _ = tx.send(Err(Status::unauthenticated("node credential revoked"))).await;
                return;
            }
        };
        let batch = match batch {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(status) => {
                match refusal_of(&status) {
                    Some(refusal) => {
                        tracing::warn!(%status, node = %node.node_id, "refused a trace batch that cannot be read");
                        let _ = tx.send(Err(refusal)).await;
                    }
                    None => tracing::debug!(%status, "trace stream ended with an error"),
                }
                return;
            }
        };
        let seq = batch.seq;
        let mut records = batch.records;
        if records.len() > MAX_BATCH_RECORDS {
            let _ = tx
                .send(Err(refused_batch(Status::invalid_argument(format!(
                    "a trace batch holds at most {MAX_BATCH_RECORDS} records (got {})",
                    records.len()
                )))))
                .await;
            return;
        }
        let now = now_ms();
        // Where a trace happened is who sent it, not what it says.
        for r in &mut records {
            r.node_id.clone_from(&node.node_id);
            r.region.clone_from(&node.region);
            sane(r, now);
            // A credential that failed a real request is checked at once.
            for a in r.attempts.iter().filter(|a| failed_credential(a.status)) {
                checker.failed_on_data_plane(&a.provider, &a.provider_key);
                if a.status == 401 {
                    oauth.unauthorized(&a.provider, &a.provider_key);
                }
            }
            if !r.refused_by.is_empty() {
                budgets
                    .ledger()
                    .note_refused(&r.refused_by, &r.region, r.started_at_ms);
            }
        }
        let metered = crate::telemetry::Batch::of(&records);
        let outcome = writer.submit(records).await;
        // The acker is gone when the stream failed or the app left.
        if pending.send((seq, metered, outcome)).await.is_err() {
            return;
        }
    }
}

/// Acks batches in the order they arrived, each once its commit is done;
/// the first failure ends the stream (the data plane resends what was not
/// acked).
async fn ack_in_order(
    mut pending: mpsc::Receiver<Pending>,
    tx: mpsc::Sender<Result<TraceAck, Status>>,
    signal: Signal,
) {
    while let Some((seq, metered, outcome)) = pending.recv().await {
        match outcome.await.unwrap_or_else(|_| Err(writer_gone())) {
            Ok((stored, duplicates)) => {
                tracing::debug!(seq, stored, duplicates, "trace batch stored");
                metered.stored(stored, duplicates);
                signal.stored(stored);
                if tx
                    .send(Ok(TraceAck {
                        seq,
                        stored,
                        duplicates,
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(status) => {
                metered.failed();
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
    }
}

/// An attempt status that may mean the credential itself is in trouble:
/// refused (401/403), limited (429), the upstream failing (5xx), or no
/// answer at all (0: connection error or timeout).
fn failed_credential(status: u32) -> bool {
    matches!(status, 0 | 401 | 403 | 429 | 500..=599)
}

/// Resolves when the server shuts down (holding no borrow of the flag, so
/// a `select!` branch may await after it).
async fn down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Stores one batch in one transaction; returns (stored, duplicates).
pub async fn store_batch(
    db: &Db,
    records: Vec<TraceRecord>,
    ledger: &crate::budgets::ledger::Ledger,
) -> Result<(u32, u32)> {
    Ok(store_groups(db, vec![records], ledger)
        .await?
        .pop()
        .unwrap_or((0, 0)))
}

/// Stores several batches in one transaction; returns (stored, duplicates)
/// for each, in order. A request id met twice counts as stored once, for
/// the batch that had it first. Records without a request id cannot be
/// deduplicated: they are dropped with a warning rather than failing the
/// batch, which would otherwise be resent forever.
pub async fn store_groups(
    db: &Db,
    batches: Vec<Vec<TraceRecord>>,
    ledger: &crate::budgets::ledger::Ledger,
) -> Result<Vec<(u32, u32)>> {
    let received_at_ms = now_ms();
    let mut valid = vec![0usize; batches.len()];
    let mut owner = Vec::new();
    let mut rows = Vec::new();
    let mut dropped = 0usize;
    for (i, batch) in batches.into_iter().enumerate() {
        for r in batch {
            match to_row(r, received_at_ms) {
                Some(row) => {
                    valid[i] += 1;
                    owner.push(i);
                    rows.push(row);
                }
                None => dropped += 1,
            }
        }
    }
    if dropped > 0 {
        tracing::warn!(dropped, "dropped trace records without a request_id");
    }
    if rows.is_empty() {
        return Ok(valid.iter().map(|_| (0, 0)).collect());
    }
    let (rows, new) = db
        .run(move |conn| {
            let new = match write_tx(conn, |conn| insert_with_rollups(conn, &rows)) {
                Err(e) if refused_for_content(&e) => {
                    tracing::warn!(error = %e, "a trace batch was refused; storing its records one by one");
                    insert_each(conn, &rows)?
                }
                other => other?,
            };
            Ok((rows, new))
        })
        .await?;
    // Budgets count each request once: only rows stored just now.
    let mut new: std::collections::HashSet<String> = new.into_iter().collect();
    let mut stored = vec![0usize; valid.len()];
    let mut fresh = Vec::with_capacity(new.len());
    for (row, i) in rows.iter().zip(owner) {
        if new.remove(&row.request_id) {
            stored[i] += 1;
            fresh.push(row);
        }
    }
    ledger.add(fresh.into_iter());
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(stored
        .into_iter()
        .zip(valid)
        .map(|(s, v)| (count(s), count(v.saturating_sub(s))))
        .collect())
}

/// Inserts the rows not stored yet and adds those (only) to the usage
/// rollups, in the caller's transaction: rollups count each request once,
/// like the traces table. Returns the ids that were new.
fn insert_with_rollups(
    conn: &mut crate::db::AnyConnection,
    rows: &[TraceRow],
) -> Result<Vec<String>> {
    let new = insert_new_ids(conn, rows)?;
    // Taken out as met: a request id twice in one batch was stored once
    // (the first copy), so it is counted once.
    let mut fresh: std::collections::HashSet<&str> = new.iter().map(String::as_str).collect();
    rollup::record(
        conn,
        rows.iter().filter(|r| fresh.remove(r.request_id.as_str())),
    )?;
    Ok(new)
}

/// Whether the database refused what a batch holds (a value it cannot
/// store), rather than being unavailable or busy: resending would fail
/// forever. (SQLite reports "database is locked" as an unknown kind, so an
/// unknown kind is never taken for bad content.)
fn refused_for_content(e: &Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as D};
    matches!(
        e,
        Error::Database(
            D::DatabaseError(
                K::CheckViolation | K::NotNullViolation | K::ForeignKeyViolation,
                _
            ) | D::SerializationError(_)
        )
    )
}

/// Stores records one by one, each in its own transaction, dropping (with
/// a log line and a metric) the ones the database refuses, so one bad record
/// never blocks the spool it came from. Returns the ids that were new.
fn insert_each(conn: &mut crate::db::AnyConnection, rows: &[TraceRow]) -> Result<Vec<String>> {
    let mut stored = Vec::new();
    for row in rows {
        match write_tx(conn, |conn| {
            insert_with_rollups(conn, std::slice::from_ref(row))
        }) {
            Ok(ids) => stored.extend(ids),
            Err(e) if refused_for_content(&e) => {
                metrics::counter!("aigw_traces_refused_total").increment(1);
                tracing::error!(request_id = %row.request_id, error = %e, "trace refused by the database; dropped");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stored)
}

#[derive(Serialize)]
struct AttemptJson<'a> {
    provider: &'a str,
    provider_key: &'a str,
    status: u32,
    latency_us: u64,
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    cooldown_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn attempts_json(attempts: &[Attempt]) -> String {
    let list: Vec<AttemptJson<'_>> = attempts
        .iter()
        .map(|a| AttemptJson {
            provider: &a.provider,
            provider_key: &a.provider_key,
            status: a.status,
            latency_us: a.latency_us,
            error: (!a.error.is_empty()).then_some(a.error.as_str()),
            cooldown_ms: a.cooldown_ms,
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// The dropped request fields as a JSON array (bounded by `trace_bounds::clip`).
fn dropped_json(fields: &[String]) -> String {
    serde_json::to_string(fields).unwrap_or_else(|_| "[]".into())
}

/// How far in the future a trace may say it started (clock skew between
/// nodes); later is taken as now, so a record cannot date itself past
/// retention or into days the budgets have not reached.
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// The most one request may count: cost in USD, and latency (a day);
/// tokens as the data plane settles them ([`MAX_TOKENS`]).
const MAX_COST: f64 = 1_000_000.0;
const MAX_LATENCY_US: u64 = 86_400_000_000;

/// Bounds what a node says of a request, whoever the node is: strings
/// clipped, numbers within what a request can be (a NaN or negative cost
/// would turn a day's summed spend into nothing), its start not in the
/// future.
fn sane(r: &mut TraceRecord, now_ms: i64) {
    aigw_proto::trace_bounds::clip(r);
    r.started_at_ms = r.started_at_ms.clamp(0, now_ms.saturating_add(MAX_SKEW_MS));
    r.cost = if r.cost.is_finite() {
        r.cost.clamp(0.0, MAX_COST)
    } else {
        0.0
    };
    for t in [
        &mut r.input_tokens,
        &mut r.output_tokens,
        &mut r.cached_tokens,
        &mut r.reasoning_tokens,
    ] {
        *t = (*t).min(MAX_TOKENS);
    }
    r.latency_us = r.latency_us.min(MAX_LATENCY_US);
    r.ttfb_us = r.ttfb_us.min(MAX_LATENCY_US);
    for a in &mut r.attempts {
        a.latency_us = a.latency_us.min(MAX_LATENCY_US);
    }
}

/// Counters are unsigned on the wire and BIGINT in SQL; values beyond
/// i64::MAX are nonsense anyway and saturate instead of failing the batch.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `r` was bounded on receipt ([`sane`]).
fn to_row(r: TraceRecord, received_at_ms: i64) -> Option<TraceRow> {
    if r.request_id.is_empty() {
        return None;
    }
    Some(TraceRow {
        attempts: attempts_json(&r.attempts),
        dropped_fields: dropped_json(&r.dropped_fields),
        error: (!r.error.is_empty()).then_some(r.error),
        request_id: r.request_id,
        started_at_ms: r.started_at_ms,
        received_at_ms,
        client_key_id: r.client_key_id,
        client_key_name: r.client_key_name,
        model: r.model,
        provider: r.provider,
        provider_key: r.provider_key,
        status: i32::try_from(r.status).unwrap_or(i32::MAX),
        latency_us: big(r.latency_us),
        ttfb_us: big(r.ttfb_us),
        input_tokens: big(r.input_tokens),
        output_tokens: big(r.output_tokens),
        cached_tokens: big(r.cached_tokens),
        reasoning_tokens: big(r.reasoning_tokens),
        cost: r.cost,
        region: r.region,
        node_id: r.node_id,
        stream: r.stream,
        endpoint: r.endpoint,
        api_format: r.api_format,
        usage_source: r.usage_source,
        refused_by: r.refused_by,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::db::testing::temp_db;
    use crate::db::traces;

    pub fn record(id: &str) -> TraceRecord {
        TraceRecord {
            request_id: id.into(),
            started_at_ms: 1_700_000_000_000,
            model: "gpt-4o".into(),
            provider: "openai-main".into(),
            status: 200,
            input_tokens: 10,
            output_tokens: 5,
            cost: 0.0001,
            stream: true,
            attempts: vec![Attempt {
                provider: "openai-main".into(),
                provider_key: "team-a".into(),
                status: 200,
                latency_us: 1234,
                error: String::new(),
                cooldown_ms: 0,
            }],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn same_batch_twice_is_stored_once() {
        let t = temp_db();
        let batch = vec![record("r1"), record("r2"), record("r1"), record("")];
        assert_eq!(
            store_batch(&t.db, batch.clone(), &Default::default())
                .await
                .unwrap(),
            (2, 1)
        );
        assert_eq!(
            store_batch(&t.db, batch, &Default::default())
                .await
                .unwrap(),
            (0, 3)
        );
        let (n, row) =
            t.db.run(|c| Ok((traces::count(c)?, traces::get(c, "r1")?)))
                .await
                .unwrap();
        assert_eq!(n, 2);
        assert_eq!(row.error, None);
        assert!(row.stream);
        assert!(row.received_at_ms > 0);
        let attempts: serde_json::Value = serde_json::from_str(&row.attempts).unwrap();
        assert_eq!(attempts[0]["provider_key"], "team-a");
        assert_eq!(attempts[0]["error"], serde_json::Value::Null);
    }

    /// A request id twice in one batch (a resend merged with the original)
    /// is one request in the usage rollups too, not only in the traces.
    #[tokio::test]
    async fn a_request_twice_in_one_batch_is_counted_once_in_the_rollups() {
        use crate::db::rollups::{RollupFilter, scan};
        use crate::rollup::{DAY_MS, Level};
        let t = temp_db();
        // Recent: rollups keep nothing older than their longest span.
        let recent = |id: &str| TraceRecord {
            started_at_ms: now_ms(),
            ..record(id)
        };
        let batch = vec![recent("d1"), recent("d2"), recent("d1")];
        assert_eq!(
            store_batch(&t.db, batch, &Default::default())
                .await
                .unwrap(),
            (2, 1)
        );
        let f = RollupFilter {
            level: Level::Total as i32,
            span_ms: DAY_MS,
            since_ms: 0,
            until_ms: i64::MAX,
            ..Default::default()
        };
        let totals = t.db.run(move |c| scan(c, &f)).await.unwrap();
        assert_eq!(totals.len(), 1);
        assert_eq!((totals[0].requests, totals[0].input_tokens), (2, 20));
    }

    #[tokio::test]
    async fn error_text_is_stored_and_empty_batches_are_fine() {
        let t = temp_db();
        let mut r = record("r-err");
        r.error = "upstream timeout".into();
        r.attempts.clear();
        assert_eq!(
            store_batch(&t.db, vec![r], &Default::default())
                .await
                .unwrap(),
            (1, 0)
        );
        assert_eq!(
            store_batch(&t.db, vec![], &Default::default())
                .await
                .unwrap(),
            (0, 0)
        );
        let row = t.db.run(|c| traces::get(c, "r-err")).await.unwrap();
        assert_eq!(row.error.as_deref(), Some("upstream timeout"));
        assert_eq!(row.attempts, "[]");
    }
}
