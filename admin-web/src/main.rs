//! `admin-web`: serves the admin UI and `/api` on AIGW_ADMIN_LISTEN.
#![forbid(unsafe_code)]

use std::io::Write;

use admin_web::config::Config;
use admin_web::grpc::Grpc;
use admin_web::{AppState, app};
use axum::routing::get;
use clap::Parser;

mod metrics;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    // One TLS crypto stack (ring) for the channel to the control plane.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let prometheus = metrics::install();
    let grpc = Grpc::new(&cfg)?;
    let router = app(AppState::new(grpc, cfg.secure_cookies))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics::render(prometheus.as_ref()))),
        )
        .layer(axum::middleware::from_fn(metrics::track));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "admin-web listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(control_plane = %cfg.control_plane, "admin-web started");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
