//! The admin UI's queries on a big database: 1,000,000 traces over the last
//! 30 days (40 client keys of 10 users, 4 models on 2 providers, 2 regions,
//! 4 data planes, 3 % errors), the usage rollups kept as ingest keeps them.
//! Measures the overview of each period (unfiltered, filtered, a member's)
//! and a page of the request log (filters, a deep cursor, one trace), all
//! through the Admin API's service methods as admin-web calls them.
//!
//! SQLite: `cargo bench -p control-plane --bench ui_queries`. The database
//! is built once into target/bench-data/ (a few minutes) and reused.
//! Postgres too when AIGW_BENCH_PG_URL names a cluster (a database
//! `aigw_bench_1m` is created there and reused).
//! AIGW_BENCH_TRACES changes the count (default 1000000).

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::insight_service_server::InsightService;
use aigw_proto::pb::admin::overview_service_server::OverviewService;
use aigw_proto::pb::admin::{
    ClientKeySpec, CreateUserRequest, GetTraceRequest, ListRequest, LoginRequest, OverviewQuery,
    OverviewRange, TraceQuery,
};
use control_plane::admin::AdminSvc;
use control_plane::admin::overview::OverviewSvc;
use control_plane::compile::compile;
use control_plane::crypto::{self, MasterKey};
use control_plane::db::traces::{TraceRow, insert_new_ids};
use control_plane::db::{Db, now_ms, write_tx};
use control_plane::push::{Publisher, Registry};
use control_plane::rollup::{self, DAY_MS, Signal};
use criterion::{Criterion, criterion_group, criterion_main};
use tonic::Request;
use tonic::metadata::MetadataValue;

const TOKEN: &str = "bench-admin-token";
const KEYS: usize = 40;
const USERS: usize = 10;
const MODELS: [(&str, &str); 4] = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet", "anthropic"),
    ("claude-haiku", "anthropic"),
];
const REGIONS: [&str; 2] = ["eu", "us"];

fn req<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("ascii"),
    );
    r
}

/// A small deterministic generator (xorshift), so every build of the data
/// set is the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn svc(db: Db) -> AdminSvc {
    let master = MasterKey::from_hex(&"5a".repeat(32)).expect("key");
    let snapshot = compile(&Default::default(), &master, None).expect("snapshot");
    AdminSvc {
        db,
        master,
        publisher: Publisher::new(snapshot),
        registry: Registry::default(),
        bootstrap_tokens: Arc::from(vec![crypto::sha256(TOKEN)]),
        write_lock: Arc::new(Mutex::new(())),
        trusted_proxies: Arc::from(Vec::new()),
        checker: control_plane::health::Checker::detached(),
        oauth: control_plane::oauth::Handle::detached().expect("oauth"),
        budgets: control_plane::budgets::Budgets::detached(),
    }
}

/// Users and their keys (through the Admin API); returns the key ids.
async fn people(s: &AdminSvc) -> Vec<(String, String)> {
    for u in 0..USERS {
        let _ = s
            .create_user(req(
                CreateUserRequest {
                    username: format!("user-{u}"),
                    password: format!("user-{u}-password"),
                    role: "member".into(),
                },
                TOKEN,
            ))
            .await;
    }
    for k in 0..KEYS {
        s.upsert_client_key(req(
            ClientKeySpec {
                name: format!("key-{k:02}"),
                owner: format!("user-{}", k % USERS),
                ..Default::default()
            },
            TOKEN,
        ))
        .await
        .expect("key");
    }
    s.list_client_keys(req(ListRequest {}, TOKEN))
        .await
        .expect("keys")
        .into_inner()
        .client_keys
        .into_iter()
        .map(|k| (k.name, k.id))
        .collect()
}

