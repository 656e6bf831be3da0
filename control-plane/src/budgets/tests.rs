//! The budgets' task as a whole: leases keep flowing whatever the alert
//! webhooks do.

use std::time::{Duration, Instant};

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{BudgetLimits, BudgetSpec, ClientKeySpec, ListRequest};

use super::*;
use crate::admin::testkit::{req, svc, user};
use crate::db::budgets::{AlertRow, WebhookRow};
use crate::db::testing::{temp_db, trace_row};

/// A webhook receiver that accepts connections and never answers.
async fn hanging_webhook() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    url
}

/// Pending alerts of another budget, all due now.
async fn pending_alerts(db: &Db) {
    let fired = now_ms() - 60_000;
    for threshold in alerts::THRESHOLDS {
        let a = AlertRow {
            budget: "other-budget/cost_per_day".into(),
            period: day_period(u64::try_from(fired).unwrap()),
            threshold,
            fired_at_ms: fired,
            delivered_at_ms: 0,
            attempts: 0,
            last_error: String::new(),
            payload: format!(r#"{{"id":"other-budget/{threshold}"}}"#),
        };
        db.run(move |c| budgets::fire_alert(c, &a)).await.unwrap();
    }
}

/// The largest cost lease of region eu for today.
async fn eu_lease(db: &Db) -> f64 {
    let periods = live_periods(now_ms());
    let today = periods[0].clone();
    db.run(move |c| budgets::leases(c, &periods))
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.region == "eu" && l.period == today)
        .filter_map(|l| l.cost)
        .fold(0.0_f64, f64::max)
}

/// A webhook that never answers (10 s per post) while alerts are pending:
/// a region that spent its grain of a global budget still gets its next
/// one within a tick or two.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_webhook_does_not_delay_a_regions_lease_top_up() {
    let t = temp_db();
    let s = svc(&t);
    user(&s, "bob", "member").await;
    s.set_budget(req(BudgetSpec {
        subject: "user:bob".into(),
        limits: Some(BudgetLimits {
            cost_per_day: Some(100.0),
            global: true,
            ..Default::default()
        }),
    }))
    .await
    .unwrap();
    s.upsert_client_key(req(ClientKeySpec {
        name: "b1".into(),
        owner: "bob".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let keys = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner()
        .client_keys;
    let key_id = keys.iter().find(|k| k.name == "b1").unwrap().id.clone();
    let hook = WebhookRow {
        name: "ops".into(),
        url: hanging_webhook().await,
        secret_enc: s.master.encrypt("whsec", &webhook_context("ops")).unwrap(),
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    t.db.run(move |c| budgets::put_webhook(c, &hook))
        .await
        .unwrap();
    pending_alerts(&t.db).await;
    s.registry.connect("n1", "eu", "");
    let b = Budgets::start(Ctx {
        db: t.db.clone(),
        master: s.master.clone(),
        publisher: s.publisher.clone(),
        write_lock: s.write_lock.clone(),
        registry: s.registry.clone(),
        http: Outbound::new(None).unwrap(),
    })
    .await
    .unwrap();

    // The first tick grants eu its first grain.
    let started = Instant::now();
    while eu_lease(&t.db).await == 0.0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = eu_lease(&t.db).await;
    assert!(first > 0.0, "no first grain");

    // eu spends most of it: the next tick tops it up.
    let mut r = trace_row("r1", now_ms(), "b1", "m", 200);
    r.client_key_id = key_id;
    r.region = "eu".into();
    r.cost = first * 0.9;
    b.ledger().add(std::iter::once(&r));
    let spent = Instant::now();
    while eu_lease(&t.db).await <= first && spent.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = spent.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "eu's top-up waited {waited:?}"
    );
}
