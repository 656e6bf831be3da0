//! Keeps the live `Runtime` current: loads the disk copy at start, then
//! follows the control plane's snapshot stream. Each snapshot (whole, or a
//! delta from the one served) is validated and built off to the side,
//! swapped in whole, then ACKed; anything that fails is NACKed and the old
//! runtime keeps serving. The disk copy is written after, debounced
//! (`writer`).

mod disk;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use aigw_proto::delta::InvalidDelta;
use aigw_proto::model::{self, ClientKey, Extras, InvalidSnapshot};
use aigw_proto::pb::config::config_service_client::ConfigServiceClient;
use aigw_proto::pb::config::{Ack, Hello, Nack, NodeMessage, SnapshotDelta, node_message};
use aigw_proto::wire::{self, WireError};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use prost::Message as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::control::{AuthedChannel, Backoff};
use crate::runtime::Runtime;

pub use disk::DiskCache;
pub use writer::{DiskWriter, encode};

pub struct Watcher {
    pub live: Arc<ArcSwapOption<Runtime>>,
    pub disk: Arc<DiskWriter>,
    pub node_id: String,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] model::InvalidSnapshot),
    #[error("{0}")]
    Decode(#[from] WireError<InvalidSnapshot>),
    #[error("the delta does not decode: {0}")]
    DecodeDelta(#[from] prost::DecodeError),
    #[error("invalid delta: {0}")]
    Delta(#[from] InvalidDelta),
    #[error("a delta arrived but this node serves no snapshot yet")]
    NoBase,
    #[error("cannot build runtime: {0}")]
    Build(#[from] crate::runtime::BuildError),
}

/// Reads a whole snapshot, converting each client key as soon as it is
/// decoded: only the validated keys and the small core stay.
pub fn decode_whole(
    bytes: &[u8],
) -> Result<(model::Snapshot, aigw_proto::pb::config::Snapshot), ApplyError> {
    let mut extras = Extras::default();
    let mut keys = Vec::new();
    let core = wire::decode_whole(bytes, |k| {
        keys.push(ClientKey::from_pb(k, &mut extras)?);
        Ok(())
    })?;
    let snapshot = model::Snapshot::try_from(core.clone())?.with_keys(keys)?;
    Ok((snapshot, core))
}

impl Watcher {
    pub fn new(
        live: Arc<ArcSwapOption<Runtime>>,
        cache: DiskCache,
        node_id: String,
        region: String,
    ) -> Self {
        Self {
            live,
            disk: DiskWriter::new(cache),
            node_id,
            region,
        }
    }

    /// Serves the disk copy, if there is a readable one.
    pub fn load_from_disk(&self) {
        let loaded = self
            .disk
            .cache()
            .load()
            .map_err(|e| e.to_string())
            .and_then(|bytes| match bytes {
                Some(b) => self
                    .apply_whole(&b, None)
                    .map(Some)
                    .map_err(|e| e.to_string()),
                None => Ok(None),
            });
        match loaded {
            Ok(Some(v)) => tracing::info!(version = %v, "serving the snapshot kept on disk"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the snapshot kept on disk is unusable"),
        }
    }

    /// Validates, builds and swaps in a whole snapshot; returns its version.
    /// `received` (the bytes as they came) is queued for the disk copy.
    pub fn apply_whole(&self, bytes: &[u8], received: Option<Bytes>) -> Result<String, ApplyError> {
        let (snapshot, core) = decode_whole(bytes)?;
        let previous = self.live.load_full();
        let rt = Runtime::build(snapshot, core, previous.as_deref())?;
        Ok(self.swap(rt, received, "whole"))
    }

    /// Applies a delta to the snapshot served now.
    pub fn apply_delta(&self, bytes: Bytes) -> Result<String, ApplyError> {
        let delta = SnapshotDelta::decode(bytes)?;
        let previous = self.live.load_full().ok_or(ApplyError::NoBase)?;
        let core = delta.core.clone().map(|mut c| {
            c.version = delta.version.clone();
            c
        });
        let snapshot = previous.snapshot.apply_delta(delta)?;
        let rt = match core {
            Some(core) => Runtime::build(snapshot, core, Some(&previous))?,
            None => Runtime::with_new_keys(snapshot, &previous),
        };
        Ok(self.swap(rt, None, "delta"))
    }

    fn swap(&self, rt: Runtime, received: Option<Bytes>, kind: &'static str) -> String {
        let version = rt.version().to_string();
        let keys = rt.snapshot.keys.len();
        let rt = Arc::new(rt);
        self.live.store(Some(rt.clone()));
        metrics::gauge!("aigw_snapshot_loaded").set(1.0);
        metrics::gauge!("aigw_snapshot_client_keys").set(keys as f64);
        metrics::counter!("aigw_snapshot_applied_total", "kind" => kind).increment(1);
        if kind == "delta" {
            metrics::counter!("aigw_snapshot_deltas_total").increment(1);
        }
        self.disk.save(rt, received);
        version
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
                Ok(Ended::ToFreeBuffer) => continue,
                Ok(Ended::ByControlPlane) => {
                    tracing::warn!("snapshot stream closed by the control plane");
                }
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
    ) -> Result<Ended, tonic::Status> {
        let (tx, rx) = tokio::sync::mpsc::channel::<NodeMessage>(4);
        let hello = NodeMessage {
            kind: Some(node_message::Kind::Hello(Hello {
                node_id: self.node_id.clone(),
                region: self.region.clone(),
                applied_version: self.current_version(),
                build: env!("CARGO_PKG_VERSION").to_string(),
                accepts_deltas: true,
            })),
        };
        let _ = tx.send(hello).await;
        let mut client = ConfigServiceClient::new(channel.clone())
            .max_decoding_message_size(model::MAX_SNAPSHOT_MESSAGE);
        let mut inbound = client
            .subscribe(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let _connected = Connected::now();
        while let Some(msg) = inbound.message().await? {
            backoff.reset();
            let started = std::time::Instant::now();
            let bytes = msg.delta.len() + msg.snapshot.len();
            let (offered, applied, kind) = if !msg.delta.is_empty() {
                let offered = offered_version(&msg.delta, 2);
                (offered, self.apply_delta(msg.delta), "delta")
            } else if !msg.snapshot.is_empty() {
                let offered = offered_version(&msg.snapshot, 1);
                let bytes = msg.snapshot;
                // Decoding a large snapshot takes a while: not on a shared
                // async thread (where the runtime has others to hand work to).
                let apply = || self.apply_whole(&bytes, Some(bytes.clone()));
                let applied = match tokio::runtime::Handle::current().runtime_flavor() {
                    tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(apply)
                    }
                    _ => apply(),
                };
                (offered, applied, "whole")
            } else {
                continue;
            };
            let large = bytes >= RESUBSCRIBE_AFTER;
            let applied_large = large && applied.is_ok();
            let reply = match applied {
                Ok(version) => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    tracing::info!(%version, kind, bytes, ms, "applied snapshot");
                    node_message::Kind::Ack(Ack {
                        version,
                        nonce: msg.nonce,
                    })
                }
                Err(e) => {
                    metrics::counter!("aigw_snapshot_rejected_total").increment(1);
                    tracing::error!(version = %offered, kind, error = %e, "rejected snapshot; keeping the previous one");
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
            if applied_large {
                drop(tx);
                drain(&mut inbound).await;
                tracing::debug!(bytes, "resubscribing to free the large message's buffer");
                return Ok(Ended::ToFreeBuffer);
            }
        }
        Ok(Ended::ByControlPlane)
    }
}

/// A message at least this large is followed by a new subscription.
/// tonic's stream keeps a receive buffer as large as the largest message it
/// carried for as long as the stream lives: 8.5 MB after a whole snapshot of
/// 100,000 keys, a third of the data plane's memory. So after applying (and
/// acknowledging) one that large, the node closes its side, lets the control
/// plane finish, and subscribes again at once; its Hello names the version
/// it now serves, so nothing is sent again. Small snapshots (and deltas)
/// keep the stream.
const RESUBSCRIBE_AFTER: usize = 1 << 20;

/// How a session ended without an error.
enum Ended {
    ByControlPlane,
    /// The node ended it after a large snapshot (`RESUBSCRIBE_AFTER`).
    ToFreeBuffer,
}

/// Reads what the control plane still sends after the node closed its side,
/// until the control plane closes too (it has then read the node's last
/// reply), for at most a few seconds. What arrives is not applied: the next
/// subscription's Hello asks for it again.
async fn drain(inbound: &mut tonic::Streaming<aigw_proto::pb::config::SnapshotMessage>) {
    let until_closed = async { while let Ok(Some(_)) = inbound.message().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), until_closed).await;
}

/// The version a message offers (string field `tag` of a Snapshot or a
/// SnapshotDelta), for the NACK of one that does not decode as a whole.
fn offered_version(bytes: &[u8], tag: u32) -> String {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let mut buf = bytes;
    while let Ok((t, wire_type)) = decode_key(&mut buf) {
        if t == tag && wire_type == WireType::LengthDelimited {
            let Ok(len) = decode_varint(&mut buf) else {
                break;
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            return buf
                .get(..len)
                .map(|v| String::from_utf8_lossy(v).chars().take(128).collect())
                .unwrap_or_default();
        }
        if skip_field(wire_type, t, &mut buf, DecodeContext::default()).is_err() {
            break;
        }
    }
    String::new()
}

/// `aigw_control_plane_connected` is 1 while a snapshot stream is open.
struct Connected;

impl Connected {
    fn now() -> Self {
        metrics::gauge!(crate::telemetry::metrics::CONTROL_PLANE_CONNECTED).set(1.0);
        Self
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::gauge!(crate::telemetry::metrics::CONTROL_PLANE_CONNECTED).set(0.0);
    }
}

pub fn cache_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("snapshot.bin")
}

#[cfg(test)]
mod tests;
