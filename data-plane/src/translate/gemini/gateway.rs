//! What the gateway itself says to Gemini SDKs: its errors and model
//! listings (Google API shapes).

use bytes::Bytes;
use serde::Serialize;

use crate::error::GatewayError;

/// `{"error":{"code","message","status"}}`: Google's error body, also the
/// last element of a stream that failed.
#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
    pub error: ErrorOut<'a>,
}

#[derive(Serialize)]
pub(super) struct ErrorOut<'a> {
    pub code: u16,
    pub message: &'a str,
    pub status: &'static str,
}

impl<'a> ErrorBody<'a> {
    /// A mid-stream failure: Google's 500 shape.
    pub fn internal(message: &'a str) -> Self {
        Self {
            error: ErrorOut {
                code: 500,
                message,
                status: "INTERNAL",
            },
        }
    }
}

pub(super) fn error_body(e: &GatewayError) -> Bytes {
    let code = e.status().as_u16();
    let status = match code {
        400 | 405 | 413 => "INVALID_ARGUMENT",
        408 => "DEADLINE_EXCEEDED",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        422 => "INVALID_ARGUMENT",
        // Any other 4xx is the request's, not the server's (`INTERNAL`
        // reads as retryable).
        402..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    };
    let message = e.to_string();
    let body = ErrorBody {
        error: ErrorOut {
            code,
            message: &message,
            status,
        },
    };
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// One model in Gemini's `Model` shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelOut<'a> {
    name: String,
    base_model_id: &'a str,
    version: &'static str,
    display_name: &'a str,
    description: &'static str,
    input_token_limit: u64,
    output_token_limit: u64,
    supported_generation_methods: [&'static str; 4],
}

impl<'a> ModelOut<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            name: format!("models/{id}"),
            base_model_id: id,
            version: "001",
            display_name: id,
            description: "",
            input_token_limit: 1_048_576,
            output_token_limit: 65_536,
            supported_generation_methods: [
                "generateContent",
                "streamGenerateContent",
                "countTokens",
                "embedContent",
            ],
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    models: Vec<ModelOut<'a>>,
}

pub(super) fn model_list(models: &[(&str, &str)]) -> String {
    let list = ModelList {
        models: models.iter().map(|(id, _)| ModelOut::new(id)).collect(),
    };
    serde_json::to_string(&list).unwrap_or_default()
}

/// `GET /v1beta/models/{model}`: one model.
pub fn model_entry(id: &str, _owner: &str) -> String {
    serde_json::to_string(&ModelOut::new(id)).unwrap_or_default()
}

#[cfg(test)]
mod status_tests {
    use crate::translate::testkit::error_field_for;

    /// A 4xx no mapping names is the request's fault, never the server's.
    #[test]
    fn every_client_status_reads_as_the_requests_fault() {
        let cases = [
            (422, "INVALID_ARGUMENT"),
            (409, "ABORTED"),
            (418, "FAILED_PRECONDITION"),
            (429, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL"),
        ];
        for (status, want) in cases {
            let got = error_field_for(super::error_body, status, "status");
            assert_eq!(got, want, "{status}");
        }
    }
}
