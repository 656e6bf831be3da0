//! The current snapshot, shared with every node stream through a `watch`
//! channel: streams wake on a change and always read the latest version, so a
//! burst of admin changes costs a slow node one push, not one per change.
//! The versions published last are kept (`History`) so that a node gets
//! only what changed since the version it serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::watch;

use super::history::History;
use super::hold::Hold;
use crate::compile::Compiled;

#[derive(Clone)]
pub struct Publisher {
    tx: Arc<watch::Sender<Arc<Compiled>>>,
    history: Arc<Mutex<History>>,
    /// New versions published since start.
    published: Arc<AtomicU64>,
    /// Whether the (empty) current snapshot is held back from nodes that
    /// serve a configuration; a new version lifts it.
    hold: Hold,
}

impl Publisher {
    /// `initial` must come from `compile::compile`, which validates it.
    pub fn new(initial: Compiled) -> Self {
        let initial = Arc::new(initial);
        let mut history = History::default();
        history.push(initial.clone());
        let (tx, _) = watch::channel(initial);
        Self {
            tx: Arc::new(tx),
            history: Arc::new(Mutex::new(history)),
            published: Arc::default(),
            hold: Hold::default(),
        }
    }

    /// The hold on the empty configuration of a fresh database.
    pub fn hold(&self) -> &Hold {
        &self.hold
    }

    pub fn current(&self) -> Arc<Compiled> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Compiled>> {
        self.tx.subscribe()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `snapshot` current unless it has the current version. Returns
    /// whether it changed; only then are the nodes woken. Called on a
    /// blocking thread (after a commit): the delta most nodes need, from the
    /// version they have now, is made here rather than on their streams.
    pub fn publish(&self, snapshot: Compiled) -> bool {
        let previous = self.current();
        if previous.version() == snapshot.version() {
            return false;
        }
        let next = Arc::new(snapshot);
        {
            let mut history = self.history();
            history.push(next.clone());
            let _ = history.delta(previous.version(), &next);
        }
        self.tx.send_replace(next.clone());
        // After the new version is current: a node let go gets that one.
        self.hold.lift("a new configuration was published");
        self.published.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::snapshot_published();
        tracing::info!(version = %next.version(), client_keys = next.keys.len(),
            bytes = next.encoded_len, "published snapshot");
        true
    }

    /// How many new versions were published since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// The encoded delta that takes a node from version `from` to `to`, when
    /// `from` is recent and a delta is the smaller message. Blocking (it may
    /// diff two versions); memoized, so every node pays for it once.
    pub fn delta(&self, from: &str, to: &Arc<Compiled>) -> Option<Bytes> {
        self.history().delta(from, to)
    }
}
