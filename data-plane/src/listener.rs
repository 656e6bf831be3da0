//! Accepts app connections (HTTP/1.1 and h2c), dispatches by path, and stamps
//! every response with its `x-request-id`. Errors become the calling format's
//! error body here, in one place.
//!
//! Every connection is bounded in time and number, so slow or idle clients
//! cannot hold the gateway's sockets (slowloris): a request head must arrive
//! whole within `header_timeout` (hyper's timer, which also closes an HTTP/1
//! keep-alive connection idle that long); a connection with no byte in either
//! direction for `idle_timeout` is shut down gracefully (an answer in flight
//! is finished first); at most `max_connections` are open at once (past it,
//! new ones wait in the kernel's backlog); the body deadline is the
//! pipeline's (`read_body`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::endpoints::{self, Endpoint};
use crate::error::GatewayError;
use crate::pipeline::{self, ResBody, full};
use crate::state::AppState;
use crate::translate::Format;

/// How long open connections get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Bounds on app connections (`AIGW_HEADER_TIMEOUT_SECS`,
/// `AIGW_IDLE_TIMEOUT_SECS`, `AIGW_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(cfg: &crate::config::Config) -> Self {
        Self {
            header_timeout: Duration::from_secs(cfg.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs.max(1)),
            max_connections: cfg.max_connections.max(1),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = Limits::of(&state.cfg);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A free slot first: past the cap, connections wait in the backlog.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let max = limits.max_connections;
        let open = move |slots: &Semaphore| {
            metrics::gauge!("aigw_open_connections")
                .set(max.saturating_sub(slots.available_permits()) as f64);
        };
        open(&slots);
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        let slots_left = slots.clone();
        tokio::spawn(async move {
            connection(&builder, stream, st, limits.idle_timeout, stop).await;
            drop(permit);
            open(&slots_left);
        });
    }
    tracing::info!("stopped accepting; draining connections");
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; closing them");
    }
    Ok(())
}

/// Serves one connection until it ends; shuts it down gracefully when it
/// has been silent for `idle` or the server stops.
async fn connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    state: Arc<AppState>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let svc = service_fn(move |req| {
        let st = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(st, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let mut check = tokio::time::interval((idle / 4).max(Duration::from_millis(250)));
    check.tick().await;
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = check.tick(), if !closing => {
                if activity.idle_for() >= idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            r = stop.changed(), if !closing => {
                if r.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When a connection last moved a byte, in ms since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.opened.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The socket, noting every read or write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<ResBody> {
    let started = Instant::now();
    let request_id = state.ids.next();
    let (parts, body) = req.into_parts();
    let endpoint = endpoints::classify(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
    );
    let label = endpoint.label();
    let format = endpoint.error_format();
    let result = match endpoint {
        Endpoint::Call(call) => pipeline::serve(&state, parts, body, call, &request_id).await,
        Endpoint::ListModels(f) => pipeline::list_models(&state, &parts, f),
        Endpoint::GetModel(m) => pipeline::get_model(&state, &parts, &m),
        Endpoint::Healthz => Ok(full(StatusCode::OK, "text/plain", "ok\n")),
        Endpoint::Readyz => Ok(readyz(&state)),
        Endpoint::Metrics => Ok(full(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state
                .prometheus
                .as_ref()
                .map(|p| p.render())
                .unwrap_or_default(),
        )),
        Endpoint::NotFound(_) => Err(GatewayError::NotFound {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
        }),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, format),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    metrics::counter!("aigw_requests_total", "endpoint" => label, "status" => status_class(resp.status()))
        .increment(1);
    metrics::histogram!("aigw_response_headers_seconds", "endpoint" => label)
        .record(started.elapsed().as_secs_f64());
    resp
}

pub fn error_response(e: &GatewayError, format: Format) -> Response<ResBody> {
    if matches!(e, GatewayError::Internal(_)) {
        tracing::error!(error = ?e, "internal error");
    }
    let mut r = full(e.status(), "application/json", e.body(format));
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let GatewayError::RateLimited {
        limit,
        value,
        retry_after_secs,
        ..
    } = e
    {
        crate::ratelimit_headers::refused(r.headers_mut(), limit, *value, *retry_after_secs);
    }
    r
}

fn readyz(state: &AppState) -> Response<ResBody> {
    match state.live.load().as_ref() {
        Some(rt) => full(
            StatusCode::OK,
            "text/plain",
            format!("ready {}\n", rt.version()),
        ),
        None => full(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "no snapshot yet\n",
        ),
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
