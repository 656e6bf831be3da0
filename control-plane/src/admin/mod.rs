//! The Admin API: AdminService (configuration), IdentityService (users,
//! tokens, roles, audit log) and InsightService (traces, usage, pool
//! health), all served by [`AdminSvc`], for the web UI's gateway and for
//! automation alike.
//!
//! Every handler starts with [`AdminSvc::caller`] (authenticate, then
//! `rbac::authorize` on its method) and checks the objects it touches with
//! `rbac::authorize` again. Each mutation runs in one write transaction that
//! also writes its audit entry and recompiles the snapshot; an invalid result
//! rolls everything back, a valid one is published right after the commit,
//! so data planes see the change before the call returns (and within a
//! second in practice).

pub mod apply;
pub mod audit;
pub mod authn;
pub mod budgets;
pub mod client_keys;
pub mod config_file;
pub mod gate;
pub mod identity;
pub mod insight;
pub mod nodes;
pub mod oauth;
pub mod overview;
pub mod page;
pub mod pricing;
pub mod providers;
pub mod rbac;
pub mod routes;
pub mod service;
pub mod throttle;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod validate;

use std::sync::{Arc, Mutex, PoisonError};

use aigw_proto::pb::admin::UpsertResult;
use tonic::{Request, Status};

use self::rbac::{Access, Principal, Target};
use crate::compile::{compile, compile_keys_changed};
use crate::crypto::{self, MasterKey};
use crate::db::config::{client_keys_named, load_all, load_core};
use crate::db::identity::{AuditRow, insert_audit};
use crate::db::{AnyConnection, Db, write_tx};
use crate::error::Result;
use crate::push::{Publisher, Registry};

#[derive(Clone)]
pub struct AdminSvc {
    pub db: Db,
    pub master: MasterKey,
    pub publisher: Publisher,
    pub registry: Registry,
    /// SHA-256 of the bootstrap tokens accepted without a database lookup
    /// (AIGW_ADMIN_TOKEN). Stored tokens are looked up per call, so a
    /// revocation takes effect at once.
    pub bootstrap_tokens: Arc<[[u8; 32]]>,
    /// Serializes mutations so snapshots are published in commit order. A
    /// std mutex, held on the blocking thread, because that thread finishes
    /// commit and publish even if the caller goes away mid-request.
    pub write_lock: Arc<Mutex<()>>,
    /// Peers (admin-web) whose `x-aigw-client-ip` is believed for the
    /// login throttle; anyone else is throttled by their own address.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// Checks a credential on demand (`CheckCredential`).
    pub checker: crate::health::Checker,
    /// Token endpoints and the refresher, for the OAuth calls.
    pub oauth: crate::oauth::Handle,
    /// What keys used today and this month, shown beside their limits.
    pub budgets: crate::budgets::Budgets,
}

/// What a mutation did, for the audit log. `detail` never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: &'static str,
    pub detail: String,
    /// Whether the configuration (and so the snapshot) may have changed.
    pub config: bool,
}

impl Change {
    /// A configuration change.
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            detail: String::new(),
            config: true,
        }
    }

    /// A change to users, sessions or tokens: nothing to recompile.
    pub fn account(action: &'static str) -> Self {
        Self {
            config: false,
            ..Self::new(action)
        }
    }

    pub fn with(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// "create" or "update" for an upsert that changed something.
    pub fn of_upsert(r: &UpsertResult) -> Option<Self> {
        match (r.created, r.changed) {
            (true, _) => Some(Self::new("create")),
            (false, true) => Some(Self::new("update")),
            (false, false) => None,
        }
    }
}

/// The object a mutation is about, for the audit log.
pub struct Object {
    pub kind: &'static str,
    pub name: String,
}

impl Object {
    pub fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

/// The time of an audit entry and its id: the time in nanoseconds, then
/// random, so entries of one millisecond still list in the order they were
/// made (the log is ordered by time, then id).
fn audit_id() -> Result<(i64, String)> {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let at_ms = i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX);
    Ok((at_ms, format!("{ns:020}-{}", &crypto::new_id()?[..8])))
}

/// The names of the client keys `changes` touched, when the configuration
/// changes are to client keys only and few: then only those keys are read
/// and compiled again (`compile_keys_changed`). A key's compiled form
/// depends on its row and on its owner's and team's budgets, which other
/// kinds of change (budgets, teams) touch; those recompile everything.
fn changed_keys_only(changes: &[(Object, Change)]) -> Option<Vec<String>> {
    const MAX: usize = 10_000;
    let config = changes.iter().filter(|(_, c)| c.config);
    let mut names = Vec::new();
    for (what, _) in config {
        if what.kind != "client_key" || names.len() == MAX {
            return None;
        }
        names.push(what.name.clone());
    }
    Some(names)
}

