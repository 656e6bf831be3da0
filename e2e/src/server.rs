//! The mock served on a socket: bound (port 0 picks a free one), then
//! served until told to stop. The binary and in-process tests share it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{Mock, router};

/// A bound mock provider. Serves in a task of the current runtime once
/// [`MockServer::start`]ed; dropping it stops that task.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    mock: Arc<Mock>,
    stop: Option<oneshot::Sender<()>>,
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port and serves there in the background,
    /// recording and taking faults (not `--fast`).
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mock = Arc::new(Mock::new(false));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(serve(listener, mock.clone(), false, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            mock,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, a provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The mock's state: its faults, its recording, its accounts.
    pub fn mock(&self) -> &Mock {
        &self.mock
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `mock` on `listener` until `shutdown` resolves (connections in
/// flight are finished first). Nagle is off: SSE frames leave at once.
pub async fn serve(
    listener: TcpListener,
    mock: Arc<Mock>,
    fast: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(mock, fast))
        .with_graceful_shutdown(shutdown)
        .await
}
