//! Database rows -> the snapshot the data planes serve. Pure: the same rows
//! always give the same bytes, so the version (a hash of those bytes) changes
//! exactly when the configuration does, and data planes are only sent real
//! changes. Every snapshot is checked with the data plane's own validation
//! before anyone may publish it.

use std::collections::BTreeMap;

use aigw_proto::model;
use aigw_proto::pb::config as pb;
use prost::Message as _;
use ring::digest::{SHA256, digest};

use crate::admin::budgets::Stored;
use crate::crypto::MasterKey;
use crate::db::config::{ConfigRows, group_keys};
use crate::db::health::HealthRow;
use crate::error::{Error, Result};

/// The associated data a provider key's secret is sealed with.
pub fn secret_context(provider: &str, key: &str) -> String {
    format!("provider_key:{provider}/{key}")
}

/// Parses a JSON array of model globs as stored.
pub fn parse_models(json: &str, owner: &str) -> Result<Vec<String>> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("stored models of {owner} are corrupt: {e}")))
}

/// Parses a provider's stored model map (a JSON object).
pub fn parse_model_map(json: &str, owner: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("stored model_map of {owner} is corrupt: {e}")))
}

/// The order routes are tried in: the most specific first (exact names,
/// then longer patterns), then by pattern, so the result does not depend on
/// the order they were created in.
pub fn route_order(a: &str, b: &str) -> std::cmp::Ordering {
    let wild = |s: &str| s.contains(['*', '?']);
    wild(a)
        .cmp(&wild(b))
        .then_with(|| b.len().cmp(&a.len()))
        .then_with(|| a.cmp(b))
}

/// What the data planes need to know of a key's last health check: only
/// that it is unusable, and until when. A healthy or never checked key
/// carries nothing, so checks that find nothing new change no version.
fn unusable(health: &[HealthRow], provider: &str, key: &str) -> Option<pb::KeyHealth> {
    let h = health
        .iter()
        .find(|h| h.provider == provider && h.key_name == key)?;
    crate::health::blocks(&h.status).then(|| pb::KeyHealth {
        status: h.status.clone(),
        retry_at_ms: h.retry_at_ms,
        detail: h.detail.clone(),
    })
}

/// The snapshot key of an OAuth account: its access token, its template's
/// headers, and unusable while its refresh token is refused. None until the
/// account is connected.
fn oauth_key(
    rows: &ConfigRows,
    master: &MasterKey,
    provider: &str,
    key: &str,
    template: &str,
    weight: u32,
) -> Result<Option<pb::ProviderKey>> {
    use crate::oauth::account;
    let Some(a) = rows
        .oauth_accounts
        .iter()
        .find(|a| a.provider == provider && a.key_name == key && a.template == template)
    else {
        return Ok(None);
    };
    let health = if a.status == account::REVOKED {
        Some(pb::KeyHealth {
            status: "invalid_credential".into(),
            retry_at_ms: 0,
            detail: "the OAuth refresh token was refused: reconnect the account".into(),
        })
    } else {
        unusable(&rows.health, provider, key)
    };
    Ok(Some(pb::ProviderKey {
        name: key.into(),
        secret: master.decrypt(&a.access_enc, &account::access_context(provider, key))?,
        weight,
        health,
        oauth: true,
        headers: account::headers(&rows.oauth_templates, master, a),
    }))
}

/// The user's and team's budgets a key of `owner` counts toward.
fn budgets_of_owner(rows: &ConfigRows, owner: Option<&str>) -> Vec<String> {
    let Some(owner) = owner else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let user = format!("user:{owner}");
    if rows.budgets.iter().any(|b| b.subject == user) {
        out.push(user);
    }
    let team = rows
        .users
        .iter()
        .find(|(id, _, _)| id == owner)
        .and_then(|(_, _, t)| t.as_ref())
        .map(|t| format!("team:{t}"));
    if let Some(team) = team
        && rows.budgets.iter().any(|b| b.subject == team)
    {
        out.push(team);
    }
    out
}

