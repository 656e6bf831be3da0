//! Budget alerts: when a budget's use crosses 50, 80 or 100 % of one of its
//! tokens or cost limits, one event per budget, limit, threshold and period
//! (per region for regional budgets), recorded in `budget_alerts` and in
//! the audit log, and posted to every webhook: a JSON body signed with the
//! webhook's secret (`x-aigw-signature: sha256=HEX`, HMAC-SHA256 of the
//! body), with an `x-aigw-event-id` receivers can deduplicate by. Posts
//! run in a task of their own (never in the budgets' lease loop), several
//! at once. Delivery is retried with exponential back-off (1 s, 2 s, 4 s…
//! up to 8 attempts), to the webhooks that have not taken the alert yet
//! only, and survives a restart (the pending ones are in the database;
//! which webhooks took one is remembered in memory). With no webhook
//! configured an alert is only recorded: nothing is attempted (and logged)
//! until a webhook is added, and then it is posted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::Request;
use http_body_util::Full;
use ring::hmac;

use super::ledger::{Ledger, Used};
use super::{Ctx, DAY_MS, Subject, TICK, live_periods, month_start_day};
use crate::crypto;
use crate::db::budgets::{self, AlertRow, WebhookRow};
use crate::db::identity::{AuditRow, insert_audit};
use crate::db::{now_ms, write_tx};
use crate::error::Result;

pub const THRESHOLDS: [i32; 3] = [50, 80, 100];

/// One limit to check: its name, period, value, and use per scope (region,
/// or "" for the whole).
type Check<'a> = (&'static str, &'a String, f64, Vec<(String, f64)>);
const MAX_ATTEMPTS: i32 = 8;

