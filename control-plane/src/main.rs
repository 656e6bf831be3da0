//! `control-plane [serve]` and `control-plane apply -f FILE [--prune]`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use control_plane::cli::{Cli, Command, ServeArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto stack (ring) for everything that might use rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let result = match cli.command {
        Some(Command::Apply(a)) => {
            control_plane::apply::run(
                &a.file,
                a.prune,
                &a.control_plane,
                a.admin_token.as_deref(),
                &a.tls(),
            )
            .await
        }
        Some(Command::Serve(s)) => serve(s).await,
        None => serve(cli.serve).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A plain message, not a backtrace: these are mostly settings errors.
            eprintln!("control-plane: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> control_plane::error::Result<()> {
    let (settings, addr) = args.settings()?;
    control_plane::server::run(settings, addr).await
}
