//! The database: SQLite (embedded default) or Postgres, chosen by the URL.
//! Sync diesel behind r2d2; async callers go through [`Db::run`], which moves
//! the work onto tokio's blocking pool. One `AnyConnection` (diesel's
//! `MultiConnection`) lets every query be written once for both backends;
//! only upserts (`ON CONFLICT`), which `MultiBackend` cannot express, match on
//! the variant.

pub mod budgets;
pub mod config;
pub mod health;
pub mod identity;
pub mod nodes;
pub mod oauth;
pub mod oidc;
pub mod rollups;
pub mod schema;
pub mod traces;

use std::path::Path;
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Error, Result};

/// The portable migration set in the workspace's `migrations/`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Which backend a `DATABASE_URL` names, with what to hand its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file path (the part after `sqlite://`).
    Sqlite(String),
    Postgres(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Error::Settings(
                    "DATABASE_URL sqlite:// needs a file path".into(),
                ));
            }
            Ok(Self::Sqlite(path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_string()))
        } else {
            Err(Error::Settings(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

/// Opens connections of the backend the URL names. diesel's own
/// `MultiConnection::establish` tries each backend in turn and would, for a
/// Postgres URL that fails to connect, fall through to SQLite and create a
/// file named after the URL; this manager never guesses.
#[derive(Debug)]
struct Manager(Target);

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.0 {
            Target::Sqlite(path) => {
                diesel::SqliteConnection::establish(path).map(AnyConnection::Sqlite)
            }
            Target::Postgres(url) => {
                diesel::PgConnection::establish(url).map(AnyConnection::Postgres)
            }
        }
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// SQLite settings every pooled connection needs: a busy timeout instead of
/// instant "database is locked", and enforced foreign keys (off by default).
/// WAL is a property of the file and is set once in [`Db::connect`].
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Pool errors (a connection that could not be opened) as tracing warnings;
/// the caller sees the error too, so r2d2's default ERROR lines only repeat it.
#[derive(Debug)]
struct LogErrors;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for LogErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

enum TargetKind {
    Sqlite,
    Postgres,
}

/// A cheap-to-clone handle on the pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    postgres: bool,
}

/// The database holds every hash, token and sealed secret: its directory
/// (when created here) is 0700 and the file 0600 from its first byte.
/// SQLite gives its -wal and -shm files the database file's mode.
fn private_sqlite_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    if path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Db {
    /// Opens the pool (creating the SQLite file's directory) and runs the
    /// embedded migrations.
    pub fn connect(url: &str) -> Result<Self> {
        let target = Target::parse(url)?;
        let target_kind = match &target {
            Target::Sqlite(_) => TargetKind::Sqlite,
            Target::Postgres(_) => TargetKind::Postgres,
        };
        let size = match &target {
            Target::Sqlite(path) => {
                private_sqlite_file(Path::new(path))
                    .map_err(|e| Error::Connect(format!("{path}: {e}")))?;
                // WAL lets trace inserts and admin reads proceed together. It
                // is stored in the file, so one connection sets it before the
                // pool opens several (which would race for the switch).
                let mut c = diesel::SqliteConnection::establish(path)
                    .map_err(|e| Error::Connect(format!("{path}: {e}")))?;
                c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
                4
            }
            Target::Postgres(_) => 8,
        };
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(SqlitePragmas))
            .error_handler(Box::new(LogErrors))
            .build(Manager(target))
            .map_err(|e| Error::Connect(e.to_string()))?;
        let postgres = matches!(target_kind, TargetKind::Postgres);
        let db = Self { pool, postgres };
        let mut conn = db.pool.get()?;
        // Two control planes (or tests) starting at once on a fresh Postgres
        // database would both try to create the schema: one waits here for
        // the other. (SQLite serializes through its file lock.)
        let pg = matches!(&*conn, AnyConnection::Postgres(_));
        if pg {
            conn.batch_execute("SELECT pg_advisory_lock(7141592653)")?;
        }
        let applied: std::result::Result<Vec<String>, String> = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string());
        if pg {
            conn.batch_execute("SELECT pg_advisory_unlock(7141592653)")?;
        }
        let applied = applied.map_err(Error::Migration)?;
        for m in applied {
            tracing::info!(migration = %m, "applied migration");
        }
        Ok(db)
    }

    /// Whether this is Postgres (which takes concurrent writers; SQLite
    /// has one writer at a time).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Runs blocking database work off the async runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::internal(format!("database task failed: {e}")))?
    }
}

/// Rows per multi-row INSERT: within SQLite's 32,766 and Postgres's 65,535
/// bind parameters for every table we insert in bulk (20 columns at most).
pub const BATCH_ROWS: usize = 1000;

