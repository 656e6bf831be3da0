//! The cookies of a whole sign-in where they are `Secure` (behind HTTPS,
//! or forced): single sign-on start → callback → a call → logout, and a
//! password sign-in, against a stand-in control plane. Every cookie set,
//! read and cleared goes by its `__Host-` name with `Path=/`; the plain
//! session cookie a browser may still hold is cleared, never read.
//! (Adopted from the hostile review of the `__Host-` change.)

use std::sync::{Arc, Mutex};

use aigw_proto::pb::admin::{
    BeginOidcLoginResult, Caller as CallerInfo, LoginResult, LogoutResult,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use axum::routing::post;
use clap::Parser as _;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::grpc::Grpc;
use crate::tests::{grpc_answer, serve_control_plane};
use crate::{AppState, app};

/// A control plane that signs anyone in and records the token each
/// `WhoAmI` and `Logout` came with.
async fn control_plane() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (who, out) = (seen.clone(), seen.clone());
    let token = |h: &HeaderMap| {
        h.get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let r = Router::new()
        .route(
            "/aigw.admin.v1.SignInService/BeginOidcLogin",
            post(|| async {
                grpc_answer(BeginOidcLoginResult {
                    authorization_url: "https://idp.example/auth".into(),
                    state: "ST1".into(),
                })
            }),
        )
        .route(
            "/aigw.admin.v1.SignInService/CompleteOidcLogin",
            post(|| async {
                grpc_answer(LoginResult {
                    session_token: "aigw-s-oidc".into(),
                    expires_at_ms: i64::MAX / 2,
                    user: None,
                })
            }),
        )
        .route(
            "/aigw.admin.v1.IdentityService/Login",
            post(|| async {
                grpc_answer(LoginResult {
                    session_token: "aigw-s-pw".into(),
                    expires_at_ms: i64::MAX / 2,
                    user: None,
                })
            }),
        )
        .route(
            "/aigw.admin.v1.IdentityService/Logout",
            post(move |h: HeaderMap| async move {
                out.lock().unwrap().push(format!("logout {}", token(&h)));
                grpc_answer(LogoutResult { ended: true })
            }),
        )
        .route(
            "/aigw.admin.v1.IdentityService/WhoAmI",
            post(move |h: HeaderMap| async move {
                who.lock().unwrap().push(format!("whoami {}", token(&h)));
                grpc_answer(CallerInfo::default())
            }),
        );
    (serve_control_plane(r).await, seen)
}

async fn router(forced: bool) -> (Router, Arc<Mutex<Vec<String>>>) {
    let (url, seen) = control_plane().await;
    let cfg = Config::try_parse_from(["admin-web", "--control-plane", &url]).unwrap();
    (
        app(AppState::new(Grpc::new(&cfg).unwrap(), forced, &[])),
        seen,
    )
}

/// The status and the `Set-Cookie`s of `req`.
async fn send(r: &Router, req: Request<Body>) -> (u16, Vec<String>) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (resp.status().as_u16(), cookies)
}

/// What a browser sends back of `set` (the cookies not cleared).
fn jar(set: &[String]) -> String {
    set.iter()
        .filter_map(|c| c.split(';').next())
        .filter(|kv| !kv.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `https`: the request came through a proxy that says so.
fn req(method: &str, path: &str, https: bool, cookie: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("x-aigw-csrf", "1");
    if https {
        b = b.header("x-forwarded-proto", "https");
    }
    if !cookie.is_empty() {
        b = b.header("cookie", cookie);
    }
    if path.ends_with("/login") {
        return b
            .header("content-type", "application/json")
            .body(Body::from(r#"{"username":"u","password":"p"}"#))
            .unwrap();
    }
    b.body(Body::empty()).unwrap()
}

fn host_cookie(c: &str) -> bool {
    c.starts_with("__Host-") && c.contains("Path=/;") && c.ends_with("; Secure")
}

#[tokio::test]
async fn a_single_sign_on_goes_by_host_cookies_from_start_to_logout() {
    // Behind a proxy that says HTTPS, and with secure cookies forced.
    for (forced, https) in [(false, true), (true, false)] {
        let (r, seen) = router(forced).await;
        let (_, set) = send(
            &r,
            req("GET", "/api/auth/oidc/start?next=/requests", https, ""),
        )
        .await;
        assert_eq!(set.len(), 2, "{set:?}");
        assert!(set.iter().all(|c| host_cookie(c)), "{set:?}");
        let (_, set) = send(
            &r,
            req(
                "GET",
                "/api/auth/oidc/callback?code=c&state=ST1",
                https,
                &jar(&set),
            ),
        )
        .await;
        let session = set
            .iter()
            .find(|c| c.starts_with("__Host-aigw_session=aigw-s-oidc"))
            .unwrap_or_else(|| panic!("no session in {set:?}"));
        assert!(host_cookie(session), "{session}");
        // The plain one a browser may still hold is cleared.
        assert!(
            set.iter()
                .any(|c| c.starts_with("aigw_session=;") && c.contains("Max-Age=0")),
            "{set:?}"
        );
        let sess = jar(std::slice::from_ref(session));
        let (status, _) = send(&r, req("GET", "/api/auth/me", https, &sess)).await;
        assert_eq!(status, 200);
        let (status, set) = send(&r, req("POST", "/api/auth/logout", https, &sess)).await;
        assert_eq!(status, 200);
        assert!(
            set.iter().any(|c| c.starts_with("__Host-aigw_session=;")
                && c.contains("Max-Age=0")
                && host_cookie(c)),
            "{set:?}"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            ["whoami Bearer aigw-s-oidc", "logout Bearer aigw-s-oidc"]
        );
    }
}

/// A session cookie from before the upgrade (the plain name) is not read
/// over HTTPS, and a password sign-in clears it beside setting the new one.
#[tokio::test]
async fn over_https_the_plain_session_cookie_is_cleared_not_read() {
    let (r, seen) = router(false).await;
    let (status, _) = send(
        &r,
        req("GET", "/api/auth/me", true, "aigw_session=aigw-s-old"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, set) = send(
        &r,
        req("POST", "/api/auth/login", true, "aigw_session=aigw-s-old"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        set.iter()
            .any(|c| c.starts_with("__Host-aigw_session=aigw-s-pw") && host_cookie(c)),
        "{set:?}"
    );
    assert!(
        set.iter()
            .any(|c| c.starts_with("aigw_session=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the old token went nowhere"
    );
}
