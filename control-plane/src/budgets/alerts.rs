//! Budget alerts: when a budget's use crosses 50, 80 or 100 % of one of its
//! tokens or cost limits, one event per budget, limit, threshold and period
//! (per region for regional budgets), recorded in `budget_alerts` and in
//! the audit log, and posted to every webhook: a JSON body signed with the
//! webhook's secret (`x-aigw-signature: sha256=HEX`, HMAC-SHA256 of the
//! body), with an `x-aigw-event-id` receivers can deduplicate by. Delivery
//! is retried with exponential back-off (1 s, 2 s, 4 s… up to 8 attempts)
//! and survives a restart (the pending ones are in the database). With no
//! webhook configured an alert is only recorded: nothing is attempted (and
//! logged) until a webhook is added, and then it is posted.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use ring::hmac;

use super::ledger::{Ledger, Used};
use super::{Ctx, DAY_MS, Subject, live_periods, month_start_day};
use crate::crypto;
use crate::db::budgets::{self, AlertRow};
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
                // refusal counts as the whole limit used.
                let pct = if used_up { 100.0 } else { used / limit * 100.0 };
                for t in THRESHOLDS.iter().copied().filter(|t| pct >= f64::from(*t)) {
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
                        // Crossed by a refusal (a request whose reservation
                        // did not fit), not by use: `used` may be far below.
                        "refused": used_up,
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
                        if used_up {
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

/// Posts the alerts due now to every webhook. With none configured, the
/// alerts stay pending, untried, and this is logged once (`told_no_webhook`
/// remembers it until a webhook is configured).
pub(super) async fn deliver(ctx: &Ctx, now: i64, told_no_webhook: &mut bool) {
    let pending = match ctx.db.run(budgets::undelivered_alerts).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read pending budget alerts");
            return;
        }
    };
    let due: Vec<AlertRow> = pending
        .into_iter()
        .filter(|a| a.attempts < MAX_ATTEMPTS)
        .filter(|a| {
            let wait = if a.attempts == 0 {
                0
            } else {
                1000i64 << (a.attempts - 1).min(16)
            };
            now >= a.fired_at_ms + wait
        })
        .collect();
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
        if !*told_no_webhook {
            tracing::info!(
                pending = due.len(),
                "budget alerts are recorded but not posted: no webhook is configured; \
                 they will be posted once one is"
            );
            *told_no_webhook = true;
        }
        return;
    }
    *told_no_webhook = false;
    for a in due {
        let mut error = String::new();
        for h in &hooks {
            let secret = match ctx.master.decrypt(&h.secret_enc, &webhook_context(&h.name)) {
                Ok(s) => s,
                Err(e) => {
                    error = e.to_string();
                    continue;
                }
            };
            let body = Bytes::from(a.payload.clone());
            let event_id = serde_json::from_str::<serde_json::Value>(&a.payload)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
                .unwrap_or_default();
            let req = Request::post(&h.url)
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
                .body(Full::new(body));
            let Ok(req) = req else {
                error = format!("webhook {:?}: bad request", h.name);
                continue;
            };
            match ctx.http.call(req, Duration::from_secs(10)).await {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => error = format!("webhook {:?} answered {}", h.name, r.status),
                Err(e) => error = format!("webhook {:?}: {e}", h.name),
            }
        }
        let delivered = if error.is_empty() { now_ms() } else { 0 };
        if !error.is_empty() {
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
}

/// The associated data a webhook's secret is sealed with.
pub fn webhook_context(name: &str) -> String {
    format!("webhook:{name}")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

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
        let mut told = false;
        for tick in 0..10 {
            deliver(&ctx, now + tick * 600_000, &mut told).await;
        }
        assert!(told, "the missing webhook was not reported");
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
        deliver(&ctx, now_ms(), &mut told).await;
        let request = received.await.unwrap();
        assert!(request.starts_with("POST /hook "), "{request}");
        assert!(
            request.contains("x-aigw-event-id: team-a/cost_per_day/2026-12-02/80"),
            "{request}"
        );
        assert!(!told);
        assert!(pending(&ctx).await.is_empty());
    }

    /// A budget smaller than one request's reservation refuses with nothing
    /// used: its alerts say a refusal crossed them, and what was used.
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
        assert_eq!(fired.len(), 3, "{fired:?}");
        for a in &fired {
            let p: serde_json::Value = serde_json::from_str(&a.payload).unwrap();
            assert_eq!(
                (p["refused"].as_bool(), p["used"].as_f64()),
                (Some(true), Some(0.0))
            );
        }
    }
}
