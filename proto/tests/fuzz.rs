//! Property-based fuzzing of the snapshot's validation (`TryFrom`): whatever
//! a control plane (or someone holding its stream) sends, the data plane
//! either refuses it with a typed error or builds a snapshot whose indexes,
//! globs and secrets are all usable. `PROPTEST_CASES` sets the cases.

use aigw_proto::model::{MAX_SECRET, Snapshot};
use aigw_proto::pb::config as pb;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn name() -> impl Strategy<Value = String> {
    // Mostly valid, so accepted snapshots are common and checked too.
    prop_oneof![
        24 => "[a-z]{1,6}",
        2 => "[a-z*?.:-]{0,10}",
        1 => "\\PC{0,8}",
        1 => Just(String::new()),
    ]
}

fn provider() -> impl Strategy<Value = pb::Provider> {
    (
        name(),
        prop_oneof![
            12 => prop::sample::select(vec!["openai", "anthropic", "gemini", "openai-compatible"]),
            1 => prop::sample::select(vec!["x", ""]),
        ],
        prop_oneof![6 => Just("http://h:1".to_string()), 1 => Just(String::new()), 1 => "[a-z:/]{0,12}"],
        prop::collection::vec(name(), 0..4),
        prop_oneof![
            12 => prop::sample::select(vec!["", "round-robin", "weighted", "least-latency", "fill-first"]),
            1 => Just("?"),
        ],
        prop::collection::vec(
            (
                name(),
                prop_oneof![4 => "[!-~]{1,12}", 1 => "[ -~\\n]{0,12}"],
                any::<u32>(),
                prop_oneof![
                    6 => Just(std::collections::BTreeMap::new()),
                    1 => prop::collection::btree_map(
                        prop_oneof![4 => "[a-z-]{1,8}", 1 => Just("authorization".to_string()), 1 => "\\PC{0,4}"],
                        prop_oneof![4 => "[ -~]{0,8}", 1 => "\\PC{0,4}"],
                        1..3,
                    ),
                ],
                prop_oneof![4 => Just(None), 1 => prop::option::of(("[a-z_]{0,8}", any::<i64>()))],
            ),
            0..3,
        ),
        prop::collection::btree_map(name(), name(), 0..3),
        prop_oneof![12 => Just(""), 4 => Just("prompt-cache"), 1 => Just("sticky?")],
    )
        .prop_map(|(name, kind, base_url, models, strategy, keys, model_map, affinity)| pb::Provider {
            name,
            kind: kind.into(),
            base_url,
            models,
            strategy: strategy.into(),
            keys: keys
                .into_iter()
                .map(|(name, secret, weight, headers, health)| pb::ProviderKey {
                    name,
                    secret,
                    weight,
                    oauth: !headers.is_empty(),
                    headers,
                    health: health.map(|(status, retry_at_ms)| pb::KeyHealth {
                        status,
                        retry_at_ms,
                        detail: String::new(),
                    }),
                })
                .collect(),
            model_map,
            affinity: affinity.into(),
        })
}

fn snapshot() -> impl Strategy<Value = pb::Snapshot> {
    (
        prop::collection::vec(provider(), 0..4),
        prop::collection::vec((name(), prop_oneof![4 => 0.0f64..100.0, 1 => any::<f64>()], 0.0f64..100.0, prop_oneof![4 => Just(None), 1 => prop::option::of(any::<f64>())]), 0..3),
        prop::collection::vec((name(), prop_oneof![4 => prop::collection::vec(any::<u8>(), 32..=32), 1 => prop::collection::vec(any::<u8>(), 0..40)], prop::collection::vec(name(), 0..3)), 0..3),
        prop::collection::vec((name(), prop::collection::vec(name(), 0..3)), 0..3),
        prop_oneof![1 => Just(String::new()), 12 => Just("v1".to_string())],
        prop::bool::weighted(0.8),
    )
        .prop_map(|(mut providers, prices, keys, routes, version, tidy)| {
            // Mostly: distinct provider names, and routes naming them.
            if tidy {
                for (i, p) in providers.iter_mut().enumerate() {
                    p.name = format!("p{i}");
                }
            }
            let n = providers.len();
            let routes = routes
                .into_iter()
                .enumerate()
                .filter(|_| !tidy || n > 0)
                .map(|(i, (model, names))| {
                    let names = if tidy { vec![format!("p{}", i % n.max(1))] } else { names };
                    (model, names)
                })
                .collect::<Vec<_>>();
            (providers, prices, keys, routes, version)
        })
        .prop_map(|(providers, prices, keys, routes, version)| pb::Snapshot {
            version,
            providers,
            pricing: prices
                .into_iter()
                .map(|(model, input, output, cached_input)| pb::Price { model, input, output, cached_input })
                .collect(),
            client_keys: keys
                .into_iter()
                .map(|(name, key_hash, models)| pb::ClientKey {
                    id: name.clone(),
                    name,
                    key_hash,
                    models,
                    limits: None,
                    expires_at_ms: 0,
                    ..Default::default()
                })
                .collect(),
            routes: routes
                .into_iter()
                .map(|(model, providers)| pb::Route {
                    model,
                    providers,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
}

/// The generator must reach past validation often enough to matter.
#[test]
fn a_good_share_of_generated_snapshots_is_accepted() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let accepted = (0..500)
        .filter(|_| {
            let s = snapshot().new_tree(&mut runner).unwrap().current();
            Snapshot::try_from(s).is_ok_and(|s| !s.providers.is_empty())
        })
        .count();
    assert!(
        accepted >= 30,
        "only {accepted} of 500 accepted with providers"
    );
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
    fn accepted_snapshots_are_usable(s in snapshot()) {
        let Ok(snap) = Snapshot::try_from(s) else { return Ok(()) };
        for r in &snap.routes {
            prop_assert!(!r.providers.is_empty());
            prop_assert!(r.providers.iter().all(|&i| i < snap.providers.len()));
        }
        for p in &snap.providers {
            prop_assert!(p.base_url.starts_with("http://") || p.base_url.starts_with("https://"));
            for k in &p.keys {
                for (h, v) in &k.headers {
                    prop_assert!(h.parse::<String>().is_ok() && !h.is_empty() && h != "authorization");
                    prop_assert!(v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
                }
                prop_assert!(k.health.as_ref().is_none_or(|h| !h.status.is_empty()));
                prop_assert!(!k.secret.is_empty() && k.secret.len() <= MAX_SECRET);
                prop_assert!(k.secret.bytes().all(|b| b.is_ascii_graphic()), "{:?}", k.secret);
                prop_assert!(k.weight >= 1);
            }
        }
        for (m, p) in &snap.pricing {
            prop_assert!(p.input.is_finite() && p.input >= 0.0, "{m}");
            prop_assert!(p.cached_input.is_finite() && p.output.is_finite());
        }
        // Routing and pricing on anything an app could ask for.
        for model in ["gpt-4o", "a", "", "x*y"] {
            let _ = snap.route_chain(model).count();
            let _ = snap.price(model);
        }
    }
}
