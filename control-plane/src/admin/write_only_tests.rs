//! Write-only secrets stay where they were entered for, and restrictions an
//! operator put on a member's key stay put: what the caller sees (status
//! code, message) and that nothing changed when a call is refused.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    ClientKeyInfo, ClientKeySpec, ListRequest, OAuthTemplateSpec, ProviderInfo, ProviderKeySpec,
    ProviderSpec,
};
use serde_json::json;
use tonic::Code;

use super::AdminSvc;
use super::testkit::{req, req_as, svc, user};
use crate::db::testing::temp_db;
use crate::db::write_tx;
use crate::oauth::flow;
use crate::oauth::token::Tokens;

const SECRET_A: &str = "sk-proj-abcdefghijkl9876";
const SECRET_B: &str = "sk-team-b-0123456789";

fn api_key(name: &str, secret: &str) -> ProviderKeySpec {
    ProviderKeySpec {
        name: name.into(),
        secret: secret.into(),
        weight: 1,
        oauth_template: String::new(),
    }
}

fn provider(base_url: &str, secrets: [&str; 2]) -> ProviderSpec {
    ProviderSpec {
        name: "openai-main".into(),
        kind: "openai".into(),
        base_url: base_url.into(),
        models: vec!["gpt-4o*".into()],
        strategy: "round-robin".into(),
        keys: vec![api_key("team-a", secrets[0]), api_key("team-b", secrets[1])],
        ..Default::default()
    }
}

async fn providers(s: &AdminSvc) -> Vec<ProviderInfo> {
    s.list_providers(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner()
        .providers
}

fn version(s: &AdminSvc) -> String {
    s.publisher.current().to_pb().version.clone()
}

#[tokio::test]
async fn a_kept_provider_secret_does_not_follow_a_new_address() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    s.upsert_provider(req_as(provider("", [SECRET_A, SECRET_B]), &op))
        .await
        .unwrap();
    let before = providers(&s).await;
    let v = version(&s);

    // A new base_url, or a new kind, with the secrets left empty (kept):
    // refused, naming the first key whose secret was kept.
    let evil = provider("https://evil.example", ["", ""]);
    let other_kind = ProviderSpec {
        kind: "anthropic".into(),
        ..provider("", ["", ""])
    };
    let one_kept = provider("https://evil.example", ["sk-new-secret-aaaa1111", ""]);
    for (spec, key) in [
        (evil, "team-a"),
        (other_kind, "team-a"),
        (one_kept, "team-b"),
    ] {
        let e = s.upsert_provider(req_as(spec, &op)).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        let want = format!("re-enter the secret of key \"{key}\": the provider's address changed");
        assert!(e.message().contains(&want), "{}", e.message());
        assert!(!e.message().contains(SECRET_A), "no secret in the message");
        // Nothing was stored, nothing was published.
        assert_eq!(providers(&s).await, before);
        assert_eq!(version(&s), v);
        let snap = s.publisher.current().to_pb();
        assert_eq!(snap.providers[0].base_url, "");
        assert_eq!(snap.providers[0].keys[0].secret, SECRET_A);
    }

    // The address unchanged: an empty secret still keeps the stored one.
    let mut same = provider("", ["", ""]);
    same.keys[1].weight = 7;
    let r = s.upsert_provider(req_as(same, &op)).await.unwrap();
    assert!(r.into_inner().changed);
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.providers[0].keys[0].secret, SECRET_A);
    assert_eq!(snap.providers[0].keys[1].weight, 7);

    // Every secret entered again: the move goes through.
    let moved = provider("https://gw.example", ["sk-new-secret-aaaa1111", SECRET_B]);
    s.upsert_provider(req_as(moved, &op)).await.unwrap();
    let snap = s.publisher.current().to_pb();
    assert_eq!(snap.providers[0].base_url, "https://gw.example");
    assert_eq!(snap.providers[0].keys[0].secret, "sk-new-secret-aaaa1111");
}

const REFRESH: &str = "rt-very-secret-refresh-0001";

/// Connects (provider, key) with `template` as a completed flow would.
async fn connect(s: &AdminSvc, provider: &str, key: &str, template: &str) {
    let f = crate::oauth::tests::completed_flow(provider, key, template);
    let tokens = Tokens {
        access_token: "at-access-token-0001".into(),
        refresh_token: Some(REFRESH.into()),
        lifetime_secs: 3600,
        fields: json!({}),
        id_token_claims: json!({}),
    };
    let m = s.master.clone();
    s.db.run(move |c| write_tx(c, |c| flow::store(c, &m, &f, &tokens)))
        .await
        .unwrap();
}

