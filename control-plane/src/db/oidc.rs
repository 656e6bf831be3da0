//! Rows for OpenID Connect sign-in: the identity provider's settings (one
//! row) and which user each provider subject signs in as.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{oidc_identities, oidc_settings};
use crate::error::Result;

/// The id of the one settings row.
pub const SETTINGS_ID: &str = "default";

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oidc_settings)]
pub struct OidcSettingsRow {
    pub id: String,
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    /// Sealed under the master key; empty when none is set.
    pub client_secret_enc: String,
    pub default_role: String,
    pub redirect_url: String,
    pub display_name: String,
    /// JSON array of scopes besides "openid".
    pub scopes: String,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = oidc_identities)]
pub struct OidcIdentityRow {
    /// "ISSUER SUBJECT".
    pub subject: String,
    pub user_id: String,
    pub email: String,
    pub created_at_ms: i64,
    pub last_login_ms: i64,
}

pub fn settings(conn: &mut AnyConnection) -> Result<Option<OidcSettingsRow>> {
    Ok(oidc_settings::table
        .filter(oidc_settings::id.eq(SETTINGS_ID))
        .select(OidcSettingsRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn put_settings(conn: &mut AnyConnection, row: &OidcSettingsRow) -> Result<()> {
    let updated = diesel::update(oidc_settings::table.filter(oidc_settings::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(oidc_settings::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn find_identity(conn: &mut AnyConnection, subject: &str) -> Result<Option<OidcIdentityRow>> {
    Ok(oidc_identities::table
        .filter(oidc_identities::subject.eq(subject))
        .select(OidcIdentityRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn user_is_linked(conn: &mut AnyConnection, user_id: &str) -> Result<bool> {
    let n: i64 = oidc_identities::table
        .filter(oidc_identities::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn insert_identity(conn: &mut AnyConnection, row: &OidcIdentityRow) -> Result<()> {
    diesel::insert_into(oidc_identities::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn touch_identity(conn: &mut AnyConnection, subject: &str, at_ms: i64) -> Result<()> {
    diesel::update(oidc_identities::table.filter(oidc_identities::subject.eq(subject)))
        .set(oidc_identities::last_login_ms.eq(at_ms))
        .execute(conn)?;
    Ok(())
}
