//! Keeps every connected account's access token fresh, by the control
//! plane alone: a refresh is due a third of the token's lifetime before it
//! expires (at most five minutes before); an upstream 401 seen by a data
//! plane, or an admin, asks for one at once. One refresh per account at a
//! time (callers that ask while one runs get its result). A refresh token
//! the server rotated is committed, with the new access token, before the
//! snapshot carrying that access token is published; tokens the database
//! refused are held in memory (sealed) and saved by later rounds, and the
//! refresh token they replace is never sent again. A failure is retried
//! with back-off (the current token stays in use); a refresh token the
//! server refuses (`invalid_grant`) marks the account revoked, which takes
//! its key out of every data plane's pool until it is reconnected.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::Ctx;
use super::account::{self, ERROR, REVOKED};
use super::template;
use super::token::{self, Grant, TokenError};
use crate::db::oauth::{self as q, AccountRow};
use crate::db::{health, now_ms};
use crate::error::{Error, Result};

/// How often due refreshes are looked for.
const TICK: Duration = Duration::from_secs(1);
/// A 401 reported this soon after a refresh started asks for no other.
const DEBOUNCE: Duration = Duration::from_secs(5);
/// Refreshes running at once.
const CONCURRENCY: usize = 4;

type Id = (String, String);
type Outcome = std::result::Result<AccountRow, String>;

enum Cmd {
    Unauthorized(Id),
    Now(Id, oneshot::Sender<Outcome>),
}

/// A handle on the refresher: cheap to clone.
#[derive(Clone)]
pub struct Refresher {
    tx: mpsc::Sender<Cmd>,
}

/// Why a refresh runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Schedule,
    Unauthorized,
    Admin,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Unauthorized => "unauthorized",
            Self::Admin => "admin",
        }
    }
}

impl Refresher {
    pub fn start(ctx: Ctx) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(Arc::new(ctx), rx));
        Self { tx }
    }

    /// A handle whose refreshes never run (tests of other parts).
    pub fn detached() -> Self {
        let (tx, _) = mpsc::channel(1);
        Self { tx }
    }

    /// A data plane got 401 with this credential: if it is an OAuth
    /// account, refresh it now (never blocks; debounced).
    pub fn unauthorized(&self, provider: &str, key: &str) {
        let _ = self
            .tx
            .try_send(Cmd::Unauthorized((provider.into(), key.into())));
    }

    /// Refreshes the account now (or waits for the refresh under way) and
    /// returns its state afterwards.
    pub async fn refresh_now(&self, provider: &str, key: &str) -> Result<AccountRow> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Now((provider.into(), key.into()), reply))
            .await
            .map_err(|_| Error::internal("OAuth refreshes are not running"))?;
        rx.await
            .map_err(|_| Error::internal("the refresh was abandoned"))?
            .map_err(Error::FailedPrecondition)
    }
}

/// Tokens the token endpoint issued that the database has not taken yet
/// (a failed commit): kept sealed, in memory, and saved again each round
/// until they are; meanwhile the account's refresh token in the database
/// is dead (the server rotated it), so it is never sent again. No `Debug`
/// (sealed tokens have no business in a log).
#[derive(Clone)]
struct Unsaved {
    /// The account as it is to be stored: the new tokens, sealed.
    row: AccountRow,
    /// The sealed refresh token `row` replaces: it is stored only over
    /// that one (a reconnect in between wins).
    base: String,
    /// Rounds that failed to save it.
    failures: i32,
    /// When the schedule tries again.
    next_round_ms: i64,
    /// What is shown meanwhile: the account in the database, `error`.
    shown: AccountRow,
}

