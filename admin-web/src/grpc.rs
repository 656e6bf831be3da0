//! The channel to the control plane: plaintext for http://, TLS for
//! https:// (roots from AIGW_CA_FILE or the public web roots, a client
//! certificate for mTLS when given). Connected lazily, so admin-web starts
//! (and shows the control plane as unreachable) while the control plane is
//! down, and reconnects by itself.

use std::time::Duration;

use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::config_file_service_client::ConfigFileServiceClient;
use aigw_proto::pb::admin::identity_service_client::IdentityServiceClient;
use aigw_proto::pb::admin::insight_service_client::InsightServiceClient;
use aigw_proto::pb::admin::overview_service_client::OverviewServiceClient;
use aigw_proto::pb::admin::sign_in_service_client::SignInServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::Config;

/// Largest answer accepted from the control plane (long lists).
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("AIGW_CONTROL_PLANE {url:?} is not usable: {why}")]
    Url { url: String, why: String },
    #[error("cannot read {what} {path}: {err}")]
    Read {
        what: &'static str,
        path: String,
        err: std::io::Error,
    },
    #[error("AIGW_CA_FILE and AIGW_TLS_CLIENT_CERT/KEY need an https:// AIGW_CONTROL_PLANE")]
    TlsWithoutHttps,
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|err| SetupError::Read {
        what,
        path: path.display().to_string(),
        err,
    })
}

/// The TLS settings for `cfg`, None for plaintext.
pub fn tls_config(cfg: &Config) -> Result<Option<ClientTlsConfig>, SetupError> {
    let https = cfg.control_plane.starts_with("https://");
    if !https {
        if cfg.ca_file.is_some() || cfg.tls_client_cert.is_some() {
            return Err(SetupError::TlsWithoutHttps);
        }
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new();
    tls = match &cfg.ca_file {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read("AIGW_CA_FILE", path)?)),
        None => tls.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&cfg.tls_client_cert, &cfg.tls_client_key) {
        tls = tls.identity(Identity::from_pem(
            read("AIGW_TLS_CLIENT_CERT", cert)?,
            read("AIGW_TLS_CLIENT_KEY", key)?,
        ));
    }
    Ok(Some(tls))
}

#[derive(Clone)]
pub struct Grpc {
    channel: Channel,
}

impl Grpc {
    pub fn new(cfg: &Config) -> Result<Self, SetupError> {
        let bad = |why: String| SetupError::Url {
            url: cfg.control_plane.clone(),
            why,
        };
        let mut endpoint = Endpoint::from_shared(cfg.control_plane.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = tls_config(cfg)? {
            endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
        }
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn insight(&self) -> InsightServiceClient<Channel> {
        InsightServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn overview(&self) -> OverviewServiceClient<Channel> {
        OverviewServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn config_file(&self) -> ConfigFileServiceClient<Channel> {
        ConfigFileServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn sign_in(&self) -> SignInServiceClient<Channel> {
        SignInServiceClient::new(self.channel.clone())
    }
}
