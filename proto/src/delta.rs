//! Snapshot deltas, keyed by resource in the manner of Envoy's Delta xDS:
//! client keys are resources of their own (by hash), everything else is one
//! resource, the core (small next to the keys). The control plane diffs two
//! compiled snapshots (`diff_keys`); a data plane applies the delta to the
//! snapshot it serves (`Snapshot::apply_delta`) only when that is the
//! delta's base, and checks it ends up with as many keys as the control
//! plane has, so a node can never drift from the version it reports.

use std::borrow::Borrow;

use crate::model::{ClientKey, Extras, InvalidSnapshot, KeyChangeError, Snapshot};
use crate::pb::config as pb;

/// What changed in the client keys between two snapshots.
#[derive(Debug, Default, PartialEq)]
pub struct KeyDiff<'a> {
    /// Keys that are new, or changed (a changed hash is also in `removed`).
    pub upserted: Vec<&'a pb::ClientKey>,
    /// Hashes the target no longer has.
    pub removed: Vec<Vec<u8>>,
}

impl KeyDiff<'_> {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.upserted.len() + self.removed.len()
    }
}

/// Compares two key lists by name (the identity the control plane keeps).
/// Lists sorted by name (as `compile` makes them) are merge-joined in one
/// pass; keys that are the same allocation in both are not compared.
pub fn diff_keys<'a, K: Borrow<pb::ClientKey>>(base: &'a [K], target: &'a [K]) -> KeyDiff<'a> {
    let sorted = |keys: &'a [K]| -> Vec<&'a pb::ClientKey> {
        let mut v: Vec<&pb::ClientKey> = keys.iter().map(Borrow::borrow).collect();
        if !v.is_sorted_by(|a, b| a.name <= b.name) {
            v.sort_by(|a, b| a.name.cmp(&b.name));
        }
        v
    };
    let (base, target) = (sorted(base), sorted(target));
    let mut diff = KeyDiff::default();
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < target.len() {
        match (base.get(i), target.get(j)) {
            (Some(b), Some(t)) if b.name == t.name => {
                if !std::ptr::eq(*b, *t) && b != t {
                    if b.key_hash != t.key_hash {
                        diff.removed.push(b.key_hash.clone());
                    }
                    diff.upserted.push(t);
                }
                i += 1;
                j += 1;
            }
            (Some(b), Some(t)) if b.name < t.name => {
                diff.removed.push(b.key_hash.clone());
                i += 1;
            }
            (Some(b), None) => {
                diff.removed.push(b.key_hash.clone());
                i += 1;
            }
            (_, Some(t)) => {
                diff.upserted.push(t);
                j += 1;
            }
            (None, None) => break,
        }
    }
    diff
}

