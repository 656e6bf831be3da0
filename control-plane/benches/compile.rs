//! What every configuration change costs the control plane at scale: loading
//! the rows and compiling the snapshot with 100,000 client keys in SQLite.
//! An admin change loads everything and compiles against the previous
//! version (sharing its unchanged keys); a health check or a lease loads and
//! compiles only the core and keeps the current keys.
//!
//! `cargo bench -p control-plane --bench compile`

use control_plane::compile::{compile, recompile_core};
use control_plane::crypto::MasterKey;
use control_plane::db::config::{ClientKeyRow, insert_client_keys, load_all, load_core};
use control_plane::db::{Db, write_tx};
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: usize = 100_000;

fn setup() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/aigw.db", dir.path().display());
    let db = Db::connect(&url).expect("db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(db.run(|conn| {
        write_tx(conn, |conn| {
            let rows: Vec<ClientKeyRow> = (0..KEYS)
                .map(|i| ClientKeyRow {
                    id: format!("{i:032x}"),
                    name: format!("bench-key-{i:06}"),
                    key_hash: control_plane::crypto::sha256_hex(&format!("sk-bench-{i}")),
                    key_hint: "sk-…".into(),
                    models: "[]".into(),
                    rpm: None,
                    tokens_per_day: None,
                    cost_per_day: None,
                    expires_at_ms: 0,
                    created_at_ms: 1,
                    updated_at_ms: 1,
                    owner_user_id: None,
                    revoked_at_ms: 0,
                    rps: None,
                    tokens_per_minute: None,
                    cost_per_month: None,
                    concurrent: None,
                    limits_global: false,
                    when_store_down: String::new(),
                })
                .collect();
            insert_client_keys(conn, &rows)
        })
    }))
    .expect("insert");
    (db, dir)
}

fn bench(c: &mut Criterion) {
    let (db, _dir) = setup();
    let master = MasterKey::from_hex(&"42".repeat(32)).expect("key");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("100k client keys");
    g.sample_size(10);
    g.bench_function("load_all", |b| {
        b.iter(|| rt.block_on(db.run(load_all)).expect("load"))
    });
    g.bench_function("load_core", |b| {
        b.iter(|| rt.block_on(db.run(load_core)).expect("load"))
    });
    let mut rows = rt.block_on(db.run(load_all)).expect("load");
    g.bench_function("compile (no previous version)", |b| {
        b.iter(|| compile(&rows, &master, None).expect("compile"))
    });
    let previous = compile(&rows, &master, None).expect("compile");
    rows.client_keys[500].rpm = Some(60);
    g.bench_function("compile (one key changed)", |b| {
        b.iter(|| compile(&rows, &master, Some(&previous)).expect("compile"))
    });
    let core_rows = rt.block_on(db.run(load_core)).expect("load");
    g.bench_function("recompile_core", |b| {
        b.iter(|| recompile_core(&core_rows, &master, &previous).expect("compile"))
    });
    g.bench_function("whole encoding", |b| {
        b.iter(|| {
            compile(&rows, &master, Some(&previous))
                .expect("compile")
                .whole()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
