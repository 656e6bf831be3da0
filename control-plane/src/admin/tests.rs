//! AdminService called directly (no network): validation, idempotence,
//! secrets handling and what each change does to the published snapshot.

use aigw_proto::pb::admin::ProviderKeySpec;
use tonic::Code;
use tonic::metadata::MetadataValue;

use super::*;
use crate::crypto;
use crate::db::testing::{TempDb, temp_db};

const TOKEN: &str = "admin-test-token";

fn svc(t: &TempDb) -> AdminSvc {
    let master = MasterKey::from_hex(&"5a".repeat(32)).unwrap();
    let snapshot = compile(&crate::db::config::ConfigRows::default(), &master).unwrap();
    AdminSvc {
        db: t.db.clone(),
        master,
        publisher: Publisher::new(snapshot),
        registry: Registry::default(),
        admin_tokens: Arc::from(vec![crypto::sha256(TOKEN)]),
        write_lock: Arc::new(Mutex::new(())),
    }
}

fn req<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {TOKEN}")).unwrap(),
    );
    r
}

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
            },
            ProviderKeySpec {
                name: "team-b".into(),
                secret: "sk-team-b-0123456789".into(),
                weight: 0,
            },
        ],
    }
}

#[tokio::test]
async fn provider_upsert_is_idempotent_and_secrets_stay_hidden() {
    let t = temp_db();
    let s = svc(&t);
    let v0 = s.publisher.current().version.clone();

    let r = s
        .upsert_provider(req(provider("sk-proj-abcdefghijkl9876")))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created && r.changed);
    let v1 = s.publisher.current().version.clone();
    assert_ne!(v0, v1);
    let snap = s.publisher.current();
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
    assert_eq!(s.publisher.current().version, v1);

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
    let snap = s.publisher.current();
    assert_eq!(snap.providers[0].keys[0].secret, "sk-proj-abcdefghijkl9876");
    assert_eq!(snap.providers[0].keys[0].weight, 5);

    // Keys not named are removed.
    let mut spec = provider("sk-proj-abcdefghijkl9876");
    spec.keys.truncate(1);
    s.upsert_provider(req(spec)).await.unwrap();
    assert_eq!(s.publisher.current().providers[0].keys.len(), 1);

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
    assert_eq!(s.publisher.current().version, v0);
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
    let snap = s.publisher.current();
    assert_eq!(snap.client_keys[0].key_hash, crypto::sha256(&key).to_vec());
    assert_eq!(snap.client_keys[0].limits.unwrap().rpm, Some(600));

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
    assert_eq!(s.publisher.current().pricing[0].input, 2.5);
    let d = s
        .delete_price(req(NameRequest {
            name: "gpt-4o".into(),
        }))
        .await
        .unwrap();
    assert!(d.into_inner().deleted);
    assert!(s.publisher.current().pricing.is_empty());
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
                    crate::ingest::store_batch(&db, batch).await.unwrap(),
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
    assert_eq!(s.publisher.current().pricing.len(), 20);
}
