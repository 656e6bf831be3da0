//! ConfigService.Subscribe: the xDS-style snapshot stream. A node says Hello
//! (with the version it already serves), gets the current snapshot unless it
//! has it, then every new version, each with a fresh nonce; it answers each
//! push with an Ack or a Nack carrying that nonce. Replies to older pushes
//! (stale nonces) are ignored, so a late Ack cannot report a version the node
//! has since replaced.

pub mod publisher;
pub mod registry;

use std::time::Duration;

use aigw_proto::pb::config::config_service_server::ConfigService;
use aigw_proto::pb::config::node_message::Kind;
use aigw_proto::pb::config::{Hello, NodeMessage, SnapshotMessage};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use publisher::Publisher;
pub use registry::Registry;

use crate::crypto;
use crate::node_auth::{NodeAuth, NodeIdentity, Revocation};

/// How long a new stream may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ConfigSvc {
    pub nodes: NodeAuth,
    pub publisher: Publisher,
    pub registry: Registry,
    /// Flips to true on shutdown; streams end so the server can drain.
    pub shutdown: watch::Receiver<bool>,
}

type Outbound = mpsc::Sender<Result<SnapshotMessage, Status>>;

#[tonic::async_trait]
impl ConfigService for ConfigSvc {
    type SubscribeStream = ReceiverStream<Result<SnapshotMessage, Status>>;

    async fn subscribe(
        &self,
        request: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (identity, revocation) = self.nodes.authenticate(request.metadata()).await?;
        let (tx, rx) = mpsc::channel(4);
        // The response is returned at once and Hello awaited in the task, so
        // a client that waits for response headers before sending works too.
        let session = Session {
            publisher: self.publisher.clone(),
            registry: self.registry.clone(),
            shutdown: self.shutdown.clone(),
            identity,
            revocation,
        };
        tokio::spawn(session.run(request.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Session {
    publisher: Publisher,
    registry: Registry,
    shutdown: watch::Receiver<bool>,
    /// Who the node authenticated as: its Hello must say the same.
    identity: NodeIdentity,
    revocation: Revocation,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<NodeMessage>, tx: Outbound) {
        let Some(mut hello) = wait_for_hello(&mut inbound, &tx).await else {
            return;
        };
        if hello.node_id != self.identity.node_id {
            let _ = tx
                .send(Err(Status::permission_denied(format!(
                    "Hello.node_id {:?} is not the node this credential is for ({:?})",
                    hello.node_id, self.identity.node_id
                ))))
                .await;
            return;
        }
        // The region recorded is the authenticated one.
        hello.region = self.identity.region.clone();
        let node = hello.node_id.clone();
        let conn = self
            .registry
            .connect(&node, &hello.region, &hello.applied_version);
        tracing::info!(node_id = %node, region = %hello.region, applied = %hello.applied_version,
            build = %hello.build, own_credential = self.identity.credential.is_some(),
            "data plane connected");
        let reason = self.serve(&mut inbound, &tx, &hello, conn).await;
        self.registry.disconnect(&node, conn);
        tracing::info!(node_id = %node, reason, "data plane disconnected");
    }

    /// Pushes and reads replies until the stream ends; returns why it ended.
    async fn serve(
        &mut self,
        inbound: &mut Streaming<NodeMessage>,
        tx: &Outbound,
        hello: &Hello,
        conn: u64,
    ) -> &'static str {
        let node = hello.node_id.as_str();
        let mut snapshots = self.publisher.subscribe();
        // The version the node has, or was last sent; we push when it differs.
        let mut sent_version = hello.applied_version.clone();
        let mut pending_nonce: Option<String> = None;
        let mut shutdown = self.shutdown.clone();
        loop {
            let current = snapshots.borrow_and_update().clone();
            if current.version != sent_version {
                let nonce = match crypto::new_nonce() {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return "internal error";
                    }
                };
                let msg = SnapshotMessage {
                    nonce: nonce.clone(),
                    snapshot: Some((*current).clone()),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return "stream closed";
                }
                tracing::debug!(node_id = node, version = %current.version, "pushed snapshot");
                sent_version = current.version.clone();
                pending_nonce = Some(nonce);
            }
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() {
                    return "publisher stopped";
                },
                msg = inbound.message() => match msg {
                    Ok(Some(m)) => self.on_message(m, node, conn, &mut pending_nonce),
                    Ok(None) => return "closed by node",
                    Err(_) => return "stream error",
                },
                () = async { let _ = shutdown.wait_for(|down| *down).await; } => return "shutting down",
                _ = tx.closed() => return "stream closed",
                () = self.revocation.wait() => {
                    let _ = tx.send(Err(Status::unauthenticated("node credential revoked"))).await;
                    return "credential revoked";
                }
            }
        }
    }

    fn on_message(&self, msg: NodeMessage, node: &str, conn: u64, pending: &mut Option<String>) {
        self.registry.seen(node, conn);
        match msg.kind {
            Some(Kind::Ack(ack)) => {
                if pending.as_deref() == Some(ack.nonce.as_str()) {
                    tracing::info!(node_id = node, version = %ack.version, "snapshot applied");
                    self.registry.acked(node, conn, &ack.version);
                    *pending = None;
                } else {
                    tracing::debug!(node_id = node, nonce = %ack.nonce, "ignoring ack with stale nonce");
                }
            }
            Some(Kind::Nack(nack)) => {
                if pending.as_deref() == Some(nack.nonce.as_str()) {
                    tracing::warn!(node_id = node, version = %nack.version, kept = %nack.kept_version,
                        error = %nack.error, "snapshot refused by data plane");
                    self.registry
                        .nacked(node, conn, &nack.kept_version, &nack.error);
                    *pending = None;
                } else {
                    tracing::debug!(node_id = node, nonce = %nack.nonce, "ignoring nack with stale nonce");
                }
            }
            Some(Kind::Hello(_)) => tracing::debug!(node_id = node, "ignoring repeated hello"),
            None => tracing::debug!(node_id = node, "ignoring empty message"),
        }
    }
}

/// Reads the first message, which must be a Hello with a node id. On any
/// other outcome tells the node why (if it still listens) and gives up.
async fn wait_for_hello(inbound: &mut Streaming<NodeMessage>, tx: &Outbound) -> Option<Hello> {
    let refuse = |status: Status| async move {
        let _ = tx.send(Err(status)).await;
        None
    };
    match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
        Ok(Ok(Some(NodeMessage {
            kind: Some(Kind::Hello(hello)),
        }))) => {
            if hello.node_id.trim().is_empty() {
                refuse(Status::invalid_argument("Hello.node_id must not be empty")).await
            } else {
                Some(hello)
            }
        }
        Ok(Ok(Some(_))) => {
            refuse(Status::invalid_argument("the first message must be Hello")).await
        }
        Ok(Ok(None)) => None,
        Ok(Err(status)) => {
            tracing::debug!(%status, "subscribe stream failed before hello");
            None
        }
        Err(_) => refuse(Status::deadline_exceeded("no Hello received within 10 s")).await,
    }
}
