//! Logs: `tracing` events as text on stderr, stdout being kept for the
//! start-up lines scripts parse.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber: `RUST_LOG` filters (`info` when
/// unset or unparsable), stderr is the output, and colour codes only reach
/// a terminal (log files and `docker logs` stay plain; `NO_COLOR` turns
/// them off there too). If a subscriber is already installed (a test
/// harness), that one stays.
pub fn init_tracing() {
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .try_init();
}

/// Colour on a terminal unless `NO_COLOR` is set to something
/// (<https://no-color.org>: an empty value does not count).
fn colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
