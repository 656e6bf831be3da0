//! `mock-provider`: a stand-in for the AI providers (OpenAI chat, Responses
//! and embeddings, Anthropic Messages, Gemini), speaking their wire formats
//! with deterministic replies, tool calls and usage (the rules are in
//! `tokens.rs`), recording what it receives and misbehaving on demand. Used
//! by the Python e2e suite and the benchmarks; the server itself is the
//! `aigw_e2e` library's, which Rust tests start in process.

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
    aigw_startup::init_tracing();
    let args = Args::parse();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    aigw_startup::announce("mock-provider", addr)?;
    tracing::info!(%addr, fast = args.fast, "mock provider ready");

    let mock = Arc::new(aigw_e2e::Mock::new(args.fast));
    aigw_e2e::serve(listener, mock, args.fast, aigw_startup::shutdown_signal())
        .await
        .context("server error")?;
    Ok(())
}
