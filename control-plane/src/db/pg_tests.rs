//! The same storage code against Postgres, when AIGW_TEST_PG_URL names a
//! database (skipped otherwise; the SQLite tests never need it). Names and
//! request ids are random, so runs can share one database.

use std::sync::{Arc, Mutex};

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{NameRequest, ProviderKeySpec, ProviderSpec};
use tonic::Request;
use tonic::metadata::MetadataValue;

use super::Db;
use super::testing::pg_url;
use crate::admin::AdminSvc;
use crate::compile::compile;
use crate::crypto::{self, MasterKey};
use crate::db::config::load_all;
use crate::ingest::{store_batch, tests::record};
use crate::push::{Publisher, Registry};

#[tokio::test]
async fn postgres_traces_and_admin_roundtrip() {
    let Some(url) = pg_url() else { return };
    let db = tokio::task::spawn_blocking(move || Db::connect(&url))
        .await
        .unwrap()
        .unwrap();
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

    // Other runs' rows may be encrypted under other keys: start from the
    // stored state only when it compiles with ours.
    let master = MasterKey::from_hex(&"c3".repeat(32)).unwrap();
    let m = master.clone();
    let initial = db.run(move |c| compile(&load_all(c)?, &m)).await;
    let Ok(initial) = initial else {
        println!("skipped admin part: the shared database holds config under another master key");
        return;
    };
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
    let p = snap.providers.iter().find(|p| p.name == name).unwrap();
    assert_eq!(p.keys[0].secret, "sk-ant-0123456789abcdef");
    let mut del = Request::new(NameRequest { name });
    del.metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer t"));
    assert!(svc.delete_provider(del).await.unwrap().into_inner().deleted);
}
