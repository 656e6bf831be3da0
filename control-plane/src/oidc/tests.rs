//! ID token verification with a real signature (Ed25519 from ring), the
//! settings an admin may set, and how a token's person becomes a user.

use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::sign_in_service_server::SignInService;
use aigw_proto::pb::admin::{AuditQuery, CreateUserRequest, OidcSettings};
use jsonwebtoken::{EncodingKey, Header, encode};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use tonic::Code;

use super::*;
use crate::admin::testkit::{req, req_as, svc, user};
use crate::db::testing::temp_db;

const ISS: &str = "https://idp.example";
const CLIENT: &str = "aigw-ui";

struct Signer {
    key: EncodingKey,
    jwks: JwkSet,
}

fn signer(kid: &str) -> Signer {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwks: JwkSet = serde_json::from_value(serde_json::json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]
    }))
    .unwrap();
    Signer {
        key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwks,
    }
}

fn claims(nonce: &str) -> serde_json::Value {
    let now = now_ms() / 1000;
    serde_json::json!({
        "iss": ISS, "aud": CLIENT, "sub": "u-123", "iat": now, "exp": now + 300,
        "nonce": nonce, "email": "ann@example.com", "email_verified": true,
        "preferred_username": "ann"
    })
}

fn sign(s: &Signer, kid: &str, body: &serde_json::Value) -> String {
    let mut h = Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = Some(kid.into());
    encode(&h, body, &s.key).unwrap()
}

#[test]
fn id_tokens_verify_only_when_everything_matches() {
    let s = signer("k1");
    let good = sign(&s, "k1", &claims("n1"));
    let c = token::verify(&good, &s.jwks, ISS, CLIENT, "n1").unwrap();
    assert_eq!(
        (c.sub.as_str(), c.email.as_deref()),
        ("u-123", Some("ann@example.com"))
    );
    assert_eq!(token::key_id(&good).unwrap().as_deref(), Some("k1"));

    let refused = |t: &str, nonce: &str, why: &str| {
        let e = token::verify(t, &s.jwks, ISS, CLIENT, nonce).unwrap_err();
        assert!(matches!(e, Error::SignIn(_)), "{why}: {e:?}");
        assert!(e.to_string().contains("not valid"), "{why}: {e}");
    };
    refused(&good, "other-nonce", "nonce");
    let mut c = claims("n1");
    c["aud"] = "someone-else".into();
    refused(&sign(&s, "k1", &c), "n1", "audience");
    let mut c = claims("n1");
    c["iss"] = "https://evil.example".into();
    refused(&sign(&s, "k1", &c), "n1", "issuer");
    let mut c = claims("n1");
    c["exp"] = (now_ms() / 1000 - 3600).into();
    refused(&sign(&s, "k1", &c), "n1", "expired");
    // Signed by a key the issuer does not publish, under its key id too.
    let other = signer("k1");
    refused(&sign(&other, "k1", &claims("n1")), "n1", "foreign key");
    refused(&sign(&other, "k9", &claims("n1")), "n1", "unknown kid");
    // A symmetric algorithm is never accepted, whatever the key.
    let hs = encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims("n1"),
        &EncodingKey::from_secret(b"client-secret").unwrap(),
    )
    .unwrap();
    refused(&hs, "n1", "HS256");
    // alg none: header and claims, empty signature.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims("n1").to_string())
    );
    assert!(token::verify(&none, &s.jwks, ISS, CLIENT, "n1").is_err());
    // A tampered payload fails the signature.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut c = claims("n1");
    c["sub"] = "admin".into();
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    refused(&parts.join("."), "n1", "tampered");
}

