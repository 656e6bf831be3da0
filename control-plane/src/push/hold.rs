//! The hold on an empty configuration. A control plane that starts on a
//! database that never held a configuration (no provider, no client key, no
//! audit entry: a fresh file, most likely the wrong `DATABASE_URL` or an
//! unmounted volume) must not replace what the data planes serve with its
//! empty snapshot: they would save it and refuse every client key, even
//! after a restart. Nodes that say they serve a version are not sent the
//! empty one; each is named once in the log and in the node list. The
//! first admin change lifts the hold: a new version published, or any
//! entry in the audit log (an admin who deliberately emptied the
//! configuration leaves those, so such a database is never held).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::db::Db;

/// How often a held control plane looks for an admin change in the audit log.
const AUDIT_POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Hold {
    held: Arc<watch::Sender<bool>>,
    /// Nodes already told about (once per node while held).
    told: Arc<Mutex<HashSet<String>>>,
}

impl Default for Hold {
    fn default() -> Self {
        Self {
            held: Arc::new(watch::channel(false).0),
            told: Arc::default(),
        }
    }
}

impl Hold {
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Holds the empty snapshot back from nodes that serve a version.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Ends the hold (`why` is logged); nodes waiting get the current version.
    pub fn lift(&self, why: &str) {
        if self.held.send_replace(false) {
            self.told
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            tracing::info!(
                why,
                "configuration hold lifted: data planes get the current configuration"
            );
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.held.subscribe()
    }

    /// Whether `node` is mentioned for the first time in this hold.
    pub fn first_mention(&self, node: &str) -> bool {
        self.told
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node.to_string())
    }

    /// The message for `node`, which serves `version`.
    pub fn message(node: &str, version: &str) -> String {
        format!(
            "this control plane's database holds no configuration, but node {node} serves \
             version {version}: is DATABASE_URL / the data directory right? The node keeps its \
             configuration; apply a configuration (or make any admin change) to replace it"
        )
    }

    /// While held, looks for an admin change in the audit log (one that
    /// published no new version: a user created, an empty configuration
    /// applied) and lifts the hold when one is there.
    pub async fn lift_on_admin_change(self, db: Db, mut shutdown: watch::Receiver<bool>) {
        let mut held = self.subscribe();
        while self.is_held() {
            tokio::select! {
                () = tokio::time::sleep(AUDIT_POLL) => {}
                _ = held.changed() => continue,
                _ = shutdown.wait_for(|down| *down) => return,
            }
            match db.run(crate::db::identity::any_audit).await {
                Ok(true) => self.lift("an admin change was recorded in the audit log"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "configuration hold: cannot read the audit log")
                }
            }
        }
    }
}
