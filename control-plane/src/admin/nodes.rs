//! Node credentials through the Admin API: one token per data plane, bound
//! to its node id and region, stored as SHA-256 only and shown once.

use aigw_proto::pb::admin::{NodeCredentialInfo, NodeCredentialSpec};

use crate::crypto;
use crate::db::nodes::{self, NodeCredentialRow};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};
use crate::node_auth::check_name;

/// Prefix of node credentials, so a leaked one is recognisable.
pub const NODE_TOKEN_PREFIX: &str = "aigw-n-";
/// More data planes than this is a typo or an attack.
pub const MAX_NODE_CREDENTIALS: i64 = 10_000;

pub fn validate(spec: &NodeCredentialSpec) -> Result<()> {
    check_name("node_id", &spec.node_id).map_err(Error::invalid)?;
    check_name("region", &spec.region).map_err(Error::invalid)
}

pub fn info(r: &NodeCredentialRow) -> NodeCredentialInfo {
    NodeCredentialInfo {
        node_id: r.node_id.clone(),
        region: r.region.clone(),
        token_hint: r.token_hint.clone(),
        created_at_ms: r.created_at_ms,
        revoked: r.revoked_at_ms != 0,
        revoked_at_ms: r.revoked_at_ms,
    }
}

/// Stores a new credential; returns the token (shown once) and its row.
pub fn create(
    conn: &mut AnyConnection,
    spec: &NodeCredentialSpec,
) -> Result<(String, NodeCredentialRow)> {
    if nodes::find_by_node(conn, &spec.node_id)?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "node {:?} already has a credential; delete it first to issue another",
            spec.node_id
        )));
    }
    if nodes::count(conn)? >= MAX_NODE_CREDENTIALS {
        return Err(Error::FailedPrecondition(format!(
            "there are already {MAX_NODE_CREDENTIALS} node credentials"
        )));
    }
    let token = crypto::new_secret(NODE_TOKEN_PREFIX)?;
    let row = NodeCredentialRow {
        id: crypto::new_id()?,
        node_id: spec.node_id.clone(),
        region: spec.region.clone(),
        token_hash: crypto::sha256_hex(&token),
        token_hint: crypto::mask(&token, NODE_TOKEN_PREFIX.len()),
        created_at_ms: now_ms(),
        revoked_at_ms: 0,
    };
    nodes::insert(conn, &row)?;
    Ok((token, row))
}

/// The credential of `node_id`, or a not-found error naming it.
pub fn of_node(conn: &mut AnyConnection, node_id: &str) -> Result<NodeCredentialRow> {
    nodes::find_by_node(conn, node_id)?
        .ok_or_else(|| Error::NotFound(format!("node {node_id:?} has no credential")))
}
