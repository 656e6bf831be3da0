//! AdminService.Apply: a whole configuration in one transaction, what
//! `control-plane apply -f FILE` sends. Applying 100,000 client keys one
//! call at a time meant 100,000 transactions, recompiles and snapshots
//! pushed to every data plane; here it is one of each.
//!
//! The request is bounded before anything is decided (count, bytes, batch
//! size, time), every object is checked with the rules of its own RPC before
//! the transaction starts, and each object goes through the same functions
//! its own RPC uses (`providers::upsert`, `client_keys::plan`, ...), client
//! keys in bulk: the existing keys are read once, decided in memory, and
//! written with multi-row statements. Any refusal rolls everything back.

mod keys;
mod prune;
mod rules;

pub use rules::ServerRules;

use std::collections::HashSet;
use std::time::Duration;

use aigw_proto::pb::admin::apply_request::Part;
use aigw_proto::pb::admin::{
    ApplyHeader, ApplyOutcome, ApplyProgress, ApplyRequest, ClientKeySpec, UpsertResult,
};
use prost::Message as _;
use tonic::{Request, Status, Streaming};

use super::rbac::{self, Access, Principal, Target};
use super::{AdminSvc, Change, Object, budgets, client_keys, oauth, pricing, providers, routes};
use crate::error::{Error, Result};

/// Most client keys in one apply.
pub const MAX_KEYS: usize = 250_000;
/// Most client keys in one batch message.
pub const MAX_BATCH: usize = 2_000;
/// Most bytes in one apply, all messages together.
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
/// Most objects of each other kind in the header.
const MAX_OBJECTS: usize = 10_000;
/// How long the caller has to send everything.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(300);
/// Outcomes per answer message.
const OUTCOMES_PER_MESSAGE: usize = 2_000;

/// Everything an apply carries, once received.
pub struct Received {
    pub header: ApplyHeader,
    pub keys: Vec<ClientKeySpec>,
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

/// Reads the header and every batch, within the bounds.
pub async fn receive(stream: &mut Streaming<ApplyRequest>) -> Result<Received, Status> {
    let read = async {
        let mut bytes = 0usize;
        let mut count = |m: &ApplyRequest| -> Result<(), Status> {
            bytes += m.encoded_len();
            if bytes > MAX_BYTES {
                return Err(invalid(format!(
                    "apply: more than {} MiB in all",
                    MAX_BYTES >> 20
                )));
            }
            Ok(())
        };
        let first = stream
            .message()
            .await?
            .ok_or_else(|| invalid("apply: the stream ended before its header"))?;
        count(&first)?;
        let Some(Part::Header(header)) = first.part else {
            return Err(invalid("apply: the first message must be the header"));
        };
        check_header_bounds(&header)?;
        let want = header.client_key_count as usize;
        let mut keys = Vec::with_capacity(want);
        while let Some(m) = stream.message().await? {
            count(&m)?;
            let Some(Part::ClientKeys(batch)) = m.part else {
                return Err(invalid("apply: only the first message may be a header"));
            };
            if batch.keys.len() > MAX_BATCH {
                return Err(invalid(format!(
                    "apply: a batch has {} client keys, at most {MAX_BATCH} are allowed",
                    batch.keys.len()
                )));
            }
            if keys.len() + batch.keys.len() > want {
                return Err(invalid(format!(
                    "apply: more client keys than the {want} the header announced"
                )));
            }
            keys.extend(batch.keys);
        }
        if keys.len() != want {
            return Err(invalid(format!(
                "apply: the stream ended after {} of the {want} client keys the header announced",
                keys.len()
            )));
        }
        Ok(Received { header, keys })
    };
    tokio::time::timeout(RECEIVE_TIMEOUT, read)
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "apply: not received within {} s",
                RECEIVE_TIMEOUT.as_secs()
            ))
        })?
}

fn check_header_bounds(h: &ApplyHeader) -> Result<(), Status> {
    if h.client_key_count as usize > MAX_KEYS {
        return Err(invalid(format!(
            "apply: {} client keys, at most {MAX_KEYS} are allowed",
            h.client_key_count
        )));
    }
    let kinds = [
        ("providers", h.providers.len()),
        ("prices", h.pricing.len()),
        ("routes", h.routes.len()),
        ("teams", h.teams.len()),
        ("budgets", h.budgets.len()),
        ("oauth templates", h.oauth_templates.len()),
    ];
    for (kind, n) in kinds {
        if n > MAX_OBJECTS {
            return Err(invalid(format!(
                "apply: {n} {kind}, at most {MAX_OBJECTS} are allowed"
            )));
        }
    }
    Ok(())
}

