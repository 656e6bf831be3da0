//! Budgets through the Admin API: users' and teams' limits (operators set
//! them), teams, and the webhooks budget alerts go to. One form for every
//! limit set (`Stored`), whether it belongs to a key, a user or a team, so
//! checks and conversions exist once.

use aigw_proto::pb::admin::{BudgetLimits, BudgetSpec, TeamSpec, UpsertResult, WebhookSpec};
use aigw_proto::pb::config as pb;

use super::providers::unchanged;
use super::{Change, validate};
use crate::db::budgets::BudgetRow;
use crate::db::config::ClientKeyRow;
use crate::db::identity::find_user;
use crate::db::{AnyConnection, now_ms};
use crate::error::{Error, Result};

/// A limit set as stored (BIGINT/DOUBLE columns).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub rps: Option<i64>,
    pub rpm: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub cost_per_day: Option<f64>,
    pub cost_per_month: Option<f64>,
    pub concurrent: Option<i64>,
    pub global: bool,
    pub when_store_down: String,
}

fn count(what: &str, field: &str, v: Option<u64>) -> Result<Option<i64>> {
    validate::limit(what, field, v)
}

fn usd(what: &str, field: &str, v: Option<f64>) -> Result<Option<f64>> {
    if let Some(c) = v {
        validate::usd(what, field, c)?;
    }
    Ok(v)
}

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

impl Stored {
    /// Checks limits sent through the Admin API.
    pub fn check(what: &str, l: &BudgetLimits) -> Result<Self> {
        if !matches!(l.when_store_down.as_str(), "" | "local" | "refuse") {
            return Err(Error::invalid(format!(
                "{what}: when_store_down must be local or refuse"
            )));
        }
        Ok(Self {
            rps: count(what, "rps", l.rps)?,
            rpm: count(what, "rpm", l.rpm)?,
            tokens_per_minute: count(what, "tokens_per_minute", l.tokens_per_minute)?,
            tokens_per_day: count(what, "tokens_per_day", l.tokens_per_day)?,
            cost_per_day: usd(what, "cost_per_day", l.cost_per_day)?,
            cost_per_month: usd(what, "cost_per_month", l.cost_per_month)?,
            concurrent: count(what, "concurrent", l.concurrent)?,
            global: l.global,
            when_store_down: if l.when_store_down == "local" {
                String::new()
            } else {
                l.when_store_down.clone()
            },
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rps.is_none()
            && self.rpm.is_none()
            && self.tokens_per_minute.is_none()
            && self.tokens_per_day.is_none()
            && self.cost_per_day.is_none()
            && self.cost_per_month.is_none()
            && self.concurrent.is_none()
    }

    /// Whether `self` allows nothing `before` did not: every limit `before`
    /// had is still set, and no higher; the policy is no laxer.
    pub fn within(&self, before: &Stored) -> bool {
        fn le<T: PartialOrd>(new: Option<T>, old: Option<T>) -> bool {
            match (new, old) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(n), Some(o)) => n <= o,
            }
        }
        le(self.rps, before.rps)
            && le(self.rpm, before.rpm)
            && le(self.tokens_per_minute, before.tokens_per_minute)
            && le(self.tokens_per_day, before.tokens_per_day)
            && le(self.cost_per_day, before.cost_per_day)
            && le(self.cost_per_month, before.cost_per_month)
            && le(self.concurrent, before.concurrent)
            && self.global == before.global
            && (before.when_store_down != "refuse" || self.when_store_down == "refuse")
    }

    pub fn to_admin(&self) -> BudgetLimits {
        BudgetLimits {
            rps: unsigned(self.rps),
            rpm: unsigned(self.rpm),
            tokens_per_minute: unsigned(self.tokens_per_minute),
            tokens_per_day: unsigned(self.tokens_per_day),
            cost_per_day: self.cost_per_day,
            cost_per_month: self.cost_per_month,
            concurrent: unsigned(self.concurrent),
            global: self.global,
            when_store_down: self.when_store_down.clone(),
        }
    }

    pub fn to_pb(&self) -> pb::Limits {
        pb::Limits {
            rps: unsigned(self.rps),
            rpm: unsigned(self.rpm),
            tokens_per_minute: unsigned(self.tokens_per_minute),
            tokens_per_day: unsigned(self.tokens_per_day),
            cost_per_day: self.cost_per_day,
            cost_per_month: self.cost_per_month,
            concurrent: unsigned(self.concurrent),
            when_store_down: self.when_store_down.clone(),
        }
    }

