//! The gRPC channel to the control plane, shared by the snapshot watch and the
//! trace shipper. Both present the node token on every call.

use std::time::Duration;

use aigw_proto::channel::ClientTls;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Channel(#[from] aigw_proto::channel::ChannelError),
    #[error("node token, node id or region is not a valid header value")]
    BadToken,
}

/// The control plane's endpoint, over TLS when its URL is `https://`.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, ControlError> {
    Ok(aigw_proto::channel::endpoint(url, tls)?)
}

/// Adds `authorization: Bearer NODE_TOKEN` to every call, and the node id
/// and region this node says it is (a credential issued for one node binds
/// them; the shared join token takes them as said).
#[derive(Clone)]
pub struct NodeAuth {
    token: MetadataValue<Ascii>,
    node_id: MetadataValue<Ascii>,
    region: MetadataValue<Ascii>,
}

impl NodeAuth {
    pub fn new(token: &str, node_id: &str, region: &str) -> Result<Self, ControlError> {
        let mut token: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| ControlError::BadToken)?;
        token.set_sensitive(true);
        Ok(Self {
            token,
            node_id: node_id.parse().map_err(|_| ControlError::BadToken)?,
            region: region.parse().map_err(|_| ControlError::BadToken)?,
        })
    }
}

impl Interceptor for NodeAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let m = req.metadata_mut();
        m.insert("authorization", self.token.clone());
        m.insert(aigw_proto::NODE_ID_HEADER, self.node_id.clone());
        m.insert(aigw_proto::REGION_HEADER, self.region.clone());
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
