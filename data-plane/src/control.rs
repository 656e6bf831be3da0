//! The gRPC channel to the control plane, shared by the snapshot watch and the
//! trace shipper. Both present the node token on every call.

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("invalid control plane URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("node token is not a valid header value")]
    BadToken,
}

pub fn endpoint(url: &str) -> Result<Endpoint, ControlError> {
    let bad = |reason: String| ControlError::BadUrl {
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
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok(ep)
}

/// Adds `authorization: Bearer NODE_TOKEN` to every call.
#[derive(Clone)]
pub struct NodeAuth(MetadataValue<Ascii>);

impl NodeAuth {
    pub fn new(token: &str) -> Result<Self, ControlError> {
        let mut v: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| ControlError::BadToken)?;
        v.set_sensitive(true);
        Ok(Self(v))
    }
}

impl Interceptor for NodeAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub type AuthedChannel = tonic::service::interceptor::InterceptedService<Channel, NodeAuth>;

/// Reconnect delay: doubles from 200 ms up to 5 s.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(200),
        }
    }
}

impl Backoff {
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(200);
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        d
    }
}
