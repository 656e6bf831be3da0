//! URLs as the Admin API checks them, as its callers see it: a webhook's
//! `url` (which may hold the receiver's token in its path or query) is
//! refused by its field name, with none of it in the message or the audit
//! log; one with a token in its query is taken, and shown whole to admins
//! only; a provider's `base_url` errors show its scheme and host at most.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::{AuditQuery, ListRequest, ProviderKeySpec, ProviderSpec, WebhookSpec};
use tonic::Code;

use super::AdminSvc;
use super::testkit::{req, req_as, svc, user};
use crate::db::testing::temp_db;

const HMAC: &str = "hmac-secret-123456";

fn hook(name: &str, url: &str, secret: &str) -> WebhookSpec {
    WebhookSpec {
        name: name.into(),
        url: url.into(),
        secret: secret.into(),
    }
}

async fn listed_urls(s: &AdminSvc, token: &str) -> Vec<(String, String)> {
    s.list_webhooks(req_as(ListRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .webhooks
        .into_iter()
        .map(|w| (w.name, w.url))
        .collect()
}

/// The whole audit log, as its readers get it.
async fn audit(s: &AdminSvc) -> String {
    let log = s
        .list_audit_log(req(AuditQuery {
            page_size: 500,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    format!("{log:?}")
}

#[tokio::test]
async fn webhook_url_errors_name_the_url_field_and_echo_none_of_it() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    // Each holds the receiver's token (`TOKEN`) where it would be.
    let cases = [
        (
            "ftp://hooks.example.invalid/T0/TOKEN",
            "must start with http:// or https://",
        ),
        (
            "https://ann:TOKEN@hooks.example.invalid/x",
            "must not carry credentials",
        ),
        (
            "https://ann:TOK/EN@hooks.example.invalid/x",
            "must not carry credentials",
        ),
        ("https:///services/TOKEN", "has no valid host"),
        ("https://hooks.example.invalid:70000/TOKEN", "invalid port"),
        (
            "https://hooks.example.invalid/services/T0/TOKEN ",
            "spaces or control",
        ),
        (
            "https://hooks.example.invalid/x?token=TOKEN two",
            "spaces or control",
        ),
        (
            "https://hooks.example.invalid/<TOKEN>",
            "is not a valid URL",
        ),
        // The masked form of a URL, for a webhook that has none stored.
        ("https://hooks.example.invalid/…", "hidden from your role"),
    ];
    for (url, says) in cases {
        let e = s
            .upsert_webhook(req_as(hook("ops", url, HMAC), &op))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{url}: {e:?}");
        let m = e.message();
        assert!(m.starts_with("webhook \"ops\": url "), "{url}: {m}");
        assert!(m.contains(says), "{url}: {m}");
        for leak in ["TOK", "ann", "services", "hooks.example", "base_url"] {
            assert!(!m.contains(leak), "{url}: {leak:?} in {m}");
        }
    }
    assert_eq!(
        s.upsert_webhook(req(hook("ops", "", HMAC)))
            .await
            .unwrap_err()
            .message(),
        "webhook \"ops\": url is required"
    );
    // Nothing was stored, and the audit log recorded none of it.
    assert!(listed_urls(&s, &op).await.is_empty());
    let log = audit(&s).await;
    assert!(!log.contains("webhook") && !log.contains("TOK"), "{log}");
}

/// Many receivers take their token in the query (`?token=`, Google Chat's
/// `?key=…&token=…`): it is taken, and kept from non-admins like a path.
#[tokio::test]
async fn a_webhook_url_may_carry_a_token_in_its_query_shown_whole_to_admins_only() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    let vi = user(&s, "vi", "viewer").await;
    let admin = user(&s, "ad", "admin").await;
    let chat = "https://chat.example.invalid/v1/spaces/AAA/messages?key=K-SECRET&token=T-SECRET";
    let bare = "https://hooks.example.invalid?token=Q-SECRET";
    for (name, url) in [("chat", chat), ("bare", bare)] {
        let r = s
            .upsert_webhook(req(hook(name, url, HMAC)))
            .await
            .unwrap()
            .into_inner();
        assert!(r.created, "{url}");
    }
    assert_eq!(
        listed_urls(&s, &admin).await,
        [("bare".into(), bare.into()), ("chat".into(), chat.into())]
    );
    let masked = [
        (
            "bare".to_string(),
            "https://hooks.example.invalid/…".to_string(),
        ),
        (
            "chat".to_string(),
            "https://chat.example.invalid/…".to_string(),
        ),
    ];
    for token in [&op, &vi] {
        assert_eq!(listed_urls(&s, token).await, masked);
    }
    // An operator edits both as shown, with a new secret: the stored URLs,
    // query included, are kept.
    for (name, url) in &masked {
        let r = s
            .upsert_webhook(req_as(hook(name, url, "hmac-rotated-0000"), &op))
            .await
            .unwrap()
            .into_inner();
        assert!(r.changed && !r.created, "{name}");
    }
    assert_eq!(
        listed_urls(&s, &admin).await,
        [("bare".into(), bare.into()), ("chat".into(), chat.into())]
    );
    // A masked URL of another origin keeps nothing: refused, unchanged.
    let e = s
        .upsert_webhook(req_as(
            hook("chat", "https://hooks.example.invalid/…", ""),
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("type the whole new URL"), "{e:?}");
    assert_eq!(listed_urls(&s, &admin).await[1].1, chat);
    // The audit log names the hosts, never a path or query.
    let log = audit(&s).await;
    assert!(
        log.contains("host=chat.example.invalid secret given"),
        "{log}"
    );
    assert!(
        log.contains("host=hooks.example.invalid secret given"),
        "{log}"
    );
    for leak in ["SECRET", "token=", "spaces/AAA"] {
        assert!(!log.contains(leak), "{leak:?} in {log}");
    }
}

#[tokio::test]
async fn provider_base_url_errors_validate_and_show_scheme_and_host_at_most() {
    let t = temp_db();
    let s = svc(&t);
    let provider = |base_url: &str| ProviderSpec {
        name: "gw".into(),
        kind: "openai-compatible".into(),
        base_url: base_url.into(),
        models: vec!["gpt-4o*".into()],
        keys: vec![ProviderKeySpec {
            name: "k".into(),
            secret: "sk-0123456789abcdef".into(),
            weight: 1,
            oauth_template: String::new(),
        }],
        ..Default::default()
    };
    let cases = [
        (
            "https://ann:PW-SECRET@gw.example.invalid/v1",
            "credentials or a query string",
        ),
        (
            "https://gw.example.invalid/v1?key=KEY-SECRET",
            "credentials or a query string",
        ),
        (
            "https://gw.example.invalid/v1/PATH-SECRET x",
            "spaces or control characters",
        ),
        (
            "https://gw.example.invalid:port/PATH-SECRET",
            "invalid port",
        ),
    ];
    for (url, says) in cases {
        let e = s.upsert_provider(req(provider(url))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{url}: {e:?}");
        let m = e.message();
        assert!(m.starts_with("provider \"gw\": base_url "), "{url}: {m}");
        assert!(m.contains(says), "{url}: {m}");
        assert!(!m.contains("SECRET") && !m.contains("ann"), "{url}: {m}");
    }
    // Plain HTTP to a provider's own API: scheme and host, not the path.
    let e = s
        .upsert_provider(req(provider("http://api.openai.com/v1/PATH-SECRET")))
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "provider \"gw\": base_url \"http://api.openai.com\" would send the provider's keys in clear; use https://"
    );
    let log = audit(&s).await;
    assert!(!log.contains("SECRET"), "{log}");
}
