//! Rows and queries for the configuration tables. Queries only: validation
//! and change detection live in `admin`, compilation in `compile`.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{api_tokens, client_keys, pricing, provider_keys, providers, routes};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    /// JSON array of model globs.
    pub models: String,
    pub strategy: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// JSON object: the app's model name -> the upstream's.
    pub model_map: String,
    /// Seconds between health checks of each key; 0: none scheduled.
    pub health_interval_secs: i32,
    /// "" or "prompt-cache".
    pub affinity: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = provider_keys)]
pub struct ProviderKeyRow {
    pub id: String,
    pub provider_id: String,
    pub name: String,
    /// base64(nonce || AES-256-GCM ciphertext), see `crypto::MasterKey`.
    pub secret_enc: String,
    pub secret_hint: String,
    pub weight: i32,
    /// Order in the provider's spec; it matters for fill-first.
    pub position: i32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Non-empty: an OAuth account of this template (`secret_enc` is empty;
    /// its tokens are in `oauth_accounts`).
    pub oauth_template: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = pricing, treat_none_as_null = true)]
pub struct PriceRow {
    pub model: String,
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = client_keys, treat_none_as_null = true)]
pub struct ClientKeyRow {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    pub key_hint: String,
    /// JSON array of model globs; empty allows every model.
    pub models: String,
    pub rpm: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub cost_per_day: Option<f64>,
    /// 0: never expires.
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// None: no user owns it (made by the bootstrap token or `apply`).
    pub owner_user_id: Option<String>,
    /// 0: not revoked. Revoked keys stay for the traces but leave the snapshot.
    pub revoked_at_ms: i64,
    pub rps: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub cost_per_month: Option<f64>,
    pub concurrent: Option<i64>,
    /// Its tokens and cost limits are global (leases across regions).
    pub limits_global: bool,
    /// "" / "local" or "refuse" while the limit store is down.
    pub when_store_down: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub role: String,
    pub created_at_ms: i64,
    /// The owner; None for the bootstrap token and tokens it made.
    pub user_id: Option<String>,
    pub token_hint: String,
    /// 0: never.
    pub expires_at_ms: i64,
    /// 0: not revoked.
    pub revoked_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = routes)]
pub struct RouteRow {
    /// The model glob; the route's name.
    pub model: String,
    /// JSON array of provider names, in fallback order; `[]` for an alias.
    pub providers: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Refuse fields the provider's format cannot express instead of
    /// dropping hints.
    pub strict: bool,
    /// The model this route's models are served as; empty when not an alias.
    pub alias_of: String,
}

/// Everything a snapshot is compiled from, each list in a stable order.
#[derive(Debug, Clone, Default)]
pub struct ConfigRows {
    pub providers: Vec<ProviderRow>,
    /// Ordered by provider, then position.
    pub keys: Vec<ProviderKeyRow>,
    pub pricing: Vec<PriceRow>,
    /// Revoked ones included: `compile` leaves them out.
    pub client_keys: Vec<ClientKeyRow>,
    pub routes: Vec<RouteRow>,
    /// The last health check of each credential that had one.
    pub health: Vec<super::health::HealthRow>,
    /// Stored OAuth templates (built-in ones are in `crate::oauth`).
    pub oauth_templates: Vec<super::oauth::TemplateRow>,
    /// Connected OAuth accounts.
    pub oauth_accounts: Vec<super::oauth::AccountRow>,
    /// Users' and teams' budgets.
    pub budgets: Vec<super::budgets::BudgetRow>,
    /// (user id, username, team id) of every user.
    pub users: Vec<(String, String, Option<String>)>,
    /// Ids of disabled users: `compile` leaves their client keys out.
    pub disabled_users: std::collections::HashSet<String>,
    pub teams: Vec<super::budgets::TeamRow>,
    /// Leases of global budgets for the current and the next day and month.
    pub leases: Vec<super::budgets::LeaseRow>,
}

pub fn load_all(conn: &mut AnyConnection) -> Result<ConfigRows> {
    Ok(ConfigRows {
        client_keys: client_keys::table
            .order(client_keys::name)
            .select(ClientKeyRow::as_select())
            .load(conn)?,
        ..load_core(conn)?
    })
}

