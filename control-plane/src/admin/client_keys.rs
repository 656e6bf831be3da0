//! Client keys: the keys apps present. Only SHA-256(key) is stored; a key
//! generated here is returned once, in the Upsert result, and never again.

use std::collections::HashMap;

use aigw_proto::model::Glob;
use aigw_proto::pb::admin::{BudgetLimits, ClientKeyInfo, ClientKeySpec, UpsertResult};

use super::budgets::Stored;
use super::providers::unchanged;
use super::rbac::{self, Principal, Target};
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
    pub limits: Stored,
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
    let limits = Stored::check(&what, &spec_limits(&spec))?;
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

/// Who will own the key a spec upserts: the named owner, else the current
/// owner, else (a new key) the caller. Checks that the caller may touch the
/// existing key and give it that owner. `user_id` finds a user by name.
pub fn owner(
    p: &Principal,
    owner_name: &str,
    existing: Option<&ClientKeyRow>,
    user_id: impl FnOnce(&str) -> Result<Option<String>>,
) -> Result<Option<String>> {
    let method = rbac::UPSERT_CLIENT_KEY;
    if let Some(k) = existing {
        rbac::authorize(p, method, Target::Owned(k.owner_user_id.as_deref()))?;
    }
    if owner_name.is_empty() {
        return Ok(match existing {
            Some(k) => k.owner_user_id.clone(),
            None => p.user_id.clone(),
        });
    }
    let id = user_id(owner_name)?
        .ok_or_else(|| Error::NotFound(format!("user {owner_name:?} does not exist")))?;
    rbac::authorize(p, method, Target::Owned(Some(&id)))?;
    Ok(Some(id))
}

/// What upserting one key does, decided before touching the database, so
/// that one key (`upsert`) and a whole file (`admin::apply`) follow the
/// same rules.
pub enum KeyPlan {
    Unchanged,
    Update(ClientKeyRow),
    /// A new key, and the key itself when it was generated here.
    Insert(ClientKeyRow, Option<String>),
}

impl KeyPlan {
    pub fn result(&self) -> UpsertResult {
        match self {
            KeyPlan::Unchanged => unchanged(),
            KeyPlan::Update(_) => UpsertResult {
                created: false,
                changed: true,
                generated_key: String::new(),
            },
            KeyPlan::Insert(_, generated) => UpsertResult {
                created: true,
                changed: true,
                generated_key: generated.clone().unwrap_or_default(),
            },
        }
    }
}

/// What planning a key needs to know of the others.
pub trait KeyLookups {
    /// The name of the key whose hash this is, if any.
    fn name_of_hash(&mut self, key_hash: &str) -> Result<Option<String>>;
    /// How many keys `user_id` owns (revoked ones included).
    fn keys_owned_by(&mut self, user_id: &str) -> Result<i64>;
}

/// Lookups in the database, for one key.
struct Queries<'c>(&'c mut AnyConnection);

impl KeyLookups for Queries<'_> {
    fn name_of_hash(&mut self, key_hash: &str) -> Result<Option<String>> {
        Ok(config::find_client_key_by_hash(self.0, key_hash)?.map(|k| k.name))
    }

    fn keys_owned_by(&mut self, user_id: &str) -> Result<i64> {
        config::count_client_keys_of(self.0, user_id)
    }
}

/// Decides what upserting `input` over `existing` does; `owner` is the
/// user id the key will belong to (resolved and authorized by the caller).
/// A revoked key cannot be changed: revocation is final. With
/// `only_tighten` (a member changing their own key) the key may only get
/// tighter ([`only_tightens`]): an operator's limit, model list or expiry
/// cannot be raised, widened or lifted.
pub fn plan(
    input: &ClientKeyInput,
    existing: Option<&ClientKeyRow>,
    owner: Option<String>,
    only_tighten: bool,
    lookups: &mut dyn KeyLookups,
) -> Result<KeyPlan> {
    let spec = &input.spec;
    if only_tighten && let Some(old) = existing {
        only_tightens(input, old)?;
    }
    let now = now_ms();
    if existing.is_some_and(|k| k.revoked_at_ms != 0) {
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
    } else if let Some(row) = existing {
        (row.key_hash.clone(), row.key_hint.clone(), None)
    } else {
        let key = crypto::new_secret(KEY_PREFIX)?;
        (
            crypto::sha256_hex(&key),
            crypto::mask(&key, KEY_PREFIX.len()),
            Some(key),
        )
    };
    if lookups
        .name_of_hash(&key_hash)?
        .is_some_and(|other| other != spec.name)
    {
        return Err(Error::AlreadyExists(format!(
            "client_key {:?}: this key is already used by another client key",
            spec.name
        )));
    }
    if existing.is_none()
        && let Some(uid) = &owner
        && lookups.keys_owned_by(uid)? >= MAX_KEYS_PER_OWNER as i64
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
    Ok(match existing {
        Some(old) => {
            let same = old.key_hash == row.key_hash
                && parse_models(&old.models, &old.name)? == spec.models
                && Stored::from(old) == input.limits
                && old.expires_at_ms == row.expires_at_ms
                && old.owner_user_id == row.owner_user_id;
            if same {
                KeyPlan::Unchanged
            } else {
                KeyPlan::Update(ClientKeyRow {
                    id: old.id.clone(),
                    created_at_ms: old.created_at_ms,
                    ..row
                })
            }
        }
        None => KeyPlan::Insert(
            ClientKeyRow {
                id: crypto::new_id()?,
                ..row
            },
            generated,
        ),
    })
}