fn trace(i: u64, at: i64, rng: &mut Rng, keys: &[(String, String)]) -> TraceRow {
    let (name, id) = &keys[rng.below(KEYS as u64) as usize];
    let (model, provider) = MODELS[rng.below(4) as usize];
    let region = REGIONS[rng.below(2) as usize];
    let roll = rng.below(100);
    let status = match roll {
        0 => 400,
        1 => 429,
        2 => 500,
        _ => 200,
    };
    let latency_us = 150_000 + rng.below(4_000_000) as i64;
    let upstream = latency_us - 2_000 - rng.below(1_000) as i64;
    let input = 50 + rng.below(4_000) as i64;
    let attempts = if status == 429 {
        format!(
            r#"[{{"provider":"{provider}","provider_key":"k1","status":429,"latency_us":900,"error":"Too Many Requests","cooldown_ms":1000}},{{"provider":"{provider}","provider_key":"k2","status":200,"latency_us":{upstream},"error":null}}]"#
        )
    } else {
        format!(
            r#"[{{"provider":"{provider}","provider_key":"k{}","status":{status},"latency_us":{upstream},"error":null}}]"#,
            rng.below(3)
        )
    };
    TraceRow {
        request_id: format!("req_{i:012}"),
        started_at_ms: at,
        received_at_ms: at + 100,
        client_key_id: id.clone(),
        client_key_name: name.clone(),
        model: model.into(),
        provider: provider.into(),
        provider_key: "k1".into(),
        status,
        latency_us,
        ttfb_us: latency_us / 3,
        input_tokens: input,
        output_tokens: 20 + rng.below(800) as i64,
        cached_tokens: input / 4,
        reasoning_tokens: 0,
        cost: input as f64 * 2.5e-6,
        region: region.into(),
        node_id: format!("{region}-{}", rng.below(2)),
        stream: rng.below(2) == 0,
        endpoint: "chat.completions".into(),
        api_format: "openai".into(),
        error: (status >= 500).then(|| "upstream error".to_string()),
        dropped_fields: "[]".into(),
        usage_source: String::new(),
        refused_by: String::new(),
        attempts,
    }
}

/// Fills the database when it has fewer traces than wanted: traces in time
/// order, stored with their rollups as ingest stores them (rollup sums are
/// the same whatever the batch size).
async fn fill(s: &AdminSvc, keys: &[(String, String)], n: u64) {
    let have: i64 =
        s.db.run(|c| {
            use diesel::prelude::*;
            Ok(control_plane::db::schema::traces::table
                .count()
                .get_result(c)?)
        })
        .await
        .expect("count");
    if have >= n as i64 {
        return;
    }
    eprintln!("building {n} traces (once; reused by later runs)...");
    let now = now_ms();
    let start = now - 30 * DAY_MS;
    let step = (30 * DAY_MS) as f64 / n as f64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let chunk = 20_000u64;
    let mut i = 0u64;
    while i < n {
        let rows: Vec<TraceRow> = (i..(i + chunk).min(n))
            .map(|j| trace(j, start + (j as f64 * step) as i64, &mut rng, keys))
            .collect();
        i += rows.len() as u64;
        s.db.run(move |c| {
            write_tx(c, |c| {
                let new: std::collections::HashSet<String> =
                    insert_new_ids(c, &rows)?.into_iter().collect();
                rollup::record(c, rows.iter().filter(|r| new.contains(&r.request_id)))
            })
        })
        .await
        .expect("insert");
        if i.is_multiple_of(200_000) {
            eprintln!("  {i}");
        }
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    overview: OverviewSvc,
    member: String,
    deep_cursor: String,
    some_id: String,
}

fn world(url: &str) -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let n: u64 = std::env::var("AIGW_BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = Db::connect(url).expect("database");
    let s = svc(db);
    let (member, deep_cursor, some_id) = rt.block_on(async {
        let keys = people(&s).await;
        fill(&s, &keys, n).await;
        let member = s
            .login(Request::new(LoginRequest {
                username: "user-3".into(),
                password: "user-3-password".into(),
            }))
            .await
            .expect("login")
            .into_inner()
            .session_token;
        // The cursor of page 20, and one trace id.
        let mut token = String::new();
        let mut id = String::new();
        for _ in 0..19 {
            let page = s
                .list_traces(req(
                    TraceQuery {
                        page_token: token.clone(),
                        ..Default::default()
                    },
                    TOKEN,
                ))
                .await
                .expect("page")
                .into_inner();
            token = page.next_page_token;
            id = page.traces[7].request_id.clone();
        }
        (member, token, id)
    });
    World {
        rt,
        overview: OverviewSvc {
            admin: s,
            stored: Signal::default(),
        },
        member,
        deep_cursor,
        some_id,
    }
}

fn bench_backend(c: &mut Criterion, backend: &str, url: &str) {
    let w = world(url);
    let o = &w.overview;
    let s = &o.admin;
    let mut g = c.benchmark_group(format!("ui/{backend}"));
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (label, range) in [
        ("1h", OverviewRange::OverviewRange1h),
        ("24h", OverviewRange::OverviewRange24h),
        ("7d", OverviewRange::OverviewRange7d),
        ("30d", OverviewRange::OverviewRange30d),
    ] {
        let q = OverviewQuery {
            range: range as i32,
            ..Default::default()
        };
        g.bench_function(format!("overview {label}"), |b| {
            b.iter(|| {
                black_box(
                    w.rt.block_on(o.get_overview(req(q.clone(), TOKEN)))
                        .expect("ok"),
                )
            })
        });
    }
    for (label, q, token) in [
        (
            "overview 30d, one model",
            OverviewQuery {
                range: OverviewRange::OverviewRange30d as i32,
                model: "gpt-4o".into(),
                ..Default::default()
            },
            TOKEN,
        ),
        (
            "overview 24h, one region",
            OverviewQuery {
                range: OverviewRange::OverviewRange24h as i32,
                region: "eu".into(),
                ..Default::default()
            },
            TOKEN,
        ),
        (
            "overview 7d, a member's 4 keys",
            OverviewQuery {
                range: OverviewRange::OverviewRange7d as i32,
                ..Default::default()
            },
            w.member.as_str(),
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| {
                black_box(
                    w.rt.block_on(o.get_overview(req(q.clone(), token)))
                        .expect("ok"),
                )
            })
        });
    }
    let page = |q: TraceQuery| move || req(q.clone(), TOKEN);
    for (label, make) in [
        ("log page 1", page(TraceQuery::default())),
        (
            "log page 1, one model",
            page(TraceQuery {
                model: "claude-haiku".into(),
                ..Default::default()
            }),
        ),
        (
            "log page 1, errors only",
            page(TraceQuery {
                status_class: "error".into(),
                ..Default::default()
            }),
        ),
        (
            "log page 1, status 500",
            page(TraceQuery {
                status: Some(500),
                ..Default::default()
            }),
        ),
        (
            "log page 1, one key",
            page(TraceQuery {
                client_key: "key-07".into(),
                ..Default::default()
            }),
        ),
        (
            "log page 1, one user's keys",
            page(TraceQuery {
                user: "user-5".into(),
                ..Default::default()
            }),
        ),
        (
            "log page 1, one data plane, last hour",
            page(TraceQuery {
                node_id: "us-1".into(),
                since_ms: now_ms() - 3_600_000,
                ..Default::default()
            }),
        ),
        (
            "log page 20 (cursor)",
            page(TraceQuery {
                page_token: w.deep_cursor.clone(),
                ..Default::default()
            }),
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| black_box(w.rt.block_on(s.list_traces(make())).expect("ok")))
        });
    }
    g.bench_function("one trace by request id", |b| {
        b.iter(|| {
            let r = req(
                GetTraceRequest {
                    request_id: w.some_id.clone(),
                },
                TOKEN,
            );
            black_box(w.rt.block_on(s.get_trace(r)).expect("ok"))
        })
    });
    g.finish();
}

