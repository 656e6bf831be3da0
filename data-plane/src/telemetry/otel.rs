//! OpenTelemetry spans with the GenAI semantic conventions, exported over
//! OTLP (gRPC or HTTP/protobuf, `export.rs`) by the data plane itself
//! (docs/observability.md says why the data planes export rather than the
//! control plane).
//!
//! One SERVER span per app request (`chat gpt-4o`), one CLIENT span per
//! upstream attempt under it. The request span continues the app's W3C
//! `traceparent` when it sent one; every attempt sends the upstream a
//! `traceparent` naming the attempt span, so the provider's spans hang under
//! the attempt that called it. Without an endpoint nothing is recorded, but
//! `traceparent` is still propagated (a new trace when the app sent none).

use std::borrow::Cow;
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

use super::{export, metrics};
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
    #[error(
        "{var}={value:?}: the data plane exports OTLP over \"grpc\" or \"http/protobuf\" (http/json is not supported)"
    )]
    Protocol { var: &'static str, value: String },
    #[error(
        "{var}=http/protobuf: the endpoint {url} is https, which the data plane's OTLP/HTTP exporter cannot reach; use grpc for a TLS collector (with OTEL_EXPORTER_OTLP_CERTIFICATE if needed) or an http:// endpoint"
    )]
    HttpsOverHttp { var: &'static str, url: String },
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

    /// Exports to the endpoint the standard variables name (see
    /// `export::target`). Must run inside the Tokio runtime (the gRPC
    /// channel is made here, connected on first export; OTLP/HTTP exports
    /// run on it).
    pub fn start(cfg: &OtelConfig, node_id: &str, region: &str) -> Result<Self, OtelError> {
        Self::start_with_env(cfg, node_id, region, |var| std::env::var(var).ok())
    }

    /// [`Otel::start`] with the `OTEL_EXPORTER_OTLP_TRACES_*` and
    /// `*_PROTOCOL` variables read by `env` (`OtelConfig` carries the
    /// general endpoint and the rest).
    pub fn start_with_env(
        cfg: &OtelConfig,
        node_id: &str,
        region: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, OtelError> {
        let sampler = sampler(&cfg.sampler, cfg.sampler_arg)?;
        let Some(target) = export::target(cfg.endpoint.as_deref(), env)? else {
            return Ok(Self::off());
        };
        let exporter = exporter(&target, cfg)?;
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
            .with_batch_exporter(export::Counted::new(exporter))
            .build();
        let tracer = provider.tracer("aigw-data-plane");
        tracing::info!(endpoint = %target.url, protocol = target.protocol.as_str(),
            sampler = %cfg.sampler, "exporting spans over OTLP");
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

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds, as the OTel spec has it),
/// else 10 s; at most a minute (an export holds the batch's spans). A value
/// that is not a number is warned about and the default used. The SDK
/// reads these itself only when no timeout is set in code, and one is.
fn export_timeout() -> Duration {
    const DEFAULT: Duration = Duration::from_secs(10);
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ] {
        let Ok(v) = std::env::var(name) else {
            continue;
        };
        return match v.trim().parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms.clamp(1, 60_000)),
            Err(_) => {
                tracing::warn!(
                    variable = name,
                    "not a number of milliseconds; exports time out after 10 s"
                );
                DEFAULT
            }
        };
    }
    DEFAULT
}

/// The SDK's OTLP exporter for `target`.
fn exporter(
    target: &export::Target,
    cfg: &OtelConfig,
) -> Result<opentelemetry_otlp::SpanExporter, OtelError> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let timeout = export_timeout();
    let built = match target.protocol {
        export::Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(target.url.as_str())
            .with_timeout(timeout)
            .build(),
        export::Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_endpoint(target.url.as_str())
                .with_timeout(timeout);
            if target.url.starts_with("https://") {
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
            builder.build()
        }
    };
    built.map_err(|e| OtelError::Exporter(e.to_string()))
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
fn traceparent(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> Option<HeaderValue> {
    // Written in place (one per attempt, so not through `format!`).
    let mut v = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex::encode_to_slice(trace_id.to_bytes(), &mut v[3..35]).ok()?;
    hex::encode_to_slice(span_id.to_bytes(), &mut v[36..52]).ok()?;
    let sampled = flags.to_u8() & TraceFlags::SAMPLED.to_u8();
    hex::encode_to_slice([sampled], &mut v[53..55]).ok()?;
    HeaderValue::from_bytes(&v).ok()
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

    fn record(status: u32, error: &str) -> TraceRecord {
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

    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`: the spans arrive as a
    /// protobuf POST to `/v1/traces` (before, they went out as gRPC and
    /// an HTTP collector got nothing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_an_otlp_http_collector_as_protobuf() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let n = conn.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed before a whole request");
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    break (head, buf[end + 4..end + 4 + len].to_vec());
                }
            };
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            )
            .await
            .unwrap();
            let _ = tx.send((head, body));
        });
        let cfg = OtelConfig {
            endpoint: Some(format!("http://{addr}")),
            certificate: None,
            sampler: "always_on".into(),
            sampler_arg: 1.0,
            service_name: "aigw-test".into(),
        };
        let otel = Otel::start_with_env(&cfg, "node-1", "eu", |var| {
            (var == export::PROTOCOL).then(|| "http/protobuf".to_string())
        })
        .unwrap();
        otel.request(&HeaderMap::new(), "chat.completions")
            .finish(&record(200, ""), "", None);
        tokio::task::spawn_blocking(move || otel.shutdown())
            .await
            .unwrap();
        let (head, body) = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("no OTLP/HTTP request")
            .unwrap();
        assert!(head.starts_with("post /v1/traces http/1.1"), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        assert!(
            body.windows(11).any(|w| w == b"chat gpt-4o"),
            "the span's name is in the protobuf body"
        );
    }

    #[test]
    fn an_unsupported_protocol_stops_the_start_naming_its_variable() {
        let cfg = OtelConfig {
            endpoint: Some("http://collector:4318".into()),
            certificate: None,
            sampler: "always_on".into(),
            sampler_arg: 1.0,
            service_name: "aigw-test".into(),
        };
        let Err(e) = Otel::start_with_env(&cfg, "n", "eu", |var| {
            (var == export::TRACES_PROTOCOL).then(|| "http/json".to_string())
        }) else {
            panic!("http/json was accepted");
        };
        let e = e.to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"http/json\""),
            "{e}"
        );
    }
}
