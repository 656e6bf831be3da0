//! admin-web: the browser-facing gateway to the control plane's Admin API and
//! the admin UI. It holds no business logic. Until the UI lands it serves a
//! placeholder page that says where things are.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use clap::Parser;

mod metrics;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "admin-web",
    version,
    about = "Admin UI and its gateway to the control plane's Admin API"
)]
struct Config {
    /// Address the admin UI and `/api` listen on.
    #[arg(long, env = "AIGW_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,
    /// gRPC URL of the control plane.
    #[arg(
        long,
        env = "AIGW_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051"
    )]
    control_plane: String,
    /// PEM roots that sign the control plane's certificate (https:// URL).
    #[arg(long, env = "AIGW_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate presented to the control plane (mTLS).
    #[arg(long, env = "AIGW_TLS_CLIENT_CERT", requires = "tls_client_key")]
    tls_client_cert: Option<std::path::PathBuf>,
    /// PEM key of AIGW_TLS_CLIENT_CERT.
    #[arg(long, env = "AIGW_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    tls_client_key: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The control plane is reached the way the other clients reach it (TLS
    // files checked now, so a mistake stops the start, not the first call).
    let tls = aigw_proto::channel::ClientTls {
        ca_file: cfg.ca_file.clone(),
        cert_file: cfg.tls_client_cert.clone(),
        key_file: cfg.tls_client_key.clone(),
    };
    let _channel = aigw_proto::channel::endpoint(&cfg.control_plane, &tls)?.connect_lazy();
    let prometheus = metrics::install();
    let app = Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(cfg.control_plane.clone())
        .route(
            "/metrics",
            get(move || std::future::ready(metrics::render(prometheus.as_ref()))),
        )
        .layer(axum::middleware::from_fn(metrics::track));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "admin-web listening on {addr}")?;
        out.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn index(State(control_plane): State<String>) -> Html<String> {
    let cp = html_escape(&control_plane);
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>AI Gateway admin</title></head>\
         <body style=\"font-family:system-ui;max-width:40em;margin:3em auto\">\
         <h1>AI Gateway</h1><p>The admin UI is not built yet. Manage the gateway with \
         <code>control-plane apply -f FILE</code> or any gRPC client against the Admin API at \
         <code>{cp}</code> (reflection is on).</p></body></html>"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