/// Each name once per kind.
fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<HashSet<String>> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n.to_string()) {
            return Err(Error::invalid(format!("{kind} {n:?} is listed twice")));
        }
    }
    Ok(seen)
}

/// The caller needs every right the per-object calls would need, on every
/// object (the `own` scope of a member is not enough for a configuration).
fn authorize(p: &Principal, r: &Received) -> Result<()> {
    let h = &r.header;
    let mut methods = Vec::new();
    let mut need = |present: bool, method: &'static str| {
        if present {
            methods.push(method);
        }
    };
    need(!h.oauth_templates.is_empty(), rbac::UPSERT_OAUTH_TEMPLATE);
    need(!h.providers.is_empty(), rbac::UPSERT_PROVIDER);
    need(!h.pricing.is_empty(), rbac::UPSERT_PRICE);
    need(!r.keys.is_empty(), rbac::UPSERT_CLIENT_KEY);
    need(!h.routes.is_empty(), rbac::UPSERT_ROUTE);
    need(!h.teams.is_empty(), rbac::UPSERT_TEAM);
    need(!h.budgets.is_empty(), rbac::SET_BUDGET);
    for m in [
        rbac::DELETE_CLIENT_KEY,
        rbac::DELETE_PRICE,
        rbac::DELETE_ROUTE,
        rbac::DELETE_PROVIDER,
        rbac::DELETE_TEAM,
        rbac::DELETE_OAUTH_TEMPLATE,
        rbac::SET_BUDGET,
    ] {
        need(h.prune, m);
    }
    for m in methods {
        if let Access::Own(_) = rbac::authorize(p, m, Target::None)? {
            return Err(Error::PermissionDenied(format!(
                "apply needs {} on every object; this caller may only change their own",
                rbac::short(m)
            )));
        }
    }
    Ok(())
}

/// Everything checked, ready for the transaction.
struct Checked {
    templates: Vec<crate::oauth::template::TemplateInput>,
    providers: Vec<providers::ProviderInput>,
    pricing: Vec<aigw_proto::pb::admin::PriceSpec>,
    keys: Vec<client_keys::ClientKeyInput>,
    routes: Vec<aigw_proto::pb::admin::RouteSpec>,
    teams: Vec<aigw_proto::pb::admin::TeamSpec>,
    budgets: Vec<(String, budgets::Stored)>,
    prune: Option<prune::Named>,
}

/// Every object checked with its own RPC's rules, names once per kind.
fn check(r: Received) -> Result<Checked> {
    let h = r.header;
    let named = prune::Named {
        providers: unique("provider", h.providers.iter().map(|p| p.name.as_str()))?,
        prices: unique("price", h.pricing.iter().map(|p| p.model.as_str()))?,
        keys: unique("client_key", r.keys.iter().map(|k| k.name.as_str()))?,
        routes: unique("route", h.routes.iter().map(|r| r.model.as_str()))?,
        teams: unique("team", h.teams.iter().map(|t| t.name.as_str()))?,
        budgets: unique("budget", h.budgets.iter().map(|b| b.subject.as_str()))?,
        templates: unique(
            "oauth_template",
            h.oauth_templates.iter().map(|t| t.name.as_str()),
        )?,
    };
    for p in &h.pricing {
        pricing::validate(p)?;
    }
    for r in &h.routes {
        routes::validate(r)?;
    }
    for t in &h.teams {
        budgets::check_team(t)?;
    }
    let budgets = h
        .budgets
        .iter()
        .map(|b| Ok((b.subject.clone(), budgets::check_budget(b)?)))
        .collect::<Result<_>>()?;
    Ok(Checked {
        templates: h
            .oauth_templates
            .into_iter()
            .map(crate::oauth::template::validate)
            .collect::<Result<_>>()?,
        providers: h
            .providers
            .into_iter()
            .map(providers::validate)
            .collect::<Result<_>>()?,
        pricing: h.pricing,
        keys: r
            .keys
            .into_iter()
            .map(client_keys::validate)
            .collect::<Result<_>>()?,
        routes: h.routes,
        teams: h.teams,
        budgets,
        prune: h.prune.then_some(named),
    })
}

