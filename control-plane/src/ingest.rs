//! TraceService.Report: the data planes deliver traces at least once; we
//! store them exactly once. Each batch is written in one transaction with
//! `ON CONFLICT (request_id) DO NOTHING`, and acked only after the commit, so
//! an ack always means "durable" and a resent batch only counts duplicates.

use std::sync::Arc;

use aigw_proto::pb::trace::trace_service_server::TraceService;
use aigw_proto::pb::trace::{Attempt, TraceAck, TraceBatch, TraceRecord};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::db::traces::{TraceRow, insert_new_ids};
use crate::db::{Db, now_ms, write_tx};
use crate::error::Result;
use crate::rollup::{self, Signal};

pub struct TraceSvc {
    pub db: Db,
    pub node_tokens: Arc<[[u8; 32]]>,
    pub shutdown: watch::Receiver<bool>,
    /// Told how many traces each batch stored (live overview).
    pub signal: Signal,
}

#[tonic::async_trait]
impl TraceService for TraceSvc {
    type ReportStream = ReceiverStream<Result<TraceAck, Status>>;

    async fn report(
        &self,
        request: Request<Streaming<TraceBatch>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        auth::check(request.metadata(), &self.node_tokens)?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(receive(
            self.db.clone(),
            request.into_inner(),
            tx,
            self.shutdown.clone(),
            self.signal.clone(),
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Stores batches in arrival order. A batch being stored when shutdown comes
/// is finished and acked; after that the stream ends and the data plane
/// resends whatever was not acked.
async fn receive(
    db: Db,
    mut inbound: Streaming<TraceBatch>,
    tx: mpsc::Sender<Result<TraceAck, Status>>,
    mut shutdown: watch::Receiver<bool>,
    signal: Signal,
) {
    loop {
        let batch = tokio::select! {
            m = inbound.message() => m,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let batch = match batch {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "trace stream ended with an error");
                return;
            }
        };
        let seq = batch.seq;
        match store_batch(&db, batch.records).await {
            Ok((stored, duplicates)) => {
                tracing::debug!(seq, stored, duplicates, "trace batch stored");
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
            Err(e) => {
                tracing::warn!(seq, error = %e, "storing a trace batch failed; the data plane will resend it");
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
}

/// Stores one batch in one transaction; returns (stored, duplicates).
/// Records without a request id cannot be deduplicated: they are dropped with
/// a warning rather than failing the batch, which would otherwise be resent
/// forever.
pub async fn store_batch(db: &Db, records: Vec<TraceRecord>) -> Result<(u32, u32)> {
    let received_at_ms = now_ms();
    let total = records.len();
    let rows: Vec<TraceRow> = records
        .into_iter()
        .filter_map(|r| to_row(r, received_at_ms))
        .collect();
    if rows.len() < total {
        tracing::warn!(
            dropped = total - rows.len(),
            "dropped trace records without a request_id"
        );
    }
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let valid = rows.len();
    // Rollups count only the rows stored now, in the same transaction.
    let stored = db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let new: std::collections::HashSet<String> =
                    insert_new_ids(conn, &rows)?.into_iter().collect();
                rollup::record(conn, rows.iter().filter(|r| new.contains(&r.request_id)))?;
                Ok(new.len())
            })
        })
        .await?;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok((count(stored), count(valid.saturating_sub(stored))))
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

/// Counters are unsigned on the wire and BIGINT in SQL; values beyond
/// i64::MAX are nonsense anyway and saturate instead of failing the batch.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_row(r: TraceRecord, received_at_ms: i64) -> Option<TraceRow> {
    if r.request_id.is_empty() {
        return None;
    }
    Some(TraceRow {
        attempts: attempts_json(&r.attempts),
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
        assert_eq!(store_batch(&t.db, batch.clone()).await.unwrap(), (2, 1));
        assert_eq!(store_batch(&t.db, batch).await.unwrap(), (0, 3));
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

    #[tokio::test]
    async fn error_text_is_stored_and_empty_batches_are_fine() {
        let t = temp_db();
        let mut r = record("r-err");
        r.error = "upstream timeout".into();
        r.attempts.clear();
        assert_eq!(store_batch(&t.db, vec![r]).await.unwrap(), (1, 0));
        assert_eq!(store_batch(&t.db, vec![]).await.unwrap(), (0, 0));
        let row = t.db.run(|c| traces::get(c, "r-err")).await.unwrap();
        assert_eq!(row.error.as_deref(), Some("upstream timeout"));
        assert_eq!(row.attempts, "[]");
    }
}
