//! The channel to the control plane: plaintext for http://, TLS for
//! https:// (roots from AIGW_CA_FILE or the public web roots, a client
//! certificate for mTLS when given). Connected lazily, so admin-web starts
//! (and answers that the control plane is unreachable) while the control
//! plane is down, and reconnects by itself.

use aigw_proto::channel::{ChannelError, ClientTls, endpoint};
use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::config_file_service_client::ConfigFileServiceClient;
use aigw_proto::pb::admin::identity_service_client::IdentityServiceClient;
use aigw_proto::pb::admin::insight_service_client::InsightServiceClient;
use aigw_proto::pb::admin::overview_service_client::OverviewServiceClient;
use aigw_proto::pb::admin::sign_in_service_client::SignInServiceClient;
use tonic::transport::Channel;

use crate::config::Config;

/// Largest answer accepted from the control plane (long lists).
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

#[derive(Clone)]
pub struct Grpc {
    channel: Channel,
}

impl Grpc {
    /// The channel every client of the control plane uses
    /// (`aigw_proto::channel`): TLS files are read now, so a mistake stops
    /// the start, not the first call.
    pub fn new(cfg: &Config) -> Result<Self, ChannelError> {
        let tls = ClientTls {
            ca_file: cfg.ca_file.clone(),
            cert_file: cfg.tls_client_cert.clone(),
            key_file: cfg.tls_client_key.clone(),
        };
        Ok(Self {
            channel: endpoint(&cfg.control_plane, &tls)?.connect_lazy(),
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
