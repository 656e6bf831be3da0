//! One request's place in its trace: the SERVER span for the app's
//! request and a CLIENT span per upstream attempt under it, with the GenAI
//! semantic conventions' attributes, or, with export off, only the ids the
//! upstream's `traceparent` carries. Made by `Otel::request` (`otel.rs`).

use std::borrow::Cow;
use std::time::SystemTime;

use aigw_proto::model::ProviderKind;
use aigw_proto::pb::trace::TraceRecord;
use http::HeaderValue;
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer};

use super::metrics;
use super::otel::MAX_TRACESTATE;
use crate::runtime::Upstream;

pub(super) enum Inner {
    /// Export off: only the ids that go upstream.
    Propagate {
        trace_id: TraceId,
        flags: TraceFlags,
    },
    Traced(Box<Traced>),
}

/// The request span lives in `cx`; `attempt` is the attempt still open
/// (the one whose answer is being read).
pub(super) struct Traced {
    pub(super) tracer: SdkTracer,
    pub(super) cx: Context,
    pub(super) attempt: Option<opentelemetry_sdk::trace::Span>,
}

/// One request's place in the trace; lives in its `TraceDraft`.
pub struct RequestSpan {
    pub(super) inner: Inner,
    /// `gen_ai.operation.name` of the request (and its attempts).
    pub(super) operation: &'static str,
    pub(super) tracestate: TraceState,
    pub(super) ids: RandomIdGenerator,
}

impl std::fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSpan")
            .field("recording", &self.is_recording())
            .finish_non_exhaustive()
    }
}

impl Default for RequestSpan {
    /// A new trace, not recorded (drafts made outside a request, in tests).
    fn default() -> Self {
        let ids = RandomIdGenerator::default();
        Self {
            inner: Inner::Propagate {
                trace_id: ids.new_trace_id(),
                flags: TraceFlags::default(),
            },
            operation: "chat",
            tracestate: TraceState::default(),
            ids,
        }
    }
}

impl RequestSpan {
    /// Whether this request's spans are exported (extra work, such as
    /// reading the answering model, is done only then).
    pub fn is_recording(&self) -> bool {
        match &self.inner {
            Inner::Traced(t) => t.cx.span().is_recording(),
            Inner::Propagate { .. } => false,
        }
    }

    pub fn trace_id(&self) -> TraceId {
        match &self.inner {
            Inner::Traced(t) => t.cx.span().span_context().trace_id(),
            Inner::Propagate { trace_id, .. } => *trace_id,
        }
    }

    /// Opens the span of one upstream attempt; returns the `traceparent`
    /// (and the app's `tracestate`) the upstream gets, naming that span.
    pub fn start_attempt(
        &mut self,
        up: &Upstream,
        upstream_model: &str,
    ) -> (Option<HeaderValue>, Option<HeaderValue>) {
        let op = self.operation;
        let (trace_id, span_id, flags) = match &mut self.inner {
            Inner::Propagate { trace_id, flags } => (*trace_id, self.ids.new_span_id(), *flags),
            Inner::Traced(t) => {
                let Traced {
                    tracer,
                    cx,
                    attempt,
                } = &mut **t;
                let mut builder = tracer
                    .span_builder(format!("{op} {upstream_model}"))
                    .with_kind(SpanKind::Client);
                // An unsampled request's attempts still need span ids (for
                // the upstream's traceparent), not attributes.
                if cx.span().is_recording() {
                    let system = gen_ai_system(up.provider.kind);
                    let (host, port) = server_of(&up.provider.base_url);
                    builder = builder.with_attributes([
                        KeyValue::new("gen_ai.system", system),
                        KeyValue::new("gen_ai.provider.name", system),
                        KeyValue::new("gen_ai.operation.name", op),
                        KeyValue::new("gen_ai.request.model", upstream_model.to_string()),
                        KeyValue::new("server.address", host),
                        KeyValue::new("server.port", i64::from(port)),
                        KeyValue::new("aigw.provider", up.provider.name.clone()),
                        KeyValue::new("aigw.provider.kind", up.provider.kind.as_str()),
                    ]);
                }
                let span = builder.start_with_context(tracer, cx);
                let sc = span.span_context().clone();
                // A previous attempt still open failed without a status.
                if let Some(mut prev) = attempt.replace(span) {
                    prev.end();
                }
                (sc.trace_id(), sc.span_id(), sc.trace_flags())
            }
        };
        let parent = traceparent(trace_id, span_id, flags);
        // W3C caps what vendors must carry at 512 bytes; an app's longer
        // list is not passed on (the trace itself still is).
        let state = Some(self.tracestate.header())
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .and_then(|s| HeaderValue::from_str(&s).ok());
        (parent, state)
    }

