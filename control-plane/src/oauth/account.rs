//! An OAuth account's stored state: tokens sealed under the master key,
//! when to refresh, what went wrong; what the Admin API shows of it and
//! what the snapshot carries (the access token and the template's headers,
//! never the refresh token).

use std::collections::BTreeMap;

use aigw_proto::pb::admin::OAuthAccount;
use serde_json::{Value, json};

use super::template::{self, Resolved};
use super::token::Tokens;
use crate::crypto::MasterKey;
use crate::db::oauth::{AccountRow, TemplateRow};
use crate::error::Result;

/// The account works; its access token is refreshed before it expires.
pub const CONNECTED: &str = "connected";
/// Refreshing failed (network, server error): retried with back-off while
/// the current access token is still used.
pub const ERROR: &str = "error";
/// The refresh token was refused (`invalid_grant`): only reconnecting
/// helps; the data planes skip the key.
pub const REVOKED: &str = "revoked";

/// Refreshes start this long before expiry at most...
const MAX_LEAD_MS: i64 = 5 * 60 * 1000;
/// ...and retries back off up to this.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

pub fn access_context(provider: &str, key: &str) -> String {
    format!("oauth_access:{provider}/{key}")
}

pub fn refresh_context(provider: &str, key: &str) -> String {
    format!("oauth_refresh:{provider}/{key}")
}

/// When to refresh a token obtained at `now` that expires at `expires`:
/// a third of its lifetime early, at most five minutes early.
pub fn refresh_at(now: i64, expires: i64) -> i64 {
    let lifetime = (expires - now).max(0);
    expires - (lifetime / 3).min(MAX_LEAD_MS)
}

/// When to retry after the `failures`-th failure in a row: 1 s, 2 s, 4 s…
/// up to five minutes, never after the token expires if it still works.
pub fn retry_at(now: i64, failures: i32, expires: i64) -> i64 {
    let exp = u32::try_from(failures.clamp(1, 20) - 1).unwrap_or(0);
    let backoff = 1000_i64.saturating_mul(1 << exp).min(MAX_BACKOFF_MS);
    let at = now + backoff;
    if expires > now {
        at.min(expires.max(now + 1000))
    } else {
        at
    }
}

/// The claims request headers may name, from what a token answer said
/// (the previous claims fill what a refresh answer leaves out: servers
/// rarely send a new ID token on refresh).
pub fn claims(tokens: &Tokens, params: &Value, previous: Option<&Value>) -> Value {
    let keep = |k: &str| previous.and_then(|p| p.get(k)).cloned();
    let id = match &tokens.id_token_claims {
        Value::Object(o) if !o.is_empty() => tokens.id_token_claims.clone(),
        _ => keep("id_token").unwrap_or_else(|| json!({})),
    };
    json!({"token": tokens.fields, "id_token": id, "param": params})
}

/// The row for freshly issued tokens. `refresh_token` is the one to keep:
/// the new one when the server rotated it, else the one in use.
#[allow(clippy::too_many_arguments)]
pub fn row(
    master: &MasterKey,
    provider: &str,
    key: &str,
    template: &str,
    tokens: &Tokens,
    refresh_token: &str,
    claims: Value,
    now: i64,
    connected_at: i64,
) -> Result<AccountRow> {
    let expires = now + tokens.lifetime_secs * 1000;
    Ok(AccountRow {
        provider: provider.into(),
        key_name: key.into(),
        template: template.into(),
        access_enc: master.encrypt(&tokens.access_token, &access_context(provider, key))?,
        refresh_enc: master.encrypt(refresh_token, &refresh_context(provider, key))?,
        expires_at_ms: expires,
        refresh_at_ms: refresh_at(now, expires),
        claims: claims.to_string(),
        status: CONNECTED.into(),
        last_error: String::new(),
        failures: 0,
        last_refresh_ms: now,
        connected_at_ms: connected_at,
        updated_at_ms: now,
    })
}

