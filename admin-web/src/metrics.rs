//! admin-web's Prometheus metrics at `/metrics`: requests by route and
//! status class, and their latency. Routes are axum's matched path
//! patterns (`/api/keys/{id}`), never the raw path, so a client cannot mint
//! series.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::PrometheusHandle;

pub const REQUESTS: &str = "aigw_admin_http_requests_total";
pub const DURATION: &str = "aigw_admin_http_request_duration_seconds";

/// Installs the recorder and describes the metrics.
pub fn install() -> Option<PrometheusHandle> {
    let handle = aigw_proto::prometheus::install();
    describe_counter!(
        REQUESTS,
        "HTTP requests to admin-web, by route and status class."
    );
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "admin-web request latency, by route."
    );
    handle
}

/// Middleware: counts and times every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    histogram!(DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    counter!(REQUESTS, "route" => route, "status" => class).increment(1);
    resp
}

/// `GET /metrics`.
pub fn render(handle: Option<&PrometheusHandle>) -> Response {
    let body = aigw_proto::prometheus::Families::new().render_after(handle);
    (
        [(
            http::header::CONTENT_TYPE,
            aigw_proto::prometheus::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}
