//! Who a data plane is. Every ConfigService and TraceService call carries a
//! bearer token and says which node and region it runs as
//! (`x-aigw-node-id`, `x-aigw-region`). Two kinds of token are accepted:
//!
//! - a **node credential** issued through the Admin API: it binds one node
//!   id and region, so what the control plane records for that node (its
//!   snapshot ACKs, its traces' node and region) is authenticated; a call
//!   claiming another id is refused. Revoking it ends the node's open
//!   streams within a second.
//! - the shared **join token** (`AIGW_NODE_TOKEN`, optional): the node's
//!   id and region are taken as said, except that an id bound to a node
//!   credential cannot be claimed with it.

use std::sync::Arc;

use tokio::sync::broadcast;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::auth::bearer;
use crate::crypto;
use crate::db::{Db, nodes};
use crate::push::Registry;

/// Longest node id or region accepted.
pub const MAX_NODE_NAME: usize = 128;

#[derive(Clone)]
pub struct NodeAuth {
    db: Db,
    /// SHA-256 of the join token, if one is configured.
    join: Arc<[[u8; 32]]>,
    /// Where revocations are announced (`Registry::revoke_credential`).
    registry: Registry,
}

/// An authenticated data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: String,
    pub region: String,
    /// The node credential's id; None for the join token.
    pub credential: Option<String>,
}

/// Resolves when the identity's credential is revoked (never for the join
/// token). Made at authentication, so no revocation after it is missed.
pub struct Revocation {
    rx: Option<broadcast::Receiver<String>>,
    credential: Option<String>,
    db: Db,
}

impl Revocation {
    pub async fn wait(&mut self) {
        let (Some(rx), Some(id)) = (&mut self.rx, &self.credential) else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Ok(revoked) if &revoked == id => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: ask the database instead.
                    let id = id.clone();
                    let gone = self
                        .db
                        .run(move |c| {
                            Ok(nodes::find_by_id(c, &id)?.is_none_or(|r| r.revoked_at_ms != 0))
                        })
                        .await
                        .unwrap_or(false);
                    if gone {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// Node ids and regions: short, and only what is safe in logs and labels.
pub fn check_name(what: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= MAX_NODE_NAME
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be 1 to {MAX_NODE_NAME} letters, digits or `._-`"
        ))
    }
}

fn header<'a>(meta: &'a MetadataMap, name: &str) -> Option<&'a str> {
    meta.get(name)?.to_str().ok().map(str::trim)
}

impl NodeAuth {
    pub fn new(db: Db, join_token: Option<&str>, registry: Registry) -> Self {
        Self {
            db,
            join: join_token.map(crypto::sha256).into_iter().collect(),
            registry,
        }
    }

    /// Who is calling, and a way to learn when that stops being true.
    pub async fn authenticate(
        &self,
        meta: &MetadataMap,
    ) -> Result<(NodeIdentity, Revocation), Status> {
        let token = bearer(meta)
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer token"))?;
        let hash = crypto::sha256(token);
        let claimed_id = header(meta, aigw_proto::NODE_ID_HEADER).unwrap_or_default();
        let claimed_region = header(meta, aigw_proto::REGION_HEADER).unwrap_or_default();
        // Subscribed before the lookup: a revocation racing it is not lost.
        let rx = self.registry.revocations();
        let hex = hex::encode(hash);
        let claimed = claimed_id.to_string();
        let (issued, bound) = self
            .db
            .run(move |c| {
                let issued = nodes::find_by_hash(c, &hex)?;
                let bound = match issued {
                    Some(_) => None,
                    None if claimed.is_empty() => None,
                    None => nodes::find_by_node(c, &claimed)?,
                };
                Ok((issued, bound))
            })
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if let Some(cred) = issued {
            if cred.revoked_at_ms != 0 {
                return Err(Status::unauthenticated("node credential revoked"));
            }
            if !claimed_id.is_empty() && claimed_id != cred.node_id {
                return Err(Status::permission_denied(format!(
                    "this credential belongs to node {:?}, not {claimed_id:?}",
                    cred.node_id
                )));
            }
            let identity = NodeIdentity {
                node_id: cred.node_id,
                region: cred.region,
                credential: Some(cred.id.clone()),
            };
            let watch = Revocation {
                rx: Some(rx),
                credential: Some(cred.id),
                db: self.db.clone(),
            };
            return Ok((identity, watch));
        }
        if !self.join.contains(&hash) {
            return Err(Status::unauthenticated("invalid node token"));
        }
        check_name(aigw_proto::NODE_ID_HEADER, claimed_id).map_err(Status::invalid_argument)?;
        check_name(aigw_proto::REGION_HEADER, claimed_region).map_err(Status::invalid_argument)?;
        if bound.is_some() {
            return Err(Status::permission_denied(format!(
                "node {claimed_id:?} has a credential of its own; present that one"
            )));
        }
        let identity = NodeIdentity {
            node_id: claimed_id.to_string(),
            region: claimed_region.to_string(),
            credential: None,
        };
        let watch = Revocation {
            rx: None,
            credential: None,
            db: self.db.clone(),
        };
        Ok((identity, watch))
    }
}