/// Audit entries for `changes`, logged one by one when they are few.
fn audit_rows(
    actor: &str,
    actor_user_id: Option<&str>,
    changes: Vec<(Object, Change)>,
) -> Result<Vec<AuditRow>> {
    let loud = changes.len() <= 20;
    if !loud {
        tracing::info!(actor, changes = changes.len(), "admin changes");
    }
    changes
        .into_iter()
        .map(|(what, change)| {
            if loud {
                tracing::info!(
                    actor, action = change.action, kind = what.kind, name = %what.name,
                    "admin change"
                );
            }
            let (at_ms, id) = audit_id()?;
            Ok(AuditRow {
                id,
                at_ms,
                actor: actor.to_string(),
                actor_user_id: actor_user_id.map(str::to_string),
                action: change.action.into(),
                object_kind: what.kind.into(),
                object_name: what.name,
                detail: change.detail,
            })
        })
        .collect()
}

impl AdminSvc {
    /// Authenticates the call and checks that its role may call `method` at
    /// all; `Access::Own` means it may only see and touch its own objects.
    pub async fn caller<T>(
        &self,
        req: &Request<T>,
        method: &str,
    ) -> Result<(Principal, Access), Status> {
        // Served through `gate::Gated`, the caller was found before the
        // body was read; in process (config files), it is looked up here.
        let p = match req.extensions().get::<gate::Authenticated>() {
            Some(found) => found.0.clone(),
            None => authn::authenticate(&self.db, &self.bootstrap_tokens, req.metadata()).await?,
        };
        let access = rbac::authorize(&p, method, Target::None)?;
        Ok((p, access))
    }

    /// Runs `change` in a write transaction. When it reports a change, the
    /// audit entry is written and the snapshot recompiled (validated) in the
    /// same transaction, and the snapshot is published after the commit
    /// (a no-op for the data planes when its version did not move).
    pub async fn mutate<T, F>(&self, who: &Principal, what: Object, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection, &MasterKey) -> Result<(T, Option<Change>)> + Send + 'static,
    {
        self.mutate_many(who, move |conn, master| {
            let (out, change) = change(conn, master)?;
            Ok((out, change.map(|c| (what, c)).into_iter().collect()))
        })
        .await
    }

    /// [`mutate`](Self::mutate) for a change to many objects at once (a
    /// whole configuration): one transaction, one audit entry per object
    /// changed (inserted together), one recompile, one publish.
    pub async fn mutate_many<T, F>(&self, who: &Principal, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection, &MasterKey) -> Result<(T, Vec<(Object, Change)>)>
            + Send
            + 'static,
    {
        let master = self.master.clone();
        let publisher = self.publisher.clone();
        let lock = self.write_lock.clone();
        let actor = who.actor();
        let actor_user_id = who.user_id.clone();
        self.db
            .run(move |conn| {
                let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (out, snapshot) = write_tx(conn, |conn| {
                    let (out, changes) = change(conn, &master)?;
                    if changes.is_empty() {
                        return Ok((out, None));
                    }
                    let config = changes.iter().any(|(_, c)| c.config);
                    let keys = changed_keys_only(&changes);
                    let rows = audit_rows(&actor, actor_user_id.as_deref(), changes)?;
                    insert_audit(conn, &rows)?;
                    if !config {
                        return Ok((out, None));
                    }
                    let previous = publisher.current();
                    let compiled = match keys {
                        Some(names) => {
                            let mut rows = load_core(conn)?;
                            rows.client_keys = client_keys_named(conn, &names)?;
                            compile_keys_changed(&rows, &master, &previous, &names)?
                        }
                        None => compile(&load_all(conn)?, &master, Some(&previous))?,
                    };
                    Ok((out, Some(compiled)))
                })?;
                if let Some(s) = snapshot {
                    publisher.publish(s);
                }
                Ok(out)
            })
            .await
    }

    /// The address a call comes from: the peer's, or the browser's as
    /// admin-web reports it in `x-aigw-client-ip` when the peer is one of
    /// `trusted_proxies`. Unknown (in-process tests): the unspecified address.
    pub fn client_ip<T>(&self, req: &Request<T>) -> std::net::IpAddr {
        // Canonical: behind a dual-stack listener an IPv4 peer shows as
        // `::ffff:a.b.c.d`, which the trusted list names as `a.b.c.d`.
        let peer = req
            .remote_addr()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| {
                a.ip().to_canonical()
            });
        if !self
            .trusted_proxies
            .iter()
            .any(|t| t.to_canonical() == peer)
        {
            return peer;
        }
        req.metadata()
            .get("x-aigw-client-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
            .map_or(peer, |ip| ip.to_canonical())
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
    {
        self.db.run(f).await.map_err(Status::from)
    }
}

#[cfg(test)]
mod budget_use_tests;
#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod insight_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod url_validate_tests;
#[cfg(test)]
mod write_only_tests;
