//! The data plane's entry point: flags, logging, and the wiring of its parts.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;

use data_plane::config::Config;
use data_plane::listener;
use data_plane::node::Node;

/// jemalloc, built to give freed pages back to the system half a second
/// after their last use, from its own thread (see `.cargo/config.toml`):
/// glibc's allocator kept most of what decoding a large snapshot used
/// (41 MiB resident at 100,000 keys, 58 MiB after ten deltas), and spent
/// about a sixth of the request path's CPU in malloc and free.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    let threads = data_plane::cores::count(usize::from(cfg.serve_threads));
    let node = Node::start(cfg, prometheus)?;
    node.follow_control_plane();

    let listeners = listener::bind_per_core(listen, threads)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listeners
        .first()
        .context("no listener bound")?
        .local_addr()?;
    aigw_startup::announce("data-plane", addr)?;
    tracing::info!(%addr, %region, threads, "serving apps");
    node.serve_per_core(listeners, aigw_startup::shutdown_signal())
        .await?;
    Ok(())
}
#[cfg(test)]
mod tests {
    /// The setting that returns freed memory is baked into jemalloc at
    /// build time; a build that lost it (no `.cargo/config.toml`) fails here.
    #[test]
    fn the_allocator_returns_freed_pages_soon_from_its_own_thread() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().unwrap();
        assert!(conf.contains("background_thread:true"), "{conf:?}");
        assert!(conf.contains("dirty_decay_ms:500"), "{conf:?}");
        assert!(conf.contains("muzzy_decay_ms:0"), "{conf:?}");
    }
}
