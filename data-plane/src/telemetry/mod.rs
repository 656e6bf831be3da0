//! What the data plane tells operators: Prometheus metrics (`metrics`) and
//! OpenTelemetry spans with W3C trace-context propagation (`otel`). Both
//! are fed from the same two points of a request's life: each upstream
//! attempt (`forward`) and the finished trace record (`TraceDraft::finish`).
//! Where the spans go, and what became of them, is `export`; `otlp_http`
//! is the OTLP/HTTP exporter's client (TLS included).

pub mod export;
pub mod metrics;
pub mod otel;
pub mod otlp_http;
pub mod request_span;

pub use otel::Otel;
pub use request_span::RequestSpan;

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
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log lines written under [`Logs::subscriber`], as an operator reads them.
    #[derive(Clone, Default)]
    pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Logs {
        pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
            tracing_subscriber::fmt()
                .with_writer(self.clone())
                .with_ansi(false)
                .finish()
        }

        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;

        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

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
