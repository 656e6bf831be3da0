//! AdminService called directly (no network): validation, idempotence,
//! secrets handling and what each change does to the published snapshot.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    ClientKeySpec, ListRequest, NameRequest, PriceSpec, ProviderKeySpec, ProviderSpec, RouteSpec,
};
use tonic::Code;
use tonic::Request;
use tonic::metadata::MetadataValue;

use super::testkit::{req, svc};
use crate::crypto;
use crate::db::testing::temp_db;

fn provider(secret: &str) -> ProviderSpec {
    ProviderSpec {
        name: "openai-main".into(),
        kind: "openai".into(),
        base_url: String::new(),
        models: vec!["gpt-4o*".into(), "o3".into()],
        strategy: "weighted".into(),
        keys: vec![
            ProviderKeySpec {
                name: "team-a".into(),
                secret: secret.into(),
                weight: 3,
                oauth_template: String::new(),
            },
            ProviderKeySpec {
                name: "team-b".into(),
                secret: "sk-team-b-0123456789".into(),
                weight: 0,
                oauth_template: String::new(),
            },
        ],
        model_map: Default::default(),
        ..Default::default()
    }
}

#[tokio::test]
async fn provider_upsert_is_idempotent_and_secrets_stay_hidden() {
    let t = temp_db();
    let s = svc(&t);
    let v0 = s.publisher.current().to_pb().version.clone();

    let r = s
        .upsert_provider(req(provider("sk-proj-abcdefghijkl9876")))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created && r.changed);
    let v1 = s.publisher.current().to_pb().version.clone();
    assert_ne!(v0, v1);
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.providers[0].keys[0].secret, "sk-proj-abcdefghijkl9876");
    assert_eq!(
        snap.providers[0].keys[1].weight, 1,
        "weight 0 means the default, 1"
    );

    // Same spec again: encryption is randomized, but nothing changed.
    let r = s
        .upsert_provider(req(provider("sk-proj-abcdefghijkl9876")))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.created && !r.changed);
    assert_eq!(s.publisher.current().to_pb().version, v1);

    // Listing shows hints only.
    let list = s
        .list_providers(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    let keys = &list.providers[0].keys;
    assert_eq!(keys[0].secret_hint, "sk-…9876");
    assert_eq!(keys[0].weight, 3);
    assert!(!format!("{list:?}").contains("abcdefghijkl"));

    // An empty secret keeps the stored one; a weight change is a change.
    let mut spec = provider("");
    spec.keys[0].weight = 5;
    let r = s.upsert_provider(req(spec)).await.unwrap().into_inner();
    assert!(!r.created && r.changed);
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.providers[0].keys[0].secret, "sk-proj-abcdefghijkl9876");
    assert_eq!(snap.providers[0].keys[0].weight, 5);

    // Keys not named are removed.
    let mut spec = provider("sk-proj-abcdefghijkl9876");
    spec.keys.truncate(1);
    s.upsert_provider(req(spec)).await.unwrap();
    assert_eq!(s.publisher.current().to_pb().providers[0].keys.len(), 1);

    // Deleting: true once, then false; the snapshot is back to empty.
    let d = s
        .delete_provider(req(NameRequest {
            name: "openai-main".into(),
        }))
        .await
        .unwrap();
    assert!(d.into_inner().deleted);
    let d = s
        .delete_provider(req(NameRequest {
            name: "openai-main".into(),
        }))
        .await
        .unwrap();
    assert!(!d.into_inner().deleted);
    assert_eq!(s.publisher.current().to_pb().version, v0);
}

