//! What `ListBudgets` and `ListClientKeys` say each budget and key used, as
//! the data planes' budget counters count it: revoked keys' spend included,
//! the whole for a global budget, each region for a regional one.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    BudgetLimits, BudgetUse, ClientKeySpec, ListRequest, NameRequest, TeamSpec,
};

use super::testkit::{req, svc, user};
use crate::db::now_ms;
use crate::db::testing::{temp_db, trace_row};

fn use_of(region: &str, tokens: u64, cost: f64) -> BudgetUse {
    BudgetUse {
        region: region.into(),
        tokens_today: tokens,
        cost_today: cost,
        cost_this_month: cost,
    }
}

async fn client_keys(s: &super::AdminSvc) -> Vec<aigw_proto::pb::admin::ClientKeyInfo> {
    s.list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner()
        .client_keys
}

#[tokio::test]
async fn budgets_and_keys_show_what_their_keys_used_revoked_ones_included() {
    let t = temp_db();
    let s = svc(&t);
    user(&s, "bob", "member").await;
    s.upsert_team(req(TeamSpec {
        name: "research".into(),
        members: vec!["bob".into()],
    }))
    .await
    .unwrap();
    let budget = |subject: &str, global: bool| aigw_proto::pb::admin::BudgetSpec {
        subject: subject.into(),
        limits: Some(BudgetLimits {
            cost_per_day: Some(1.0),
            global,
            ..Default::default()
        }),
    };
    s.set_budget(req(budget("team:research", false)))
        .await
        .unwrap();
    s.set_budget(req(budget("user:bob", true))).await.unwrap();
    for (name, owner) in [("b1", "bob"), ("other", "")] {
        s.upsert_client_key(req(ClientKeySpec {
            name: name.into(),
            owner: owner.into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    }
    let keys = client_keys(&s).await;
    let id = |n: &str| keys.iter().find(|k| k.name == n).unwrap().id.clone();
    // 14 tokens and $0.50 each, unless changed.
    let now = now_ms();
    let mut rows = Vec::new();
    for (rid, key, region, cost) in [
        ("r1", "b1", "eu", 0.5),
        ("r2", "b1", "us", 0.25),
        ("r3", "other", "us", 0.5),
    ] {
        let mut r = trace_row(rid, now, key, "m", 200);
        r.client_key_id = id(key);
        r.region = region.into();
        r.cost = cost;
        rows.push(r);
    }
    s.budgets.ledger().add(rows.iter());
    // Revoked, its spend still counts where the data planes count it.
    s.revoke_client_key(req(NameRequest { name: "b1".into() }))
        .await
        .unwrap();

    let listed = s
        .list_budgets(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner()
        .budgets;
    let used = |subject: &str| {
        listed
            .iter()
            .find(|b| b.subject == subject)
            .unwrap()
            .used
            .clone()
    };
    assert_eq!(
        used("team:research"),
        [use_of("eu", 14, 0.5), use_of("us", 14, 0.25)]
    );
    assert_eq!(used("user:bob"), [use_of("", 28, 0.75)]);
    let keys = client_keys(&s).await;
    let key_used = |n: &str| keys.iter().find(|k| k.name == n).unwrap().used.clone();
    assert_eq!(
        key_used("b1"),
        [use_of("eu", 14, 0.5), use_of("us", 14, 0.25)]
    );
    assert_eq!(key_used("other"), [use_of("us", 14, 0.5)]);
}