/// Everything but the client keys (most of the rows in a large
/// configuration), for a recompile that keeps the current keys.
pub fn load_core(conn: &mut AnyConnection) -> Result<ConfigRows> {
    Ok(ConfigRows {
        providers: providers::table
            .order(providers::name)
            .select(ProviderRow::as_select())
            .load(conn)?,
        keys: provider_keys::table
            .order((provider_keys::provider_id, provider_keys::position))
            .select(ProviderKeyRow::as_select())
            .load(conn)?,
        pricing: pricing::table
            .order(pricing::model)
            .select(PriceRow::as_select())
            .load(conn)?,
        client_keys: Vec::new(),
        routes: list_routes(conn)?,
        health: super::health::current(conn, None)?,
        oauth_templates: super::oauth::templates(conn)?,
        oauth_accounts: super::oauth::accounts(conn)?,
        budgets: super::budgets::list_budgets(conn)?,
        teams: super::budgets::list_teams(conn)?,
        leases: super::budgets::leases(conn, &crate::budgets::live_periods(super::now_ms()))?,
        ..users(conn)?
    })
}

/// The user fields of [`ConfigRows`].
fn users(conn: &mut AnyConnection) -> Result<ConfigRows> {
    let all = super::identity::list_users(conn)?;
    Ok(ConfigRows {
        disabled_users: all
            .iter()
            .filter(|u| u.disabled)
            .map(|u| u.id.clone())
            .collect(),
        users: all
            .into_iter()
            .map(|u| (u.id, u.username, u.team_id))
            .collect(),
        ..ConfigRows::default()
    })
}

// --- providers ---

