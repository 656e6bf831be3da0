//! Node credentials: one per data plane, bound to its node id and region.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::node_credentials;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = node_credentials)]
pub struct NodeCredentialRow {
    pub id: String,
    pub node_id: String,
    pub region: String,
    pub token_hash: String,
    pub token_hint: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: i64,
}

pub fn insert(conn: &mut AnyConnection, row: &NodeCredentialRow) -> Result<()> {
    diesel::insert_into(node_credentials::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<NodeCredentialRow>> {
    Ok(node_credentials::table
        .filter(node_credentials::token_hash.eq(hash))
        .select(NodeCredentialRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<NodeCredentialRow>> {
    Ok(node_credentials::table
        .filter(node_credentials::id.eq(id))
        .select(NodeCredentialRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_node(conn: &mut AnyConnection, node_id: &str) -> Result<Option<NodeCredentialRow>> {
    Ok(node_credentials::table
        .filter(node_credentials::node_id.eq(node_id))
        .select(NodeCredentialRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<NodeCredentialRow>> {
    Ok(node_credentials::table
        .order(node_credentials::node_id)
        .select(NodeCredentialRow::as_select())
        .load(conn)?)
}

/// Marks it revoked; false when it was already.
pub fn revoke(conn: &mut AnyConnection, id: &str, at_ms: i64) -> Result<bool> {
    Ok(diesel::update(
        node_credentials::table
            .filter(node_credentials::id.eq(id))
            .filter(node_credentials::revoked_at_ms.eq(0)),
    )
    .set(node_credentials::revoked_at_ms.eq(at_ms))
    .execute(conn)?
        > 0)
}

pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    Ok(
        diesel::delete(node_credentials::table.filter(node_credentials::id.eq(id)))
            .execute(conn)?
            > 0,
    )
}

pub fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(node_credentials::table.count().get_result(conn)?)
}