    /// The attempt opened last got its answer head (or failed). A failed
    /// attempt's span ends now; the one that answers stays open until the
    /// answer has been read.
    pub fn attempt_done(&mut self, key: &str, status: u16, error: &str) {
        let Inner::Traced(t) = &mut self.inner else {
            return;
        };
        let attempt = &mut t.attempt;
        let Some(span) = attempt.as_mut() else {
            return;
        };
        span.set_attribute(KeyValue::new("aigw.provider_key", key.to_string()));
        if status != 0 {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let failed = !error.is_empty() || !(200..300).contains(&status);
        if failed {
            span.set_attribute(KeyValue::new(
                "error.type",
                attempt_error_type(status, error),
            ));
            // The free text (a reason phrase, "connection failed") is the
            // status's description, not the attribute.
            let description = if error.is_empty() {
                status.to_string()
            } else {
                error.to_string()
            };
            span.set_status(Status::error(description));
            if let Some(mut s) = attempt.take() {
                s.end();
            }
        }
    }

    /// Ends the spans with what the finished record says.
    pub fn finish(
        &mut self,
        rec: &TraceRecord,
        response_model: &str,
        provider: Option<ProviderKind>,
    ) {
        let done = Inner::Propagate {
            trace_id: TraceId::INVALID,
            flags: TraceFlags::default(),
        };
        let Inner::Traced(t) = std::mem::replace(&mut self.inner, done) else {
            return;
        };
        let Traced { cx, attempt, .. } = *t;
        let span = cx.span();
        if !span.is_recording() {
            return;
        }
        let end = SystemTime::now();
        let usage = [
            KeyValue::new("gen_ai.usage.input_tokens", big(rec.input_tokens)),
            KeyValue::new("gen_ai.usage.output_tokens", big(rec.output_tokens)),
        ];
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", self.operation),
            KeyValue::new("gen_ai.request.model", rec.model.clone()),
            KeyValue::new("http.response.status_code", i64::from(rec.status)),
            KeyValue::new("aigw.request_id", rec.request_id.clone()),
            KeyValue::new("aigw.client_key", rec.client_key_name.clone()),
            KeyValue::new("aigw.endpoint", rec.endpoint.clone()),
            KeyValue::new("aigw.api_format", rec.api_format.clone()),
            KeyValue::new("aigw.stream", rec.stream),
            KeyValue::new("aigw.usage.cached_input_tokens", big(rec.cached_tokens)),
            KeyValue::new("aigw.usage.reasoning_tokens", big(rec.reasoning_tokens)),
            KeyValue::new("aigw.cost_usd", rec.cost),
            KeyValue::new("aigw.attempts", rec.attempts.len() as i64),
        ];
        if let Some(kind) = provider {
            attrs.push(KeyValue::new("gen_ai.system", gen_ai_system(kind)));
            attrs.push(KeyValue::new("gen_ai.provider.name", gen_ai_system(kind)));
            attrs.push(KeyValue::new("aigw.provider", rec.provider.clone()));
        }
        if !response_model.is_empty() {
            attrs.push(KeyValue::new(
                "gen_ai.response.model",
                response_model.to_string(),
            ));
        }
        if let Some(mut a) = attempt {
            // The attempt that answered: its usage is the request's.
            a.set_attributes(usage.iter().cloned());
            if !response_model.is_empty() {
                a.set_attribute(KeyValue::new(
                    "gen_ai.response.model",
                    response_model.to_string(),
                ));
            }
            if !rec.error.is_empty() {
                a.set_attribute(KeyValue::new("error.type", metrics::error_kind(&rec.error)));
                a.set_status(Status::error(rec.error.clone()));
            }
            a.end_with_timestamp(end);
        }
        let failed = !rec.error.is_empty() || rec.status >= 400;
        if failed {
            attrs.push(KeyValue::new(
                "error.type",
                request_error_type(&rec.error, rec.status),
            ));
            // OTel's HTTP server convention: a 4xx is the client's doing and
            // leaves the SERVER span's status unset (error.type still says
            // what it was); a 5xx, or an error under a 2xx (a stream cut
            // after its head), is ERROR.
            if !(400..500).contains(&rec.status) {
                let description = if rec.error.is_empty() {
                    rec.status.to_string()
                } else {
                    rec.error.clone()
                };
                span.set_status(Status::error(description));
            }
        }
        span.update_name(format!("{} {}", self.operation, rec.model));
        span.set_attributes(usage);
        span.set_attributes(attrs);
        span.end_with_timestamp(end);
    }
}

