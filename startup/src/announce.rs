//! The lines a binary prints on stdout once it is ready. `deploy/local.sh`,
//! the benchmark scripts and the e2e harness (`harness.py`, regex
//! `^(\S+) listening on (\S+)\s*$`) wait for `NAME listening on ADDR` and
//! take the address from it, so the format is fixed and each line is
//! flushed as soon as it is written. Logs go to stderr, never here.

use std::fmt::Display;
use std::io::Write;

use crate::Error;

/// Writes `NAME listening on ADDR` and a newline to `out`, and flushes it.
pub fn write_listening<W: Write + ?Sized>(
    out: &mut W,
    name: &str,
    addr: impl Display,
) -> std::io::Result<()> {
    writeln!(out, "{name} listening on {addr}")?;
    out.flush()
}

/// Prints `NAME listening on ADDR` on stdout, flushed.
pub fn announce(name: &str, addr: impl Display) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    write_listening(&mut out, name, &addr).map_err(|source| Error::Stdout {
        line: format!("{name} listening on {addr}"),
        source,
    })
}

/// Prints one other start-up line on stdout (a generated credential, a
/// second listener), flushed, for the same readers.
pub fn announce_line(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|source| Error::Stdout {
            // The line may hold a generated secret: name its start only.
            line: line.split(':').next().unwrap_or_default().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn the_listening_line_is_what_scripts_parse() {
        let mut out = Vec::new();
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        write_listening(&mut out, "data-plane", addr).unwrap();
        assert_eq!(out, b"data-plane listening on 127.0.0.1:8080\n");
        let mut out = Vec::new();
        let v6: SocketAddr = "[::1]:50051".parse().unwrap();
        write_listening(&mut out, "control-plane", v6).unwrap();
        assert_eq!(out, b"control-plane listening on [::1]:50051\n");
    }

    /// A writer that takes the bytes but cannot flush them.
    struct Unflushable(Vec<u8>);

    impl Write for Unflushable {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn an_unflushed_line_is_an_error() {
        let mut out = Unflushable(Vec::new());
        let e = write_listening(&mut out, "admin-web", "127.0.0.1:9090").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
