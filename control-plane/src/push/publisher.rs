//! The current snapshot, shared with every node stream through a `watch`
//! channel: streams wake on a change and always read the latest version, so a
//! burst of admin changes costs a slow node one push, not one per change.

use std::sync::Arc;

use aigw_proto::pb::config as pb;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Publisher {
    tx: Arc<watch::Sender<Arc<pb::Snapshot>>>,
}

impl Publisher {
    /// `initial` must come from `compile::compile`, which validates it.
    pub fn new(initial: pb::Snapshot) -> Self {
        let (tx, _) = watch::channel(Arc::new(initial));
        Self { tx: Arc::new(tx) }
    }

    pub fn current(&self) -> Arc<pb::Snapshot> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<pb::Snapshot>> {
        self.tx.subscribe()
    }

    /// Makes `snapshot` current unless it has the current version. Returns
    /// whether it changed; only then are the nodes woken.
    pub fn publish(&self, snapshot: pb::Snapshot) -> bool {
        let changed = self.tx.send_if_modified(|cur| {
            if cur.version == snapshot.version {
                false
            } else {
                *cur = Arc::new(snapshot);
                true
            }
        });
        if changed {
            crate::telemetry::snapshot_published();
            tracing::info!(version = %self.current().version, "published snapshot");
        }
        changed
    }
}