#[tokio::test]
async fn invalid_specs_are_refused_with_clear_messages() {
    let t = temp_db();
    let s = svc(&t);
    let cases: Vec<(ProviderSpec, &str)> = vec![
        (
            ProviderSpec {
                kind: "mystery".into(),
                ..provider("sk-x-123456789")
            },
            "unknown kind",
        ),
        (
            ProviderSpec {
                strategy: "random".into(),
                ..provider("sk-x-123456789")
            },
            "unknown strategy",
        ),
        (
            ProviderSpec {
                name: String::new(),
                ..provider("sk-x-123456789")
            },
            "must not be empty",
        ),
        (
            ProviderSpec {
                base_url: "ftp://x".into(),
                ..provider("sk-x-123456789")
            },
            "base_url",
        ),
        (
            ProviderSpec {
                kind: "openai-compatible".into(),
                ..provider("sk-x-123456789")
            },
            "needs a base_url",
        ),
        (provider(""), "needs a secret"),
        // Too short to be told from words when an upstream echoes it.
        (provider("Zq7xK2p"), "at least 8 characters"),
    ];
    for (spec, expected) in cases {
        let e = s.upsert_provider(req(spec)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains(expected),
            "{:?} should mention {expected:?}",
            e.message()
        );
    }
    let bad_price = PriceSpec {
        model: "gpt-4o".into(),
        input: -1.0,
        output: 1.0,
        cached_input: None,
    };
    let e = s.upsert_price(req(bad_price)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("input"));
    // Nothing was stored by any of them.
    assert!(
        s.list_providers(req(ListRequest {}))
            .await
            .unwrap()
            .into_inner()
            .providers
            .is_empty()
    );
}

