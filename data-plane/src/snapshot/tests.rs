//! The watcher without a control plane: whole snapshots and deltas applied,
//! refused deltas leaving the runtime as it was, the disk copy after deltas
//! being exactly the control plane's whole snapshot.

use std::sync::Arc;

use aigw_proto::delta::diff_keys;
use aigw_proto::pb::config as pb;
use arc_swap::ArcSwapOption;
use prost::Message as _;

use super::*;

fn key(i: u32, rpm: Option<u64>) -> pb::ClientKey {
    pb::ClientKey {
        id: format!("{i:032x}"),
        name: format!("key-{i:05}"),
        key_hash: ring::digest::digest(&ring::digest::SHA256, format!("sk-{i}").as_bytes())
            .as_ref()
            .to_vec(),
        models: if i.is_multiple_of(3) {
            vec!["gpt-4o*".into()]
        } else {
            vec![]
        },
        limits: Some(pb::Limits {
            rpm,
            ..Default::default()
        }),
        budgets: if i.is_multiple_of(5) {
            vec!["user:u1".into()]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

/// A snapshot as the control plane compiles it: keys sorted by name,
/// limits always present.
fn snapshot(version: &str, secret: &str, keys: Vec<pb::ClientKey>) -> pb::Snapshot {
    let mut keys = keys;
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    pb::Snapshot {
        version: version.into(),
        providers: vec![pb::Provider {
            name: "p".into(),
            kind: "openai".into(),
            models: vec!["gpt-4o*".into()],
            keys: vec![pb::ProviderKey {
                name: "k".into(),
                secret: secret.into(),
                weight: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        client_keys: keys,
        budgets: vec![pb::Budget {
            id: "user:u1".into(),
            name: "user u1".into(),
            limits: Some(pb::Limits {
                rpm: Some(5),
                ..Default::default()
            }),
            global: false,
        }],
        ..Default::default()
    }
}

fn delta(from: &pb::Snapshot, to: &pb::Snapshot, core: bool) -> Bytes {
    let d = diff_keys(&from.client_keys, &to.client_keys);
    let mut c = to.clone();
    c.client_keys.clear();
    let msg = pb::SnapshotDelta {
        base_version: from.version.clone(),
        version: to.version.clone(),
        core: core.then_some(c),
        upserted_keys: d.upserted.into_iter().cloned().collect(),
        removed_key_hashes: d.removed,
        key_count: to.client_keys.len() as u64,
    };
    Bytes::from(msg.encode_to_vec())
}

fn watcher(dir: &std::path::Path) -> Watcher {
    Watcher::new(
        Arc::new(ArcSwapOption::empty()),
        DiskCache::new(cache_path(dir), "node-token"),
        "n1".into(),
        "eu".into(),
    )
}

fn current(w: &Watcher) -> Arc<Runtime> {
    w.live.load_full().expect("a runtime")
}

#[test]
fn deltas_apply_to_their_base_and_the_disk_copy_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let w = watcher(dir.path());
    let v1 = snapshot("v1", "sk-up-1", (0..300).map(|i| key(i, None)).collect());
    let bytes = v1.encode_to_vec();
    assert_eq!(w.apply_whole(&bytes, None).unwrap(), "v1");
    let rt1 = current(&w);
    assert_eq!(rt1.snapshot.keys.len(), 300);

    // Keys only: one changed, one gone, one new; the pools are kept.
    let mut keys: Vec<pb::ClientKey> = (0..300).filter(|&i| i != 7).map(|i| key(i, None)).collect();
    keys[10] = key(11, Some(60));
    keys.push(key(1000, None));
    let v2 = snapshot("v2", "sk-up-1", keys);
    assert_eq!(w.apply_delta(delta(&v1, &v2, false)).unwrap(), "v2");
    let rt2 = current(&w);
    assert!(Arc::ptr_eq(&rt1.upstreams[0], &rt2.upstreams[0]));
    assert_eq!(rt2.core.version, "v2");
    let hash = |k: &pb::ClientKey| -> [u8; 32] { k.key_hash.as_slice().try_into().unwrap() };
    assert!(rt2.client_key(&hash(&key(7, None))).is_none());
    assert!(rt2.client_key(&hash(&key(1000, None))).is_some());
    assert_eq!(
        rt2.client_key(&hash(&key(11, None))).unwrap().limits().rpm,
        Some(60)
    );
    // The old runtime still serves what it had, for requests in flight.
    assert!(rt1.client_key(&hash(&key(7, None))).is_some());

    // A delta from another base is refused and changes nothing.
    let v3 = snapshot("v3", "sk-up-2", v2.client_keys.clone());
    let stale = delta(&v1, &v3, true);
    assert!(matches!(
        w.apply_delta(stale),
        Err(ApplyError::Delta(InvalidDelta::BaseMismatch { .. }))
    ));
    assert_eq!(current(&w).version(), "v2");
    // The core changes (a new upstream secret): pools are rebuilt.
    assert_eq!(w.apply_delta(delta(&v2, &v3, true)).unwrap(), "v3");
    let rt3 = current(&w);
    assert!(!Arc::ptr_eq(&rt2.upstreams[0], &rt3.upstreams[0]));
    assert_eq!(rt3.upstreams[0].provider.keys[0].secret, "sk-up-2");

    // The disk copy after deltas is byte for byte the whole v3.
    assert_eq!(encode(&rt3), v3.encode_to_vec());
    w.disk.flush();
    let restarted = watcher(dir.path());
    restarted.load_from_disk();
    let back = current(&restarted);
    assert_eq!(back.version(), "v3");
    assert_eq!(back.snapshot.keys.len(), v3.client_keys.len());
    assert_eq!(encode(&back), v3.encode_to_vec());
}

#[test]
fn broken_or_baseless_deltas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = watcher(dir.path());
    let v1 = snapshot("v1", "sk-up-1", vec![key(1, None)]);
    let v2 = snapshot("v2", "sk-up-1", vec![key(1, None), key(2, None)]);
    assert!(matches!(
        w.apply_delta(delta(&v1, &v2, false)),
        Err(ApplyError::NoBase)
    ));
    w.apply_whole(&v1.encode_to_vec(), None).unwrap();
    assert!(matches!(
        w.apply_delta(Bytes::from_static(b"\xff\xff")),
        Err(ApplyError::DecodeDelta(_))
    ));
    // Keys the node does not have cannot be removed.
    let mut d = pb::SnapshotDelta::decode(delta(&v1, &v2, false)).unwrap();
    d.removed_key_hashes.push(vec![9; 32]);
    d.key_count -= 1;
    assert!(w.apply_delta(Bytes::from(d.encode_to_vec())).is_err());
    assert_eq!(current(&w).version(), "v1");
    // A whole snapshot that does not decode names the version it offered.
    let mut bad = v2.encode_to_vec();
    bad.truncate(bad.len() - 3);
    assert!(w.apply_whole(&bad, None).is_err());
    assert_eq!(offered_version(&bad, 1), "v2");
    assert_eq!(current(&w).version(), "v1");
}
