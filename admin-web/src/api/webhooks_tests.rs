//! `/api/webhooks` in process, against a control plane stub that answers
//! the three webhook calls in gRPC's framing, refuses as the real one does
//! (a viewer; a URL that is not http(s); a new webhook without a secret) and
//! records what it was sent: the route reaches the right call with the name
//! from the path, the secret goes to the control plane and never comes
//! back, and its refusals are the API's JSON errors.

use std::sync::{Arc, Mutex};

use aigw_proto::pb::admin::{
    DeleteResult, NameRequest, UpsertResult, WebhookInfo, WebhookList, WebhookSpec,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use clap::Parser as _;
use http_body_util::BodyExt as _;
use tonic::Code;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::grpc::Grpc;
use crate::tests::{grpc_answer, grpc_error, serve_control_plane};
use crate::{AppState, app};

const SECRET: &str = "whsec-0123456789abcdef";
const ADMIN: &str = "Bearer aigw-t-admin";
const VIEWER: &str = "Bearer aigw-t-viewer";

/// What the stub holds and was asked.
#[derive(Default)]
struct Stub {
    /// Stored webhooks, as the last upsert of each name left them.
    hooks: Vec<WebhookSpec>,
    /// Every upsert it was sent, as received.
    upserts: Vec<WebhookSpec>,
    /// Every name it was asked to delete.
    deletes: Vec<String>,
}

type Shared = Arc<Mutex<Stub>>;

/// A gRPC request body's message (after the 5-byte frame header).
fn message<M: prost::Message + Default>(body: &Bytes) -> M {
    M::decode(&body[5..]).unwrap()
}

fn is_viewer(h: &HeaderMap) -> bool {
    h.get("authorization").is_some_and(|v| v == VIEWER)
}

fn hint(secret: &str) -> String {
    format!("…{}", &secret[secret.len() - 4..])
}

async fn control_plane() -> (String, Shared) {
    let stub: Shared = Arc::default();
    let svc = "/aigw.admin.v1.AdminService";
    let (list, upsert, delete) = (stub.clone(), stub.clone(), stub.clone());
    let app = Router::new()
        .route(
            &format!("{svc}/ListWebhooks"),
            post(move || {
                let stub = list.clone();
                async move {
                    let webhooks = (stub.lock().unwrap().hooks.iter())
                        .map(|w| WebhookInfo {
                            name: w.name.clone(),
                            url: w.url.clone(),
                            secret_hint: hint(&w.secret),
                        })
                        .collect();
                    grpc_answer(WebhookList { webhooks })
                }
            }),
        )
        .route(
            &format!("{svc}/UpsertWebhook"),
            post(move |h: HeaderMap, body: Bytes| {
                let stub = upsert.clone();
                async move {
                    let spec: WebhookSpec = message(&body);
                    let mut stub = stub.lock().unwrap();
                    stub.upserts.push(spec.clone());
                    if is_viewer(&h) {
                        return grpc_error(
                            Code::PermissionDenied,
                            "role viewer may not call UpsertWebhook",
                        );
                    }
                    // As the control plane names the field, never echoing
                    // the URL (its path or query may hold a token).
                    if !spec.url.starts_with("http://") && !spec.url.starts_with("https://") {
                        return grpc_error(
                            Code::InvalidArgument,
                            &format!(
                                "webhook {:?}: url must start with http:// or https://",
                                spec.name
                            ),
                        );
                    }
                    let old = stub.hooks.iter().position(|w| w.name == spec.name);
                    let created = old.is_none();
                    match old {
                        None if spec.secret.is_empty() => {
                            return grpc_error(
                                Code::InvalidArgument,
                                &format!("webhook {:?}: a secret is required", spec.name),
                            );
                        }
                        None => stub.hooks.push(spec),
                        Some(i) => {
                            let kept = std::mem::take(&mut stub.hooks[i].secret);
                            let secret = if spec.secret.is_empty() {
                                kept
                            } else {
                                spec.secret.clone()
                            };
                            stub.hooks[i] = WebhookSpec { secret, ..spec };
                        }
                    }
                    grpc_answer(UpsertResult {
                        created,
                        changed: true,
                        generated_key: String::new(),
                    })
                }
            }),
        )
        .route(
            &format!("{svc}/DeleteWebhook"),
            post(move |h: HeaderMap, body: Bytes| {
                let stub = delete.clone();
                async move {
                    let NameRequest { name } = message(&body);
                    let mut stub = stub.lock().unwrap();
                    stub.deletes.push(name.clone());
                    if is_viewer(&h) {
                        return grpc_error(
                            Code::PermissionDenied,
                            "role viewer may not call DeleteWebhook",
                        );
                    }
                    let before = stub.hooks.len();
                    stub.hooks.retain(|w| w.name != name);
                    grpc_answer(DeleteResult {
                        deleted: stub.hooks.len() < before,
                    })
                }
            }),
        );
    (serve_control_plane(app).await, stub)
}

/// admin-web in front of the stub.
async fn admin_web() -> (Router, Shared) {
    let (url, stub) = control_plane().await;
    let cfg = Config::try_parse_from(["admin-web", "--control-plane", &url]).unwrap();
    (
        app(AppState::new(Grpc::new(&cfg).unwrap(), false, &[])),
        stub,
    )
}

/// (status, body as text, body as JSON).
async fn send(
    app: &Router,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<serde_json::Value>,
    create_only: bool,
) -> (StatusCode, String, serde_json::Value) {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth);
    if create_only {
        r = r.header("if-none-match", "*");
    }
    let req = match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, text, json)
}

