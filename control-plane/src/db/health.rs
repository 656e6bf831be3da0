//! Health check results: the last check of each credential and a bounded
//! history of recent ones.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{credential_checks, credential_health};
use crate::error::Result;

/// Recent checks kept per credential.
pub const HISTORY_PER_KEY: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_health)]
pub struct HealthRow {
    pub provider: String,
    pub key_name: String,
    pub status: String,
    pub http_status: i32,
    pub latency_us: i64,
    pub detail: String,
    pub checked_at_ms: i64,
    pub retry_at_ms: i64,
    pub trigger_kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_checks)]
pub struct CheckRow {
    pub id: String,
    pub provider: String,
    pub key_name: String,
    pub status: String,
    pub http_status: i32,
    pub latency_us: i64,
    pub detail: String,
    pub checked_at_ms: i64,
    pub trigger_kind: String,
}

/// Records a check: it becomes the credential's current state and joins its
/// history, which is cut back to `HISTORY_PER_KEY`.
pub fn record(conn: &mut AnyConnection, row: &HealthRow, id: String) -> Result<()> {
    diesel::delete(
        credential_health::table
            .filter(credential_health::provider.eq(&row.provider))
            .filter(credential_health::key_name.eq(&row.key_name)),
    )
    .execute(conn)?;
    diesel::insert_into(credential_health::table)
        .values(row)
        .execute(conn)?;
    diesel::insert_into(credential_checks::table)
        .values(&CheckRow {
            id,
            provider: row.provider.clone(),
            key_name: row.key_name.clone(),
            status: row.status.clone(),
            http_status: row.http_status,
            latency_us: row.latency_us,
            detail: row.detail.clone(),
            checked_at_ms: row.checked_at_ms,
            trigger_kind: row.trigger_kind.clone(),
        })
        .execute(conn)?;
    let old: Vec<String> = credential_checks::table
        .filter(credential_checks::provider.eq(&row.provider))
        .filter(credential_checks::key_name.eq(&row.key_name))
        .order((
            credential_checks::checked_at_ms.desc(),
            credential_checks::id.desc(),
        ))
        .offset(HISTORY_PER_KEY)
        .select(credential_checks::id)
        .load(conn)?;
    if !old.is_empty() {
        diesel::delete(credential_checks::table.filter(credential_checks::id.eq_any(old)))
            .execute(conn)?;
    }
    Ok(())
}

/// The current state of every credential, or of one provider's.
pub fn current(conn: &mut AnyConnection, provider: Option<&str>) -> Result<Vec<HealthRow>> {
    let mut q = credential_health::table
        .order((credential_health::provider, credential_health::key_name))
        .select(HealthRow::as_select())
        .into_boxed();
    if let Some(p) = provider {
        q = q.filter(credential_health::provider.eq(p));
    }
    Ok(q.load(conn)?)
}

/// The newest `limit` checks of one credential, newest first.
pub fn history(
    conn: &mut AnyConnection,
    provider: &str,
    key: &str,
    limit: i64,
) -> Result<Vec<CheckRow>> {
    Ok(credential_checks::table
        .filter(credential_checks::provider.eq(provider))
        .filter(credential_checks::key_name.eq(key))
        .order((
            credential_checks::checked_at_ms.desc(),
            credential_checks::id.desc(),
        ))
        .limit(limit)
        .select(CheckRow::as_select())
        .load(conn)?)
}

/// Forgets the health of credentials that no longer exist (`live` holds
/// the (provider, key) pairs that do). Returns how many were forgotten.
pub fn forget_others(conn: &mut AnyConnection, live: &[(String, String)]) -> Result<usize> {
    let stale: Vec<(String, String)> = current(conn, None)?
        .into_iter()
        .map(|r| (r.provider, r.key_name))
        .filter(|pk| !live.contains(pk))
        .collect();
    for (p, k) in &stale {
        forget(conn, p, k)?;
        diesel::delete(
            credential_checks::table
                .filter(credential_checks::provider.eq(p))
                .filter(credential_checks::key_name.eq(k)),
        )
        .execute(conn)?;
    }
    Ok(stale.len())
}

/// Forgets the current state of one credential (its history stays): what
/// was found of a credential that has since changed (an OAuth account with
/// new tokens) says nothing of it now.
pub fn forget(conn: &mut AnyConnection, provider: &str, key: &str) -> Result<bool> {
    Ok(diesel::delete(
        credential_health::table
            .filter(credential_health::provider.eq(provider))
            .filter(credential_health::key_name.eq(key)),
    )
    .execute(conn)?
        > 0)
}