/// Fires the alerts whose thresholds were crossed since the last tick.
pub(super) async fn check(
    ctx: &Ctx,
    ledger: &Ledger,
    subjects: &[Subject],
    now: i64,
) -> Result<()> {
    let periods = live_periods(now);
    let today = now / DAY_MS;
    let month_from = month_start_day(now);
    let mut fire: Vec<(AlertRow, String)> = Vec::new();
    for s in subjects {
        let keys: Vec<&str> = s.keys.iter().map(String::as_str).collect();
        let day = ledger.by_region(&keys, today, today);
        let month = ledger.by_region(&keys, month_from, today);
        // Global: the whole; regional: each region against the limit.
        let scopes = |m: &std::collections::HashMap<String, Used>| -> Vec<(String, Used)> {
            if s.global {
                let mut all = Used::default();
                for u in m.values() {
                    all.tokens += u.tokens;
                    all.cost += u.cost;
                }
                vec![(String::new(), all)]
            } else {
                m.iter().map(|(r, u)| (r.clone(), *u)).collect()
            }
        };
        let mut checks: Vec<Check<'_>> = Vec::new();
        if let Some(t) = s.limits.tokens_per_day {
            let v = scopes(&day)
                .into_iter()
                .map(|(r, u)| (r, u.tokens as f64))
                .collect();
            checks.push(("tokens_per_day", &periods[0], t as f64, v));
        }
        if let Some(c) = s.limits.cost_per_day {
            let v = scopes(&day).into_iter().map(|(r, u)| (r, u.cost)).collect();
            checks.push(("cost_per_day", &periods[0], c, v));
        }
        if let Some(c) = s.limits.cost_per_month {
            let v = scopes(&month)
                .into_iter()
                .map(|(r, u)| (r, u.cost))
                .collect();
            checks.push(("cost_per_month", &periods[2], c, v));
        }
        for (limit_name, period, limit, values) in checks {
            if limit <= 0.0 {
                continue;
            }
            let from = if limit_name == "cost_per_month" {
                month_from
            } else {
                today
            };
            let refused = ledger.refused_in(&s.id, limit_name, from, today);
            let mut values = values;
            // A refused region may have no use recorded yet this period.
            for r in &refused {
                let scope = if s.global { String::new() } else { r.clone() };
                if !values.iter().any(|(v, _)| *v == scope) {
                    values.push((scope, 0.0));
                }
            }
            for (region, used) in values {
                let used_up = if s.global {
                    !refused.is_empty()
                } else {
                    refused.contains(&region)
                };
                // Reservations refuse before use reaches the limit: a
                // refusal fires the 100% alert ("a request was refused"),
                // the lower ones only once use reaches them (an operator
                // paging on 80% must not be woken at 53%).
                let pct = used / limit * 100.0;
                let crossed = |t: &i32| pct >= f64::from(*t) || (used_up && *t == 100);
                for t in THRESHOLDS.iter().copied().filter(crossed) {
                    let scope = if region.is_empty() {
                        s.id.clone()
                    } else {
                        format!("{}@{region}", s.id)
                    };
                    let payload = serde_json::json!({
                        "event": "budget.threshold",
                        "id": format!("{scope}/{limit_name}/{period}/{t}"),
                        "budget": s.id,
                        "name": s.name,
                        "region": if region.is_empty() { "global" } else { region.as_str() },
                        "limit": limit_name,
                        "period": period,
                        "threshold_percent": t,
                        "used": used,
                        "limit_value": limit,
                        // The 100% alert of a refusal (a request whose
                        // reservation did not fit): `used` may be below.
                        "refused": used_up && t == 100,
                        "at_ms": now,
                    });
                    fire.push((
                        AlertRow {
                            budget: format!("{scope}/{limit_name}"),
                            period: period.clone(),
                            threshold: t,
                            fired_at_ms: now,
                            delivered_at_ms: 0,
                            attempts: 0,
                            last_error: String::new(),
                            payload: payload.to_string(),
                        },
                        if used_up && t == 100 {
                            format!(
                                "{} {limit_name} at {t}% ({period}): a request was refused, {used} used of {limit}",
                                s.name
                            )
                        } else {
                            format!("{} {limit_name} at {t}% ({period})", s.name)
                        },
                    ));
                }
            }
        }
    }
    if fire.is_empty() {
        return Ok(());
    }
    ctx.db
        .run(move |conn| {
            write_tx(conn, |conn| {
                for (row, detail) in &fire {
                    if budgets::fire_alert(conn, row)? {
                        tracing::info!(alert = %detail, "budget alert");
                        let ns = crypto::new_id()?;
                        insert_audit(
                            conn,
                            &[AuditRow {
                                id: format!("{:020}-{}", now.saturating_mul(1_000_000), &ns[..8]),
                                at_ms: now,
                                actor: "system".into(),
                                actor_user_id: None,
                                action: "budget_alert".into(),
                                object_kind: "budget".into(),
                                object_name: row.budget.clone(),
                                detail: detail.clone(),
                            }],
                        )?;
                    }
                }
                Ok(())
            })
        })
        .await
}

/// HMAC-SHA256 of `body` under `secret`, hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, body).as_ref())
}

/// Webhook posts in flight at once, over every alert of a round: a few
/// receivers that hang do not hold up the others one after another.
const POSTS_AT_ONCE: usize = 8;
/// A webhook gets this long to answer a post.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// An alert's identity: (budget, period, threshold), as `budget_alerts`
/// keys it.
type AlertId = (String, String, i32);

/// What delivery remembers from one round to the next.
#[derive(Default)]
pub(super) struct Delivery {
    /// No webhook is configured, and that was logged (until one is).
    told_no_webhook: bool,
    /// The webhooks each pending alert was posted to already: its retries
    /// go to the others only, so one failing receiver does not make the
    /// healthy ones get it again. Kept in memory, not in the database (a
    /// restart forgets it and may post an alert once more to a webhook that
    /// took it; receivers deduplicate by `x-aigw-event-id`).
    delivered: HashMap<AlertId, HashSet<String>>,
}