/// The unsaved tokens of every account, shared by the refresh tasks (one
/// per account at a time) and the loop that schedules them.
#[derive(Clone, Default)]
struct Held(Arc<Mutex<HashMap<Id, Unsaved>>>);

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Unsaved>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &Id) -> Option<Unsaved> {
        self.lock().get(id).cloned()
    }

    fn take(&self, id: &Id) -> Option<Unsaved> {
        self.lock().remove(id)
    }

    fn put(&self, id: &Id, u: Unsaved) {
        self.lock().insert(id.clone(), u);
    }

    /// Accounts whose unsaved tokens are due another round.
    fn due(&self, now: i64) -> Vec<Id> {
        self.lock()
            .iter()
            .filter(|(_, u)| u.next_round_ms <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Who is refreshing what: the single-flight bookkeeping.
#[derive(Default)]
struct InFlight {
    running: HashSet<Id>,
    waiters: HashMap<Id, Vec<oneshot::Sender<Outcome>>>,
    started: HashMap<Id, Instant>,
}

impl InFlight {
    /// Whether a refresh of `id` should start now (none is running, and for
    /// a 401, none started within the debounce).
    fn should_start(&self, id: &Id, reason: Reason) -> bool {
        if self.running.contains(id) {
            return false;
        }
        reason != Reason::Unauthorized
            || self.started.get(id).is_none_or(|t| t.elapsed() >= DEBOUNCE)
    }

    fn start(&mut self, id: &Id) {
        self.running.insert(id.clone());
        self.started.insert(id.clone(), Instant::now());
    }

    /// The refresh of `id` ended: whoever waited for it is answered.
    fn finish(&mut self, id: &Id, outcome: &Outcome) {
        self.running.remove(id);
        for w in self.waiters.remove(id).unwrap_or_default() {
            let _ = w.send(outcome.clone());
        }
    }
}

async fn run(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Cmd>) {
    let mut flight = InFlight::default();
    let held = Held::default();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Id, Outcome)>();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let spawn = |flight: &mut InFlight, id: Id, reason: Reason| {
        flight.start(&id);
        let (ctx, slots, done) = (ctx.clone(), slots.clone(), done_tx.clone());
        let held = held.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let outcome = refresh(&ctx, &held, &id, reason).await.map_err(|e| {
                tracing::warn!(provider = %id.0, key = %id.1, error = %e, "OAuth refresh not made");
                e.to_string()
            });
            let _ = done.send((id, outcome));
        });
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = now_ms();
                // Unsaved tokens are saved again even when the database
                // cannot be read (or still says the refresh is not due).
                for id in held.due(now) {
                    if flight.should_start(&id, Reason::Schedule) {
                        spawn(&mut flight, id, Reason::Schedule);
                    }
                }
                let due = ctx.db.run(move |conn| {
                    Ok(q::accounts(conn)?
                        .into_iter()
                        .filter(|a| a.status != REVOKED && a.refresh_at_ms <= now)
                        .map(|a| (a.provider, a.key_name))
                        .collect::<Vec<Id>>())
                }).await;
                match due {
                    Ok(due) => {
                        for id in due {
                            if flight.should_start(&id, Reason::Schedule) {
                                spawn(&mut flight, id, Reason::Schedule);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "OAuth refreshes: cannot read the accounts"),
                }
            }
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Unauthorized(id)) => {
                    let oauth = ctx.publisher.current().core.providers.iter()
                        .find(|p| p.name == id.0)
                        .and_then(|p| p.keys.iter().find(|k| k.name == id.1))
                        .is_some_and(|k| k.oauth);
                    if oauth && flight.should_start(&id, Reason::Unauthorized) {
                        tracing::info!(provider = %id.0, key = %id.1, "upstream refused an OAuth access token: refreshing now");
                        spawn(&mut flight, id, Reason::Unauthorized);
                    }
                }
                Some(Cmd::Now(id, reply)) => {
                    flight.waiters.entry(id.clone()).or_default().push(reply);
                    if flight.should_start(&id, Reason::Admin) {
                        spawn(&mut flight, id, Reason::Admin);
                    }
                }
            },
            Some((id, outcome)) = done_rx.recv() => flight.finish(&id, &outcome),
        }
    }
}

