//! InsightService over stored traces: pagination, filters, a member's
//! scope, one trace with its attempts, usage buckets and percentiles, pool
//! health. The same body runs on SQLite and, with AIGW_TEST_PG_URL, on a
//! fresh Postgres database.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::insight_service_server::InsightService;
use aigw_proto::pb::admin::{
    Bucket, ClientKeySpec, GetTraceRequest, GroupBy, ListRequest, PoolHealthQuery, TraceList,
    TraceQuery, UsageQuery, UsageStats,
};
use aigw_proto::pb::trace::{Attempt, TraceRecord};
use tonic::Code;

use super::AdminSvc;
use super::testkit::{req, req_as, svc_on, user};
use super::usage::{DAY_MS, HOUR_MS, percentile_ms};
use crate::db::Db;
use crate::db::testing::{pg_db, temp_db};
use crate::ingest::store_batch;

/// 08:00 UTC on some day: hourly buckets start on the hour and the traces
/// fall on one day.
const BASE: i64 = 1_700_000_000_000 / DAY_MS * DAY_MS + 8 * HOUR_MS;
const N: usize = 30;

struct World {
    s: AdminSvc,
    ann: String,
    viewer: String,
    /// (key name, key id) for ann, ben and the unowned key.
    keys: Vec<(String, String)>,
}

fn trace(i: usize, keys: &[(String, String)]) -> TraceRecord {
    let (name, id) = &keys[i % 3];
    let failed = i % 5 == 4;
    // Four traces share one start time, to exercise the cursor's tie-break.
    let at = if i >= 26 {
        BASE + 26 * 600_000
    } else {
        BASE + i64::try_from(i).unwrap() * 600_000
    };
    TraceRecord {
        request_id: format!("req-{i:03}"),
        started_at_ms: at,
        client_key_id: id.clone(),
        client_key_name: name.clone(),
        model: if i.is_multiple_of(2) {
            "gpt-4o"
        } else {
            "claude"
        }
        .into(),
        provider: if i.is_multiple_of(2) {
            "openai"
        } else {
            "anthropic"
        }
        .into(),
        provider_key: "k1".into(),
        status: if failed { 502 } else { 200 },
        latency_us: (u64::try_from(i).unwrap() + 1) * 1000,
        input_tokens: 10,
        output_tokens: 5,
        cached_tokens: 1,
        cost: 0.5,
        region: if i < 15 { "eu" } else { "us" }.into(),
        error: if failed {
            "upstream said no".into()
        } else {
            String::new()
        },
        attempts: vec![
            Attempt {
                provider: "openai".into(),
                provider_key: "k0".into(),
                status: 429,
                latency_us: 10,
                error: "rate limited".into(),
                cooldown_ms: 1000,
            },
            Attempt {
                provider: "openai".into(),
                provider_key: "k1".into(),
                status: if failed { 502 } else { 200 },
                latency_us: 20,
                error: String::new(),
                cooldown_ms: 0,
            },
        ],
        ..Default::default()
    }
}

async fn world(db: Db) -> World {
    let s = svc_on(db);
    let ann = user(&s, "ann", "member").await;
    let ben = user(&s, "ben", "member").await;
    let viewer = user(&s, "vi", "viewer").await;
    let spec = |n: &str| ClientKeySpec {
        name: n.into(),
        ..Default::default()
    };
    s.upsert_client_key(req_as(spec("ann-app"), &ann))
        .await
        .unwrap();
    s.upsert_client_key(req_as(spec("ben-app"), &ben))
        .await
        .unwrap();
    s.upsert_client_key(req(spec("shared"))).await.unwrap();
    let listed = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<(String, String)> = ["ann-app", "ben-app", "shared"]
        .iter()
        .map(|n| {
            let k = listed.client_keys.iter().find(|k| k.name == *n).unwrap();
            (k.name.clone(), k.id.clone())
        })
        .collect();
    let batch = (0..N).map(|i| trace(i, &keys)).collect();
    assert_eq!(
        store_batch(&s.db, batch, &Default::default())
            .await
            .unwrap()
            .0,
        30
    );
    World {
        s,
        ann,
        viewer,
        keys,
    }
}

async fn list(w: &World, token: &str, q: TraceQuery) -> Result<TraceList, tonic::Status> {
    w.s.list_traces(req_as(q, token))
        .await
        .map(|r| r.into_inner())
}

async fn ids(w: &World, token: &str, q: TraceQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = q;
    loop {
        let page = list(w, token, q.clone()).await.unwrap();
        out.extend(page.traces.into_iter().map(|t| t.request_id));
        if page.next_page_token.is_empty() {
            return out;
        }
        q.page_token = page.next_page_token;
    }
}

