//! `admin-web`: serves the admin UI and `/api` on AIGW_ADMIN_LISTEN.
#![forbid(unsafe_code)]

use admin_web::config::Config;
use admin_web::grpc::Grpc;
use admin_web::{AppState, app};
use axum::routing::get;
use clap::Parser;

mod metrics;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    aigw_startup::install_crypto();
    aigw_startup::init_tracing();
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
    aigw_startup::announce("admin-web", addr)?;
    tracing::info!(control_plane = %cfg.control_plane, "admin-web started");
    axum::serve(listener, router)
        .with_graceful_shutdown(aigw_startup::shutdown_signal())
        .await?;
    Ok(())
}
