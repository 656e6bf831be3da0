//! Keeps every connected account's access token fresh, by the control
//! plane alone: a refresh is due a third of the token's lifetime before it
//! expires (at most five minutes before); an upstream 401 seen by a data
//! plane, or an admin, asks for one at once. One refresh per account at a
//! time (callers that ask while one runs get its result). A refresh token
//! the server rotated is committed, with the new access token, before the
//! snapshot carrying that access token is published. A failure is retried
//! with back-off (the current token stays in use); a refresh token the
//! server refuses (`invalid_grant`) marks the account revoked, which takes
//! its key out of every data plane's pool until it is reconnected.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Id, Outcome)>();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let spawn = |flight: &mut InFlight, id: Id, reason: Reason| {
        flight.start(&id);
        let (ctx, slots, done) = (ctx.clone(), slots.clone(), done_tx.clone());
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let outcome = refresh(&ctx, &id, reason).await.map_err(|e| {
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
                    let oauth = ctx.publisher.current().providers.iter()
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
/// stored afterwards (its status says how it went).
async fn refresh(ctx: &Ctx, id: &Id, reason: Reason) -> Result<AccountRow> {
    let (master, (p, k)) = (ctx.master.clone(), id.clone());
    let (before, t) = ctx
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
        .await?;
    if before.status == REVOKED {
        return Ok(before);
    }
    let refresh_token = ctx.master.decrypt(
        &before.refresh_enc,
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
    let result = token::parse(&answer, &[&refresh_token]);
    let label = match &result {
        Ok(_) => "ok",
        Err(e) if e.code() == "invalid_grant" => "revoked",
        Err(_) => "error",
    };
    metrics::counter!("aigw_oauth_refreshes_total", "result" => label, "reason" => reason.as_str())
        .increment(1);
    let now = now_ms();
    let stored = ctx
        .commit(move |conn, master| {
            let Some(cur) = q::find_account(conn, &before.provider, &before.key_name)? else {
                return Err(Error::NotFound(
                    "the account was removed while refreshing".into(),
                ));
            };
            // Reconnected (or refreshed by a call that got in first) while
            // this refresh was under way: the newer tokens stay.
            if cur.refresh_enc != before.refresh_enc {
                return Ok((cur, false));
            }
            match result {
                Ok(tokens) => {
                    let keep = tokens.refresh_token.clone().unwrap_or(refresh_token);
                    let previous: serde_json::Value =
                        serde_json::from_str(&cur.claims).unwrap_or_default();
                    let params = previous.get("param").cloned().unwrap_or_default();
                    let claims = account::claims(&tokens, &params, Some(&previous));
                    let row = account::row(
                        master,
                        &cur.provider,
                        &cur.key_name,
                        &cur.template,
                        &tokens,
                        &keep,
                        claims,
                        now,
                        cur.connected_at_ms,
                    )?;
                    q::put_account(conn, &row)?;
                    // A check that found the old token refused says nothing
                    // of the new one.
                    let refused = health::current(conn, Some(&cur.provider))?
                        .iter()
                        .any(|h| h.key_name == cur.key_name && h.status == "invalid_credential");
                    if refused {
                        health::forget(conn, &cur.provider, &cur.key_name)?;
                    }
                    Ok((row, true))
                }
                Err(e) => {
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
                }
            }
        })
        .await?;
    match stored.status.as_str() {
        account::CONNECTED => tracing::info!(provider = %stored.provider, key = %stored.key_name,
            reason = reason.as_str(), expires_in_s = (stored.expires_at_ms - now) / 1000,
            "OAuth access token refreshed"),
        REVOKED => tracing::warn!(provider = %stored.provider, key = %stored.key_name,
            error = %stored.last_error, "OAuth refresh token refused: the account must be reconnected"),
        _ => tracing::warn!(provider = %stored.provider, key = %stored.key_name,
            error = %stored.last_error, failures = stored.failures,
            retry_in_ms = stored.refresh_at_ms - now, "OAuth refresh failed; retrying"),
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
