//! Master key rotation without downtime. Start the control plane with the
//! new `AIGW_MASTER_KEY` and the old one in `AIGW_MASTER_KEY_PREVIOUS`: every
//! sealed secret that opens only under an old key is re-sealed under the new
//! one, in one transaction, before the server serves: provider keys, OAuth
//! templates' client secrets, accounts' tokens and connections under way,
//! webhooks' signing secrets and the OIDC client secret (every `_enc`
//! column). Data planes keep serving their snapshot throughout (they never
//! see the master key); once the control plane is up,
//! `AIGW_MASTER_KEY_PREVIOUS` can be removed.

use diesel::prelude::*;

use crate::budgets::webhook_context;
use crate::compile::secret_context;
use crate::crypto::MasterKey;
use crate::db::config::{ProviderKeyRow, ProviderRow};
use crate::db::oauth as q;
use crate::db::schema::{oidc_settings, provider_keys, providers, webhooks};
use crate::db::{AnyConnection, budgets, oidc, write_tx};
use crate::error::{Error, Result};

/// The associated data the OIDC client secret is sealed with (the sign-in
/// settings seal it so; private there, the rotation test keeps the two in
/// step).
const OIDC_SECRET_CONTEXT: &str = "oidc:client_secret";

/// `sealed` under `current`: None when it already is (or is empty, no
/// secret), else re-sealed from whichever previous key opens it.
fn resealed(
    current: &MasterKey,
    previous: &[MasterKey],
    sealed: &str,
    context: &str,
) -> Result<Option<String>> {
    if sealed.is_empty() || current.decrypt(sealed, context).is_ok() {
        return Ok(None);
    }
    let plain = previous
        .iter()
        .find_map(|old| old.decrypt(sealed, context).ok())
        .ok_or_else(|| Error::Decrypt(context.to_string()))?;
    current.encrypt(&plain, context).map(Some)
}

