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
use std::time::Duration;

use aigw_proto::pb::trace::TraceRecord;

pub use draft::TraceDraft;

/// Hands finished requests' records to the spool. Cheap to clone.
#[derive(Clone)]
pub struct TraceSink {
    spool: Arc<spool::Spool>,
}

impl TraceSink {
    /// Writes the record to the spool before returning, so it is on disk
    /// before the app sees the end of its answer.
    pub fn submit(&self, rec: TraceRecord) {
        if let Err(e) = self.spool.append(&rec) {
            metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_error").increment(1);
            tracing::error!(request_id = %rec.request_id, error = %e, "cannot write a trace to the spool; trace dropped");
        }
    }
}

pub struct Reporter {
    pub sink: TraceSink,
}

impl Reporter {
    /// Recovers the spool left by a previous run, then starts the sealing
    /// timer and the shipper task.
    pub fn start(
        state_dir: &Path,
        channel: crate::control::AuthedChannel,
        max_bytes: u64,
    ) -> std::io::Result<Self> {
        let dir = state_dir.join("traces");
        let recovered = spool::recover(&dir)?;
        let bytes = Arc::new(AtomicU64::new(recovered.bytes));
        let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
        let spool = Arc::new(spool::Spool::new(
            dir.clone(),
            recovered.next_seq,
            bytes.clone(),
            max_bytes,
            sealed_tx,
        ));
        let ticking = Arc::downgrade(&spool);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(25));
            loop {
                every.tick().await;
                match ticking.upgrade() {
                    Some(s) => s.tick(),
                    None => return,
                }
            }
        });
        tokio::spawn(ship::run(channel, dir, recovered.sealed, sealed_rx, bytes));
        Ok(Self {
            sink: TraceSink { spool },
        })
    }

    /// Seals what is open so the shipper (now or at the next start) sends it.
    pub fn shutdown(self) {
        self.sink.spool.close();
    }
}
