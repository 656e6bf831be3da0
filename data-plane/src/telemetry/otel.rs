//! OpenTelemetry spans with the GenAI semantic conventions, exported over
//! OTLP/gRPC by the data plane itself (docs/observability.md says why the
//! data planes export rather than the control plane).
//!
//! One SERVER span per app request (`chat gpt-4o`), one CLIENT span per
//! upstream attempt under it. The request span continues the app's W3C
//! `traceparent` when it sent one; every attempt sends the upstream a
//! `traceparent` naming the attempt span, so the provider's spans hang under
//! the attempt that called it. Without an endpoint nothing is recorded, but
//! `traceparent` is still propagated (a new trace when the app sent none).

use std::time::{Duration, SystemTime};

use aigw_proto::model::ProviderKind;
use aigw_proto::pb::trace::TraceRecord;
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider,
};

use crate::config::OtelConfig;
use crate::runtime::Upstream;

/// Longest `tracestate` passed upstream.
const MAX_TRACESTATE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("OTEL_TRACES_SAMPLER: unknown sampler {0:?}")]
    Sampler(String),
    #[error("OTEL_TRACES_SAMPLER_ARG: {0} is not a ratio between 0 and 1")]
    Ratio(f64),
    #[error("cannot read OTEL_EXPORTER_OTLP_CERTIFICATE {path}: {error}")]
    Certificate { path: String, error: std::io::Error },
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// The tracer, or nothing when export is off. Cheap to share.
pub struct Otel {
    tracer: Option<SdkTracer>,
    provider: Option<SdkTracerProvider>,
    ids: RandomIdGenerator,
}

impl Otel {
    /// Propagation only: no span is recorded.
    pub fn off() -> Self {
        Self {
            tracer: None,
            provider: None,
            ids: RandomIdGenerator::default(),
        }
    }

    /// Exports to `cfg.endpoint` when set. Must run inside the Tokio runtime
    /// (the gRPC channel is made here, connected on first export).
    pub fn start(cfg: &OtelConfig, node_id: &str, region: &str) -> Result<Self, OtelError> {
        let sampler = sampler(&cfg.sampler, cfg.sampler_arg)?;
        let Some(endpoint) = cfg.endpoint.as_deref().filter(|e| !e.trim().is_empty()) else {
            return Ok(Self::off());
        };
        use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.trim())
            .with_timeout(Duration::from_secs(10));
        if endpoint.trim().starts_with("https://") {
            let mut tls = tonic::transport::ClientTlsConfig::new();
            tls = match &cfg.certificate {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|error| OtelError::Certificate {
                        path: path.display().to_string(),
                        error,
                    })?;
                    tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
                }
                None => tls.with_webpki_roots(),
            };
            builder = builder.with_tls_config(tls);
        }
        let exporter = builder
            .build()
            .map_err(|e| OtelError::Exporter(e.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .with_attributes([
                KeyValue::new("service.instance.id", node_id.to_string()),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("aigw.region", region.to_string()),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("aigw-data-plane");
        tracing::info!(endpoint = %endpoint, sampler = %cfg.sampler, "exporting spans over OTLP");
        Ok(Self {
            tracer: Some(tracer),
            provider: Some(provider),
            ids: RandomIdGenerator::default(),
        })
    }

    /// Records with `provider`'s tracer (its own processors and sampler):
    /// for benchmarks and tests that bring their own exporter.
    pub fn with_provider(provider: SdkTracerProvider) -> Self {
        Self {
            tracer: Some(provider.tracer("aigw-data-plane")),
            provider: Some(provider),
            ids: RandomIdGenerator::default(),
        }
    }

    /// The span of one app request, continuing the app's `traceparent`.
    pub fn request(&self, headers: &HeaderMap, endpoint: &str) -> RequestSpan {
        let parent = TraceContextPropagator::new().extract(&Headers(headers));
        let remote = parent.span().span_context().clone();
        match &self.tracer {
            Some(tracer) => {
                let span = tracer
                    .span_builder(operation(endpoint))
                    .with_kind(SpanKind::Server)
                    .start_with_context(tracer, &parent);
                let cx = parent.with_span(span);
                RequestSpan {
                    inner: Inner::Traced(Box::new(Traced {
                        tracer: tracer.clone(),
                        cx,
                        attempt: None,
                    })),
                    operation: operation(endpoint),
                    tracestate: remote.trace_state().clone(),
                    ids: self.ids.clone(),
                }
            }
            None => {
                let (trace_id, flags) = if remote.is_valid() {
                    (remote.trace_id(), remote.trace_flags())
                } else {
                    (self.ids.new_trace_id(), TraceFlags::default())
                };
                RequestSpan {
                    inner: Inner::Propagate { trace_id, flags },
                    operation: operation(endpoint),
                    tracestate: remote.trace_state().clone(),
                    ids: self.ids.clone(),
                }
            }
        }
    }

    /// Sends what is queued (bounded by the exporter's timeout).
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "OTLP exporter did not shut down cleanly");
        }
    }
}

