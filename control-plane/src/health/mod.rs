//! Active health checks, owned by the control plane. Every credential of a
//! provider is checked with its model listing (cheap, never billed) every
//! `health_interval_secs`, jittered so a pool's checks do not come in step,
//! and at once when a data plane reports it failing a real request (from
//! the attempts in its traces) or an admin asks (`CheckCredential`).
//!
//! Each result is stored (the credential's current state and a bounded
//! history). When it changes whether the credential is usable, the snapshot
//! is recompiled and published (under the same lock as admin changes, so
//! versions follow commits): every data plane skips a credential found
//! unusable within a second, and takes it back as soon as a check finds it
//! well. Checks that find nothing new publish nothing: a key that stays
//! rate limited is published again only when its retry time moves 5 s or
//! more later, not at every check. A check that finds an OAuth account's
//! token refused (401/403) asks the refresher for a new one: the data
//! planes no longer send that key requests, so none of theirs would.

pub mod probe;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use aigw_proto::pb::admin::CredentialHealth;
use aigw_proto::pb::config as pb;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::compile::recompile_core;
use crate::crypto::{self, MasterKey};
use crate::db::config::load_core;
use crate::db::health::{self, HealthRow};
use crate::db::{Db, now_ms, write_tx};
use crate::error::{Error, Result};
use crate::oauth::Refresher;
use crate::outbound::Outbound;
use crate::push::Publisher;

/// A check gets this long for its answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Checks running at once, over every provider.
const CONCURRENCY: usize = 8;
/// A credential reported failing is checked at most this often.
const DEBOUNCE: Duration = Duration::from_secs(2);
/// How often the schedule is looked at.
const TICK: Duration = Duration::from_millis(250);

/// Whether a status takes the credential out of use.
pub fn blocks(status: &str) -> bool {
    matches!(
        status,
        "invalid_credential"
            | "quota_exhausted"
            | "rate_limited"
            | "upstream_down"
            | "network_error"
    )
}

/// The Admin API's view of a stored check.
pub fn info(r: &HealthRow) -> CredentialHealth {
    CredentialHealth {
        provider: r.provider.clone(),
        key: r.key_name.clone(),
        status: r.status.clone(),
        http_status: u32::try_from(r.http_status).unwrap_or(0),
        latency_us: u64::try_from(r.latency_us).unwrap_or(0),
        detail: r.detail.clone(),
        checked_at_ms: r.checked_at_ms,
        retry_at_ms: r.retry_at_ms,
        trigger: r.trigger_kind.clone(),
    }
}

/// The state of one credential among `rows` ("unknown" if never checked).
pub fn info_of(rows: &[HealthRow], provider: &str, key: &str) -> CredentialHealth {
    rows.iter()
        .find(|r| r.provider == provider && r.key_name == key)
        .map(info)
        .unwrap_or_else(|| CredentialHealth {
            provider: provider.into(),
            key: key.into(),
            status: "unknown".into(),
            ..Default::default()
        })
}

/// Why a check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    DataPlane,
    Admin,
}

impl Trigger {
    /// Every trigger, for the metrics served at 0 from the start.
    pub const ALL: [Self; 3] = [Self::Schedule, Self::DataPlane, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::DataPlane => "data_plane",
            Self::Admin => "admin",
        }
    }
}

enum Command {
    Check {
        provider: String,
        key: String,
        trigger: Trigger,
        reply: Option<oneshot::Sender<Result<HealthRow>>>,
    },
}

/// A handle on the checker: cheap to clone.
#[derive(Clone)]
pub struct Checker {
    tx: mpsc::Sender<Command>,
    /// Who refreshes OAuth accounts, once known (see
    /// [`Checker::refresh_oauth_with`]).
    oauth: Arc<OnceLock<Refresher>>,
}

/// What the checker needs: the database, the master key and the publisher
/// to recompile, the admin write lock to publish in commit order.
pub struct Ctx {
    pub db: Db,
    pub master: MasterKey,
    pub publisher: Publisher,
    pub write_lock: Arc<Mutex<()>>,
    pub http: Outbound,
}

