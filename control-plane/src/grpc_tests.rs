//! The real server on 127.0.0.1:0 with tonic clients: what a data plane, an
//! automation client and `apply` see over the wire.

use std::time::Duration;

use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::{ListRequest, ProviderKeySpec, ProviderSpec};
use aigw_proto::pb::config::config_service_client::ConfigServiceClient;
use aigw_proto::pb::config::node_message::Kind;
use aigw_proto::pb::config::{Ack, Hello, Nack, NodeMessage, SnapshotMessage};
use aigw_proto::pb::trace::TraceBatch;
use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};

use crate::apply;
use crate::crypto::MasterKey;
use crate::db::testing::{TempDb, temp_db};
use crate::server::{Settings, prepare, serve};

pub(crate) const NODE_TOKEN: &str = "node-token-for-tests";
pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub(crate) const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// Upper bound for anything the tests wait on.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Running {
    pub(crate) url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<crate::error::Result<()>>,
    _db: TempDb,
}

impl Running {
    /// A channel to the server; `https://` ones are built by the TLS tests.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) fn db(&self) -> crate::db::Db {
        self._db.db.clone()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub(crate) async fn start() -> Running {
    start_with(|_| {}).await
}

/// `start`, with the settings changed by `tune` first (TLS, no join token…).
pub(crate) async fn start_with(tune: impl FnOnce(&mut Settings)) -> Running {
    let t = temp_db();
    let mut settings = Settings {
        database_url: t.url.clone(),
        master_key: MasterKey::from_hex(&"a1".repeat(32)).unwrap(),
        node_token: Some(NODE_TOKEN.into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        previous_master_keys: vec![],
        tls: None,
        trusted_proxies: vec![],
        upstream_ca_file: None,
    };
    tune(&mut settings);
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let prepared = prepare(settings).await.unwrap();
    assert!(prepared.generated_admin_token.is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // TLS certificates name `localhost`; plain tests keep the IP.
    let url = match scheme {
        "https" => format!("https://localhost:{port}"),
        _ => format!("http://127.0.0.1:{port}"),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(prepared, listener, async {
        let _ = stopped.await;
    }));
    Running {
        url,
        stop: Some(stop),
        task,
        _db: t,
    }
}

pub(crate) fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    r
}

/// A call as the data plane `node_id` (region `test`) makes it.
pub(crate) fn as_node<T>(msg: T, token: &str, node_id: &str) -> Request<T> {
    let mut r = with_token(msg, token);
    let m = r.metadata_mut();
    m.insert(aigw_proto::NODE_ID_HEADER, node_id.parse().unwrap());
    m.insert(aigw_proto::REGION_HEADER, "test".parse().unwrap());
    r
}

pub(crate) fn msg(kind: Kind) -> NodeMessage {
    NodeMessage { kind: Some(kind) }
}

/// A data plane's side of Subscribe.
pub(crate) struct Node {
    pub(crate) tx: mpsc::Sender<NodeMessage>,
    pub(crate) rx: Streaming<SnapshotMessage>,
}

impl Node {
    pub(crate) async fn subscribe(ch: Channel, node_id: &str, applied: &str) -> Node {
        let (tx, out) = mpsc::channel(8);
        tx.send(msg(Kind::Hello(Hello {
            node_id: node_id.into(),
            region: "test".into(),
            applied_version: applied.into(),
            build: "test".into(),
        })))
        .await
        .unwrap();
        let mut client = ConfigServiceClient::new(ch);
        let rx = client
            .subscribe(as_node(ReceiverStream::new(out), NODE_TOKEN, node_id))
            .await
            .unwrap()
            .into_inner();
        Node { tx, rx }
    }

    pub(crate) async fn next(&mut self) -> SnapshotMessage {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }

    pub(crate) async fn ack(&self, m: &SnapshotMessage) {
        let version = m.snapshot.as_ref().unwrap().version.clone();
        self.tx
            .send(msg(Kind::Ack(Ack {
                version,
                nonce: m.nonce.clone(),
            })))
            .await
            .unwrap();
    }
}

pub(crate) fn provider_spec(secret: &str) -> ProviderSpec {
    ProviderSpec {
        name: "mock".into(),
        kind: "openai-compatible".into(),
        base_url: "http://127.0.0.1:9/v1".into(),
        models: vec!["gpt-4o*".into()],
        strategy: String::new(),
        keys: vec![ProviderKeySpec {
            name: "k1".into(),
            secret: secret.into(),
            weight: 1,
            oauth_template: String::new(),
        }],
        model_map: Default::default(),
        // These tests count snapshot versions: no checks of this fake upstream.
        health_check_interval_secs: Some(0),
        affinity: String::new(),
    }
}

/// Polls until `f` is true (never a fixed sleep).
pub(crate) async fn eventually<F: AsyncFnMut() -> bool>(mut f: F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn node_gets_snapshots_and_new_versions_after_admin_changes() {
    let server = start().await;
    let ch = server.channel().await;
    let mut admin = AdminServiceClient::new(ch.clone());

    let mut node = Node::subscribe(ch.clone(), "node-1", "").await;
    let first = node.next().await;
    let v0 = first.snapshot.as_ref().unwrap().version.clone();
    assert!(!first.nonce.is_empty() && v0.len() == 64);
    node.ack(&first).await;

    let r = admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    let second = node.next().await;
    let snap = second.snapshot.as_ref().unwrap();
    assert_ne!(snap.version, v0);
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(snap.providers[0].keys[0].secret, "sk-mock-secret-1");
    node.ack(&second).await;

    let v1 = snap.version.clone();
    eventually(async || {
        let nodes = admin
            .list_nodes(with_token(ListRequest {}, ADMIN_TOKEN))
            .await
            .unwrap()
            .into_inner();
        nodes.current_version == v1
            && nodes
                .nodes
                .iter()
                .any(|n| n.node_id == "node-1" && n.applied_version == v1)
    })
    .await;

    // A NACK is recorded with its error; the node keeps its version.
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-2"), ADMIN_TOKEN))
        .await
        .unwrap();
    let third = node.next().await;
    node.tx
        .send(msg(Kind::Nack(Nack {
            version: third.snapshot.as_ref().unwrap().version.clone(),
            nonce: third.nonce.clone(),
            error: "cannot use it".into(),
            kept_version: v1.clone(),
        })))
        .await
        .unwrap();
    eventually(async || {
        let nodes = admin
            .list_nodes(with_token(ListRequest {}, ADMIN_TOKEN))
            .await
            .unwrap()
            .into_inner();
        nodes
            .nodes
            .iter()
            .any(|n| n.last_error == "cannot use it" && n.applied_version == v1)
    })
    .await;

    // The node disconnects: it is listed as such.
    drop(node);
    eventually(async || {
        let nodes = admin
            .list_nodes(with_token(ListRequest {}, ADMIN_TOKEN))
            .await
            .unwrap()
            .into_inner();
        nodes
            .nodes
            .iter()
            .any(|n| n.node_id == "node-1" && !n.connected)
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_node_that_has_the_current_version_is_not_sent_it_again() {
    let server = start().await;
    let ch = server.channel().await;
    let mut probe = Node::subscribe(ch.clone(), "probe", "").await;
    let current = probe.next().await.snapshot.unwrap().version;

    let mut node = Node::subscribe(ch.clone(), "up-to-date", &current).await;
    let nothing = tokio::time::timeout(Duration::from_millis(300), node.rx.message()).await;
    assert!(nothing.is_err(), "no push expected, got {nothing:?}");

    // The next change reaches it.
    let mut admin = AdminServiceClient::new(ch);
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap();
    assert_ne!(node.next().await.snapshot.unwrap().version, current);
    // Shutdown ends open streams instead of waiting for them.
    server.stop().await;
}

#[tokio::test]
async fn node_and_admin_calls_without_their_tokens_are_refused() {
    let server = start().await;
    let ch = server.channel().await;
    let (_tx, out) = mpsc::channel::<NodeMessage>(1);
    let e = ConfigServiceClient::new(ch.clone())
        .subscribe(Request::new(ReceiverStream::new(out)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // The admin token is not a node token.
    let (_tx, out) = mpsc::channel::<NodeMessage>(1);
    let e = ConfigServiceClient::new(ch.clone())
        .subscribe(with_token(ReceiverStream::new(out), ADMIN_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    let e = TraceServiceClient::new(ch.clone())
        .report(Request::new(tokio_stream::iter(Vec::<TraceBatch>::new())))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    let e = AdminServiceClient::new(ch.clone())
        .list_providers(with_token(ListRequest {}, NODE_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn traces_are_acked_after_storing_and_deduplicated() {
    let server = start().await;
    let ch = server.channel().await;
    let (tx, out) = mpsc::channel(4);
    let mut acks = TraceServiceClient::new(ch)
        .report(as_node(ReceiverStream::new(out), NODE_TOKEN, "n1"))
        .await
        .unwrap()
        .into_inner();
    let records = vec![
        crate::ingest::tests::record("a"),
        crate::ingest::tests::record("b"),
    ];
    for seq in [1, 2] {
        tx.send(TraceBatch {
            seq,
            records: records.clone(),
        })
        .await
        .unwrap();
        let ack = tokio::time::timeout(WAIT, acks.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ack.seq, seq);
        let expected = if seq == 1 { (2, 0) } else { (0, 2) };
        assert_eq!((ack.stored, ack.duplicates), expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn health_is_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let server = start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "aigw.config.v1.ConfigService",
        "aigw.admin.v1.AdminService",
        "aigw.admin.v1.IdentityService",
        "aigw.admin.v1.InsightService",
    ] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, 1, "{service} should be SERVING");
    }

    // Reflection lists our services, so grpcurl works without .proto files.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "aigw.config.v1.ConfigService",
        "aigw.trace.v1.TraceService",
        "aigw.admin.v1.AdminService",
        "aigw.admin.v1.IdentityService",
        "aigw.admin.v1.InsightService",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // v1alpha too, for the clients that speak only that.
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut alpha = ServerReflectionClient::new(server.channel().await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let reply = alpha
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner()
            .message()
            .await
            .unwrap()
            .unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("unexpected v1alpha reflection reply {reply:?}");
        };
        assert!(
            list.service
                .iter()
                .any(|s| s.name == "aigw.admin.v1.InsightService")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn apply_twice_changes_nothing_and_prune_deletes() {
    let server = start().await;
    let env = |name: &str| (name == "SECRET_A").then(|| "sk-secret-a-0123456789".to_string());
    let text = r#"
providers:
  - name: mock
    kind: openai-compatible
    base_url: http://127.0.0.1:9
    models: ["gpt-4o*"]
    keys:
      - name: a
        secret: ${SECRET_A}
pricing:
  - model: gpt-4o
    input: 2.5
    output: 10
client_keys:
  - name: app
    models: ["gpt-4o*"]
    limits: { rpm: 60 }
"#;
    let mut client = apply::connect(&server.url, ADMIN_TOKEN, &Default::default())
        .await
        .unwrap();
    let run = async |client: &mut apply::Client, text: &str, prune: bool| {
        let mut out = Vec::new();
        apply::apply(client, apply::parse(text, &env).unwrap(), prune, &mut out)
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    let first = run(&mut client, text, false).await;
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "created provider mock",
            "created price gpt-4o",
            "created client_key app",
            lines[3]
        ]
    );
    assert!(
        lines[3].starts_with("generated key for client_key app: sk-aigw-"),
        "{first}"
    );

    let second = run(&mut client, text, false).await;
    assert_eq!(
        second,
        "unchanged provider mock\nunchanged price gpt-4o\nunchanged client_key app\n"
    );

    let smaller = text.replace(
        "pricing:\n  - model: gpt-4o\n    input: 2.5\n    output: 10\n",
        "",
    );
    let third = run(&mut client, &smaller, true).await;
    assert!(third.contains("deleted price gpt-4o"), "{third}");
    assert!(!third.contains("deleted provider"), "{third}");

    // A refused object is an error naming it (found before anything is sent).
    let bad = "providers:\n  - name: bad\n    kind: openai-compatible\n";
    let e = apply::apply(
        &mut client,
        apply::parse(bad, &env).unwrap(),
        false,
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("provider \"bad\"") && e.contains("base_url"),
        "{e}"
    );
    // A wrong token too.
    let mut wrong = apply::connect(&server.url, "nope", &Default::default())
        .await
        .unwrap();
    let e = apply::apply(
        &mut wrong,
        apply::parse(text, &env).unwrap(),
        false,
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("invalid token"), "{e}");
    server.stop().await;
}