/// The headers an account's requests carry, resolved from its claims;
/// empty when the template is gone or a value no longer resolves (the
/// connect step refuses that case up front).
pub fn headers(
    templates: &[TemplateRow],
    master: &MasterKey,
    a: &AccountRow,
) -> BTreeMap<String, String> {
    let Ok(Some(t)) = template::find(templates, master, &a.template) else {
        return BTreeMap::new();
    };
    let claims: Value = serde_json::from_str(&a.claims).unwrap_or(Value::Null);
    template::resolve_headers(&t.spec, &claims).unwrap_or_default()
}

/// Resolves the headers for a template at connect time, naming what is
/// missing.
pub fn check_headers(t: &Resolved, claims: &Value) -> Result<BTreeMap<String, String>> {
    template::resolve_headers(&t.spec, claims).map_err(|e| {
        crate::error::Error::FailedPrecondition(format!(
            "oauth template {:?}: {e}; the account was not stored",
            t.name
        ))
    })
}

/// The Admin API's view.
pub fn info(a: &AccountRow, headers: BTreeMap<String, String>) -> OAuthAccount {
    OAuthAccount {
        provider: a.provider.clone(),
        key: a.key_name.clone(),
        template: a.template.clone(),
        status: a.status.clone(),
        expires_at_ms: a.expires_at_ms,
        last_refresh_ms: a.last_refresh_ms,
        last_error: a.last_error.clone(),
        connected_at_ms: a.connected_at_ms,
        next_refresh_ms: if a.status == REVOKED {
            0
        } else {
            a.refresh_at_ms
        },
        failures: u32::try_from(a.failures).unwrap_or(0),
        headers,
    }
}

/// The state of OAuth key `provider`/`key` among `accounts`.
pub fn info_of(
    templates: &[TemplateRow],
    master: &MasterKey,
    accounts: &[AccountRow],
    provider: &str,
    key: &str,
    template: &str,
) -> OAuthAccount {
    accounts
        .iter()
        .find(|a| a.provider == provider && a.key_name == key && a.template == template)
        .map_or_else(
            || not_connected(provider, key, template),
            |a| info(a, headers(templates, master, a)),
        )
}

/// Forgets the accounts (and connections under way) of keys that are
/// gone or no longer OAuth accounts of the same template: their tokens
/// are deleted with the key, not kept for a key that might reuse the name.
pub fn forget_stale(conn: &mut crate::db::AnyConnection) -> Result<usize> {
    let rows = crate::db::config::load_all(conn)?;
    let live: Vec<(String, String, String)> =
        crate::db::config::group_keys(rows.providers, rows.keys)
            .into_iter()
            .flat_map(|(p, keys)| {
                keys.into_iter()
                    .filter(|k| !k.oauth_template.is_empty())
                    .map(move |k| (p.name.clone(), k.name, k.oauth_template))
            })
            .collect();
    crate::db::oauth::forget_others(conn, &live)
}

/// An OAuth key that has no account yet.
pub fn not_connected(provider: &str, key: &str, template: &str) -> OAuthAccount {
    OAuthAccount {
        provider: provider.into(),
        key: key.into(),
        template: template.into(),
        status: "not_connected".into(),
        ..Default::default()
    }
}

impl std::fmt::Debug for AccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("provider", &self.provider)
            .field("key_name", &self.key_name)
            .field("template", &self.template)
            .field("status", &self.status)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_come_a_third_early_at_most_five_minutes() {
        // A 30 s token: refreshed after 20 s.
        assert_eq!(refresh_at(0, 30_000), 20_000);
        // An hour: five minutes early.
        assert_eq!(refresh_at(0, 3_600_000), 3_300_000);
        // Already expired: at once.
        assert_eq!(refresh_at(10_000, 5_000), 5_000);
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        let far = i64::MAX / 2;
        let waits: Vec<i64> = (1..=12).map(|n| retry_at(0, n, far)).collect();
        assert_eq!(&waits[..5], &[1000, 2000, 4000, 8000, 16_000]);
        assert_eq!(waits[11], MAX_BACKOFF_MS);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        // Never past the expiry of a token still in use.
        assert_eq!(retry_at(0, 10, 3000), 3000);
        assert_eq!(retry_at(5000, 10, 3000), 5000 + MAX_BACKOFF_MS);
    }
}