#[tokio::test]
async fn webhooks_are_listed_created_edited_and_deleted() {
    let (app, stub) = admin_web().await;
    let (status, _, body) = send(&app, "GET", "/api/webhooks", ADMIN, None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["webhooks"], serde_json::json!([]));

    // A body naming another webhook than its path is refused; one that
    // repeats the path's name (or leaves it out) is created under it.
    let other = serde_json::json!({
        "name": "other", "url": "https://hooks.example/alerts", "secret": SECRET,
    });
    let (status, text, _) = send(&app, "PUT", "/api/webhooks/ops", ADMIN, Some(other), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let spec = serde_json::json!({
        "name": "ops", "url": "https://hooks.example/alerts", "secret": SECRET,
    });
    let (status, text, body) = send(
        &app,
        "PUT",
        "/api/webhooks/ops",
        ADMIN,
        Some(spec.clone()),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(body["created"], true);
    assert!(!text.contains(SECRET), "the secret is echoed: {text}");
    {
        let s = stub.lock().unwrap();
        let sent = s.upserts.last().unwrap();
        assert_eq!(
            (sent.name.as_str(), sent.url.as_str(), sent.secret.as_str()),
            ("ops", "https://hooks.example/alerts", SECRET)
        );
    }

    // Listed with its hint, never its secret.
    let (status, text, body) = send(&app, "GET", "/api/webhooks", ADMIN, None, false).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains(SECRET), "the secret is listed: {text}");
    assert_eq!(
        body["webhooks"],
        serde_json::json!([{"name": "ops", "url": "https://hooks.example/alerts", "secret_hint": "…cdef"}])
    );

    // "New webhook" with a name in use replaces nothing.
    let upserts = stub.lock().unwrap().upserts.len();
    let (status, _, body) = send(&app, "PUT", "/api/webhooks/ops", ADMIN, Some(spec), true).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], "already_exists");
    assert_eq!(
        body["error"]["message"],
        "a webhook named ops already exists"
    );
    assert_eq!(stub.lock().unwrap().upserts.len(), upserts);

    // Edited without a secret: the empty secret reaches the control
    // plane, which keeps the stored one. The new URL takes its receiver's
    // token in the query, passed along whole.
    let v2 = "https://hooks.example/v2?token=q-abc&x=1";
    let edit = serde_json::json!({ "url": v2 });
    let (status, text, body) =
        send(&app, "PUT", "/api/webhooks/ops", ADMIN, Some(edit), false).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(body["created"], false);
    {
        let s = stub.lock().unwrap();
        let sent = s.upserts.last().unwrap();
        assert_eq!((sent.url.as_str(), sent.secret.as_str()), (v2, ""));
    }
    let (_, text, body) = send(&app, "GET", "/api/webhooks", ADMIN, None, false).await;
    assert_eq!(body["webhooks"][0]["url"], v2);
    assert_eq!(body["webhooks"][0]["secret_hint"], "…cdef", "{text}");

    // Deleted: gone from the list; a second delete deletes nothing.
    let (status, _, body) = send(&app, "DELETE", "/api/webhooks/ops", ADMIN, None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], true);
    assert_eq!(stub.lock().unwrap().deletes, ["ops"]);
    let (_, _, body) = send(&app, "GET", "/api/webhooks", ADMIN, None, false).await;
    assert_eq!(body["webhooks"], serde_json::json!([]));
    let (status, _, body) = send(&app, "DELETE", "/api/webhooks/ops", ADMIN, None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], false);
}

