//! Why the mock refuses a request. Each wire format renders these in its own
//! error shape (`openai::error_body`, `anthropic::error_body`,
//! `gemini::error_body`); the `Display` messages are the real OpenAI API's,
//! the other formats use their own API's words where they differ.

use axum::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// No `Authorization: Bearer X` with a non-empty X.
    #[error(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    )]
    MissingKey,
    #[error(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.) ({0})"
    )]
    BadJson(String),
    #[error("Missing required parameter: '{0}'.")]
    MissingParam(&'static str),
    #[error("Invalid type for '{param}': expected {expected}.")]
    InvalidType {
        param: &'static str,
        expected: &'static str,
    },
    /// Anthropic: no `anthropic-version` header.
    #[error("anthropic-version: header is required")]
    MissingVersion,
    /// Any other invalid request, with the API's message.
    #[error("{0}")]
    Invalid(String),
    #[error("Invalid URL ({method} {path})")]
    UnknownPath { method: String, path: String },
    /// A fault queued by a test.
    #[error("{message}")]
    Injected { status: StatusCode, message: String },
}

impl MockError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey => StatusCode::UNAUTHORIZED,
            Self::BadJson(_)
            | Self::MissingParam(_)
            | Self::InvalidType { .. }
            | Self::MissingVersion
            | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::UnknownPath { .. } => StatusCode::NOT_FOUND,
            Self::Injected { status, .. } => *status,
        }
    }

    /// The offending request field, if any.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::MissingParam(p) => Some(p),
            Self::InvalidType { param, .. } => Some(param),
            _ => None,
        }
    }

    /// A fault's default message for a status, like the real API's.
    pub fn default_message(status: StatusCode) -> String {
        match status.as_u16() {
            401 => "Incorrect API key provided.".to_owned(),
            403 => "You are not allowed to sample from this model".to_owned(),
            404 => "The model does not exist or you do not have access to it.".to_owned(),
            429 => "Rate limit reached for requests. Please try again later.".to_owned(),
            500 => "The server had an error while processing your request. Sorry about that!"
                .to_owned(),
            502 => "Bad gateway.".to_owned(),
            503 => "The engine is currently overloaded, please try again later.".to_owned(),
            s => format!("mock fault: status {s}"),
        }
    }
}