    pub fn row(&self, subject: String, now: i64) -> BudgetRow {
        BudgetRow {
            subject,
            rps: self.rps,
            rpm: self.rpm,
            tokens_per_minute: self.tokens_per_minute,
            tokens_per_day: self.tokens_per_day,
            cost_per_day: self.cost_per_day,
            cost_per_month: self.cost_per_month,
            concurrent: self.concurrent,
            global: self.global,
            when_store_down: self.when_store_down.clone(),
            updated_at_ms: now,
        }
    }
}

impl From<&BudgetRow> for Stored {
    fn from(r: &BudgetRow) -> Self {
        Self {
            rps: r.rps,
            rpm: r.rpm,
            tokens_per_minute: r.tokens_per_minute,
            tokens_per_day: r.tokens_per_day,
            cost_per_day: r.cost_per_day,
            cost_per_month: r.cost_per_month,
            concurrent: r.concurrent,
            global: r.global,
            when_store_down: r.when_store_down.clone(),
        }
    }
}

impl From<&ClientKeyRow> for Stored {
    fn from(r: &ClientKeyRow) -> Self {
        Self {
            rps: r.rps,
            rpm: r.rpm,
            tokens_per_minute: r.tokens_per_minute,
            tokens_per_day: r.tokens_per_day,
            cost_per_day: r.cost_per_day,
            cost_per_month: r.cost_per_month,
            concurrent: r.concurrent,
            global: r.limits_global,
            when_store_down: r.when_store_down.clone(),
        }
    }
}

/// A budget's subject as the Admin API names it ("user:alice",
/// "team:research") → as stored ("user:<id>", "team:<id>").
pub fn resolve_subject(conn: &mut AnyConnection, subject: &str) -> Result<String> {
    let bad = || {
        Error::invalid(format!(
            "budget subject {subject:?}: expected user:NAME or team:NAME"
        ))
    };
    let (kind, name) = subject.split_once(':').ok_or_else(bad)?;
    match kind {
        "user" => {
            let u = find_user(conn, name)?
                .ok_or_else(|| Error::NotFound(format!("user {name:?} does not exist")))?;
            Ok(format!("user:{}", u.id))
        }
        "team" => {
            let t = crate::db::budgets::find_team(conn, name)?
                .ok_or_else(|| Error::NotFound(format!("team {name:?} does not exist")))?;
            Ok(format!("team:{}", t.id))
        }
        _ => Err(bad()),
    }
}

/// Sets (or, with empty limits, removes) the budget of `subject`
/// ("user:NAME", "team:NAME").
pub fn set(
    conn: &mut AnyConnection,
    subject: &str,
    limits: &Stored,
) -> Result<(UpsertResult, Option<Change>)> {
    let subject = resolve_subject(conn, subject)?;
    let old = crate::db::budgets::find_budget(conn, &subject)?;
    let same = old.as_ref().map(Stored::from).as_ref() == Some(limits)
        || (old.is_none() && limits.is_empty());
    if same {
        return Ok((unchanged(), None));
    }
    if limits.is_empty() {
        crate::db::budgets::delete_budget(conn, &subject)?;
    } else {
        crate::db::budgets::put_budget(conn, &limits.row(subject, now_ms()))?;
    }
    let r = UpsertResult {
        created: old.is_none(),
        changed: true,
        generated_key: String::new(),
    };
    let detail = limits_summary(&limits.to_admin());
    let action = if limits.is_empty() { "delete" } else { "set" };
    Ok((r, Some(Change::new(action).with(detail))))
}

/// Creates the team or sets its members (users not listed leave it).
pub fn upsert_team(
    conn: &mut AnyConnection,
    spec: &TeamSpec,
) -> Result<(UpsertResult, Option<Change>)> {
    let mut ids = Vec::with_capacity(spec.members.len());
    for m in &spec.members {
        let u = find_user(conn, m)?
            .ok_or_else(|| Error::NotFound(format!("user {m:?} does not exist")))?;
        ids.push(u.id);
    }
    let (team, created) = match crate::db::budgets::find_team(conn, &spec.name)? {
        Some(t) => (t, false),
        None => {
            let now = now_ms();
            let t = crate::db::budgets::TeamRow {
                id: crate::crypto::new_id()?,
                name: spec.name.clone(),
                created_at_ms: now,
                updated_at_ms: now,
            };
            crate::db::budgets::insert_team(conn, &t)?;
            (t, true)
        }
    };
    let mut before = crate::db::budgets::members(conn, &team.id)?;
    let mut after = spec.members.clone();
    before.sort();
    after.sort();
    after.dedup();
    if !created && before == after {
        return Ok((unchanged(), None));
    }
    crate::db::budgets::set_members(conn, &team.id, &ids)?;
    let r = UpsertResult {
        created,
        changed: true,
        generated_key: String::new(),
    };
    let change = Change::new(if created { "create" } else { "update" })
        .with(format!("members=[{}]", after.join(",")));
    Ok((r, Some(change)))
}

