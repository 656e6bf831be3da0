//! Rows and queries for users, their sessions and the audit log (API tokens
//! predate these and live in `config`). Queries only: who may do what is
//! decided in `admin::rbac`.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{audit_log, sessions, users};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The team whose budget the user's keys count toward.
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    /// Hex SHA-256 of the session token.
    pub token_hash: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub at_ms: i64,
    pub actor: String,
    pub actor_user_id: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    pub detail: String,
}

// --- users ---

pub fn count_users(conn: &mut AnyConnection) -> Result<i64> {
    Ok(users::table.count().get_result(conn)?)
}

pub fn find_user(conn: &mut AnyConnection, username: &str) -> Result<Option<UserRow>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_user_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>> {
    Ok(users::table
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_users(conn: &mut AnyConnection) -> Result<Vec<UserRow>> {
    Ok(users::table
        .order(users::username)
        .select(UserRow::as_select())
        .load(conn)?)
}

pub fn insert_user(conn: &mut AnyConnection, row: &UserRow) -> Result<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update_user(conn: &mut AnyConnection, row: &UserRow) -> Result<()> {
    diesel::update(users::table.filter(users::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// Enabled users with role admin.
pub fn count_enabled_admins(conn: &mut AnyConnection) -> Result<i64> {
    Ok(users::table
        .filter(users::role.eq("admin"))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)?)
}

// --- sessions ---

pub fn insert_session(conn: &mut AnyConnection, row: &SessionRow) -> Result<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_session_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<SessionRow>> {
    Ok(sessions::table
        .filter(sessions::token_hash.eq(token_hash))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn delete_session(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    Ok(diesel::delete(sessions::table.filter(sessions::id.eq(id))).execute(conn)? > 0)
}

/// Ends every session of a user (password reset, disabling).
pub fn delete_sessions_of(conn: &mut AnyConnection, user_id: &str) -> Result<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

pub fn delete_expired_sessions(conn: &mut AnyConnection, now_ms: i64) -> Result<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at_ms.le(now_ms))).execute(conn)?)
}

/// Keeps the user's `keep` newest sessions and ends the others.
pub fn trim_sessions(conn: &mut AnyConnection, user_id: &str, keep: i64) -> Result<usize> {
    let old: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order((sessions::created_at_ms.desc(), sessions::id.desc()))
        .offset(keep)
        .select(sessions::id)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(sessions::table.filter(sessions::id.eq_any(old))).execute(conn)?)
}

// --- audit log ---

/// Whether any audit entry about the configuration exists: some admin
/// changed this database. Sign-ins, throttled guesses, users and tokens do
/// not count: an admin who signs in to a control plane on the wrong
/// database, or a stranger guessing passwords, has configured nothing.
pub fn any_audit(conn: &mut AnyConnection) -> Result<bool> {
    const ACCOUNT_KINDS: [&str; 3] = ["session", "user", "api_token"];
    Ok(diesel::select(diesel::dsl::exists(
        audit_log::table
            .filter(audit_log::object_kind.ne_all(ACCOUNT_KINDS))
            .select(audit_log::id),
    ))
    .get_result(conn)?)
}

/// Whether this database never held a configuration: no provider, no
/// client key, and no admin change ever (an admin who deleted everything
/// leaves audit entries). A control plane on such a database was most
/// likely pointed at the wrong file or volume.
pub fn never_configured(conn: &mut AnyConnection) -> Result<bool> {
    use super::schema::{client_keys, providers};
    let any_provider: bool =
        diesel::select(diesel::dsl::exists(providers::table.select(providers::id)))
            .get_result(conn)?;
    let any_key: bool = diesel::select(diesel::dsl::exists(
        client_keys::table.select(client_keys::id),
    ))
    .get_result(conn)?;
    Ok(!any_provider && !any_key && !any_audit(conn)?)
}

/// Inserts audit entries, many rows per statement.
pub fn insert_audit(conn: &mut AnyConnection, rows: &[AuditRow]) -> Result<()> {
    for chunk in rows.chunks(super::BATCH_ROWS) {
        let insert = diesel::insert_into(audit_log::table).values(chunk);
        // Multi-row VALUES is per backend (MultiBackend cannot express it).
        match conn {
            AnyConnection::Sqlite(c) => insert.execute(c)?,
            AnyConnection::Postgres(c) => insert.execute(c)?,
        };
    }
    Ok(())
}

/// Filters of [`list_audit`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub actor: Option<String>,
    pub object_kind: Option<String>,
    /// Entries strictly older than this (at_ms, id), newest first.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

pub fn list_audit(conn: &mut AnyConnection, f: &AuditFilter) -> Result<Vec<AuditRow>> {
    let mut q = audit_log::table
        .select(AuditRow::as_select())
        .order((audit_log::at_ms.desc(), audit_log::id.desc()))
        .limit(f.limit)
        .into_boxed();
    if let Some(t) = f.since_ms {
        q = q.filter(audit_log::at_ms.ge(t));
    }
    if let Some(t) = f.until_ms {
        q = q.filter(audit_log::at_ms.lt(t));
    }
    if let Some(a) = &f.actor {
        q = q.filter(audit_log::actor.eq(a.clone()));
    }
    if let Some(k) = &f.object_kind {
        q = q.filter(audit_log::object_kind.eq(k.clone()));
    }
    if let Some((at, id)) = &f.before {
        q = q.filter(
            audit_log::at_ms
                .lt(*at)
                .or(audit_log::at_ms.eq(*at).and(audit_log::id.lt(id.clone()))),
        );
    }
    Ok(q.load(conn)?)
}
