//! Accepts app connections (HTTP/1.1 and h2c), dispatches by path, and stamps
//! every response with its `x-request-id`. Errors become the calling format's
//! error body here, in one place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::endpoints::{self, Endpoint};
use crate::error::{ApiFormat, GatewayError};
use crate::pipeline::{self, ResBody, full};
use crate::state::AppState;

pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
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
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let svc = service_fn(move |req| {
            let st = st.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(st, req).await) }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("stopped accepting; draining connections");
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; closing them");
    }
    Ok(())
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

pub fn error_response(e: &GatewayError, format: ApiFormat) -> Response<ResBody> {
    if matches!(e, GatewayError::Internal(_)) {
        tracing::error!(error = ?e, "internal error");
    }
    let mut r = full(e.status(), "application/json", e.body(format));
    if let Some(secs) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
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
