//! Client keys in bulk: the existing keys are read once into maps (by
//! name, by hash, count per owner), each key of the file is decided in
//! memory by `client_keys::plan` (the rules of UpsertClientKey, in file
//! order, each decision seeing the ones before it), then changed rows are
//! updated one by one and new rows inserted many per statement.
//!
//! Updates run before inserts: a new key may take a hash an updated key
//! just gave up, never the other way round (a hash is free only once no
//! key has it, and the decisions are made in order).

use std::collections::HashMap;

use aigw_proto::pb::admin::{ClientKeySpec, UpsertResult};

use super::Report;
use crate::admin::Change;
use crate::admin::client_keys::{self, ClientKeyInput, KeyLookups, KeyPlan};
use crate::admin::rbac::Principal;
use crate::db::AnyConnection;
use crate::db::config::{self, ClientKeyRow};
use crate::db::identity::{find_user, list_users};
use crate::error::Result;

/// The keys as they stand, updated as the file's keys are decided.
struct Index {
    by_name: HashMap<String, ClientKeyRow>,
    /// Key hash → the name of the key that has it.
    by_hash: HashMap<String, String>,
    /// User id → how many keys they own.
    owned: HashMap<String, i64>,
}

impl KeyLookups for Index {
    fn name_of_hash(&mut self, key_hash: &str) -> Result<Option<String>> {
        Ok(self.by_hash.get(key_hash).cloned())
    }

    fn keys_owned_by(&mut self, user_id: &str) -> Result<i64> {
        Ok(self.owned.get(user_id).copied().unwrap_or(0))
    }
}

impl Index {
    fn load(conn: &mut AnyConnection) -> Result<Self> {
        let rows = config::list_client_keys(conn, None)?;
        let mut index = Index {
            by_name: HashMap::with_capacity(rows.len()),
            by_hash: HashMap::with_capacity(rows.len()),
            owned: HashMap::new(),
        };
        for row in rows {
            index.record(row);
        }
        Ok(index)
    }

    fn record(&mut self, row: ClientKeyRow) {
        if let Some(old) = self.by_name.remove(&row.name) {
            self.by_hash.remove(&old.key_hash);
            if let Some(owner) = &old.owner_user_id {
                *self.owned.entry(owner.clone()).or_default() -= 1;
            }
        }
        if let Some(owner) = &row.owner_user_id {
            *self.owned.entry(owner.clone()).or_default() += 1;
        }
        self.by_hash.insert(row.key_hash.clone(), row.name.clone());
        self.by_name.insert(row.name.clone(), row);
    }
}

/// Who owns the key: nobody for a new key the spec gives no owner (it
/// belongs to the file), else as UpsertClientKey decides.
fn owner(
    who: &Principal,
    spec: &ClientKeySpec,
    existing: Option<&ClientKeyRow>,
    user_id: impl FnOnce(&str) -> Result<Option<String>>,
) -> Result<Option<String>> {
    if spec.owner.is_empty() && existing.is_none() {
        return Ok(None);
    }
    client_keys::owner(who, &spec.owner, existing, user_id)
}

/// The audit entry of a key's upsert, when it changed something.
fn change(result: &UpsertResult, spec: &ClientKeySpec) -> Option<Change> {
    Change::of_upsert(result).map(|c| match spec.owner.as_str() {
        "" => c,
        o => c.with(format!("owner={o}")),
    })
}

/// Up to this many keys, each is looked up and written on its own (as
/// UpsertClientKey does) rather than reading every key first: a file that
/// adds one key to 100,000 should not read them all.
pub(super) const ONE_BY_ONE: usize = 256;

/// Upserts every key of the file; reports each, audits those changed.
/// Keys the file creates have no owner unless the spec names one: they
/// belong to the file (which `--prune` manages), not to whoever applied it.
pub fn upsert_all(
    conn: &mut AnyConnection,
    who: &Principal,
    inputs: Vec<ClientKeyInput>,
    report: &mut Report,
) -> Result<()> {
    if inputs.len() <= ONE_BY_ONE {
        return upsert_one_by_one(conn, who, &inputs, report);
    }
    let mut index = Index::load(conn)?;
    let users: HashMap<String, String> = if inputs.iter().any(|k| !k.spec.owner.is_empty()) {
        list_users(conn)?
            .into_iter()
            .map(|u| (u.username, u.id))
            .collect()
    } else {
        HashMap::new()
    };
    let mut updates = Vec::new();
    let mut inserts = Vec::new();
    for input in &inputs {
        let spec = &input.spec;
        let existing = index.by_name.get(&spec.name).cloned();
        let owner = owner(who, spec, existing.as_ref(), |name| {
            Ok(users.get(name).cloned())
        })?;
        let plan = client_keys::plan(input, existing.as_ref(), owner, false, &mut index)?;
        let result = plan.result();
        let row = match plan {
            KeyPlan::Unchanged => None,
            KeyPlan::Update(row) => {
                updates.push(row.clone());
                Some(row)
            }
            KeyPlan::Insert(row, _) => {
                inserts.push(row.clone());
                Some(row)
            }
        };
        report.upserted("client_key", &spec.name, &result, change(&result, spec));
        if let Some(row) = row {
            index.record(row);
        }
    }
    for row in &updates {
        config::update_client_key(conn, row)?;
    }
    config::insert_client_keys(conn, &inserts)?;
    Ok(())
}

/// The few keys of a small file, each as UpsertClientKey would.
fn upsert_one_by_one(
    conn: &mut AnyConnection,
    who: &Principal,
    inputs: &[ClientKeyInput],
    report: &mut Report,
) -> Result<()> {
    for input in inputs {
        let spec = &input.spec;
        let existing = config::find_client_key(conn, &spec.name)?;
        let owner = owner(who, spec, existing.as_ref(), |name| {
            Ok(find_user(conn, name)?.map(|u| u.id))
        })?;
        let (result, _) = client_keys::upsert(conn, input, existing, owner, false)?;
        report.upserted("client_key", &spec.name, &result, change(&result, spec));
    }
    Ok(())
}
