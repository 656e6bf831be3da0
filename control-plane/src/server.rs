//! Startup and the gRPC server: ConfigService, TraceService, the Admin API
//! (AdminService, IdentityService, InsightService)
//! plus standard health and reflection, all on one port so generic gRPC
//! tools (grpcurl, grpc_health_probe) work against it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aigw_proto::pb::admin::admin_service_server::AdminServiceServer;
use aigw_proto::pb::admin::config_file_service_server::ConfigFileServiceServer;
use aigw_proto::pb::admin::identity_service_server::IdentityServiceServer;
use aigw_proto::pb::admin::insight_service_server::InsightServiceServer;
use aigw_proto::pb::admin::overview_service_server::OverviewServiceServer;
use aigw_proto::pb::admin::sign_in_service_server::SignInServiceServer;
use aigw_proto::pb::config::config_service_server::ConfigServiceServer;
use aigw_startup::{announce, announce_line, shutdown_signal};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::admin::config_file::ConfigFileSvc;
use crate::admin::gate::Gate;
use crate::admin::overview::OverviewSvc;
use crate::admin::{AdminSvc, users};
use crate::budgets::{self, Budgets};
use crate::compile::compile;
use crate::crypto::{self, MasterKey};
use crate::db::config::{self, ApiTokenRow, load_all};
use crate::db::{AnyConnection, Db, identity, now_ms, write_tx};
use crate::error::{Error, Result};
use crate::health::{self, Checker};
use crate::ingest::TraceSvc;
use crate::node_auth::NodeAuth;
use crate::oidc::{OidcState, SignInSvc};
use crate::outbound::Outbound;
use crate::push::{ConfigSvc, Publisher, Registry};
use crate::rollup::Signal;

/// Largest message accepted from clients (trace batches, specs).
pub(crate) const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest message of the services with calls anyone may make (Login, SSO
/// sign-in): their messages are a few names, a password, a code.
const MAX_PUBLIC_MESSAGE: usize = 64 * 1024;
/// How long startup waits for a Postgres server to accept connections.
const DB_STARTUP_WAIT: Duration = Duration::from_secs(60);
/// How long open streams get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// See where the server is built.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Validated `serve` settings.
pub struct Settings {
    pub database_url: String,
    pub master_key: MasterKey,
    /// The shared join token; None: only node credentials are accepted.
    pub node_token: Option<String>,
    /// None: use the tokens stored in the database, creating one at first start.
    pub admin_token: Option<String>,
    /// The first user's password (used only when there are no users yet);
    /// None: generate one and print it once.
    pub admin_password: Option<String>,
    /// Master keys being rotated away from: stored secrets sealed under one
    /// of them are re-sealed under `master_key` at start.
    pub previous_master_keys: Vec<MasterKey>,
    /// gRPC over TLS (and mTLS with a client CA) when set.
    pub tls: Option<ServerTls>,
    /// Peers whose `x-aigw-client-ip` the login throttle believes.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Extra PEM roots for upstreams (health checks, OAuth token endpoints).
    pub upstream_ca_file: Option<std::path::PathBuf>,
    /// Traces older than this are deleted; None keeps them.
    pub trace_retention: Option<Duration>,
}

/// The server's certificate and key, and the CA client certificates must
/// chain to (mTLS) when given.
pub struct ServerTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: Option<std::path::PathBuf>,
}

impl ServerTls {
    fn config(&self) -> Result<tonic::transport::ServerTlsConfig> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| Error::Settings(format!("cannot read {}: {e}", p.display())))
        };
        let mut cfg = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(ca) = &self.client_ca {
            cfg = cfg.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(cfg)
    }
}

/// Everything the server needs, built before the port is bound so that a
/// bad database or master key fails startup instead of the first request.
pub struct Prepared {
    pub db: Db,
    pub publisher: Publisher,
    pub registry: Registry,
    master: MasterKey,
    nodes: NodeAuth,
    tls: Option<ServerTls>,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    outbound: Outbound,
    bootstrap_tokens: Arc<[[u8; 32]]>,
    trace_retention: Option<Duration>,
    /// The SQLite file and its identity when opened, watched while serving.
    sqlite_file: Option<(std::path::PathBuf, FileId)>,
    /// A bootstrap admin token created by this start; print it once.
    pub generated_admin_token: Option<String>,
    /// The first user's password when this start generated it; print it once.
    pub generated_admin_password: Option<String>,
}