/// How a key would allow more than another.
enum Wider {
    Limits,
    /// Every model, where the other allows only these.
    AllModels(Vec<String>),
    /// A model the other does not allow, and the ones it does.
    Model(String, Vec<String>),
    Expiry,
}

/// How a key of these `models`, `limits` and expiry would allow more than
/// `old`, if it would: limits laxer, a model (or every model) `old` does
/// not allow, an expiry later than `old`'s or none where `old` has one.
fn wider(
    models: &[String],
    limits: &Stored,
    expires_at_ms: i64,
    old: &ClientKeyRow,
) -> Result<Option<Wider>> {
    if !limits.within(&Stored::from(old)) {
        return Ok(Some(Wider::Limits));
    }
    let allowed = parse_models(&old.models, &old.name)?;
    if !allowed.is_empty() {
        if models.is_empty() {
            return Ok(Some(Wider::AllModels(allowed)));
        }
        if let Some(m) = models.iter().find(|m| !covered(&allowed, m)) {
            return Ok(Some(Wider::Model(m.clone(), allowed)));
        }
    }
    let later = expires_at_ms == 0 || expires_at_ms > old.expires_at_ms;
    if old.expires_at_ms != 0 && later {
        return Ok(Some(Wider::Expiry));
    }
    Ok(None)
}

/// Checks that `input` allows nothing `old` did not: what a caller limited
/// to their own keys may change, so that what an operator restricted on a
/// member's key stays restricted. Its limits no laxer; its models some of
/// the stored ones (an empty list allows every model, so it stays empty or
/// is narrowed, and a restricted list never becomes empty); its expiry
/// kept or brought closer, never removed (0) or moved later.
fn only_tightens(input: &ClientKeyInput, old: &ClientKeyRow) -> Result<()> {
    let spec = &input.spec;
    let Some(w) = wider(&spec.models, &input.limits, spec.expires_at_ms, old)? else {
        return Ok(());
    };
    Err(Error::PermissionDenied(match w {
        Wider::Limits => format!(
            "client_key {:?}: a member may only tighten a key's limits, not raise or lift them",
            spec.name
        ),
        Wider::AllModels(allowed) => format!(
            "client_key {:?}: models: a member may only narrow a key's models ({}), not allow every model",
            spec.name,
            allowed.join(", ")
        ),
        Wider::Model(m, allowed) => format!(
            "client_key {:?}: models: {m:?} is not among the key's models ({}); a member may only keep them or name models they cover",
            spec.name,
            allowed.join(", ")
        ),
        Wider::Expiry => format!(
            "client_key {:?}: expires_at_ms: a member may only bring a key's expiry closer, not remove it or move it later",
            spec.name
        ),
    }))
}

/// At most this many of a member's keys are named in a refusal.
const MAX_NAMED_KEYS: usize = 5;

/// A member's new key allows no more than at least one key they already
/// hold (`owned`, revoked ones included until deleted): within it by the
/// rules of [`only_tightens`]. Otherwise creating a key would undo what an
/// operator restricted on the member's keys; one key suffices, so a member
/// holding keys for different models (say `[gpt-4o]` and `[claude-*]`) may
/// create a key within either. A member with no keys, or with an
/// unrestricted one, creates keys as before. An expired key bounds too:
/// a key within it expires no later (an operator who let it expire ended
/// that access).
pub fn within_own_keys(input: &ClientKeyInput, owned: &[ClientKeyRow]) -> Result<()> {
    let spec = &input.spec;
    let mut reasons = Vec::new();
    let mut first_field = None;
    for old in owned {
        let Some(w) = wider(&spec.models, &input.limits, spec.expires_at_ms, old)? else {
            return Ok(());
        };
        let (field, how) = match w {
            Wider::Limits => ("limits", "has tighter limits".to_string()),
            Wider::AllModels(allowed) => (
                "models",
                format!("allows only {}, not every model", allowed.join(", ")),
            ),
            Wider::Model(m, allowed) => (
                "models",
                format!("allows only {}, not {m:?}", allowed.join(", ")),
            ),
            Wider::Expiry => (
                "expires_at_ms",
                format!(
                    "expires at {} (ms), and so must this one, or sooner",
                    old.expires_at_ms
                ),
            ),
        };
        first_field.get_or_insert(field);
        if reasons.len() < MAX_NAMED_KEYS {
            reasons.push(format!("their client_key {:?} {how}", old.name));
        }
    }
    let Some(field) = first_field else {
        return Ok(());
    };
    let more = owned.len().saturating_sub(reasons.len());
    let more = if more > 0 {
        format!("; and {more} more key(s)")
    } else {
        String::new()
    };
    Err(Error::PermissionDenied(format!(
        "client_key {:?}: {field}: a member's new key may allow no more than one of the keys they already hold, and it is within none: {}{more}",
        spec.name,
        reasons.join("; ")
    )))
}

