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
    start_on(temp_db(), tune).await
}

/// `start_with`, on a database the test prepared.
pub(crate) async fn start_on(t: TempDb, tune: impl FnOnce(&mut Settings)) -> Running {
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
        trace_retention: None,
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

/// The delta a message carries.
pub(crate) fn delta(m: &SnapshotMessage) -> aigw_proto::pb::config::SnapshotDelta {
    prost::Message::decode(m.delta.clone()).expect("a delta")
}

/// The whole snapshot a message carries.
pub(crate) fn snap(m: &SnapshotMessage) -> aigw_proto::pb::config::Snapshot {
    prost::Message::decode(m.snapshot.clone()).expect("a whole snapshot")
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
    /// A node of an older build: whole snapshots only.
    pub(crate) async fn subscribe(ch: Channel, node_id: &str, applied: &str) -> Node {
        Self::subscribe_with(ch, node_id, applied, false).await
    }

    pub(crate) async fn subscribe_with(
        ch: Channel,
        node_id: &str,
        applied: &str,
        accepts_deltas: bool,
    ) -> Node {
        let (tx, out) = mpsc::channel(8);
        tx.send(msg(Kind::Hello(Hello {
            node_id: node_id.into(),
            region: "test".into(),
            applied_version: applied.into(),
            build: "test".into(),
            accepts_deltas,
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
        let version = if m.delta.is_empty() {
            snap(m).version
        } else {
            delta(m).version
        };
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
/// Waits until the node list shows a node for which `pred` holds.
async fn node_listed(
    admin: &mut AdminServiceClient<Channel>,
    pred: impl Fn(&aigw_proto::pb::admin::NodeInfo) -> bool,
) {
    eventually(async || {
        let nodes = admin
            .list_nodes(with_token(ListRequest {}, ADMIN_TOKEN))
            .await
            .unwrap()
            .into_inner();
        nodes.nodes.iter().any(&pred)
    })
    .await;
}

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
    let v0 = snap(&first).version;
    assert!(!first.nonce.is_empty() && v0.len() == 64);
    node.ack(&first).await;

    let r = admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    let second = node.next().await;
    let s2 = snap(&second);
    assert_ne!(s2.version, v0);
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(s2.providers[0].keys[0].secret, "sk-mock-secret-1");
    node.ack(&second).await;

    let v1 = s2.version.clone();
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
            version: snap(&third).version,
            nonce: third.nonce.clone(),
            error: "cannot use it".into(),
            kept_version: v1.clone(),
        })))
        .await
        .unwrap();
    node_listed(&mut admin, |n| {
        n.last_error == "cannot use it" && n.applied_version == v1
    })
    .await;

    // The node disconnects: it is listed as such.
    drop(node);
    node_listed(&mut admin, |n| n.node_id == "node-1" && !n.connected).await;
    server.stop().await;
}

#[tokio::test]
async fn a_node_that_has_the_current_version_is_not_sent_it_again() {
    let server = start().await;
    let ch = server.channel().await;
    let mut probe = Node::subscribe(ch.clone(), "probe", "").await;
    let current = snap(&probe.next().await).version;

    let mut node = Node::subscribe(ch.clone(), "up-to-date", &current).await;
    let nothing = tokio::time::timeout(Duration::from_millis(300), node.rx.message()).await;
    assert!(nothing.is_err(), "no push expected, got {nothing:?}");

    // The next change reaches it.
    let mut admin = AdminServiceClient::new(ch);
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap();
    assert_ne!(snap(&node.next().await).version, current);
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
async fn a_node_cannot_make_the_node_list_grow_with_its_version() {
    let server = start().await;
    let ch = server.channel().await;
    let _node = Node::subscribe(ch.clone(), "node-1", &"v".repeat(1 << 20)).await;
    let mut admin = AdminServiceClient::new(ch);
    node_listed(&mut admin, |n| {
        n.node_id == "node-1" && n.applied_version == "v".repeat(128)
    })
    .await;
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
async fn nodes_that_accept_deltas_get_what_changed_and_a_whole_after_a_refusal() {
    use aigw_proto::pb::admin::{ClientKeySpec, NameRequest};
    let server = start().await;
    let ch = server.channel().await;
    let mut admin = AdminServiceClient::new(ch.clone());
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap();
    let key = |name: &str| ClientKeySpec {
        name: name.into(),
        key: format!("sk-aigw-{name}-0123456789"),
        ..Default::default()
    };
    for name in ["a", "b"] {
        admin
            .upsert_client_key(with_token(key(name), ADMIN_TOKEN))
            .await
            .unwrap();
    }
    let mut node = Node::subscribe_with(ch.clone(), "delta-node", "", true).await;
    // Its first snapshot is whole: the control plane knows no version of it.
    let first = node.next().await;
    let whole = snap(&first);
    assert!(first.delta.is_empty() && whole.client_keys.len() == 2);
    node.ack(&first).await;

    // A key created: a delta with just that key, from what the node has.
    admin
        .upsert_client_key(with_token(key("c"), ADMIN_TOKEN))
        .await
        .unwrap();
    let second = node.next().await;
    assert!(second.snapshot.is_empty());
    let d = delta(&second);
    assert_eq!(d.base_version, whole.version);
    assert_eq!(d.upserted_keys.len(), 1);
    assert_eq!(d.upserted_keys[0].name, "c");
    assert!(d.removed_key_hashes.is_empty() && d.core.is_none());
    assert_eq!(d.key_count, 3);
    node.ack(&second).await;

    // A key revoked: its hash removed. The node refuses this delta: the
    // same version comes again, whole.
    admin
        .revoke_client_key(with_token(NameRequest { name: "a".into() }, ADMIN_TOKEN))
        .await
        .unwrap();
    let third = node.next().await;
    let d = delta(&third);
    assert_eq!(d.base_version, delta(&second).version);
    assert_eq!(
        d.removed_key_hashes,
        [crate::crypto::sha256("sk-aigw-a-0123456789").to_vec()]
    );
    assert_eq!(d.key_count, 2);
    node.tx
        .send(msg(Kind::Nack(Nack {
            version: d.version.clone(),
            nonce: third.nonce.clone(),
            error: "test refusal".into(),
            kept_version: d.base_version.clone(),
        })))
        .await
        .unwrap();
    let fourth = node.next().await;
    let whole = snap(&fourth);
    assert_eq!(whole.version, d.version);
    assert_eq!(whole.client_keys.len(), 2);
    node.ack(&fourth).await;

    // A provider change: the delta carries the core, no keys.
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-2"), ADMIN_TOKEN))
        .await
        .unwrap();
    let fifth = node.next().await;
    let d = delta(&fifth);
    assert_eq!(d.base_version, whole.version);
    let core = d.core.unwrap();
    assert_eq!(core.providers[0].keys[0].secret, "sk-mock-secret-2");
    assert!(core.client_keys.is_empty() && d.upserted_keys.is_empty());
    server.stop().await;
}

/// A data plane's version that this control plane never published.
const SERVED_ELSEWHERE: &str = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";

async fn nothing_pushed(node: &mut Node) {
    let nothing = tokio::time::timeout(Duration::from_millis(500), node.rx.message()).await;
    assert!(nothing.is_err(), "no push expected, got {nothing:?}");
}

fn an_audit_entry() -> crate::db::identity::AuditRow {
    crate::db::identity::AuditRow {
        id: "audit-1".into(),
        at_ms: crate::db::now_ms(),
        actor: "admin".into(),
        actor_user_id: None,
        action: "delete_provider".into(),
        object_kind: "provider".into(),
        object_name: "mock".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn a_fresh_database_does_not_replace_what_a_node_serves_until_an_admin_change() {
    let server = start().await;
    let ch = server.channel().await;
    let mut admin = AdminServiceClient::new(ch.clone());

    // A node that serves a configuration keeps it: nothing is pushed, and
    // the node list says why.
    let mut serving = Node::subscribe(ch.clone(), "serving", SERVED_ELSEWHERE).await;
    nothing_pushed(&mut serving).await;
    node_listed(&mut admin, |n| {
        n.node_id == "serving"
            && n.connected
            && n.applied_version == SERVED_ELSEWHERE
            && n.last_error.contains("holds no configuration")
            && n.last_error.contains("DATABASE_URL")
    })
    .await;
    // A node that serves nothing gets the empty configuration as before.
    let mut blank = Node::subscribe(ch.clone(), "blank", "").await;
    let empty = snap(&blank.next().await);
    assert!(empty.providers.is_empty());
    // Reconnecting changes nothing.
    drop(serving);
    let mut serving = Node::subscribe(ch.clone(), "serving", SERVED_ELSEWHERE).await;
    nothing_pushed(&mut serving).await;

    // The first admin change lifts the hold: the node gets the new version.
    admin
        .upsert_provider(with_token(provider_spec("sk-mock-secret-1"), ADMIN_TOKEN))
        .await
        .unwrap();
    let m = serving.next().await;
    let got = snap(&m);
    assert_eq!(got.providers[0].keys[0].secret, "sk-mock-secret-1");
    serving.ack(&m).await;
    node_listed(&mut admin, |n| {
        n.node_id == "serving" && n.applied_version == got.version && n.last_error.is_empty()
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn an_admin_change_that_publishes_nothing_lifts_the_hold_too() {
    let server = start().await;
    let ch = server.channel().await;
    let mut serving = Node::subscribe(ch.clone(), "serving", SERVED_ELSEWHERE).await;
    nothing_pushed(&mut serving).await;
    // A sign-in, or a stranger's throttled guesses, configure nothing.
    let signed_in = crate::db::identity::AuditRow {
        id: "audit-0".into(),
        action: "throttle".into(),
        object_kind: "session".into(),
        ..an_audit_entry()
    };
    server
        .db()
        .run(move |c| crate::db::identity::insert_audit(c, &[signed_in]))
        .await
        .unwrap();
    // Longer than the hold's 2 s look at the audit log.
    let nothing = tokio::time::timeout(Duration::from_millis(2500), serving.rx.message()).await;
    assert!(nothing.is_err(), "no push expected, got {nothing:?}");
    // An audited change that leaves the configuration empty (a provider
    // deleted, an empty configuration applied): the admin means it.
    let entry = an_audit_entry();
    server
        .db()
        .run(move |c| crate::db::identity::insert_audit(c, &[entry]))
        .await
        .unwrap();
    let empty = snap(&serving.next().await);
    assert!(empty.providers.is_empty() && empty.client_keys.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_database_an_admin_emptied_is_sent_to_every_node() {
    // Configured once, then emptied by an admin: the audit log says so.
    let t = temp_db();
    let entry = an_audit_entry();
    t.db.run(move |c| crate::db::identity::insert_audit(c, &[entry]))
        .await
        .unwrap();
    let server = start_on(t, |_| {}).await;
    let ch = server.channel().await;
    let mut serving = Node::subscribe(ch.clone(), "serving", SERVED_ELSEWHERE).await;
    let empty = snap(&serving.next().await);
    assert!(empty.providers.is_empty());
    assert_ne!(empty.version, SERVED_ELSEWHERE);
    server.stop().await;
}

#[test]
fn a_deleted_or_replaced_database_file_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aigw.db");
    std::fs::write(&path, b"one").unwrap();
    let opened = crate::server::file_id(&path).unwrap();
    assert_eq!(crate::server::database_file_moved(&path, opened), None);
    // Replaced: another file now has the name (the old one is kept open
    // so its inode cannot be reused).
    let keep = std::fs::File::open(&path).unwrap();
    let other = dir.path().join("other.db");
    std::fs::write(&other, b"two").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_eq!(
        crate::server::database_file_moved(&path, opened),
        Some("replaced")
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        crate::server::database_file_moved(&path, opened),
        Some("deleted")
    );
    drop(keep);
}