async fn account_count(s: &AdminSvc) -> usize {
    s.db.run(crate::db::oauth::accounts).await.unwrap().len()
}

fn oauth_provider(base_url: &str, template: &str) -> ProviderSpec {
    ProviderSpec {
        name: "claude-pool".into(),
        kind: "anthropic".into(),
        base_url: base_url.into(),
        keys: vec![ProviderKeySpec {
            name: "alice".into(),
            oauth_template: template.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_connected_oauth_account_does_not_follow_a_new_provider_address() {
    let t = temp_db();
    let s = svc(&t);
    s.upsert_provider(req(oauth_provider("", "claude")))
        .await
        .unwrap();
    // Not connected yet: nothing to send anywhere, the address may change.
    s.upsert_provider(req(oauth_provider("https://a.example", "claude")))
        .await
        .unwrap();
    connect(&s, "claude-pool", "alice", "claude").await;
    let before = providers(&s).await;
    let v = version(&s);

    let e = s
        .upsert_provider(req(oauth_provider("https://evil.example", "claude")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("key \"alice\" is a connected OAuth account"),
        "{}",
        e.message()
    );
    assert_eq!(providers(&s).await, before);
    assert_eq!(version(&s), v);
    assert_eq!(account_count(&s).await, 1, "the account is kept");
}

fn template(name: &str, token_url: &str, client_secret: &str) -> OAuthTemplateSpec {
    OAuthTemplateSpec {
        name: name.into(),
        authorize_url: "https://id.test/authorize".into(),
        token_url: token_url.into(),
        client_id: "cid".into(),
        client_secret: client_secret.into(),
        redirect_uri: "http://localhost:1455/cb".into(),
        ..Default::default()
    }
}

async fn templates(s: &AdminSvc) -> Vec<OAuthTemplateSpec> {
    s.list_o_auth_templates(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner()
        .templates
}

#[tokio::test]
async fn a_kept_client_secret_does_not_follow_a_new_token_url() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    s.upsert_o_auth_template(req_as(
        template("idp", "https://id.test/token", "client-shh-123"),
        &op,
    ))
    .await
    .unwrap();
    let before = templates(&s).await;

    let e = s
        .upsert_o_auth_template(req_as(
            template("idp", "https://evil.example/token", ""),
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("re-enter the client_secret of oauth template \"idp\""),
        "{}",
        e.message()
    );
    assert!(e.message().contains("token_url"), "{}", e.message());
    assert_eq!(templates(&s).await, before);

    // The same address: the secret is kept as before.
    let mut same = template("idp", "https://id.test/token", "");
    same.description = "our IdP".into();
    s.upsert_o_auth_template(req_as(same, &op)).await.unwrap();
    // Entered again, or removed ("-"): the move goes through.
    s.upsert_o_auth_template(req_as(
        template("idp", "https://id2.test/token", "client-shh-456"),
        &op,
    ))
    .await
    .unwrap();
    s.upsert_o_auth_template(req_as(template("idp", "https://id3.test/token", "-"), &op))
        .await
        .unwrap();
    let idp = templates(&s).await.into_iter().find(|t| t.name == "idp");
    let idp = idp.unwrap();
    assert_eq!(idp.token_url, "https://id3.test/token");
    assert!(!idp.has_client_secret);
}

#[tokio::test]
async fn a_built_in_template_cannot_be_pointed_elsewhere_under_connected_accounts() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    s.upsert_provider(req(oauth_provider("", "claude")))
        .await
        .unwrap();
    connect(&s, "claude-pool", "alice", "claude").await;
    let before = templates(&s).await;
    let claude = before.iter().find(|t| t.name == "claude").unwrap().clone();
    assert!(claude.builtin);

    // Overriding the built-in with a new token_url: the account's refresh
    // token would go there on the next refresh. Refused, nothing stored.
    for (field, spec) in [
        (
            "token_url",
            OAuthTemplateSpec {
                token_url: "https://evil.example/token".into(),
                ..claude.clone()
            },
        ),
        (
            "api_base_url",
            OAuthTemplateSpec {
                api_base_url: "https://evil.example".into(),
                ..claude.clone()
            },
        ),
    ] {
        let e = s
            .upsert_o_auth_template(req_as(spec, &op))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        let m = e.message();
        assert!(m.contains(field), "{m}");
        assert!(m.contains("claude-pool/alice"), "{m}");
        assert!(!m.contains(REFRESH), "{m}");
        assert_eq!(templates(&s).await, before);
        assert_eq!(account_count(&s).await, 1);
    }

    // The same endpoints: overriding the rest is allowed.
    let r = s
        .upsert_o_auth_template(req_as(
            OAuthTemplateSpec {
                description: "ours".into(),
                ..claude.clone()
            },
            &op,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
}

fn restricted(owner: &str, models: &[&str], expires_at_ms: i64) -> ClientKeySpec {
    ClientKeySpec {
        name: "ann-app".into(),
        owner: owner.into(),
        models: models.iter().map(|m| (*m).to_string()).collect(),
        expires_at_ms,
        rpm: Some(60),
        ..Default::default()
    }
}

async fn key_of(s: &AdminSvc, token: &str) -> ClientKeyInfo {
    let list = s
        .list_client_keys(req_as(ListRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    list.client_keys
        .into_iter()
        .find(|k| k.name == "ann-app")
        .unwrap()
}

#[tokio::test]
async fn a_member_cannot_widen_models_or_lift_the_expiry_of_their_key() {
    let t = temp_db();
    let s = svc(&t);
    let ann = user(&s, "ann", "member").await;
    let op = user(&s, "op", "operator").await;
    let expires = crate::db::now_ms() + 86_400_000;
    s.upsert_client_key(req_as(restricted("ann", &["gpt-4o-mini"], expires), &op))
        .await
        .unwrap();
    let before = key_of(&s, &ann).await;
    let v = version(&s);

    let refused = [
        (restricted("", &[], expires), "models"),
        (
            restricted("", &["gpt-4o-mini", "gpt-4o"], expires),
            "models",
        ),
        (restricted("", &["gpt-4o*"], expires), "models"),
        (restricted("", &["gpt-4o-mini"], 0), "expires_at_ms"),
        (
            restricted("", &["gpt-4o-mini"], expires + 1),
            "expires_at_ms",
        ),
    ];
    for (spec, field) in refused {
        let e = s.upsert_client_key(req_as(spec, &ann)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{field}: {e:?}");
        assert!(e.message().contains(field), "{}", e.message());
        assert_eq!(key_of(&s, &ann).await, before, "{field}: nothing changed");
        assert_eq!(version(&s), v);
    }

    // Narrower, sooner: allowed.
    s.upsert_client_key(req_as(
        restricted("", &["gpt-4o-mini"], expires - 1000),
        &ann,
    ))
    .await
    .unwrap();
    assert_eq!(key_of(&s, &ann).await.expires_at_ms, expires - 1000);

    // An operator lifts both; then the member may pick any models (an empty
    // list allowed them all) and any expiry.
    s.upsert_client_key(req_as(restricted("", &[], 0), &op))
        .await
        .unwrap();
    s.upsert_client_key(req_as(restricted("", &["o3*"], expires), &ann))
        .await
        .unwrap();
    // A model a stored pattern covers narrows it.
    s.upsert_client_key(req_as(restricted("", &["o3-mini"], expires), &ann))
        .await
        .unwrap();
    let k = key_of(&s, &ann).await;
    assert_eq!(
        (k.models, k.expires_at_ms),
        (vec!["o3-mini".to_string()], expires)
    );
}

/// A member whose key an operator restricted cannot get around it with a
/// new key (nor by deleting the restricted one first); a member whose keys
/// restrict nothing creates keys as before.
#[tokio::test]
async fn a_member_new_key_is_no_wider_than_the_keys_they_hold() {
    use aigw_proto::pb::admin::NameRequest;
    let t = temp_db();
    let s = svc(&t);
    let ann = user(&s, "ann", "member").await;
    let bob = user(&s, "bob", "member").await;
    let op = user(&s, "op", "operator").await;
    let expires = crate::db::now_ms() + 86_400_000;
    s.upsert_client_key(req_as(restricted("ann", &["gpt-4o-mini"], expires), &op))
        .await
        .unwrap();
    let v = version(&s);
    let new_key = |models: &[&str], expires_at_ms: i64, rpm: Option<u64>| ClientKeySpec {
        name: "ann-second".into(),
        rpm,
        ..restricted("", models, expires_at_ms)
    };
    let refused = [
        (new_key(&[], expires, Some(60)), "models"),
        (new_key(&["gpt-4o"], expires, Some(60)), "models"),
        (new_key(&["gpt-4o-mini"], expires, None), "limits"),
        (new_key(&["gpt-4o-mini"], expires, Some(61)), "limits"),
        (new_key(&["gpt-4o-mini"], 0, Some(60)), "expires_at_ms"),
        (
            new_key(&["gpt-4o-mini"], expires + 1, Some(60)),
            "expires_at_ms",
        ),
    ];
    for (spec, field) in refused {
        let e = s.upsert_client_key(req_as(spec, &ann)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{field}: {e:?}");
        assert!(
            e.message()
                .starts_with(&format!("client_key \"ann-second\": {field}:"))
                && e.message().contains("client_key \"ann-app\""),
            "{}",
            e.message()
        );
        assert_eq!(version(&s), v, "{field}: nothing changed");
    }
    // Deleting the restricted key, her last, would lift the bound:
    // refused; revoking is still hers to do.
    let e = s
        .delete_client_key(req_as(
            NameRequest {
                name: "ann-app".into(),
            },
            &ann,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("ask an operator"), "{e:?}");
    // Within the restricted key: allowed.
    s.upsert_client_key(req_as(new_key(&["gpt-4o-mini"], expires, Some(30)), &ann))
        .await
        .unwrap();
    // With ann-second held, ann-app may go, and ann-second is then the
    // bound (the last one).
    let r = s
        .delete_client_key(req_as(
            NameRequest {
                name: "ann-app".into(),
            },
            &ann,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.deleted);
    let e = s
        .delete_client_key(req_as(
            NameRequest {
                name: "ann-second".into(),
            },
            &ann,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // A member whose keys restrict nothing creates any key, and deletes it.
    for (name, models) in [("bob-1", vec![]), ("bob-2", vec!["gpt-4o".to_string()])] {
        let r = s
            .upsert_client_key(req_as(
                ClientKeySpec {
                    name: name.into(),
                    models,
                    ..Default::default()
                },
                &bob,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(r.created);
    }
    let r = s
        .delete_client_key(req_as(
            NameRequest {
                name: "bob-1".into(),
            },
            &bob,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.deleted);
}

/// One held key is enough to bound a new key: a member holding keys for
/// different models creates keys within either, not wider than both; a
/// revoked key still bounds (revoke-then-create gains nothing); deleting a
/// key while another remains is allowed, and then the rest bound her.
#[tokio::test]
async fn a_member_with_keys_for_different_models_creates_within_either() {
    use aigw_proto::pb::admin::NameRequest;
    let t = temp_db();
    let s = svc(&t);
    let ann = user(&s, "ann", "member").await;
    let op = user(&s, "op", "operator").await;
    let expires = crate::db::now_ms() + 86_400_000;
    let spec = |name: &str, models: &[&str], rpm: Option<u64>| ClientKeySpec {
        name: name.into(),
        rpm,
        ..restricted("", models, expires)
    };
    for (name, models) in [("ann-gpt", ["gpt-4o"]), ("ann-claude", ["claude-*"])] {
        s.upsert_client_key(req_as(
            ClientKeySpec {
                owner: "ann".into(),
                ..spec(name, &models, Some(60))
            },
            &op,
        ))
        .await
        .unwrap();
    }
    let create = |spec: ClientKeySpec| {
        let s = s.clone();
        let ann = ann.clone();
        async move { s.upsert_client_key(req_as(spec, &ann)).await }
    };
    let name = |n: &str| req_as(NameRequest { name: n.into() }, &ann);
    // Within either one: allowed.
    assert!(
        create(spec("ann-g2", &["gpt-4o"], Some(30)))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    assert!(
        create(spec("ann-c2", &["claude-3-opus"], Some(60)))
            .await
            .unwrap()
            .into_inner()
            .created
    );
    // Wider than both: refused, naming the field and both keys.
    let refused = [
        (
            spec("ann-wide", &["gpt-4o", "claude-*"], Some(60)),
            "models",
        ),
        (spec("ann-wide", &[], Some(60)), "models"),
        (spec("ann-wide", &["o3"], Some(60)), "models"),
        (spec("ann-wide", &["gpt-4o"], None), "limits"),
    ];
    let v = version(&s);
    for (spec, field) in refused.clone() {
        let e = create(spec).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{field}: {e:?}");
        let m = e.message();
        assert!(
            m.starts_with(&format!("client_key \"ann-wide\": {field}:"))
                && m.contains("\"ann-gpt\"")
                && m.contains("\"ann-claude\""),
            "{m}"
        );
        assert_eq!(version(&s), v, "{field}: nothing changed");
    }

    // Revoking every key bounds no less: revoked keys count.
    for n in ["ann-gpt", "ann-claude", "ann-g2", "ann-c2"] {
        s.revoke_client_key(name(n)).await.unwrap();
    }
    for (spec, field) in refused {
        let e = create(spec).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{field}: {e:?}");
    }

    // Deleting a key while another remains: allowed, and the rest bound
    // her (no gpt-4o key once ann-claude is all that is left).
    for n in ["ann-g2", "ann-c2", "ann-gpt"] {
        assert!(
            s.delete_client_key(name(n))
                .await
                .unwrap()
                .into_inner()
                .deleted
        );
    }
    let e = create(spec("ann-g3", &["gpt-4o"], Some(60)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("\"ann-claude\""), "{e:?}");
    create(spec("ann-c3", &["claude-3-opus"], Some(60)))
        .await
        .unwrap();
    // ann-c3 remains, so ann-claude may go; ann-c3, the last, may not.
    s.delete_client_key(name("ann-claude")).await.unwrap();
    let e = s.delete_client_key(name("ann-c3")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("last key"), "{e:?}");
}

/// A chat service's webhook URL carries its secret in the path: only
/// admins see it whole; others see `https://host/…`, which sent back in an
/// upsert keeps the stored URL; the audit log names the host only.
#[tokio::test]
async fn webhook_urls_are_shown_whole_to_admins_only() {
    use aigw_proto::pb::admin::identity_service_server::IdentityService;
    use aigw_proto::pb::admin::{AuditQuery, WebhookSpec};
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    let vi = user(&s, "vi", "viewer").await;
    let admin = user(&s, "ad", "admin").await;
    let url = "https://hooks.slack.com/services/T000/B000/XXXXsecretpath";
    s.upsert_webhook(req(WebhookSpec {
        name: "alerts".into(),
        url: url.into(),
        secret: "hmac-secret-123456".into(),
    }))
    .await
    .unwrap();
    for token in [&vi, &op] {
        assert_eq!(
            first_webhook_url(&s, token).await,
            "https://hooks.slack.com/…"
        );
    }
    assert_eq!(first_webhook_url(&s, &admin).await, url);
    // An operator edits it as shown, with a new secret: the URL is kept.
    let r = s
        .upsert_webhook(req_as(
            WebhookSpec {
                name: "alerts".into(),
                url: "https://hooks.slack.com/…".into(),
                secret: "hmac-secret-654321".into(),
            },
            &op,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(r.changed);
    assert_eq!(first_webhook_url(&s, &admin).await, url);
    let audit = s
        .list_audit_log(req(AuditQuery::default()))
        .await
        .unwrap()
        .into_inner();
    let hooks: Vec<_> = audit
        .entries
        .iter()
        .filter(|e| e.object_kind == "webhook")
        .collect();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    for e in hooks {
        assert_eq!(e.detail, "host=hooks.slack.com secret given", "{e:?}");
    }
    assert!(!format!("{audit:?}").contains("secretpath"));
}

/// The first webhook's URL as `token`'s holder is shown it.
async fn first_webhook_url(s: &AdminSvc, token: &str) -> String {
    s.list_webhooks(req_as(ListRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .webhooks[0]
        .url
        .clone()
}

/// The probe of stop 32: an operator pointed a webhook at its own host
/// and kept the stored secret, so alerts came signed with it. A new URL
/// needs the secret again; the URL as shown (masked) keeps both.
#[tokio::test]
async fn a_webhook_moved_to_a_new_url_needs_its_secret_again() {
    use aigw_proto::pb::admin::WebhookSpec;
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    let admin = user(&s, "ad", "admin").await;
    let url = "https://hooks.slack.com/services/T000/B000/XXXXsecretpath";
    let hook = |url: &str, secret: &str| WebhookSpec {
        name: "alerts".into(),
        url: url.into(),
        secret: secret.into(),
    };
    s.upsert_webhook(req(hook(url, "hmac-secret-123456")))
        .await
        .unwrap();
    for moved in [
        "https://attacker.example.invalid/collect",
        "https://hooks.slack.com/services/T999/B999/other",
    ] {
        let e = s
            .upsert_webhook(req_as(hook(moved, ""), &op))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("re-enter the secret"), "{e:?}");
        assert_eq!(first_webhook_url(&s, &admin).await, url);
    }
    // As shown, without a secret: nothing changes.
    let r = s
        .upsert_webhook(req_as(hook("https://hooks.slack.com/…", ""), &op))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.changed, "{r:?}");
    // A new URL with its own secret is an edit like any other.
    let moved = "https://hooks.slack.com/services/T999/B999/other";
    s.upsert_webhook(req_as(hook(moved, "hmac-secret-new-99"), &op))
        .await
        .unwrap();
    assert_eq!(first_webhook_url(&s, &admin).await, moved);
}
