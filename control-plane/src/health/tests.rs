//! What a check publishes to the data planes, and when it does not.

use std::time::Duration;

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{ProviderKeySpec, ProviderSpec};

use super::*;
use crate::admin::testkit::{req, svc};
use crate::db::testing::temp_db;

fn row(status: &str, retry_at_ms: i64, detail: &str) -> HealthRow {
    HealthRow {
        provider: "p".into(),
        key_name: "k".into(),
        status: status.into(),
        http_status: 0,
        latency_us: 0,
        detail: detail.into(),
        checked_at_ms: 0,
        retry_at_ms,
        trigger_kind: "schedule".into(),
    }
}

fn told(status: &str, retry_at_ms: i64) -> pb::KeyHealth {
    pb::KeyHealth {
        status: status.into(),
        retry_at_ms,
        detail: "Rate limit reached".into(),
    }
}

/// Data planes hear of a key becoming unusable or usable, for another
/// reason, or to be retried markedly later; not of a retry time that
/// follows the clock, nor of a new wording.
#[test]
fn data_planes_are_told_what_changes_their_choice_of_key() {
    let limited = told("rate_limited", 100_000);
    let worth = |published: Option<&pb::KeyHealth>, r: HealthRow| worth_publishing(published, &r);
    assert!(worth(None, row("rate_limited", 100_000, "")));
    assert!(!worth(None, row("ok", 0, "")));
    assert!(worth(Some(&limited), row("ok", 0, "")));
    assert!(worth(Some(&limited), row("upstream_down", 0, "")));
    assert!(!worth(
        Some(&limited),
        row("rate_limited", 102_000, "other words")
    ));
    assert!(!worth(Some(&limited), row("rate_limited", 90_000, "")));
    assert!(worth(Some(&limited), row("rate_limited", 106_000, "")));
}

/// A provider API that answers every request 429 with `retry-after: 20`.
async fn rate_limiting_api() -> String {
    crate::canned_http::answering(
        "429 Too Many Requests",
        &["retry-after: 20"],
        r#"{"error":{"message":"Rate limit reached for requests"}}"#,
    )
    .await
}

/// A key that stays rate limited is published once, not at each check
/// (each check's retry time is a little later): under a provider-wide 429
/// the data planes' reports would otherwise recompile and push a snapshot
/// per key every two seconds.
#[tokio::test(flavor = "multi_thread")]
async fn checks_of_a_key_that_stays_rate_limited_publish_it_once() {
    let t = temp_db();
    let s = svc(&t);
    s.upsert_provider(req(ProviderSpec {
        name: "p".into(),
        kind: "openai".into(),
        base_url: rate_limiting_api().await,
        health_check_interval_secs: Some(0),
        keys: vec![ProviderKeySpec {
            name: "k".into(),
            secret: "sk-test-0123456789".into(),
            weight: 1,
            oauth_template: String::new(),
        }],
        ..Default::default()
    }))
    .await
    .unwrap();
    let checker = Checker::start(Ctx {
        db: t.db.clone(),
        master: s.master.clone(),
        publisher: s.publisher.clone(),
        write_lock: s.write_lock.clone(),
        http: Outbound::new(None).unwrap(),
    });
    let before = s.publisher.published();
    for _ in 0..5 {
        let r = checker.check_now("p", "k").await.unwrap();
        assert_eq!(r.status, "rate_limited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.publisher.published() - before, 1);
    let key = s.publisher.current().core.providers[0].keys[0].clone();
    assert_eq!(
        key.health.map(|h| h.status).as_deref(),
        Some("rate_limited")
    );
}