pub fn find_provider(conn: &mut AnyConnection, name: &str) -> Result<Option<ProviderRow>> {
    Ok(providers::table
        .filter(providers::name.eq(name))
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn keys_of(conn: &mut AnyConnection, provider_id: &str) -> Result<Vec<ProviderKeyRow>> {
    Ok(provider_keys::table
        .filter(provider_keys::provider_id.eq(provider_id))
        .order(provider_keys::position)
        .select(ProviderKeyRow::as_select())
        .load(conn)?)
}

pub fn insert_provider(conn: &mut AnyConnection, row: &ProviderRow) -> Result<()> {
    diesel::insert_into(providers::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update_provider(conn: &mut AnyConnection, row: &ProviderRow) -> Result<()> {
    diesel::update(providers::table.filter(providers::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// Replaces a provider's whole key set.
pub fn replace_keys(
    conn: &mut AnyConnection,
    provider_id: &str,
    keys: &[ProviderKeyRow],
) -> Result<()> {
    diesel::delete(provider_keys::table.filter(provider_keys::provider_id.eq(provider_id)))
        .execute(conn)?;
    for k in keys {
        diesel::insert_into(provider_keys::table)
            .values(k)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_provider(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    let Some(p) = find_provider(conn, name)? else {
        return Ok(false);
    };
    // Explicit rather than relying on ON DELETE CASCADE being enabled.
    diesel::delete(provider_keys::table.filter(provider_keys::provider_id.eq(&p.id)))
        .execute(conn)?;
    let n = diesel::delete(providers::table.filter(providers::id.eq(&p.id))).execute(conn)?;
    Ok(n > 0)
}

pub fn list_providers(conn: &mut AnyConnection) -> Result<Vec<(ProviderRow, Vec<ProviderKeyRow>)>> {
    let rows = load_core(conn)?;
    Ok(group_keys(rows.providers, rows.keys))
}

/// Pairs each provider with its keys (in position order).
pub fn group_keys(
    providers: Vec<ProviderRow>,
    keys: Vec<ProviderKeyRow>,
) -> Vec<(ProviderRow, Vec<ProviderKeyRow>)> {
    let mut out: Vec<(ProviderRow, Vec<ProviderKeyRow>)> =
        providers.into_iter().map(|p| (p, Vec::new())).collect();
    for k in keys {
        if let Some((_, ks)) = out.iter_mut().find(|(p, _)| p.id == k.provider_id) {
            ks.push(k);
        }
    }
    for (_, ks) in &mut out {
        ks.sort_by_key(|k| k.position);
    }
    out
}

// --- pricing ---

pub fn find_price(conn: &mut AnyConnection, model: &str) -> Result<Option<PriceRow>> {
    Ok(pricing::table
        .filter(pricing::model.eq(model))
        .select(PriceRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_price(conn: &mut AnyConnection, row: &PriceRow) -> Result<()> {
    diesel::insert_into(pricing::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update_price(conn: &mut AnyConnection, row: &PriceRow) -> Result<()> {
    diesel::update(pricing::table.filter(pricing::model.eq(&row.model)))
        .set(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_price(conn: &mut AnyConnection, model: &str) -> Result<bool> {
    Ok(diesel::delete(pricing::table.filter(pricing::model.eq(model))).execute(conn)? > 0)
}

pub fn list_pricing(conn: &mut AnyConnection) -> Result<Vec<PriceRow>> {
    Ok(pricing::table
        .order(pricing::model)
        .select(PriceRow::as_select())
        .load(conn)?)
}

// --- client keys ---

pub fn find_client_key(conn: &mut AnyConnection, name: &str) -> Result<Option<ClientKeyRow>> {
    Ok(client_keys::table
        .filter(client_keys::name.eq(name))
        .select(ClientKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// The keys of these names that exist.
pub fn client_keys_named(conn: &mut AnyConnection, names: &[String]) -> Result<Vec<ClientKeyRow>> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(super::BATCH_ROWS) {
        out.extend(
            client_keys::table
                .filter(client_keys::name.eq_any(chunk))
                .select(ClientKeyRow::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}

pub fn find_client_key_by_hash(
    conn: &mut AnyConnection,
    key_hash: &str,
) -> Result<Option<ClientKeyRow>> {
    Ok(client_keys::table
        .filter(client_keys::key_hash.eq(key_hash))
        .select(ClientKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// How many client keys `owner` owns (revoked ones included).
pub fn count_client_keys_of(conn: &mut AnyConnection, owner: &str) -> Result<i64> {
    Ok(client_keys::table
        .filter(client_keys::owner_user_id.eq(owner))
        .count()
        .get_result(conn)?)
}

pub fn insert_client_key(conn: &mut AnyConnection, row: &ClientKeyRow) -> Result<()> {
    diesel::insert_into(client_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Inserts many keys, many rows per statement.
pub fn insert_client_keys(conn: &mut AnyConnection, rows: &[ClientKeyRow]) -> Result<()> {
    for chunk in rows.chunks(super::BATCH_ROWS) {
        let insert = diesel::insert_into(client_keys::table).values(chunk);
        // Multi-row VALUES is per backend (MultiBackend cannot express it).
        match conn {
            AnyConnection::Sqlite(c) => insert.execute(c)?,
            AnyConnection::Postgres(c) => insert.execute(c)?,
        };
    }
    Ok(())
}

/// Deletes the keys named; returns how many there were.
pub fn delete_client_keys(conn: &mut AnyConnection, names: &[String]) -> Result<usize> {
    let mut n = 0;
    for chunk in names.chunks(super::BATCH_ROWS) {
        n += diesel::delete(client_keys::table.filter(client_keys::name.eq_any(chunk)))
            .execute(conn)?;
    }
    Ok(n)
}

pub fn update_client_key(conn: &mut AnyConnection, row: &ClientKeyRow) -> Result<()> {
    diesel::update(client_keys::table.filter(client_keys::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_client_key(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    Ok(diesel::delete(client_keys::table.filter(client_keys::name.eq(name))).execute(conn)? > 0)
}

/// Marks the key revoked; false when it was already.
pub fn revoke_client_key(conn: &mut AnyConnection, id: &str, at_ms: i64) -> Result<bool> {
    Ok(diesel::update(
        client_keys::table
            .filter(client_keys::id.eq(id))
            .filter(client_keys::revoked_at_ms.eq(0)),
    )
    .set((
        client_keys::revoked_at_ms.eq(at_ms),
        client_keys::updated_at_ms.eq(at_ms),
    ))
    .execute(conn)?
        > 0)
}

/// All client keys, or only those `owner` owns.
pub fn list_client_keys(
    conn: &mut AnyConnection,
    owner: Option<&str>,
) -> Result<Vec<ClientKeyRow>> {
    let mut q = client_keys::table
        .order(client_keys::name)
        .select(ClientKeyRow::as_select())
        .into_boxed();
    if let Some(uid) = owner {
        q = q.filter(client_keys::owner_user_id.eq(uid));
    }
    Ok(q.load(conn)?)
}

/// Ids of the client keys `owner` owns (revoked ones too: their traces
/// remain theirs).
pub fn client_key_ids_of(conn: &mut AnyConnection, owner: &str) -> Result<Vec<String>> {
    Ok(client_keys::table
        .filter(client_keys::owner_user_id.eq(owner))
        .select(client_keys::id)
        .load(conn)?)
}

/// Whether a client key has this id.
pub fn find_client_key_by_id(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    let n: i64 = client_keys::table
        .filter(client_keys::id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// (key id, owner user id) of every client key.
pub fn client_key_owners(conn: &mut AnyConnection) -> Result<Vec<(String, Option<String>)>> {
    Ok(client_keys::table
        .select((client_keys::id, client_keys::owner_user_id))
        .load(conn)?)
}

// --- routes ---

pub fn list_routes(conn: &mut AnyConnection) -> Result<Vec<RouteRow>> {
    Ok(routes::table
        .order(routes::model)
        .select(RouteRow::as_select())
        .load(conn)?)
}

pub fn find_route(conn: &mut AnyConnection, model: &str) -> Result<Option<RouteRow>> {
    Ok(routes::table
        .filter(routes::model.eq(model))
        .select(RouteRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_route(conn: &mut AnyConnection, row: &RouteRow) -> Result<()> {
    diesel::insert_into(routes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update_route(conn: &mut AnyConnection, row: &RouteRow) -> Result<()> {
    diesel::update(routes::table.filter(routes::model.eq(&row.model)))
        .set(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_route(conn: &mut AnyConnection, model: &str) -> Result<bool> {
    Ok(diesel::delete(routes::table.filter(routes::model.eq(model))).execute(conn)? > 0)
}

// --- API tokens ---

/// All tokens, or only those `owner` owns.
pub fn api_tokens(conn: &mut AnyConnection, owner: Option<&str>) -> Result<Vec<ApiTokenRow>> {
    let mut q = api_tokens::table
        .order(api_tokens::name)
        .select(ApiTokenRow::as_select())
        .into_boxed();
    if let Some(uid) = owner {
        q = q.filter(api_tokens::user_id.eq(uid));
    }
    Ok(q.load(conn)?)
}

/// How many API tokens `owner` owns (revoked ones included).
pub fn count_api_tokens_of(conn: &mut AnyConnection, owner: &str) -> Result<i64> {
    Ok(api_tokens::table
        .filter(api_tokens::user_id.eq(owner))
        .count()
        .get_result(conn)?)
}

pub fn insert_api_token(conn: &mut AnyConnection, row: &ApiTokenRow) -> Result<()> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_api_token_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<ApiTokenRow>> {
    Ok(api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_api_token(conn: &mut AnyConnection, name: &str) -> Result<Option<ApiTokenRow>> {
    Ok(api_tokens::table
        .filter(api_tokens::name.eq(name))
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Revokes every live API token `owner` owns; returns how many.
pub fn revoke_api_tokens_of(conn: &mut AnyConnection, owner: &str, at_ms: i64) -> Result<usize> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(owner))
            .filter(api_tokens::revoked_at_ms.eq(0)),
    )
    .set(api_tokens::revoked_at_ms.eq(at_ms))
    .execute(conn)?)
}

/// Marks the token revoked; false when it was already.
pub fn revoke_api_token(conn: &mut AnyConnection, id: &str, at_ms: i64) -> Result<bool> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at_ms.eq(0)),
    )
    .set(api_tokens::revoked_at_ms.eq(at_ms))
    .execute(conn)?
        > 0)
}