/// What an apply did, in the order `apply` prints it, and the audit
/// entries of what changed.
#[derive(Default)]
pub struct Report {
    pub outcomes: Vec<ApplyOutcome>,
    pub changes: Vec<(Object, Change)>,
}

impl Report {
    /// Records an upsert's result (and its audit entry when it changed).
    fn upserted(
        &mut self,
        kind: &'static str,
        name: &str,
        r: &UpsertResult,
        change: Option<Change>,
    ) {
        let action = match (r.created, r.changed) {
            (true, _) => "created",
            (false, true) => "updated",
            (false, false) => "unchanged",
        };
        self.outcomes.push(ApplyOutcome {
            action: action.into(),
            kind: kind.into(),
            name: name.into(),
            generated_key: r.generated_key.clone(),
        });
        if let Some(c) = change {
            self.changes.push((Object::new(kind, name), c));
        }
    }

    fn deleted(&mut self, kind: &'static str, name: &str) {
        self.outcomes.push(ApplyOutcome {
            action: "deleted".into(),
            kind: kind.into(),
            name: name.into(),
            generated_key: String::new(),
        });
        self.changes
            .push((Object::new(kind, name), Change::new("delete")));
    }
}

impl AdminSvc {
    /// Checks, applies and reports a received configuration.
    pub async fn apply_config(&self, p: &Principal, r: Received) -> Result<Vec<ApplyProgress>> {
        authorize(p, &r)?;
        // Checking 100,000 keys takes a moment: off the async threads.
        let checked = tokio::task::spawn_blocking(move || check(r))
            .await
            .map_err(|e| Error::internal(format!("apply check failed: {e}")))??;
        let who = p.clone();
        let report = self
            .mutate_many(p, move |conn, master| {
                let mut report = Report::default();
                // Before the providers whose keys name them.
                for input in &checked.templates {
                    let (r, change) = oauth::upsert_template(conn, master, input)?;
                    report.upserted("oauth_template", &input.name, &r, change);
                }
                for input in &checked.providers {
                    let (r, _) = providers::upsert(conn, master, input)?;
                    let change = Change::of_upsert(&r).map(|c| c.with(input.summary()));
                    report.upserted("provider", input.name(), &r, change);
                }
                for spec in &checked.pricing {
                    let (r, _) = pricing::upsert(conn, spec)?;
                    let detail = format!(
                        "input={} output={} cached_input={:?}",
                        spec.input, spec.output, spec.cached_input
                    );
                    let change = Change::of_upsert(&r).map(|c| c.with(detail));
                    report.upserted("price", &spec.model, &r, change);
                }
                keys::upsert_all(conn, &who, checked.keys, &mut report)?;
                // After the providers they name.
                for spec in &checked.routes {
                    let (r, _) = routes::upsert(conn, spec)?;
                    let detail = format!("providers=[{}]", spec.providers.join(","));
                    let change = Change::of_upsert(&r).map(|c| c.with(detail));
                    report.upserted("route", &spec.model, &r, change);
                }
                // Teams, then budgets (of teams and users).
                for spec in &checked.teams {
                    let (r, change) = budgets::upsert_team(conn, spec)?;
                    report.upserted("team", &spec.name, &r, change);
                }
                for (subject, limits) in &checked.budgets {
                    let (r, change) = budgets::set(conn, subject, limits)?;
                    report.upserted("budget", subject, &r, change);
                }
                if let Some(named) = &checked.prune {
                    prune::run(conn, named, &mut report)?;
                }
                let changes = std::mem::take(&mut report.changes);
                Ok((report.outcomes, changes))
            })
            .await?;
        Ok(report
            .chunks(OUTCOMES_PER_MESSAGE)
            .map(|c| ApplyProgress {
                outcomes: c.to_vec(),
            })
            .collect())
    }

    /// The RPC: authenticate, receive within bounds, apply.
    pub async fn apply_rpc(
        &self,
        request: Request<Streaming<ApplyRequest>>,
    ) -> Result<Vec<ApplyProgress>, Status> {
        let (p, _) = self.caller(&request, rbac::APPLY).await?;
        let mut stream = request.into_inner();
        let received = receive(&mut stream).await?;
        Ok(self.apply_config(&p, received).await?)
    }
}

#[cfg(test)]
mod tests;
