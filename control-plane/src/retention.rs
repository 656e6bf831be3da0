//! Trace retention: traces older than `AIGW_TRACE_RETENTION_DAYS` are
//! deleted a bounded batch at a time, with a pause between batches, so a
//! large backlog never holds a long transaction or starves trace ingest.
//! Only the `traces` rows go; budgets keep their own counters.

use std::time::Duration;

use tokio::sync::watch;

use crate::db::{Db, now_ms, traces, write_tx};

/// Rows per delete.
const BATCH: i64 = 5_000;
/// Pause between two batches while a backlog is being removed.
const PAUSE: Duration = Duration::from_millis(50);
/// How often the control plane looks for expired traces.
const EVERY: Duration = Duration::from_secs(300);

pub async fn run(db: Db, max_age: Duration, mut shutdown: watch::Receiver<bool>) {
    let age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    // The first sweep soon after start, then every `EVERY`.
    let mut wait = Duration::from_secs(10);
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        wait = EVERY;
        match sweep(&db, now_ms().saturating_sub(age_ms), &mut shutdown).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired traces deleted"),
            Err(e) => tracing::warn!(error = %e, "deleting expired traces failed; will retry"),
        }
    }
}

/// Deletes every trace started before `before_ms`, batch by batch.
pub async fn sweep(
    db: &Db,
    before_ms: i64,
    shutdown: &mut watch::Receiver<bool>,
) -> crate::error::Result<usize> {
    let mut total = 0;
    loop {
        let n = db
            .run(move |conn| write_tx(conn, |conn| traces::delete_older(conn, before_ms, BATCH)))
            .await?;
        total += n;
        metrics::counter!("aigw_traces_expired_total").increment(n as u64);
        if n < usize::try_from(BATCH).unwrap_or(usize::MAX) || *shutdown.borrow() {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::temp_db;
    use crate::ingest::{store_batch, tests::record};

    #[tokio::test]
    async fn old_traces_go_in_batches_and_recent_ones_stay() {
        let t = temp_db();
        let mut old: Vec<_> = (0..12_000).map(|i| record(&format!("old-{i}"))).collect();
        for r in &mut old {
            r.started_at_ms = 1_000;
        }
        let recent = vec![record("recent-1"), record("recent-2")];
        store_batch(&t.db, old, &Default::default()).await.unwrap();
        store_batch(&t.db, recent, &Default::default())
            .await
            .unwrap();
        let (_tx, mut rx) = watch::channel(false);
        let deleted = sweep(&t.db, 2_000, &mut rx).await.unwrap();
        assert_eq!(deleted, 12_000);
        let left = t.db.run(traces::count).await.unwrap();
        assert_eq!(left, 2);
        assert_eq!(sweep(&t.db, 2_000, &mut rx).await.unwrap(), 0);
    }
}
