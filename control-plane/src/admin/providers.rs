//! Providers and their key pools. Secrets are write-only: they are sealed
//! before they reach the database and only a masked hint is ever returned.
//! Because sealing is randomized, "did anything change?" compares decrypted
//! values, so re-applying the same spec is a no-op (same snapshot version).

use std::collections::BTreeMap;

use aigw_proto::model::{Affinity, ProviderKind, Strategy};
use aigw_proto::pb::admin::{ProviderInfo, ProviderKeyInfo, ProviderSpec, UpsertResult};

use super::validate;
use crate::compile::{parse_model_map, parse_models, secret_context};
use crate::crypto::{self, MasterKey};
use crate::db::config::{self, ProviderKeyRow, ProviderRow};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

const MAX_WEIGHT: u32 = 1_000_000;

/// A checked, normalized ProviderSpec. No `Debug`: it holds secrets.
#[derive(Clone)]
pub struct ProviderInput {
    name: String,
    kind: ProviderKind,
    base_url: String,
    models: Vec<String>,
    strategy: Strategy,
    keys: Vec<KeyInput>,
    model_map: BTreeMap<String, String>,
    health_interval_secs: u32,
    affinity: Affinity,
}

impl ProviderInput {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For the audit log: no secrets.
    pub fn summary(&self) -> String {
        let keys: Vec<&str> = self.keys.iter().map(|k| k.name.as_str()).collect();
        // Which keys were sent a secret (a new one, or the same again): a
        // rotation shows, the secret never does.
        let given: Vec<&str> = self
            .keys
            .iter()
            .filter(|k| !k.secret.is_empty())
            .map(|k| k.name.as_str())
            .collect();
        format!(
            "kind={} strategy={} keys=[{}] secrets_given=[{}]",
            self.kind.as_str(),
            self.strategy.as_str(),
            keys.join(","),
            given.join(",")
        )
    }
}

#[derive(Clone)]
struct KeyInput {
    name: String,
    /// Empty: keep the stored secret of the key with this name (refused
    /// when the provider's address changes: see `upsert`).
    secret: String,
    weight: u32,
    /// Non-empty: an OAuth account of this template (no secret).
    oauth_template: String,
}

/// Most credentials in one provider's pool.
pub const MAX_KEYS: usize = 256;
/// Health checks: every minute unless told otherwise, never more often
/// than every 5 s (an upstream would take it for abuse), at least daily.
pub const DEFAULT_HEALTH_INTERVAL_SECS: u32 = 60;
const MIN_HEALTH_INTERVAL_SECS: u32 = 5;
const MAX_HEALTH_INTERVAL_SECS: u32 = 86_400;

pub fn validate(spec: ProviderSpec) -> Result<ProviderInput> {
    validate::name("provider", &spec.name)?;
    let what = format!("provider {:?}", spec.name);
    let kind: ProviderKind = spec.kind.parse().map_err(|()| {
        Error::invalid(format!(
            "{what}: unknown kind {:?} (expected openai, anthropic, gemini or openai-compatible)",
            spec.kind
        ))
    })?;
    let strategy: Strategy = spec.strategy.parse().map_err(|()| {
        Error::invalid(format!(
            "{what}: unknown strategy {:?} (expected round-robin, weighted, least-latency or fill-first)",
            spec.strategy
        ))
    })?;
    let base_url = spec.base_url.trim().to_string();
    validate::base_url(&what, &base_url)?;
    if base_url.is_empty() && kind == ProviderKind::OpenAiCompatible {
        return Err(Error::invalid(format!(
            "{what}: kind openai-compatible needs a base_url"
        )));
    }
    validate::globs(&what, &spec.models)?;
    if spec.keys.len() > MAX_KEYS {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_KEYS} keys, got {}",
            spec.keys.len()
        )));
    }
    let mut keys: Vec<KeyInput> = Vec::with_capacity(spec.keys.len());
    for k in spec.keys {
        validate::name(&format!("{what} key"), &k.name)?;
        if keys.iter().any(|o| o.name == k.name) {
            return Err(Error::invalid(format!(
                "{what}: key {:?} is listed twice",
                k.name
            )));
        }
        if k.weight > MAX_WEIGHT {
            return Err(Error::invalid(format!(
                "{what}: key {:?} weight must be at most {MAX_WEIGHT}",
                k.name
            )));
        }
        let secret = k.secret.trim().to_string();
        validate::upstream_secret(&format!("{what} key {:?}", k.name), &secret)?;
        let oauth_template = k.oauth_template.trim().to_string();
        if !oauth_template.is_empty() {
            validate::name(
                &format!("{what} key {:?} oauth_template", k.name),
                &oauth_template,
            )?;
            if !secret.is_empty() {
                return Err(Error::invalid(format!(
                    "{what}: key {:?} is an OAuth account (oauth_template {oauth_template:?}): it takes no secret; connect it with StartOAuthConnect",
                    k.name
                )));
            }
        }
        keys.push(KeyInput {
            name: k.name,
            secret,
            weight: k.weight.max(1),
            oauth_template,
        });
    }
    if spec.model_map.len() > validate::MAX_MODEL_MAP {
        return Err(Error::invalid(format!(
            "{what}: model_map has more than {} entries",
            validate::MAX_MODEL_MAP
        )));
    }
    for (from, to) in &spec.model_map {
        validate::model(&format!("{what} model_map key"), from)?;
        validate::model(&format!("{what} model_map[{from:?}]"), to)?;
    }
    let health_interval_secs = spec
        .health_check_interval_secs
        .unwrap_or(DEFAULT_HEALTH_INTERVAL_SECS);
    if health_interval_secs != 0
        && !(MIN_HEALTH_INTERVAL_SECS..=MAX_HEALTH_INTERVAL_SECS).contains(&health_interval_secs)
    {
        return Err(Error::invalid(format!(
            "{what}: health_check interval_secs must be 0 (off) or {MIN_HEALTH_INTERVAL_SECS} to {MAX_HEALTH_INTERVAL_SECS}"
        )));
    }
    let affinity: Affinity = spec.affinity.parse().map_err(|()| {
        Error::invalid(format!(
            "{what}: unknown affinity {:?} (expected \"\" or prompt-cache)",
            spec.affinity
        ))
    })?;
    Ok(ProviderInput {
        name: spec.name,
        kind,
        base_url,
        models: spec.models,
        strategy,
        keys,
        model_map: spec.model_map,
        health_interval_secs,
        affinity,
    })
}

