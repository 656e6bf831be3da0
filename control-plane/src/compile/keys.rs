//! Client key rows → the snapshot's keys, sorted by name. A key that
//! compiles to exactly what the previous version has is that version's
//! `Arc`: versions share their unchanged keys, only new or changed keys are
//! validated again, and a diff between versions skips shared keys without
//! comparing them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aigw_proto::model;
use aigw_proto::pb::config as pb;

use super::parse_models;
use crate::admin::budgets::Stored;
use crate::db::config::ConfigRows;
use crate::error::{Error, Result};

/// The user's and team's budgets (ids) the keys of each owner count toward.
fn owner_budgets(rows: &ConfigRows) -> HashMap<&str, Vec<String>> {
    let subjects: HashSet<&str> = rows.budgets.iter().map(|b| b.subject.as_str()).collect();
    let mut out = HashMap::new();
    for (id, _, team) in &rows.users {
        let mut budgets = Vec::new();
        let user = format!("user:{id}");
        if subjects.contains(user.as_str()) {
            budgets.push(user);
        }
        if let Some(team) = team.as_ref().map(|t| format!("team:{t}"))
            && subjects.contains(team.as_str())
        {
            budgets.push(team);
        }
        out.insert(id.as_str(), budgets);
    }
    out
}

/// Revoked keys, and the keys of disabled users (someone who left: their
/// keys must stop with their sign-in), are left out, so the data planes
/// refuse them. Enabling the user again brings their keys back.
pub fn compile(
    rows: &ConfigRows,
    previous: &[Arc<pb::ClientKey>],
) -> Result<Vec<Arc<pb::ClientKey>>> {
    let owners = owner_budgets(rows);
    let mut keys = Vec::with_capacity(rows.client_keys.len());
    let live = |k: &&crate::db::config::ClientKeyRow| {
        k.revoked_at_ms == 0
            && k.owner_user_id
                .as_ref()
                .is_none_or(|o| !rows.disabled_users.contains(o))
    };
    for k in rows.client_keys.iter().filter(live) {
        let key_hash = hex::decode(&k.key_hash).map_err(|_| {
            Error::internal(format!(
                "stored key hash of client key {} is corrupt",
                k.name
            ))
        })?;
        keys.push(pb::ClientKey {
            id: k.id.clone(),
            name: k.name.clone(),
            key_hash,
            models: parse_models(&k.models, &k.name)?,
            limits: Some(Stored::from(k).to_pb()),
            expires_at_ms: k.expires_at_ms,
            budgets: k
                .owner_user_id
                .as_deref()
                .and_then(|o| owners.get(o).cloned())
                .unwrap_or_default(),
            global: k.limits_global,
        });
    }
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    share_unchanged(keys, previous)
}

/// `previous` with the keys `names` replaced by their rows in `rows` (which
/// holds those rows only, with the core's): the same result as compiling
/// every row, for a change that touched only these keys. A name without a
/// row (deleted) or with a revoked one leaves the snapshot.
pub fn patch(
    rows: &ConfigRows,
    previous: &[Arc<pb::ClientKey>],
    names: &HashSet<&str>,
) -> Result<Vec<Arc<pb::ClientKey>>> {
    let fresh = compile(rows, previous)?;
    let mut out = Vec::with_capacity(previous.len() + fresh.len());
    let mut fresh = fresh.into_iter().peekable();
    for p in previous.iter().filter(|p| !names.contains(p.name.as_str())) {
        while let Some(k) = fresh.next_if(|k| k.name < p.name) {
            out.push(k);
        }
        out.push(p.clone());
    }
    out.extend(fresh);
    Ok(out)
}

/// Wraps each key in an `Arc`, reusing `previous`'s when equal (both lists
/// sorted by name) and validating the others.
fn share_unchanged(
    keys: Vec<pb::ClientKey>,
    previous: &[Arc<pb::ClientKey>],
) -> Result<Vec<Arc<pb::ClientKey>>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut prev = previous.iter().peekable();
    for k in keys {
        while prev.next_if(|p| p.name < k.name).is_some() {}
        match prev.next_if(|p| p.name == k.name) {
            Some(p) if **p == k => out.push(p.clone()),
            _ => {
                model::check_client_key(&k)?;
                out.push(Arc::new(k));
            }
        }
    }
    Ok(out)
}

/// What the data planes would refuse in the keys as a whole: two keys with
/// one hash, a budget the snapshot lacks.
pub fn check(keys: &[Arc<pb::ClientKey>], core: &pb::Snapshot) -> Result<()> {
    let budgets: HashSet<&str> = core.budgets.iter().map(|b| b.id.as_str()).collect();
    let mut hashes = HashSet::with_capacity(keys.len());
    for k in keys {
        if !hashes.insert(k.key_hash.as_slice()) {
            return Err(Error::internal(format!(
                "client key {} has the hash of another key",
                k.name
            )));
        }
        if let Some(missing) = k.budgets.iter().find(|b| !budgets.contains(b.as_str())) {
            return Err(model::InvalidSnapshot::UnknownBudget {
                key: k.name.clone(),
                budget: missing.clone(),
            }
            .into());
        }
    }
    Ok(())
}
