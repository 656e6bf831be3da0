//! What budgets cost per request: one reservation (`admit`) and its
//! settlement, for a key with no budget, a key with every limit, and a key
//! counting toward its own, its user's and its team's budgets; in process,
//! and through Redis when `REDIS_URL` names one (the e2e suite's
//! `redis-server`, for example).
//! `cargo bench -p data-plane --bench limiter`; figures in
//! `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aigw_proto::model::{Limits, StoreDown};
use criterion::{Criterion, criterion_group, criterion_main};
use data_plane::ratelimit::{Demand, Enforced, Limiter};

/// Every limit set, each far above what the benchmark uses, so every check
/// runs and none refuses.
fn every_limit() -> Limits {
    Limits {
        rps: Some(u64::MAX / 4),
        rpm: Some(u64::MAX / 4),
        tokens_per_minute: Some(u64::MAX / 4),
        tokens_per_day: Some(u64::MAX / 4),
        cost_per_day: Some(1e15),
        cost_per_month: Some(1e15),
        concurrent: Some(1_000_000),
        when_store_down: StoreDown::Local,
    }
}

fn budgets(n: usize, tag: &str) -> Vec<Enforced> {
    ["key", "user", "team"]
        .iter()
        .take(n)
        .map(|kind| Enforced {
            id: format!("{kind}:{tag}"),
            name: format!("{kind} bench"),
            limits: every_limit(),
            max_reserve: None,
        })
        .collect()
}

const DEMAND: Demand = Demand {
    tokens: 300,
    cost: 0.0004,
};

/// `iters` admissions, each settled, on one runtime: what a request pays.
fn run(rt: &tokio::runtime::Runtime, limiter: &Limiter, b: &[Enforced], iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let id = format!("req-{i}");
            let now = data_plane::schedule::now_ms();
            match limiter.admit(b, &id, DEMAND, now).await {
                Ok(r) => limiter.settle(black_box(r), 120, 0.0002, now),
                Err(e) => panic!("the benchmark's budgets refused a request: {e:?}"),
            }
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = Limiter::new("bench");
    let mut g = c.benchmark_group("limiter/in-process");
    for (label, n) in [("no budget", 0), ("key", 1), ("key+user+team", 3)] {
        let b = budgets(n, "local");
        g.bench_function(label, |bch| bch.iter_custom(|it| run(&rt, &local, &b, it)));
    }
    g.finish();

    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("REDIS_URL not set: the Redis figures are not measured");
        return;
    };
    let shared = rt
        .block_on(async { Limiter::with_redis(&url, "bench", Duration::from_millis(250)) })
        .expect("limiter with Redis");
    let mut g = c.benchmark_group("limiter/redis");
    g.sample_size(20);
    for (label, n) in [("key", 1), ("key+user+team", 3)] {
        let b = budgets(n, &format!("redis-{}", std::process::id()));
        g.bench_function(label, |bch| bch.iter_custom(|it| run(&rt, &shared, &b, it)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
