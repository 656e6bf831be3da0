//! The planes' wire over TLS and mTLS, node credentials and master key
//! rotation, against the real server on 127.0.0.1:0 with certificates from
//! a test CA made here.

use std::path::{Path, PathBuf};

use aigw_proto::channel::{ClientTls, endpoint};
use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::{ListRequest, NameRequest, NodeCredentialSpec};
use aigw_proto::pb::config::Hello;
use aigw_proto::pb::config::config_service_client::ConfigServiceClient;
use aigw_proto::pb::config::node_message::Kind;
use aigw_proto::pb::trace::TraceBatch;
use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

use crate::grpc_tests::{
    ADMIN_TOKEN, NODE_TOKEN, Node, WAIT, as_node, msg, start_with, with_token,
};
use crate::server::ServerTls;

/// A CA, a server certificate for `localhost` and a client certificate,
/// written as PEM files into `dir`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (sc, sk) = leaf("localhost");
    let (cc, ck) = leaf("dp-1");
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &sc),
        server_key: write("server.key", &sk),
        client_cert: write("client.pem", &cc),
        client_key: write("client.key", &ck),
    }
}

async fn channel(url: &str, tls: &ClientTls) -> Result<Channel, tonic::transport::Error> {
    endpoint(url, tls).unwrap().connect().await
}

async fn list_providers(ch: Channel) -> Result<(), tonic::Status> {
    AdminServiceClient::new(ch)
        .list_providers(with_token(ListRequest {}, ADMIN_TOKEN))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn tls_refuses_plaintext_and_unknown_servers() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (cert, key) = (p.server_cert.clone(), p.server_key.clone());
    let server = start_with(|s| {
        s.tls = Some(ServerTls {
            cert,
            key,
            client_ca: None,
        })
    })
    .await;
    let trusted = ClientTls {
        ca_file: Some(p.ca.clone()),
        ..Default::default()
    };
    list_providers(channel(&server.url, &trusted).await.unwrap())
        .await
        .unwrap();
    // Plaintext to a TLS port gets nowhere.
    let plain = server.url.replace("https://localhost", "http://127.0.0.1");
    let refused = match channel(&plain, &ClientTls::default()).await {
        Err(_) => true,
        Ok(ch) => list_providers(ch).await.is_err(),
    };
    assert!(refused, "a plaintext client must not be served");
    // A client that does not trust the test CA refuses the server.
    assert!(channel(&server.url, &ClientTls::default()).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (cert, key, ca) = (p.server_cert.clone(), p.server_key.clone(), p.ca.clone());
    let server = start_with(|s| {
        s.tls = Some(ServerTls {
            cert,
            key,
            client_ca: Some(ca),
        })
    })
    .await;
    let without = ClientTls {
        ca_file: Some(p.ca.clone()),
        ..Default::default()
    };
    let refused = match channel(&server.url, &without).await {
        Err(_) => true,
        Ok(ch) => list_providers(ch).await.is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    let with = ClientTls {
        ca_file: Some(p.ca.clone()),
        cert_file: Some(p.client_cert.clone()),
        key_file: Some(p.client_key.clone()),
    };
    list_providers(channel(&server.url, &with).await.unwrap())
        .await
        .unwrap();
    server.stop().await;
}

/// Subscribes as `node_id` with `token`; returns the stream's first answer.
async fn subscribe(ch: Channel, token: &str, node_id: &str) -> Result<Node, tonic::Status> {
    let (tx, out) = mpsc::channel(8);
    tx.send(msg(Kind::Hello(Hello {
        node_id: node_id.into(),
        region: "claimed-region".into(),
        applied_version: String::new(),
        build: "test".into(),
    })))
    .await
    .unwrap();
    let mut rx = ConfigServiceClient::new(ch)
        .subscribe(as_node(ReceiverStream::new(out), token, node_id))
        .await?
        .into_inner();
    // The first message is the snapshot, or the refusal.
    let first = tokio::time::timeout(WAIT, rx.message()).await.unwrap()?;
    assert!(first.is_some());
    Ok(Node { tx, rx })
}

#[tokio::test]
async fn node_credentials_bind_identity_and_revocation_ends_streams_at_once() {
    let server = start_with(|_| {}).await;
    let ch = server.channel().await;
    let mut admin = AdminServiceClient::new(ch.clone());
    let made = admin
        .create_node_credential(with_token(
            NodeCredentialSpec {
                node_id: "dp-eu-1".into(),
                region: "eu".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    let token = made.token;
    assert!(token.starts_with("aigw-n-"));
    // Listed without the token.
    let listed = admin
        .list_node_credentials(with_token(ListRequest {}, ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 1);
    assert!(!listed.credentials[0].token_hint.contains(&token[8..]));

    // It serves its own node; another id is refused; the join token cannot
    // take the bound id.
    let mut own = subscribe(ch.clone(), &token, "dp-eu-1").await.unwrap();
    let e = subscribe(ch.clone(), &token, "dp-us-1")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let e = subscribe(ch.clone(), NODE_TOKEN, "dp-eu-1")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let mut other = subscribe(ch.clone(), NODE_TOKEN, "dp-other").await.unwrap();
    // The node list shows the authenticated region, not the claimed one.
    let nodes = admin
        .list_nodes(with_token(ListRequest {}, ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner()
        .nodes;
    let eu = nodes.iter().find(|n| n.node_id == "dp-eu-1").unwrap();
    assert_eq!(eu.region, "eu");

    // Revoked: the open stream ends within a second, new ones are refused,
    // the other node keeps its stream.
    let t = std::time::Instant::now();
    admin
        .revoke_node_credential(with_token(
            NameRequest {
                name: "dp-eu-1".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let ended = tokio::time::timeout(WAIT, own.rx.message()).await.unwrap();
    assert_eq!(ended.err().map(|e| e.code()), Some(Code::Unauthenticated));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    let e = subscribe(ch.clone(), &token, "dp-eu-1")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), other.rx.message())
            .await
            .is_err(),
        "the other node's stream stays open and quiet"
    );
    drop(other.tx);
    server.stop().await;
}

#[tokio::test]
async fn traces_are_stored_under_the_authenticated_node() {
    let server = start_with(|s| s.node_token = None).await;
    let ch = server.channel().await;
    let token = AdminServiceClient::new(ch.clone())
        .create_node_credential(with_token(
            NodeCredentialSpec {
                node_id: "dp-eu-1".into(),
                region: "eu".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    // Without a join token configured, the old shared token is refused.
    let e = TraceServiceClient::new(ch.clone())
        .report(as_node(
            tokio_stream::iter(Vec::<TraceBatch>::new()),
            NODE_TOKEN,
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let (tx, out) = mpsc::channel(4);
    let mut acks = TraceServiceClient::new(ch)
        .report(as_node(ReceiverStream::new(out), &token, "dp-eu-1"))
        .await
        .unwrap()
        .into_inner();
    let mut lying = crate::ingest::tests::record("r-lie");
    lying.node_id = "someone-else".into();
    lying.region = "us".into();
    tx.send(TraceBatch {
        seq: 1,
        records: vec![lying],
    })
    .await
    .unwrap();
    let ack = tokio::time::timeout(WAIT, acks.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ack.stored, 1);
    let row = server
        .db()
        .run(|c| crate::db::traces::get(c, "r-lie"))
        .await
        .unwrap();
    assert_eq!(
        (row.node_id.as_str(), row.region.as_str()),
        ("dp-eu-1", "eu")
    );
    drop(tx);
    server.stop().await;
}
