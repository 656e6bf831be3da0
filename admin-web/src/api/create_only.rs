//! The create-only precondition of the upserts (`PUT /api/providers/{name}`
//! and the like): `If-None-Match: *` (RFC 9110, 13.1.2) asks that the PUT
//! create the object and never replace one of the same name. The UI's "New
//! …" dialogs send it; without it a PUT is the upsert it always was.
//!
//! The Admin API has no create-only call, so the object is looked up (as
//! the caller) just before the upsert. Two creations racing within that
//! window still end as one upsert; what this catches is the ordinary
//! mistake of naming a new object like an existing one.

use axum::extract::FromRequestParts;
use axum::http::header::IF_NONE_MATCH;
use axum::http::request::Parts;

use crate::error::{ApiError, ApiResult};

/// Whether the request is create-only (`If-None-Match: *`).
#[derive(Debug, Clone, Copy)]
pub struct CreateOnly(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for CreateOnly {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(IF_NONE_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(Self(false));
        }
        // These objects carry no entity tags: only `*` means anything.
        if values.all(|v| v.as_bytes().trim_ascii() == b"*") {
            Ok(Self(true))
        } else {
            Err(ApiError::BadRequest(
                "If-None-Match takes only `*` here (create only; these objects have no entity tags)"
                    .into(),
            ))
        }
    }
}

impl CreateOnly {
    /// For a create-only request, refuses (412) when `names` (the caller's
    /// listing of this kind of object, fetched only then) holds `name`.
    /// `what` begins the message: "a provider named" gives "a provider
    /// named openai already exists".
    pub async fn check<I, S>(
        self,
        what: &str,
        name: &str,
        names: impl Future<Output = Result<I, tonic::Status>>,
    ) -> ApiResult<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if !self.0 {
            return Ok(());
        }
        if names.await?.into_iter().any(|n| n.as_ref() == name) {
            return Err(ApiError::AlreadyExists(format!(
                "{what} {name} already exists"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_create_only_request_is_checked() {
        let listed = || async { Ok::<_, tonic::Status>(vec!["a".to_string(), "b".to_string()]) };
        assert!(
            CreateOnly(false)
                .check("a provider named", "a", listed())
                .await
                .is_ok()
        );
        assert!(
            CreateOnly(true)
                .check("a provider named", "c", listed())
                .await
                .is_ok()
        );
        let e = CreateOnly(true)
            .check("a provider named", "a", listed())
            .await
            .unwrap_err();
        let (status, code, message) = e.parts();
        assert_eq!(status, axum::http::StatusCode::PRECONDITION_FAILED);
        assert_eq!(code, "already_exists");
        assert_eq!(message, "a provider named a already exists");
        // Not even asked when the request is not create-only.
        let never = async { Err::<Vec<String>, _>(tonic::Status::internal("asked")) };
        assert!(
            CreateOnly(false)
                .check("a provider named", "a", never)
                .await
                .is_ok()
        );
    }
}