pub async fn prepare(settings: Settings) -> Result<Prepared> {
    let db = connect_with_retry(&settings.database_url).await?;
    let sqlite_file = match crate::db::Target::parse(&settings.database_url)? {
        crate::db::Target::Sqlite(path) => {
            let path = std::path::PathBuf::from(path);
            file_id(&path).map(|id| (path, id))
        }
        crate::db::Target::Postgres(_) => None,
    };
    let env_token = settings.admin_token.clone();
    let (bootstrap_tokens, generated) = db
        .run(move |conn| bootstrap_admin_tokens(conn, env_token.as_deref()))
        .await?;
    let generated_admin_password = first_admin(&db, settings.admin_password.clone()).await?;
    if !settings.previous_master_keys.is_empty() {
        let (current, previous) = (
            settings.master_key.clone(),
            settings.previous_master_keys.clone(),
        );
        let moved = db
            .run(move |conn| crate::rotate::reseal(conn, &current, &previous))
            .await?;
        tracing::info!(
            moved,
            "master key rotation: secrets re-sealed under AIGW_MASTER_KEY; AIGW_MASTER_KEY_PREVIOUS can be removed"
        );
    }
    // The stored configuration must compile with this master key; serving an
    // empty or partial snapshot instead would wipe the data planes' config.
    let master = settings.master_key.clone();
    let snapshot = db
        .run(move |conn| compile(&load_all(conn)?, &master, None))
        .await?;
    tracing::info!(version = %snapshot.version(), providers = snapshot.core.providers.len(),
        client_keys = snapshot.keys.len(), bytes = snapshot.encoded_len, "configuration loaded");
    let registry = Registry::default();
    let empty = snapshot.core.providers.is_empty() && snapshot.keys.is_empty();
    let publisher = Publisher::new(snapshot);
    if empty && db.run(identity::never_configured).await? {
        publisher.hold().hold();
        tracing::warn!(
            database = %sqlite_file.as_ref().map_or_else(|| "postgres".to_string(), |(p, _)| p.display().to_string()),
            "this control plane's database has never held a configuration (no provider, no client \
             key, no admin change): data planes that already serve one keep it, and are not sent \
             this empty one, until a configuration is applied (or any admin change is made)"
        );
    }
    crate::telemetry::snapshot_published();
    Ok(Prepared {
        publisher,
        sqlite_file,
        registry: registry.clone(),
        master: settings.master_key,
        nodes: NodeAuth::new(db.clone(), settings.node_token.as_deref(), registry.clone()),
        bootstrap_tokens: Arc::from(bootstrap_tokens),
        db,
        outbound: Outbound::new(settings.upstream_ca_file.as_deref())?,
        tls: settings.tls,
        trusted_proxies: Arc::from(settings.trusted_proxies),
        trace_retention: settings.trace_retention,
        generated_admin_token: generated,
        generated_admin_password,
    })
}

/// A file's identity: device and inode.
pub(crate) type FileId = (u64, u64);

/// How often the SQLite file's identity is checked.
const DB_FILE_CHECK: Duration = Duration::from_secs(5);

/// The identity of the file at `path`, None when there is none.
pub(crate) fn file_id(path: &std::path::Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

/// What became of the database file opened as `opened`: None while it is
/// still at `path`, else "deleted" or "replaced".
pub(crate) fn database_file_moved(path: &std::path::Path, opened: FileId) -> Option<&'static str> {
    match file_id(path) {
        None => Some("deleted"),
        Some(id) if id != opened => Some("replaced"),
        Some(_) => None,
    }
}

/// Watches the SQLite file: deleted or replaced under the running control
/// plane (a volume remounted, a backup restored by copying over it), this
/// process keeps writing to the file it opened, which nobody will see
/// again. That is logged as an error and readiness (gRPC health, service
/// "") fails until the file at the path is the one opened again.
async fn watch_database_file(
    path: std::path::PathBuf,
    opened: FileId,
    health: tonic_health::server::HealthReporter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut was_moved = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(DB_FILE_CHECK) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        let moved = database_file_moved(&path, opened);
        match moved {
            Some(what) if !was_moved => {
                tracing::error!(path = %path.display(), what,
                    "the SQLite database file was {what} under the running control plane: it \
                     keeps using the file it opened, which is no longer at that path, and what it \
                     stores from now on is lost on restart. Put the right file in place and \
                     restart the control plane; readiness fails until then");
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
            }
            None if was_moved => {
                tracing::info!(path = %path.display(), "the SQLite database file opened is at its path again");
                health
                    .set_service_status("", tonic_health::ServingStatus::Serving)
                    .await;
            }
            _ => {}
        }
        was_moved = moved.is_some();
    }
}