/// Re-seals the OAuth secrets: templates' client secrets, accounts'
/// access and refresh tokens, the verifiers and device codes of
/// connections under way.
fn reseal_oauth(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    use crate::oauth::{account, flow, template};
    let mut moved = 0;
    for t in q::templates(conn)? {
        let ctx = template::secret_context(&t.name);
        if let Some(s) = resealed(current, previous, &t.client_secret_enc, &ctx)? {
            q::set_template_secret(conn, &t.name, &s)?;
            moved += 1;
        }
    }
    for a in q::accounts(conn)? {
        let (p, k) = (&a.provider, &a.key_name);
        let access = resealed(
            current,
            previous,
            &a.access_enc,
            &account::access_context(p, k),
        )?;
        let refresh = resealed(
            current,
            previous,
            &a.refresh_enc,
            &account::refresh_context(p, k),
        )?;
        if access.is_some() || refresh.is_some() {
            moved += usize::from(access.is_some()) + usize::from(refresh.is_some());
            q::set_account_tokens(
                conn,
                p,
                k,
                access.as_deref().unwrap_or(&a.access_enc),
                refresh.as_deref().unwrap_or(&a.refresh_enc),
            )?;
        }
    }
    for f in q::flows(conn)? {
        let ctx = flow::flow_context(&f.state_hash);
        if let Some(s) = resealed(current, previous, &f.secret_enc, &ctx)? {
            q::set_flow_secret(conn, &f.state_hash, &s)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Re-seals the providers' API keys.
fn reseal_provider_keys(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    let names: Vec<ProviderRow> = providers::table
        .select(ProviderRow::as_select())
        .load(conn)?;
    let keys: Vec<ProviderKeyRow> = provider_keys::table
        .select(ProviderKeyRow::as_select())
        .load(conn)?;
    let mut moved = 0;
    for k in keys {
        let provider = names
            .iter()
            .find(|p| p.id == k.provider_id)
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        let context = secret_context(provider, &k.name);
        // An OAuth key's secret_enc is empty: its tokens are in its account.
        if let Some(s) = resealed(current, previous, &k.secret_enc, &context)? {
            diesel::update(provider_keys::table.filter(provider_keys::id.eq(&k.id)))
                .set(provider_keys::secret_enc.eq(s))
                .execute(conn)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Re-seals the webhooks' signing secrets: left under the old key, alerts
/// could no longer be signed and the webhook listing would fail.
fn reseal_webhooks(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    let mut moved = 0;
    for h in budgets::list_webhooks(conn)? {
        let context = webhook_context(&h.name);
        if let Some(s) = resealed(current, previous, &h.secret_enc, &context)? {
            diesel::update(webhooks::table.filter(webhooks::name.eq(&h.name)))
                .set(webhooks::secret_enc.eq(s))
                .execute(conn)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Re-seals the OIDC client secret: left under the old key, single
/// sign-on would fail.
fn reseal_oidc(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    let Some(row) = oidc::settings(conn)? else {
        return Ok(0);
    };
    let Some(s) = resealed(
        current,
        previous,
        &row.client_secret_enc,
        OIDC_SECRET_CONTEXT,
    )?
    else {
        return Ok(0);
    };
    diesel::update(oidc_settings::table.filter(oidc_settings::id.eq(&row.id)))
        .set(oidc_settings::client_secret_enc.eq(s))
        .execute(conn)?;
    Ok(1)
}

/// Re-seals what only a previous key opens; returns how many secrets moved.
/// A secret no key opens is an error: starting would serve without it.
pub fn reseal(
    conn: &mut AnyConnection,
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<usize> {
    if previous.is_empty() {
        return Ok(0);
    }
    write_tx(conn, |conn| {
        Ok(reseal_provider_keys(conn, current, previous)?
            + reseal_oauth(conn, current, previous)?
            + reseal_webhooks(conn, current, previous)?
            + reseal_oidc(conn, current, previous)?)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use aigw_proto::pb::admin::admin_service_server::AdminService;
    use aigw_proto::pb::admin::sign_in_service_server::SignInService;
    use aigw_proto::pb::admin::{
        ListRequest, OAuthConnectRequest, OAuthTemplateSpec, OidcSettings, ProviderKeySpec,
        ProviderSpec, WebhookSpec,
    };

    use super::*;
    use crate::admin::testkit::{req, svc};
    use crate::compile::compile;
    use crate::db::config::load_all;
    use crate::db::testing::temp_db;

    /// Every column that holds a sealed secret, as (table, column): each
    /// is filled by `every_sealed_secret_moves_to_the_new_key`.
    const SEALED_COLUMNS: [(&str, &str); 7] = [
        ("oauth_accounts", "access_enc"),
        ("oauth_accounts", "refresh_enc"),
        ("oauth_flows", "secret_enc"),
        ("oauth_templates", "client_secret_enc"),
        ("oidc_settings", "client_secret_enc"),
        ("provider_keys", "secret_enc"),
        ("webhooks", "secret_enc"),
    ];

    /// The `*_enc` columns of the schema, as (table, column).
    fn sealed_columns_of_the_schema() -> BTreeSet<(String, String)> {
        let mut table = "";
        let mut found = BTreeSet::new();
        for line in include_str!("db/schema.rs").lines() {
            let line = line.trim();
            if let Some((name, _)) = line.split_once(" (").filter(|_| line.ends_with('{')) {
                table = name;
            } else if let Some((column, _)) = line.split_once(" ->")
                && column.ends_with("_enc")
            {
                found.insert((table.to_string(), column.to_string()));
            }
        }
        found
    }

    /// A sealed column added to the schema must be added to the rotation
    /// (and to `SEALED_COLUMNS`, so the test below fills it): else a
    /// rotation leaves it under the old key, and it stops opening once
    /// `AIGW_MASTER_KEY_PREVIOUS` is removed.
    #[test]
    fn rotation_knows_every_sealed_column_of_the_schema() {
        let known: BTreeSet<(String, String)> = SEALED_COLUMNS
            .iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect();
        assert_eq!(sealed_columns_of_the_schema(), known);
    }

    /// Every sealed secret, each written where the control plane writes
    /// it (a provider key, an OAuth template, account and connection under
    /// way, a webhook, the OIDC settings), opens under the new key alone
    /// after a rotation.
    #[tokio::test]
    async fn every_sealed_secret_moves_to_the_new_key() {
        let t = temp_db();
        let s = svc(&t);
        s.upsert_o_auth_template(req(OAuthTemplateSpec {
            name: "idp".into(),
            authorize_url: "https://id.test/authorize".into(),
            token_url: "https://id.test/token".into(),
            client_id: "cid".into(),
            client_secret: "client-secret-0001".into(),
            redirect_uri: "http://localhost:1455/cb".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
        let key = |name: &str, secret: &str, template: &str| ProviderKeySpec {
            name: name.into(),
            secret: secret.into(),
            weight: 1,
            oauth_template: template.into(),
        };
        s.upsert_provider(req(ProviderSpec {
            name: "p".into(),
            kind: "openai".into(),
            keys: vec![
                key("k", "sk-rotate-me-123456", ""),
                key("acct", "", "idp"),
                key("pending", "", "idp"),
            ],
            ..Default::default()
        }))
        .await
        .unwrap();
        connect_account(&t, &s, "acct").await;
        s.start_o_auth_connect(req(OAuthConnectRequest {
            provider: "p".into(),
            key: "pending".into(),
            params: Default::default(),
        }))
        .await
        .unwrap();
        s.upsert_webhook(req(WebhookSpec {
            name: "ops".into(),
            url: "https://hooks.example.com/x".into(),
            secret: "whsec-0123456789".into(),
        }))
        .await
        .unwrap();
        set_oidc_settings(&s).await;

        let old = s.master.clone();
        let new = MasterKey::from_hex(&"6b".repeat(32)).unwrap();
        let (n, o) = (new.clone(), old.clone());
        let moved = t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap();
        assert_eq!(moved, SEALED_COLUMNS.len(), "one secret per sealed column");
        // Nothing is left under the old key: a rotation from the new key
        // to a third moves them all again.
        let (third, n) = (MasterKey::from_hex(&"7c".repeat(32)).unwrap(), new.clone());
        let again = t.db.run(move |c| reseal(c, &third, &[n])).await;
        assert_eq!(again.unwrap(), SEALED_COLUMNS.len());
    }

    /// The new key alone opens the webhooks and the OIDC client secret
    /// after a rotation (what a restart without the old key reads).
    #[tokio::test]
    async fn webhooks_and_the_oidc_secret_open_under_the_new_key_alone() {
        let t = temp_db();
        let mut s = svc(&t);
        s.upsert_webhook(req(WebhookSpec {
            name: "ops".into(),
            url: "https://hooks.example.com/x".into(),
            secret: "whsec-0123456789".into(),
        }))
        .await
        .unwrap();
        set_oidc_settings(&s).await;
        let new = MasterKey::from_hex(&"6b".repeat(32)).unwrap();
        let (n, o) = (new.clone(), s.master.clone());
        assert_eq!(t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap(), 2);

        s.master = new.clone();
        let hooks = s.list_webhooks(req(ListRequest {})).await.unwrap();
        assert_eq!(hooks.into_inner().webhooks.len(), 1);
        let row = t.db.run(oidc::settings).await.unwrap().unwrap();
        assert_eq!(
            new.decrypt(&row.client_secret_enc, OIDC_SECRET_CONTEXT)
                .unwrap(),
            "oidc-client-secret"
        );
    }

    /// Connects `key` of provider `p` to template `idp` (as a completed
    /// flow stores it).
    async fn connect_account(
        t: &crate::db::testing::TempDb,
        s: &crate::admin::AdminSvc,
        key: &str,
    ) {
        let (m, key) = (s.master.clone(), key.to_string());
        t.db.run(move |c| {
            let flow = crate::db::oauth::FlowRow {
                state_hash: "h".into(),
                provider: "p".into(),
                key_name: key,
                template: "idp".into(),
                kind: "code".into(),
                secret_enc: String::new(),
                redirect_uri: String::new(),
                params: "{}".into(),
                interval_secs: 0,
                next_poll_at_ms: 0,
                expires_at_ms: 0,
                created_at_ms: 0,
            };
            let tokens = crate::oauth::token::Tokens {
                access_token: "at-0001".into(),
                refresh_token: Some("rt-0001".into()),
                lifetime_secs: 3600,
                fields: serde_json::json!({}),
                id_token_claims: serde_json::json!({}),
            };
            write_tx(c, |c| crate::oauth::flow::store(c, &m, &flow, &tokens))
        })
        .await
        .unwrap();
    }

    /// Sets the OIDC settings through the sign-in service, which seals
    /// the client secret.
    async fn set_oidc_settings(s: &crate::admin::AdminSvc) {
        let sign_in = crate::oidc::SignInSvc {
            admin: s.clone(),
            state: Arc::new(
                crate::oidc::OidcState::new(crate::outbound::Outbound::new(None).unwrap()).unwrap(),
            ),
        };
        sign_in
            .set_oidc_settings(req(OidcSettings {
                enabled: true,
                issuer: "https://idp.example.com".into(),
                client_id: "cid".into(),
                client_secret: "oidc-client-secret".into(),
                default_role: "viewer".into(),
                redirect_url: "https://gw.example.com/api/auth/oidc/callback".into(),
                display_name: "SSO".into(),
                scopes: vec!["email".into()],
                ..Default::default()
            }))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn secrets_move_to_the_new_key_and_only_then_compile_with_it() {
        let t = temp_db();
        let s = svc(&t);
        s.upsert_provider(req(ProviderSpec {
            name: "p".into(),
            kind: "openai".into(),
            keys: vec![ProviderKeySpec {
                name: "k".into(),
                secret: "sk-rotate-me-123456".into(),
                weight: 1,
                oauth_template: String::new(),
            }],
            ..Default::default()
        }))
        .await
        .unwrap();
        let old = s.master.clone();
        let new = MasterKey::from_hex(&"6b".repeat(32)).unwrap();
        let compiled = |key: MasterKey| {
            t.db.run(move |c| {
                compile(&load_all(c)?, &key, None)
                    .map(|s| s.core.providers[0].keys[0].secret.clone())
            })
        };
        assert!(
            compiled(new.clone()).await.is_err(),
            "sealed under the old key"
        );
        let (n, o) = (new.clone(), old.clone());
        let moved = t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap();
        assert_eq!(moved, 1);
        assert_eq!(compiled(new.clone()).await.unwrap(), "sk-rotate-me-123456");
        assert!(
            compiled(old.clone()).await.is_err(),
            "the old key opens nothing now"
        );
        // Again: nothing left to move. A key nobody knows is refused.
        let (n, o) = (new.clone(), old.clone());
        assert_eq!(t.db.run(move |c| reseal(c, &n, &[o])).await.unwrap(), 0);
        let stranger = MasterKey::from_hex(&"7c".repeat(32)).unwrap();
        let e =
            t.db.run(move |c| reseal(c, &stranger, &[old]))
                .await
                .unwrap_err();
        assert!(matches!(e, Error::Decrypt(_)), "{e}");
    }
}
