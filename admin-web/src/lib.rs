//! admin-web: the browser's gateway to the control plane's Admin API, and
//! the admin UI embedded in the same binary. It holds no business logic:
//! every `/api` call becomes one Admin API call made as the signed-in user,
//! so every permission is decided by the control plane, in one place.
#![forbid(unsafe_code)]

pub mod api;
pub mod assets;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod security;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::grpc::Grpc;

/// Largest request body, but for a whole configuration file.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// Largest body carrying a whole configuration file (`/api/config/plan`
/// and `/api/config/apply`): the control plane's own bound on the file, plus
/// a quarter for its escaping as a JSON string (`\n`, `\"`) and the rest of
/// the body.
const MAX_CONFIG_BODY: usize =
    aigw_proto::MAX_CONFIG_FILE_BYTES + aigw_proto::MAX_CONFIG_FILE_BYTES / 4;

#[derive(Clone)]
pub struct AppState {
    pub grpc: Grpc,
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` is believed (`client_ip`), canonical.
    pub trusted_proxies: Arc<[IpAddr]>,
    pub openapi: Arc<utoipa::openapi::OpenApi>,
}

impl AppState {
    pub fn new(grpc: Grpc, secure_cookies: bool, trusted_proxies: &[IpAddr]) -> Self {
        let (_, doc) = api::router();
        Self {
            grpc,
            secure_cookies,
            trusted_proxies: trusted_proxies.iter().map(IpAddr::to_canonical).collect(),
            openapi: Arc::new(doc),
        }
    }
}

/// The whole HTTP surface: `/api`, `/api/openapi.json`, `/healthz`, and
/// the UI for every other path. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: sign-in needs the
/// browser's address (`client_ip`).
pub fn app(state: AppState) -> Router {
    let (api, _) = api::router();
    Router::new()
        .merge(api)
        .route("/api/openapi.json", get(api::openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        // An unknown API path is a JSON 404, not the UI's page.
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { error::ApiError::NotFound("no such API path".into()) }),
        )
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({
                    "error": {"code": "method_not_allowed", "message": "this path does not take that method"}
                })),
            )
        })
        .fallback(assets::serve)
        // Outermost: the config-file routes set their own, larger bound.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}

#[cfg(test)]
mod https_cookie_tests;
#[cfg(test)]
mod tests;
