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

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanKind, TraceContextExt, TraceFlags, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider,
};

use super::export::{self, LastCause};
use super::otlp_http::OtlpHttpClient;
use super::request_span::{Inner, RequestSpan, Traced, operation};
use crate::config::OtelConfig;

/// Longest `tracestate` passed upstream.
pub(super) const MAX_TRACESTATE: usize = 512;

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
    /// The OTLP/HTTP client's TLS setup: the roots, or the
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE` file (unreadable, not PEM, empty).
    #[error("OTLP/HTTP TLS (OTEL_EXPORTER_OTLP_CERTIFICATE): {0}")]
    Tls(String),
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
        let cause = Arc::new(LastCause::default());
        let exporter = exporter(&target, cfg, &cause)?;
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
            .with_batch_exporter(export::Counted::new(exporter).explained_by(cause))
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

/// The SDK's OTLP exporter for `target`. Over HTTP its client is ours
/// (`otlp_http`: TLS, the export timeout on each request), which records
/// why a request failed in `cause`.
pub(super) fn exporter(
    target: &export::Target,
    cfg: &OtelConfig,
    cause: &Arc<LastCause>,
) -> Result<opentelemetry_otlp::SpanExporter, OtelError> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
    let timeout = export_timeout();
    let built = match target.protocol {
        export::Protocol::HttpProtobuf => {
            // The certificate is for https endpoints only, as over gRPC.
            let ca = cfg
                .certificate
                .as_deref()
                .filter(|_| target.url.starts_with("https://"));
            let client = OtlpHttpClient::new(ca, timeout, Arc::clone(cause))?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(target.url.as_str())
                .with_timeout(timeout)
                .build()
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::request_span::tests::record;
    use crate::telemetry::request_span::traceparent;
    use http::HeaderValue;
    use opentelemetry::trace::{SpanId, TraceId};

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

    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`: the spans arrive as a
    /// protobuf POST to `/v1/traces` (before, they went out as gRPC and
    /// an HTTP collector got nothing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_an_otlp_http_collector_as_protobuf() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (head, body) = crate::telemetry::otlp_http::tests::read_request(&mut conn)
                .await
                .expect("a whole request");
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
        crate::telemetry::otlp_http::tests::assert_spans_posted(&head, &body);
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
