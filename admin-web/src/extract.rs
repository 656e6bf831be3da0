//! Extractors whose rejections are the API's own JSON errors (400), so
//! malformed input never gets a plain-text or undocumented answer.

use axum::extract::{FromRequest, FromRequestParts};

use crate::error::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Name<T>(pub T);

/// Puts the path's name in the body's `field`. The body may leave it out
/// or repeat it, never name another object: `PUT /api/pricing/alpha` with
/// `"model": "beta"` would otherwise write `alpha` while the caller meant
/// `beta` (renaming is a delete and a create).
pub fn path_names(path: String, body: &mut String, field: &str) -> Result<(), ApiError> {
    if !body.is_empty() && *body != path {
        return Err(ApiError::BadRequest(format!(
            "the body's `{field}` names another object than the path does; send the path's name, or none"
        )));
    }
    *body = path;
    Ok(())
}