/// Runs `f` in a write transaction. On SQLite it starts with `BEGIN
/// IMMEDIATE`: a deferred transaction that reads first and writes later
/// fails at once with "database is locked" when another writer got in
/// between, whereas an immediate one waits on the busy timeout.
pub fn write_tx<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T>,
) -> Result<T> {
    type Tm = <AnyConnection as Connection>::TransactionManager;
    match conn {
        AnyConnection::Sqlite(c) => {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        AnyConnection::Postgres(_) => Tm::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(v) => {
            Tm::commit_transaction(conn)?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rb) = Tm::rollback_transaction(conn) {
                tracing::warn!(error = %rb, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
pub mod testing {
    //! A fresh SQLite database in a temp dir for each test.
    use super::Db;

    pub struct TempDb {
        pub db: Db,
        pub url: String,
        _dir: tempfile::TempDir,
    }

    /// A stored trace of key `key` (id `id-{key}`) for tests: one attempt,
    /// fixed latencies, tokens and cost.
    pub fn trace_row(
        id: &str,
        at: i64,
        key: &str,
        model: &str,
        status: i32,
    ) -> super::traces::TraceRow {
        super::traces::TraceRow {
            request_id: id.into(),
            started_at_ms: at,
            received_at_ms: at,
            client_key_id: format!("id-{key}"),
            client_key_name: key.into(),
            model: model.into(),
            provider: "p".into(),
            provider_key: "k".into(),
            status,
            latency_us: 50_000,
            ttfb_us: 20_000,
            input_tokens: 10,
            output_tokens: 4,
            cached_tokens: 2,
            reasoning_tokens: 1,
            cost: 0.5,
            region: "eu".into(),
            node_id: "n".into(),
            stream: false,
            endpoint: "chat.completions".into(),
            api_format: "openai".into(),
            error: None,
            dropped_fields: "[]".into(),
            usage_source: String::new(),
            refused_by: String::new(),
            attempts: r#"[{"provider":"p","provider_key":"k","status":200,"latency_us":15000}]"#
                .into(),
        }
    }

    pub fn temp_db() -> TempDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/aigw.db", dir.path().display());
        let db = Db::connect(&url).unwrap();
        TempDb { db, url, _dir: dir }
    }

    /// A fresh Postgres database in the cluster AIGW_TEST_PG_URL names,
    /// dropped again on drop; None (the test is skipped) without the variable.
    pub struct PgTemp {
        pub db: Db,
        admin_url: String,
        name: String,
    }

    /// The Postgres cluster to test against. Unset, Postgres tests are
    /// skipped, unless AIGW_TEST_REQUIRE_PG=1 (the test script sets it), where
    /// a missing cluster fails them: a skip must not pass for a pass in CI.
    pub fn pg_url() -> Option<String> {
        let url = std::env::var("AIGW_TEST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty());
        if url.is_none() {
            assert!(
                std::env::var("AIGW_TEST_REQUIRE_PG").as_deref() != Ok("1"),
                "AIGW_TEST_REQUIRE_PG=1 but AIGW_TEST_PG_URL is not set"
            );
            println!("skipped: set AIGW_TEST_PG_URL=postgres://... to run the Postgres variant");
        }
        url
    }

    pub fn pg_db() -> Option<PgTemp> {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let admin_url = pg_url()?;
        let name = format!("aigw_cp_test_{}", crate::crypto::new_id().unwrap());
        let mut c = diesel::PgConnection::establish(&admin_url).unwrap();
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let db = Db::connect(&format!("{base}/{name}")).unwrap();
        Some(PgTemp {
            db,
            admin_url,
            name,
        })
    }

    impl Drop for PgTemp {
        fn drop(&mut self) {
            use diesel::Connection as _;
            use diesel::connection::SimpleConnection as _;
            if let Ok(mut c) = diesel::PgConnection::establish(&self.admin_url) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator told "I/O error: No such file or directory" cannot tell
    /// which file: the message names the database's path.
    #[test]
    fn a_database_file_that_cannot_be_made_is_named() {
        let e = Db::connect("sqlite:///proc/no-such-dir/aigw.db")
            .err()
            .expect("no database under /proc");
        assert!(e.to_string().contains("/proc/no-such-dir/aigw.db"), "{e}");
    }

    #[test]
    fn parses_urls() {
        assert_eq!(
            Target::parse("sqlite://./data/a.db").unwrap(),
            Target::Sqlite("./data/a.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/a.db").unwrap(),
            Target::Sqlite("/tmp/a.db".into())
        );
        assert!(matches!(
            Target::parse("postgres://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert!(Target::parse("mysql://x").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn migrations_run_twice_and_parent_dir_is_created() {
        let t = testing::temp_db();
        // Reconnecting finds nothing left to migrate.
        Db::connect(&t.url).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = std::path::PathBuf::from(t.url.strip_prefix("sqlite://").unwrap());
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600, "the database file is owner-only");
            assert_eq!(mode(file.parent().unwrap()), 0o700, "its new directory too");
            let wal = file.with_extension("db-wal");
            if wal.exists() {
                assert_eq!(mode(&wal), 0o600, "SQLite's WAL follows the file");
            }
        }
    }
}

#[cfg(test)]
mod pg_tests;