/// `error.type` of a failed attempt (a CLIENT span), low-cardinality as
/// the OTel conventions ask: the upstream's status code when it answered
/// one (`"429"`; a rejected credential's `"401"` too), otherwise the
/// gateway's error kind, as `aigw_request_errors_total{kind}` names it.
/// `note` is the attempt's entry in the trace (`GatewayError::attempt_note`,
/// free text such as "connection failed").
fn attempt_error_type(status: u16, note: &str) -> Cow<'static, str> {
    if status != 0 && !(200..300).contains(&status) {
        return Cow::Owned(status.to_string());
    }
    Cow::Borrowed(match note {
        "timeout" => "upstream_timeout",
        // A kind already (an attempt the gateway ended itself).
        kind if metrics::ERROR_KINDS.contains(&kind) => metrics::error_kind(kind),
        // "connection failed", "request failed", "body broke off", an
        // unexpected status, a connection closed while idle...
        _ => "upstream_error",
    })
}

/// `error.type` of a request (the SERVER span): the upstream's status code
/// when its answer was relayed (`upstream_status`), otherwise the error's
/// kind, as `aigw_request_errors_total{kind}` names it.
fn request_error_type(error: &str, status: u32) -> Cow<'static, str> {
    if error.is_empty() || error == "upstream_status" {
        return Cow::Owned(status.to_string());
    }
    Cow::Borrowed(metrics::error_kind(error))
}

/// W3C `traceparent`, version 00 (hex only, so always a valid header value).
pub(super) fn traceparent(
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
) -> Option<HeaderValue> {
    // Written in place (one per attempt, so not through `format!`).
    let mut v = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex::encode_to_slice(trace_id.to_bytes(), &mut v[3..35]).ok()?;
    hex::encode_to_slice(span_id.to_bytes(), &mut v[36..52]).ok()?;
    let sampled = flags.to_u8() & TraceFlags::SAMPLED.to_u8();
    hex::encode_to_slice([sampled], &mut v[53..55]).ok()?;
    HeaderValue::from_bytes(&v).ok()
}

/// `gen_ai.operation.name` of an endpoint label (`endpoints.rs`).
pub(super) fn operation(endpoint: &str) -> &'static str {
    match endpoint {
        "chat.completions" | "responses" | "messages" => "chat",
        "generateContent" => "generate_content",
        "embeddings" | "embedContent" => "embeddings",
        "messages.count_tokens" | "countTokens" => "count_tokens",
        _ => "chat",
    }
}

/// `gen_ai.system` / `gen_ai.provider.name` values of the semantic
/// conventions (an OpenAI-compatible provider speaks OpenAI's API).
fn gen_ai_system(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
    }
}

