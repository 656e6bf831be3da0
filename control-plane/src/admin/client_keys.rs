//! Client keys: the keys apps present. Only SHA-256(key) is stored; a key
//! generated here is returned once, in the Upsert result, and never again.

use std::collections::HashMap;

use aigw_proto::pb::admin::{BudgetLimits, ClientKeyInfo, ClientKeySpec, UpsertResult};

use super::budgets::Stored;
use super::providers::unchanged;
use super::validate;
use crate::compile::parse_models;
use crate::crypto;
use crate::db::config::{self, ClientKeyRow};
use crate::db::identity::list_users;
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// Generated keys: this prefix and 32 random URL-safe characters.
pub const KEY_PREFIX: &str = "sk-aigw-";
/// Shorter keys are too easy to guess.
const MIN_KEY_LEN: usize = 8;
/// Apps send the key in a header; nothing longer is a real key.
const MAX_KEY_LEN: usize = 256;
/// Most client keys one user may own (revoked ones included, until deleted).
pub const MAX_KEYS_PER_OWNER: usize = 1000;

/// A checked ClientKeySpec, limits converted to their stored form. No
/// `Debug`: it may hold the key.
#[derive(Clone)]
pub struct ClientKeyInput {
    pub spec: ClientKeySpec,
    limits: Stored,
}

pub fn validate(spec: ClientKeySpec) -> Result<ClientKeyInput> {
    validate::name("client_key", &spec.name)?;
    let what = format!("client_key {:?}", spec.name);
    if !spec.key.is_empty()
        && (spec.key.len() < MIN_KEY_LEN
            || spec.key.len() > MAX_KEY_LEN
            || !spec.key.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Error::invalid(format!(
            "{what}: key must be {MIN_KEY_LEN} to {MAX_KEY_LEN} visible ASCII characters without spaces (or empty to generate one)"
        )));
    }
    validate::globs(&what, &spec.models)?;
    let limits = Stored::check(
        &what,
        &BudgetLimits {
            rps: spec.rps,
            rpm: spec.rpm,
            tokens_per_minute: spec.tokens_per_minute,
            tokens_per_day: spec.tokens_per_day,
            cost_per_day: spec.cost_per_day,
            cost_per_month: spec.cost_per_month,
            concurrent: spec.concurrent,
            global: spec.global,
            when_store_down: spec.when_store_down.clone(),
        },
    )?;
    if !spec.owner.is_empty() {
        validate::name(&format!("{what} owner"), &spec.owner)?;
    }
    if spec.expires_at_ms < 0 {
        return Err(Error::invalid(format!(
            "{what}: expires_at_ms must not be negative"
        )));
    }
    Ok(ClientKeyInput { spec, limits })
}