/// Users' and teams' budgets, named for people ("user alice"), by subject.
fn user_and_team_budgets(rows: &ConfigRows) -> Vec<pb::Budget> {
    rows.budgets
        .iter()
        .map(|b| {
            let name = match b.subject.split_once(':') {
                Some(("user", id)) => rows
                    .users
                    .iter()
                    .find(|(u, _, _)| u == id)
                    .map_or_else(|| b.subject.clone(), |(_, n, _)| format!("user {n}")),
                Some(("team", id)) => rows
                    .teams
                    .iter()
                    .find(|t| t.id == id)
                    .map_or_else(|| b.subject.clone(), |t| format!("team {}", t.name)),
                _ => b.subject.clone(),
            };
            let stored = Stored::from(b);
            pb::Budget {
                id: b.subject.clone(),
                name,
                limits: Some(stored.to_pb()),
                global: b.global,
            }
        })
        .collect()
}

/// Builds, versions and validates the snapshot. Providers, pricing and
/// client keys are sorted by name (model for pricing); a provider's keys keep
/// their spec order, which fill-first depends on. Revoked client keys are
/// left out, so the data planes refuse them.
pub fn compile(rows: &ConfigRows, master: &MasterKey) -> Result<pb::Snapshot> {
    let mut providers = Vec::with_capacity(rows.providers.len());
    for (p, keys) in group_keys(rows.providers.clone(), rows.keys.clone()) {
        let mut out_keys = Vec::with_capacity(keys.len());
        let mut oauth_base_url = None;
        for k in keys {
            let weight = u32::try_from(k.weight).unwrap_or(1).max(1);
            if !k.oauth_template.is_empty() {
                // An OAuth account: its access token and headers, once
                // connected. Never its refresh token.
                let Some(key) =
                    oauth_key(rows, master, &p.name, &k.name, &k.oauth_template, weight)?
                else {
                    continue;
                };
                if oauth_base_url.is_none() {
                    oauth_base_url = crate::oauth::template::find(
                        &rows.oauth_templates,
                        master,
                        &k.oauth_template,
                    )?
                    .map(|t| t.spec.api_base_url)
                    .filter(|u| !u.is_empty());
                }
                out_keys.push(key);
                continue;
            }
            let context = secret_context(&p.name, &k.name);
            out_keys.push(pb::ProviderKey {
                secret: master.decrypt(&k.secret_enc, &context)?,
                health: unusable(&rows.health, &p.name, &k.name),
                oauth: false,
                headers: BTreeMap::new(),
                name: k.name,
                weight,
            });
        }
        // A provider of OAuth accounts may leave base_url to their template.
        let base_url = match (p.base_url.is_empty(), oauth_base_url) {
            (true, Some(u)) => u,
            _ => p.base_url,
        };
        providers.push(pb::Provider {
            models: parse_models(&p.models, &p.name)?,
            model_map: parse_model_map(&p.model_map, &p.name)?,
            name: p.name,
            kind: p.kind,
            base_url,
            strategy: p.strategy,
            keys: out_keys,
            affinity: p.affinity,
        });
    }
    providers.sort_by(|a, b| a.name.cmp(&b.name));

    let mut pricing: Vec<pb::Price> = rows
        .pricing
        .iter()
        .map(|p| pb::Price {
            model: p.model.clone(),
            input: p.input,
            output: p.output,
            cached_input: p.cached_input,
        })
        .collect();
    pricing.sort_by(|a, b| a.model.cmp(&b.model));

    let mut client_keys = Vec::with_capacity(rows.client_keys.len());
    for k in rows.client_keys.iter().filter(|k| k.revoked_at_ms == 0) {
        let key_hash = hex::decode(&k.key_hash).map_err(|_| {
            Error::internal(format!(
                "stored key hash of client key {} is corrupt",
                k.name
            ))
        })?;
        client_keys.push(pb::ClientKey {
            id: k.id.clone(),
            name: k.name.clone(),
            key_hash,
            models: parse_models(&k.models, &k.name)?,
            limits: Some(Stored::from(k).to_pb()),
            expires_at_ms: k.expires_at_ms,
            budgets: budgets_of_owner(rows, k.owner_user_id.as_deref()),
            global: k.limits_global,
        });
    }
    client_keys.sort_by(|a, b| a.name.cmp(&b.name));

    let mut routes = Vec::with_capacity(rows.routes.len());
    for r in &rows.routes {
        let providers: Vec<String> = serde_json::from_str(&r.providers).map_err(|e| {
            Error::internal(format!(
                "stored providers of route {} are corrupt: {e}",
                r.model
            ))
        })?;
        routes.push(pb::Route {
            model: r.model.clone(),
            providers,
            strict: r.strict,
            alias_of: r.alias_of.clone(),
        });
    }
    routes.sort_by(|a, b| route_order(&a.model, &b.model));

    let mut snapshot = pb::Snapshot {
        version: String::new(),
        providers,
        pricing,
        client_keys,
        routes,
        budgets: user_and_team_budgets(rows),
        leases: rows
            .leases
            .iter()
            .map(|l| pb::Lease {
                budget: l.budget.clone(),
                region: l.region.clone(),
                period: l.period.clone(),
                tokens: l.tokens.and_then(|t| u64::try_from(t).ok()),
                cost: l.cost,
            })
            .collect(),
    };
    snapshot.version = version_of(&snapshot);
    let size = snapshot.encoded_len();
    if size > model::MAX_SNAPSHOT_BYTES {
        return Err(Error::invalid(format!(
            "the configuration would take {size} bytes, over the {} the data planes accept; nothing was changed",
            model::MAX_SNAPSHOT_BYTES
        )));
    }
    model::Snapshot::try_from(snapshot.clone())?;
    Ok(snapshot)
}