impl Checker {
    /// Starts the checker on the current runtime.
    pub fn start(ctx: Ctx) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let oauth = Arc::new(OnceLock::new());
        tokio::spawn(run(Arc::new(ctx), oauth.clone(), rx));
        Self { tx, oauth }
    }

    /// A handle whose checks never run (tests of other parts).
    pub fn detached() -> Self {
        let (tx, _) = mpsc::channel(1);
        Self {
            tx,
            oauth: Arc::default(),
        }
    }

    /// From now on, a check that finds an OAuth account's access token
    /// refused (401/403) asks `refresher` for a new one at once: the key is
    /// out of every data plane's pool then, so no data plane's 401 will
    /// ask. Set once, where both are built; later calls change nothing.
    pub fn refresh_oauth_with(&self, refresher: Refresher) {
        let _ = self.oauth.set(refresher);
    }

    /// A data plane saw this credential fail a real request: check it soon
    /// (never blocks; a full queue drops the report, the schedule remains).
    pub fn failed_on_data_plane(&self, provider: &str, key: &str) {
        let _ = self.tx.try_send(Command::Check {
            provider: provider.into(),
            key: key.into(),
            trigger: Trigger::DataPlane,
            reply: None,
        });
    }

    /// Checks one credential now and returns what was found.
    pub async fn check_now(&self, provider: &str, key: &str) -> Result<HealthRow> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Check {
                provider: provider.into(),
                key: key.into(),
                trigger: Trigger::Admin,
                reply: Some(reply),
            })
            .await
            .map_err(|_| Error::internal("health checks are not running"))?;
        rx.await
            .map_err(|_| Error::internal("the health check was abandoned"))?
    }
}

type Id = (String, String);

/// The schedule: when each credential is due, which checks are running.
struct Schedule {
    due: HashMap<Id, Instant>,
    last: HashMap<Id, Instant>,
    /// Checks asked for (by a data plane's report) and not yet made: they
    /// run at their due time with this trigger.
    wanted: HashMap<Id, Trigger>,
    running: HashSet<Id>,
    /// Seconds between checks per provider (0: none scheduled).
    intervals: HashMap<String, u32>,
    version: String,
    /// Who refreshes OAuth accounts whose token a check found refused.
    oauth: Arc<OnceLock<Refresher>>,
}

