//! The one task that stores traces. Every data plane's trace stream hands
//! its batches here through a bounded queue, and the writer commits what
//! has arrived meanwhile in one transaction (group commit): many small
//! batches from many nodes cost one commit, not one each, and SQLite never
//! sees two trace writers contend for its lock.
//!
//! Back-pressure: when the database is slower than the data planes, the
//! queue fills, each stream stops reading its next batch, gRPC flow control
//! stops the data plane's sender, and the traces wait in the data planes'
//! spools on disk. Memory here is bounded by the queue in batches and in
//! bytes (`QUEUE_BYTES`, counted until a batch is stored), whatever the rate
//! and whatever size of batch a node sends.

use aigw_proto::pb::trace::TraceRecord;
use std::sync::Arc;

use prost::Message as _;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tonic::Status;

use crate::budgets::Budgets;
use crate::db::Db;
use crate::ingest::store_groups;

/// Batches waiting for the writer, from all streams together.
const QUEUE: usize = 64;
/// ... and their size (records as encoded, plus their `Vec` slots), counted
/// from the queue until they are stored: batches may be up to the message
/// limit each, so a count alone would let a few nodes hold a gigabyte here.
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// The byte budget is counted in KiB (a semaphore's permits are `u32`).
const UNIT: usize = 1024;
/// Writers storing groups at once on Postgres: while one waits for its
/// commit, another converts and sends the next group. SQLite takes one
/// writer at a time, so it gets one.
const PG_WRITERS: usize = 3;
/// At most this many records per transaction (a data plane's segment holds
/// up to 512), so one commit never grows without bound.
const GROUP_RECORDS: usize = 16_384;

/// What one batch came to: (stored, duplicates), or why it was not stored.
pub type Outcome = Result<(u32, u32), Status>;

struct Job {
    records: Vec<TraceRecord>,
    reply: oneshot::Sender<Outcome>,
    /// The batch's share of `QUEUE_BYTES`, given back once it is stored.
    _room: Option<OwnedSemaphorePermit>,
}

/// A handle on the writer; cheap to clone. The writer ends when the last
/// handle is dropped, after storing what was queued.
#[derive(Clone)]
pub struct TraceWriter {
    tx: mpsc::Sender<Job>,
    room: Arc<Semaphore>,
    /// The whole byte budget, in `UNIT`s.
    units: u32,
}

impl TraceWriter {
    pub fn spawn(db: Db, budgets: Budgets) -> Self {
        Self::with_room(db, budgets, QUEUE_BYTES)
    }

