//! The data plane's entry point: flags, logging, and the wiring of its parts.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;

use data_plane::config::Config;
use data_plane::listener;
use data_plane::node::Node;

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
    aigw_startup::init_tracing();
    aigw_startup::install_crypto();
    let prometheus = aigw_proto::prometheus::install();
    data_plane::telemetry::metrics::describe();
    let (listen, region) = (cfg.listen, cfg.region.clone());
    let node = Node::start(cfg, prometheus)?;
    node.follow_control_plane();

    let listener = listener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    aigw_startup::announce("data-plane", addr)?;
    tracing::info!(%addr, %region, "serving apps");
    node.serve(listener, aigw_startup::shutdown_signal())
        .await?;
    Ok(())
}