/// Refreshes one account and stores the outcome; returns the account as
/// stored afterwards (its status says how it went). Tokens issued but not
/// saved (the database refused the write) are held in `held` and saved by
/// the next round; while they are, the token endpoint gets their refresh
/// token, never the one in the database (the server rotated it).
async fn refresh(ctx: &Ctx, held: &Held, id: &Id, reason: Reason) -> Result<AccountRow> {
    let (master, (p, k)) = (ctx.master.clone(), id.clone());
    let read = ctx
        .db
        .run(move |conn| {
            let a = q::find_account(conn, &p, &k)?.ok_or_else(|| {
                Error::NotFound(format!("{p}/{k} is not a connected OAuth account"))
            })?;
            let t =
                template::find(&q::templates(conn)?, &master, &a.template)?.ok_or_else(|| {
                    Error::FailedPrecondition(format!("oauth template {:?} is gone", a.template))
                })?;
            Ok((a, t))
        })
        .await;
    let (before, t) = match read {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, Error::NotFound(_)) {
                held.take(id);
            }
            return Err(e);
        }
    };
    if before.status == REVOKED {
        held.take(id);
        return Ok(before);
    }
    // Unsaved tokens of an earlier round, unless the account was
    // reconnected since (its new tokens win). They stay held until saved:
    // whatever fails before that leaves them for the next round.
    let mut unsaved = held.get(id);
    if unsaved
        .as_ref()
        .is_some_and(|u| u.base != before.refresh_enc)
    {
        held.take(id);
        unsaved = None;
    }
    let now = now_ms();
    if let Some(u) = &unsaved
        && reason == Reason::Schedule
        && now < u.next_round_ms
    {
        return Ok(u.shown.clone());
    }
    // Unsaved tokens not yet due are saved without asking for others.
    let call = unsaved.as_ref().is_none_or(|u| u.row.refresh_at_ms <= now);
    let (unsaved, label) = if call {
        let from = unsaved.as_ref().map_or(&before, |u| &u.row);
        let refresh_token = ctx.master.decrypt(
            &from.refresh_enc,
            &account::refresh_context(&before.provider, &before.key_name),
        )?;
        let req = token::request(
            &t,
            &Grant::Refresh {
                refresh_token: &refresh_token,
            },
        )
        .ok_or_else(|| Error::FailedPrecondition("the template's token_url is unusable".into()))?;
        let answer = ctx.http.call(req, token::TIMEOUT).await;
        let now = now_ms();
        match token::parse(&answer, &t, &[&refresh_token]) {
            Ok(tokens) => {
                let keep = tokens.refresh_token.clone().unwrap_or(refresh_token);
                let previous: serde_json::Value =
                    serde_json::from_str(&from.claims).unwrap_or_default();
                let params = previous.get("param").cloned().unwrap_or_default();
                let claims = account::claims(&tokens, &params, Some(&previous));
                let row = account::row(
                    &ctx.master,
                    &before.provider,
                    &before.key_name,
                    &before.template,
                    &tokens,
                    &keep,
                    claims,
                    now,
                    before.connected_at_ms,
                )?;
                let failures = unsaved.as_ref().map_or(0, |u| u.failures);
                let u = Unsaved {
                    row,
                    base: before.refresh_enc.clone(),
                    failures,
                    next_round_ms: now,
                    shown: before.clone(),
                };
                (u, "ok")
            }
            Err(e) => match unsaved {
                // The unsaved refresh token is still the newest: saved
                // below all the same.
                Some(u) if e.code() != "invalid_grant" => {
                    tracing::warn!(provider = %before.provider, key = %before.key_name,
                        error = %e, "OAuth refresh failed; saving the tokens issued before");
                    (u, "error")
                }
                // Refused: the account is revoked, nothing held is of use.
                _ => {
                    held.take(id);
                    return failed(ctx, before, e, reason, now).await;
                }
            },
        }
    } else {
        let Some(u) = unsaved else {
            return Err(Error::internal("no OAuth tokens to save"));
        };
        (u, "ok")
    };
    save(ctx, held, id, &before, unsaved, label, reason).await
}

/// Saving new tokens: attempts per round, and the pause before the
/// second (doubled before each further one).
const SAVE_ATTEMPTS: u32 = 3;
const SAVE_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between two rounds that save unsaved tokens.
const MAX_SAVE_BACKOFF_MS: i64 = 30_000;