pub fn check_budget(spec: &BudgetSpec) -> Result<Stored> {
    let limits = spec.limits.clone().unwrap_or_default();
    Stored::check(&format!("budget {:?}", spec.subject), &limits)
}

pub fn check_team(spec: &TeamSpec) -> Result<()> {
    validate::name("team", &spec.name)?;
    if spec.members.len() > 10_000 {
        return Err(Error::invalid("team: at most 10,000 members"));
    }
    let mut seen = std::collections::HashSet::with_capacity(spec.members.len());
    for m in &spec.members {
        validate::username(m)?;
        if !seen.insert(m.as_str()) {
            return Err(Error::invalid(format!(
                "team {:?}: member {m:?} is listed twice",
                spec.name
            )));
        }
    }
    Ok(())
}

/// A webhook URL's `scheme://host[:port]` (never credentials before the
/// host, which the checks refuse anyway), and the rest: its path, query
/// and fragment.
fn webhook_parts(url: &str) -> (String, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (format!("{}{host}", &url[..start]), &url[end..])
}

/// A webhook URL's `scheme://host[:port]`.
pub fn webhook_origin(url: &str) -> String {
    webhook_parts(url).0
}

/// A webhook URL as those who may not see it whole see it: its origin, and
/// `/…` for anything after it, path or query (Slack's, Discord's and
/// Teams' URLs carry their secret in the path, others in `?token=`). Sent
/// back unchanged in an upsert, it keeps the stored URL.
pub fn webhook_url_masked(url: &str) -> String {
    let (origin, rest) = webhook_parts(url);
    if rest.is_empty() || rest == "/" {
        origin
    } else {
        format!("{origin}/…")
    }
}

/// What an upsert of a webhook set, for the audit log: the URL's host
/// only (never its path or query, which may hold a secret), and whether a
/// secret was given.
pub fn webhook_summary(spec: &WebhookSpec) -> String {
    let origin = webhook_origin(&spec.url);
    let host = origin.split_once("://").map_or(&*origin, |(_, h)| h);
    let mut s = format!("host={host}");
    if !spec.secret.is_empty() {
        s.push_str(" secret given");
    }
    s
}

/// A webhook spec's own checks. Its URL may still be the masked one a
/// non-admin was shown (`https://host/…`): the upsert puts the stored URL
/// back, then [`check_webhook_url_whole`].
pub fn check_webhook(spec: &WebhookSpec) -> Result<()> {
    let what = format!("webhook {:?}", spec.name);
    validate::name("webhook", &spec.name)?;
    validate::webhook_url(&what, &spec.url)?;
    validate::secret(&what, &spec.secret)
}

/// A webhook's URL after the masked one was swapped for the stored URL: a
/// `…` left in it is a masked URL that is not this webhook's (a new one,
/// or another origin), which nothing could be posted to.
pub fn check_webhook_url_whole(spec: &WebhookSpec) -> Result<()> {
    if spec.url.contains('…') {
        return Err(Error::invalid(format!(
            "webhook {:?}: url holds `…`, the part of a URL hidden from your role: send the URL back as it was listed to keep the stored one, or type the whole new URL",
            spec.name
        )));
    }
    Ok(())
}

/// A budget's limits as the audit log shows them: the set ones only,
/// `name=value`, in the order of `BudgetLimits`.
pub fn limits_summary(l: &aigw_proto::pb::admin::BudgetLimits) -> String {
    let counts = [
        ("rps", l.rps),
        ("rpm", l.rpm),
        ("tokens_per_minute", l.tokens_per_minute),
        ("tokens_per_day", l.tokens_per_day),
    ];
    let usd = [
        ("cost_per_day", l.cost_per_day),
        ("cost_per_month", l.cost_per_month),
    ];
    let mut parts: Vec<String> = counts
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
        .chain(
            usd.iter()
                .filter_map(|(n, v)| v.map(|v| format!("{n}={v}"))),
        )
        .collect();
    if let Some(c) = l.concurrent {
        parts.push(format!("concurrent={c}"));
    }
    if l.global {
        parts.push("global".into());
    }
    if !l.when_store_down.is_empty() {
        parts.push(format!("when_store_down={}", l.when_store_down));
    }
    if parts.is_empty() {
        return "no limits".into();
    }
    parts.join(" ")
}