fn settings(role: &str) -> OidcSettings {
    OidcSettings {
        enabled: true,
        issuer: "http://127.0.0.1:9999/idp".into(),
        client_id: CLIENT.into(),
        client_secret: "top-secret-value".into(),
        default_role: role.into(),
        redirect_url: "http://127.0.0.1:9090/api/auth/oidc/callback".into(),
        display_name: "Sign in with Example".into(),
        scopes: vec!["email".into(), "profile".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn admins_set_the_provider_and_the_secret_never_comes_back() {
    let t = temp_db();
    let s = SignInSvc {
        admin: svc(&t),
        state: Arc::new(OidcState::new(crate::outbound::Outbound::new(None).unwrap()).unwrap()),
    };
    let opts = s
        .get_sign_in_options(tonic::Request::new(Default::default()))
        .await
        .unwrap();
    assert!(!opts.get_ref().oidc);
    let op = user(&s.admin, "olga", "operator").await;
    let e = s
        .set_oidc_settings(req_as(settings("viewer"), &op))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        s.get_oidc_settings(req_as(Default::default(), &op))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    for bad in [
        settings("admin"),
        OidcSettings {
            issuer: "http://idp.example".into(),
            ..settings("viewer")
        },
        OidcSettings {
            redirect_url: "javascript:alert(1)".into(),
            ..settings("viewer")
        },
        OidcSettings {
            client_id: String::new(),
            ..settings("viewer")
        },
        OidcSettings {
            scopes: vec!["a b".into()],
            ..settings("viewer")
        },
    ] {
        let e = s.set_oidc_settings(req(bad.clone())).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}");
    }
    let saved = s
        .set_oidc_settings(req(settings("member")))
        .await
        .unwrap()
        .into_inner();
    assert!(saved.client_secret.is_empty() && saved.client_secret_set);
    // An empty secret keeps the stored one.
    let again = s
        .set_oidc_settings(req(OidcSettings {
            client_secret: String::new(),
            ..settings("member")
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(again.client_secret_set);
    // ... but not for another issuer: it would be sent there.
    let e = s
        .set_oidc_settings(req(OidcSettings {
            client_secret: String::new(),
            issuer: "http://127.0.0.1:9998/elsewhere".into(),
            ..settings("member")
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(!e.message().contains("top-secret"));
    let row = s.admin.db.run(oidc::settings).await.unwrap().unwrap();
    assert_eq!(row.issuer, "http://127.0.0.1:9999/idp", "nothing changed");
    assert!(!row.client_secret_enc.contains("top-secret"));
    assert_eq!(
        s.admin
            .master
            .decrypt(&row.client_secret_enc, SECRET_CONTEXT)
            .unwrap(),
        "top-secret-value"
    );
    let opts = s
        .get_sign_in_options(tonic::Request::new(Default::default()))
        .await
        .unwrap();
    assert_eq!(
        (
            opts.get_ref().oidc,
            opts.get_ref().oidc_display_name.as_str()
        ),
        (true, "Sign in with Example")
    );
    let audit = s
        .admin
        .list_audit_log(req(AuditQuery::default()))
        .await
        .unwrap()
        .into_inner();
    // The two saves are audited (the refused ones not), with their details;
    // no entry carries the secret.
    let saves: Vec<&str> = audit
        .entries
        .iter()
        .filter(|e| e.object_kind == "oidc_settings")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        saves, ["enabled=true issuer=http://127.0.0.1:9999/idp default_role=member"; 2],
        "{audit:?}"
    );
    assert!(
        audit
            .entries
            .iter()
            .all(|e| !e.detail.contains("top-secret"))
    );
    // A state that was never issued (or was used) signs nobody in.
    let e = s
        .complete_oidc_login(tonic::Request::new(CompleteOidcLoginRequest {
            state: "forged".into(),
            code: "c".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn people_are_linked_by_subject_then_verified_email_else_created() {
    let t = temp_db();
    let s = SignInSvc {
        admin: svc(&t),
        state: Arc::new(OidcState::new(crate::outbound::Outbound::new(None).unwrap()).unwrap()),
    };
    let c = |sub: &str, email: &str, verified: bool, name: &str| token::Claims {
        sub: sub.into(),
        email: Some(email.into()),
        email_verified: Some(verified),
        preferred_username: Some(name.into()),
        nonce: None,
    };
    // New: created with the default role and no usable password.
    let ann = s
        .user_for(ISS, c("s1", "ann@x", true, "ann"), Role::Member)
        .await
        .unwrap();
    assert_eq!(
        (ann.username.as_str(), ann.role.as_str()),
        ("ann", "member")
    );
    assert!(!crate::admin::authn::verify_password(
        "",
        &ann.password_hash
    ));
    // The same subject signs in as the same user, whatever its claims now.
    let again = s
        .user_for(ISS, c("s1", "new@x", true, "renamed"), Role::Viewer)
        .await
        .unwrap();
    assert_eq!(again.id, ann.id);
    // Another subject with a taken username gets a fresh one.
    let other = s
        .user_for(ISS, c("s2", "a2@x", false, "ann"), Role::Member)
        .await
        .unwrap();
    assert_eq!(other.username, "ann-2");
    // A user named by a verified email is linked, once.
    s.admin
        .create_user(req(CreateUserRequest {
            username: "bob@x".into(),
            password: "bob-password".into(),
            role: "operator".into(),
        }))
        .await
        .unwrap();
    let bob = s
        .user_for(ISS, c("s3", "bob@x", true, "bob"), Role::Member)
        .await
        .unwrap();
    assert_eq!(
        (bob.username.as_str(), bob.role.as_str()),
        ("bob@x", "operator")
    );
    // An unverified email links nobody; a second subject with bob's email
    // does not take over the account either.
    let fake = s
        .user_for(ISS, c("s4", "bob@x", false, "bobby"), Role::Member)
        .await
        .unwrap();
    assert_eq!(fake.username, "bobby");
    let fake2 = s
        .user_for(ISS, c("s5", "bob@x", true, "bob2"), Role::Member)
        .await
        .unwrap();
    assert_ne!(fake2.id, bob.id);
}

fn master() -> crate::crypto::MasterKey {
    crate::crypto::MasterKey::from_hex(&"07".repeat(32)).unwrap()
}

fn pending(until_ms: i64) -> state::Pending {
    state::Pending {
        nonce: "n-1".into(),
        verifier: "v".repeat(86),
        until_ms,
    }
}

/// The browser keeps the sign-in: it comes back whole, and only from this
/// control plane's key, unaltered and in time.
#[test]
fn a_sealed_state_opens_only_here_unaltered_and_in_time() {
    let m = master();
    let now = now_ms();
    let sealed = state::seal(&m, &pending(now + 600_000)).unwrap();
    assert!(sealed.len() < 400, "{}", sealed.len());
    assert!(
        sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL- and cookie-safe: {sealed}"
    );
    assert_eq!(
        state::open(&m, &sealed, now).unwrap(),
        pending(now + 600_000)
    );
    let expired = state::seal(&m, &pending(now - 1)).unwrap();
    let other = crate::crypto::MasterKey::from_hex(&"08".repeat(32)).unwrap();
    let mut flipped = sealed.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        state::open(&m, &expired, now),
        state::open(&other, &sealed, now),
        state::open(&m, &flipped, now),
        state::open(&m, "", now),
        state::open(&m, &"A".repeat(5000), now),
        // A valid sign-in sealed for another purpose (a client secret's) is
        // no state: the purpose is bound.
        state::open(&m, &for_another_purpose(&m, now), now),
    ] {
        let e = bad.expect_err("refused");
        assert!(e.to_string().contains("expired or was already used"), "{e}");
    }
}

/// `pending` sealed as a state is, but bound to another purpose.
fn for_another_purpose(m: &crate::crypto::MasterKey, now: i64) -> String {
    let json = serde_json::to_string(&pending(now + 600_000)).unwrap();
    let sealed = m.encrypt(&json, "oidc:client_secret").unwrap();
    URL_SAFE_NO_PAD.encode(STANDARD.decode(sealed).unwrap())
}

/// Each state works once. Strangers beginning sign-ins leave nothing here
/// (there is no table of sign-ins in progress to flood): only completions
/// are remembered, and a flood of those forgets the oldest, not anyone's
/// sign-in in progress.
#[test]
fn each_state_works_once_and_the_used_list_is_bounded() {
    let m = master();
    let now = now_ms();
    let mine = state::seal(&m, &pending(now + 600_000)).unwrap();
    let mut used = state::Used::default();
    for n in 0..150_000 {
        assert!(used.claim(&format!("flood-{n}")));
    }
    assert_eq!(used.len(), 100_000);
    assert!(used.claim("flood-0"), "the oldest was forgotten");
    assert!(!used.claim("flood-149999"));
    // Mine works once.
    assert!(used.claim(&mine));
    assert!(!used.claim(&mine));
}
