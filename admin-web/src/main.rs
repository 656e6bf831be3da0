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
    let state = AppState::new(grpc, cfg.secure_cookies, &cfg.trusted_proxies);
    let router = app(state)
        .route(
            "/metrics",
            get(move || std::future::ready(metrics::render(prometheus.as_ref()))),
        )
        .layer(axum::middleware::from_fn(metrics::track));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    aigw_startup::announce("admin-web", addr)?;
    tracing::info!(control_plane = %cfg.control_plane, "admin-web started");
    // The peer's address is the browser's (or its proxy's) for the
    // control plane's per-source login throttle.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(aigw_startup::shutdown_signal())
    .await?;
    Ok(())
}
