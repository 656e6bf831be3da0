//! The OTLP/HTTP exporter's client: hyper-util's pooled client over
//! hyper-rustls, trusting what the upstream client trusts (the system's
//! roots and Mozilla's) and, for an `https://` endpoint,
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`. The SDK's own hyper client has no
//! TLS, and most hosted collectors are https only.
//!
//! Each request, connection and answer included, is bounded by the export
//! timeout (the SDK leaves that to the client, and retries within the same
//! deadline). Requests run as tasks on the runtime the client was made in,
//! whichever thread awaits them (the SDK's batch processor has its own).
//! Why one failed is kept for the export warning ([`LastCause`]): the SDK
//! turns every failure without an answer into "network error".

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response, ResponseBodyTooLarge};

use super::export::LastCause;
use super::otel::OtelError;

/// A collector's answer is a small protobuf (partial success at most); a
/// larger one is refused, as by the SDK's clients.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Idle connections are closed before common front ends' idle timeouts (an
/// AWS load balancer's 60 s), so a reused one is rarely closing already.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

#[derive(Clone)]
pub struct OtlpHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    rt: tokio::runtime::Handle,
    timeout: Duration,
    cause: Arc<LastCause>,
}

impl std::fmt::Debug for OtlpHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OtlpHttpClient {
    /// A client trusting the public roots and every certificate in the PEM
    /// file `extra_ca`; each request gives up after `timeout`. Must be made
    /// inside the Tokio runtime (its requests run there).
    pub fn new(
        extra_ca: Option<&Path>,
        timeout: Duration,
        cause: Arc<LastCause>,
    ) -> Result<Self, OtelError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            OtelError::Exporter("the OTLP/HTTP client is made outside the Tokio runtime".into())
        })?;
        // HTTP/1.1 (ALPN `http/1.1`): every OTLP/HTTP collector speaks it.
        let connector =
            crate::upstream_client::https_connector(extra_ca).map_err(OtelError::Tls)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(connector);
        Ok(Self {
            client,
            rt,
            timeout,
            cause,
        })
    }
}

#[async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.cause.clear();
        let task = self
            .rt
            .spawn(send(self.client.clone(), request, self.timeout));
        // Dropped unfinished (the SDK gave up on the export): stop it.
        let mut task = AbortOnDrop(task);
        let result = match (&mut task.0).await {
            Ok(result) => result,
            Err(e) => Err(format!("the export request's task ended: {e}").into()),
        };
        match &result {
            Ok(_) => self.cause.clear(),
            Err(e) => self.cause.set(chain(e.as_ref())),
        }
        result
    }
}

/// One request and its whole answer, within `timeout`. Any status is an
/// answer (the SDK decides what to retry).
async fn send(
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Bytes>,
    timeout: Duration,
) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, Full::new(body));
    let exchange = async {
        let (parts, body) = client.request(request).await?.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    Box::new(ResponseBodyTooLarge::new()) as HttpError
                } else {
                    e
                }
            })?
            .to_bytes();
        Ok::<_, HttpError>(Response::from_parts(parts, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// `e` and its sources, `: `-separated ("client error (Connect): invalid
/// peer certificate: UnknownIssuer"), repeats skipped.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if part != last && !last.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = s.source();
    }
    text
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::OtelConfig;
    use crate::telemetry::Otel;
    use crate::telemetry::export::{self, Counted};
    use crate::telemetry::request_span::tests::record;
    use http::HeaderMap;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// What the collector saw on a connection: a refused handshake, or a
    /// request (its head, lowercased, and body).
    #[derive(Debug)]
    enum Seen {
        Refused,
        Request(String, Vec<u8>),
    }

    /// An OTLP/HTTP collector on `https://localhost:{port}` whose
    /// certificate a test CA signed (its PEM written under `dir`); every
    /// request is answered 200.
    async fn https_collector(
        dir: &Path,
    ) -> (u16, std::path::PathBuf, mpsc::UnboundedReceiver<Seen>) {
        let (ca_path, server) = crate::upstream_client::tests::test_ca(dir, "localhost");
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        let _ = tx.send(Seen::Refused);
                        return;
                    };
                    while let Some((head, body)) = read_request(&mut tls).await {
                        let _ = tx.send(Seen::Request(head, body));
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if tls.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, ca_path, rx)
    }

    /// The request (head lowercased) is an OTLP/HTTP export of the test's
    /// request span, as protobuf.
    pub(crate) fn assert_spans_posted(head: &str, body: &[u8]) {
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

    /// One HTTP/1.1 request (head lowercased), `None` at the end.
    pub(crate) async fn read_request(
        conn: &mut (impl AsyncRead + AsyncWrite + Unpin),
    ) -> Option<(String, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if buf.len() >= end + 4 + len {
                return Some((head, buf[end + 4..end + 4 + len].to_vec()));
            }
        }
    }

    fn config(endpoint: String, certificate: Option<std::path::PathBuf>) -> OtelConfig {
        OtelConfig {
            endpoint: Some(endpoint),
            certificate,
            sampler: "always_on".into(),
            sampler_arg: 1.0,
            service_name: "aigw-test".into(),
        }
    }

    fn http_protobuf(var: &str) -> Option<String> {
        (var == export::PROTOCOL).then(|| "http/protobuf".to_string())
    }

    /// A TLS collector whose CA `OTEL_EXPORTER_OTLP_CERTIFICATE` names
    /// gets the spans as a protobuf POST to `/v1/traces` (before, an
    /// https endpoint stopped the data plane at start).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_an_https_otlp_http_collector_trusted_by_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (port, ca, mut seen) = https_collector(dir.path()).await;
        let cfg = config(format!("https://localhost:{port}"), Some(ca));
        let otel = Otel::start_with_env(&cfg, "node-1", "eu", http_protobuf).unwrap();
        otel.request(&HeaderMap::new(), "chat.completions")
            .finish(&record(200, ""), "", None);
        tokio::task::spawn_blocking(move || otel.shutdown())
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("no OTLP/HTTP request");
        let Some(Seen::Request(head, body)) = first else {
            panic!("the collector saw {first:?}");
        };
        assert_spans_posted(&head, &body);
        assert!(head.contains(&format!("host: localhost:{port}")), "{head}");
    }

    /// Without the CA the collector's certificate is not trusted: the
    /// export fails, its spans are counted as dropped and the warning says
    /// why (not the SDK's bare "network error"); nothing panics.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_certificate_the_export_fails_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (port, _ca, mut seen) = https_collector(dir.path()).await;
        let cfg = config(format!("https://localhost:{port}"), None);
        let target = export::Target {
            protocol: export::Protocol::HttpProtobuf,
            url: format!("https://localhost:{port}/v1/traces"),
        };
        let cause = Arc::new(LastCause::default());
        let exporter = crate::telemetry::otel::exporter(&target, &cfg, &cause).unwrap();
        let counted = Counted::new(exporter).explained_by(cause);
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let logs = crate::telemetry::tests::Logs::default();
        let subscriber = logs.subscriber();
        // The simple processor exports as the span ends, on this thread
        // (the batch processor's would not see the local recorder).
        tokio::task::spawn_blocking(move || {
            metrics::with_local_recorder(&recorder, || {
                tracing::subscriber::with_default(subscriber, || {
                    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                        .with_simple_exporter(counted)
                        .build();
                    let otel = Otel::with_provider(provider);
                    otel.request(&HeaderMap::new(), "chat.completions").finish(
                        &record(200, ""),
                        "",
                        None,
                    );
                    otel.shutdown();
                });
            });
        })
        .await
        .unwrap();
        let text = handle.render();
        assert!(text.contains("aigw_otlp_spans_dropped_total 1\n"), "{text}");
        assert!(!text.contains("aigw_otlp_spans_exported_total"), "{text}");
        let logs = logs.text();
        let warning = logs
            .lines()
            .find(|l| l.contains("OTLP span export failed"))
            .unwrap_or_else(|| panic!("no warning in {logs}"));
        assert!(
            warning.contains("network error") && warning.contains("UnknownIssuer"),
            "{warning}"
        );
        // The collector refused every handshake; no request reached it.
        assert!(matches!(seen.recv().await, Some(Seen::Refused)));
        while let Ok(s) = seen.try_recv() {
            assert!(matches!(s, Seen::Refused), "{s:?}");
        }
    }

    /// The request's headers (`OTEL_EXPORTER_OTLP_HEADERS`, which the SDK
    /// adds to it) reach the collector; a collector that never answers is
    /// an error within the timeout, and the cause says so.
    #[tokio::test]
    async fn headers_go_through_and_a_silent_collector_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let (port, ca, mut seen) = https_collector(dir.path()).await;
        let cause = Arc::new(LastCause::default());
        let client =
            OtlpHttpClient::new(Some(&ca), Duration::from_secs(10), cause.clone()).unwrap();
        let request = Request::post(format!("https://localhost:{port}/v1/traces"))
            .header("x-honeycomb-team", "key-1")
            .body(Bytes::from_static(b"spans"))
            .unwrap();
        let answer = client.send_bytes(request).await.unwrap();
        assert_eq!(answer.status(), http::StatusCode::OK);
        let Some(Seen::Request(head, body)) = seen.recv().await else {
            panic!("no request");
        };
        assert!(head.contains("x-honeycomb-team: key-1"), "{head}");
        assert_eq!(body, b"spans");

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move { silent.accept().await.map(|(s, _)| s) });
        let client = OtlpHttpClient::new(None, Duration::from_millis(200), cause.clone()).unwrap();
        let request = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::new())
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), client.send_bytes(request))
            .await
            .expect("the client's own timeout")
            .unwrap_err();
        assert!(e.to_string().contains("no answer within 200ms"), "{e}");
        assert_eq!(cause.take().as_deref(), Some("no answer within 200ms"));
        held.abort();
    }

    /// A certificate file that cannot be used stops the start, naming it.
    #[tokio::test]
    async fn an_unusable_certificate_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let cfg = config("https://collector:4318".into(), Some(missing));
        let Err(e) = Otel::start_with_env(&cfg, "n", "eu", http_protobuf) else {
            panic!("a missing certificate was accepted");
        };
        let e = e.to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && e.contains("nope.pem"),
            "{e}"
        );
    }
}
