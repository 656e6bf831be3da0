//! One data plane in process: the mock provider and a control plane on
//! port 0, the node built by `Node::start` from flags like `main`'s, a
//! snapshot applied directly, and requests made through its `Gateway`
//! service (no socket on the app's side, none of the binaries).

use std::time::Duration;

use aigw_e2e::MockServer;
use aigw_proto::pb::config as pb;
use bytes::Bytes;
use clap::Parser;
use data_plane::config::Config;
use data_plane::node::Node;
use data_plane::pipeline::ResBody;
use data_plane::service::Gateway;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::ServiceExt;

use crate::control_plane::ControlPlane;

/// The app's key, as its SDK sends it.
pub const APP_KEY: &str = "sk-app-request-path";
/// The two credentials of the OpenAI pool, tried in this order.
pub const KEY_ONE: &str = "sk-upstream-one";
pub const KEY_TWO: &str = "sk-upstream-two";
/// Price per million tokens of `gpt-4o-mini`.
pub const PRICE_IN: f64 = 2.0;
pub const PRICE_OUT: f64 = 8.0;

pub struct Gw {
    pub mock: MockServer,
    pub cp: ControlPlane,
    pub node: Node,
    pub svc: Gateway,
    pub dir: tempfile::TempDir,
}

/// What the app got back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn request_id(&self) -> String {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("every answer has an x-request-id")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Gw {
    /// A node with the standard snapshot applied; `flags` are extra
    /// command-line flags (`--max-attempts 2`, …).
    pub async fn start(flags: &[&str]) -> Self {
        let gw = Self::bare(flags).await;
        let snap = snapshot(&gw.mock.base_url(), "v1");
        gw.node
            .watcher
            .apply_whole(&prost::Message::encode_to_vec(&snap), None)
            .expect("snapshot applies");
        gw
    }

    /// A node with no snapshot yet.
    pub async fn bare(flags: &[&str]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let mock = MockServer::start().await.expect("mock provider");
        let cp = ControlPlane::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = dir.path().to_string_lossy().into_owned();
        let cp_url = cp.url();
        let mut args = vec![
            "data-plane",
            "--node-token",
            "node-token-for-tests",
            "--node-id",
            "node-a",
            "--region",
            "test-region",
            "--state-dir",
            &state_dir,
            "--control-plane",
            &cp_url,
        ];
        args.extend_from_slice(flags);
        let cfg = Config::try_parse_from(args).expect("flags parse");
        let node = Node::start(cfg, None).expect("node starts");
        let svc = node.service();
        Self {
            mock,
            cp,
            node,
            svc,
            dir,
        }
    }

    /// Sends a request as an app would, and returns the response with its
    /// body still streaming.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Response<ResBody> {
        match self.svc.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// POSTs `body` to `path` with the app's key; reads the whole answer.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let resp = self.send(post(path, &body)).await;
        read(resp).await
    }
}

/// A node started again on `state_dir` (as after a restart), following
/// nothing, shipping traces to `control_plane`.
pub fn restart(state_dir: &std::path::Path, control_plane: &str) -> Node {
    let dir = state_dir.to_string_lossy();
    let cfg = Config::try_parse_from([
        "data-plane",
        "--node-token",
        "node-token-for-tests",
        "--state-dir",
        &dir,
        "--control-plane",
        control_plane,
    ])
    .expect("flags parse");
    Node::start(cfg, None).expect("node restarts")
}

/// POSTs `body` to Anthropic's Messages endpoint as its SDK does.
pub fn anthropic_post(body: &Value) -> Request<Full<Bytes>> {
    Request::post("/v1/messages")
        .header("x-api-key", APP_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request")
}

pub fn post(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("authorization", format!("Bearer {APP_KEY}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request")
}

/// Reads a whole answer; a body that breaks off yields what came before it
/// and the error's text appended as `\n<error: …>`.
pub async fn read(resp: Response<ResBody>) -> Answer {
    let (parts, mut body) = resp.into_parts();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    out.extend_from_slice(&d);
                }
            }
            Err(e) => {
                out.extend_from_slice(format!("\n<error: {e}>").as_bytes());
                break;
            }
        }
    }
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: out.into(),
    }
}

pub fn chat(content: &str) -> Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content}],
    })
}

pub fn chat_stream(content: &str) -> Value {
    let mut v = chat(content);
    v["stream"] = true.into();
    v["stream_options"] = serde_json::json!({"include_usage": true});
    v
}

/// OpenAI (`gpt-*`, two credentials, fill-first so the order is known) and
/// Anthropic (`claude-*`), both at the mock; one app key; a price.
pub fn snapshot(mock: &str, version: &str) -> pb::Snapshot {
    let key = |name: &str, secret: &str| pb::ProviderKey {
        name: name.into(),
        secret: secret.into(),
        weight: 1,
        ..Default::default()
    };
    pb::Snapshot {
        version: version.into(),
        providers: vec![
            pb::Provider {
                name: "openai-pool".into(),
                kind: "openai".into(),
                base_url: mock.into(),
                models: vec!["gpt-*".into()],
                strategy: "fill-first".into(),
                keys: vec![key("one", KEY_ONE), key("two", KEY_TWO)],
                ..Default::default()
            },
            pb::Provider {
                name: "anthropic".into(),
                kind: "anthropic".into(),
                base_url: mock.into(),
                models: vec!["claude-*".into()],
                keys: vec![key("main", "sk-ant-upstream-main")],
                ..Default::default()
            },
        ],
        pricing: vec![pb::Price {
            model: "gpt-4o-mini".into(),
            input: PRICE_IN,
            output: PRICE_OUT,
            cached_input: None,
        }],
        client_keys: vec![pb::ClientKey {
            id: "key-1".into(),
            name: "request-path app".into(),
            key_hash: data_plane::auth::hash_key(APP_KEY).to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The usage the mock reported in its last answer: (prompt, completion).
pub fn mock_usage(gw: &Gw) -> (u64, u64) {
    let last = gw
        .mock
        .mock()
        .requests()
        .pop()
        .expect("the mock saw a request");
    let u = last.response_usage.expect("the mock reported usage");
    let n = |k: &str| u[k].as_u64().unwrap_or_else(|| panic!("usage.{k} in {u}"));
    (n("prompt_tokens"), n("completion_tokens"))
}

pub fn cost(prompt: u64, completion: u64) -> f64 {
    (prompt as f64 * PRICE_IN + completion as f64 * PRICE_OUT) / 1_000_000.0
}

/// Trace delivery has no deadline of its own; tests wait at most this long.
pub const PATIENCE: Duration = Duration::from_secs(5);