/// At first start (no users yet) creates the user `admin` with `password`,
/// or with a generated one, which is returned to be printed once.
async fn first_admin(db: &Db, password: Option<String>) -> Result<Option<String>> {
    if db.run(identity::count_users).await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (users::generate_password()?, true),
    };
    let hash = users::hash_async(password.clone()).await?;
    let created = db
        .run(move |conn| write_tx(conn, |conn| users::create_first_admin(conn, &hash)))
        .await?;
    if created {
        tracing::info!(user = users::FIRST_ADMIN, "created the first admin user");
    }
    Ok((created && generated).then_some(password))
}

/// Opens the database. A Postgres server that is still starting (as under
/// docker-compose) gets up to a minute; SQLite errors are final at once.
async fn connect_with_retry(url: &str) -> Result<Db> {
    let deadline = tokio::time::Instant::now() + DB_STARTUP_WAIT;
    loop {
        let u = url.to_string();
        let attempt = tokio::task::spawn_blocking(move || Db::connect(&u))
            .await
            .map_err(|e| Error::internal(format!("startup task failed: {e}")))?;
        match attempt {
            Err(e @ (Error::Connect(_) | Error::Pool(_)))
                if url.starts_with("postgres") && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

/// The admin token generated at first start: its name and prefix.
const GENERATED_TOKEN_NAME: &str = "bootstrap";
const GENERATED_TOKEN_PREFIX: &str = "aigw-admin-";

/// The Admin API accepts AIGW_ADMIN_TOKEN when set (returned here, checked
/// in memory), and the tokens stored in `api_tokens` (looked up per call, so
/// revocation is immediate). When neither exists (first start without the
/// variable) a bootstrap token is stored; only its hash is kept, the caller
/// prints it once.
fn bootstrap_admin_tokens(
    conn: &mut AnyConnection,
    env_token: Option<&str>,
) -> Result<(Vec<[u8; 32]>, Option<String>)> {
    if let Some(token) = env_token {
        // The token generated at first start was a stand-in for this one:
        // once an operator sets AIGW_ADMIN_TOKEN, the generated one ends.
        if let Some(t) = config::find_api_token(conn, GENERATED_TOKEN_NAME)?
            && t.user_id.is_none()
            && t.revoked_at_ms == 0
            // The hint keeps the token's first characters: "aigw-admin…".
            && t.token_hint.starts_with(GENERATED_TOKEN_PREFIX.trim_end_matches('-'))
        {
            config::revoke_api_token(conn, &t.id, now_ms())?;
            tracing::info!(
                "AIGW_ADMIN_TOKEN is set: the admin token generated at first start is revoked"
            );
        }
        return Ok((vec![crypto::sha256(token)], None));
    }
    if !config::api_tokens(conn, None)?.is_empty() {
        tracing::info!("AIGW_ADMIN_TOKEN not set: the Admin API accepts the stored tokens");
        return Ok((Vec::new(), None));
    }
    let token = crypto::new_secret(GENERATED_TOKEN_PREFIX)?;
    config::insert_api_token(
        conn,
        &ApiTokenRow {
            id: crypto::new_id()?,
            name: GENERATED_TOKEN_NAME.into(),
            token_hash: crypto::sha256_hex(&token),
            role: "admin".into(),
            created_at_ms: now_ms(),
            user_id: None,
            token_hint: crypto::mask(&token, GENERATED_TOKEN_PREFIX.len()),
            expires_at_ms: 0,
            revoked_at_ms: 0,
        },
    )?;
    Ok((Vec::new(), Some(token)))
}

/// `control-plane serve`: prepare, bind, announce, serve until SIGINT/SIGTERM;
/// with `metrics`, Prometheus metrics on that address too.
pub async fn run(settings: Settings, addr: SocketAddr, metrics: Option<SocketAddr>) -> Result<()> {
    let handle = aigw_proto::prometheus::install();
    crate::telemetry::describe();
    let prepared = prepare(settings).await?;
    if let Some(metrics) = metrics {
        let served = crate::telemetry::serve(
            metrics,
            handle,
            prepared.publisher.clone(),
            prepared.registry.clone(),
        )
        .await;
        match served {
            Ok(bound) => announce_line(&format!("control-plane metrics on {bound}"))?,
            // The default is a convenience: a second control plane on the
            // box (tests, a migration) serves without it.
            Err(e) if metrics.to_string() == crate::cli::DEFAULT_METRICS_LISTEN => {
                tracing::warn!(error = %e, address = %metrics, "metrics not served: the default address is taken; set AIGW_METRICS_LISTEN");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(token) = &prepared.generated_admin_token {
        announce_line(&format!("admin token: {token}"))?;
    }
    if let Some(password) = &prepared.generated_admin_password {
        announce_line(&format!("admin password: {password}"))?;
    }
    let listener = TcpListener::bind(addr).await?;
    announce("control-plane", listener.local_addr()?)?;
    serve(prepared, listener, shutdown_signal()).await
}

/// Serves on `listener` until `signal` resolves, then ends the long-lived
/// streams (data planes reconnect elsewhere or later) and drains.
pub async fn serve(
    p: Prepared,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let traces_stored = Signal::default();
    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_serving::<ConfigServiceServer<ConfigSvc>>().await;
    health
        .set_serving::<crate::trace_server::TraceServer<TraceSvc>>()
        .await;
    health.set_serving::<AdminServiceServer<AdminSvc>>().await;
    health
        .set_serving::<IdentityServiceServer<AdminSvc>>()
        .await;
    health.set_serving::<InsightServiceServer<AdminSvc>>().await;
    health
        .set_serving::<OverviewServiceServer<OverviewSvc>>()
        .await;
    // Reflection v1, and v1alpha for the many clients (grpcio-reflection,
    // older grpcurl, Postman) that still speak only that.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(aigw_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_err = |e| Error::internal(format!("gRPC reflection setup failed: {e}"));
    let reflection = reflection_builder().build_v1().map_err(reflection_err)?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(reflection_err)?;

    if p.publisher.hold().is_held() {
        tokio::spawn(
            p.publisher
                .hold()
                .clone()
                .lift_on_admin_change(p.db.clone(), shutdown_rx.clone()),
        );
    }
    if let Some((path, opened)) = p.sqlite_file.clone() {
        tokio::spawn(watch_database_file(
            path,
            opened,
            health.clone(),
            shutdown_rx.clone(),
        ));
    }
    let write_lock = Arc::new(Mutex::new(()));
    let checker = Checker::start(health::Ctx {
        db: p.db.clone(),
        master: p.master.clone(),
        publisher: p.publisher.clone(),
        write_lock: write_lock.clone(),
        http: p.outbound.clone(),
    });
    let budgets = Budgets::start(budgets::Ctx {
        db: p.db.clone(),
        master: p.master.clone(),
        publisher: p.publisher.clone(),
        write_lock: write_lock.clone(),
        registry: p.registry.clone(),
        http: p.outbound.clone(),
    })
    .await?;
    let refresher = crate::oauth::Refresher::start(crate::oauth::Ctx {
        db: p.db.clone(),
        master: p.master.clone(),
        publisher: p.publisher.clone(),
        write_lock: write_lock.clone(),
        http: p.outbound.clone(),
    });
    // A health check refused with 401 refreshes an OAuth account at once,
    // as a data plane's refused request does.
    checker.refresh_oauth_with(refresher.clone());
    let config = ConfigServiceServer::new(ConfigSvc {
        nodes: p.nodes.clone(),
        publisher: p.publisher.clone(),
        registry: p.registry.clone(),
        shutdown: shutdown_rx.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE);
    if let Some(max_age) = p.trace_retention {
        tokio::spawn(crate::retention::run(
            p.db.clone(),
            max_age,
            shutdown_rx.clone(),
        ));
    }
    let trace = crate::trace_server::TraceServer::new(
        TraceSvc {
            writer: crate::trace_writer::TraceWriter::spawn(p.db.clone(), budgets.clone()),
            nodes: p.nodes.clone(),
            checker: checker.clone(),
            budgets: budgets.clone(),
            oauth: refresher.clone(),
            shutdown: shutdown_rx.clone(),
            signal: traces_stored.clone(),
        },
        MAX_MESSAGE,
    );
    let admin_svc = AdminSvc {
        db: p.db.clone(),
        master: p.master.clone(),
        publisher: p.publisher.clone(),
        registry: p.registry.clone(),
        bootstrap_tokens: p.bootstrap_tokens.clone(),
        write_lock,
        trusted_proxies: p.trusted_proxies.clone(),
        checker: checker.clone(),
        oauth: crate::oauth::Handle {
            http: p.outbound.clone(),
            refresher,
        },
        budgets,
    };
    // Services whose every call needs a caller: authenticated before their
    // messages are read. The two with public calls (Login, SSO sign-in)
    // carry only small messages, and are bounded to them.
    let gate = Gate {
        db: admin_svc.db.clone(),
        bootstrap_tokens: admin_svc.bootstrap_tokens.clone(),
    };
    let admin = gate
        .wrap(AdminServiceServer::new(admin_svc.clone()).max_decoding_message_size(MAX_MESSAGE));
    let identity =
        IdentityServiceServer::new(admin_svc.clone()).max_decoding_message_size(MAX_PUBLIC_MESSAGE);
    let overview = gate.wrap(OverviewServiceServer::new(OverviewSvc {
        admin: admin_svc.clone(),
        stored: traces_stored.clone(),
    }));
    let config_file = gate.wrap(
        ConfigFileServiceServer::new(ConfigFileSvc {
            admin: admin_svc.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE),
    );
    let sign_in = SignInServiceServer::new(SignInSvc {
        admin: admin_svc.clone(),
        state: Arc::new(OidcState::new(p.outbound.clone())?),
    })
    .max_decoding_message_size(MAX_PUBLIC_MESSAGE);
    let insight = gate.wrap(InsightServiceServer::new(admin_svc));

    let on_signal = async move {
        signal.await;
        tracing::info!("shutting down");
        health
            .set_not_serving::<ConfigServiceServer<ConfigSvc>>()
            .await;
        health
            .set_not_serving::<crate::trace_server::TraceServer<TraceSvc>>()
            .await;
        health
            .set_not_serving::<AdminServiceServer<AdminSvc>>()
            .await;
        health
            .set_not_serving::<IdentityServiceServer<AdminSvc>>()
            .await;
        health
            .set_not_serving::<InsightServiceServer<AdminSvc>>()
            .await;
        health
            .set_not_serving::<OverviewServiceServer<OverviewSvc>>()
            .await;
        health
            .set_not_serving::<ConfigFileServiceServer<ConfigFileSvc>>()
            .await;
        health
            .set_not_serving::<SignInServiceServer<SignInSvc>>()
            .await;
        let _ = shutdown_tx.send(true);
    };
    let local = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = &p.tls {
        builder = builder.tls_config(tls.config()?)?;
        tracing::info!(
            mtls = tls.client_ca.is_some(),
            "gRPC is served over TLS only"
        );
    } else if !local.ip().is_loopback() {
        tracing::warn!(
            addr = %local,
            "gRPC is served in clear on a non-loopback address: node tokens, admin tokens \
             and the snapshots' upstream secrets cross the network unencrypted; set \
             AIGW_TLS_CERT and AIGW_TLS_KEY"
        );
    }
    let server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // Streams one connection may open at once (a data plane uses two,
        // admin-web one per call in flight), and how long a call may take
        // until its answer starts: a peer cannot hold a half-sent unary
        // call and its buffer for ever. (A streaming call's answer starts
        // at once, so this does not bound it: the node streams end with
        // their credential, an apply upload is bounded at 300 s by its own
        // rules.)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .timeout(CALL_TIMEOUT)
        .add_service(health_svc)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(config)
        .add_service(trace)
        .add_service(admin)
        .add_service(identity)
        .add_service(insight)
        .add_service(overview)
        .add_service(config_file)
        .add_service(sign_in)
        .serve_with_incoming_shutdown(incoming, on_signal);

    let mut drain = shutdown_rx;
    let deadline = async move {
        if drain.wait_for(|down| *down).await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r?,
        () = deadline => tracing::warn!("connections did not drain in time; exiting anyway"),
    }
    tracing::info!("stopped");
    Ok(())
}
