//! The overview from rollups: totals against the previous period, series,
//! breakdowns, filters, a member's scope, and the live stream.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::overview_service_server::OverviewService;
use aigw_proto::pb::admin::{
    ClientKeySpec, Overview, OverviewGroup, OverviewQuery, OverviewRange, TeamSpec,
};
use aigw_proto::pb::trace::{Attempt, TraceRecord};
use futures_util::StreamExt as _;
use tonic::Code;

use super::*;
use crate::admin::testkit::{req, req_as, svc, svc_on, user};
use crate::db::testing::{pg_db, temp_db};
use crate::ingest::store_batch;

fn record(id: &str, at: i64, key: &(String, String), model: &str, status: u32) -> TraceRecord {
    TraceRecord {
        request_id: id.into(),
        started_at_ms: at,
        client_key_id: key.1.clone(),
        client_key_name: key.0.clone(),
        model: model.into(),
        provider: if model.starts_with("gpt") {
            "openai"
        } else {
            "anthropic"
        }
        .into(),
        provider_key: "k".into(),
        status,
        latency_us: 100_000,
        ttfb_us: 40_000,
        input_tokens: 100,
        output_tokens: 10,
        cached_tokens: 20,
        cost: 0.25,
        region: if id.ends_with('e') { "eu" } else { "us" }.into(),
        node_id: "n1".into(),
        attempts: vec![Attempt {
            provider: "openai".into(),
            provider_key: "k".into(),
            status,
            latency_us: 30_000,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn key(s: &OverviewSvc, name: &str, token: &str) -> (String, String) {
    s.admin
        .upsert_client_key(req_as(
            ClientKeySpec {
                name: name.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap();
    let keys = s
        .admin
        .list_client_keys(req(Default::default()))
        .await
        .unwrap()
        .into_inner()
        .client_keys;
    let k = keys.into_iter().find(|k| k.name == name).unwrap();
    (k.name, k.id)
}

fn group<'a>(groups: &'a [OverviewGroup], name: &str) -> &'a OverviewGroup {
    groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name:?} in {groups:?}"))
}

async fn overview(s: &OverviewSvc, token: &str, q: OverviewQuery) -> Overview {
    s.get_overview(req_as(q, token)).await.unwrap().into_inner()
}

#[tokio::test]
async fn totals_previous_period_breakdowns_filters_and_scope_on_sqlite() {
    let t = temp_db();
    totals_previous_period_breakdowns_filters_and_scope(t.db.clone()).await;
}

#[tokio::test]
async fn totals_previous_period_breakdowns_filters_and_scope_on_postgres() {
    if let Some(pg) = pg_db() {
        totals_previous_period_breakdowns_filters_and_scope(pg.db.clone()).await;
    }
}

async fn totals_previous_period_breakdowns_filters_and_scope(db: crate::db::Db) {
    let s = OverviewSvc {
        admin: svc_on(db),
        stored: Signal::default(),
    };
    let ann = user(&s.admin, "ann", "member").await;
    let admin = crate::admin::testkit::TOKEN;
    let ann_key = key(&s, "ann-app", &ann).await;
    let ops_key = key(&s, "ops", admin).await;
    s.admin
        .upsert_team(req(TeamSpec {
            name: "research".into(),
            members: vec!["ann".into()],
        }))
        .await
        .unwrap();
    let now = now_ms();
    let day_ago = now - DAY_MS - HOUR_MS;
    store_batch(
        &s.admin.db,
        vec![
            record("a1e", now - 1000, &ann_key, "gpt-4o", 200),
            record("a2", now - 2000, &ann_key, "claude", 500),
            record("o1e", now - 3000, &ops_key, "gpt-4o", 200),
            // The day before: the 24 h view's previous period.
            record("o2", day_ago, &ops_key, "gpt-4o", 200),
        ],
        &Default::default(),
    )
    .await
    .unwrap();

    let q = OverviewQuery {
        range: OverviewRange::OverviewRange24h as i32,
        ..Default::default()
    };
    let o = overview(&s, admin, q.clone()).await;
    assert_eq!(o.bucket_ms, HOUR_MS);
    assert_eq!(o.until_ms - o.since_ms, DAY_MS);
    let cur = o.current.unwrap();
    assert_eq!((cur.requests, cur.errors, cur.input_tokens), (3, 1, 300));
    assert_eq!((cur.cached_tokens, cur.output_tokens), (60, 30));
    assert!((cur.cost - 0.75).abs() < 1e-9);
    // 100 ms latency, 40 ms to first byte, 30 of them upstream: 10 ms added.
    assert!((cur.latency_p50_ms - 100.0).abs() < 5.0, "{cur:?}");
    assert!((cur.ttfb_p99_ms - 40.0).abs() < 2.0, "{cur:?}");
    assert!((cur.overhead_p50_ms - 10.0).abs() < 0.5, "{cur:?}");
    assert_eq!(o.previous.unwrap().requests, 1);
    assert_eq!(
        o.series
            .iter()
            .map(|p| p.stats.unwrap().requests)
            .sum::<u64>(),
        3
    );
    assert_eq!(group(&o.by_model, "gpt-4o").stats.unwrap().requests, 2);
    assert_eq!(group(&o.by_model, "gpt-4o").previous.unwrap().requests, 1);
    assert_eq!(group(&o.by_provider, "anthropic").stats.unwrap().errors, 1);
    assert_eq!(group(&o.by_region, "eu").stats.unwrap().requests, 2);
    assert_eq!(
        group(&o.by_client_key, "ann-app").stats.unwrap().requests,
        2
    );
    assert_eq!(group(&o.by_user, "ann").stats.unwrap().requests, 2);
    assert_eq!(group(&o.by_user, "").stats.unwrap().requests, 1);
    // By the team the owner is in; keys of no team's member under "".
    assert_eq!(group(&o.by_team, "research").stats.unwrap().requests, 2);
    assert_eq!(group(&o.by_team, "").stats.unwrap().requests, 1);
    assert_eq!(group(&o.by_team, "").previous.unwrap().requests, 1);

    // A filter reads the full rows and gives the same numbers for its part.
    let f = overview(
        &s,
        admin,
        OverviewQuery {
            model: "gpt-4o".into(),
            ..q.clone()
        },
    )
    .await;
    assert_eq!(f.current.unwrap().requests, 2);
    assert_eq!(f.previous.unwrap().requests, 1);
    assert_eq!(group(&f.by_user, "ann").stats.unwrap().requests, 1);
    assert_eq!(group(&f.by_team, "research").stats.unwrap().requests, 1);
    let team = overview(
        &s,
        admin,
        OverviewQuery {
            team: "research".into(),
            ..q.clone()
        },
    )
    .await;
    assert_eq!(team.current.unwrap().requests, 2);
    let team_users: Vec<&str> = team.by_user.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(team_users, ["ann"], "{team:?}");
    let nobody = overview(
        &s,
        admin,
        OverviewQuery {
            team: "no-such-team".into(),
            ..q.clone()
        },
    )
    .await;
    assert_eq!(nobody.current.unwrap().requests, 0);
    let by_user = overview(
        &s,
        admin,
        OverviewQuery {
            user: "ann".into(),
            ..q.clone()
        },
    )
    .await;
    assert_eq!(by_user.current.unwrap().requests, 2);

    // A member sees only their keys, whatever they filter by.
    let mine = overview(&s, &ann, q.clone()).await;
    assert_eq!(mine.current.unwrap().requests, 2);
    let my_keys: Vec<&str> = mine.by_client_key.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(my_keys, ["ann-app"], "{mine:?}");
    let sneaky = overview(
        &s,
        &ann,
        OverviewQuery {
            client_key: "ops".into(),
            ..q.clone()
        },
    )
    .await;
    assert_eq!(sneaky.current.unwrap().requests, 0);

    // The 1 h view has 5-minute buckets and no previous traffic.
    let hour = overview(
        &s,
        admin,
        OverviewQuery {
            range: OverviewRange::OverviewRange1h as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (hour.bucket_ms, hour.current.unwrap().requests),
        (5 * MINUTE_MS, 3)
    );
    assert_eq!(hour.previous.unwrap().requests, 0);
    let month = overview(
        &s,
        admin,
        OverviewQuery {
            range: OverviewRange::OverviewRange30d as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(month.current.unwrap().requests, 4);

    let e = s.get_overview(tonic::Request::new(q)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn one_user_may_watch_a_few_live_overviews_at_once() {
    let t = temp_db();
    let s = OverviewSvc {
        admin: svc(&t),
        stored: Signal::default(),
    };
    let viewer = user(&s.admin, "vic", "viewer").await;
    let other = user(&s.admin, "olga", "viewer").await;
    let mut open = Vec::new();
    for _ in 0..MAX_WATCHES_PER_USER {
        let mut stream = s
            .watch_overview(req_as(OverviewQuery::default(), &viewer))
            .await
            .unwrap()
            .into_inner();
        stream.next().await.unwrap().unwrap();
        open.push(stream);
    }
    let e = s
        .watch_overview(req_as(OverviewQuery::default(), &viewer))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    // Another user is not refused for it.
    s.watch_overview(req_as(OverviewQuery::default(), &other))
        .await
        .unwrap();
    // A closed one frees its place (once its task sees the close).
    drop(open.pop());
    let mut admitted = false;
    for _ in 0..100 {
        if s.watch_overview(req_as(OverviewQuery::default(), &viewer))
            .await
            .is_ok()
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
}

#[tokio::test]
async fn watchers_get_an_update_when_traces_are_stored_and_stop_at_logout() {
    let t = temp_db();
    let s = OverviewSvc {
        admin: svc(&t),
        stored: Signal::default(),
    };
    let viewer = user(&s.admin, "vic", "viewer").await;
    let k = key(&s, "app", crate::admin::testkit::TOKEN).await;
    let mut stream = s
        .watch_overview(req_as(OverviewQuery::default(), &viewer))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.current.unwrap().requests, 0);
    let (stored, _) = store_batch(
        &s.admin.db,
        vec![record("w1", now_ms(), &k, "gpt-4o", 200)],
        &Default::default(),
    )
    .await
    .unwrap();
    s.stored.stored(stored);
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.current.unwrap().requests, 1);

    use aigw_proto::pb::admin::identity_service_server::IdentityService;
    s.admin
        .logout(req_as(Default::default(), &viewer))
        .await
        .unwrap();
    s.stored.stored(1);
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.unwrap_err().code(), Code::Unauthenticated);
}

/// A filter by a long list of keys (a team whose members own tens of
/// thousands) is applied to the rows read rather than bound as SQL
/// parameters, which SQLite caps at 32,766: the overview still answers,
/// with only those keys' rows.
#[tokio::test]
async fn a_filter_by_more_keys_than_sql_binds_still_answers() {
    let t = temp_db();
    let s = OverviewSvc {
        admin: svc(&t),
        stored: Signal::default(),
    };
    let a = key(&s, "a", crate::admin::testkit::TOKEN).await;
    let b = key(&s, "b", crate::admin::testkit::TOKEN).await;
    let now = now_ms();
    store_batch(
        &s.admin.db,
        vec![
            record("l1", now - 1000, &a, "gpt-4o", 200),
            record("l2", now - 2000, &b, "gpt-4o", 200),
        ],
        &Default::default(),
    )
    .await
    .unwrap();
    let mut ids: Vec<String> = (0..40_000).map(|i| format!("not-a-key-{i}")).collect();
    ids.push(a.1.clone());
    let (period, span) = range_ms(OverviewRange::OverviewRange24h);
    let until = crate::rollup::bucket_start(now, span) + span;
    let rows = s
        .admin
        .db
        .run(move |conn| {
            crate::db::rollups::scan(
                conn,
                &crate::db::rollups::RollupFilter {
                    level: crate::rollup::Level::Full as i32,
                    span_ms: span,
                    since_ms: until - period,
                    until_ms: until,
                    key_ids: vec![ids, vec![a.1.clone(), b.1.clone()]],
                    client_key_id: None,
                    client_key_name: None,
                    provider: None,
                    model: None,
                    region: None,
                },
            )
        })
        .await
        .unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.client_key_name == "a"),
        "{rows:?}"
    );
}
