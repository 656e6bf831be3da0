//! Trace delivery, at least once. Every finished request's record goes to an
//! append-only spool on disk at once (so a killed process keeps it), is
//! shipped in batches over one gRPC stream, and is deleted only when the
//! control plane acks the batch after committing it. The control plane stores
//! by request id, so a batch resent after a lost ack is harmless.

mod draft;
mod frame;
mod mapped;
mod raw_batch;
mod record_check;
mod ship;
mod spool;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aigw_proto::pb::trace::TraceRecord;

pub use draft::TraceDraft;
pub use writer::Written;

/// Hands finished requests' records to the spool. Cheap to clone.
#[derive(Clone)]
pub struct TraceSink {
    writer: writer::SpoolWriter,
}

impl TraceSink {
    /// Copies the record into the spool's open segment (or, when none has
    /// room, hands it to the writer thread). The answer's end must wait for
    /// the ticket, so the record is in the spool before the app sees it.
    pub fn submit(&self, rec: &TraceRecord) -> Written {
        self.writer.submit(rec)
    }
}

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
        tokio::spawn(ship::run(channel, dir, recovered.sealed, sealed_rx, bytes));
        Ok(Self {
            sink: TraceSink { writer },
        })
    }

    /// Writes what is queued and seals what is open, so the shipper (now or
    /// at the next start) sends it. Blocking.
    pub fn shutdown(self) {
        self.sink.writer.close();
    }
}
