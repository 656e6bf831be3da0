//! `mock-provider`: a stand-in for the AI providers (OpenAI chat, Responses
//! and embeddings, Anthropic Messages, Gemini), speaking their wire formats
//! with deterministic replies, tool calls and usage (the rules are in
//! `tokens.rs`), recording what it receives and misbehaving on demand. Used
//! by the Python e2e suite and the benchmarks; the server itself is the
//! `aigw_e2e` library's, which Rust tests start in process.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

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

    let mock = Arc::new(aigw_e2e::Mock::new(args.fast));
    aigw_e2e::serve(listener, mock, args.fast, shutdown())
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