/// Posts the due alerts every second, in a task of its own: webhook posts
/// (10 s each at worst) never hold up the budgets' lease top-ups.
pub(super) async fn run(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = Delivery::default();
    loop {
        tick.tick().await;
        deliver(&ctx, now_ms(), &mut state).await;
    }
}

fn id_of(a: &AlertRow) -> AlertId {
    (a.budget.clone(), a.period.clone(), a.threshold)
}

/// The pending alerts whose next attempt is due at `now` (exponential
/// back-off from when they fired), and not out of attempts.
fn due(pending: &[AlertRow], now: i64) -> Vec<AlertRow> {
    pending
        .iter()
        .filter(|a| a.attempts < MAX_ATTEMPTS)
        .filter(|a| {
            let wait = if a.attempts == 0 {
                0
            } else {
                1000i64 << (a.attempts - 1).min(16)
            };
            now >= a.fired_at_ms + wait
        })
        .cloned()
        .collect()
}

/// Posts the alerts due now to every webhook that has not taken them yet,
/// several at once. With none configured, the alerts stay pending, untried,
/// and this is logged once (until a webhook is configured).
pub(super) async fn deliver(ctx: &Ctx, now: i64, state: &mut Delivery) {
    let pending = match ctx.db.run(budgets::undelivered_alerts).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read pending budget alerts");
            return;
        }
    };
    // Alerts delivered or given up on need no memory of their webhooks.
    let retried: HashSet<AlertId> = pending
        .iter()
        .filter(|a| a.attempts < MAX_ATTEMPTS)
        .map(id_of)
        .collect();
    state.delivered.retain(|id, _| retried.contains(id));
    let due = due(&pending, now);
    if due.is_empty() {
        return;
    }
    let hooks = match ctx.db.run(budgets::list_webhooks).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read webhooks");
            return;
        }
    };
    if hooks.is_empty() {
        if !state.told_no_webhook {
            tracing::info!(
                pending = due.len(),
                "budget alerts are recorded but not posted: no webhook is configured; \
                 they will be posted once one is"
            );
            state.told_no_webhook = true;
        }
        return;
    }
    state.told_no_webhook = false;
    let outcomes = post_all(ctx, &due, &hooks, &state.delivered).await;
    for (i, a) in due.iter().enumerate() {
        let took = state.delivered.entry(id_of(a)).or_default();
        let mut error = String::new();
        for (_, hook, result) in outcomes.iter().filter(|(j, _, _)| *j == i) {
            match result {
                Ok(()) => {
                    took.insert(hook.clone());
                }
                Err(e) => error.clone_from(e),
            }
        }
        let everywhere = hooks.iter().all(|h| took.contains(&h.name));
        record_attempt(ctx, a, everywhere, error).await;
    }
}

/// Posts every alert of `due` (by index) to every webhook that has not
/// taken it yet, at most `POSTS_AT_ONCE` at a time; returns each post's
/// (alert index, webhook name, outcome).
async fn post_all(
    ctx: &Ctx,
    due: &[AlertRow],
    hooks: &[WebhookRow],
    delivered: &HashMap<AlertId, HashSet<String>>,
) -> Vec<(usize, String, std::result::Result<(), String>)> {
    let mut posts = Vec::new();
    for (i, a) in due.iter().enumerate() {
        let took = delivered.get(&id_of(a));
        for h in hooks {
            if !took.is_some_and(|t| t.contains(&h.name)) {
                posts.push(async move { (i, h.name.clone(), post(ctx, h, &a.payload).await) });
            }
        }
    }
    futures_util::stream::iter(posts)
        .buffer_unordered(POSTS_AT_ONCE)
        .collect()
        .await
}