fn sampler(name: &str, ratio: f64) -> Result<Sampler, OtelError> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(OtelError::Ratio(ratio));
    }
    let parent = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.trim() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        "parentbased_always_on" => parent(Sampler::AlwaysOn),
        "parentbased_always_off" => parent(Sampler::AlwaysOff),
        "parentbased_traceidratio" => parent(Sampler::TraceIdRatioBased(ratio)),
        other => return Err(OtelError::Sampler(other.to_string())),
    })
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

enum Inner {
    /// Export off: only the ids that go upstream.
    Propagate {
        trace_id: TraceId,
        flags: TraceFlags,
    },
    Traced(Box<Traced>),
}

/// The request span lives in `cx`; `attempt` is the attempt still open
/// (the one whose answer is being read).
struct Traced {
    tracer: SdkTracer,
    cx: Context,
    attempt: Option<opentelemetry_sdk::trace::Span>,
}

/// One request's place in the trace; lives in its `TraceDraft`.
pub struct RequestSpan {
    inner: Inner,
    /// `gen_ai.operation.name` of the request (and its attempts).
    operation: &'static str,
    tracestate: TraceState,
    ids: RandomIdGenerator,
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
            let kind = if error.is_empty() {
                status.to_string()
            } else {
                error.to_string()
            };
            span.set_attribute(KeyValue::new("error.type", kind.clone()));
            span.set_status(Status::error(kind));
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
                a.set_attribute(KeyValue::new("error.type", rec.error.clone()));
                a.set_status(Status::error(rec.error.clone()));
            }
            a.end_with_timestamp(end);
        }
        let failed = !rec.error.is_empty() || rec.status >= 400;
        if failed {
            let kind = if rec.error.is_empty() {
                rec.status.to_string()
            } else {
                rec.error.clone()
            };
            attrs.push(KeyValue::new("error.type", kind.clone()));
            span.set_status(Status::error(kind));
        }
        span.update_name(format!("{} {}", self.operation, rec.model));
        span.set_attributes(usage);
        span.set_attributes(attrs);
        span.end_with_timestamp(end);
    }
}

/// W3C `traceparent`, version 00 (hex only, so always a valid header value).
fn traceparent(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> Option<HeaderValue> {
    let v = format!(
        "00-{trace_id:032x}-{span_id:016x}-{:02x}",
        flags.to_u8() & TraceFlags::SAMPLED.to_u8()
    );
    HeaderValue::try_from(v).ok()
}

/// `gen_ai.operation.name` of an endpoint label (`endpoints.rs`).
fn operation(endpoint: &str) -> &'static str {
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
mod tests {
    use super::*;

    #[test]
    fn continues_the_apps_trace_and_names_each_attempt() {
        let otel = Otel::off();
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        let span = otel.request(&h, "chat.completions");
        assert_eq!(
            format!("{:032x}", span.trace_id()),
            "0af7651916cd43dd8448eb211c80319c"
        );
        // Garbage is ignored: a new trace starts.
        let mut bad = HeaderMap::new();
        bad.insert("traceparent", HeaderValue::from_static("00-zz-yy-01"));
        let fresh = otel.request(&bad, "chat.completions");
        assert_ne!(fresh.trace_id(), TraceId::INVALID);
        assert_ne!(fresh.trace_id(), span.trace_id());
    }

    #[test]
    fn traceparent_is_w3c() {
        let v = traceparent(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
            SpanId::from(0xb7ad6b7169203331_u64),
            TraceFlags::SAMPLED,
        );
        assert_eq!(
            v.as_ref().map(HeaderValue::as_bytes),
            Some(&b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..])
        );
    }

    #[test]
    fn samplers_by_their_standard_names() {
        for name in [
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ] {
            assert!(sampler(name, 0.5).is_ok(), "{name}");
        }
        assert!(matches!(
            sampler("sometimes", 1.0),
            Err(OtelError::Sampler(_))
        ));
        assert!(matches!(
            sampler("traceidratio", 1.5),
            Err(OtelError::Ratio(_))
        ));
    }

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
}