/// Saves the new tokens (and publishes the snapshot carrying the access
/// token), a few times; when the database refuses them still, they are held
/// for the next round and the account shows `error`.
async fn save(
    ctx: &Ctx,
    held: &Held,
    id: &Id,
    before: &AccountRow,
    mut u: Unsaved,
    label: &'static str,
    reason: Reason,
) -> Result<AccountRow> {
    let mut last = None;
    for attempt in 0..SAVE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(SAVE_PAUSE * 2_u32.pow(attempt - 1)).await;
        }
        let (row, base) = (u.row.clone(), u.base.clone());
        match ctx.commit(move |conn, _| store(conn, row, &base)).await {
            Ok(stored) => {
                held.take(id);
                metrics::counter!("aigw_oauth_refreshes_total", "result" => label, "reason" => reason.as_str())
                    .increment(1);
                if stored.refresh_enc == u.row.refresh_enc {
                    tracing::info!(provider = %stored.provider, key = %stored.key_name,
                        reason = reason.as_str(), expires_in_s = (stored.expires_at_ms - now_ms()) / 1000,
                        unsaved_rounds = u.failures, "OAuth access token refreshed");
                }
                return Ok(stored);
            }
            // Gone: nothing to keep the tokens for.
            Err(e @ Error::NotFound(_)) => {
                held.take(id);
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(provider = %before.provider, key = %before.key_name,
                    attempt = attempt + 1, error = %e, "OAuth refresh: the new tokens could not be saved");
                last = Some(e);
            }
        }
    }
    metrics::counter!("aigw_oauth_refreshes_total", "result" => "error", "reason" => reason.as_str())
        .increment(1);
    let now = now_ms();
    u.failures = u.failures.saturating_add(1);
    // A local write, and what is at stake is the account: rounds come
    // closer than the token endpoint's back-off allows.
    u.next_round_ms =
        account::retry_at(now, u.failures, before.expires_at_ms).min(now + MAX_SAVE_BACKOFF_MS);
    let why = last.map_or_else(String::new, |e| e.to_string());
    let last_error = format!(
        "new tokens were issued but could not be saved ({why}); saving them is retried \
         (they are held in memory until then), the current access token stays in use"
    );
    u.shown = AccountRow {
        status: ERROR.into(),
        last_error: last_error.clone(),
        failures: u.failures,
        refresh_at_ms: u.next_round_ms,
        updated_at_ms: now,
        ..before.clone()
    };
    tracing::error!(provider = %before.provider, key = %before.key_name,
        failures = u.failures, retry_in_ms = u.next_round_ms - now, error = %why,
        "OAuth refresh: the rotated tokens could not be saved; they are held in memory and saving is retried");
    // Shown as `error` where the database takes that (it may refuse this
    // write too: the response and the next round still have it).
    let (base, failures, retry_at) = (u.base.clone(), u.failures, u.next_round_ms);
    let (provider, key) = (before.provider.clone(), before.key_name.clone());
    let marked = ctx
        .commit(move |conn, _| {
            if let Some(cur) = q::find_account(conn, &provider, &key)?
                && cur.refresh_enc == base
            {
                q::put_account(
                    conn,
                    &AccountRow {
                        status: ERROR.into(),
                        last_error,
                        failures,
                        refresh_at_ms: retry_at,
                        updated_at_ms: now,
                        ..cur
                    },
                )?;
            }
            Ok(((), false))
        })
        .await;
    if let Err(e) = marked {
        tracing::debug!(provider = %before.provider, key = %before.key_name, error = %e,
            "OAuth refresh: the account's error could not be recorded either");
    }
    let shown = u.shown.clone();
    held.put(id, u);
    Ok(shown)
}

