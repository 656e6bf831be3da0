//! Routes: a model glob and the providers tried for it, in order, or the
//! model it is an alias of. Every provider a route names must exist, and a
//! provider a route names cannot be deleted, so the snapshot never refers to
//! a missing provider. Whether an alias leads somewhere is checked with the
//! whole snapshot (`Snapshot::try_from`) when the change is compiled.

use aigw_proto::pb::admin::{RouteSpec, UpsertResult};

use super::providers::unchanged;
use super::validate;
use crate::compile::route_order;
use crate::db::config::{self, RouteRow};
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// Fallback chains longer than this make no sense.
const MAX_CHAIN: usize = 16;

pub fn validate(spec: &RouteSpec) -> Result<()> {
    validate::glob("route", &spec.model)?;
    let what = format!("route {:?}", spec.model);
    if !spec.alias_of.is_empty() {
        validate::name(&format!("{what} alias_of"), &spec.alias_of)?;
        if !spec.providers.is_empty() {
            return Err(Error::invalid(format!(
                "{what}: an alias (alias_of) names no providers: it takes its target's"
            )));
        }
        return Ok(());
    }
    if spec.providers.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: names no provider (and is not an alias: alias_of)"
        )));
    }
    if spec.providers.len() > MAX_CHAIN {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_CHAIN} providers"
        )));
    }
    for (i, p) in spec.providers.iter().enumerate() {
        validate::name(&format!("{what} provider"), p)?;
        if spec.providers[..i].contains(p) {
            return Err(Error::invalid(format!(
                "{what}: provider {p:?} is listed twice"
            )));
        }
    }
    Ok(())
}

pub fn upsert(conn: &mut AnyConnection, spec: &RouteSpec) -> Result<(UpsertResult, bool)> {
    for p in &spec.providers {
        if config::find_provider(conn, p)?.is_none() {
            return Err(Error::invalid(format!(
                "route {:?} names unknown provider {p:?}",
                spec.model
            )));
        }
    }
    let now = now_ms();
    let providers =
        serde_json::to_string(&spec.providers).map_err(|e| Error::internal(e.to_string()))?;
    let same = |old: &RouteRow| {
        old.providers == providers && old.strict == spec.strict && old.alias_of == spec.alias_of
    };
    let created = match config::find_route(conn, &spec.model)? {
        Some(old) if same(&old) => return Ok((unchanged(), false)),
        Some(old) => {
            config::update_route(
                conn,
                &RouteRow {
                    providers,
                    updated_at_ms: now,
                    strict: spec.strict,
                    alias_of: spec.alias_of.clone(),
                    ..old
                },
            )?;
            false
        }
        None => {
            config::insert_route(
                conn,
                &RouteRow {
                    model: spec.model.clone(),
                    providers,
                    created_at_ms: now,
                    updated_at_ms: now,
                    strict: spec.strict,
                    alias_of: spec.alias_of.clone(),
                },
            )?;
            true
        }
    };
    Ok((
        UpsertResult {
            created,
            changed: true,
            generated_key: String::new(),
        },
        true,
    ))
}

/// In the order the data planes try them.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<RouteSpec>> {
    let mut out = config::list_routes(conn)?
        .into_iter()
        .map(|r| {
            let providers = serde_json::from_str(&r.providers).map_err(|e| {
                Error::internal(format!(
                    "stored providers of route {} are corrupt: {e}",
                    r.model
                ))
            })?;
            Ok(RouteSpec {
                model: r.model,
                providers,
                strict: r.strict,
                alias_of: r.alias_of,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| route_order(&a.model, &b.model));
    Ok(out)
}

/// Refuses to delete a provider that a route still names.
pub fn check_unused(conn: &mut AnyConnection, provider: &str) -> Result<()> {
    let users: Vec<String> = list(conn)?
        .into_iter()
        .filter(|r| r.providers.iter().any(|p| p == provider))
        .map(|r| r.model)
        .collect();
    if users.is_empty() {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(format!(
            "provider {provider:?} is used by route(s) {}; change or delete them first",
            users.join(", ")
        )))
    }
}