#[tokio::test]
async fn requests_without_the_admin_token_are_refused() {
    let t = temp_db();
    let s = svc(&t);
    let e = s
        .list_providers(Request::new(ListRequest {}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut r = Request::new(ListRequest {});
    r.metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer wrong"));
    assert_eq!(
        s.list_nodes(r).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn client_keys_are_generated_once_and_stored_hashed() {
    let t = temp_db();
    let s = svc(&t);
    let spec = ClientKeySpec {
        name: "checkout-service".into(),
        models: vec!["gpt-4o*".into()],
        rpm: Some(600),
        cost_per_day: Some(25.0),
        ..Default::default()
    };
    let r = s
        .upsert_client_key(req(spec.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created && r.changed);
    let key = r.generated_key;
    assert!(key.starts_with("sk-aigw-") && key.len() == 40, "{key}");
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.client_keys[0].key_hash, crypto::sha256(&key).to_vec());
    assert_eq!(snap.client_keys[0].limits.as_ref().unwrap().rpm, Some(600));

    // Empty key again: keep it, no new key, no change.
    let r = s
        .upsert_client_key(req(spec.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.created && !r.changed && r.generated_key.is_empty());

    let list = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    let info = &list.client_keys[0];
    assert_eq!(info.key_hint, format!("sk-aigw-…{}", &key[key.len() - 4..]));
    assert!(!info.id.is_empty() && info.created_at_ms > 0);

    // Given key: stored hashed; the same key for another client is refused.
    let given = ClientKeySpec {
        key: "sk-aigw-given-key-1234".into(),
        ..spec.clone()
    };
    let r = s.upsert_client_key(req(given)).await.unwrap().into_inner();
    assert!(r.changed && r.generated_key.is_empty());
    let other = ClientKeySpec {
        name: "other".into(),
        key: "sk-aigw-given-key-1234".into(),
        ..Default::default()
    };
    assert_eq!(
        s.upsert_client_key(req(other)).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    let short = ClientKeySpec {
        name: "short".into(),
        key: "abc".into(),
        ..Default::default()
    };
    assert_eq!(
        s.upsert_client_key(req(short)).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn pricing_upsert_list_delete() {
    let t = temp_db();
    let s = svc(&t);
    let spec = PriceSpec {
        model: "gpt-4o".into(),
        input: 2.5,
        output: 10.0,
        cached_input: Some(1.25),
    };
    assert!(
        s.upsert_price(req(spec.clone()))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    assert!(
        !s.upsert_price(req(spec.clone()))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    let r = s
        .upsert_price(req(PriceSpec {
            cached_input: None,
            ..spec
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.changed && !r.created);
    let list = s
        .list_pricing(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.pricing[0].cached_input, None);
    assert_eq!(s.publisher.current().to_pb().pricing[0].input, 2.5);
    let d = s
        .delete_price(req(NameRequest {
            name: "gpt-4o".into(),
        }))
        .await
        .unwrap();
    assert!(d.into_inner().deleted);
    assert!(s.publisher.current().to_pb().pricing.is_empty());
}

/// A price so high that a request's cost overflows to infinity was stored,
/// and the request then traced (and charged) a cost of 0.
#[tokio::test]
async fn prices_above_a_million_usd_per_million_tokens_are_refused() {
    let t = temp_db();
    let s = svc(&t);
    let ok = PriceSpec {
        model: "gpt-4o".into(),
        input: 1_000_000.0,
        output: 1_000_000.0,
        cached_input: Some(1_000_000.0),
    };
    let cases = [
        (
            PriceSpec {
                input: 1e308,
                output: 1e308,
                ..ok.clone()
            },
            "input",
        ),
        (
            PriceSpec {
                output: 1e200,
                ..ok.clone()
            },
            "output",
        ),
        (
            PriceSpec {
                cached_input: Some(1_000_001.0),
                ..ok.clone()
            },
            "cached_input",
        ),
    ];
    for (spec, field) in cases {
        let e = s.upsert_price(req(spec)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(
            e.message()
                .contains(&format!("{field} must be at most 1000000")),
            "{:?} should name {field}",
            e.message()
        );
    }
    assert!(s.publisher.current().to_pb().pricing.is_empty());
    // The bound itself is a price.
    assert!(s.upsert_price(req(ok)).await.unwrap().into_inner().created);
    assert_eq!(s.publisher.current().to_pb().pricing[0].input, 1_000_000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_trace_ingest_and_admin_changes_do_not_lock_each_other_out() {
    let t = temp_db();
    let s = svc(&t);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..10 {
                let batch = (0..20)
                    .map(|i| crate::ingest::tests::record(&format!("w{w}-b{b}-{i}")))
                    .collect();
                assert_eq!(
                    crate::ingest::store_batch(&db, batch, &Default::default())
                        .await
                        .unwrap(),
                    (20, 0)
                );
            }
        }));
    }
    for i in 0..20 {
        let spec = PriceSpec {
            model: format!("m{i}"),
            input: 1.0,
            output: 2.0,
            cached_input: None,
        };
        assert!(
            s.upsert_price(req(spec))
                .await
                .unwrap()
                .into_inner()
                .created
        );
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.publisher.current().to_pb().pricing.len(), 20);
}

fn route(model: &str, providers: &[&str]) -> RouteSpec {
    RouteSpec {
        model: model.into(),
        providers: providers.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn routes_and_model_maps_reach_the_snapshot_and_are_checked() {
    let t = temp_db();
    let s = svc(&t);
    let mut spec = provider("sk-proj-abcdefghijkl9876");
    spec.model_map.insert("fast".into(), "gpt-4o-mini".into());
    s.upsert_provider(req(spec.clone())).await.unwrap();
    let mut backup = provider("sk-backup-0123456789");
    backup.name = "backup".into();
    s.upsert_provider(req(backup)).await.unwrap();

    // A route naming an unknown provider is refused and changes nothing.
    let e = s
        .upsert_route(req(route("gpt-*", &["openai-main", "ghost"])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("ghost"), "{}", e.message());
    for bad in [route("gpt-*", &[]), route("gpt-*", &["backup", "backup"])] {
        let e = s.upsert_route(req(bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }

    let r = s
        .upsert_route(req(route("gpt-*", &["openai-main", "backup"])))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    let again = s
        .upsert_route(req(route("gpt-*", &["openai-main", "backup"])))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    s.upsert_route(req(route("gpt-4o", &["backup"])))
        .await
        .unwrap();
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.routes.len(), 2);
    assert_eq!(snap.routes[0].model, "gpt-4o", "exact routes first");
    assert_eq!(snap.routes[1].providers, ["openai-main", "backup"]);
    let p = snap
        .providers
        .iter()
        .find(|p| p.name == "openai-main")
        .unwrap();
    assert_eq!(p.model_map["fast"], "gpt-4o-mini");

    let listed = s
        .list_routes(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.routes.len(), 2);
    let providers = s
        .list_providers(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(providers.providers[1].model_map["fast"], "gpt-4o-mini");
    // The same spec with its model map is unchanged.
    assert!(
        !s.upsert_provider(req(spec))
            .await
            .unwrap()
            .into_inner()
            .changed
    );

    // A provider a route uses cannot be deleted.
    let e = s
        .delete_provider(req(NameRequest {
            name: "backup".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("gpt-4o"), "{}", e.message());
    for m in ["gpt-4o", "gpt-*"] {
        assert!(
            s.delete_route(req(NameRequest { name: m.into() }))
                .await
                .unwrap()
                .into_inner()
                .deleted
        );
    }
    assert!(
        s.delete_provider(req(NameRequest {
            name: "backup".into()
        }))
        .await
        .unwrap()
        .into_inner()
        .deleted
    );
    assert!(s.publisher.current().to_pb().routes.is_empty());
}

#[tokio::test]
async fn revoked_client_keys_leave_the_snapshot_for_good() {
    let t = temp_db();
    let s = svc(&t);
    let spec = ClientKeySpec {
        name: "app".into(),
        key: "sk-aigw-app-key-0123456789".into(),
        ..Default::default()
    };
    s.upsert_client_key(req(spec.clone())).await.unwrap();
    assert_eq!(s.publisher.current().to_pb().client_keys.len(), 1);
    let name = || req(NameRequest { name: "app".into() });
    assert!(
        s.revoke_client_key(name())
            .await
            .unwrap()
            .into_inner()
            .revoked
    );
    assert!(s.publisher.current().to_pb().client_keys.is_empty());
    assert!(
        !s.revoke_client_key(name())
            .await
            .unwrap()
            .into_inner()
            .revoked
    );
    let listed = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.client_keys[0].revoked && listed.client_keys[0].revoked_at_ms > 0);
    // Revocation is final: the key cannot be brought back by an upsert.
    let e = s.upsert_client_key(req(spec)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = s
        .revoke_client_key(req(NameRequest {
            name: "ghost".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        s.delete_client_key(name())
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
}

#[tokio::test]
async fn every_change_is_audited_without_secrets() {
    use aigw_proto::pb::admin::AuditQuery;
    use aigw_proto::pb::admin::identity_service_server::IdentityService;
    let t = temp_db();
    let s = svc(&t);
    s.upsert_provider(req(provider("sk-proj-abcdefghijkl9876")))
        .await
        .unwrap();
    // Unchanged: no entry.
    s.upsert_provider(req(provider("sk-proj-abcdefghijkl9876")))
        .await
        .unwrap();
    let key = ClientKeySpec {
        name: "app".into(),
        models: vec!["gpt-4o*".into()],
        rpm: Some(20),
        cost_per_day: Some(1.5),
        ..Default::default()
    };
    let generated = s
        .upsert_client_key(req(key))
        .await
        .unwrap()
        .into_inner()
        .generated_key;
    s.revoke_client_key(req(NameRequest { name: "app".into() }))
        .await
        .unwrap();
    let log = s
        .list_audit_log(req(AuditQuery::default()))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(&str, &str, &str, &str)> = log
        .entries
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.object_kind.as_str(),
                e.object_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bootstrap", "revoke", "client_key", "app"),
            ("bootstrap", "create", "client_key", "app"),
            ("bootstrap", "create", "provider", "openai-main"),
        ]
    );
    let text = format!("{log:?}");
    assert!(!text.contains("abcdefghijkl") && !text.contains(&generated[8..]));
    assert!(log.entries.iter().all(|e| e.at_ms > 0));
    assert!(log.entries[2].detail.contains("keys=[team-a,team-b]"));
    // What changed, in words: a rotation shows which keys were sent a
    // secret; a key's limits show as set.
    assert!(
        log.entries[2]
            .detail
            .contains("secrets_given=[team-a,team-b]"),
        "{}",
        log.entries[2].detail
    );
    assert_eq!(
        log.entries[1].detail, "models=[gpt-4o*] rpm=20 cost_per_day=1.5",
        "the key's settings"
    );

    // Paged and filtered.
    let first = s
        .list_audit_log(req(AuditQuery {
            page_size: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 2);
    let second = s
        .list_audit_log(req(AuditQuery {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.entries.len(), 1);
    assert_eq!(second.entries[0].object_kind, "provider");
    let only = s
        .list_audit_log(req(AuditQuery {
            object_kind: "provider".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only.entries.len(), 1);
}

/// The snapshot a full compile of the database gives now.
async fn compiled_from_scratch(s: &super::AdminSvc) -> aigw_proto::pb::config::Snapshot {
    let master = s.master.clone();
    s.read(move |c| crate::compile::compile(&crate::db::config::load_all(c)?, &master, None))
        .await
        .unwrap()
        .to_pb()
}

#[tokio::test]
async fn a_change_to_one_key_publishes_what_a_full_compile_would() {
    use aigw_proto::pb::admin::{BudgetLimits, BudgetSpec};
    let t = temp_db();
    let s = svc(&t);
    super::testkit::user(&s, "bob", "member").await;
    s.set_budget(req(BudgetSpec {
        subject: "user:bob".into(),
        limits: Some(BudgetLimits {
            cost_per_day: Some(5.0),
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    let key = |name: &str, owner: &str| ClientKeySpec {
        name: name.into(),
        key: format!("sk-aigw-{name}-0123456789"),
        owner: owner.into(),
        ..Default::default()
    };
    for name in ["a", "c", "e"] {
        s.upsert_client_key(req(key(name, ""))).await.unwrap();
    }
    let published = s.publisher.published();
    // Created between others; given to bob (so it counts toward his
    // budget); changed; revoked; deleted: after each, what is published is
    // what compiling every row gives.
    s.upsert_client_key(req(key("b", ""))).await.unwrap();
    assert_eq!(
        s.publisher.current().to_pb(),
        compiled_from_scratch(&s).await
    );
    s.upsert_client_key(req(key("d", "bob"))).await.unwrap();
    assert_eq!(
        s.publisher.current().to_pb(),
        compiled_from_scratch(&s).await
    );
    let mut limited = key("c", "");
    limited.rpm = Some(7);
    s.upsert_client_key(req(limited)).await.unwrap();
    assert_eq!(
        s.publisher.current().to_pb(),
        compiled_from_scratch(&s).await
    );
    let name = |n: &str| req(NameRequest { name: n.into() });
    s.revoke_client_key(name("a")).await.unwrap();
    assert_eq!(
        s.publisher.current().to_pb(),
        compiled_from_scratch(&s).await
    );
    s.delete_client_key(name("e")).await.unwrap();
    assert_eq!(s.publisher.published(), published + 5);
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap, compiled_from_scratch(&s).await);
    let names: Vec<&str> = snap.client_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["b", "c", "d"]);
    assert_eq!(snap.client_keys[1].limits.as_ref().unwrap().rpm, Some(7));
    // Bob's key counts toward bob's budget (subjects are user ids).
    assert_eq!(snap.budgets.len(), 1);
    assert_eq!(snap.budgets[0].name, "user bob");
    assert_eq!(snap.client_keys[2].budgets, [snap.budgets[0].id.clone()]);
}

/// Small input checks a probe found missing: a member listed twice, a
/// cost limit of `-0`, a name with an invisible or text-direction
/// character; each refused with a message naming it, and nothing stored.
#[tokio::test]
async fn duplicate_members_negative_zero_and_invisible_names_are_refused() {
    use aigw_proto::pb::admin::{BudgetLimits, BudgetSpec, TeamSpec};
    let t = temp_db();
    let s = svc(&t);
    super::testkit::user(&s, "ann", "member").await;
    let e = s
        .upsert_team(req(TeamSpec {
            name: "search".into(),
            members: vec!["ann".into(), "ann".into()],
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("\"ann\" is listed twice"), "{e:?}");
    let e = s
        .set_budget(req(BudgetSpec {
            subject: "user:ann".into(),
            limits: Some(BudgetLimits {
                cost_per_day: Some(-0.0),
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("cost_per_day"), "{e:?}");
    for name in ["mock\u{200b}", "admins\u{202e}"] {
        let e = s
            .upsert_team(req(TeamSpec {
                name: name.into(),
                members: vec![],
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("invisible or text-direction"), "{e:?}");
    }
    let teams = s
        .list_teams(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(teams.teams.is_empty(), "{teams:?}");
}