/// Stores `row` (new tokens) over the refresh token `base`; returns what is
/// stored and whether the snapshot changes.
fn store(
    conn: &mut crate::db::AnyConnection,
    row: AccountRow,
    base: &str,
) -> Result<(AccountRow, bool)> {
    let Some(cur) = q::find_account(conn, &row.provider, &row.key_name)? else {
        return Err(Error::NotFound(
            "the account was removed while refreshing".into(),
        ));
    };
    // Reconnected (or refreshed by a call that got in first) while this
    // refresh was under way: the newer tokens stay.
    if cur.refresh_enc != base {
        return Ok((cur, false));
    }
    q::put_account(conn, &row)?;
    // A check that found the old token refused says nothing of the new one.
    let refused = health::current(conn, Some(&cur.provider))?
        .iter()
        .any(|h| h.key_name == cur.key_name && h.status == "invalid_credential");
    if refused {
        health::forget(conn, &cur.provider, &cur.key_name)?;
    }
    Ok((row, true))
}

/// The token endpoint gave no tokens: the account shows why, and is retried
/// (or revoked, for `invalid_grant`).
async fn failed(
    ctx: &Ctx,
    before: AccountRow,
    e: TokenError,
    reason: Reason,
    now: i64,
) -> Result<AccountRow> {
    let label = if e.code() == "invalid_grant" {
        "revoked"
    } else {
        "error"
    };
    metrics::counter!("aigw_oauth_refreshes_total", "result" => label, "reason" => reason.as_str())
        .increment(1);
    let stored = ctx
        .commit(move |conn, _| {
            let Some(cur) = q::find_account(conn, &before.provider, &before.key_name)? else {
                return Err(Error::NotFound(
                    "the account was removed while refreshing".into(),
                ));
            };
            if cur.refresh_enc != before.refresh_enc {
                return Ok((cur, false));
            }
            let revoked = e.code() == "invalid_grant";
            let failures = cur.failures.saturating_add(1);
            let row = AccountRow {
                status: if revoked { REVOKED } else { ERROR }.into(),
                last_error: describe(&e),
                failures,
                refresh_at_ms: account::retry_at(now, failures, cur.expires_at_ms),
                updated_at_ms: now,
                ..cur
            };
            q::put_account(conn, &row)?;
            // Only a revocation changes what the data planes see.
            Ok((row, revoked))
        })
        .await?;
    match stored.status.as_str() {
        REVOKED => tracing::warn!(provider = %stored.provider, key = %stored.key_name,
            error = %stored.last_error, "OAuth refresh token refused: the account must be reconnected"),
        ERROR => tracing::warn!(provider = %stored.provider, key = %stored.key_name,
            error = %stored.last_error, failures = stored.failures,
            retry_in_ms = stored.refresh_at_ms - now, "OAuth refresh failed; retrying"),
        _ => {}
    }
    Ok(stored)
}

fn describe(e: &TokenError) -> String {
    match e {
        TokenError::Refused { status, .. } => {
            format!("the token endpoint refused (HTTP {status}): {e}")
        }
        TokenError::Failed(_) => format!("the token endpoint failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(k: &str) -> Id {
        ("p".into(), k.into())
    }

    #[test]
    fn one_refresh_per_account_and_401s_are_debounced() {
        let mut f = InFlight::default();
        let a = id("a");
        assert!(f.should_start(&a, Reason::Unauthorized));
        f.start(&a);
        // While it runs, nobody starts another, whatever the reason.
        for r in [Reason::Schedule, Reason::Unauthorized, Reason::Admin] {
            assert!(!f.should_start(&a, r));
        }
        assert!(f.should_start(&id("b"), Reason::Schedule));
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        f.waiters.entry(a.clone()).or_default().extend([tx1, tx2]);
        f.finish(&a, &Err("boom".into()));
        // Everyone who waited gets the one outcome.
        assert_eq!(rx1.try_recv().unwrap(), Err("boom".to_string()));
        assert_eq!(rx2.try_recv().unwrap(), Err("boom".to_string()));
        // Just refreshed: a 401 (likely about the old token) waits out the
        // debounce; the schedule and an admin do not.
        assert!(!f.should_start(&a, Reason::Unauthorized));
        assert!(f.should_start(&a, Reason::Schedule));
        assert!(f.should_start(&a, Reason::Admin));
        f.started.insert(a.clone(), Instant::now() - DEBOUNCE);
        assert!(f.should_start(&a, Reason::Unauthorized));
    }
}
