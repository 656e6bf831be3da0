//! What the data plane tells operators: Prometheus metrics (`metrics`) and
//! OpenTelemetry spans with W3C trace-context propagation (`otel`). Both
//! are fed from the same two points of a request's life: each upstream
//! attempt (`forward`) and the finished trace record (`TraceDraft::finish`).

pub mod metrics;
pub mod otel;

pub use otel::{Otel, RequestSpan};

/// The model that answered, read from a whole JSON answer (`model` in
/// OpenAI's and Anthropic's, `modelVersion` in Gemini's). Only read when
/// the request's span is recorded.
pub fn response_model_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        model: Option<String>,
        #[serde(rename = "modelVersion")]
        model_version: Option<String>,
        /// Anthropic's stream start wraps the message.
        message: Option<Box<Answer>>,
        /// Responses' stream events wrap the response.
        response: Option<Box<Answer>>,
    }
    fn pick(a: Answer) -> Option<String> {
        a.model
            .or(a.model_version)
            .or_else(|| a.message.and_then(|m| pick(*m)))
            .or_else(|| a.response.and_then(|r| pick(*r)))
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    pick(a).filter(|m| !m.is_empty()).map(|mut m| {
        aigw_proto::trace_bounds::clip_str(&mut m, 256);
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answering_model_in_each_format() {
        assert_eq!(
            response_model_of(br#"{"id":"x","model":"gpt-4o-2024"}"#).as_deref(),
            Some("gpt-4o-2024")
        );
        assert_eq!(
            response_model_of(br#"{"modelVersion":"gemini-2.0-flash-001"}"#).as_deref(),
            Some("gemini-2.0-flash-001")
        );
        assert_eq!(
            response_model_of(br#"{"type":"message_start","message":{"model":"claude-x"}}"#)
                .as_deref(),
            Some("claude-x")
        );
        assert_eq!(response_model_of(b"[DONE]"), None);
        assert_eq!(response_model_of(br#"{"model":""}"#), None);
    }
}