fn server_of(base_url: &str) -> (String, u16) {
    let Ok(uri) = base_url.parse::<http::Uri>() else {
        return (String::new(), 0);
    };
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    (uri.host().unwrap_or_default().to_string(), port)
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::telemetry::Otel;
    use http::HeaderMap;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    #[test]
    fn operations_follow_the_semantic_conventions() {
        assert_eq!(operation("chat.completions"), "chat");
        assert_eq!(operation("generateContent"), "generate_content");
        assert_eq!(operation("embedContent"), "embeddings");
        assert_eq!(server_of("http://mock:8000"), ("mock".into(), 8000));
        assert_eq!(
            server_of("https://api.openai.com"),
            ("api.openai.com".into(), 443)
        );
    }

    /// Spans as the collector gets them.
    #[derive(Debug, Clone, Default)]
    struct Collected(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Collected {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    impl Collected {
        fn otel(&self) -> Otel {
            Otel::with_provider(
                SdkTracerProvider::builder()
                    .with_simple_exporter(self.clone())
                    .build(),
            )
        }

        /// `(name, kind, error.type, status)` of each span, in end order.
        fn spans(&self) -> Vec<(String, SpanKind, Option<String>, Status)> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|s| {
                    let error_type = s
                        .attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == "error.type")
                        .map(|kv| kv.value.to_string());
                    (
                        s.name.to_string(),
                        s.span_kind.clone(),
                        error_type,
                        s.status.clone(),
                    )
                })
                .collect()
        }
    }

    fn upstream() -> Upstream {
        use aigw_proto::model::{Glob, Provider, Strategy};
        Upstream {
            provider: Provider {
                name: "openai-main".into(),
                kind: ProviderKind::OpenAi,
                base_url: "http://mock:8000".into(),
                models: vec![Glob::new("*")],
                strategy: Strategy::RoundRobin,
                keys: vec![],
                model_map: Default::default(),
                affinity: Default::default(),
            },
            pool: crate::schedule::Pool::new(vec![], Strategy::RoundRobin),
        }
    }

    pub(crate) fn record(status: u32, error: &str) -> TraceRecord {
        TraceRecord {
            model: "gpt-4o".into(),
            status,
            error: error.into(),
            ..Default::default()
        }
    }

    #[test]
    fn error_type_is_the_upstream_status_or_the_metrics_kind_never_free_text() {
        let collected = Collected::default();
        let otel = collected.otel();
        let up = upstream();
        let mut span = otel.request(&HeaderMap::new(), "chat.completions");
        span.start_attempt(&up, "gpt-4o");
        span.attempt_done("k1", 429, "Too Many Requests");
        span.start_attempt(&up, "gpt-4o");
        span.attempt_done("k2", 0, "connection failed");
        span.start_attempt(&up, "gpt-4o");
        span.attempt_done("k3", 0, "timeout");
        span.start_attempt(&up, "gpt-4o");
        span.attempt_done("k4", 200, "");
        // The answer's stream broke off after its head.
        span.finish(&record(200, "upstream stream cut"), "", None);
        let got = collected.spans();
        let error_types: Vec<_> = got.iter().map(|s| s.2.as_deref()).collect();
        assert_eq!(
            error_types,
            [
                Some("429"),
                Some("upstream_error"),
                Some("upstream_timeout"),
                Some("stream_cut"),
                Some("stream_cut"),
            ],
            "{got:?}"
        );
        // The free text is the status's description.
        assert_eq!(got[0].3, Status::error("Too Many Requests"));
        assert_eq!(got[1].3, Status::error("connection failed"));
        let server = &got[4];
        assert_eq!(server.1, SpanKind::Server);
        assert_eq!(server.3, Status::error("upstream stream cut"));
    }

    #[test]
    fn a_4xx_leaves_the_server_span_unset_a_5xx_is_an_error() {
        let collected = Collected::default();
        let otel = collected.otel();
        let cases = [
            (429, "rate_limited", "rate_limited", false),
            (404, "unknown_model", "unknown_model", false),
            (
                499,
                "client closed the connection early",
                "client_closed",
                false,
            ),
            // An upstream's answer relayed: its status is the type.
            (503, "upstream_status", "503", true),
            (400, "upstream_status", "400", false),
            (502, "upstream_error", "upstream_error", true),
            (500, crate::context::PANICKED, "internal", true),
        ];
        for (status, error, _, _) in cases {
            otel.request(&HeaderMap::new(), "chat.completions").finish(
                &record(status, error),
                "",
                None,
            );
        }
        let got = collected.spans();
        for ((status, _, error_type, is_error), span) in cases.iter().zip(&got) {
            assert_eq!(span.1, SpanKind::Server);
            assert_eq!(span.2.as_deref(), Some(*error_type), "{status}: {span:?}");
            assert_eq!(
                matches!(span.3, Status::Error { .. }),
                *is_error,
                "{status}: {span:?}"
            );
            if !is_error {
                assert_eq!(span.3, Status::Unset, "{status}");
            }
        }
    }

    /// The attempt notes error.rs writes map to the kind its errors
    /// carry (or their upstream status): a new note cannot leak into
    /// `error.type` as free text unnoticed.
    #[test]
    fn every_failed_attempts_note_maps_to_its_errors_kind() {
        use crate::error::{Failure, GatewayError};
        use http::StatusCode;
        let failures = [
            Failure::Timeout(30),
            Failure::Connect,
            Failure::Request,
            Failure::CredentialRejected(StatusCode::UNAUTHORIZED),
            Failure::BodyBroken("eof".into()),
            Failure::Unreadable("unexpected status 302".into()),
            Failure::NotAStream,
        ];
        let mut errors: Vec<GatewayError> = failures
            .into_iter()
            .map(|f| GatewayError::upstream("p", f))
            .collect();
        errors.push(GatewayError::UpstreamResponse {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: None,
            body: Default::default(),
        });
        for e in &errors {
            let got = attempt_error_type(e.attempt_status(), e.attempt_note());
            let want = match e.attempt_status() {
                0 => e.kind().to_string(),
                s => s.to_string(),
            };
            assert_eq!(got, want, "{e:?}");
        }
        // A connection closed while idle, sent again.
        assert_eq!(
            attempt_error_type(0, "connection closed idle, sent again"),
            "upstream_error"
        );
    }
}