/// What the rollups add to ingest: a batch of 512 traces (as a busy data
/// plane sends them, over 40 keys, 4 models and 2 regions) stored with and
/// without them, on SQLite.
fn bench_ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&format!("sqlite://{}/ingest.db", dir.path().display())).expect("db");
    let keys: Vec<(String, String)> = (0..KEYS)
        .map(|k| (format!("key-{k:02}"), format!("id-{k:02}")))
        .collect();
    let mut rng = Rng(7);
    let mut next = 0u64;
    let mut g = c.benchmark_group("ingest/sqlite");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for with_rollups in [false, true] {
        let label = if with_rollups {
            "512 traces with rollups"
        } else {
            "512 traces, traces only"
        };
        g.bench_function(label, |b| {
            b.iter_batched(
                || {
                    let now = now_ms();
                    let rows: Vec<TraceRow> = (0..512)
                        .map(|i| {
                            next += 1;
                            trace(next, now - 100 + i % 100, &mut rng, &keys)
                        })
                        .collect();
                    rows
                },
                |rows| {
                    rt.block_on(db.run(move |c| {
                        write_tx(c, |c| {
                            let new = insert_new_ids(c, &rows)?;
                            if with_rollups {
                                rollup::record(c, &rows)?;
                            }
                            Ok(new.len())
                        })
                    }))
                    .expect("stored")
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_ingest(c);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).expect("dir");
    let n = std::env::var("AIGW_BENCH_TRACES").unwrap_or_else(|_| "1000000".into());
    bench_backend(
        c,
        "sqlite",
        &format!("sqlite://{}/ui-{n}.db", dir.display()),
    );
    if let Ok(pg) = std::env::var("AIGW_BENCH_PG_URL") {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let name = format!("aigw_bench_{n}");
        let mut admin = diesel::PgConnection::establish(&pg).expect("postgres");
        let _ = admin.batch_execute(&format!("CREATE DATABASE \"{name}\""));
        let (base, _) = pg.rsplit_once('/').expect("url with a database");
        bench_backend(c, "postgres", &format!("{base}/{name}"));
    }
}

criterion_group!(ui, benches);
criterion_main!(ui);