async fn pagination_and_filters(w: &World) {
    let all = ids(
        w,
        &w.viewer,
        TraceQuery {
            page_size: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), N, "{all:?}");
    // Newest first; ties by request id, descending; no repeats.
    let mut expected: Vec<String> = (0..N).map(|i| format!("req-{i:03}")).collect();
    expected.reverse();
    assert_eq!(all, expected);

    let count = async |q: TraceQuery| ids(w, &w.viewer, q).await.len();
    let q = TraceQuery::default;
    assert_eq!(
        count(TraceQuery {
            model: "claude".into(),
            ..q()
        })
        .await,
        15
    );
    assert_eq!(
        count(TraceQuery {
            provider: "openai".into(),
            ..q()
        })
        .await,
        15
    );
    assert_eq!(
        count(TraceQuery {
            region: "eu".into(),
            ..q()
        })
        .await,
        15
    );
    assert_eq!(
        count(TraceQuery {
            status: Some(502),
            ..q()
        })
        .await,
        6
    );
    assert_eq!(
        count(TraceQuery {
            status_class: "5xx".into(),
            ..q()
        })
        .await,
        6
    );
    assert_eq!(
        count(TraceQuery {
            status_class: "error".into(),
            ..q()
        })
        .await,
        6
    );
    assert_eq!(
        count(TraceQuery {
            status_class: "ok".into(),
            ..q()
        })
        .await,
        24
    );
    assert_eq!(
        count(TraceQuery {
            status_class: "4xx".into(),
            ..q()
        })
        .await,
        0
    );
    assert_eq!(
        count(TraceQuery {
            client_key: "ben-app".into(),
            ..q()
        })
        .await,
        10
    );
    let ann_id = w.keys[0].1.clone();
    assert_eq!(
        count(TraceQuery {
            client_key: ann_id,
            ..q()
        })
        .await,
        10
    );
    assert_eq!(
        count(TraceQuery {
            user: "ann".into(),
            ..q()
        })
        .await,
        10
    );
    assert_eq!(
        count(TraceQuery {
            user: "nobody".into(),
            ..q()
        })
        .await,
        0
    );
    let window = TraceQuery {
        since_ms: BASE + 600_000,
        until_ms: BASE + 3 * 600_000,
        ..q()
    };
    assert_eq!(ids(w, &w.viewer, window).await, ["req-002", "req-001"]);
    let e = list(
        w,
        &w.viewer,
        TraceQuery {
            status_class: "3xx".into(),
            ..q()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = list(
        w,
        &w.viewer,
        TraceQuery {
            page_token: "garbage!".into(),
            ..q()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // One trace with its attempts and owner.
    let d =
        w.s.get_trace(req_as(
            GetTraceRequest {
                request_id: "req-004".into(),
            },
            &w.viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let t = d.trace.unwrap();
    assert_eq!(
        (t.status, t.error.as_str(), t.owner.as_str()),
        (502, "upstream said no", "ben")
    );
    assert_eq!(d.attempts.len(), 2);
    assert_eq!(
        (d.attempts[0].status, d.attempts[0].error.as_str()),
        (429, "rate limited")
    );
    assert_eq!(d.attempts[1].error, "");
    let e =
        w.s.get_trace(req_as(
            GetTraceRequest {
                request_id: "nope".into(),
            },
            &w.viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

async fn member_scope(w: &World) {
    // Ann sees her key's traces only, whatever she filters on.
    let mine = ids(w, &w.ann, TraceQuery::default()).await;
    assert_eq!(mine.len(), 10);
    assert!(mine.iter().all(|id| {
        let i: usize = id[4..].parse().unwrap();
        i.is_multiple_of(3)
    }));
    let q = TraceQuery {
        user: "ben".into(),
        ..Default::default()
    };
    assert!(ids(w, &w.ann, q).await.is_empty());
    let q = TraceQuery {
        client_key: "shared".into(),
        ..Default::default()
    };
    assert!(ids(w, &w.ann, q).await.is_empty());
    // Ben's trace and an unowned key's: refused.
    for id in ["req-001", "req-002"] {
        let e =
            w.s.get_trace(req_as(
                GetTraceRequest {
                    request_id: id.into(),
                },
                &w.ann,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{id}");
    }
    w.s.get_trace(req_as(
        GetTraceRequest {
            request_id: "req-003".into(),
        },
        &w.ann,
    ))
    .await
    .unwrap();
    let usage =
        w.s.get_usage(req_as(window_query(GroupBy::None), &w.ann))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(usage.totals.unwrap().requests, 10);
    let e =
        w.s.get_pool_health(req_as(PoolHealthQuery::default(), &w.ann))
            .await
            .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

fn window_query(group_by: GroupBy) -> UsageQuery {
    UsageQuery {
        since_ms: BASE,
        until_ms: BASE + 6 * HOUR_MS,
        bucket: Bucket::Hour.into(),
        group_by: group_by.into(),
        ..Default::default()
    }
}

fn stats_of(latencies_ms: &[i64], errors: u64) -> UsageStats {
    let mut us: Vec<i64> = latencies_ms.iter().map(|m| m * 1000).collect();
    us.sort_unstable();
    let n = latencies_ms.len() as u64;
    UsageStats {
        requests: n,
        errors,
        input_tokens: 10 * n,
        output_tokens: 5 * n,
        cached_tokens: n,
        cost: 0.5 * n as f64,
        latency_p50_ms: percentile_ms(&us, 0.5),
        latency_p95_ms: percentile_ms(&us, 0.95),
        latency_p99_ms: percentile_ms(&us, 0.99),
    }
}

async fn usage(w: &World) {
    let r =
        w.s.get_usage(req_as(window_query(GroupBy::None), &w.viewer))
            .await
            .unwrap()
            .into_inner();
    let all: Vec<i64> = (1..=30).collect();
    assert_eq!(r.totals.unwrap(), stats_of(&all, 6));
    assert_eq!(r.totals.unwrap().latency_p50_ms, 15.0);
    assert_eq!(r.totals.unwrap().latency_p95_ms, 29.0);
    assert_eq!(r.totals.unwrap().latency_p99_ms, 30.0);
    assert_eq!(r.series.len(), 1);
    let points = &r.series[0].points;
    // 10-minute spacing: six traces an hour (i = 0..5 in the first hour),
    // the last four share 12:20.
    let starts: Vec<i64> = points.iter().map(|p| p.bucket_start_ms).collect();
    assert_eq!(
        starts,
        (0..5).map(|h| BASE + h * HOUR_MS).collect::<Vec<_>>()
    );
    assert_eq!(points[0].stats.unwrap(), stats_of(&[1, 2, 3, 4, 5, 6], 1));
    assert_eq!(
        points[4].stats.unwrap(),
        stats_of(&[25, 26, 27, 28, 29, 30], 2)
    );

    let by_user =
        w.s.get_usage(req_as(window_query(GroupBy::User), &w.viewer))
            .await
            .unwrap()
            .into_inner();
    let mut groups: Vec<(String, u64)> = by_user
        .series
        .iter()
        .map(|s| (s.group.clone(), s.totals.unwrap().requests))
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [("".into(), 10), ("ann".into(), 10), ("ben".into(), 10)]
    );
    // By the team the owners are in now.
    w.s.upsert_team(req(aigw_proto::pb::admin::TeamSpec {
        name: "eng".into(),
        members: vec!["ann".into(), "ben".into()],
    }))
    .await
    .unwrap();
    let by_team =
        w.s.get_usage(req_as(window_query(GroupBy::Team), &w.viewer))
            .await
            .unwrap()
            .into_inner();
    let mut groups: Vec<(String, u64)> = by_team
        .series
        .iter()
        .map(|s| (s.group.clone(), s.totals.unwrap().requests))
        .collect();
    groups.sort();
    assert_eq!(groups, [("".into(), 10), ("eng".into(), 20)]);
    for (group_by, n) in [
        (GroupBy::Key, 3),
        (GroupBy::Model, 2),
        (GroupBy::Provider, 2),
        (GroupBy::Region, 2),
    ] {
        let r =
            w.s.get_usage(req_as(window_query(group_by), &w.viewer))
                .await
                .unwrap()
                .into_inner();
        assert_eq!(r.series.len(), n, "{group_by:?}");
    }
    let daily =
        w.s.get_usage(req_as(
            UsageQuery {
                bucket: Bucket::Day.into(),
                ..window_query(GroupBy::Model)
            },
            &w.viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    // By model, as above: two series, each one day's point.
    assert_eq!(daily.series.len(), 2, "{daily:?}");
    assert!(daily.series.iter().all(|s| s.points.len() == 1));
    let filtered =
        w.s.get_usage(req_as(
            UsageQuery {
                model: "claude".into(),
                region: "eu".into(),
                ..window_query(GroupBy::None)
            },
            &w.viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    // Odd i below 15.
    assert_eq!(filtered.totals.unwrap().requests, 7);
    let e =
        w.s.get_usage(req_as(
            UsageQuery {
                since_ms: BASE,
                until_ms: BASE,
                ..Default::default()
            },
            &w.viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

async fn pool_health(w: &World) {
    // The stored traces are long past; three recent ones.
    let now = crate::db::now_ms();
    let recent: Vec<TraceRecord> = (0..3)
        .map(|i| {
            let mut t = trace(i, &w.keys);
            t.request_id = format!("recent-{i}");
            t.started_at_ms = now - 60_000;
            if i == 2 {
                t.attempts.remove(0);
                t.attempts[0].status = 502;
            }
            t
        })
        .collect();
    store_batch(&w.s.db, recent, &Default::default())
        .await
        .unwrap();
    let h =
        w.s.get_pool_health(req_as(PoolHealthQuery::default(), &w.viewer))
            .await
            .unwrap()
            .into_inner();
    let k0 = h.keys.iter().find(|k| k.key == "k0").unwrap();
    assert_eq!((k0.requests, k0.errors, k0.rate_limited), (2, 2, 2));
    assert!(k0.rate_limited_recently);
    assert_eq!(k0.last_error, "rate limited");
    let k1 = h.keys.iter().find(|k| k.key == "k1").unwrap();
    assert_eq!((k1.requests, k1.errors), (3, 1));
    assert_eq!(k1.last_error, "status 502");
    assert!(k1.last_success_at_ms >= now - 60_000);
    assert!(!k1.rate_limited_recently);
    let e =
        w.s.get_pool_health(req_as(PoolHealthQuery { window_ms: -1 }, &w.viewer))
            .await
            .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

async fn all_queries(db: Db) {
    let w = world(db).await;
    pagination_and_filters(&w).await;
    member_scope(&w).await;
    usage(&w).await;
    pool_health(&w).await;
}

#[tokio::test]
async fn queries_on_sqlite() {
    let t = temp_db();
    all_queries(t.db.clone()).await;
}

#[tokio::test]
async fn queries_on_postgres() {
    let Some(pg) = tokio::task::spawn_blocking(pg_db).await.unwrap() else {
        return;
    };
    all_queries(pg.db.clone()).await;
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// How a trace's usage was known and which budget refused it are stored at
/// ingest and shown by GetTrace and ListTraces. 73 traces go in as one
/// batch, so SQLite stores them in a run of 64, one of 8 and one of 1, and
/// one of each is read back.
async fn usage_source_and_refused_by(db: Db) {
    let s = svc_on(db);
    let rec = |i: usize| TraceRecord {
        request_id: format!("us-{i:03}"),
        started_at_ms: BASE + i64::try_from(i).unwrap(),
        client_key_id: "k".into(),
        client_key_name: "k".into(),
        model: "gpt-4o".into(),
        provider: "openai".into(),
        status: if i == 72 { 429 } else { 200 },
        output_tokens: 5,
        usage_source: if i == 1 {
            String::new()
        } else {
            "estimated_abandoned".into()
        },
        refused_by: if i == 1 {
            String::new()
        } else {
            "key:k/rpm".into()
        },
        ..Default::default()
    };
    let batch = (0..73).map(rec).collect();
    assert_eq!(
        store_batch(&s.db, batch, &Default::default())
            .await
            .unwrap()
            .0,
        73
    );
    let get = |id: &str| {
        let s = &s;
        let request_id = id.to_string();
        async move {
            s.get_trace(req(GetTraceRequest { request_id }))
                .await
                .unwrap()
                .into_inner()
                .trace
                .unwrap()
        }
    };
    for id in ["us-000", "us-064", "us-072"] {
        let t = get(id).await;
        assert_eq!(
            (t.usage_source.as_str(), t.refused_by.as_str()),
            ("estimated_abandoned", "key:k/rpm"),
            "{id}"
        );
    }
    let reported = get("us-001").await;
    assert_eq!(
        (reported.usage_source.as_str(), reported.refused_by.as_str()),
        ("", "")
    );
    let page = s
        .list_traces(req(TraceQuery {
            page_size: 100,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let listed = page
        .traces
        .iter()
        .find(|t| t.request_id == "us-072")
        .unwrap();
    assert_eq!(
        (listed.usage_source.as_str(), listed.refused_by.as_str()),
        ("estimated_abandoned", "key:k/rpm")
    );
}

#[tokio::test]
async fn usage_source_and_refused_by_on_sqlite() {
    let t = temp_db();
    usage_source_and_refused_by(t.db.clone()).await;
}

#[tokio::test]
async fn usage_source_and_refused_by_on_postgres() {
    let Some(pg) = tokio::task::spawn_blocking(pg_db).await.unwrap() else {
        return;
    };
    usage_source_and_refused_by(pg.db.clone()).await;
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
