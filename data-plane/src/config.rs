//! Command-line flags; each one is also an environment variable (PRODUCT.md
//! fixes the names), so docker-compose and scripts can set them either way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "data-plane",
    version,
    about = "Serves apps: authenticates, routes, forwards to AI providers, reports traces"
)]
pub struct Config {
    /// Address the app-facing HTTP server listens on.
    #[arg(long, env = "AIGW_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// gRPC URL of the control plane.
    #[arg(
        long,
        env = "AIGW_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane: String,

    /// PEM roots that sign the control plane's certificate (with an
    /// https:// AIGW_CONTROL_PLANE; the public roots when unset).
    #[arg(long, env = "AIGW_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate presented to the control plane (mTLS).
    #[arg(long, env = "AIGW_TLS_CLIENT_CERT", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,

    /// PEM key of AIGW_TLS_CLIENT_CERT.
    #[arg(long, env = "AIGW_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,

    /// The credential presented to the control plane: the shared join token,
    /// or one issued for this node through the Admin API. Also the key that
    /// encrypts the snapshot copy on disk.
    #[arg(long, env = "AIGW_NODE_TOKEN", hide_env_values = true)]
    pub node_token: String,

    /// Region this node serves, recorded in every trace.
    #[arg(long, env = "AIGW_REGION", default_value = "local")]
    pub region: String,

    /// Node identity; defaults to the host name.
    #[arg(long, env = "AIGW_NODE_ID")]
    pub node_id: Option<String>,

    /// Where the last applied snapshot (encrypted) and the trace spool live.
    #[arg(long, env = "AIGW_STATE_DIR", default_value = "./data/data-plane")]
    pub state_dir: PathBuf,

    /// Largest request body accepted from an app, in bytes.
    #[arg(long, env = "AIGW_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Request body bytes the node holds at once, across every app (at
    /// least `AIGW_MAX_BODY_BYTES`), one app key at most a quarter of it:
    /// past it, requests get 503 with `Retry-After` before more of their
    /// bodies is read.
    #[arg(long, env = "AIGW_MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 512 * 1024 * 1024)]
    pub max_body_bytes_in_flight: usize,

    /// Seconds an app gets to send a request's head; an idle HTTP/1
    /// keep-alive connection is closed after this long too.
    #[arg(long, env = "AIGW_HEADER_TIMEOUT_SECS", default_value_t = 20)]
    pub header_timeout_secs: u64,

    /// Seconds an app gets to send a request's whole body.
    #[arg(long, env = "AIGW_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,

    /// Seconds a connection may pass without a byte either way before it is
    /// shut down (gracefully: an answer in flight is finished first); also
    /// how long an answer may wait for an app that stopped reading it
    /// before the connection is closed.
    #[arg(long, env = "AIGW_IDLE_TIMEOUT_SECS", default_value_t = 120)]
    pub idle_timeout_secs: u64,

    /// Seconds open connections get to finish after SIGTERM (a long stream
    /// included); then they are closed, and a stream cut so is traced with
    /// what it used so far. Set it above the orchestrator's grace period's
    /// share for serving (Kubernetes' `terminationGracePeriodSeconds`).
    #[arg(long, env = "AIGW_SHUTDOWN_DRAIN_SECS", default_value_t = 30)]
    pub shutdown_drain_secs: u64,

    /// Most app connections open at once; more wait to be accepted.
    #[arg(long, env = "AIGW_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,

    /// Threads serving apps, each a single-threaded runtime with its own
    /// listener on the port (`SO_REUSEPORT`); 0: one per core. At most
    /// 256: each is a thread, a runtime and a socket.
    #[arg(long, env = "AIGW_SERVE_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=256))]
    pub serve_threads: u16,

    /// Seconds to wait for an upstream's response headers.
    #[arg(long, env = "AIGW_UPSTREAM_TIMEOUT_SECS", default_value_t = 600)]
    pub upstream_timeout_secs: u64,

    /// Seconds a streamed answer may go without a byte from the upstream
    /// before the gateway gives up on it (the app sees the stream cut).
    #[arg(long, env = "AIGW_STREAM_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    pub stream_idle_timeout_secs: u64,

    /// Attempts per request across the pool's credentials (1 = no retry).
    #[arg(long, env = "AIGW_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,

