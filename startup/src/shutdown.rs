//! Graceful shutdown: the servers stop accepting and drain when the process
//! gets SIGINT (ctrl-c) or SIGTERM (`docker stop`, systemd, the e2e suite).

use std::future::Future;

#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal};

/// A future that resolves on the first SIGINT or SIGTERM, to hand to a
/// server's graceful shutdown. The handlers are registered when this is
/// called, not when the future is first polled, so a signal arriving
/// between the two is not lost; call it inside the Tokio runtime. A signal
/// whose handler cannot be registered is only logged: the other one still
/// stops the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
        let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
        async move {
            let name = tokio::select! {
                () = recv(interrupt.as_mut()) => "SIGINT",
                () = recv(terminate.as_mut()) => "SIGTERM",
            };
            tracing::info!(signal = name, "shutting down");
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!(signal = "ctrl-c", "shutting down");
    }
}

#[cfg(unix)]
fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind)
        .inspect_err(|e| tracing::warn!(signal = name, error = %e, "cannot listen for the signal"))
        .ok()
}

/// The next delivery of `signal`; never, without one.
#[cfg(unix)]
async fn recv(signal: Option<&mut Signal>) {
    match signal {
        Some(s) => {
            // `None` means the runtime is going away: no more deliveries.
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Sends SIGTERM to this test process with the system's `kill`, as
    /// `docker stop` would (no unsafe code needed for `kill(2)`). Each test
    /// binary that runs this must not have other tests relying on SIGTERM's
    /// default action; nextest gives every test its own process anyway.
    #[tokio::test]
    async fn resolves_on_sigterm_and_not_before() {
        let stop = shutdown_signal();
        tokio::pin!(stop);
        // Nothing has been sent yet: still waiting.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut stop)
                .await
                .is_err(),
            "resolved without a signal"
        );
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill failed: {status}");
        tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .expect("SIGTERM did not resolve the shutdown future");
    }
}
