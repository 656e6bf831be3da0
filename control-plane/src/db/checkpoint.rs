//! SQLite's WAL checkpoints on a thread of their own, below the request
//! path's priority.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages
//! copies them back into the database file inside that commit: 4 MiB, a few
//! milliseconds of one core, in the middle of the trace store, and on a
//! small box the data planes' requests wait for the core
//! (docs/benchmarks.md). Here every connection's own checkpoint starts only
//! at [`SAFETY_NET_PAGES`], and this thread, at nice [`NICE`], checkpoints
//! every [`EVERY`] without blocking writers or readers (`PASSIVE`). Niced,
//! not idle-class: it still gets about a tenth of a busy core, several
//! times what checkpoints need at full ingest, so the WAL stays small; and
//! if it ever fell behind, the connections' own checkpoint at the safety
//! net bounds the WAL as before.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::{Connection, RunQueryDsl, SqliteConnection};

/// WAL pages at which a committing connection checkpoints itself (64 MiB
/// with 4 KiB pages): only if this thread fell behind.
pub const SAFETY_NET_PAGES: u32 = 16_384;
/// How often the thread checkpoints.
const EVERY: Duration = Duration::from_millis(200);
/// The thread's nice value: below requests, well above idle.
const NICE: i32 = 10;

/// Starts the checkpointer for the database at `path`. It stops once every
/// clone of `alive`'s owner is gone (the pool closed).
pub fn start(path: PathBuf, alive: &Arc<()>) {
    let alive = Arc::downgrade(alive);
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&path, &alive));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the WAL checkpointer; commits checkpoint themselves");
    }
}

fn run(path: &std::path::Path, alive: &Weak<()>) {
    lower_priority();
    let Some(url) = path.to_str() else { return };
    let mut conn = match SqliteConnection::establish(url) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpointer cannot open the database");
            return;
        }
    };
    // A checkpoint waits for no one: busy means try again next round.
    if let Err(e) = diesel::sql_query("PRAGMA busy_timeout = 0").execute(&mut conn) {
        tracing::warn!(error = %e, "WAL checkpointer cannot set its timeout");
    }
    while alive.strong_count() > 0 {
        std::thread::sleep(EVERY);
        if let Err(e) = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn) {
            tracing::debug!(error = %e, "WAL checkpoint skipped");
        }
    }
}

/// This thread's nice value to [`NICE`] (on Linux a thread's own).
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
        tracing::debug!(error = %e, "WAL checkpointer keeps its priority");
    }
}
