//! The UI's built files, embedded in the binary. Hashed files under
//! `assets/` are cached for good; every other path that is not a file is
//! the single-page app's own route and gets `index.html` (never cached, so
//! a new version shows at the next load).

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/ui"]
struct Ui;

fn file(path: &str) -> Option<Response> {
    let f = Ui::get(path)?;
    let mime = f.metadata.mimetype();
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = (StatusCode::OK, f.data.into_owned()).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(resp)
}

pub async fn serve(method: Method, uri: Uri) -> Response {
    // The UI is read; anything else on a path outside `/api/…` (`PUT /`,
    // `DELETE /api`) is refused in the API's shape, not answered with the
    // page.
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
            axum::Json(serde_json::json!({
                "error": {"code": "method_not_allowed", "message": "this path does not take that method"}
            })),
        )
            .into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(r) = file(path).filter(|_| !path.is_empty()) {
        return r;
    }
    // A missing asset is a 404, not the app: a stale page asking for an old
    // chunk must fail visibly.
    if path.starts_with("assets/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    file("index.html").unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}
