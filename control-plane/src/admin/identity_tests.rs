//! IdentityService called directly: login and sessions, users, API tokens,
//! and ownership of client keys between users.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::{
    ClientKeySpec, CreateApiTokenRequest, CreateUserRequest, ListApiTokensRequest, ListRequest,
    ListUsersRequest, LoginRequest, LogoutRequest, NameRequest, ResetPasswordRequest,
    UpdateUserRequest, WhoAmIRequest,
};
use tonic::{Code, Request};

use super::testkit::{req, req_as, svc, user};
use crate::db::testing::temp_db;

fn login(name: &str, password: &str) -> Request<LoginRequest> {
    Request::new(LoginRequest {
        username: name.into(),
        password: password.into(),
    })
}

fn key(name: &str) -> ClientKeySpec {
    ClientKeySpec {
        name: name.into(),
        ..Default::default()
    }
}

fn name(n: &str) -> NameRequest {
    NameRequest { name: n.into() }
}

#[tokio::test]
async fn login_sessions_and_disabled_users() {
    let t = temp_db();
    let s = svc(&t);
    let alice = user(&s, "alice", "operator").await;
    assert!(alice.starts_with("aigw-s-"));
    let me = s
        .who_am_i(req_as(WhoAmIRequest {}, &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.kind.as_str(), me.username.as_str(), me.role.as_str()),
        ("session", "alice", "operator")
    );
    assert!(
        me.allowed_methods
            .iter()
            .any(|m| m.ends_with("/UpsertProvider"))
    );
    assert!(
        !me.allowed_methods
            .iter()
            .any(|m| m.ends_with("/CreateUser"))
    );

    // Wrong password and unknown user look the same.
    let e1 = s.login(login("alice", "nope-nope")).await.unwrap_err();
    let e2 = s.login(login("nobody", "nope-nope")).await.unwrap_err();
    assert_eq!(
        (e1.code(), e2.code()),
        (Code::Unauthenticated, Code::Unauthenticated)
    );
    assert_eq!(e1.message(), e2.message());

    // Disabling ends sessions and refuses logins.
    s.update_user(req(UpdateUserRequest {
        username: "alice".into(),
        disabled: Some(true),
        ..Default::default()
    }))
    .await
    .unwrap();
    let e = s
        .who_am_i(req_as(WhoAmIRequest {}, &alice))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = s.login(login("alice", "alice-password")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    s.update_user(req(UpdateUserRequest {
        username: "alice".into(),
        disabled: Some(false),
        ..Default::default()
    }))
    .await
    .unwrap();
    let again = s
        .login(login("alice", "alice-password"))
        .await
        .unwrap()
        .into_inner()
        .session_token;
    assert!(
        s.logout(req_as(LogoutRequest {}, &again))
            .await
            .unwrap()
            .into_inner()
            .ended
    );
    let e = s
        .who_am_i(req_as(WhoAmIRequest {}, &again))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn users_are_managed_by_admins_only_and_one_admin_remains() {
    let t = temp_db();
    let s = svc(&t);
    let boss = user(&s, "boss", "admin").await;
    let mem = user(&s, "mem", "member").await;
    // A member cannot raise their own role or create users.
    let e = s
        .update_user(req_as(
            UpdateUserRequest {
                username: "mem".into(),
                role: Some("admin".into()),
                ..Default::default()
            },
            &mem,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = s
        .create_user(req_as(
            CreateUserRequest {
                username: "x".into(),
                password: String::new(),
                role: "admin".into(),
            },
            &mem,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Members list only themselves.
    let listed = s
        .list_users(req_as(ListUsersRequest {}, &mem))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.users.len(), 1);
    assert_eq!(listed.users[0].username, "mem");

    // Generated passwords are returned once and work.
    let r = s
        .create_user(req_as(
            CreateUserRequest {
                username: "gen".into(),
                password: String::new(),
                role: "viewer".into(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.generated_password.len(), 32);
    s.login(login("gen", &r.generated_password)).await.unwrap();
    let dup = s
        .create_user(req(CreateUserRequest {
            username: "gen".into(),
            password: "whatever-123".into(),
            role: "viewer".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let bad = s
        .create_user(req(CreateUserRequest {
            username: "weak".into(),
            password: "short".into(),
            role: "viewer".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // The last enabled admin stays.
    let e = s
        .update_user(req(UpdateUserRequest {
            username: "boss".into(),
            role: Some("viewer".into()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = s
        .update_user(req(UpdateUserRequest {
            username: "ghost".into(),
            disabled: Some(true),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn guessing_ones_own_current_password_is_throttled_like_a_login() {
    let t = temp_db();
    let s = svc(&t);
    let bob = user(&s, "bob", "viewer").await;
    let reset = |current: String| ResetPasswordRequest {
        username: "bob".into(),
        new_password: "new-password-1".into(),
        current_password: current,
    };
    // Past any password's length: refused before hashing.
    let e = s
        .reset_password(req_as(reset("x".repeat(1 << 20)), &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Left out, and wrong: each says which.
    let e = s
        .reset_password(req_as(reset(String::new()), &bob))
        .await
        .unwrap_err();
    assert!(e.message().contains("needs the current one"), "{e:?}");
    for i in 0..4 {
        let e = s
            .reset_password(req_as(reset(format!("guess-{i}")), &bob))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "guess {i}");
        assert!(e.message().contains("is not right"), "{e:?}");
    }
    // Five wrong guesses: even the right password waits now, and the
    // wait is in the metadata too (admin-web's `Retry-After`).
    let e = s
        .reset_password(req_as(reset("bob-password".into()), &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let wait: u64 = e
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after metadata");
    assert!(wait >= 1, "{wait}");
}

/// When the login throttle starts refusing, the audit log says so once
/// for the window (not per attempt), as `anonymous`, naming the user only
/// when one exists: what was typed as a username may be a password.
#[tokio::test]
async fn throttling_is_audited_once_per_window_without_unknown_usernames() {
    use aigw_proto::pb::admin::AuditQuery;
    let t = temp_db();
    let s = svc(&t);
    user(&s, "zed", "viewer").await;
    let throttles = || async {
        s.list_audit_log(req(AuditQuery::default()))
            .await
            .unwrap()
            .into_inner()
            .entries
            .into_iter()
            .filter(|e| e.action == "throttle")
            .collect::<Vec<_>>()
    };
    for (name, shown) in [("zed", "zed"), ("Secret-Typed-As-User-1", "")] {
        for _ in 0..5 {
            let e = s.login(login(name, "wrong")).await.unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated);
        }
        let before = throttles().await.len();
        for _ in 0..3 {
            let e = s.login(login(name, "wrong")).await.unwrap_err();
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        }
        let entries = throttles().await;
        assert_eq!(entries.len(), before + 1, "{entries:?}");
        let last = entries
            .iter()
            .find(|e| e.object_name == shown)
            .expect("an entry for this name");
        assert_eq!(
            (last.actor.as_str(), last.object_kind.as_str()),
            ("anonymous", "session")
        );
        assert!(last.detail.contains("refused for"), "{last:?}");
    }
    let all = s
        .list_audit_log(req(AuditQuery::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{all:?}").contains("Secret-Typed"), "{all:?}");
}

#[tokio::test]
async fn password_resets() {
    let t = temp_db();
    let s = svc(&t);
    let bob = user(&s, "bob", "viewer").await;
    user(&s, "carol", "viewer").await;
    let reset = |who: &str, current: &str, new: &str| ResetPasswordRequest {
        username: who.into(),
        new_password: new.into(),
        current_password: current.into(),
    };
    // Not someone else's; their own only with the current password.
    let e = s
        .reset_password(req_as(reset("carol", "", "new-password-1"), &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = s
        .reset_password(req_as(reset("ghost", "", "new-password-1"), &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "no hint of who exists");
    let e = s
        .reset_password(req_as(reset("bob", "wrong", "new-password-1"), &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    s.reset_password(req_as(reset("bob", "bob-password", "new-password-1"), &bob))
        .await
        .unwrap();
    // Sessions ended; the new password works.
    let e = s
        .who_am_i(req_as(WhoAmIRequest {}, &bob))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    s.login(login("bob", "new-password-1")).await.unwrap();
    // An admin resets anyone's, generating one.
    let g = s
        .reset_password(req(reset("carol", "", "")))
        .await
        .unwrap()
        .into_inner()
        .generated_password;
    s.login(login("carol", &g)).await.unwrap();
    let e = s
        .reset_password(req(reset("ghost", "", "")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn api_tokens_are_scoped_shown_once_and_revocable() {
    let t = temp_db();
    let s = svc(&t);
    let op = user(&s, "op", "operator").await;
    let viewer = user(&s, "vi", "viewer").await;
    let tok = |n: &str, role: &str| CreateApiTokenRequest {
        name: n.into(),
        role: role.into(),
        expires_at_ms: 0,
    };
    // Not above the creator's role; a viewer cannot mint a member token.
    for (caller, role) in [(&op, "admin"), (&viewer, "member"), (&viewer, "operator")] {
        let e = s
            .create_api_token(req_as(tok("t", role), caller))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}");
    }
    let made = s
        .create_api_token(req_as(tok("ci", "viewer"), &op))
        .await
        .unwrap()
        .into_inner();
    assert!(made.token.starts_with("aigw-t-"));
    let info = made.info.unwrap();
    assert_eq!((info.role.as_str(), info.owner.as_str()), ("viewer", "op"));
    assert!(info.token_hint.starts_with("aigw-t-…"));
    let me = s
        .who_am_i(req_as(WhoAmIRequest {}, &made.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.kind.as_str(), me.role.as_str(), me.token_name.as_str()),
        ("api_token", "viewer", "ci")
    );
    // A viewer token cannot change anything.
    let e = s
        .upsert_client_key(req_as(key("k"), &made.token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Listing never shows the token.
    let listed = s
        .list_api_tokens(req_as(ListApiTokensRequest {}, &op))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{listed:?}").contains(&made.token[8..]));
    let dup = s
        .create_api_token(req_as(tok("ci", ""), &op))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let past = s
        .create_api_token(req_as(
            CreateApiTokenRequest {
                expires_at_ms: 1,
                ..tok("old", "")
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);
    // Member tokens need a user.
    let e = s
        .create_api_token(req(tok("m", "member")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Someone else's token: not theirs to revoke.
    let e = s
        .revoke_api_token(req_as(name("ci"), &viewer))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        s.revoke_api_token(req_as(name("ci"), &op))
            .await
            .unwrap()
            .into_inner()
            .revoked
    );
    let e = s
        .who_am_i(req_as(WhoAmIRequest {}, &made.token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.message(), "token revoked");

    // A token does no more than its owner may now.
    let t2 = s
        .create_api_token(req_as(tok("ops", "operator"), &op))
        .await
        .unwrap()
        .into_inner()
        .token;
    s.update_user(req(UpdateUserRequest {
        username: "op".into(),
        role: Some("viewer".into()),
        ..Default::default()
    }))
    .await
    .unwrap();
    let e = s.who_am_i(req_as(WhoAmIRequest {}, &t2)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

/// A token made while logged in gets the expiry asked (the session's end
/// does not bound it; a token's child is bound by its parent), and a
/// password reset by an admin, or the user's own password change, revokes
/// every token of that user with their sessions; another user's tokens are
/// untouched.
#[tokio::test]
async fn a_token_made_from_a_session_outlives_it_and_ends_with_a_password_reset() {
    let t = temp_db();
    let s = svc(&t);
    let login_result = |name: &str| login(name, &format!("{name}-password"));
    user(&s, "op", "operator").await;
    let session = s.login(login_result("op")).await.unwrap().into_inner();
    let tok = |n: &str, expires_at_ms: i64| CreateApiTokenRequest {
        name: n.into(),
        role: "viewer".into(),
        expires_at_ms,
    };
    // The session's end does not bound a token made with it: a CI job's
    // token may last a year, or forever.
    let made = s
        .create_api_token(req_as(tok("ci", 0), &session.session_token))
        .await
        .unwrap()
        .into_inner();
    let info = made.info.unwrap();
    assert_eq!(info.expires_at_ms, 0, "{info:?}");
    let year = session.expires_at_ms + 365 * 86_400_000;
    let long = s
        .create_api_token(req_as(tok("ci-year", year), &session.session_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(long.info.unwrap().expires_at_ms, year);
    // A token made from a token still expires no later than its parent.
    let child = s
        .create_api_token(req_as(tok("child", 0), &long.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(child.info.unwrap().expires_at_ms, year);
    let e = s
        .create_api_token(req_as(tok("later", year + 1), &long.token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("token creating it"), "{e:?}");

    // Another user's token, to see it survive.
    let vi = user(&s, "vi", "viewer").await;
    let other = s
        .create_api_token(req_as(tok("vi-ci", 0), &vi))
        .await
        .unwrap()
        .into_inner()
        .token;

    let revoked_now = |tokens: Vec<String>| {
        let s = s.clone();
        async move {
            for token in &tokens {
                let e = s
                    .who_am_i(req_as(WhoAmIRequest {}, token))
                    .await
                    .unwrap_err();
                assert_eq!(
                    (e.code(), e.message()),
                    (Code::Unauthenticated, "token revoked")
                );
            }
        }
    };
    // An admin resets op's password: op's tokens stop working at once.
    s.reset_password(req(ResetPasswordRequest {
        username: "op".into(),
        new_password: "new-password-1".into(),
        current_password: String::new(),
    }))
    .await
    .unwrap();
    revoked_now(vec![made.token, long.token, child.token]).await;
    s.who_am_i(req_as(WhoAmIRequest {}, &other)).await.unwrap();
    let listed = s
        .list_api_tokens(req(ListApiTokensRequest {}))
        .await
        .unwrap()
        .into_inner();
    let revoked: Vec<(&str, bool)> = listed
        .tokens
        .iter()
        .map(|t| (t.name.as_str(), t.revoked))
        .collect();
    for name in ["ci", "ci-year", "child"] {
        assert!(revoked.contains(&(name, true)), "{name}: {revoked:?}");
    }
    assert!(revoked.contains(&("vi-ci", false)), "{revoked:?}");

    // vi changes her own password: her tokens end too, op's new one stays.
    let session = s
        .login(login("op", "new-password-1"))
        .await
        .unwrap()
        .into_inner();
    let op_new = s
        .create_api_token(req_as(tok("op-new", 0), &session.session_token))
        .await
        .unwrap()
        .into_inner()
        .token;
    s.reset_password(req_as(
        ResetPasswordRequest {
            username: "vi".into(),
            new_password: "new-password-2".into(),
            current_password: "vi-password".into(),
        },
        &vi,
    ))
    .await
    .unwrap();
    revoked_now(vec![other]).await;
    s.who_am_i(req_as(WhoAmIRequest {}, &op_new)).await.unwrap();
}

#[tokio::test]
async fn members_see_and_change_only_their_own_keys() {
    let t = temp_db();
    let s = svc(&t);
    let ann = user(&s, "ann", "member").await;
    let ben = user(&s, "ben", "member").await;
    let op = user(&s, "op", "operator").await;
    let r = s
        .upsert_client_key(req_as(key("ann-app"), &ann))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created && !r.generated_key.is_empty());
    s.upsert_client_key(req_as(key("ben-app"), &ben))
        .await
        .unwrap();
    s.upsert_client_key(req(key("shared"))).await.unwrap();

    let names = |list: aigw_proto::pb::admin::ClientKeyList| -> Vec<(String, String)> {
        list.client_keys
            .into_iter()
            .map(|k| (k.name, k.owner))
            .collect()
    };
    let ann_list = s
        .list_client_keys(req_as(ListRequest {}, &ann))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(ann_list),
        [("ann-app".to_string(), "ann".to_string())]
    );
    let all = s
        .list_client_keys(req_as(ListRequest {}, &op))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.client_keys.len(), 3);

    // Ben cannot touch Ann's key, nor the unowned one, nor give his a new owner.
    for target in ["ann-app", "shared"] {
        let e = s
            .upsert_client_key(req_as(key(target), &ben))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "upsert {target}");
        let e = s
            .revoke_client_key(req_as(name(target), &ben))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "revoke {target}");
        let e = s
            .delete_client_key(req_as(name(target), &ben))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "delete {target}");
    }
    let e = s
        .upsert_client_key(req_as(
            ClientKeySpec {
                owner: "ann".into(),
                ..key("ben-app")
            },
            &ben,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // An operator may give a key to someone.
    s.upsert_client_key(req_as(
        ClientKeySpec {
            owner: "ben".into(),
            ..key("shared")
        },
        &op,
    ))
    .await
    .unwrap();
    let ben_list = s
        .list_client_keys(req_as(ListRequest {}, &ben))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ben_list.client_keys.len(), 2);
    let e = s
        .upsert_client_key(req_as(
            ClientKeySpec {
                owner: "nobody".into(),
                ..key("shared")
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Ann revokes her own: gone from the snapshot.
    assert!(
        s.revoke_client_key(req_as(name("ann-app"), &ann))
            .await
            .unwrap()
            .into_inner()
            .revoked
    );
    assert!(
        !s.publisher
            .current()
            .keys
            .iter()
            .any(|k| k.name == "ann-app")
    );
    // Members read nothing else.
    let e = s
        .list_providers(req_as(ListRequest {}, &ann))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

/// Someone who left is disabled: their client keys leave the snapshot with
/// their sign-in (the data planes refuse them), and come back if they are
/// enabled again. Others' keys stay.
#[tokio::test]
async fn a_disabled_users_client_keys_stop_serving_until_enabled_again() {
    let t = temp_db();
    let s = svc(&t);
    let ann = user(&s, "ann", "member").await;
    s.upsert_client_key(req_as(key("ann-app"), &ann))
        .await
        .unwrap();
    s.upsert_client_key(req(key("shared"))).await.unwrap();
    let served = |s: &super::AdminSvc| -> Vec<String> {
        let snap = s.publisher.current().to_pb();
        snap.client_keys.iter().map(|k| k.name.clone()).collect()
    };
    assert_eq!(served(&s), ["ann-app", "shared"]);
    let toggle = |disabled| {
        req(UpdateUserRequest {
            username: "ann".into(),
            disabled: Some(disabled),
            ..Default::default()
        })
    };
    s.update_user(toggle(true)).await.unwrap();
    assert_eq!(served(&s), ["shared"]);
    // A key change meanwhile (compiled alone) keeps hers out.
    s.upsert_client_key(req(key("other"))).await.unwrap();
    assert_eq!(served(&s), ["other", "shared"]);
    s.update_user(toggle(false)).await.unwrap();
    assert_eq!(served(&s), ["ann-app", "other", "shared"]);
}
