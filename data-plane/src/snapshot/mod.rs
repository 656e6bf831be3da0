//! Keeps the live `Runtime` current: loads the disk copy at start, then
//! follows the control plane's snapshot stream. Each snapshot is validated
//! and built off to the side, swapped in whole, written to disk, then ACKed;
//! anything that fails is NACKed and the old runtime keeps serving.

mod disk;

use std::path::PathBuf;
use std::sync::Arc;

use aigw_proto::model;
use aigw_proto::pb::config::config_service_client::ConfigServiceClient;
use aigw_proto::pb::config::{Ack, Hello, Nack, NodeMessage, Snapshot, node_message};
use arc_swap::ArcSwapOption;
use tokio_stream::wrappers::ReceiverStream;

use crate::control::{AuthedChannel, Backoff};
use crate::runtime::Runtime;

pub use disk::DiskCache;

pub struct Watcher {
    pub live: Arc<ArcSwapOption<Runtime>>,
    pub cache: DiskCache,
    pub node_id: String,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] model::InvalidSnapshot),
    #[error("cannot build runtime: {0}")]
    Build(#[from] crate::runtime::BuildError),
}

impl Watcher {
    /// Serves the disk copy, if there is a readable one.
    pub fn load_from_disk(&self) {
        match self.cache.load() {
            Ok(Some(pb)) => match self.apply(pb, false) {
                Ok(v) => tracing::info!(version = %v, "serving the snapshot kept on disk"),
                Err(e) => tracing::warn!(error = %e, "the snapshot kept on disk is unusable"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the snapshot kept on disk"),
        }
    }

    /// Validates, builds and swaps in one snapshot; returns its version.
    pub fn apply(&self, pb: Snapshot, persist: bool) -> Result<String, ApplyError> {
        let encoded = persist.then(|| prost::Message::encode_to_vec(&pb));
        let snap = model::Snapshot::try_from(pb)?;
        let previous = self.live.load_full();
        let rt = Runtime::build(snap, previous.as_deref())?;
        let version = rt.version().to_string();
        self.live.store(Some(Arc::new(rt)));
        metrics::gauge!("aigw_snapshot_loaded").set(1.0);
        if let Some(bytes) = encoded
            && let Err(e) = self.cache.store(&bytes)
        {
            // Serving matters more than the disk copy; say so loudly.
            tracing::error!(error = %e, "cannot write the snapshot copy to disk");
        }
        Ok(version)
    }

    fn current_version(&self) -> String {
        self.live
            .load()
            .as_ref()
            .map(|r| r.version().to_string())
            .unwrap_or_default()
    }

    /// Follows the control plane forever, reconnecting with backoff.
    pub async fn run(self: Arc<Self>, channel: AuthedChannel) {
        let mut backoff = Backoff::default();
        loop {
            match self.session(&channel, &mut backoff).await {
                Ok(()) => tracing::warn!("snapshot stream closed by the control plane"),
                Err(status) => {
                    let level_error = status.code() == tonic::Code::Unauthenticated;
                    if level_error {
                        tracing::error!(error = %status.message(), "the control plane refused this node's token");
                    } else {
                        tracing::warn!(error = %status.message(), "snapshot stream unavailable; serving the last snapshot");
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn session(
        &self,
        channel: &AuthedChannel,
        backoff: &mut Backoff,
    ) -> Result<(), tonic::Status> {
        let (tx, rx) = tokio::sync::mpsc::channel::<NodeMessage>(4);
        let hello = NodeMessage {
            kind: Some(node_message::Kind::Hello(Hello {
                node_id: self.node_id.clone(),
                region: self.region.clone(),
                applied_version: self.current_version(),
                build: env!("CARGO_PKG_VERSION").to_string(),
            })),
        };
        let _ = tx.send(hello).await;
        let mut client = ConfigServiceClient::new(channel.clone())
            .max_decoding_message_size(model::MAX_SNAPSHOT_MESSAGE);
        let mut inbound = client
            .subscribe(ReceiverStream::new(rx))
            .await?
            .into_inner();
        while let Some(msg) = inbound.message().await? {
            backoff.reset();
            let Some(snapshot) = msg.snapshot else {
                continue;
            };
            let offered = snapshot.version.clone();
            let reply = match self.apply(snapshot, true) {
                Ok(version) => {
                    tracing::info!(%version, "applied snapshot");
                    node_message::Kind::Ack(Ack {
                        version,
                        nonce: msg.nonce,
                    })
                }
                Err(e) => {
                    metrics::counter!("aigw_snapshot_rejected_total").increment(1);
                    tracing::error!(version = %offered, error = %e, "rejected snapshot; keeping the previous one");
                    node_message::Kind::Nack(Nack {
                        version: offered,
                        nonce: msg.nonce,
                        error: e.to_string(),
                        kept_version: self.current_version(),
                    })
                }
            };
            if tx.send(NodeMessage { kind: Some(reply) }).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

pub fn cache_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("snapshot.bin")
}
