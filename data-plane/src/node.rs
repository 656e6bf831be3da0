//! One data plane's parts wired together: the live runtime and its watcher,
//! the trace reporter, the budgets, the upstream client. `main` starts one
//! from its flags and serves it on a socket; tests start one in process
//! (port 0, a snapshot fed directly) and call its [`Gateway`] service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::control::{self, AuthedChannel};
use crate::ratelimit::Limiter;
use crate::service::Gateway;
use crate::snapshot::{self, DiskCache, Watcher};
use crate::state::{AppState, RequestIds};
use crate::{forward, listener, trace_report};

/// Why a data plane cannot start: every cause is a setting to fix. The
/// messages leave the cause out: `main` prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("AIGW_NODE_TOKEN is empty: the data plane needs the join credential")]
    NoToken,
    #[error("cannot create state dir {path}")]
    StateDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("cannot start the trace spool: {0}")]
    Spool(std::io::Error),
    #[error("REDIS_URL is not a valid Redis URL")]
    Redis(#[from] crate::ratelimit::SharedError),
    #[error("cannot build the upstream TLS client")]
    Tls(#[from] crate::upstream_client::ClientError),
    #[error("cannot set up OpenTelemetry export")]
    Otel(#[from] crate::telemetry::otel::OtelError),
}

pub struct Node {
    pub state: Arc<AppState>,
    /// Applies snapshots (from the control plane, the disk copy, or a test).
    pub watcher: Arc<Watcher>,
    channel: AuthedChannel,
    reporter: trace_report::Reporter,
}

impl Node {
    /// Wires the parts and serves the disk copy of the snapshot, if any.
    /// Nothing is contacted yet: the control plane channel connects lazily
    /// (the trace shipper uses it once traces are sealed), and the snapshot
    /// stream starts with [`Node::follow_control_plane`]. Must run inside a
    /// tokio runtime (it spawns the spool's timer and the shipper).
    pub fn start(cfg: Config, prometheus: Option<PrometheusHandle>) -> Result<Self, StartError> {
        if cfg.node_token.trim().is_empty() {
            return Err(StartError::NoToken);
        }
        crate::state_dir::create(&cfg.state_dir).map_err(|source| StartError::StateDir {
            path: cfg.state_dir.display().to_string(),
            source,
        })?;
        let node_id = cfg.node_id();
        let channel = tonic::service::interceptor::InterceptedService::new(
            control::endpoint(&cfg.control_plane, &cfg.control_plane_tls())?.connect_lazy(),
            control::NodeAuth::new(&cfg.node_token, &node_id, &cfg.region)?,
        );
        let live = Arc::new(ArcSwapOption::empty());
        let watcher = Arc::new(Watcher::new(
            live.clone(),
            DiskCache::new(snapshot::cache_path(&cfg.state_dir), &cfg.node_token),
            node_id.clone(),
            cfg.region.clone(),
        ));
        watcher.load_from_disk();
        tokio::spawn(watcher.disk.clone().run());
        let reporter = trace_report::Reporter::start(
            &cfg.state_dir,
            channel.clone(),
            cfg.trace_spool_max_bytes,
        )
        .map_err(StartError::Spool)?;
        let limiter = Arc::new(match &cfg.redis_url {
            Some(url) if !url.is_empty() => Limiter::with_redis(
                url,
                &cfg.region,
                Duration::from_millis(cfg.redis_timeout_ms.max(1)),
            )?,
            _ => Limiter::new(&cfg.region),
        });
        let otel = crate::telemetry::Otel::start(&cfg.otel, &node_id, &cfg.region)?;
        let state = Arc::new(AppState {
            client: forward::build_client(cfg.upstream_ca_file.as_deref())?,
            traces: reporter.sink.clone(),
            limiter,
            ids: RequestIds::new(),
            live,
            node_id,
            prometheus,
            otel,
            bodies: crate::body_budget::BodyBudget::new(
                cfg.max_body_bytes_in_flight.max(cfg.max_body_bytes),
                cfg.max_body_bytes,
            ),
            cfg,
        });
        Ok(Self {
            state,
            watcher,
            channel,
            reporter,
        })
    }

    /// Follows the control plane's snapshot stream from now on (reconnecting
    /// with backoff for as long as the runtime lives).
    pub fn follow_control_plane(&self) {
        tokio::spawn(self.watcher.clone().run(self.channel.clone()));
    }

    /// The request path as a `tower::Service`, for in-process callers.
    pub fn service(&self) -> Gateway {
        Gateway::new(self.state.clone())
    }

    /// Serves apps on `listener` until `shutdown`, then drains connections
    /// and seals the trace spool (giving the shipper up to 5 s to hand it
    /// over; what is left goes out at the next start).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        listener::serve(listener, self.state.clone(), shutdown).await?;
        self.stop().await;
        Ok(())
    }

    /// As [`Node::serve`], with one single-threaded runtime per listener
    /// (from [`listener::bind_per_core`]): how the binary serves.
    pub async fn serve_per_core(
        self,
        listeners: Vec<std::net::TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        // Stopped either way: what the spool holds is sealed for the next start.
        let served = listener::serve_per_core(listeners, self.state.clone(), shutdown).await;
        self.stop().await;
        served
    }

    /// Flushes queued spans (bounded by the exporter's timeout), then seals
    /// what the spool holds open, so it ships now or at the next start.
    pub async fn stop(self) {
        let Self {
            state,
            reporter,
            watcher,
            ..
        } = self;
        // The disk copy of the last snapshot applied, if not written yet.
        let disk = watcher.disk.clone();
        let _ = tokio::task::spawn_blocking(move || disk.flush()).await;
        let flushing = state.clone();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::task::spawn_blocking(move || flushing.otel.shutdown()),
        )
        .await;
        drop(state);
        let spool = tokio::task::spawn_blocking(move || reporter.shutdown());
        let _ = tokio::time::timeout(Duration::from_secs(5), spool).await;
    }
}