/// Creates or updates the provider; returns the result and whether the
/// configuration changed.
pub fn upsert(
    conn: &mut AnyConnection,
    master: &MasterKey,
    input: &ProviderInput,
) -> Result<(UpsertResult, bool)> {
    let now = now_ms();
    let existing = config::find_provider(conn, &input.name)?;
    let old_keys = match &existing {
        Some(p) => config::keys_of(conn, &p.id)?,
        None => Vec::new(),
    };
    // (name, secret, weight, oauth template) as stored now and as requested.
    // An OAuth account has no secret here: its tokens live apart.
    let mut old = Vec::with_capacity(old_keys.len());
    for k in &old_keys {
        let secret = if k.oauth_template.is_empty() {
            master.decrypt(&k.secret_enc, &secret_context(&input.name, &k.name))?
        } else {
            String::new()
        };
        old.push((
            k.name.clone(),
            secret,
            u32::try_from(k.weight).unwrap_or(1),
            k.oauth_template.clone(),
        ));
    }
    // A stored secret was entered for the address it is sent to. When the
    // address changes (base_url, or kind, which picks the default address
    // and how the secret is presented), keeping it would hand it to a place
    // its owner never chose, and the write-only secret could be read back by
    // whoever runs that place: every secret must then come with the request.
    let moved = existing
        .as_ref()
        .is_some_and(|p| p.kind != input.kind.as_str() || p.base_url != input.base_url);
    let templates = crate::db::oauth::templates(conn)?;
    let mut new = Vec::with_capacity(input.keys.len());
    for k in &input.keys {
        if !k.oauth_template.is_empty() {
            if moved {
                refuse_moving_account(conn, &input.name, k)?;
            }
            let t = crate::oauth::template::find(&templates, master, &k.oauth_template)?
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "provider {:?}: key {:?} names oauth template {:?}, which does not exist",
                        input.name, k.name, k.oauth_template
                    ))
                })?;
            let fits =
                t.spec.provider_kind.is_empty() || t.spec.provider_kind == input.kind.as_str();
            if !fits {
                return Err(Error::invalid(format!(
                    "provider {:?}: oauth template {:?} is for {} providers, not {}",
                    input.name,
                    k.oauth_template,
                    t.spec.provider_kind,
                    input.kind.as_str()
                )));
            }
            new.push((
                k.name.clone(),
                String::new(),
                k.weight,
                k.oauth_template.clone(),
            ));
            continue;
        }
        let secret = if k.secret.is_empty() {
            let kept = old
                .iter()
                .find(|(n, s, _, t)| *n == k.name && t.is_empty() && !s.is_empty())
                .map(|(_, s, _, _)| s.clone());
            match kept {
                Some(_) if moved => {
                    return Err(Error::FailedPrecondition(format!(
                        "provider {:?}: re-enter the secret of key {:?}: the provider's address changed (base_url or kind), and a kept secret is never sent to a new address",
                        input.name, k.name
                    )));
                }
                Some(s) => s,
                None => {
                    return Err(Error::invalid(format!(
                        "provider {:?}: key {:?} needs a secret",
                        input.name, k.name
                    )));
                }
            }
        } else {
            k.secret.clone()
        };
        new.push((k.name.clone(), secret, k.weight, String::new()));
    }
    let models =
        serde_json::to_string(&input.models).map_err(|e| Error::internal(e.to_string()))?;
    let model_map =
        serde_json::to_string(&input.model_map).map_err(|e| Error::internal(e.to_string()))?;
    let interval = i32::try_from(input.health_interval_secs).unwrap_or(i32::MAX);

    let (row, created) = match existing {
        Some(p) => {
            let same = p.kind == input.kind.as_str()
                && p.health_interval_secs == interval
                && p.affinity == input.affinity.as_str()
                && p.base_url == input.base_url
                && parse_models(&p.models, &p.name)? == input.models
                && p.strategy == input.strategy.as_str()
                && parse_model_map(&p.model_map, &p.name)? == input.model_map
                && old == new;
            if same {
                return Ok((unchanged(), false));
            }
            let row = ProviderRow {
                kind: input.kind.as_str().into(),
                base_url: input.base_url.clone(),
                models,
                strategy: input.strategy.as_str().into(),
                model_map,
                health_interval_secs: interval,
                affinity: input.affinity.as_str().into(),
                updated_at_ms: now,
                ..p
            };
            config::update_provider(conn, &row)?;
            (row, false)
        }
        None => {
            let row = ProviderRow {
                id: crypto::new_id()?,
                name: input.name.clone(),
                kind: input.kind.as_str().into(),
                base_url: input.base_url.clone(),
                models,
                strategy: input.strategy.as_str().into(),
                created_at_ms: now,
                updated_at_ms: now,
                model_map,
                health_interval_secs: interval,
                affinity: input.affinity.as_str().into(),
            };
            config::insert_provider(conn, &row)?;
            (row, true)
        }
    };
    let mut key_rows = Vec::with_capacity(new.len());
    for (position, (name, secret, weight, template)) in new.iter().enumerate() {
        let prior = old_keys.iter().find(|k| k.name == *name);
        let (secret_enc, secret_hint) = if template.is_empty() {
            (
                master.encrypt(secret, &secret_context(&row.name, name))?,
                crypto::mask(secret, 3),
            )
        } else {
            (String::new(), String::new())
        };
        key_rows.push(ProviderKeyRow {
            id: crypto::new_id()?,
            provider_id: row.id.clone(),
            name: name.clone(),
            secret_enc,
            secret_hint,
            oauth_template: template.clone(),
            weight: i32::try_from(*weight).unwrap_or(1),
            position: i32::try_from(position).unwrap_or(i32::MAX),
            created_at_ms: prior.map_or(now, |k| k.created_at_ms),
            updated_at_ms: now,
        });
    }
    config::replace_keys(conn, &row.id, &key_rows)?;
    crate::oauth::account::forget_stale(conn)?;
    Ok((
        UpsertResult {
            created,
            changed: true,
            generated_key: String::new(),
        },
        true,
    ))
}

