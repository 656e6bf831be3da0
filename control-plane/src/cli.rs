//! Command line: every setting is a flag and an environment variable, shown
//! in `--help`. `serve` is the default, so `control-plane` alone (with its
//! environment) runs the server, as docker-compose does. No `Debug` derives:
//! these structs hold the master key and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::admin::authn::check_password_policy;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::server::{ServerTls, Settings};

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "AIGW control plane: owns the database, pushes config snapshots to data planes, \
             stores their traces and serves the gRPC Admin API",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve(ServeArgs),
    /// Upsert the providers, pricing, client keys and routes of a YAML file through the Admin API.
    Apply(ApplyArgs),
}

#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Database: sqlite://PATH (its directory is created) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/aigw.db")]
    pub database_url: String,

    /// gRPC listen address (ConfigService, TraceService, AdminService, health, reflection); port 0 picks one.
    #[arg(long, env = "AIGW_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,

    /// Bootstrap automation token for the Admin API (sent as `authorization: Bearer TOKEN`).
    /// If unset, one is generated at first start and printed once as `admin token: TOKEN`.
    #[arg(long, env = "AIGW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Key that encrypts upstream secrets at rest: 64 hex characters (`openssl rand -hex 32`). Required.
    #[arg(long, env = "AIGW_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// Shared join credential data planes may present (`authorization: Bearer TOKEN`);
    /// they are then taken to be the node id and region they say. Unset, only node
    /// credentials issued through the Admin API (each bound to one node) are accepted.
    #[arg(long, env = "AIGW_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,

    /// PEM certificate (chain) of the gRPC server; with AIGW_TLS_KEY, gRPC is served over TLS only.
    #[arg(long, env = "AIGW_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of AIGW_TLS_CERT.
    #[arg(long, env = "AIGW_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM roots: when set (with TLS), every client must present a certificate they signed (mTLS).
    #[arg(long, env = "AIGW_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Earlier master keys (comma-separated, 64 hex characters each), to rotate
    /// AIGW_MASTER_KEY: secrets sealed under one of these are re-sealed under the
    /// current key at start. Remove them once the control plane has started.
    #[arg(
        long,
        env = "AIGW_MASTER_KEY_PREVIOUS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub master_key_previous: Vec<String>,

    /// PEM file of extra roots trusted for upstream providers and OAuth servers, for the
    /// health checks and token refreshes the control plane makes itself.
    #[arg(long, env = "AIGW_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,

    /// Addresses of proxies (admin-web) whose `x-aigw-client-ip` is believed by the
    /// login throttle (comma-separated IPs); others are throttled by their own address.
    #[arg(long, env = "AIGW_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Address of a plain HTTP listener serving Prometheus metrics at `/metrics`
    /// (e.g. 0.0.0.0:9464 to be scraped from elsewhere); `off` opens none. The
    /// default, on loopback only, is skipped with a warning when its port is taken.
    #[arg(long, env = "AIGW_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN, value_parser = metrics_listen)]
    pub metrics_listen: MetricsListen,

    /// Delete traces older than this many days (in bounded batches, every few minutes);
    /// 0 keeps them forever. Budgets' and usage counters are not affected.
    #[arg(long, env = "AIGW_TRACE_RETENTION_DAYS", default_value_t = 0)]
    pub trace_retention_days: u32,

    /// Password of the first user, `admin`, set at first start (when there are no users yet).
    /// If unset then, one is generated and printed once as `admin password: PASSWORD`.
    #[arg(long, env = "AIGW_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
}

