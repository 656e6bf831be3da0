//! The data planes known to this control plane, for `AdminService.ListNodes`.
//! In memory on purpose: it describes live connections, which a restart ends
//! anyway. Each stream gets a connection number so that the end of an old
//! stream does not mark a node's newer connection as disconnected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aigw_proto::pb::admin::NodeInfo;
use tokio::sync::broadcast;

use crate::db::now_ms;

#[derive(Clone)]
pub struct Registry {
    nodes: Arc<Mutex<HashMap<String, Entry>>>,
    next_conn: Arc<AtomicU64>,
    /// Ids of node credentials revoked just now: their streams end.
    revoked: broadcast::Sender<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            nodes: Arc::default(),
            next_conn: Arc::default(),
            revoked: broadcast::channel(64).0,
        }
    }
}

struct Entry {
    info: NodeInfo,
    conn: u64,
}

/// Nodes listed at most: past it, disconnected ones are forgotten (a join
/// token lets nodes pick their ids, so the list must not grow for ever).
const MAX_NODES: usize = 10_000;

/// Makes room for one more node: disconnected nodes unseen for a day go,
/// and if that is not enough, the one disconnected longest.
fn forget_disconnected(nodes: &mut HashMap<String, Entry>) {
    let day_ago = now_ms() - 86_400_000;
    nodes.retain(|_, e| e.info.connected || e.info.last_seen_ms > day_ago);
    if nodes.len() >= MAX_NODES
        && let Some(id) = nodes
            .iter()
            .filter(|(_, e)| !e.info.connected)
            .min_by_key(|(_, e)| e.info.last_seen_ms)
            .map(|(id, _)| id.clone())
    {
        nodes.remove(&id);
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a node's Hello; returns the connection number for later calls.
    pub fn connect(&self, node_id: &str, region: &str, applied_version: &str) -> u64 {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let mut nodes = self.lock();
        if nodes.get(node_id).is_some_and(|e| e.info.connected) {
            tracing::warn!(
                node_id,
                "a node with this id is already connected; tracking the newest stream"
            );
        } else if !nodes.contains_key(node_id) && nodes.len() >= MAX_NODES {
            forget_disconnected(&mut nodes);
        }
        nodes.insert(
            node_id.to_string(),
            Entry {
                info: NodeInfo {
                    node_id: node_id.to_string(),
                    region: region.to_string(),
                    applied_version: applied_version.to_string(),
                    last_seen_ms: now_ms(),
                    connected: true,
                    last_error: String::new(),
                },
                conn,
            },
        );
        conn
    }

    fn update(&self, node_id: &str, conn: u64, f: impl FnOnce(&mut NodeInfo)) {
        if let Some(e) = self.lock().get_mut(node_id).filter(|e| e.conn == conn) {
            e.info.last_seen_ms = now_ms();
            f(&mut e.info);
        }
    }

    pub fn seen(&self, node_id: &str, conn: u64) {
        self.update(node_id, conn, |_| {});
    }

    pub fn acked(&self, node_id: &str, conn: u64, version: &str) {
        self.update(node_id, conn, |i| {
            i.applied_version = version.to_string();
            i.last_error.clear();
        });
    }

    pub fn nacked(&self, node_id: &str, conn: u64, kept_version: &str, error: &str) {
        self.update(node_id, conn, |i| {
            i.applied_version = kept_version.to_string();
            i.last_error = error.to_string();
        });
    }

    /// The node is not sent the current version, for `why`.
    pub fn held(&self, node_id: &str, conn: u64, why: &str) {
        self.update(node_id, conn, |i| i.last_error = why.to_string());
    }

    pub fn disconnect(&self, node_id: &str, conn: u64) {
        self.update(node_id, conn, |i| i.connected = false);
    }

    /// Tells the streams of a revoked node credential to end.
    pub fn revoke_credential(&self, credential_id: &str) {
        let _ = self.revoked.send(credential_id.to_string());
    }

    /// Revocations from now on.
    pub fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }

    /// All known nodes, connected ones first, then by id.
    pub fn list(&self) -> Vec<NodeInfo> {
        let mut out: Vec<NodeInfo> = self.lock().values().map(|e| e.info.clone()).collect();
        out.sort_by(|a, b| {
            b.connected
                .cmp(&a.connected)
                .then_with(|| a.node_id.cmp(&b.node_id))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnected_nodes_make_room_when_the_list_is_full() {
        let r = Registry::default();
        for i in 0..MAX_NODES {
            let id = format!("n{i}");
            let conn = r.connect(&id, "eu", "v1");
            if i != 0 {
                r.disconnect(&id, conn);
            }
        }
        r.connect("newcomer", "eu", "v1");
        let listed = r.list();
        assert_eq!(listed.len(), MAX_NODES);
        assert!(listed.iter().any(|n| n.node_id == "newcomer"));
        assert!(
            listed.iter().any(|n| n.node_id == "n0"),
            "a connected node stays"
        );
    }

    #[test]
    fn stale_connections_do_not_override_newer_ones() {
        let r = Registry::default();
        let old = r.connect("n1", "eu", "");
        let new = r.connect("n1", "eu", "v0");
        r.acked("n1", old, "stale");
        r.disconnect("n1", old);
        let n = &r.list()[0];
        assert!(n.connected);
        assert_eq!(n.applied_version, "v0");
        r.nacked("n1", new, "v0", "bad snapshot");
        assert_eq!(r.list()[0].last_error, "bad snapshot");
        r.acked("n1", new, "v2");
        assert_eq!(r.list()[0].last_error, "");
        r.disconnect("n1", new);
        assert!(!r.list()[0].connected);
    }
}
