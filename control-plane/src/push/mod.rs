//! ConfigService.Subscribe: the xDS-style snapshot stream. A node says Hello
//! (with the version it already serves), gets the current snapshot unless it
//! has it, then every new version, each with a fresh nonce; it answers each
//! push with an Ack or a Nack carrying that nonce. Replies to older pushes
//! (stale nonces) are ignored, so a late Ack cannot report a version the node
//! has since replaced.
//!
//! A node that accepts deltas gets each new version as the delta from the
//! version it will hold (the one it said in Hello, then the last one pushed)
//! when that is recent; a delta it refuses is followed by the whole
//! snapshot. Everything sent was encoded once for all nodes.
//!
//! A control plane on a database that never held a configuration holds its
//! empty snapshot back from nodes that serve one (`hold`).

mod history;
pub mod hold;
pub mod publisher;
pub mod registry;

use std::sync::Arc;
use std::time::Duration;

use aigw_proto::pb::config::config_service_server::ConfigService;
use aigw_proto::pb::config::node_message::Kind;
use aigw_proto::pb::config::{Hello, NodeMessage, SnapshotMessage};
use aigw_proto::trace_bounds::clip_str;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use hold::Hold;
pub use publisher::Publisher;
pub use registry::Registry;

use crate::compile::Compiled;
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
        let mut state = NodeState {
            offered: hello.applied_version.clone(),
            base: hello.applied_version.clone(),
            whole_next: !hello.accepts_deltas,
            pending: None,
        };
        let mut shutdown = self.shutdown.clone();
        let mut held = self.publisher.hold().subscribe();
        loop {
            // The empty configuration of a fresh database does not replace
            // the one a node serves (see `hold`). Read before the snapshot:
            // the hold is lifted after the new version is current, so a
            // node let go never gets the empty one it was held from.
            let hold_back = *held.borrow_and_update()
                && !hello.applied_version.is_empty()
                && state.offered == hello.applied_version;
            let current = snapshots.borrow_and_update().clone();
            if current.version() != state.offered && hold_back {
                if self.publisher.hold().first_mention(node) {
                    tracing::error!(node_id = node, serves = %hello.applied_version,
                        version = %current.version(), "{}", Hold::message(node, &hello.applied_version));
                }
                self.registry
                    .held(node, conn, &Hold::message(node, &hello.applied_version));
            } else if current.version() != state.offered {
                let Ok(nonce) = crypto::new_nonce() else {
                    let _ = tx
                        .send(Err(Status::internal("no randomness for a nonce")))
                        .await;
                    return "internal error";
                };
                let (msg, delta) = self.message(&state, &current, nonce.clone()).await;
                let bytes = msg.snapshot.len() + msg.delta.len();
                if tx.send(Ok(msg)).await.is_err() {
                    return "stream closed";
                }
                let kind = if delta { "delta" } else { "whole" };
                metrics::counter!("aigw_snapshot_pushes_total", "kind" => kind).increment(1);
                metrics::counter!("aigw_snapshot_push_bytes_total", "kind" => kind)
                    .increment(bytes as u64);
                tracing::info!(node_id = node, version = %current.version(), from = %state.base,
                    kind, bytes, "pushed snapshot");
                state.offered = current.version().to_string();
                state.base = state.offered.clone();
                state.whole_next = !hello.accepts_deltas;
                state.pending = Some(Pending { nonce, delta });
            }
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() {
                    return "publisher stopped";
                },
                Ok(()) = held.changed() => {}
                msg = inbound.message() => match msg {
                    Ok(Some(m)) => self.on_message(m, node, conn, &mut state),
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

    /// The message taking the node from `state.base` to `current`, and
    /// whether it is a delta. Diffing and encoding happen on the blocking
    /// pool, once per version (or pair of versions) for all nodes.
    async fn message(
        &self,
        state: &NodeState,
        current: &Arc<Compiled>,
        nonce: String,
    ) -> (SnapshotMessage, bool) {
        let publisher = self.publisher.clone();
        let (base, to, whole_only) = (state.base.clone(), current.clone(), state.whole_next);
        let built = tokio::task::spawn_blocking(move || {
            let delta = if whole_only {
                None
            } else {
                publisher.delta(&base, &to)
            };
            match delta {
                Some(d) => (d, true),
                None => (to.whole(), false),
            }
        })
        .await;
        let (bytes, delta) = match built {
            Ok(b) => b,
            // The blocking task cannot fail but by panicking; send whole.
            Err(_) => (current.whole(), false),
        };
        let mut msg = SnapshotMessage {
            nonce,
            ..Default::default()
        };
        if delta {
            msg.delta = bytes;
        } else {
            msg.snapshot = bytes;
        }
        (msg, delta)
    }

    fn on_message(&self, msg: NodeMessage, node: &str, conn: u64, state: &mut NodeState) {
        self.registry.seen(node, conn);
        let pending = |nonce: &str| state.pending.as_ref().filter(|p| p.nonce == nonce);
        match bounded(msg.kind) {
            Some(Kind::Ack(ack)) => {
                if pending(&ack.nonce).is_some() {
                    tracing::info!(node_id = node, version = %ack.version, "snapshot applied");
                    self.registry.acked(node, conn, &ack.version);
                    state.pending = None;
                } else {
                    tracing::debug!(node_id = node, nonce = %ack.nonce, "ignoring ack with stale nonce");
                }
            }
            Some(Kind::Nack(nack)) => {
                let Some(was_delta) = pending(&nack.nonce).map(|p| p.delta) else {
                    tracing::debug!(node_id = node, nonce = %nack.nonce, "ignoring nack with stale nonce");
                    return;
                };
                tracing::warn!(node_id = node, version = %nack.version, kept = %nack.kept_version,
                    error = %nack.error, delta = was_delta, "snapshot refused by data plane");
                self.registry
                    .nacked(node, conn, &nack.kept_version, &nack.error);
                // The node keeps what it had. A refused delta is followed by
                // the whole snapshot at once; a refused whole snapshot waits
                // for the next version (sending it again would fail again).
                state.base = nack.kept_version.clone();
                if was_delta {
                    state.offered = nack.kept_version;
                    state.whole_next = true;
                }
                state.pending = None;
            }
            Some(Kind::Hello(_)) => tracing::debug!(node_id = node, "ignoring repeated hello"),
            None => tracing::debug!(node_id = node, "ignoring empty message"),
        }
    }
}

/// What a session knows of its node.
struct NodeState {
    /// The version last offered (or said in Hello): a new one is pushed
    /// when the current version differs.
    offered: String,
    /// The version the node holds once its pushes apply: deltas start here.
    base: String,
    /// Send the next version whole (the node does not take deltas, or just
    /// refused one).
    whole_next: bool,
    /// The last push, whose reply counts.
    pending: Option<Pending>,
}

struct Pending {
    nonce: String,
    delta: bool,
}

/// Reads the first message, which must be a Hello with a node id. On any
/// other outcome tells the node why (if it still listens) and gives up.
/// Longest version, build and error texts a node's messages keep: they are
/// logged and held in the node registry (which every viewer lists), so a
/// node cannot make either grow with a 16 MiB "version".
const MAX_VERSION: usize = 128;
const MAX_BUILD: usize = 256;
const MAX_NODE_ERROR: usize = 1024;

fn bounded_hello(mut hello: Hello) -> Hello {
    // `node_id` must equal the authenticated one (refused otherwise), and
    // `region` is replaced by it.
    clip_str(&mut hello.applied_version, MAX_VERSION);
    clip_str(&mut hello.build, MAX_BUILD);
    hello
}

fn bounded(kind: Option<Kind>) -> Option<Kind> {
    let mut kind = kind;
    match &mut kind {
        Some(Kind::Ack(ack)) => {
            clip_str(&mut ack.version, MAX_VERSION);
            clip_str(&mut ack.nonce, MAX_VERSION);
        }
        Some(Kind::Nack(nack)) => {
            clip_str(&mut nack.version, MAX_VERSION);
            clip_str(&mut nack.kept_version, MAX_VERSION);
            clip_str(&mut nack.nonce, MAX_VERSION);
            clip_str(&mut nack.error, MAX_NODE_ERROR);
        }
        Some(Kind::Hello(_)) | None => {}
    }
    kind
}

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
                Some(bounded_hello(hello))
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
