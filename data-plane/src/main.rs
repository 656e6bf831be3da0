//! The data plane's entry point: flags, logging, and the wiring of its parts.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwapOption;
use clap::Parser;

use data_plane::config::Config;
use data_plane::ratelimit::Limiter;
use data_plane::snapshot::{self, DiskCache, Watcher};
use data_plane::state::{AppState, RequestIds};
use data_plane::{control, forward, listener, trace_report};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One plain line with its causes, not a backtrace: these are
            // mostly settings errors an operator has to read.
            eprintln!("data-plane: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cfg = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if cfg.node_token.trim().is_empty() {
        anyhow::bail!("AIGW_NODE_TOKEN is empty: the data plane needs the join credential");
    }
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok();
    data_plane::state_dir::create(&cfg.state_dir)
        .with_context(|| format!("cannot create state dir {}", cfg.state_dir.display()))?;
    let node_id = cfg.node_id();

    let channel = tonic::service::interceptor::InterceptedService::new(
        control::endpoint(&cfg.control_plane, &cfg.control_plane_tls())?.connect_lazy(),
        control::NodeAuth::new(&cfg.node_token, &node_id, &cfg.region)?,
    );
    let live = Arc::new(ArcSwapOption::empty());
    let watcher = Arc::new(Watcher {
        live: live.clone(),
        cache: DiskCache::new(snapshot::cache_path(&cfg.state_dir), &cfg.node_token),
        node_id: node_id.clone(),
        region: cfg.region.clone(),
    });
    watcher.load_from_disk();
    tokio::spawn(watcher.clone().run(channel.clone()));

    let reporter =
        trace_report::Reporter::start(&cfg.state_dir, channel, cfg.trace_spool_max_bytes)
            .context("cannot start the trace spool")?;
    let limiter = Arc::new(match &cfg.redis_url {
        Some(url) if !url.is_empty() => Limiter::with_redis(
            url,
            &cfg.region,
            Duration::from_millis(cfg.redis_timeout_ms.max(1)),
        )
        .context("REDIS_URL is not a valid Redis URL")?,
        _ => Limiter::new(&cfg.region),
    });
    let state = Arc::new(AppState {
        client: forward::build_client(cfg.upstream_ca_file.as_deref())
            .context("cannot build the upstream TLS client")?,
        traces: reporter.sink.clone(),
        limiter,
        ids: RequestIds::new(),
        live,
        node_id,
        prometheus,
        cfg: cfg.clone(),
    });

    let listener = listener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "data-plane listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, region = %cfg.region, "serving apps");
    listener::serve(listener, state.clone(), shutdown_signal()).await?;
    drop(state);
    // Everything answered is on disk now; give the shipper a moment to hand
    // it over, else it goes out at the next start.
    let spool = tokio::task::spawn_blocking(move || reporter.shutdown());
    let _ = tokio::time::timeout(Duration::from_secs(5), spool).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
