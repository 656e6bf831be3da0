//! How a data plane, admin-web and `apply` reach the control plane: one
//! endpoint builder, so all three speak TLS (and mTLS) the same way.
//!
//! With an `https://` URL the control plane's certificate is checked
//! against `AIGW_CA_FILE` (or the usual public roots when it is unset), and
//! `AIGW_TLS_CLIENT_CERT` + `AIGW_TLS_CLIENT_KEY` are presented when the
//! control plane asks for a client certificate. TLS files given with an
//! `http://` URL are refused: that mistake would send secrets in clear.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The TLS files a client of the control plane may be given.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM roots that sign the control plane's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) and key presented for mTLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("invalid control plane URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("AIGW_TLS_CLIENT_CERT and AIGW_TLS_CLIENT_KEY go together: set both or neither")]
    HalfIdentity,
    #[error(
        "TLS files are set but the control plane URL {0:?} is not https://: use https:// so nothing travels in clear"
    )]
    PlaintextWithTls(String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

fn read(path: &Path) -> Result<Vec<u8>, ChannelError> {
    std::fs::read(path).map_err(|error| ChannelError::Read {
        path: path.display().to_string(),
        error,
    })
}

impl ClientTls {
    fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// The rustls-backed TLS settings for an `https://` control plane.
    fn config(&self) -> Result<ClientTlsConfig, ChannelError> {
        let mut cfg = ClientTlsConfig::new();
        cfg = match &self.ca_file {
            Some(ca) => cfg.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => cfg.with_webpki_roots(),
        };
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Ok(cfg.identity(Identity::from_pem(read(c)?, read(k)?))),
            (None, None) => Ok(cfg),
            _ => Err(ChannelError::HalfIdentity),
        }
    }
}

/// An endpoint for `url` with the planes' timeouts and keep-alives.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, ChannelError> {
    let bad = |reason: String| ChannelError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let mut ep = Endpoint::from_shared(url.to_string())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        ep = ep
            .tls_config(tls.config()?)
            .map_err(|e| ChannelError::Tls(e.to_string()))?;
    } else if tls.is_set() {
        return Err(ChannelError::PlaintextWithTls(url.to_string()));
    }
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_with_tls_files_is_refused() {
        let tls = ClientTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = endpoint("http://127.0.0.1:50051", &tls).unwrap_err();
        assert!(matches!(e, ChannelError::PlaintextWithTls(_)), "{e}");
        let e = endpoint("https://127.0.0.1:50051", &tls).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(endpoint("http://127.0.0.1:50051", &ClientTls::default()).is_ok());
        let half = ClientTls {
            cert_file: Some("x".into()),
            ..Default::default()
        };
        assert!(endpoint("https://localhost:1", &half).is_err());
    }
}
