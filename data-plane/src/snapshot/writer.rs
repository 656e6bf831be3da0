//! Writes the disk copy off the request and snapshot paths, debounced on
//! the trailing edge only: a new state after a quiet spell is written at
//! once (a restart soon after still finds it), and the states that follow
//! within `DEBOUNCE` are one write of the last, so a burst of deltas costs
//! at most one write every `DEBOUNCE`. The copy is always whole (it must serve alone after a
//! restart): a whole snapshot received is written as it came, the state
//! after a delta is encoded from the runtime (its core as received, its keys
//! converted back, in the control plane's order). `flush` writes what is
//! pending at shutdown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aigw_proto::model::ClientKey;
use aigw_proto::wire;
use bytes::Bytes;
use tokio::sync::Notify;

use super::disk::DiskCache;
use crate::runtime::Runtime;

/// The least time between two writes; the longest a state waits.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// A state to write: the runtime, and its encoding when it came whole.
struct Job {
    runtime: Arc<Runtime>,
    encoded: Option<Bytes>,
}

pub struct DiskWriter {
    cache: DiskCache,
    pending: Mutex<Option<Job>>,
    /// Held while a job is taken and written, so writes land in order.
    writing: Mutex<()>,
    wake: Notify,
}

impl DiskWriter {
    pub fn new(cache: DiskCache) -> Arc<Self> {
        Arc::new(Self {
            cache,
            pending: Mutex::new(None),
            writing: Mutex::new(()),
            wake: Notify::new(),
        })
    }

    pub fn cache(&self) -> &DiskCache {
        &self.cache
    }

    /// Writes every state handed to `save`, debounced, until the process
    /// ends. A `save` during the write or the pause after it leaves a
    /// permit, so the next turn writes at once what is pending by then.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.write_pending()).await;
            tokio::time::sleep(DEBOUNCE).await;
        }
    }

    /// Queues `runtime` for writing (replacing any state not written yet).
    pub fn save(&self, runtime: Arc<Runtime>, encoded: Option<Bytes>) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Job { runtime, encoded });
        self.wake.notify_one();
    }

    /// Writes what is pending now (blocking): at shutdown.
    pub fn flush(&self) {
        self.write_pending();
    }

    fn write_pending(&self) {
        let _order = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(job) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let version = job.runtime.version().to_string();
        let encoded = match job.encoded {
            Some(bytes) => bytes.to_vec(),
            None => encode(&job.runtime),
        };
        drop(job.runtime);
        match self.cache.store(encoded) {
            Ok(()) => {
                metrics::counter!("aigw_snapshot_disk_writes_total").increment(1);
                tracing::debug!(%version, "snapshot copy written to disk");
            }
            // Serving matters more than the disk copy; say so loudly.
            Err(e) => tracing::error!(error = %e, "cannot write the snapshot copy to disk"),
        }
    }
}

/// The whole snapshot a runtime serves, encoded as the control plane
/// encodes it (keys sorted by name), one key converted at a time.
pub fn encode(rt: &Runtime) -> Vec<u8> {
    let mut keys: Vec<&ClientKey> = rt.snapshot.keys.iter().collect();
    keys.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    wire::encode_whole_to_vec(&rt.core, keys.into_iter().map(ClientKey::to_pb))
}