async fn run(ctx: Arc<Ctx>, oauth: Arc<OnceLock<Refresher>>, mut rx: mpsc::Receiver<Command>) {
    let mut s = Schedule {
        due: HashMap::new(),
        last: HashMap::new(),
        wanted: HashMap::new(),
        running: HashSet::new(),
        intervals: HashMap::new(),
        version: String::new(),
        oauth,
    };
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Id>();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let snap = ctx.publisher.current();
                if snap.version() != s.version {
                    s.version = snap.version().to_string();
                    match refresh(&ctx, &snap.core).await {
                        Ok(iv) => s.intervals = iv,
                        Err(e) => tracing::warn!(error = %e, "health checks: cannot read the providers"),
                    }
                }
                let now = Instant::now();
                let mut live = HashSet::new();
                for p in &snap.core.providers {
                    let every = s.intervals.get(&p.name).copied().unwrap_or(60);
                    for k in &p.keys {
                        let id = (p.name.clone(), k.name.clone());
                        live.insert(id.clone());
                        if every == 0 && !s.wanted.contains_key(&id) {
                            s.due.remove(&id);
                            continue;
                        }
                        // New credentials are checked at once (spread over a second).
                        let due = *s.due.entry(id.clone()).or_insert_with(|| now + jitter(Duration::ZERO, Duration::from_secs(1)));
                        if due <= now && !s.running.contains(&id) {
                            let period = Duration::from_secs(u64::from(every.max(1)));
                            s.due.insert(id.clone(), now + jitter(period.mul_f64(0.9), period.mul_f64(1.1)));
                            let trigger = s.wanted.remove(&id).unwrap_or(Trigger::Schedule);
                            spawn_check(&ctx, &slots, &done_tx, &mut s, p, k, trigger, None);
                        }
                    }
                }
                s.due.retain(|id, _| live.contains(id));
                s.last.retain(|id, _| live.contains(id));
                s.wanted.retain(|id, _| live.contains(id));
            }
            cmd = rx.recv() => {
                let Some(Command::Check { provider, key, trigger, reply }) = cmd else { return };
                let snap = ctx.publisher.current();
                let found = snap.core.providers.iter().find(|p| p.name == provider)
                    .and_then(|p| p.keys.iter().find(|k| k.name == key).map(|k| (p, k)));
                let Some((p, k)) = found else {
                    if let Some(r) = reply {
                        let _ = r.send(Err(Error::NotFound(format!("provider {provider:?} has no key {key:?}"))));
                    }
                    continue;
                };
                let id = (provider, key);
                let last = s.last.get(&id).copied();
                if reply.is_none() && (last.is_some_and(|t| t.elapsed() < DEBOUNCE) || s.running.contains(&id)) {
                    // Checked just now (or being checked): once more when
                    // the debounce ends, so the report is not lost.
                    let at = last.map_or(Instant::now(), |t| t + DEBOUNCE);
                    s.due.insert(id.clone(), at);
                    s.wanted.insert(id, trigger);
                    continue;
                }
                spawn_check(&ctx, &slots, &done_tx, &mut s, p, k, trigger, reply);
            }
            Some(id) = done_rx.recv() => {
                s.running.remove(&id);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_check(
    ctx: &Arc<Ctx>,
    slots: &Arc<Semaphore>,
    done: &mpsc::UnboundedSender<Id>,
    s: &mut Schedule,
    provider: &pb::Provider,
    key: &pb::ProviderKey,
    trigger: Trigger,
    reply: Option<oneshot::Sender<Result<HealthRow>>>,
) {
    let id = (provider.name.clone(), key.name.clone());
    s.running.insert(id.clone());
    s.last.insert(id.clone(), Instant::now());
    let (ctx, slots, done) = (ctx.clone(), slots.clone(), done.clone());
    let (provider, key) = (provider.clone(), key.clone());
    let oauth = s.oauth.clone();
    tokio::spawn(async move {
        let _slot = slots.acquire_owned().await;
        let result = check(&ctx, &provider, &key, trigger).await;
        if let (Ok(row), Some(refresher)) = (&result, oauth.get()) {
            ask_refresh_if_refused(&ctx, refresher, &key, row);
        }
        if let Err(e) = &result {
            tracing::warn!(provider = %provider.name, key = %key.name, error = %e, "health check not recorded");
        }
        if let Some(r) = reply {
            let _ = r.send(result);
        }
        let _ = done.send(id);
    });
}

/// Re-reads every provider's check interval, and forgets the health of
/// credentials that are gone.
async fn refresh(ctx: &Ctx, snap: &pb::Snapshot) -> Result<HashMap<String, u32>> {
    let live: Vec<(String, String)> = snap
        .providers
        .iter()
        .flat_map(|p| p.keys.iter().map(|k| (p.name.clone(), k.name.clone())))
        .collect();
    ctx.db
        .run(move |conn| {
            health::forget_others(conn, &live)?;
            Ok(crate::db::config::list_providers(conn)?
                .into_iter()
                .map(|(p, _)| (p.name, u32::try_from(p.health_interval_secs).unwrap_or(0)))
                .collect())
        })
        .await
}

/// Checks one credential, stores the result, and republishes the snapshot
/// when the credential's usability changed.
async fn check(
    ctx: &Ctx,
    provider: &pb::Provider,
    key: &pb::ProviderKey,
    trigger: Trigger,
) -> Result<HealthRow> {
    let t0 = Instant::now();
    let outcome = match probe::request(provider, key) {
        Some(req) => probe::classify(&ctx.http.call(req, CHECK_TIMEOUT).await, &key.secret),
        None => probe::Outcome {
            status: probe::Status::NetworkError,
            http_status: 0,
            detail: "no request can be made for this provider".into(),
            retry_after: None,
        },
    };
    let latency_us = i64::try_from(t0.elapsed().as_micros()).unwrap_or(i64::MAX);
    let now = now_ms();
    let row = HealthRow {
        provider: provider.name.clone(),
        key_name: key.name.clone(),
        status: outcome.status.as_str().into(),
        http_status: i32::from(outcome.http_status),
        latency_us,
        detail: outcome.detail,
        checked_at_ms: now,
        retry_at_ms: outcome
            .retry_after
            .map_or(0, |d| now + i64::try_from(d.as_millis()).unwrap_or(0)),
        trigger_kind: trigger.as_str().into(),
    };
    metrics::counter!("aigw_health_checks_total", "status" => outcome.status.as_str(), "trigger" => trigger.as_str())
        .increment(1);
    // An OAuth account's token may be refreshed while it is probed: what
    // was found of the old token is not recorded against the new one.
    let probed = key.oauth.then(|| key.secret.clone());
    let level_changed = store(ctx, row.clone(), probed).await?;
    if level_changed {
        tracing::info!(provider = %row.provider, key = %row.key_name, status = %row.status,
            trigger = trigger.as_str(), "credential health changed");
    }
    Ok(row)
}

/// An OAuth account's access token refused by the check (401/403), and
/// still the one in use: asks `refresher` for a new one (debounced there).
/// Without it the key would stay out of every pool until its scheduled
/// refresh, since data planes no longer send it the requests whose 401
/// would ask.
fn ask_refresh_if_refused(
    ctx: &Ctx,
    refresher: &Refresher,
    key: &pb::ProviderKey,
    row: &HealthRow,
) {
    if !key.oauth || !matches!(row.http_status, 401 | 403) {
        return;
    }
    let current = ctx.publisher.current();
    let in_use =
        key_of(&current.core, &row.provider, &row.key_name).is_some_and(|k| k.secret == key.secret);
    if in_use {
        tracing::info!(provider = %row.provider, key = %row.key_name, http_status = row.http_status,
            "OAuth access token refused by a health check: asking for a refresh");
        refresher.unauthorized(&row.provider, &row.key_name);
    }
}

/// A retry time later than the published one by less than this is not
/// worth a new snapshot: a key that stays rate limited would otherwise
/// publish one at each check (its retry time moves with the clock).
const RETRY_MOVE_MS: i64 = 5_000;

/// Whether data planes must be told of `row`, given what they were told of
/// the key (`published`): it became usable or unusable, for another
/// reason, or is to be retried markedly later. A new detail alone, or an
/// earlier retry time (the next check finds the key well), is not worth a
/// snapshot: the Admin API shows the stored row whole.
fn worth_publishing(published: Option<&pb::KeyHealth>, row: &HealthRow) -> bool {
    match (published, blocks(&row.status)) {
        (None, blocked) => blocked,
        (Some(_), false) => true,
        (Some(p), true) => {
            p.status != row.status || row.retry_at_ms > p.retry_at_ms.saturating_add(RETRY_MOVE_MS)
        }
    }
}

/// The key of `provider` named `key` in `snap`.
fn key_of<'a>(snap: &'a pb::Snapshot, provider: &str, key: &str) -> Option<&'a pb::ProviderKey> {
    snap.providers
        .iter()
        .find(|p| p.name == provider)
        .and_then(|p| p.keys.iter().find(|k| k.name == key))
}

