//! Connecting through the Admin API's service, on a temp database: state
//! used once, refused when another's or expired; what the snapshot carries
//! of an account (never its refresh token); master key rotation of tokens.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    OAuthConnectRequest, OAuthTemplateSpec, ProviderKeySpec, ProviderSpec,
};
use serde_json::json;

use super::flow;
use super::pkce;
use super::token::Tokens;
use crate::admin::testkit::{req, svc};
use crate::compile::compile;
use crate::crypto::MasterKey;
use crate::db::config::load_all;
use crate::db::testing::temp_db;
use crate::db::write_tx;
use crate::error::Error;

const REFRESH: &str = "rt-very-secret-refresh-0001";
const ACCESS: &str = "at-access-token-0001";

async fn setup(s: &crate::admin::AdminSvc) {
    s.upsert_o_auth_template(req(OAuthTemplateSpec {
        name: "idp".into(),
        authorize_url: "https://id.test/authorize".into(),
        token_url: "https://id.test/token".into(),
        client_id: "cid".into(),
        client_secret: "client-shh-123".into(),
        redirect_uri: "http://localhost:1455/cb".into(),
        request_headers: [("x-acct".to_string(), "{id_token:/acct}".to_string())].into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    s.upsert_provider(req(ProviderSpec {
        name: "p".into(),
        kind: "openai".into(),
        keys: vec![ProviderKeySpec {
            name: "k".into(),
            oauth_template: "idp".into(),
            ..Default::default()
        }],
        ..Default::default()
    }))
    .await
    .unwrap();
}

/// A code flow for (provider, key) with `template`, as stored once the
/// app's browser came back.
pub(crate) fn completed_flow(
    provider: &str,
    key: &str,
    template: &str,
) -> crate::db::oauth::FlowRow {
    crate::db::oauth::FlowRow {
        state_hash: "h".into(),
        provider: provider.into(),
        key_name: key.into(),
        template: template.into(),
        kind: "code".into(),
        secret_enc: String::new(),
        redirect_uri: String::new(),
        params: "{}".into(),
        interval_secs: 0,
        next_poll_at_ms: 0,
        expires_at_ms: 0,
        created_at_ms: 0,
    }
}

fn tokens() -> Tokens {
    Tokens {
        access_token: ACCESS.into(),
        refresh_token: Some(REFRESH.into()),
        lifetime_secs: 60,
        fields: json!({"scope": "x"}),
        id_token_claims: json!({"acct": "a-1"}),
    }
}

#[tokio::test]
async fn a_state_serves_once_and_only_its_own_connection() {
    let t = temp_db();
    let s = svc(&t);
    setup(&s).await;
    let start = s
        .start_o_auth_connect(req(OAuthConnectRequest {
            provider: "p".into(),
            key: "k".into(),
            params: Default::default(),
        }))
        .await
        .unwrap()
        .into_inner();
    let url = url::Url::parse(&start.authorize_url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    let redirect = format!("http://localhost:1455/cb?code=c1&state={}", start.state);
    let claim = |given: String, pasted: String| {
        let m = s.master.clone();
        t.db.run(move |c| {
            write_tx(c, |c| {
                flow::claim_code(c, &m, &given, pkce::parse_pasted(&pasted)?)
                    .map(|cl| (cl.code, pkce::challenge(&cl.verifier)))
            })
        })
    };
    // Another state with this redirect: refused, and nothing is used up.
    let e = claim("other".into(), redirect.clone()).await.unwrap_err();
    assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
    let (code, challenge) = claim(String::new(), redirect.clone()).await.unwrap();
    assert_eq!(code, "c1");
    // The verifier stored is the one the challenge in the URL was made from.
    assert_eq!(challenge, q["code_challenge"]);
    let e = claim(String::new(), redirect).await.unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    // A bare code needs the state; a state nobody issued is refused.
    assert!(claim(String::new(), "c2".into()).await.is_err());
    assert!(claim("made-up".into(), "c2".into()).await.is_err());

    // An expired connection is refused (and used up).
    let start = s
        .start_o_auth_connect(req(OAuthConnectRequest {
            provider: "p".into(),
            key: "k".into(),
            params: Default::default(),
        }))
        .await
        .unwrap()
        .into_inner();
    t.db.run(|c| {
        use crate::db::schema::oauth_flows;
        use diesel::prelude::*;
        diesel::update(oauth_flows::table)
            .set(oauth_flows::expires_at_ms.eq(1))
            .execute(c)?;
        Ok(())
    })
    .await
    .unwrap();
    let e = claim(start.state.clone(), "c3".into()).await.unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    assert!(claim(start.state, "c3".into()).await.is_err());
    // An API key cannot be connected.
    let e = s
        .start_o_auth_connect(req(OAuthConnectRequest {
            provider: "p".into(),
            key: "nope".into(),
            params: Default::default(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn snapshots_carry_the_access_token_never_the_refresh_token() {
    let t = temp_db();
    let s = svc(&t);
    setup(&s).await;
    let m = s.master.clone();
    // Not connected yet: the key is not in the snapshot.
    let snap = {
        let m = m.clone();
        t.db.run(move |c| compile(&load_all(c)?, &m, None))
            .await
            .unwrap()
    };
    assert!(snap.core.providers[0].keys.is_empty());
    let m2 = m.clone();
    t.db.run(move |c| {
        let f = completed_flow("p", "k", "idp");
        write_tx(c, |c| flow::store(c, &m2, &f, &tokens()))
    })
    .await
    .unwrap();
    let m3 = m.clone();
    let snap =
        t.db.run(move |c| compile(&load_all(c)?, &m3, None))
            .await
            .unwrap();
    let key = &snap.core.providers[0].keys[0];
    assert_eq!((key.secret.as_str(), key.oauth), (ACCESS, true));
    assert_eq!(key.headers["x-acct"], "a-1");
    let bytes = snap.whole();
    assert!(
        !bytes
            .windows(REFRESH.len())
            .any(|w| w == REFRESH.as_bytes())
    );

    // Master key rotation re-seals the tokens and the client secret.
    let new = MasterKey::from_hex(&"6d".repeat(32)).unwrap();
    let (n, o) = (new.clone(), m.clone());
    let moved =
        t.db.run(move |c| crate::rotate::reseal(c, &n, &[o]))
            .await
            .unwrap();
    assert_eq!(moved, 3, "access, refresh, client secret");
    let n = new.clone();
    let (snap, refresh) =
        t.db.run(move |c| {
            let rows = load_all(c)?;
            let a = &rows.oauth_accounts[0];
            let r = n.decrypt(&a.refresh_enc, &super::account::refresh_context("p", "k"))?;
            Ok((compile(&rows, &n, None)?, r))
        })
        .await
        .unwrap();
    assert_eq!(snap.core.providers[0].keys[0].secret, ACCESS);
    assert_eq!(refresh, REFRESH);
    let o = m.clone();
    assert!(
        t.db.run(move |c| compile(&load_all(c)?, &o, None))
            .await
            .is_err()
    );

    // Removing the key forgets the account and its tokens.
    s.upsert_provider(req(ProviderSpec {
        name: "p".into(),
        kind: "openai".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let left = t.db.run(crate::db::oauth::accounts).await.unwrap();
    assert!(left.is_empty());
}
