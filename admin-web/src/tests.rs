//! The HTTP surface in process (`oneshot`): routing, the OpenAPI document,
//! error shapes, security headers and CSRF, against a control plane that is
//! not there (calls that reach it get 503).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;
use crate::config::Config;

fn router() -> Router {
    let cfg =
        Config::try_parse_from(["admin-web", "--control-plane", "http://127.0.0.1:1"]).unwrap();
    app(AppState::new(Grpc::new(&cfg).unwrap(), false, &[]))
}

async fn call(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let resp = router().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let (status, headers, doc) = call(get("/api/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/providers",
        "/api/providers/{name}",
        "/api/client-keys/{name}/revoke",
        "/api/traces",
        "/api/traces/{request_id}",
        "/api/overview",
        "/api/overview/live",
        "/api/config/plan",
        "/api/auth/login",
        "/api/settings/oidc",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "ProviderList",
        "TraceInfo",
        "Overview",
        "ErrorBody",
        "ClientKeySpec",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    // A trace tells an estimated charge from a reported one, and names the
    // budget that refused it.
    let trace = doc["components"]["schemas"]["TraceInfo"]["properties"]
        .as_object()
        .unwrap();
    for f in ["usage_source", "refused_by"] {
        assert_eq!(trace[f]["type"], "string", "TraceInfo.{f}: {trace:?}");
    }
    // The Admin API's doc comments reach the document.
    let spec = serde_json::to_string(&schemas["ClientKeySpec"]).unwrap();
    assert!(spec.contains("Username of the owner"), "{spec}");
}

#[tokio::test]
async fn errors_are_json_and_headers_are_strict() {
    let (status, headers, body) = call(get("/api/providers")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");

    let (status, _, body) = call(get("/api/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    // Sign-in without the CSRF header (a cross-site form could send it).
    let req = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"username":"a","password":"b"}"#))
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "csrf");

    // Bad JSON is a JSON 400, not axum's plain-text rejection.
    let req = Request::put("/api/providers/x")
        .header("authorization", "Bearer aigw-t-x")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_argument");

    // A body that names another object than its path is refused before
    // anything is written (the path's object would be written instead).
    for (path, body) in [
        (
            "/api/pricing/alpha",
            r#"{"model":"beta","input":1,"output":1}"#,
        ),
        ("/api/providers/x", r#"{"name":"y","kind":"openai"}"#),
    ] {
        let req = Request::put(path)
            .header("authorization", "Bearer aigw-t-x")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = call(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let m = body["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains("names another object"), "{m}");
    }

    // Too large is 413 and not JSON by its type is 415, both in JSON.
    let req = Request::put("/api/providers/x")
        .header("authorization", "Bearer aigw-t-x")
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; MAX_BODY + 1]))
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    let req = Request::put("/api/providers/x")
        .header("authorization", "Bearer aigw-t-x")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    // With a token, the call goes to the control plane, which is down.
    let req = Request::get("/api/providers")
        .header("authorization", "Bearer aigw-t-x")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not reachable"),
        "{body}"
    );
}

#[tokio::test]
async fn every_other_path_is_the_ui() {
    for path in ["/", "/requests", "/keys/some-key"] {
        let resp = router().oneshot(get(path)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/html");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
    }
    let resp = router().oneshot(get("/assets/gone-1234.js")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The page is only read: a change sent to a path outside `/api/…` is
    // refused in JSON, not answered with the page.
    for (method, path) in [
        ("PUT", "/"),
        ("POST", "/requests"),
        ("DELETE", "/api"),
        ("PUT", "/api/"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let resp = router().oneshot(req).await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
}

fn post_json(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header("authorization", "Bearer aigw-t-x")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// `{"yaml": "..."}` of `yaml_bytes` bytes of YAML.
fn config_body(yaml_bytes: usize) -> Vec<u8> {
    let line = "  - name: app-000001\n";
    let yaml = format!("client_keys:\n{}", line.repeat(yaml_bytes / line.len()));
    serde_json::to_vec(&serde_json::json!({ "yaml": yaml })).unwrap()
}

#[tokio::test]
async fn a_whole_config_file_may_be_large_and_no_other_body_is() {
    // A 5 MB file (100,000 keys' worth) reaches the control plane (here
    // down: 503), through plan and apply alike.
    for path in ["/api/config/plan", "/api/config/apply"] {
        let body = config_body(5_000_000);
        assert!(body.len() > 5_000_000 && body.len() > MAX_BODY);
        let (status, _, body) = call(post_json(path, body)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
    }

    // Past the bound on a config body: 413, unread.
    let (status, _, body) = call(post_json(
        "/api/config/apply",
        vec![b' '; MAX_CONFIG_BODY + 1],
    ))
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");

    // A body within it whose file is over the control plane's bound: 413
    // too, before it is sent.
    let body = config_body(aigw_proto::MAX_CONFIG_FILE_BYTES + 100);
    assert!(body.len() <= MAX_CONFIG_BODY);
    let (status, _, body) = call(post_json("/api/config/plan", body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&aigw_proto::MAX_CONFIG_FILE_BYTES.to_string()),
        "{body}"
    );

    // Every other endpoint keeps 2 MiB: 3 MB of JSON is refused.
    let three_mb =
        serde_json::to_vec(&serde_json::json!({ "name": "x".repeat(3_000_000) })).unwrap();
    for req in [
        post_json("/api/users", three_mb.clone()),
        Request::put("/api/providers/x")
            .header("authorization", "Bearer aigw-t-x")
            .header("content-type", "application/json")
            .body(Body::from(three_mb.clone()))
            .unwrap(),
    ] {
        let path = req.uri().to_string();
        let (status, _, body) = call(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large");
    }
}

/// An identity provider's error words reach the sign-in page only for a
/// sign-in this browser started (anyone can link to the callback with an
/// `error_description` of their own), and never through the page's address
/// (anyone can link to `/login?error=…`): in a cookie only this origin sets.
#[tokio::test]
async fn a_sign_in_that_cannot_start_goes_back_to_the_sign_in_page() {
    // The control plane (here unreachable, as it is when the identity
    // provider's discovery fails) cannot begin the sign-in: the browser,
    // which navigated here, lands on the sign-in page with the reason, not
    // on a page of raw JSON.
    let (status, reason, page) = sign_in_page(get("/api/auth/oidc/start?next=/requests")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(reason.len() > "aigw_login_error=; ".len() + 40, "{reason}");
    assert!(page.contains("/login?error=sso"), "{page}");
}

/// A sign-in answer: its status, the reason cookie it sets, and its page.
async fn sign_in_page(req: Request<Body>) -> (StatusCode, String, String) {
    let resp = router().oneshot(req).await.unwrap();
    let status = resp.status();
    let reason = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("aigw_login_error="))
        .unwrap_or_default()
        .to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, reason, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn an_oidc_error_is_shown_only_for_a_sign_in_started_here() {
    let path = "/api/auth/oidc/callback?error=access_denied&state=s1\
                &error_description=Your%20account%20is%20locked%2C%20call%20555";
    // (the reason cookie, the page)
    let answer = |req: Request<Body>| async move {
        let (_, reason, page) = sign_in_page(req).await;
        (reason, page)
    };
    let (reason, page) = answer(get(path)).await;
    assert!(!reason.contains("locked"), "{reason}");
    assert!(reason.contains("single%20sign-on%20failed"), "{reason}");
    assert!(
        reason.contains("SameSite=Strict; Max-Age=60; Path=/login"),
        "{reason}"
    );
    assert!(
        page.contains("/login?error=sso") && !page.contains("locked"),
        "{page}"
    );

    let mine = Request::get(path)
        .header("cookie", "aigw_oidc_state=s1")
        .body(Body::empty())
        .unwrap();
    let (reason, page) = answer(mine).await;
    assert!(
        reason.contains("access_denied") && reason.contains("locked"),
        "{reason}"
    );
    assert!(!page.contains("locked"), "{page}");
}

/// Over HTTPS the sign-on state is read only from its `__Host-` cookie: a
/// state a sibling subdomain planted under the plain name (to finish its
/// own sign-in in the admin's browser) does not make the sign-in "started
/// here", and the reason cookie and the cleared state are `__Host-` too.
#[tokio::test]
async fn over_https_a_planted_oidc_state_is_not_this_browsers() {
    let path = "/api/auth/oidc/callback?error=access_denied&state=s1\
                &error_description=Your%20account%20is%20locked";
    let answer = |cookie: &'static str| async move {
        let req = Request::get(path)
            .header("x-forwarded-proto", "https")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap();
        let resp = router().oneshot(req).await.unwrap();
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let reason = |cookies: &[String]| {
        cookies
            .iter()
            .find(|v| v.starts_with("__Host-aigw_login_error="))
            .cloned()
            .unwrap_or_default()
    };
    let planted = answer("aigw_oidc_state=s1").await;
    assert!(!reason(&planted).contains("locked"), "{planted:?}");
    assert!(
        planted
            .iter()
            .any(|c| c.starts_with("__Host-aigw_oidc_state=; Path=/;") && c.contains("Secure")),
        "{planted:?}"
    );
    let mine = answer("__Host-aigw_oidc_state=s1").await;
    assert!(reason(&mine).contains("locked"), "{mine:?}");
}

/// Two different session cookies (one planted by another page on this
/// host): no session is taken from them, and signing in says why.
#[tokio::test]
async fn two_session_cookies_sign_no_one_in() {
    let req = |method: &str, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", "aigw_session=attacker; aigw_session=victim")
            .header("x-aigw-csrf", "1")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, _, body) = call(req("GET", "/api/auth/me", "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, body) = call(req(
        "POST",
        "/api/auth/login",
        r#"{"username":"admin","password":"x"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("two different session cookies")),
        "{body}"
    );
}

/// The Origin check compares the scheme too: only http and https pages
/// of this host.
#[tokio::test]
async fn an_origin_of_another_scheme_is_refused() {
    let req = Request::post("/api/auth/logout")
        .header("host", "gw.example")
        .header("origin", "evil://gw.example")
        .header("cookie", "aigw_session=t")
        .header("x-aigw-csrf", "1")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// `msg` as a control plane's successful answer, in gRPC's framing.
pub(crate) fn grpc_answer(msg: impl prost::Message) -> axum::response::Response {
    let bytes = msg.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(0).to_be_bytes());
    frame.extend_from_slice(&bytes);
    let mut trailers = axum::http::HeaderMap::new();
    trailers.insert("grpc-status", axum::http::HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(axum::body::Bytes::from(frame))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    axum::response::Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap()
}

/// A control plane's refusal (a trailers-only answer): gRPC `code` and
/// `message` (ASCII, no `%`).
pub(crate) fn grpc_error(code: tonic::Code, message: &str) -> axum::response::Response {
    axum::response::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", (code as i32).to_string())
        .header("grpc-message", message)
        .body(Body::empty())
        .unwrap()
}

/// Serves `app` as a control plane on a free port; its URL.
pub(crate) async fn serve_control_plane(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A control plane that knows the provider `openai` and the team `core`
/// and counts the upserts it is asked for: answers in gRPC's framing.
async fn fake_control_plane() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use aigw_proto::pb::admin::{ProviderInfo, ProviderList, TeamInfo, TeamList, UpsertResult};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let upserts = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = upserts.clone();
    let upsert = move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            grpc_answer(UpsertResult {
                created: true,
                changed: true,
                generated_key: String::new(),
            })
        }
    };
    let svc = "/aigw.admin.v1.AdminService";
    let app = Router::new()
        .route(
            &format!("{svc}/ListProviders"),
            axum::routing::post(|| async {
                grpc_answer(ProviderList {
                    providers: vec![ProviderInfo {
                        name: "openai".into(),
                        ..Default::default()
                    }],
                })
            }),
        )
        .route(
            &format!("{svc}/ListTeams"),
            axum::routing::post(|| async {
                grpc_answer(TeamList {
                    teams: vec![TeamInfo {
                        name: "core".into(),
                        members: vec![],
                    }],
                })
            }),
        )
        .route(
            &format!("{svc}/UpsertProvider"),
            axum::routing::post(upsert.clone()),
        )
        .route(&format!("{svc}/UpsertTeam"), axum::routing::post(upsert));
    (serve_control_plane(app).await, upserts)
}

/// "New …" sends `If-None-Match: *`: an object of the same name is not
/// replaced (412, saying so); without the header a PUT is still an upsert.
#[tokio::test]
async fn a_create_only_put_never_replaces_an_existing_object() {
    use std::sync::atomic::Ordering;
    let (url, upserts) = fake_control_plane().await;
    let cfg = Config::try_parse_from(["admin-web", "--control-plane", &url]).unwrap();
    let app = app(AppState::new(Grpc::new(&cfg).unwrap(), false, &[]));
    let put = |path: &str, if_none_match: Option<&str>| {
        let mut r = Request::put(path)
            .header("authorization", "Bearer aigw-t-x")
            .header("content-type", "application/json");
        if let Some(v) = if_none_match {
            r = r.header("if-none-match", v);
        }
        let body = if path.starts_with("/api/teams/") {
            r#"{"members":[]}"#
        } else {
            r#"{"kind":"openai"}"#
        };
        r.body(Body::from(body)).unwrap()
    };
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            (status, json)
        }
    };

    let (status, body) = send(put("/api/providers/openai", Some("*"))).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], "already_exists");
    assert_eq!(
        body["error"]["message"],
        "a provider named openai already exists"
    );
    let (status, body) = send(put("/api/teams/core", Some("*"))).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["message"], "a team named core already exists");
    assert_eq!(upserts.load(Ordering::SeqCst), 0, "nothing was replaced");

    // A new name is created; an upsert without the header replaces.
    let (status, body) = send(put("/api/providers/anthropic", Some("*"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["created"], true);
    let (status, body) = send(put("/api/providers/openai", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(put("/api/teams/core", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(upserts.load(Ordering::SeqCst), 3);

    // There are no entity tags to match: any other value is refused.
    let (status, body) = send(put("/api/providers/openai", Some("\"v1\""))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(upserts.load(Ordering::SeqCst), 3);

    // A field the API does not know is refused, naming it, and nothing is
    // saved: a misspelled `models` would have allowed every model, and a
    // limits body wrapped in `limits` would have removed a budget.
    for (path, wrong) in [
        (
            "/api/client-keys/k",
            r#"{"model":["gpt-4o"],"rpm_limit":5}"#,
        ),
        ("/api/budgets/team:core", r#"{"limits":{"cost_per_day":5}}"#),
        (
            "/api/providers/openai",
            r#"{"kind":"openai","keys":[{"name":"a","secrte":"x"}]}"#,
        ),
    ] {
        let r = Request::put(path)
            .header("authorization", "Bearer aigw-t-x")
            .header("content-type", "application/json")
            .body(Body::from(wrong))
            .unwrap();
        let (status, body) = send(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field"),
            "{body}"
        );
    }
    assert_eq!(upserts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_create_only_precondition_is_documented() {
    let (_, _, doc) = call(get("/api/openapi.json")).await;
    for path in [
        "/api/providers/{name}",
        "/api/client-keys/{name}",
        "/api/teams/{name}",
        "/api/pricing/{model}",
        "/api/routes/{model}",
        "/api/budgets/{subject}",
        "/api/webhooks/{name}",
    ] {
        let put = &doc["paths"][path]["put"];
        assert!(put["responses"]["412"].is_object(), "{path}: {put}");
        let params = put["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "If-None-Match" && p["in"] == "header"),
            "{path}: {params:?}"
        );
    }
}

/// Signed out, the UI's first call learns so without a 401 (which the
/// browser logs as an error); any other caller still gets the 401.
#[tokio::test]
async fn who_am_i_may_answer_signed_out_without_an_error() {
    let (status, _, body) = call(get("/api/auth/me?optional=true")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::Value::Null);
    let (status, _, body) = call(get("/api/auth/me")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // With a session, the control plane is asked (here: down).
    let req = Request::get("/api/auth/me?optional=true")
        .header("cookie", "aigw_session=t")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}