/// Refuses to move a connected OAuth account to a new provider address:
/// its access token cannot be entered again with the request, so it would
/// be sent where its owner never connected it. Removing the key forgets the
/// account; added back at the new address, it is connected again.
fn refuse_moving_account(conn: &mut AnyConnection, provider: &str, k: &KeyInput) -> Result<()> {
    let connected = crate::db::oauth::find_account(conn, provider, &k.name)?
        .is_some_and(|a| a.template == k.oauth_template);
    if connected {
        return Err(Error::FailedPrecondition(format!(
            "provider {provider:?}: key {:?} is a connected OAuth account and the provider's address changed (base_url or kind): its access token is never sent to a new address; remove the key first, then add it back and connect it again",
            k.name
        )));
    }
    Ok(())
}

pub fn unchanged() -> UpsertResult {
    UpsertResult {
        created: false,
        changed: false,
        generated_key: String::new(),
    }
}

pub fn list(conn: &mut AnyConnection, master: &MasterKey) -> Result<Vec<ProviderInfo>> {
    let health = crate::db::health::current(conn, None)?;
    let templates = crate::db::oauth::templates(conn)?;
    let accounts = crate::db::oauth::accounts(conn)?;
    config::list_providers(conn)?
        .into_iter()
        .map(|(p, keys)| {
            Ok(ProviderInfo {
                models: parse_models(&p.models, &p.name)?,
                model_map: parse_model_map(&p.model_map, &p.name)?,
                health_check_interval_secs: u32::try_from(p.health_interval_secs).unwrap_or(0),
                affinity: p.affinity,
                keys: keys
                    .into_iter()
                    .map(|k| ProviderKeyInfo {
                        health: Some(crate::health::info_of(&health, &p.name, &k.name)),
                        oauth: (!k.oauth_template.is_empty()).then(|| {
                            crate::oauth::account::info_of(
                                &templates,
                                master,
                                &accounts,
                                &p.name,
                                &k.name,
                                &k.oauth_template,
                            )
                        }),
                        oauth_template: k.oauth_template,
                        name: k.name,
                        secret_hint: k.secret_hint,
                        weight: u32::try_from(k.weight).unwrap_or(1),
                    })
                    .collect(),
                name: p.name,
                kind: p.kind,
                base_url: p.base_url,
                strategy: p.strategy,
            })
        })
        .collect()
}