/// Hex SHA-256 of the encoded snapshot with its version field empty. prost
/// encodes fields in tag order and maps are generated as BTreeMaps (see the
/// proto build script), so the bytes are stable.
pub fn version_of(snapshot: &pb::Snapshot) -> String {
    let mut unversioned = snapshot.clone();
    unversioned.version.clear();
    hex::encode(digest(&SHA256, &unversioned.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::config::{ClientKeyRow, PriceRow, ProviderKeyRow, ProviderRow, RouteRow};

    fn master() -> MasterKey {
        MasterKey::from_hex(&"42".repeat(32)).unwrap()
    }

    fn rows(m: &MasterKey) -> ConfigRows {
        let provider = |id: &str, name: &str| ProviderRow {
            id: id.into(),
            name: name.into(),
            kind: "openai".into(),
            base_url: String::new(),
            models: r#"["gpt-4o*"]"#.into(),
            strategy: "round-robin".into(),
            created_at_ms: 1,
            updated_at_ms: 1,
            model_map: r#"{"gpt-4o-fast":"gpt-4o-mini"}"#.into(),
            health_interval_secs: 60,
            affinity: String::new(),
        };
        let key = |pid: &str, pname: &str, name: &str, pos: i32| ProviderKeyRow {
            id: format!("{pid}-{name}"),
            provider_id: pid.into(),
            name: name.into(),
            secret_enc: m
                .encrypt(&format!("sk-{name}"), &secret_context(pname, name))
                .unwrap(),
            secret_hint: "…".into(),
            weight: 2,
            position: pos,
            created_at_ms: 1,
            updated_at_ms: 1,
            oauth_template: String::new(),
        };
        ConfigRows {
            // Deliberately out of order: compile sorts.
            providers: vec![provider("p2", "zeta"), provider("p1", "alpha")],
            keys: vec![
                key("p1", "alpha", "b", 1),
                key("p1", "alpha", "a", 0),
                key("p2", "zeta", "z", 0),
            ],
            pricing: vec![PriceRow {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 10.0,
                cached_input: Some(1.25),
                updated_at_ms: 1,
            }],
            client_keys: vec![ClientKeyRow {
                id: "c1".into(),
                name: "checkout".into(),
                key_hash: crate::crypto::sha256_hex("sk-aigw-x"),
                key_hint: "…".into(),
                models: "[]".into(),
                rpm: Some(600),
                tokens_per_day: None,
                cost_per_day: Some(25.0),
                expires_at_ms: 0,
                created_at_ms: 1,
                updated_at_ms: 1,
                owner_user_id: None,
                revoked_at_ms: 0,
                rps: None,
                tokens_per_minute: None,
                cost_per_month: None,
                concurrent: None,
                limits_global: false,
                when_store_down: String::new(),
            }],
            routes: vec![
                RouteRow {
                    model: "gpt-*".into(),
                    providers: r#"["zeta","alpha"]"#.into(),
                    created_at_ms: 1,
                    updated_at_ms: 1,
                    strict: false,
                    alias_of: String::new(),
                },
                RouteRow {
                    model: "gpt-4o".into(),
                    providers: r#"["alpha"]"#.into(),
                    created_at_ms: 1,
                    updated_at_ms: 1,
                    strict: false,
                    alias_of: String::new(),
                },
            ],
            ..Default::default()
        }
    }

    fn health(key: &str, status: &str, detail: &str) -> HealthRow {
        HealthRow {
            provider: "alpha".into(),
            key_name: key.into(),
            status: status.into(),
            http_status: 401,
            latency_us: 5,
            detail: detail.into(),
            checked_at_ms: 7,
            retry_at_ms: 0,
            trigger_kind: "schedule".into(),
        }
    }

    #[test]
    fn only_unusable_keys_carry_health_and_checks_alone_change_nothing() {
        let m = master();
        let base = compile(&rows(&m), &m).unwrap();
        // A healthy check (or one at another time) changes no version.
        let mut r = rows(&m);
        r.health = vec![health("a", "ok", "")];
        assert_eq!(compile(&r, &m).unwrap().version, base.version);
        // An unusable key is marked, and that is a new version.
        r.health = vec![health("a", "invalid_credential", "Incorrect API key")];
        let s = compile(&r, &m).unwrap();
        assert_ne!(s.version, base.version);
        let h = s.providers[0].keys[0].health.clone().unwrap();
        assert_eq!(
            (h.status.as_str(), h.detail.as_str()),
            ("invalid_credential", "Incorrect API key")
        );
        assert!(s.providers[0].keys[1].health.is_none());
        r.health[0].checked_at_ms = 99;
        assert_eq!(compile(&r, &m).unwrap().version, s.version);
    }

    #[test]
    fn same_rows_same_version_despite_fresh_encryption() {
        let m = master();
        // Each call re-encrypts with fresh nonces: the version must not care.
        let a = compile(&rows(&m), &m).unwrap();
        let b = compile(&rows(&m), &m).unwrap();
        assert_eq!(a.version, b.version);
        assert_eq!(a.version.len(), 64);
        assert_eq!(a, b);
        assert_eq!(a.providers[0].name, "alpha");
        assert_eq!(a.providers[0].keys[0].name, "a");
        assert_eq!(a.providers[0].keys[0].secret, "sk-a");
        assert_eq!(a.client_keys[0].key_hash.len(), 32);
        assert_eq!(version_of(&a), a.version);
    }

    #[test]
    fn a_change_gives_a_new_version() {
        let m = master();
        let base = compile(&rows(&m), &m).unwrap();
        let mut r = rows(&m);
        r.pricing[0].output = 11.0;
        assert_ne!(compile(&r, &m).unwrap().version, base.version);
        let mut r = rows(&m);
        r.keys[0].secret_enc = m
            .encrypt("sk-rotated", &secret_context("alpha", "b"))
            .unwrap();
        assert_ne!(compile(&r, &m).unwrap().version, base.version);
    }

    #[test]
    fn routes_model_maps_and_revoked_keys() {
        let m = master();
        let s = compile(&rows(&m), &m).unwrap();
        // The exact route first, then the pattern.
        let routes: Vec<(&str, Vec<&str>)> = s
            .routes
            .iter()
            .map(|r| {
                (
                    r.model.as_str(),
                    r.providers.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            routes,
            [("gpt-4o", vec!["alpha"]), ("gpt-*", vec!["zeta", "alpha"])]
        );
        assert_eq!(s.providers[0].model_map["gpt-4o-fast"], "gpt-4o-mini");
        let served = model::Snapshot::try_from(s.clone()).unwrap();
        assert_eq!(served.route_chain("gpt-4o").count(), 1);
        assert_eq!(served.route_chain("gpt-4o-mini").count(), 2);

        let mut r = rows(&m);
        r.client_keys[0].revoked_at_ms = 5;
        let revoked = compile(&r, &m).unwrap();
        assert!(revoked.client_keys.is_empty());
        assert_ne!(revoked.version, s.version);

        let mut r = rows(&m);
        r.routes[0].providers = r#"["ghost"]"#.into();
        assert!(matches!(compile(&r, &m), Err(Error::InvalidSnapshot(_))));
    }

    #[test]
    fn route_order_prefers_specific_routes() {
        let mut v = vec!["*", "gpt-*", "gpt-4o", "gpt-4o*", "a"];
        v.sort_by(|a, b| route_order(a, b));
        assert_eq!(v, ["gpt-4o", "a", "gpt-4o*", "gpt-*", "*"]);
    }

    #[test]
    fn invalid_rows_are_refused() {
        let m = master();
        let mut r = rows(&m);
        r.providers[0].kind = "openai-compatible".into();
        assert!(matches!(compile(&r, &m), Err(Error::InvalidSnapshot(_))));
        let other = MasterKey::from_hex(&"43".repeat(32)).unwrap();
        assert!(matches!(compile(&rows(&m), &other), Err(Error::Decrypt(_))));
    }
}