impl ServeArgs {
    /// Checks the required settings, with messages naming the variable.
    pub fn settings(self) -> Result<(Settings, SocketAddr)> {
        let master = self
            .master_key
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| Error::Settings("AIGW_MASTER_KEY (--master-key) is required: 64 hex characters, e.g. from `openssl rand -hex 32`".into()))?;
        let node_token = self
            .node_token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let previous = self
            .master_key_previous
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|k| {
                MasterKey::from_hex(k).map_err(|_| {
                    Error::Settings(
                        "AIGW_MASTER_KEY_PREVIOUS: each key must be 64 hex characters".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            _ => None,
        };
        let admin_password = self.admin_password.filter(|p| !p.is_empty());
        if let Some(p) = &admin_password {
            check_password_policy(p)
                .map_err(|e| Error::Settings(format!("AIGW_ADMIN_PASSWORD: {e}")))?;
        }
        Ok((
            Settings {
                database_url: self.database_url,
                master_key: MasterKey::from_hex(&master)?,
                node_token,
                previous_master_keys: previous,
                tls,
                trusted_proxies: self.trusted_proxies,
                upstream_ca_file: self.upstream_ca_file,
                trace_retention: (self.trace_retention_days > 0).then(|| {
                    std::time::Duration::from_secs(u64::from(self.trace_retention_days) * 86_400)
                }),
                admin_token: self
                    .admin_token
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
                admin_password,
            },
            self.grpc_addr,
        ))
    }
}

#[derive(Clone, Args)]
pub struct ApplyArgs {
    /// YAML file with `providers`, `pricing`, `client_keys` and `routes`; `${VAR}` is taken from the environment.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,

    /// Also delete providers, prices, client keys and routes that the file does not name.
    #[arg(long)]
    pub prune: bool,

    /// Control-plane gRPC URL.
    #[arg(
        long,
        env = "AIGW_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane: String,

    /// Admin API token.
    #[arg(long, env = "AIGW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// PEM roots that sign the control plane's certificate (https:// URL).
    #[arg(long, env = "AIGW_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate presented to the control plane (mTLS).
    #[arg(long, env = "AIGW_TLS_CLIENT_CERT", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,

    /// PEM key of AIGW_TLS_CLIENT_CERT.
    #[arg(long, env = "AIGW_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

impl ApplyArgs {
    pub fn tls(&self) -> aigw_proto::channel::ClientTls {
        aigw_proto::channel::ClientTls {
            ca_file: self.ca_file.clone(),
            cert_file: self.tls_client_cert.clone(),
            key_file: self.tls_client_key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_serve_is_default() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["control-plane", "--grpc-addr", "127.0.0.1:0"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.serve.grpc_addr.port(), 0);
        let c = Cli::try_parse_from(["control-plane", "apply", "-f", "x.yaml", "--prune"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Apply(ApplyArgs { prune: true, .. }))
        ));
        let c = Cli::try_parse_from(["control-plane", "serve", "--database-url", "sqlite://x.db"])
            .unwrap();
        assert!(matches!(c.command, Some(Command::Serve(_))));
    }

    #[test]
    fn metrics_are_on_loopback_unless_set_or_off() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["control-plane"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| c.serve.metrics_listen)
        };
        assert_eq!(
            parse(&[]).unwrap(),
            MetricsListen(Some("127.0.0.1:9464".parse().unwrap()))
        );
        assert_eq!(
            parse(&["--metrics-listen", "off"]).unwrap(),
            MetricsListen(None)
        );
        assert_eq!(
            parse(&["--metrics-listen", "0.0.0.0:1"]).unwrap(),
            MetricsListen(Some("0.0.0.0:1".parse().unwrap()))
        );
        assert!(parse(&["--metrics-listen", "nine"]).is_err());
    }

    #[test]
    fn required_settings_have_clear_errors() {
        let args = |m: Option<&str>, n: Option<&str>| ServeArgs {
            database_url: "sqlite://x".into(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            admin_token: None,
            master_key: m.map(String::from),
            node_token: n.map(String::from),
            admin_password: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            master_key_previous: vec![],
            trusted_proxies: vec![],
            metrics_listen: MetricsListen(None),
            upstream_ca_file: None,
            trace_retention_days: 0,
        };
        let e = args(None, Some("n")).settings().err().unwrap().to_string();
        assert!(e.contains("AIGW_MASTER_KEY"), "{e}");
        let e = args(Some("abc"), Some("n"))
            .settings()
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AIGW_MASTER_KEY"), "{e}");
        // Without a join token only issued node credentials are accepted.
        let (s, _) = args(Some(&"ab".repeat(32)), None).settings().unwrap();
        assert!(s.node_token.is_none());
        assert!(args(Some(&"ab".repeat(32)), Some("n")).settings().is_ok());
        let bad_previous = ServeArgs {
            master_key_previous: vec!["xyz".into()],
            ..args(Some(&"ab".repeat(32)), Some("n"))
        };
        let e = bad_previous.settings().err().unwrap().to_string();
        assert!(e.contains("AIGW_MASTER_KEY_PREVIOUS"), "{e}");
        let short = ServeArgs {
            admin_password: Some("short".into()),
            ..args(Some(&"ab".repeat(32)), Some("n"))
        };
        let e = short.settings().err().unwrap().to_string();
        assert!(e.contains("AIGW_ADMIN_PASSWORD"), "{e}");
    }
}

/// Where the control plane's metrics are served unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// `AIGW_METRICS_LISTEN`: where metrics are served, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

/// An address, or `off` for none.
fn metrics_listen(v: &str) -> Result<MetricsListen, String> {
    match v.trim() {
        "" | "off" | "none" => Ok(MetricsListen(None)),
        a => a
            .parse()
            .map(|a| MetricsListen(Some(a)))
            .map_err(|e| format!("{a:?} is not an address (or `off`): {e}")),
    }
}
