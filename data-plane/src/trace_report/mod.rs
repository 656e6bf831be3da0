//! Trace delivery, at least once. Every finished request's record goes to an
//! append-only spool on disk at once, by a dedicated writer thread (so a
//! killed process keeps it, and no runtime worker waits on a file), is
//! shipped in batches over one gRPC stream, and is deleted only when the
//! control plane acks the batch after committing it. The control plane stores
//! by request id, so a batch resent after a lost ack is harmless.

mod draft;
mod ship;
mod spool;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use aigw_proto::pb::trace::TraceRecord;

pub use draft::TraceDraft;

/// Records handed over but not yet written, at most. Beyond it `submit`
/// waits for the writer (see [`TraceSink::submit`]).
/// (The queue's slots are allocated up front, about 1.8 MB.)
const QUEUE: usize = 4096;
/// How often the writer checks the open segment's age when idle.
const TICK: Duration = Duration::from_millis(25);

/// Records travel inline: boxing them would cost an allocation per trace.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(TraceRecord),
    /// Seal what is open, then say so.
    Close(std::sync::mpsc::Sender<()>),
}

/// Hands finished requests' records to the spool's writer thread. Cheap to
/// clone.
#[derive(Clone)]
pub struct TraceSink {
    tx: SyncSender<Msg>,
}

impl TraceSink {
    /// Queues the record for the writer thread, which appends it to the
    /// spool at once: no file I/O on the runtime's workers. Back-pressure:
    /// when the disk falls `QUEUE` records behind, the caller blocks until
    /// the writer catches up, so traces are slowed down, never dropped,
    /// for speed. A record still queued when the process is killed is lost
    /// (one written is not: the kernel has it).
    pub fn submit(&self, rec: TraceRecord) {
        let lost = match self.tx.try_send(Msg::Record(rec)) {
            Ok(()) => None,
            Err(TrySendError::Full(msg)) => self.tx.send(msg).err().map(|e| e.0),
            Err(TrySendError::Disconnected(msg)) => Some(msg),
        };
        if let Some(Msg::Record(rec)) = lost {
            metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_error").increment(1);
            tracing::error!(request_id = %rec.request_id, "the trace spool's writer is gone; trace dropped");
        }
    }
}

pub struct Reporter {
    pub sink: TraceSink,
}

impl Reporter {
    /// Recovers the spool left by a previous run, then starts the writer
    /// thread (which also seals segments as they age) and the shipper task.
    pub fn start(
        state_dir: &Path,
        channel: crate::control::AuthedChannel,
        max_bytes: u64,
    ) -> std::io::Result<Self> {
        let dir = state_dir.join("traces");
        let recovered = spool::recover(&dir)?;
        let bytes = Arc::new(AtomicU64::new(recovered.bytes));
        let (sealed_tx, sealed_rx) = tokio::sync::mpsc::unbounded_channel();
        let spool = spool::Spool::new(
            dir.clone(),
            recovered.next_seq,
            bytes.clone(),
            max_bytes,
            sealed_tx,
        );
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("trace-spool".into())
            .spawn(move || write(&spool, &rx))?;
        tokio::spawn(ship::run(channel, dir, recovered.sealed, sealed_rx, bytes));
        Ok(Self {
            sink: TraceSink { tx },
        })
    }

    /// Seals what is open so the shipper (now or at the next start) sends
    /// it; waits for the writer (at most 5 s) to have done so. Blocking.
    pub fn shutdown(self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self.sink.tx.send(Msg::Close(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// The writer thread: appends records as they come and seals the open
/// segment when it is full or old enough. Ends when every sink is gone.
fn write(spool: &spool::Spool, rx: &Receiver<Msg>) {
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Msg::Record(rec)) => {
                if let Err(e) = spool.append(&rec) {
                    metrics::counter!("aigw_traces_dropped_total", "reason" => "spool_error")
                        .increment(1);
                    tracing::error!(request_id = %rec.request_id, error = %e, "cannot write a trace to the spool; trace dropped");
                }
            }
            Ok(Msg::Close(done)) => {
                spool.close();
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                spool.close();
                return;
            }
        }
        spool.tick();
    }
}