    fn with_room(db: Db, budgets: Budgets, bytes: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let writers = if db.is_postgres() { PG_WRITERS } else { 1 };
        for _ in 0..writers {
            tokio::spawn(run(db.clone(), budgets.clone(), rx.clone()));
        }
        let units = u32::try_from(bytes / UNIT).unwrap_or(u32::MAX).max(1);
        Self {
            tx,
            room: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Queues a batch (waiting while the queue is full, in batches or in
    /// bytes: that wait is the back-pressure) and returns where its outcome
    /// will arrive. A batch larger than the whole budget waits for all of it.
    pub async fn submit(&self, records: Vec<TraceRecord>) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        let bytes: usize = records
            .iter()
            .map(|r| r.encoded_len() + std::mem::size_of::<TraceRecord>())
            .sum();
        let want = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        // Never more than the budget, or a batch that large would wait forever.
        let want = want.clamp(1, self.units);
        let room = self.room.clone().acquire_many_owned(want).await.ok();
        // A writer that is gone drops the job, and with it `reply`: the
        // receiver then reports that, and the data plane resends.
        let _ = self
            .tx
            .send(Job {
                records,
                reply,
                _room: room,
            })
            .await;
        outcome
    }

    /// Stores one batch and waits until it is committed.
    pub async fn store(&self, records: Vec<TraceRecord>) -> Outcome {
        self.submit(records)
            .await
            .await
            .unwrap_or_else(|_| Err(writer_gone()))
    }
}

/// What a stream tells its data plane when its batch's outcome never came.
pub fn writer_gone() -> Status {
    Status::unavailable("the trace writer stopped; resend")
}

/// Takes what has queued up (up to `GROUP_RECORDS`) as one group, stores
/// it, replies to each batch; with several writers, each takes the queue in
/// turn while the others store.
async fn run(db: Db, budgets: Budgets, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let (mut jobs, records) = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut records = first.records.len();
            let mut jobs = vec![first];
            while records < GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(job) => {
                        records += job.records.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            (jobs, records)
        };
        let batches: Vec<Vec<TraceRecord>> = jobs
            .iter_mut()
            .map(|j| std::mem::take(&mut j.records))
            .collect();
        metrics::histogram!("aigw_trace_group_records").record(records as f64);
        match store_groups(&db, batches, budgets.ledger()).await {
            Ok(counts) => {
                for (job, count) in jobs.into_iter().zip(counts) {
                    let _ = job.reply.send(Ok(count));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batches = jobs.len(), "storing traces failed; the data planes will resend them");
                let status = Status::from(e);
                for job in jobs {
                    let _ = job.reply.send(Err(status.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::temp_db;
    use crate::db::traces;
    use crate::ingest::tests::record;

    fn batch(ids: &[&str]) -> Vec<TraceRecord> {
        ids.iter().map(|id| record(id)).collect()
    }

    #[tokio::test]
    async fn grouped_batches_are_counted_each_and_a_shared_id_once() {
        let t = temp_db();
        let counts = store_groups(
            &t.db,
            vec![batch(&["a", "b"]), batch(&["b", "c", ""]), batch(&[])],
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(counts, vec![(2, 0), (1, 1), (0, 0)]);
        assert_eq!(t.db.run(traces::count).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn queued_batches_hold_their_bytes_until_stored() {
        let t = temp_db();
        let writer =
            TraceWriter::with_room(t.db.clone(), crate::budgets::Budgets::detached(), 8 * UNIT);
        // Far more than the budget: it takes all of it, and does not wait
        // for more than there is.
        let big: Vec<_> = (0..200).map(|i| record(&format!("big{i}"))).collect();
        let first = writer.submit(big).await;
        assert_eq!(writer.room.available_permits(), 0);
        // The next batch waits for the room the first one holds.
        let next = tokio::spawn({
            let w = writer.clone();
            async move { w.store(batch(&["after"])).await }
        });
        assert_eq!(first.await.unwrap().unwrap(), (200, 0));
        assert_eq!(next.await.unwrap().unwrap(), (1, 0));
        assert_eq!(writer.room.available_permits(), 8);
        assert_eq!(t.db.run(traces::count).await.unwrap(), 201);
    }

    #[tokio::test]
    async fn many_streams_at_once_store_every_trace_once() {
        let t = temp_db();
        let budgets = crate::budgets::Budgets::detached();
        let writer = TraceWriter::spawn(t.db.clone(), budgets);
        // 40 batches handed over before any is awaited: the writer groups
        // what queued up, and each batch still gets its own outcome.
        let mut outcomes = Vec::new();
        for b in 0..40 {
            let ids: Vec<String> = (0..50).map(|i| format!("s{b}-{i}")).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            outcomes.push(writer.submit(batch(&refs)).await);
        }
        // A resend of batch 0 while the rest is in flight: all duplicates.
        outcomes.push(
            writer
                .submit(batch(
                    &(0..50)
                        .map(|i| format!("s0-{i}"))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ))
                .await,
        );
        let mut got = Vec::new();
        for o in outcomes {
            got.push(o.await.unwrap().unwrap());
        }
        assert!(got[..40].iter().all(|c| *c == (50, 0)), "{got:?}");
        assert_eq!(got[40], (0, 50));
        assert_eq!(t.db.run(traces::count).await.unwrap(), 2_000);
    }
}