/// Why a node refuses a delta (it then gets the whole snapshot).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum InvalidDelta {
    #[error("the delta is from version {base:?} but this node serves {serving:?}")]
    BaseMismatch { base: String, serving: String },
    #[error("the delta has no version")]
    NoVersion,
    #[error(transparent)]
    Invalid(#[from] InvalidSnapshot),
    #[error("the delta's keys do not apply: {0}")]
    Keys(#[from] KeyChangeError),
    #[error("after the delta this node has {got} client keys, the control plane {want}")]
    KeyCount { want: u64, got: usize },
}

impl Snapshot {
    /// The snapshot `delta` leads to from this one. The delta's core, when
    /// it has one, replaces everything but the keys; unchanged shards of the
    /// key table are shared with `self`.
    pub fn apply_delta(&self, delta: pb::SnapshotDelta) -> Result<Snapshot, InvalidDelta> {
        if delta.base_version != self.version {
            return Err(InvalidDelta::BaseMismatch {
                base: delta.base_version,
                serving: self.version.clone(),
            });
        }
        if delta.version.is_empty() {
            return Err(InvalidDelta::NoVersion);
        }
        let core_changed = delta.core.is_some();
        let mut next = match delta.core {
            Some(mut core) => {
                core.client_keys.clear();
                core.version = delta.version.clone();
                Snapshot::try_from(core)?
            }
            None => {
                let mut next = self.clone();
                next.version = delta.version.clone();
                next
            }
        };
        let mut extras = Extras::default();
        let upserted = delta
            .upserted_keys
            .into_iter()
            .map(|k| ClientKey::from_pb(k, &mut extras))
            .collect::<Result<Vec<_>, _>>()?;
        // Budgets the new keys (or, with a new core, all keys) count toward
        // must be in the snapshot.
        if !core_changed {
            next.check_key_budgets(upserted.iter())?;
        }
        let keys = self
            .keys
            .with_changes(&delta.removed_key_hashes, upserted)?;
        if core_changed {
            next.check_key_budgets(keys.iter())?;
        }
        if keys.len() as u64 != delta.key_count {
            return Err(InvalidDelta::KeyCount {
                want: delta.key_count,
                got: keys.len(),
            });
        }
        next.keys = keys;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, hash: u8) -> pb::ClientKey {
        pb::ClientKey {
            id: format!("id-{name}"),
            name: name.into(),
            key_hash: vec![hash; 32],
            limits: Some(pb::Limits::default()),
            ..Default::default()
        }
    }

    fn snap(version: &str, keys: Vec<pb::ClientKey>) -> pb::Snapshot {
        pb::Snapshot {
            version: version.into(),
            client_keys: keys,
            budgets: vec![pb::Budget {
                id: "user:u".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn delta(base: &pb::Snapshot, target: &pb::Snapshot) -> pb::SnapshotDelta {
        let d = diff_keys(&base.client_keys, &target.client_keys);
        pb::SnapshotDelta {
            base_version: base.version.clone(),
            version: target.version.clone(),
            core: None,
            upserted_keys: d.upserted.into_iter().cloned().collect(),
            removed_key_hashes: d.removed,
            key_count: target.client_keys.len() as u64,
        }
    }

    #[test]
    fn diff_names_what_changed() {
        let base = vec![key("a", 1), key("b", 2), key("c", 3)];
        let mut b2 = key("b", 2);
        b2.models = vec!["gpt-*".into()];
        let target = vec![key("a", 1), b2.clone(), key("c", 9), key("d", 4)];
        let d = diff_keys(&base, &target);
        assert_eq!(d.upserted, vec![&b2, &key("c", 9), &key("d", 4)]);
        assert_eq!(d.removed, vec![vec![3; 32]]);
        assert!(diff_keys(&base, &base).is_empty());
        // Unsorted lists are sorted first.
        let shuffled = vec![key("c", 3), key("a", 1), key("b", 2)];
        assert!(diff_keys(&base, &shuffled).is_empty());
        let gone = diff_keys(&base, &[]);
        assert_eq!((gone.upserted.len(), gone.removed.len()), (0, 3));
    }

    #[test]
    fn deltas_apply_only_to_their_base_and_are_checked() {
        let v1 = snap("v1", vec![key("a", 1), key("b", 2)]);
        let mut bk = key("b", 7);
        bk.budgets = vec!["user:u".into()];
        let v2 = snap("v2", vec![key("a", 1), bk, key("c", 3)]);
        let served = Snapshot::try_from(v1.clone()).unwrap();
        let next = served.apply_delta(delta(&v1, &v2)).unwrap();
        assert_eq!(next.version, "v2");
        let mut names: Vec<&str> = next.keys.iter().map(ClientKey::name).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(next.keys.get(&[2; 32]).is_none());
        assert_eq!(next.keys.get(&[7; 32]).unwrap().budgets(), ["user:u"]);

        let mut wrong_base = delta(&v1, &v2);
        wrong_base.base_version = "v0".into();
        assert!(matches!(
            served.apply_delta(wrong_base),
            Err(InvalidDelta::BaseMismatch { .. })
        ));
        let mut miscounted = delta(&v1, &v2);
        miscounted.key_count += 1;
        assert!(matches!(
            served.apply_delta(miscounted),
            Err(InvalidDelta::KeyCount { want: 4, got: 3 })
        ));
        // A new core without the budget a kept key counts toward.
        let mut no_budget = delta(&v2, &v2);
        no_budget.base_version = "v2".into();
        no_budget.version = "v3".into();
        no_budget.core = Some(pb::Snapshot::default());
        assert!(matches!(
            next.apply_delta(no_budget),
            Err(InvalidDelta::Invalid(InvalidSnapshot::UnknownBudget { .. }))
        ));
        // A core with the budget, and a key removed.
        let v4 = snap("v4", vec![key("a", 1)]);
        let mut d = delta(&v2, &v4);
        d.core = Some(snap("ignored", vec![]));
        let last = next.apply_delta(d).unwrap();
        assert_eq!((last.version.as_str(), last.keys.len()), ("v4", 1));
    }
}
