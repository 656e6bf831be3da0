//! Trace delivery, at least once. Every finished request's record goes to an
//! append-only spool on disk at once (so a killed process keeps it), is
//! shipped in batches over one gRPC stream, and is deleted only when the
//! control plane acks the batch after committing it. The control plane stores
//! by request id, so a batch resent after a lost ack is harmless.

mod draft;
mod frame;
mod inflight;
mod mapped;
mod raw_batch;
mod record_check;
mod ship;
mod spool;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aigw_proto::model::Price;
use aigw_proto::pb::trace::TraceRecord;

pub use draft::TraceDraft;
pub use inflight::{KILLED, Slot};
pub use writer::Written;

/// Hands finished requests' records to the spool. Cheap to clone.
#[derive(Clone)]
pub struct TraceSink {
    writer: writer::SpoolWriter,
    /// Streams under way, kept for a killed process's next start (none
    /// when the slot file could not be made).
    inflight: Option<Arc<inflight::InFlight>>,
}

impl TraceSink {
    /// Copies the record into the spool's open segment (or, when none has
    /// room, hands it to the writer thread). The answer's end must wait for
    /// the ticket, so the record is in the spool before the app sees it.
    pub fn submit(&self, rec: &TraceRecord) -> Written {
        self.writer.submit(rec)
    }

    /// [`Self::submit`] for a stream's record; its in-flight slot is freed
    /// once the record is in the spool.
    pub fn submit_stream(&self, rec: &TraceRecord, slot: Option<Slot>) -> Written {
        self.writer.submit_freeing(rec, slot)
    }

    /// Keeps what a stream files if it is cut now (`parts`, merged in
    /// order) until the slot is dropped: a process killed meanwhile files
    /// it at its next start (see `inflight.rs`). `None` when no slot is
    /// free or it does not fit.
    pub fn begin_stream(&self, parts: &[&TraceRecord], price: Option<Price>) -> Option<Slot> {
        self.inflight.as_ref()?.begin(parts, price)
    }
}

/// How long a start waits for the records of streams a killed process
/// left to reach the spool before it makes their slot file anew.
const RECOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Reporter {
    pub sink: TraceSink,
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
        crate::state_dir::create(&dir)?;
        // Held by the writer thread, which makes and maps the segments, for
        // as long as it runs (it may outlive the reporter: a node dropped
        // without a shutdown). The shipper only reads and deletes sealed
        // segments; after a shutdown it ends with the process.
        let lock = Arc::new(crate::state_dir::lock(&dir)?);
        let recovered = spool::recover(&dir)?;
        let cut = inflight::InFlight::left_in(&dir)?;
        let bytes = Arc::new(AtomicU64::new(recovered.bytes));
        let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
        let segments = spool::Segments::new(
            dir.clone(),
            recovered.next_seq,
            bytes.clone(),
            max_bytes,
            sealed_tx,
        )
        .holding(lock);
        let writer = writer::SpoolWriter::start(segments)?;
        // The streams a killed process left: their slots are made anew
        // only once their records are in the spool.
        let filed: Vec<Written> = cut.iter().map(|rec| writer.submit(rec)).collect();
        let placed = filed.iter().all(|w| w.wait_blocking(RECOVERY_WAIT)) && !writer.has_failed();
        if !cut.is_empty() {
            tracing::warn!(
                streams = cut.len(),
                "traced the streams still under way when this data plane was last stopped"
            );
        }
        let inflight = if placed {
            inflight::InFlight::create(&dir)
                .inspect_err(|e| tracing::error!(error = %e, "cannot make the file of streams under way; a stream cut by a killed process will have no trace"))
                .ok()
        } else {
            tracing::error!(
                "the streams cut at the last stop could not be spooled yet; kept for the next start, and streams are not kept meanwhile"
            );
            None
        };
        tokio::spawn(ship::run(channel, dir, recovered.sealed, sealed_rx, bytes));
        Ok(Self {
            sink: TraceSink { writer, inflight },
        })
    }

    /// Writes what is queued and seals what is open, so the shipper (now or
    /// at the next start) sends it. Blocking.
    pub fn shutdown(self) {
        self.sink.writer.close();
    }
}
