//! The versions published last, so that a node serving one of them gets
//! only what changed since (a delta), and the deltas made so far: every
//! node that moves between the same two versions is sent the same bytes,
//! diffed and encoded once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use aigw_proto::delta::diff_keys;
use aigw_proto::pb::config as pb;
use bytes::Bytes;
use prost::Message as _;

use crate::compile::Compiled;

/// Versions kept. A node further behind (or unknown, e.g. after a control
/// plane restart) gets the whole snapshot.
const KEEP: usize = 8;

/// Published versions, newest last, and the deltas between them.
#[derive(Default)]
pub struct History {
    recent: VecDeque<Arc<Compiled>>,
    /// (from, to) → the encoded delta, or None when the whole snapshot is
    /// the better message.
    deltas: HashMap<(String, String), Option<Bytes>>,
}

impl History {
    pub fn push(&mut self, c: Arc<Compiled>) {
        self.recent.push_back(c);
        while self.recent.len() > KEEP {
            self.recent.pop_front();
        }
        let recent = &self.recent;
        let kept = |v: &str| recent.iter().any(|c| c.version() == v);
        self.deltas.retain(|(from, to), _| kept(from) && kept(to));
    }

    /// The encoded delta from version `from` to `to`; None when `from` is
    /// not a recent version or when a delta would not be smaller.
    pub fn delta(&mut self, from: &str, to: &Arc<Compiled>) -> Option<Bytes> {
        if from.is_empty() || from == to.version() {
            return None;
        }
        let memo = (from.to_string(), to.version().to_string());
        if let Some(d) = self.deltas.get(&memo) {
            return d.clone();
        }
        let base = self.recent.iter().find(|c| c.version() == from)?.clone();
        let d = build(&base, to);
        if self.recent.iter().any(|c| Arc::ptr_eq(c, to)) {
            self.deltas.insert(memo, d.clone());
        }
        d
    }
}

/// The delta from `base` to `target`: the core when anything but the keys
/// changed, the keys that are new or changed, the hashes of those gone.
/// None when it would carry more than half the keys (the whole snapshot is
/// then about as large, and simpler to apply).
pub fn build(base: &Compiled, target: &Compiled) -> Option<Bytes> {
    let diff = diff_keys(&base.keys, &target.keys);
    if diff.len() > target.keys.len() / 2 + 16 {
        return None;
    }
    let delta = pb::SnapshotDelta {
        base_version: base.version().to_string(),
        version: target.version().to_string(),
        core: (base.core_digest != target.core_digest).then(|| target.core.clone()),
        upserted_keys: diff.upserted.into_iter().cloned().collect(),
        removed_key_hashes: diff.removed,
        key_count: target.keys.len() as u64,
    };
    (delta.encoded_len() < target.encoded_len).then(|| Bytes::from(delta.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(keys: &[Arc<pb::ClientKey>], price: f64) -> Arc<Compiled> {
        let core = pb::Snapshot {
            pricing: vec![pb::Price {
                model: "m".into(),
                input: price,
                ..Default::default()
            }],
            ..Default::default()
        };
        Arc::new(Compiled::new(core, keys.to_vec().into()))
    }

    fn key(i: u32) -> Arc<pb::ClientKey> {
        Arc::new(pb::ClientKey {
            id: format!("id{i}"),
            name: format!("k{i:04}"),
            key_hash: i.to_be_bytes().repeat(8),
            ..Default::default()
        })
    }

    #[test]
    fn deltas_carry_what_changed_and_are_made_once() {
        let keys: Vec<_> = (0..100).map(key).collect();
        let v1 = compiled(&keys, 1.0);
        let mut more = keys.clone();
        more.push(key(100));
        more.remove(3);
        let v2 = compiled(&more, 1.0);
        let v3 = compiled(&more, 2.0);
        let mut h = History::default();
        for v in [&v1, &v2, &v3] {
            h.push(v.clone());
        }
        let d = pb::SnapshotDelta::decode(h.delta(v1.version(), &v2).unwrap()).unwrap();
        assert_eq!(d.base_version, v1.version());
        assert_eq!(d.version, v2.version());
        assert!(d.core.is_none());
        assert_eq!(d.upserted_keys, vec![(*key(100)).clone()]);
        assert_eq!(d.removed_key_hashes, vec![key(3).key_hash.clone()]);
        assert_eq!(d.key_count, 100);
        // Only the core changed.
        let d = pb::SnapshotDelta::decode(h.delta(v2.version(), &v3).unwrap()).unwrap();
        assert_eq!(d.core.unwrap().pricing[0].input, 2.0);
        assert!(d.upserted_keys.is_empty() && d.removed_key_hashes.is_empty());
        // Memoized: the same bytes again.
        let a = h.delta(v1.version(), &v3).unwrap();
        let b = h.delta(v1.version(), &v3).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr());
        // Unknown bases and big changes go whole.
        assert!(h.delta("unknown", &v3).is_none());
        let v4 = compiled(&(200..300).map(key).collect::<Vec<_>>(), 2.0);
        h.push(v4.clone());
        assert!(h.delta(v3.version(), &v4).is_none());
        for _ in 0..KEEP {
            h.push(v4.clone());
        }
        assert!(h.delta(v1.version(), &v4).is_none());
        assert!(h.deltas.is_empty());
    }
}
