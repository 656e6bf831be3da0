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

/// Provider `p` whose one key `k` is an account of template `idp`.
async fn oauth_provider(s: &crate::admin::AdminSvc) {
    oauth_provider_at(s, String::new(), None).await;
}

/// [`oauth_provider`] whose API is at `base_url` (empty: the kind's own),
/// checked every `health_check_interval_secs` (`None`: the default).
async fn oauth_provider_at(
    s: &crate::admin::AdminSvc,
    base_url: String,
    health_check_interval_secs: Option<u32>,
) {
    s.upsert_provider(req(ProviderSpec {
        name: "p".into(),
        kind: "openai".into(),
        base_url,
        health_check_interval_secs,
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
    oauth_provider(s).await;
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

/// A token endpoint that rotates: every refresh token it is sent is
/// answered with the next one (`rt-1`, `rt-2`…) and an access token, and
/// recorded.
async fn rotating_token_endpoint(
    expires_in: i64,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                let Ok(n) = sock.read(&mut buf).await else {
                    break None;
                };
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
                if n == 0 {
                    break None;
                }
            };
            let Some(body) = body else { continue };
            let sent: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
            let rt = sent.get("refresh_token").cloned().unwrap_or_default();
            let n = {
                let mut l = log.lock().unwrap();
                l.push(rt);
                l.len()
            };
            let answer = json!({
                "access_token": format!("at-{n}"),
                "refresh_token": format!("rt-{n}"),
                "expires_in": expires_in,
                "token_type": "Bearer",
            })
            .to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (url, seen)
}

async fn stored_account(t: &crate::db::testing::TempDb) -> crate::db::oauth::AccountRow {
    t.db.run(|c| crate::db::oauth::find_account(c, "p", "k"))
        .await
        .unwrap()
        .unwrap()
}

/// An account `p`/`k` connected with refresh token `rt-0` through a token
/// endpoint that rotates, and a running refresher.
async fn connected_account(
    expires_in: i64,
) -> (
    crate::db::testing::TempDb,
    crate::admin::AdminSvc,
    super::Refresher,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let t = temp_db();
    let s = svc(&t);
    let (url, seen) = rotating_token_endpoint(expires_in).await;
    s.upsert_o_auth_template(req(OAuthTemplateSpec {
        name: "idp".into(),
        authorize_url: "https://id.test/authorize".into(),
        token_url: url,
        client_id: "cid".into(),
        redirect_uri: "http://localhost:1455/cb".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    oauth_provider(&s).await;
    let m = s.master.clone();
    t.db.run(move |c| {
        let f = completed_flow("p", "k", "idp");
        let first = Tokens {
            access_token: "at-0".into(),
            refresh_token: Some("rt-0".into()),
            lifetime_secs: 3600,
            fields: json!({}),
            id_token_claims: json!({}),
        };
        write_tx(c, |c| flow::store(c, &m, &f, &first))
    })
    .await
    .unwrap();
    let refresher = super::Refresher::start(super::Ctx {
        db: t.db.clone(),
        master: s.master.clone(),
        publisher: s.publisher.clone(),
        write_lock: s.write_lock.clone(),
        http: crate::outbound::Outbound::new(None).unwrap(),
    });
    (t, s, refresher, seen)
}

/// Makes the database refuse new tokens (as a locked SQLite file would),
/// while it still takes the account's error; or takes them again.
async fn refuse_new_tokens(t: &crate::db::testing::TempDb, refuse: bool) {
    t.db.run(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(if refuse {
            "CREATE TRIGGER refuse_tokens BEFORE INSERT ON oauth_accounts \
             WHEN NEW.status = 'connected' \
             BEGIN SELECT RAISE(ABORT, 'database is locked'); END;"
        } else {
            "DROP TRIGGER refuse_tokens;"
        })?;
        Ok(())
    })
    .await
    .unwrap();
}

async fn connected_again(t: &crate::db::testing::TempDb) -> crate::db::oauth::AccountRow {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let a = stored_account(t).await;
        if a.status == "connected" {
            return a;
        }
        assert!(std::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rotated_tokens_the_database_refused_are_kept_and_saved_later() {
    let (t, s, refresher, seen) = connected_account(3600).await;
    let published = || {
        let snap = s.publisher.current();
        snap.core.providers[0]
            .keys
            .first()
            .map(|k| k.secret.clone())
    };
    let refresh_of = |a: &crate::db::oauth::AccountRow| {
        s.master
            .decrypt(&a.refresh_enc, &super::account::refresh_context("p", "k"))
            .unwrap()
    };

    // The database refuses the new tokens (as a locked SQLite file would),
    // but takes the account's error.
    refuse_new_tokens(&t, true).await;
    let shown = refresher.refresh_now("p", "k").await.unwrap();
    assert_eq!(shown.status, "error");
    assert!(
        shown.last_error.contains("could not be saved"),
        "{}",
        shown.last_error
    );
    assert!(!shown.last_error.contains("rt-1"), "{}", shown.last_error);
    let a = stored_account(&t).await;
    assert_eq!(a.status, "error");
    assert!(a.last_error.contains("retried"), "{}", a.last_error);
    assert_eq!(refresh_of(&a), "rt-0");
    assert_eq!(published(), None, "nothing published from unsaved tokens");
    assert_eq!(*seen.lock().unwrap(), ["rt-0"]);

    // The database takes writes again: the next round (the schedule's)
    // saves the tokens held, without asking for others.
    refuse_new_tokens(&t, false).await;
    let a = connected_again(&t).await;
    assert_eq!(refresh_of(&a), "rt-1");
    assert_eq!((a.failures, a.last_error.as_str()), (0, ""));
    assert_eq!(
        s.publisher.current().core.providers[0].keys[0].secret,
        "at-1"
    );
    assert_eq!(*seen.lock().unwrap(), ["rt-0"]);

    // The next refresh sends the rotated token; the dead one never again.
    let a = refresher.refresh_now("p", "k").await.unwrap();
    assert_eq!(a.status, "connected");
    assert_eq!(refresh_of(&a), "rt-2");
    assert_eq!(*seen.lock().unwrap(), ["rt-0", "rt-1"]);
}

#[tokio::test]
async fn while_tokens_are_unsaved_refreshes_use_them_not_the_stored_dead_one() {
    // Five-second tokens: the unsaved ones fall due while held.
    let (t, s, refresher, seen) = connected_account(5).await;
    refuse_new_tokens(&t, true).await;
    let shown = refresher.refresh_now("p", "k").await.unwrap();
    assert_eq!(shown.status, "error");
    // Not due yet: asking again saves (and fails), asks nothing.
    let again = refresher.refresh_now("p", "k").await.unwrap();
    assert_eq!(again.status, "error");
    assert!(again.failures >= 2, "{}", again.failures);
    assert_eq!(*seen.lock().unwrap(), ["rt-0"]);
    // Due: the refresh sends the newest refresh token, the unsaved one.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    refresher.refresh_now("p", "k").await.unwrap();
    // Saved as soon as the database takes it.
    refuse_new_tokens(&t, false).await;
    let a = refresher.refresh_now("p", "k").await.unwrap();
    assert_eq!(a.status, "connected");
    let sent = seen.lock().unwrap().clone();
    assert!(sent.len() >= 2, "{sent:?}");
    for (i, rt) in sent.iter().enumerate() {
        assert_eq!(
            rt,
            &format!("rt-{i}"),
            "a refresh token sent twice: {sent:?}"
        );
    }
    let stored = s
        .master
        .decrypt(&a.refresh_enc, &super::account::refresh_context("p", "k"))
        .unwrap();
    assert_eq!(
        stored,
        format!("rt-{}", sent.len()),
        "the last issued is kept"
    );
    assert_eq!(refresh_of_db(&t, &s).await, stored);
}

async fn refresh_of_db(t: &crate::db::testing::TempDb, s: &crate::admin::AdminSvc) -> String {
    let a = stored_account(t).await;
    s.master
        .decrypt(&a.refresh_enc, &super::account::refresh_context("p", "k"))
        .unwrap()
}

/// A provider API that refuses every token with 401.
async fn refusing_api() -> String {
    crate::canned_http::answering(
        "401 Unauthorized",
        &["content-type: application/json"],
        r#"{"error":{"message":"token revoked"}}"#,
    )
    .await
}

/// The control plane's own health check finds an account's access token
/// refused (401): the key leaves every data plane's pool, so no data
/// plane's 401 will ask for a refresh; the check asks for one itself, and
/// the key comes back with the new token (not at its scheduled refresh,
/// hours later).
#[tokio::test(flavor = "multi_thread")]
async fn a_health_check_refused_with_401_refreshes_the_account_at_once() {
    let t = temp_db();
    let s = svc(&t);
    let (token_url, seen) = rotating_token_endpoint(3600).await;
    s.upsert_o_auth_template(req(OAuthTemplateSpec {
        name: "idp".into(),
        authorize_url: "https://id.test/authorize".into(),
        token_url,
        client_id: "cid".into(),
        redirect_uri: "http://localhost:1455/cb".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    oauth_provider_at(&s, refusing_api().await, Some(0)).await;
    let m = s.master.clone();
    t.db.run(move |c| {
        let f = completed_flow("p", "k", "idp");
        let first = Tokens {
            access_token: "at-0".into(),
            refresh_token: Some("rt-0".into()),
            lifetime_secs: 8 * 3600,
            fields: json!({}),
            id_token_claims: json!({}),
        };
        write_tx(c, |c| flow::store(c, &m, &f, &first))
    })
    .await
    .unwrap();
    let ctx = || super::Ctx {
        db: t.db.clone(),
        master: s.master.clone(),
        publisher: s.publisher.clone(),
        write_lock: s.write_lock.clone(),
        http: crate::outbound::Outbound::new(None).unwrap(),
    };
    ctx().commit(|_, _| Ok(((), true))).await.unwrap();
    let published = || s.publisher.current().core.providers[0].keys[0].clone();
    assert_eq!(published().secret, "at-0");
    let refresher = super::Refresher::start(ctx());
    let checker = crate::health::Checker::start(crate::health::Ctx {
        db: t.db.clone(),
        master: s.master.clone(),
        publisher: s.publisher.clone(),
        write_lock: s.write_lock.clone(),
        http: crate::outbound::Outbound::new(None).unwrap(),
    });
    checker.refresh_oauth_with(refresher);

    let row = checker.check_now("p", "k").await.unwrap();
    assert_eq!(row.status, "invalid_credential");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while published().secret == "at-0" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let key = published();
    assert_eq!(*seen.lock().unwrap(), ["rt-0"]);
    assert_eq!(key.secret, "at-1");
    assert_eq!(
        key.health, None,
        "the new token is not held to the old one's check"
    );
}
