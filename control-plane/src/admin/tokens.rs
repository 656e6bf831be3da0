//! API tokens for automation: owned by the user who made them (or by no one,
//! when the bootstrap token made them), scoped to a role the creator holds,
//! shown once, stored as SHA-256 only, revocable.

use std::collections::HashMap;

use aigw_proto::pb::admin::{ApiTokenInfo, CreateApiTokenRequest};

use super::authn::API_TOKEN_PREFIX;
use super::rbac::{Principal, Role};
use super::validate;
use crate::crypto;
use crate::db::config::{self, ApiTokenRow};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// Most API tokens one user may own (revoked ones included, until deleted).
pub const MAX_TOKENS_PER_USER: i64 = 100;

pub fn info(t: &ApiTokenRow, names: &HashMap<String, String>) -> ApiTokenInfo {
    ApiTokenInfo {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role.clone(),
        token_hint: t.token_hint.clone(),
        owner: t
            .user_id
            .as_ref()
            .and_then(|id| names.get(id).cloned())
            .unwrap_or_default(),
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        revoked: t.revoked_at_ms != 0,
        revoked_at_ms: t.revoked_at_ms,
    }
}

/// Checks the request against the caller: the role must be one the caller's
/// role includes; member tokens need a user to own their keys; a token made
/// by a token expires no later than its parent (with no expiry asked, it
/// gets the parent's). A token made from a session gets the expiry asked
/// (0: never): the session's end does not bound it, a password change or
/// reset of its user revokes it. Returns the role and the expiry to store.
pub fn validate(p: &Principal, req: &CreateApiTokenRequest, now: i64) -> Result<(Role, i64)> {
    validate::name("api_token", &req.name)?;
    let role = if req.role.is_empty() {
        p.role
    } else {
        Role::parse(&req.role)?
    };
    if !p.role.includes(role) {
        return Err(Error::PermissionDenied(format!(
            "role {} may not create a token with role {role}",
            p.role
        )));
    }
    if role == Role::Member && p.user_id.is_none() {
        return Err(Error::invalid(
            "a member token must belong to a user: create it while logged in as that user",
        ));
    }
    if req.expires_at_ms < 0 || (req.expires_at_ms != 0 && req.expires_at_ms <= now) {
        return Err(Error::invalid(
            "expires_at_ms must be in the future (or 0 for never)",
        ));
    }
    let parent = p.expires_at_ms();
    let expires_at_ms = match (parent, req.expires_at_ms) {
        (0, asked) => asked,
        (parent, 0) => parent,
        (parent, asked) if asked <= parent => asked,
        (parent, _) => {
            return Err(Error::invalid(format!(
                "expires_at_ms must not be later than the expiry of the token creating it ({parent})"
            )));
        }
    };
    Ok((role, expires_at_ms))
}

/// Stores a new token owned by the caller; returns it (shown once) and its row.
pub fn create(
    conn: &mut AnyConnection,
    p: &Principal,
    req: &CreateApiTokenRequest,
    role: Role,
    expires_at_ms: i64,
) -> Result<(String, ApiTokenRow)> {
    if config::find_api_token(conn, &req.name)?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "api_token {:?} already exists",
            req.name
        )));
    }
    if let Some(uid) = &p.user_id
        && config::count_api_tokens_of(conn, uid)? >= MAX_TOKENS_PER_USER
    {
        return Err(Error::FailedPrecondition(format!(
            "api_token {:?}: you already have {MAX_TOKENS_PER_USER} tokens; delete or revoke some first",
            req.name
        )));
    }
    let token = crypto::new_secret(API_TOKEN_PREFIX)?;
    let row = ApiTokenRow {
        id: crypto::new_id()?,
        name: req.name.clone(),
        token_hash: crypto::sha256_hex(&token),
        role: role.as_str().into(),
        created_at_ms: now_ms(),
        user_id: p.user_id.clone(),
        token_hint: crypto::mask(&token, API_TOKEN_PREFIX.len()),
        expires_at_ms,
        revoked_at_ms: 0,
    };
    config::insert_api_token(conn, &row)?;
    Ok((token, row))
}
