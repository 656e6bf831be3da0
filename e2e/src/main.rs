//! `mock-provider`: a stand-in for the AI providers (OpenAI chat, Responses
//! and embeddings, Anthropic Messages, Gemini), speaking their wire formats
//! with deterministic replies, tool calls and usage (the rules are in
//! `tokens.rs`), recording what it receives and misbehaving on demand. Used
//! by the e2e tests and the benchmarks.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Parser;

mod accounts;
mod anthropic;
mod app;
mod embeddings;
mod error;
mod faults;
mod fields;
mod gemini;
mod ids;
mod openai;
mod recording;
mod responses;
mod sse;
mod tokens;

#[derive(Debug, Parser)]
#[command(name = "mock-provider", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the real address is
    /// printed as `mock-provider listening on ADDR`).
    #[arg(long, env = "MOCK_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Benchmark mode: record nothing, no faults, no /_mock endpoints.
    #[arg(long, env = "MOCK_FAST")]
    fast: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "mock-provider listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, fast = args.fast, "mock provider ready");

    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app::router(args.fast))
        .with_graceful_shutdown(shutdown())
        .await
        .context("server error")?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
        () = ctrl_c => {},
        () = term => {},
    }
}
