//! Command line: every setting is a flag and an environment variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "admin-web",
    version,
    about = "Admin UI and its JSON API (/api, described at /api/openapi.json): a gateway from \
             browser sessions to the control plane's Admin API"
)]
pub struct Config {
    /// Address the admin UI and `/api` listen on; port 0 picks one.
    #[arg(long, env = "AIGW_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// gRPC URL of the control plane; https:// uses TLS.
    #[arg(
        long,
        env = "AIGW_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane: String,
    /// PEM roots that verify the control plane's certificate (https:// only;
    /// without it the public web roots are used).
    #[arg(long, env = "AIGW_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate presented to the control plane (mTLS); needs
    /// --tls-client-key.
    #[arg(long, env = "AIGW_TLS_CLIENT_CERT", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert.
    #[arg(long, env = "AIGW_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
    /// Always make admin-web's cookies `Secure` (and `__Host-` named).
    /// Without it they are so when the request arrived over HTTPS at a
    /// proxy (`X-Forwarded-Proto: https`).
    #[arg(long, env = "AIGW_ADMIN_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Reverse proxies in front of admin-web (comma-separated IPs) whose
    /// `X-Forwarded-For` is believed for the browser's address, which the
    /// control plane's login throttle counts failures by; others are taken
    /// at their own address. None by default: the TCP peer is the browser.
    #[arg(long, env = "AIGW_ADMIN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Config::command().debug_assert();
        let c = Config::try_parse_from(["admin-web", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(c.listen.port(), 0);
        assert!(Config::try_parse_from(["admin-web", "--tls-client-cert", "c.pem"]).is_err());
        assert!(c.trusted_proxies.is_empty());
        let c = Config::try_parse_from(["admin-web", "--trusted-proxies", "10.0.0.1,::1"]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(Config::try_parse_from(["admin-web", "--trusted-proxies", "proxy.local"]).is_err());
    }
}
