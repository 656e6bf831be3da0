//! Deltas, property-tested: for any two key sets (names reused, hashes
//! moving between names, settings changing), the delta the control plane
//! computes from the old to the new takes a data plane serving the old
//! exactly to the new. `PROPTEST_CASES` sets the cases.

use aigw_proto::delta::diff_keys;
use aigw_proto::model::{ClientKey, Snapshot};
use aigw_proto::pb::config as pb;
use proptest::prelude::*;

/// A key from small pools of names and hashes, so sets overlap often.
fn key() -> impl Strategy<Value = pb::ClientKey> {
    (
        0..24u8,
        0..32u8,
        prop::option::of(prop::sample::select(vec!["gpt-*", "o3"])),
        prop::option::of(1..1000u64),
        any::<bool>(),
        prop_oneof![3 => Just(0i64), 1 => 1..5i64],
        any::<bool>(),
    )
        .prop_map(
            |(n, h, model, rpm, budget, expires, global)| pb::ClientKey {
                id: format!("id-{n}"),
                name: format!("key-{n:02}"),
                key_hash: vec![h; 32],
                models: model.into_iter().map(String::from).collect(),
                limits: Some(pb::Limits {
                    rpm,
                    ..Default::default()
                }),
                expires_at_ms: expires,
                budgets: if budget {
                    vec!["user:u".into()]
                } else {
                    vec![]
                },
                global,
            },
        )
}

/// Unique names and hashes (the control plane guarantees both), sorted by
/// name as compiled.
fn key_set() -> impl Strategy<Value = Vec<pb::ClientKey>> {
    prop::collection::vec(key(), 0..20).prop_map(|mut keys| {
        let mut names = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        keys.retain(|k| names.insert(k.name.clone()) && hashes.insert(k.key_hash.clone()));
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys
    })
}

fn snapshot(version: &str, price: f64, keys: Vec<pb::ClientKey>) -> pb::Snapshot {
    pb::Snapshot {
        version: version.into(),
        pricing: vec![pb::Price {
            model: "gpt-4o".into(),
            input: price,
            output: 1.0,
            cached_input: None,
        }],
        client_keys: keys,
        budgets: vec![pb::Budget {
            id: "user:u".into(),
            name: "user u".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The keys as the data plane holds them, back in the control plane's form.
fn keys_of(s: &Snapshot) -> Vec<pb::ClientKey> {
    let mut v: Vec<pb::ClientKey> = s.keys.iter().map(ClientKey::to_pb).collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn applying_the_diff_of_old_and_new_to_old_gives_new(
        old in key_set(),
        new in key_set(),
        core_changes in any::<bool>(),
    ) {
        let old_pb = snapshot("v1", 1.0, old);
        let new_price = if core_changes { 2.0 } else { 1.0 };
        let new_pb = snapshot("v2", new_price, new);
        let diff = diff_keys(&old_pb.client_keys, &new_pb.client_keys);
        let mut core = new_pb.clone();
        core.client_keys.clear();
        let delta = pb::SnapshotDelta {
            base_version: "v1".into(),
            version: "v2".into(),
            core: core_changes.then_some(core),
            upserted_keys: diff.upserted.iter().map(|k| (*k).clone()).collect(),
            removed_key_hashes: diff.removed.clone(),
            key_count: new_pb.client_keys.len() as u64,
        };
        let served = Snapshot::try_from(old_pb.clone()).expect("old is valid");
        let applied = served.apply_delta(delta).expect("the delta applies");
        let want = Snapshot::try_from(new_pb.clone()).expect("new is valid");
        prop_assert_eq!(&applied.version, "v2");
        prop_assert_eq!(keys_of(&applied), keys_of(&want));
        prop_assert_eq!(keys_of(&applied), new_pb.client_keys.clone());
        for k in &new_pb.client_keys {
            let hash: [u8; 32] = k.key_hash.as_slice().try_into().expect("32 bytes");
            prop_assert_eq!(applied.keys.get(&hash).map(ClientKey::name), Some(k.name.as_str()));
        }
        for k in &old_pb.client_keys {
            let hash: [u8; 32] = k.key_hash.as_slice().try_into().expect("32 bytes");
            let still = new_pb.client_keys.iter().any(|n| n.key_hash == k.key_hash);
            prop_assert_eq!(applied.keys.get(&hash).is_some(), still);
        }
        prop_assert_eq!(applied.price("gpt-4o").map(|p| p.input), Some(new_price));
        // The same delta does not apply twice.
        let again = pb::SnapshotDelta {
            base_version: "v1".into(),
            version: "v2".into(),
            key_count: new_pb.client_keys.len() as u64,
            ..Default::default()
        };
        prop_assert!(applied.apply_delta(again).is_err());
    }
}
