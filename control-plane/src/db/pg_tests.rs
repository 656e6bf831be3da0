//! The same storage code against Postgres, when AIGW_TEST_PG_URL names a
//! cluster (skipped otherwise; the SQLite tests never need it). Each test
//! gets a fresh database of its own (`pg_db`), dropped again afterwards, so
//! nothing another run stored can change its outcome.

use std::sync::{Arc, Mutex};

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{NameRequest, ProviderKeySpec, ProviderSpec};
use tonic::Request;
use tonic::metadata::MetadataValue;

use super::testing::pg_db;
use crate::admin::AdminSvc;
use crate::compile::compile;
use crate::crypto::{self, MasterKey};
use crate::db::config::load_all;
use crate::ingest::{store_batch, tests::record};
use crate::push::{Publisher, Registry};

#[tokio::test]
async fn postgres_traces_and_admin_roundtrip() {
    let Some(pg) = tokio::task::spawn_blocking(pg_db).await.unwrap() else {
        return;
    };
    let db = pg.db.clone();
    let run = crypto::new_id().unwrap();

    let batch = vec![record(&format!("{run}-1")), record(&format!("{run}-2"))];
    assert_eq!(
        store_batch(&db, batch.clone(), &Default::default())
            .await
            .unwrap(),
        (2, 0)
    );
    assert_eq!(
        store_batch(&db, batch, &Default::default()).await.unwrap(),
        (0, 2)
    );

    // The database is this test's own: its (empty) stored config must
    // compile, and any error fails the test.
    let master = MasterKey::from_hex(&"c3".repeat(32)).unwrap();
    let m = master.clone();
    let initial = db
        .run(move |c| compile(&load_all(c)?, &m, None))
        .await
        .expect("the fresh database's config compiles");
    let svc = AdminSvc {
        db: db.clone(),
        master,
        publisher: Publisher::new(initial),
        registry: Registry::default(),
        bootstrap_tokens: Arc::from(vec![crypto::sha256("t")]),
        write_lock: Arc::new(Mutex::new(())),
        trusted_proxies: Arc::from(Vec::new()),
        checker: crate::health::Checker::detached(),
        oauth: crate::oauth::Handle::detached().unwrap(),
        budgets: crate::budgets::Budgets::detached(),
    };
    let req = |spec: ProviderSpec| {
        let mut r = Request::new(spec);
        r.metadata_mut()
            .insert("authorization", MetadataValue::from_static("Bearer t"));
        r
    };
    let name = format!("pg-{run}");
    let spec = ProviderSpec {
        name: name.clone(),
        kind: "anthropic".into(),
        models: vec!["claude-*".into()],
        keys: vec![ProviderKeySpec {
            name: "k".into(),
            secret: "sk-ant-0123456789abcdef".into(),
            weight: 2,
            oauth_template: String::new(),
        }],
        ..Default::default()
    };
    assert!(
        svc.upsert_provider(req(spec.clone()))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    assert!(
        !svc.upsert_provider(req(spec))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    let snap = svc.publisher.current();
    let p = snap.core.providers.iter().find(|p| p.name == name).unwrap();
    assert_eq!(p.keys[0].secret, "sk-ant-0123456789abcdef");
    let mut del = Request::new(NameRequest { name });
    del.metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer t"));
    assert!(svc.delete_provider(del).await.unwrap().into_inner().deleted);
}

/// The UNNEST insert names every column in order: a row with every field
/// set reads back equal, and a second insert counts as already stored.
#[tokio::test]
async fn postgres_unnest_insert_keeps_every_field() {
    use crate::db::traces::{self, TraceRow, insert_new_ids};
    let Some(pg) = tokio::task::spawn_blocking(pg_db).await.unwrap() else {
        return;
    };
    let db = pg.db.clone();
    let run = crypto::new_id().unwrap();
    let full = TraceRow {
        request_id: format!("{run}-full"),
        started_at_ms: 1_700_000_000_001,
        received_at_ms: 1_700_000_000_002,
        client_key_id: "ck-id".into(),
        client_key_name: "ck-name".into(),
        model: "gpt-4o".into(),
        provider: "openai-main".into(),
        provider_key: "team-a".into(),
        status: 429,
        latency_us: 3,
        ttfb_us: 4,
        input_tokens: 5,
        output_tokens: 6,
        cached_tokens: 7,
        reasoning_tokens: 8,
        cost: 0.25,
        region: "eu".into(),
        node_id: "dp-1".into(),
        stream: true,
        endpoint: "chat".into(),
        api_format: "openai".into(),
        error: Some("rate limited".into()),
        attempts: r#"[{"status":429}]"#.into(),
        dropped_fields: r#"["metadata"]"#.into(),
        usage_source: "estimated_abandoned".into(),
        refused_by: "key:k/rpm".into(),
    };
    let mut bare = full.clone();
    bare.request_id = format!("{run}-bare");
    bare.error = None;
    bare.stream = false;
    let rows = vec![full.clone(), bare.clone()];
    let (first, again, back_full, back_bare) = db
        .run(move |c| {
            let first = insert_new_ids(c, &rows)?;
            let again = insert_new_ids(c, &rows)?;
            Ok((
                first,
                again,
                traces::get(c, &rows[0].request_id)?,
                traces::get(c, &rows[1].request_id)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(again.is_empty());
    assert_eq!(back_full, full);
    assert_eq!(back_bare, bare);
}