/// Creates or updates the key; `owner` is the user id the key will belong
/// to (resolved and authorized by the caller). A revoked key cannot be
/// changed: revocation is final. With `only_tighten` (a member changing
/// their own key) the key's limits may only get tighter: an operator's
/// limit cannot be raised, widened or lifted.
pub fn upsert(
    conn: &mut AnyConnection,
    input: &ClientKeyInput,
    existing: Option<ClientKeyRow>,
    owner: Option<String>,
    only_tighten: bool,
) -> Result<(UpsertResult, bool)> {
    let spec = &input.spec;
    if only_tighten
        && let Some(old) = &existing
        && !input.limits.within(&Stored::from(old))
    {
        return Err(Error::PermissionDenied(format!(
            "client_key {:?}: a member may only tighten a key's limits, not raise or lift them",
            spec.name
        )));
    }
    let now = now_ms();
    if existing.as_ref().is_some_and(|k| k.revoked_at_ms != 0) {
        return Err(Error::FailedPrecondition(format!(
            "client_key {:?} is revoked; delete it or use another name",
            spec.name
        )));
    }
    let (key_hash, key_hint, generated) = if !spec.key.is_empty() {
        (
            crypto::sha256_hex(&spec.key),
            crypto::mask(&spec.key, KEY_PREFIX.len()),
            None,
        )
    } else if let Some(row) = &existing {
        (row.key_hash.clone(), row.key_hint.clone(), None)
    } else {
        let key = crypto::new_secret(KEY_PREFIX)?;
        (
            crypto::sha256_hex(&key),
            crypto::mask(&key, KEY_PREFIX.len()),
            Some(key),
        )
    };
    if let Some(other) = config::find_client_key_by_hash(conn, &key_hash)?
        && other.name != spec.name
    {
        return Err(Error::AlreadyExists(format!(
            "client_key {:?}: this key is already used by another client key",
            spec.name
        )));
    }
    if existing.is_none()
        && let Some(uid) = &owner
        && config::count_client_keys_of(conn, uid)? >= MAX_KEYS_PER_OWNER as i64
    {
        return Err(Error::FailedPrecondition(format!(
            "client_key {:?}: its owner already has {MAX_KEYS_PER_OWNER} keys; delete some first",
            spec.name
        )));
    }
    let models = serde_json::to_string(&spec.models).map_err(|e| Error::internal(e.to_string()))?;
    let row = ClientKeyRow {
        id: String::new(),
        name: spec.name.clone(),
        key_hash,
        key_hint,
        models,
        rpm: input.limits.rpm,
        tokens_per_day: input.limits.tokens_per_day,
        cost_per_day: input.limits.cost_per_day,
        expires_at_ms: spec.expires_at_ms,
        created_at_ms: now,
        updated_at_ms: now,
        owner_user_id: owner,
        revoked_at_ms: 0,
        rps: input.limits.rps,
        tokens_per_minute: input.limits.tokens_per_minute,
        cost_per_month: input.limits.cost_per_month,
        concurrent: input.limits.concurrent,
        limits_global: input.limits.global,
        when_store_down: input.limits.when_store_down.clone(),
    };
    let created = match existing {
        Some(old) => {
            let same = old.key_hash == row.key_hash
                && parse_models(&old.models, &old.name)? == spec.models
                && Stored::from(&old) == input.limits
                && old.expires_at_ms == row.expires_at_ms
                && old.owner_user_id == row.owner_user_id;
            if same {
                return Ok((unchanged(), false));
            }
            config::update_client_key(
                conn,
                &ClientKeyRow {
                    id: old.id,
                    created_at_ms: old.created_at_ms,
                    ..row
                },
            )?;
            false
        }
        None => {
            config::insert_client_key(
                conn,
                &ClientKeyRow {
                    id: crypto::new_id()?,
                    ..row
                },
            )?;
            true
        }
    };
    Ok((
        UpsertResult {
            created,
            changed: true,
            generated_key: generated.unwrap_or_default(),
        },
        true,
    ))
}

/// All client keys, or those `owner` owns; owners shown by username.
pub fn list(conn: &mut AnyConnection, owner: Option<&str>) -> Result<Vec<ClientKeyInfo>> {
    let names = usernames(conn)?;
    config::list_client_keys(conn, owner)?
        .into_iter()
        .map(|k| {
            let limits = Stored::from(&k).to_admin();
            Ok(ClientKeyInfo {
                models: parse_models(&k.models, &k.name)?,
                owner: k
                    .owner_user_id
                    .as_ref()
                    .and_then(|id| names.get(id).cloned())
                    .unwrap_or_default(),
                name: k.name,
                id: k.id,
                key_hint: k.key_hint,
                rpm: limits.rpm,
                tokens_per_day: limits.tokens_per_day,
                cost_per_day: limits.cost_per_day,
                rps: limits.rps,
                tokens_per_minute: limits.tokens_per_minute,
                cost_per_month: limits.cost_per_month,
                concurrent: limits.concurrent,
                global: limits.global,
                when_store_down: limits.when_store_down,
                expires_at_ms: k.expires_at_ms,
                created_at_ms: k.created_at_ms,
                revoked: k.revoked_at_ms != 0,
                revoked_at_ms: k.revoked_at_ms,
            })
        })
        .collect()
}

/// User id -> username.
pub fn usernames(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    Ok(list_users(conn)?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}