    /// Redis shared by the data planes of a deployment for client key quotas
    /// (`redis://HOST:PORT`); without it, quotas are counted in process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// PEM file of extra root certificates trusted for upstream providers,
    /// besides the system's (a private CA in front of a self-hosted model).
    #[arg(long, env = "AIGW_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,

    /// Tokens reserved for a request's answer in its budgets when the app
    /// sets no `max_tokens`-style cap (see the budgets in docs/architecture.md).
    #[arg(long, env = "AIGW_DEFAULT_MAX_OUTPUT_TOKENS", default_value_t = 4096)]
    pub default_max_output_tokens: u64,

    /// Tokens reserved in a request's budgets for each piece of input it
    /// refers to and the gateway cannot see: `previous_response_id`, a
    /// stored conversation or prompt, a file or cached content by id or URI
    /// (see the budgets in docs/architecture.md). The answer is charged
    /// what the provider reports; this only bounds how far parallel
    /// requests can overrun a token or cost limit.
    #[arg(long, env = "AIGW_UNSEEN_INPUT_TOKENS", default_value_t = 32_768)]
    pub unseen_input_tokens: u64,

    /// Milliseconds a request waits for Redis (a pooled connection and the
    /// budget script) before its budgets follow their degraded policy.
    #[arg(long, env = "AIGW_REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,

    /// Most bytes of undelivered traces kept on disk in sealed segments;
    /// the oldest go first. The segment being written and the spare made
    /// ahead reserve 5 MiB each beside it.
    #[arg(long, env = "AIGW_TRACE_SPOOL_MAX_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub trace_spool_max_bytes: u64,

    #[command(flatten)]
    pub otel: OtelConfig,
}

/// OpenTelemetry export: the standard `OTEL_*` variables, so the settings a
/// collector's docs give work here as they are. Unset endpoint: no export
/// (W3C `traceparent` is still propagated to upstreams).
#[derive(Debug, Clone, clap::Args)]
pub struct OtelConfig {
    /// OTLP endpoint spans are exported to (`http://collector:4317` over gRPC;
    /// with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, `http://collector:4318`,
    /// `/v1/traces` added; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins, used as is).
    /// gRPC `https://` verifies with the public roots, or OTEL_EXPORTER_OTLP_CERTIFICATE.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub endpoint: Option<String>,

    /// PEM roots that sign the collector's certificate (https endpoints).
    #[arg(long = "otlp-certificate", env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub certificate: Option<PathBuf>,

    /// Which requests are traced: always_on, always_off, traceidratio,
    /// parentbased_always_on, parentbased_always_off, parentbased_traceidratio
    /// (parent-based: an app's sampled `traceparent` decides; otherwise the ratio).
    #[arg(
        long = "otel-traces-sampler",
        env = "OTEL_TRACES_SAMPLER",
        default_value = "parentbased_always_on"
    )]
    pub sampler: String,

    /// The ratio of the *traceidratio samplers, 0.0 to 1.0.
    #[arg(
        long = "otel-traces-sampler-arg",
        env = "OTEL_TRACES_SAMPLER_ARG",
        default_value_t = 1.0
    )]
    pub sampler_arg: f64,

    /// `service.name` of the exported spans.
    #[arg(
        long = "otel-service-name",
        env = "OTEL_SERVICE_NAME",
        default_value = "aigw-data-plane"
    )]
    pub service_name: String,
}

impl Config {
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "data-plane".to_string())
        })
    }

    pub fn control_plane_tls(&self) -> aigw_proto::channel::ClientTls {
        aigw_proto::channel::ClientTls {
            ca_file: self.ca_file.clone(),
            cert_file: self.tls_client_cert.clone(),
            key_file: self.tls_client_key.clone(),
        }
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    const BASE: [&str; 3] = ["data-plane", "--node-token", "t"];

    #[test]
    fn serve_threads_are_bounded() {
        let with =
            |n: &str| Config::try_parse_from(BASE.iter().copied().chain(["--serve-threads", n]));
        assert_eq!(with("4").unwrap().serve_threads, 4);
        assert_eq!(with("0").unwrap().serve_threads, 0);
        let err = with("100000").unwrap_err().to_string();
        assert!(err.contains("--serve-threads"), "{err}");
        assert!(with("-1").is_err());
    }
}
