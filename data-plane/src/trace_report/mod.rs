//! Trace delivery, at least once. Every finished request's record goes to an
//! append-only spool on disk at once (so a killed process keeps it), is
//! shipped in batches over one gRPC stream, and is deleted only when the
//! control plane acks the batch after committing it. The control plane stores
//! by request id, so a batch resent after a lost ack is harmless.

mod draft;
mod ship;
mod spool;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{SyncSender, TrySendError};

use aigw_proto::pb::trace::TraceRecord;

pub use draft::TraceDraft;

/// Records waiting in memory for the spool writer; beyond this, new ones are
/// dropped (and counted) rather than blocking requests.
const QUEUE_CAPACITY: usize = 100_000;

#[derive(Clone)]
pub struct TraceSink {
    tx: SyncSender<TraceRecord>,
}

impl TraceSink {
    pub fn submit(&self, rec: TraceRecord) {
        match self.tx.try_send(rec) {
            Ok(()) => {}
            Err(TrySendError::Full(rec)) => {
                metrics::counter!("aigw_traces_dropped_total", "reason" => "queue_full")
                    .increment(1);
                tracing::error!(request_id = %rec.request_id, "trace queue full; trace dropped");
            }
            Err(TrySendError::Disconnected(rec)) => {
                metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_stopped")
                    .increment(1);
                tracing::error!(request_id = %rec.request_id, "trace spool stopped; trace dropped");
            }
        }
    }
}

pub struct Reporter {
    pub sink: TraceSink,
    writer: std::thread::JoinHandle<()>,
}

impl Reporter {
    /// Recovers the spool left by a previous run, then starts the writer
    /// thread and the shipper task.
    pub fn start(
        state_dir: &Path,
        channel: crate::control::AuthedChannel,
        max_bytes: u64,
    ) -> std::io::Result<Self> {
        let dir = state_dir.join("traces");
        let recovered = spool::recover(&dir)?;
        let bytes = Arc::new(AtomicU64::new(recovered.bytes));
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = spool::Writer::new(
            dir.clone(),
            recovered.next_seq,
            bytes.clone(),
            max_bytes,
            sealed_tx,
        );
        let writer = std::thread::Builder::new()
            .name("trace-spool".into())
            .spawn(move || writer.run(rx))?;
        tokio::spawn(ship::run(channel, dir, recovered.sealed, sealed_rx, bytes));
        Ok(Self {
            sink: TraceSink { tx },
            writer,
        })
    }

    /// Closes the queue and waits until everything queued is on disk.
    pub fn shutdown(self) {
        drop(self.sink);
        if self.writer.join().is_err() {
            tracing::error!("trace spool writer panicked");
        }
    }
}
