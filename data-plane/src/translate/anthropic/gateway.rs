//! What the gateway itself says to Anthropic SDKs: its errors and model
//! listings.

use bytes::Bytes;
use serde::Serialize;

use crate::error::GatewayError;

/// `{"type":"error","error":{"type","message"}}`: Anthropic's error body,
/// also the `error` event of a stream.
#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub error: ErrorOut<'a>,
}

#[derive(Serialize)]
pub(super) struct ErrorOut<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub message: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub fn new(kind: &'static str, message: &'a str) -> Self {
        Self {
            ty: "error",
            error: ErrorOut { ty: kind, message },
        }
    }
}

pub(super) fn error_body(e: &GatewayError) -> Bytes {
    let kind = match e.status().as_u16() {
        400 | 405 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        // Anthropic's own errors know no other 4xx: any other is the
        // request's fault (a 422 from a compatible upstream, a 426), and an
        // `api_error` would read as the server's, to be retried.
        402..=499 => "invalid_request_error",
        _ => "api_error",
    };
    let message = e.to_string();
    Bytes::from(serde_json::to_vec(&ErrorBody::new(kind, &message)).unwrap_or_default())
}

#[derive(Serialize)]
struct ModelList<'a> {
    data: Vec<ModelOut<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ModelOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

impl<'a> ModelOut<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            ty: "model",
            id,
            display_name: id,
            created_at: "1970-01-01T00:00:00Z",
        }
    }
}

pub(super) fn model_list(models: &[(&str, &str)]) -> String {
    let list = ModelList {
        data: models.iter().map(|(id, _)| ModelOut::new(id)).collect(),
        has_more: false,
        first_id: models.first().map(|(id, _)| *id),
        last_id: models.last().map(|(id, _)| *id),
    };
    serde_json::to_string(&list).unwrap_or_default()
}

/// `GET /v1/models/{model}`: one model.
pub(super) fn model_entry(id: &str, _owner: &str) -> String {
    serde_json::to_string(&ModelOut::new(id)).unwrap_or_default()
}

#[cfg(test)]
mod status_tests {
    use crate::translate::testkit::error_field_for;

    /// A 4xx no mapping names is the request's fault, never the server's.
    #[test]
    fn every_client_status_reads_as_the_requests_fault() {
        let cases = [
            (422, "invalid_request_error"),
            (409, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
        ];
        for (status, want) in cases {
            let got = error_field_for(super::error_body, status, "type");
            assert_eq!(got, want, "{status}");
        }
    }
}
