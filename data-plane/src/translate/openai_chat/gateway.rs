//! What the gateway itself says to OpenAI SDKs (chat and Responses alike):
//! its errors and model listings.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use crate::error::GatewayError;

/// `{"error":{message,type,param,code}}`: OpenAI's error body, also sent as
/// an event when a translated stream fails.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub error: ErrorOut<'a>,
}

#[derive(Serialize)]
pub(crate) struct ErrorOut<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub ty: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

pub(crate) fn error_body(e: &GatewayError) -> Bytes {
    use GatewayError as E;
    let (kind, code) = match e {
        E::MissingKey | E::InvalidKey | E::ExpiredKey => {
            ("invalid_request_error", Some("invalid_api_key"))
        }
        E::BadJson(_)
        | E::InvalidRequest { .. }
        | E::NotFound { .. }
        | E::NotProxied { .. }
        | E::MethodNotAllowed { .. }
        | E::WebSocketNotServed { .. }
        | E::Unsupported { .. } => ("invalid_request_error", None),
        E::BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large")),
        E::BodyTimeout { .. } => ("invalid_request_error", Some("request_timeout")),
        E::UnknownModel(_) => ("invalid_request_error", Some("model_not_found")),
        E::ModelNotAllowed(_) => ("permission_error", Some("model_not_allowed")),
        E::Unpriced(_) => ("permission_error", Some("model_not_priced")),
        E::NotReady => ("server_error", Some("not_ready")),
        E::Busy { .. } => ("server_error", Some("overloaded")),
        E::PoolUnusable { .. } => ("server_error", Some("upstream_unavailable")),
        E::PoolExhausted { .. } | E::RateLimited { .. } => {
            ("rate_limit_error", Some("rate_limit_exceeded"))
        }
        E::Upstream {
            failure: crate::error::Failure::Timeout(_),
            ..
        } => ("server_error", Some("upstream_timeout")),
        E::Upstream { .. } => ("server_error", Some("upstream_error")),
        E::UpstreamStatus {
            status,
            context_overflow,
            ..
        } => (
            type_for(*status),
            context_overflow.then_some("context_length_exceeded"),
        ),
        E::UpstreamResponse { .. } | E::Internal(_) => ("server_error", None),
    };
    let param = match e {
        E::InvalidRequest { param, .. } => *param,
        E::Unsupported { param, .. } => param.as_deref(),
        E::UnknownModel(_) | E::ModelNotAllowed(_) | E::Unpriced(_) => Some("model"),
        E::UpstreamStatus {
            context_overflow: true,
            ..
        } => Some("messages"),
        _ => None,
    };
    let message = e.to_string();
    let body = ErrorBody {
        error: ErrorOut {
            message: &message,
            ty: kind,
            param,
            code,
        },
    };
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The error `type` OpenAI gives an answer of `status`.
fn type_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelOut<'a>>,
}

#[derive(Serialize)]
struct ModelOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

impl<'a> ModelOut<'a> {
    fn new(id: &'a str, owned_by: &'a str) -> Self {
        Self {
            id,
            object: "model",
            created: 0,
            owned_by,
        }
    }
}

pub(crate) fn model_list(models: &[(&str, &str)]) -> String {
    let list = ModelList {
        object: "list",
        data: models
            .iter()
            .map(|(id, owner)| ModelOut::new(id, owner))
            .collect(),
    };
    serde_json::to_string(&list).unwrap_or_default()
}

/// `GET /v1/models/{model}`: one model.
pub(crate) fn model_entry(id: &str, owner: &str) -> String {
    serde_json::to_string(&ModelOut::new(id, owner)).unwrap_or_default()
}
