use super::*;
use crate::db::rollups::{RollupFilter, scan};
use crate::db::testing::{pg_db, temp_db, trace_row as trace};
use crate::db::write_tx;

#[test]
fn overhead_is_first_byte_minus_upstream_wait() {
    let t = trace("a", 0, "app", "m", 200);
    assert_eq!(overhead_us(&t), 5_000);
    let refused = TraceRow {
        ttfb_us: 0,
        attempts: "[]".into(),
        ..t.clone()
    };
    assert_eq!(overhead_us(&refused), 50_000);
    let odd = TraceRow {
        attempts: "not json".into(),
        ..t
    };
    assert_eq!(overhead_us(&odd), 20_000);
}

#[tokio::test]
async fn every_level_and_span_adds_up_across_batches_on_sqlite() {
    let t = temp_db();
    every_level_and_span_adds_up_across_batches(t.db.clone()).await;
}

#[tokio::test]
async fn every_level_and_span_adds_up_across_batches_on_postgres() {
    if let Some(pg) = pg_db() {
        every_level_and_span_adds_up_across_batches(pg.db.clone()).await;
    }
}

async fn every_level_and_span_adds_up_across_batches(db: crate::db::Db) {
    // 03:00 two days ago: inside the retention of the spans checked below,
    // so the prune a batch may run keeps them whatever the date.
    let h = crate::db::now_ms() / DAY_MS * DAY_MS - 2 * DAY_MS + 3 * HOUR_MS;
    let first = vec![
        trace("1", h + 1, "app", "m1", 200),
        trace("2", h + 2, "app", "m2", 500),
        // Same key and model as "1", ten minutes later: another 5-minute
        // bucket, the same hour, 6 hours and day.
        trace("4", h + 10 * MINUTE_MS, "app", "m1", 200),
    ];
    let second = vec![trace("3", h + HOUR_MS + 5, "other", "m1", 200)];
    for batch in [first, second] {
        db.run(move |c| write_tx(c, |c| record(c, &batch)))
            .await
            .unwrap();
    }
    let rows = |level: Level, span: i64| {
        let f = RollupFilter {
            level: level as i32,
            span_ms: span,
            since_ms: 0,
            until_ms: i64::MAX,
            ..Default::default()
        };
        let db = db.clone();
        async move { db.run(move |c| scan(c, &f)).await.unwrap() }
    };
    let totals = rows(Level::Total, DAY_MS).await;
    assert_eq!(totals.len(), 1);
    let r = &totals[0];
    assert_eq!(
        (r.requests, r.errors, r.input_tokens, r.cost),
        (4, 1, 40, 2.0)
    );
    let mut s = Sums::default();
    s.add_row(r);
    assert_eq!(s.latency.count(), 4);
    assert!((s.overhead.percentile_ms(0.5) - 5.0).abs() < 0.25);
    let hours = rows(Level::Total, HOUR_MS).await;
    assert_eq!(hours.iter().map(|r| r.requests).collect::<Vec<_>>(), [3, 1]);
    let by_model = rows(Level::Model, DAY_MS).await;
    let m1 = by_model.iter().find(|r| r.model == "m1").unwrap();
    assert_eq!((m1.requests, m1.client_key_id.as_str()), (3, ""));
    let by_key = rows(Level::Key, DAY_MS).await;
    let app = by_key.iter().find(|r| r.client_key_name == "app").unwrap();
    assert_eq!((app.requests, app.errors), (3, 1));
    assert_eq!(rows(Level::Full, DAY_MS).await.len(), 3);
    assert_eq!(rows(Level::Region, 6 * HOUR_MS).await[0].requests, 4);
}

#[test]
fn signal_counts_stored_traces() {
    let s = Signal::default();
    let mut rx = s.subscribe();
    s.stored(0);
    assert!(!rx.has_changed().unwrap());
    s.stored(3);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 3);
}