#[tokio::test]
async fn webhook_refusals_are_the_apis_json_errors() {
    let (app, stub) = admin_web().await;
    let put = |url: &str, secret: &str| Some(serde_json::json!({ "url": url, "secret": secret }));

    // The control plane's validation: 400, its message naming the `url`
    // field, and neither the secret nor the URL (a token in its path) in
    // the answer.
    let (status, text, body) = send(
        &app,
        "PUT",
        "/api/webhooks/ops",
        ADMIN,
        put("ftp://hooks.example/T0/path-token-XYZ", SECRET),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(body["error"]["code"], "invalid_argument");
    assert_eq!(
        body["error"]["message"],
        "webhook \"ops\": url must start with http:// or https://"
    );
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        !text.contains("path-token") && !text.contains("hooks.example"),
        "{text}"
    );
    let (status, _, body) = send(
        &app,
        "PUT",
        "/api/webhooks/ops",
        ADMIN,
        put("https://hooks.example", ""),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["message"],
        "webhook \"ops\": a secret is required"
    );

    // The control plane decides roles: a viewer's change is 403.
    let (status, _, body) = send(
        &app,
        "PUT",
        "/api/webhooks/ops",
        VIEWER,
        put("https://hooks.example", SECRET),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied");
    let (status, _, body) = send(&app, "DELETE", "/api/webhooks/ops", VIEWER, None, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied");
    // ... which it was asked: admin-web passed the caller's token along.
    assert_eq!(stub.lock().unwrap().deletes, ["ops"]);
    assert!(stub.lock().unwrap().hooks.is_empty());

    // What admin-web refuses itself, before the control plane.
    let upserts = stub.lock().unwrap().upserts.len();
    for (req, status) in [
        (
            Request::put("/api/webhooks/ops")
                .header("authorization", ADMIN)
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::put("/api/webhooks/ops")
                .header("authorization", ADMIN)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"url": 7}"#))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::put("/api/webhooks/ops")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Request::put("/api/webhooks/ops")
                .header("cookie", "aigw_session=s")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let what = format!("{:?}", req.headers());
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), status, "{what}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(stub.lock().unwrap().upserts.len(), upserts);
}

#[tokio::test]
async fn the_webhook_routes_are_documented() {
    let (app, _) = admin_web().await;
    let (status, _, doc) = send(&app, "GET", "/api/openapi.json", ADMIN, None, false).await;
    assert_eq!(status, StatusCode::OK);
    let list = &doc["paths"]["/api/webhooks"]["get"];
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookList"
    );
    let one = &doc["paths"]["/api/webhooks/{name}"];
    for m in ["put", "delete"] {
        assert!(one[m]["responses"]["403"].is_object(), "{m}: {one}");
    }
    assert_eq!(
        one["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookSpec"
    );
    // The secret is described as write-only, the hint is what is listed.
    let spec = doc["components"]["schemas"]["WebhookSpec"].to_string();
    assert!(spec.contains("Write-only"), "{spec}");
    let info = &doc["components"]["schemas"]["WebhookInfo"]["properties"];
    assert!(
        info["secret_hint"].is_object() && info["secret"].is_null(),
        "{info}"
    );

    // The audit log's filter names every kind of object it records,
    // webhooks included.
    let params = doc["paths"]["/api/audit"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let kind = params.iter().find(|p| p["name"] == "object_kind").unwrap();
    let described = kind["description"].as_str().unwrap();
    for k in [
        "provider",
        "provider_key",
        "price",
        "route",
        "client_key",
        "node_credential",
        "oauth_template",
        "budget",
        "team",
        "webhook",
        "user",
        "api_token",
        "session",
        "oidc_settings",
    ] {
        assert!(
            described.split([' ', '|', ':', '\n']).any(|w| w == k),
            "{k} is not in {described:?}"
        );
    }
}