/// Posts one alert to one webhook, signed with its secret.
async fn post(ctx: &Ctx, hook: &WebhookRow, payload: &str) -> std::result::Result<(), String> {
    let secret = ctx
        .master
        .decrypt(&hook.secret_enc, &webhook_context(&hook.name))
        .map_err(|e| format!("webhook {:?}: {e}", hook.name))?;
    let body = Bytes::from(payload.to_string());
    let event_id = serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .unwrap_or_default();
    let req = Request::post(&hook.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("aigw-alerts/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-aigw-event-id", event_id)
        .header(
            "x-aigw-signature",
            format!("sha256={}", signature(&secret, &body)),
        )
        .body(Full::new(body))
        .map_err(|_| format!("webhook {:?}: bad request", hook.name))?;
    match ctx.http.call(req, POST_TIMEOUT).await {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(format!("webhook {:?} answered {}", hook.name, r.status)),
        Err(e) => Err(format!("webhook {:?}: {e}", hook.name)),
    }
}

/// Records one attempt at `a`: delivered when every webhook has it, else
/// the last error (the alert is retried).
async fn record_attempt(ctx: &Ctx, a: &AlertRow, everywhere: bool, error: String) {
    let delivered = if everywhere { now_ms() } else { 0 };
    if !everywhere {
        tracing::warn!(alert = %a.budget, attempt = a.attempts + 1, %error, "budget alert not delivered; will retry");
    }
    let row = a.clone();
    if let Err(e) = ctx
        .db
        .run(move |c| budgets::alert_tried(c, &row, delivered, &error))
        .await
    {
        tracing::warn!(error = %e, "cannot record a budget alert delivery");
    }
}

/// The associated data a webhook's secret is sealed with.
pub fn webhook_context(name: &str) -> String {
    format!("webhook:{name}")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::compile::compile;
    use crate::crypto::MasterKey;
    use crate::db::budgets::WebhookRow;
    use crate::db::testing::temp_db;
    use crate::outbound::Outbound;
    use crate::push::{Publisher, Registry};

    fn ctx(db: crate::db::Db) -> Ctx {
        let master = MasterKey::from_hex(&"5a".repeat(32)).unwrap();
        let snapshot = compile(&crate::db::config::ConfigRows::default(), &master, None).unwrap();
        Ctx {
            db,
            master,
            publisher: Publisher::new(snapshot),
            write_lock: Arc::new(Mutex::new(())),
            registry: Registry::default(),
            http: Outbound::new(None).unwrap(),
        }
    }

    fn alert(now: i64) -> AlertRow {
        AlertRow {
            budget: "team-a/cost_per_day".into(),
            period: "2026-12-02".into(),
            threshold: 80,
            fired_at_ms: now,
            delivered_at_ms: 0,
            attempts: 0,
            last_error: String::new(),
            payload: r#"{"event":"budget.threshold","id":"team-a/cost_per_day/2026-12-02/80"}"#
                .into(),
        }
    }

    async fn pending(ctx: &Ctx) -> Vec<AlertRow> {
        ctx.db.run(budgets::undelivered_alerts).await.unwrap()
    }

    /// Answers one HTTP request with 200 and hands back what it received.
    async fn one_shot_webhook() -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if n == 0 || text.contains("team-a/cost_per_day/2026-12-02/80\"}") {
                    break;
                }
            }
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn without_a_webhook_an_alert_waits_untried_and_is_posted_once_one_is_configured() {
        let t = temp_db();
        let ctx = ctx(t.db.clone());
        let now = now_ms();
        let row = alert(now - 60_000);
        ctx.db
            .run(move |c| budgets::fire_alert(c, &row))
            .await
            .unwrap();

        // No webhook: ticks go by (long enough for every retry of the
        // back-off), nothing is attempted and the alert stays recorded.
        let mut delivery = Delivery::default();
        for tick in 0..10 {
            deliver(&ctx, now + tick * 600_000, &mut delivery).await;
        }
        assert!(
            delivery.told_no_webhook,
            "the missing webhook was not reported"
        );
        let p = pending(&ctx).await;
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].attempts, 0, "{p:?}");
        assert_eq!(p[0].last_error, "", "{p:?}");

        // A webhook is configured: the waiting alert is posted, signed.
        let (url, received) = one_shot_webhook().await;
        let secret_enc = ctx
            .master
            .encrypt("whsec", &webhook_context("ops"))
            .unwrap();
        let hook = WebhookRow {
            name: "ops".into(),
            url,
            secret_enc,
            created_at_ms: now,
            updated_at_ms: now,
        };
        ctx.db
            .run(move |c| budgets::put_webhook(c, &hook))
            .await
            .unwrap();
        deliver(&ctx, now_ms(), &mut delivery).await;
        let request = received.await.unwrap();
        assert!(request.starts_with("POST /hook "), "{request}");
        assert!(
            request.contains("x-aigw-event-id: team-a/cost_per_day/2026-12-02/80"),
            "{request}"
        );
        assert!(!delivery.told_no_webhook);
        assert!(pending(&ctx).await.is_empty());
    }

    /// Answers 200 to every post it gets and counts them.
    async fn counting_webhook() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let posts = Arc::new(AtomicUsize::new(0));
        let count = posts.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = sock.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if String::from_utf8_lossy(&got).contains('}') {
                            count.fetch_add(1, Ordering::SeqCst);
                            got.clear();
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            let _ = sock.write_all(ok).await;
                        }
                    }
                });
            }
        });
        (url, posts)
    }

    async fn webhook(ctx: &Ctx, name: &str, url: String) {
        let hook = WebhookRow {
            name: name.into(),
            url,
            secret_enc: ctx.master.encrypt("whsec", &webhook_context(name)).unwrap(),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        ctx.db
            .run(move |c| budgets::put_webhook(c, &hook))
            .await
            .unwrap();
    }

    /// One webhook refuses every post: the alert is retried for it, and
    /// the webhook that answered gets the alert once, not at every retry.
    #[tokio::test]
    async fn a_failing_webhook_does_not_make_the_healthy_one_receive_an_alert_twice() {
        let t = temp_db();
        let ctx = ctx(t.db.clone());
        let (good, posts) = counting_webhook().await;
        webhook(&ctx, "good", good).await;
        // A closed port: refused at once.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/hook", l.local_addr().unwrap())
        };
        webhook(&ctx, "dead", dead).await;
        let now = now_ms();
        let row = alert(now);
        ctx.db
            .run(move |c| budgets::fire_alert(c, &row))
            .await
            .unwrap();
        let mut delivery = Delivery::default();
        for round in 0..4 {
            deliver(&ctx, now + round * 600_000, &mut delivery).await;
        }
        assert_eq!(posts.load(Ordering::SeqCst), 1);
        let p = pending(&ctx).await;
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].attempts, 4, "{p:?}");
        assert!(p[0].last_error.contains("\"dead\""), "{p:?}");
    }

    /// A budget smaller than one request's reservation refuses with nothing
    /// used: its 100% alert says a refusal crossed it, and what was used;
    /// the 50% and 80% alerts wait for use to reach them.
    #[tokio::test]
    async fn alerts_a_refusal_fired_say_so_and_what_was_used() {
        let t = temp_db();
        let ctx = ctx(t.db.clone());
        let now = now_ms();
        let ledger = Ledger::default();
        ledger.note_refused("key:tiny/tokens_per_day", "eu", now);
        let subjects = [Subject {
            id: "key:tiny".into(),
            name: "tiny".into(),
            limits: aigw_proto::pb::config::Limits {
                tokens_per_day: Some(60),
                ..Default::default()
            },
            global: false,
            keys: vec!["tiny".into()],
        }];
        check(&ctx, &ledger, &subjects, now).await.unwrap();
        let fired = pending(&ctx).await;
        assert_eq!(fired.len(), 1, "{fired:?}");
        let p: serde_json::Value = serde_json::from_str(&fired[0].payload).unwrap();
        assert_eq!(
            (
                p["threshold_percent"].as_i64(),
                p["refused"].as_bool(),
                p["used"].as_f64()
            ),
            (Some(100), Some(true), Some(0.0))
        );
    }
}
