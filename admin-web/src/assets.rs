//! The UI's built files, embedded in the binary. Hashed files under
//! `assets/` are cached for good; every other path that is not a file is
//! the single-page app's own route and gets `index.html` (never cached, so
//! a new version shows at the next load).

use axum::http::{HeaderValue, StatusCode, Uri, header};
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

pub async fn serve(uri: Uri) -> Response {
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
