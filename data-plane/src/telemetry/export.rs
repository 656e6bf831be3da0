//! Where spans go and what became of them: the OTLP target read from the
//! standard variables (the per-signal `OTEL_EXPORTER_OTLP_TRACES_*` ones
//! first, as the OpenTelemetry spec says), the exporter for its protocol,
//! and a wrapper that counts every export's outcome and warns when spans
//! are lost. Export is best effort; without the counters a collector that
//! is down or speaks another protocol would lose every span unseen.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::otel::OtelError;

/// Spans the collector took.
pub const SPANS_EXPORTED: &str = "aigw_otlp_spans_exported_total";
/// Spans lost because their export failed (collector down, refused, timed out).
pub const SPANS_DROPPED: &str = "aigw_otlp_spans_dropped_total";

pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";

/// Failed exports are logged at most this often (each export of a down
/// collector fails, every batch: a warning each time would flood the log).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc` (the gateway's default, as before the variable was read).
    Grpc,
    /// `http/protobuf`: a protobuf POST to `…/v1/traces`.
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Where spans are sent, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    /// The URL the exporter is given, whole (for HTTP, with its path).
    pub url: String,
}

/// The target from the standard variables (`env` reads one; `general` is
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, or the `--otlp-endpoint` flag). `None`:
/// no endpoint, no export. A protocol the gateway cannot speak is an error
/// naming its variable: ignoring it would send gRPC to an HTTP collector
/// and lose every span without a word.
pub fn target(
    general: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Target>, OtelError> {
    let set = |var: &str| {
        env(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (protocol_var, protocol) = match set(TRACES_PROTOCOL) {
        Some(p) => (TRACES_PROTOCOL, Some(p)),
        None => (PROTOCOL, set(PROTOCOL)),
    };
    let protocol = match protocol.as_deref() {
        None | Some("grpc") => Protocol::Grpc,
        Some("http/protobuf") => Protocol::HttpProtobuf,
        Some(other) => {
            return Err(OtelError::Protocol {
                var: protocol_var,
                value: other.to_string(),
            });
        }
    };
    // The per-signal variable is the whole URL, used as it is; the general
    // one is the collector's base, to which OTLP/HTTP adds the signal's path.
    let url = match set(TRACES_ENDPOINT) {
        Some(url) => url,
        None => {
            let Some(base) = general.map(str::trim).filter(|e| !e.is_empty()) else {
                return Ok(None);
            };
            match protocol {
                Protocol::Grpc => base.to_string(),
                Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            }
        }
    };
    Ok(Some(Target { protocol, url }))
}

/// Why the exporter's last request failed, as its client saw it: the SDK
/// reports every OTLP/HTTP failure without an answer as "network error",
/// which does not tell a refused connection from an unknown certificate
/// authority. The client (`otlp_http`) sets it; [`Counted`] adds it to its
/// warning. Transport errors only, never a request's headers.
#[derive(Debug, Default)]
pub struct LastCause(Mutex<Option<String>>);

impl LastCause {
    pub fn set(&self, cause: String) {
        *self.lock() = Some(cause);
    }

    pub fn clear(&self) {
        self.lock().take();
    }

    pub(crate) fn take(&self) -> Option<String> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A span exporter whose every export is counted (`aigw_otlp_spans_*`),
/// with a warning when spans are lost, at most once a minute, and a line
/// when exports work again. Exports run inside the Tokio runtime `rt`:
/// the SDK's batch processor calls them from its own thread, and the
/// OTLP/HTTP client's timer and connections need the runtime.
#[derive(Debug)]
pub struct Counted<E> {
    inner: E,
    rt: Option<tokio::runtime::Handle>,
    warn: Mutex<Warned>,
    /// The client's account of the last failure, for the warning.
    cause: Option<Arc<LastCause>>,
}

#[derive(Debug, Default)]
struct Warned {
    last: Option<Instant>,
    /// Spans dropped since the last warning (reported with the next one).
    unreported: u64,
    /// An export failed since the last success.
    failing: bool,
}

impl<E> Counted<E> {
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            rt: tokio::runtime::Handle::try_current().ok(),
            warn: Mutex::new(Warned::default()),
            cause: None,
        }
    }

    /// Warnings name `cause`, the exporter's client's last failure.
    pub fn explained_by(mut self, cause: Arc<LastCause>) -> Self {
        self.cause = Some(cause);
        self
    }

    fn outcome(&self, spans: u64, result: &OTelSdkResult, now: Instant) {
        // This export's cause, taken whatever happens: one kept while
        // warnings wait would be put to a later, unrelated failure.
        let cause = self.cause.as_deref().and_then(LastCause::take);
        let mut w = self
            .warn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(()) => {
                metrics::counter!(SPANS_EXPORTED).increment(spans);
                if std::mem::take(&mut w.failing) {
                    tracing::info!("OTLP span export works again");
                }
            }
            Err(e) => {
                metrics::counter!(SPANS_DROPPED).increment(spans);
                w.failing = true;
                w.unreported += spans;
                if w.last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
                    // The SDK's error: its status or "network error", never
                    // the request's headers (OTEL_EXPORTER_OTLP_HEADERS);
                    // then, for the latter, what the client saw.
                    let error = match cause {
                        Some(cause) => format!("{e} ({cause})"),
                        None => e.to_string(),
                    };
                    tracing::warn!(%error, dropped = w.unreported,
                        "OTLP span export failed: spans dropped (aigw_otlp_spans_dropped_total; \
                         next warning in a minute at the earliest)");
                    w.last = Some(now);
                    w.unreported = 0;
                }
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let export = self.inner.export(batch);
        let result = match &self.rt {
            Some(rt) => {
                InRuntime {
                    rt: rt.clone(),
                    inner: Box::pin(export),
                }
                .await
            }
            None => export.await,
        };
        self.outcome(spans, &result, Instant::now());
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Polls `inner` with the runtime entered (boxed: one allocation per
/// batch, not per span).
struct InRuntime<F> {
    rt: tokio::runtime::Handle,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.rt.enter();
        this.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_traces_endpoint_wins_and_is_used_as_it_is() {
        let t = target(
            Some("http://general:4318"),
            env(&[
                (TRACES_ENDPOINT, "http://traces:4318/custom/path"),
                (PROTOCOL, "http/protobuf"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.protocol, Protocol::HttpProtobuf);
        assert_eq!(t.url, "http://traces:4318/custom/path");
        // Alone, it turns export on.
        let t = target(None, env(&[(TRACES_ENDPOINT, "http://traces:4317")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            t,
            Target {
                protocol: Protocol::Grpc,
                url: "http://traces:4317".into()
            }
        );
    }

    #[test]
    fn the_general_endpoint_gets_the_signal_path_over_http_only() {
        let http = target(
            Some("http://collector:4318/"),
            env(&[(PROTOCOL, "http/protobuf")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(http.url, "http://collector:4318/v1/traces");
        let grpc = target(Some("http://collector:4317"), env(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(grpc.protocol, Protocol::Grpc);
        assert_eq!(grpc.url, "http://collector:4317");
        assert_eq!(target(None, env(&[(PROTOCOL, "grpc")])).unwrap(), None);
        assert_eq!(target(Some("  "), env(&[])).unwrap(), None);
    }

    #[test]
    fn the_traces_protocol_wins_and_unknown_ones_are_refused_by_name() {
        let t = target(
            Some("http://collector:4317"),
            env(&[(PROTOCOL, "http/protobuf"), (TRACES_PROTOCOL, "grpc")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.protocol, Protocol::Grpc);
        let e = target(
            Some("http://collector:4318"),
            env(&[(PROTOCOL, "http/json")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && e.contains("http/json"),
            "{e}"
        );
        let e = target(
            Some("http://collector:4318"),
            env(&[(TRACES_PROTOCOL, "thrift")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "{e}");
    }

    /// An https collector over OTLP/HTTP (most hosted ones) is taken, as
    /// over gRPC: the client speaks TLS (`otlp_http`).
    #[test]
    fn an_https_collector_is_taken_over_http_protobuf() {
        let t = target(
            Some("https://otlp.example.com"),
            env(&[(PROTOCOL, "http/protobuf")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            t,
            Target {
                protocol: Protocol::HttpProtobuf,
                url: "https://otlp.example.com/v1/traces".into()
            }
        );
    }

    #[derive(Debug)]
    struct Fails;

    impl SpanExporter for Fails {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure(
                "HTTP export failed: network error".into(),
            ))
        }
    }

    /// What an operator sees: the counters on `/metrics` and the log lines.
    #[test]
    fn lost_spans_are_counted_and_warned_about_once_a_minute() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let logs = crate::telemetry::tests::Logs::default();
        let counted = Counted::new(Fails);
        let t0 = Instant::now();
        metrics::with_local_recorder(&recorder, || {
            tracing::subscriber::with_default(logs.subscriber(), || {
                let failed = Err(OTelSdkError::InternalFailure("network error".into()));
                counted.outcome(3, &failed, t0);
                counted.outcome(2, &failed, t0 + Duration::from_secs(30));
                counted.outcome(4, &failed, t0 + Duration::from_secs(61));
                counted.outcome(5, &Ok(()), t0 + Duration::from_secs(62));
            });
        });
        let text = handle.render();
        assert!(text.contains("aigw_otlp_spans_dropped_total 9\n"), "{text}");
        assert!(
            text.contains("aigw_otlp_spans_exported_total 5\n"),
            "{text}"
        );
        let logs = logs.text();
        let warnings: Vec<_> = logs
            .lines()
            .filter(|l| l.contains("OTLP span export failed"))
            .collect();
        assert_eq!(warnings.len(), 2, "{logs}");
        assert!(warnings[0].contains("WARN") && warnings[0].contains("network error"));
        assert!(warnings[0].contains("dropped=3"), "{logs}");
        // The second warning reports the spans lost while it was quiet.
        assert!(warnings[1].contains("dropped=6"), "{logs}");
        assert!(logs.contains("OTLP span export works again"), "{logs}");
    }

    /// Through the SDK: the batch processor's export goes through the
    /// wrapper, so a failing collector shows on the counter.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_exporter_under_the_sdk_counts_its_spans() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(Counted::new(Fails))
            .build();
        metrics::with_local_recorder(&recorder, || {
            let tracer = provider.tracer("t");
            tracer.in_span("one", |_| {});
            tracer.in_span("two", |_| {});
        });
        let text = handle.render();
        assert!(text.contains("aigw_otlp_spans_dropped_total 2\n"), "{text}");
    }
}