/// Stores the row; recompiles and publishes when what the data planes
/// were told of the key is to change (see [`worth_publishing`]). Returns
/// whether it did. `probed_token`: the OAuth access token the check used;
/// if the credential has another by now, the result is stale and dropped.
async fn store(ctx: &Ctx, row: HealthRow, probed_token: Option<String>) -> Result<bool> {
    let (master, publisher, lock) = (
        ctx.master.clone(),
        ctx.publisher.clone(),
        ctx.write_lock.clone(),
    );
    ctx.db
        .run(move |conn| {
            let _serial = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let current = publisher.current();
            let published = key_of(&current.core, &row.provider, &row.key_name);
            if let Some(probed) = &probed_token
                && published.map(|k| k.secret.as_str()) != Some(probed.as_str())
            {
                tracing::debug!(provider = %row.provider, key = %row.key_name,
                    "health check of a replaced OAuth access token not recorded");
                return Ok(false);
            }
            // A key no longer in the snapshot has nothing to publish.
            let publish = published.is_some_and(|k| worth_publishing(k.health.as_ref(), &row));
            let id = crypto::new_id()?;
            let snapshot = write_tx(conn, |conn| {
                health::record(conn, &row, id)?;
                if !publish {
                    return Ok(None);
                }
                // A check changes no client key: keep the current ones.
                Ok(Some(recompile_core(&load_core(conn)?, &master, &current)?))
            })?;
            let changed = snapshot.is_some();
            if let Some(s) = snapshot {
                publisher.publish(s);
            }
            Ok(changed)
        })
        .await
}

/// A duration between `lo` and `hi`, from the system's randomness.
fn jitter(lo: Duration, hi: Duration) -> Duration {
    let span = hi.saturating_sub(lo).as_millis() as u64;
    if span == 0 {
        return lo;
    }
    let r = crypto::random_u64().unwrap_or(0);
    lo + Duration::from_millis(r % span)
}

#[cfg(test)]
mod tests;
