//! `control-plane [serve]` and `control-plane apply -f FILE [--prune]`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use control_plane::admin::apply::ServerRules;
use control_plane::cli::{Cli, Command, ServeArgs};
use control_plane::error::Error;

/// jemalloc, as in the data plane: storing traces allocates and frees a
/// row's strings by the thousand per second, and glibc's malloc and free
/// (with its consolidation passes) were about a tenth of ingest's CPU.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long, once `serve` has returned, blocking work still under way (a
/// large configuration file being parsed, a password being hashed: their
/// answers can no longer be sent) may hold up the exit. Dropping the
/// runtime would wait for it however long it takes.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("control-plane: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run());
    rt.shutdown_timeout(BLOCKING_GRACE);
    code
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    aigw_startup::install_crypto();
    aigw_startup::init_tracing();

    let result = match cli.command {
        Some(Command::Apply(a)) => aigw_apply::run(
            &a.file,
            a.prune,
            &a.control_plane,
            a.admin_token.as_deref(),
            &a.tls(),
            &ServerRules,
        )
        .await
        .map_err(Error::from),
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
    let metrics = args.metrics_listen.0;
    let (settings, addr) = args.settings()?;
    control_plane::server::run(settings, addr, metrics).await
}
