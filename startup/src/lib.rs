//! Start-up and shutdown shared by the gateway's binaries (`control-plane`,
//! `data-plane`, `admin-web`, and the e2e crate's `mock-provider`).
//!
//! They all have to do the same few things the same way, because scripts,
//! docker-compose and the e2e suite rely on them: logs on stderr filtered by
//! `RUST_LOG` (default `info`, no colour codes unless stderr is a terminal
//! and `NO_COLOR` is unset), one `NAME listening on ADDR` line on stdout
//! once the socket is bound (flushed at once: callers wait for it and read
//! the port from it), and a graceful stop on SIGINT or SIGTERM (`docker
//! stop`). Written once here, a fix to any of them reaches every binary.
#![forbid(unsafe_code)]

mod announce;
mod logging;
mod shutdown;

pub use announce::{announce, announce_line, write_listening};
pub use logging::init_tracing;
pub use shutdown::shutdown_signal;

/// The crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A start-up line could not be written to stdout (closed, or a full
    /// disk behind a redirect): whoever waits for it would never see it.
    #[error("cannot write {line:?} to stdout: {source}")]
    Stdout {
        line: String,
        #[source]
        source: std::io::Error,
    },
}

/// Installs rustls' `ring` provider as the process default. The workspace
/// builds one TLS crypto stack (ring); rustls refuses to pick a default on
/// its own when a dependency could enable another, so every binary installs
/// it before making any TLS config. Installing it twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
