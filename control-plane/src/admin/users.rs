//! Users and their sessions: the first admin at first start, creation,
//! role changes, disabling, password resets and login. Password hashing is
//! CPU work: callers run it off the async runtime and outside transactions.

use std::collections::HashMap;

use aigw_proto::pb::admin::{UpdateUserRequest, UserInfo};

use super::authn::{SESSION_PREFIX, check_password_policy, hash_password};
use super::rbac::Role;
use super::validate;
use crate::crypto;
use crate::db::identity::{
    self, SessionRow, UserRow, count_enabled_admins, delete_sessions_of, find_user,
};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// How long a login session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// The user created at first start.
pub const FIRST_ADMIN: &str = "admin";

/// The Admin API's view of a user; `teams` maps team ids to names (a new
/// user, in no team yet, needs none).
pub fn info(u: &UserRow, teams: &HashMap<String, String>) -> UserInfo {
    UserInfo {
        id: u.id.clone(),
        username: u.username.clone(),
        role: u.role.clone(),
        disabled: u.disabled,
        created_at_ms: u.created_at_ms,
        updated_at_ms: u.updated_at_ms,
        team: u
            .team_id
            .as_ref()
            .and_then(|t| teams.get(t).cloned())
            .unwrap_or_default(),
    }
}

/// Team id → name.
pub fn team_names(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    Ok(crate::db::budgets::list_teams(conn)?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// A password to hand out once: 32 URL-safe random characters.
pub fn generate_password() -> Result<String> {
    crypto::new_secret("")
}

/// At first start (no users at all), creates `admin` with `password_hash`.
/// Returns whether it did.
pub fn create_first_admin(conn: &mut AnyConnection, password_hash: &str) -> Result<bool> {
    if identity::count_users(conn)? > 0 {
        return Ok(false);
    }
    let now = now_ms();
    identity::insert_user(
        conn,
        &UserRow {
            id: crypto::new_id()?,
            username: FIRST_ADMIN.into(),
            password_hash: password_hash.into(),
            role: Role::Admin.as_str().into(),
            disabled: false,
            created_at_ms: now,
            updated_at_ms: now,
            team_id: None,
        },
    )?;
    Ok(true)
}

/// Longest password accepted (Argon2 over megabytes is a cheap DoS).
pub const MAX_PASSWORD: usize = 1024;

/// Checks a new user's fields; returns the role.
pub fn validate_new(username: &str, password: &str, role: &str) -> Result<Role> {
    validate::username(username)?;
    if !password.is_empty() {
        check_password_policy(password)?;
    }
    Role::parse(role)
}

pub fn insert(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: String,
    role: Role,
) -> Result<UserRow> {
    if find_user(conn, username)?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "user {username:?} already exists"
        )));
    }
    let now = now_ms();
    let row = UserRow {
        id: crypto::new_id()?,
        username: username.into(),
        password_hash,
        role: role.as_str().into(),
        disabled: false,
        created_at_ms: now,
        updated_at_ms: now,
        team_id: None,
    };
    identity::insert_user(conn, &row)?;
    Ok(row)
}

/// Applies a role change and/or (dis|en)abling. Keeps at least one enabled
/// admin. Returns the user, what changed (None: nothing), and whether it
/// was (dis|en)abled, which takes the user's client keys out of the
/// snapshot or back.
pub fn update(
    conn: &mut AnyConnection,
    req: &UpdateUserRequest,
) -> Result<(UserRow, Option<String>, bool)> {
    let mut user = find_user(conn, &req.username)?
        .ok_or_else(|| Error::NotFound(format!("user {:?} does not exist", req.username)))?;
    let active_admin = |u: &UserRow| u.role == Role::Admin.as_str() && !u.disabled;
    let was_admin = active_admin(&user);
    let mut changes = Vec::new();
    let mut toggled = false;
    if let Some(role) = &req.role {
        let role = Role::parse(role)?;
        if user.role != role.as_str() {
            changes.push(format!("role={role}"));
            user.role = role.as_str().into();
        }
    }
    if let Some(disabled) = req.disabled
        && user.disabled != disabled
    {
        changes.push(format!("disabled={disabled}"));
        user.disabled = disabled;
        toggled = true;
    }
    if changes.is_empty() {
        return Ok((user, None, false));
    }
    user.updated_at_ms = now_ms();
    identity::update_user(conn, &user)?;
    if user.disabled {
        delete_sessions_of(conn, &user.id)?;
    }
    if was_admin && !active_admin(&user) && count_enabled_admins(conn)? == 0 {
        return Err(Error::FailedPrecondition(
            "this would leave no enabled admin; make another user admin first".into(),
        ));
    }
    Ok((user, Some(changes.join(" ")), toggled))
}

/// Stores a new password hash, ends the user's sessions and revokes their
/// API tokens (each was made from one of their sessions, or from a token
/// that was): whoever held the old password loses every credential it
/// gave them. Returns how many tokens were revoked.
pub fn set_password(
    conn: &mut AnyConnection,
    user_id: &str,
    password_hash: String,
) -> Result<usize> {
    let mut user = identity::find_user_by_id(conn, user_id)?
        .ok_or_else(|| Error::NotFound("the user no longer exists".into()))?;
    let now = now_ms();
    user.password_hash = password_hash;
    user.updated_at_ms = now;
    identity::update_user(conn, &user)?;
    delete_sessions_of(conn, user_id)?;
    crate::db::config::revoke_api_tokens_of(conn, user_id, now)
}

/// Opens a session for a user whose password was checked; returns the
/// token (shown once) and its expiry.
pub fn open_session(conn: &mut AnyConnection, user_id: &str) -> Result<(String, i64)> {
    let now = now_ms();
    identity::delete_expired_sessions(conn, now)?;
    let token = crypto::new_secret(SESSION_PREFIX)?;
    let expires_at_ms = now + SESSION_TTL_MS;
    identity::insert_session(
        conn,
        &SessionRow {
            id: crypto::new_id()?,
            user_id: user_id.into(),
            token_hash: crypto::sha256_hex(&token),
            created_at_ms: now,
            expires_at_ms,
        },
    )?;
    // Logging in in a loop must not grow the table without end.
    identity::trim_sessions(conn, user_id, MAX_SESSIONS_PER_USER)?;
    Ok((token, expires_at_ms))
}

/// Live sessions kept per user; logging in again ends the oldest.
pub const MAX_SESSIONS_PER_USER: i64 = 32;

/// Hashes off the async runtime.
pub async fn hash_async(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::internal(format!("hashing task failed: {e}")))?
}

/// Verifies off the async runtime.
pub async fn verify_async(password: String, phc: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || super::authn::verify_password(&password, &phc))
        .await
        .map_err(|e| Error::internal(format!("verification task failed: {e}")))
}