/// Whether a member may delete `key`, one of `owned` (their keys): only
/// when that does not widen what [`within_own_keys`] lets them create.
/// While another key of theirs remains, it does not: what they may create
/// is then what is within one of the remaining keys, no more than before.
/// Deleting their last key would leave them bound by nothing, so that is
/// allowed only when the key restricts nothing.
pub fn member_may_delete(key: &ClientKeyRow, owned: &[ClientKeyRow]) -> Result<()> {
    if owned.iter().any(|o| o.id != key.id) {
        return Ok(());
    }
    let unrestricted = parse_models(&key.models, &key.name)?.is_empty()
        && Stored::from(key).is_empty()
        && key.expires_at_ms == 0;
    if unrestricted {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "client_key {:?}: it is its owner's last key, and its models, limits or expiry bound the keys they may create, so a member may not delete it; revoke it, or ask an operator to delete it",
        key.name
    )))
}

/// Whether every model `pattern` allows is one `allowed` allows: it is one
/// of them, or an exact name one of them matches. (A narrower pattern, say
/// `gpt-4o-*` under `gpt-4o*`, is refused: containment of globs is not
/// worth deciding here; exact names say the same.)
fn covered(allowed: &[String], pattern: &str) -> bool {
    allowed.iter().any(|a| a == pattern)
        || (Glob::new(pattern).is_literal()
            && allowed
                .iter()
                .any(|a| Glob::new(a.as_str()).matches(pattern)))
}

/// Creates or updates one key (see [`plan`]); returns the result and
/// whether the configuration changed.
pub fn upsert(
    conn: &mut AnyConnection,
    input: &ClientKeyInput,
    existing: Option<ClientKeyRow>,
    owner: Option<String>,
    only_tighten: bool,
) -> Result<(UpsertResult, bool)> {
    if only_tighten
        && existing.is_none()
        && let Some(uid) = &owner
    {
        within_own_keys(input, &config::list_client_keys(conn, Some(uid))?)?;
    }
    let plan = plan(
        input,
        existing.as_ref(),
        owner,
        only_tighten,
        &mut Queries(conn),
    )?;
    let result = plan.result();
    match plan {
        KeyPlan::Unchanged => return Ok((result, false)),
        KeyPlan::Update(row) => config::update_client_key(conn, &row)?,
        KeyPlan::Insert(row, _) => config::insert_client_key(conn, &row)?,
    }
    Ok((result, true))
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
                // Filled by the caller, from the budgets' ledger.
                used: Vec::new(),
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

/// A key's own limits, as a budget's.
fn spec_limits(spec: &ClientKeySpec) -> BudgetLimits {
    BudgetLimits {
        rps: spec.rps,
        rpm: spec.rpm,
        tokens_per_minute: spec.tokens_per_minute,
        tokens_per_day: spec.tokens_per_day,
        cost_per_day: spec.cost_per_day,
        cost_per_month: spec.cost_per_month,
        concurrent: spec.concurrent,
        global: spec.global,
        when_store_down: spec.when_store_down.clone(),
    }
}

/// What an upsert of a client key set, for the audit log (never the key
/// itself): its owner, models, limits and expiry as given.
pub fn summary(spec: &ClientKeySpec) -> String {
    let mut parts = Vec::new();
    if !spec.owner.is_empty() {
        parts.push(format!("owner={}", spec.owner));
    }
    if !spec.models.is_empty() {
        parts.push(format!("models=[{}]", spec.models.join(",")));
    }
    parts.push(super::budgets::limits_summary(&spec_limits(spec)));
    if spec.expires_at_ms > 0 {
        parts.push(format!("expires_at_ms={}", spec.expires_at_ms));
    }
    if !spec.key.is_empty() {
        parts.push("key given".into());
    }
    parts.join(" ")
}
