//! OAuth templates, accounts and connections under way. Queries only:
//! sealing, flows and refresh live in `crate::oauth`.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{oauth_accounts, oauth_flows, oauth_templates};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oauth_templates)]
pub struct TemplateRow {
    pub name: String,
    /// JSON of `oauth::template::Template` without its client secret.
    pub spec: String,
    /// Sealed client secret; empty when the template has none.
    pub client_secret_enc: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An account's stored state. No `Debug`: it holds sealed tokens, and a
/// sealed value has no business in a log either.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oauth_accounts)]
pub struct AccountRow {
    pub provider: String,
    pub key_name: String,
    pub template: String,
    pub access_enc: String,
    pub refresh_enc: String,
    pub expires_at_ms: i64,
    /// When the refresher next acts (before expiry, or a retry's back-off).
    pub refresh_at_ms: i64,
    /// JSON: `{"token": {...}, "id_token": {...}, "param": {...}}`, the
    /// non-secret values request headers may name.
    pub claims: String,
    pub status: String,
    pub last_error: String,
    pub failures: i32,
    pub last_refresh_ms: i64,
    pub connected_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_flows)]
pub struct FlowRow {
    pub state_hash: String,
    pub provider: String,
    pub key_name: String,
    pub template: String,
    /// "code" or "device".
    pub kind: String,
    /// Sealed PKCE verifier (code) or device code (device).
    pub secret_enc: String,
    pub redirect_uri: String,
    /// JSON object of the `{param:NAME}` values given when connecting.
    pub params: String,
    pub interval_secs: i32,
    pub next_poll_at_ms: i64,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

// --- templates ---

pub fn templates(conn: &mut AnyConnection) -> Result<Vec<TemplateRow>> {
    Ok(oauth_templates::table
        .order(oauth_templates::name)
        .select(TemplateRow::as_select())
        .load(conn)?)
}

pub fn find_template(conn: &mut AnyConnection, name: &str) -> Result<Option<TemplateRow>> {
    Ok(oauth_templates::table
        .filter(oauth_templates::name.eq(name))
        .select(TemplateRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn put_template(conn: &mut AnyConnection, row: &TemplateRow, exists: bool) -> Result<()> {
    if exists {
        diesel::update(oauth_templates::table.filter(oauth_templates::name.eq(&row.name)))
            .set(row)
            .execute(conn)?;
    } else {
        diesel::insert_into(oauth_templates::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_template(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    Ok(
        diesel::delete(oauth_templates::table.filter(oauth_templates::name.eq(name)))
            .execute(conn)?
            > 0,
    )
}

pub fn set_template_secret(conn: &mut AnyConnection, name: &str, sealed: &str) -> Result<()> {
    diesel::update(oauth_templates::table.filter(oauth_templates::name.eq(name)))
        .set(oauth_templates::client_secret_enc.eq(sealed))
        .execute(conn)?;
    Ok(())
}

// --- accounts ---

pub fn accounts(conn: &mut AnyConnection) -> Result<Vec<AccountRow>> {
    Ok(oauth_accounts::table
        .order((oauth_accounts::provider, oauth_accounts::key_name))
        .select(AccountRow::as_select())
        .load(conn)?)
}

pub fn find_account(
    conn: &mut AnyConnection,
    provider: &str,
    key: &str,
) -> Result<Option<AccountRow>> {
    Ok(oauth_accounts::table
        .filter(oauth_accounts::provider.eq(provider))
        .filter(oauth_accounts::key_name.eq(key))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts or replaces the account of (provider, key).
pub fn put_account(conn: &mut AnyConnection, row: &AccountRow) -> Result<()> {
    delete_account(conn, &row.provider, &row.key_name)?;
    diesel::insert_into(oauth_accounts::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_account(conn: &mut AnyConnection, provider: &str, key: &str) -> Result<bool> {
    Ok(diesel::delete(
        oauth_accounts::table
            .filter(oauth_accounts::provider.eq(provider))
            .filter(oauth_accounts::key_name.eq(key)),
    )
    .execute(conn)?
        > 0)
}

/// Forgets the accounts whose key is gone or no longer an OAuth account of
/// the same template (`live` holds (provider, key, template) of every OAuth
/// key). Returns how many were forgotten.
pub fn forget_others(conn: &mut AnyConnection, live: &[(String, String, String)]) -> Result<usize> {
    let stale: Vec<(String, String)> = accounts(conn)?
        .into_iter()
        .filter(|a| {
            !live
                .iter()
                .any(|(p, k, t)| *p == a.provider && *k == a.key_name && *t == a.template)
        })
        .map(|a| (a.provider, a.key_name))
        .collect();
    for (p, k) in &stale {
        delete_account(conn, p, k)?;
    }
    Ok(stale.len())
}

// --- flows ---

pub fn insert_flow(conn: &mut AnyConnection, row: &FlowRow) -> Result<()> {
    diesel::insert_into(oauth_flows::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_flow(conn: &mut AnyConnection, state_hash: &str) -> Result<Option<FlowRow>> {
    Ok(oauth_flows::table
        .filter(oauth_flows::state_hash.eq(state_hash))
        .select(FlowRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn flows(conn: &mut AnyConnection) -> Result<Vec<FlowRow>> {
    Ok(oauth_flows::table
        .order(oauth_flows::created_at_ms)
        .select(FlowRow::as_select())
        .load(conn)?)
}

/// Deletes the flow; false when it was already gone (used, or expired and
/// swept): the caller that gets true is the only one to use it.
pub fn take_flow(conn: &mut AnyConnection, state_hash: &str) -> Result<bool> {
    Ok(
        diesel::delete(oauth_flows::table.filter(oauth_flows::state_hash.eq(state_hash)))
            .execute(conn)?
            > 0,
    )
}

pub fn set_next_poll(
    conn: &mut AnyConnection,
    state_hash: &str,
    interval_secs: i32,
    next_poll_at_ms: i64,
) -> Result<()> {
    diesel::update(oauth_flows::table.filter(oauth_flows::state_hash.eq(state_hash)))
        .set((
            oauth_flows::interval_secs.eq(interval_secs),
            oauth_flows::next_poll_at_ms.eq(next_poll_at_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops flows past their expiry; returns how many.
pub fn sweep_flows(conn: &mut AnyConnection, now_ms: i64) -> Result<usize> {
    Ok(
        diesel::delete(oauth_flows::table.filter(oauth_flows::expires_at_ms.le(now_ms)))
            .execute(conn)?,
    )
}

pub fn set_flow_secret(conn: &mut AnyConnection, state_hash: &str, sealed: &str) -> Result<()> {
    diesel::update(oauth_flows::table.filter(oauth_flows::state_hash.eq(state_hash)))
        .set(oauth_flows::secret_enc.eq(sealed))
        .execute(conn)?;
    Ok(())
}

pub fn set_account_tokens(
    conn: &mut AnyConnection,
    provider: &str,
    key: &str,
    access_enc: &str,
    refresh_enc: &str,
) -> Result<()> {
    diesel::update(
        oauth_accounts::table
            .filter(oauth_accounts::provider.eq(provider))
            .filter(oauth_accounts::key_name.eq(key)),
    )
    .set((
        oauth_accounts::access_enc.eq(access_enc),
        oauth_accounts::refresh_enc.eq(refresh_enc),
    ))
    .execute(conn)?;
    Ok(())
}
