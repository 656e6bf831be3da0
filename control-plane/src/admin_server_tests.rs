//! The Admin API over the wire, on a real server on 127.0.0.1:0: every RPC
//! in the descriptor set called as each role (and without a token), proving
//! each handler enforces its own rule; ownership between two members; and a
//! revoked client key leaving a data plane's snapshot within a second.

use std::time::{Duration, Instant};

use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::identity_service_client::IdentityServiceClient;
use aigw_proto::pb::admin::insight_service_client::InsightServiceClient;
use aigw_proto::pb::admin::{
    ClientKeySpec, CreateApiTokenRequest, CreateUserRequest, GetTraceRequest, ListRequest,
    LoginRequest, NameRequest, TraceQuery, UpdateUserRequest,
};
use aigw_proto::pb::trace::TraceBatch;
use aigw_proto::pb::trace::trace_service_client::TraceServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::admin::rbac::tests::{ROLE_ORDER, admin_methods, expected};
use crate::grpc_tests::{ADMIN_TOKEN, NODE_TOKEN, Node, Running, as_node, snap, start, with_token};

/// Calls `method` with an empty request message (every field at its
/// default: `ListRequest` has none, so it encodes as any request's default),
/// decoding whatever comes back as one too (unknown fields are skipped).
async fn call(ch: &Channel, method: &str, token: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let req = match token {
        Some(t) => with_token(ListRequest {}, t),
        None => Request::new(ListRequest {}),
    };
    let codec = tonic_prost::ProstCodec::<ListRequest, ListRequest>::default();
    let path = PathAndQuery::try_from(method).unwrap();
    if !server_streaming(method) {
        return grpc.unary(req, path, codec).await.map(|_| ());
    }
    // A stream (the live overview) may never end: its first message, or
    // the error it starts with, is the answer.
    let mut stream = grpc.server_streaming(req, path, codec).await?.into_inner();
    stream.message().await.map(|_| ())
}

/// Whether the descriptor set declares `method` (`/pkg.Service/Method`)
/// as answering with a stream.
fn server_streaming(method: &str) -> bool {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(aigw_proto::FILE_DESCRIPTOR_SET).unwrap();
    fds.file.iter().any(|f| {
        f.service.iter().any(|svc| {
            svc.method.iter().any(|m| {
                m.server_streaming()
                    && method == format!("/{}.{}/{}", f.package(), svc.name(), m.name())
            })
        })
    })
}

/// Creates a user with `role`, logs in, and returns an API token the user
/// made with their own role (a session would end at the Logout call).
async fn token_for(ch: &Channel, name: &str, role: &str) -> String {
    let mut id = IdentityServiceClient::new(ch.clone());
    let password = format!("{name}-password-1");
    id.create_user(with_token(
        CreateUserRequest {
            username: name.into(),
            password: password.clone(),
            role: role.into(),
        },
        ADMIN_TOKEN,
    ))
    .await
    .unwrap();
    let session = id
        .login(LoginRequest {
            username: name.into(),
            password,
        })
        .await
        .unwrap()
        .into_inner()
        .session_token;
    id.create_api_token(with_token(
        CreateApiTokenRequest {
            name: format!("{name}-token"),
            role: String::new(),
            expires_at_ms: 0,
        },
        &session,
    ))
    .await
    .unwrap()
    .into_inner()
    .token
}

#[tokio::test]
async fn every_rpc_enforces_its_rule_over_the_wire() {
    let server: Running = start().await;
    let ch = server.channel().await;
    let mut tokens = Vec::new();
    for role in ROLE_ORDER {
        tokens.push(token_for(&ch, &format!("{role}-user"), role.as_str()).await);
    }
    let methods = admin_methods();
    let table = expected();
    assert_eq!(table.len(), methods.len());
    for (method, cells) in table {
        let short = method.trim_start_matches("/aigw.admin.v1.");
        let public = crate::admin::rbac::public_methods()
            .iter()
            .any(|m| *m == method || *m == short);
        for (r, role) in ROLE_ORDER.into_iter().enumerate() {
            let got = call(&ch, &method, Some(&tokens[r])).await;
            let allowed = cells[r][2];
            match got {
                Err(s) if !allowed => {
                    assert_eq!(s.code(), Code::PermissionDenied, "{role} × {short}: {s:?}");
                    // The handler checked its own method's rule.
                    assert!(s.message().contains(short), "{role} × {short}: {s:?}");
                }
                Ok(()) if !allowed => panic!("{role} × {short}: allowed, expected refused"),
                Err(s) if short == "IdentityService/Login" => {
                    // Public: the token is ignored, the credentials are empty.
                    assert_eq!(s.message(), "invalid username or password");
                }
                Err(s) if public => {
                    // A sign-in call: an empty request is a failed sign-in,
                    // never a missing token or a refused role.
                    assert!(
                        !s.message().contains("missing authorization")
                            && !s.message().contains("may not call"),
                        "{role} × {short}: {s:?}"
                    );
                }
                Err(s) => {
                    // Allowed: an empty request may be invalid or name
                    // nothing, but the role itself was not refused.
                    assert_ne!(s.code(), Code::Unauthenticated, "{role} × {short}: {s:?}");
                    assert!(
                        !(s.code() == Code::PermissionDenied
                            && s.message().contains("may not call")),
                        "{role} × {short}: {s:?}"
                    );
                }
                Ok(()) => {}
            }
        }
        // Without a token only the public calls answer (Login, which wants
        // credentials, and the sign-in page's calls); every other one asks
        // for a token.
        let anon = call(&ch, &method, None).await;
        if short == "IdentityService/Login" {
            let e = anon.expect_err("anonymous Login with no credentials answered");
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
            assert_eq!(e.message(), "invalid username or password");
        } else if public {
            if let Err(e) = anon {
                assert!(
                    !e.message().contains("missing authorization"),
                    "anonymous × {short}: {e:?}"
                );
            }
        } else {
            let e = anon.expect_err(&format!("anonymous × {short} answered"));
            assert_eq!(e.code(), Code::Unauthenticated, "anonymous × {short}");
            assert!(e.message().contains("missing authorization"), "{e:?}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn members_own_their_keys_and_traces_over_the_wire() {
    let server = start().await;
    let ch = server.channel().await;
    let ann = token_for(&ch, "ann", "member").await;
    let ben = token_for(&ch, "ben", "member").await;
    let viewer = token_for(&ch, "vi", "viewer").await;
    let mut admin = AdminServiceClient::new(ch.clone());
    admin
        .upsert_client_key(with_token(
            ClientKeySpec {
                name: "ann-app".into(),
                ..Default::default()
            },
            &ann,
        ))
        .await
        .unwrap();
    let mine = admin
        .list_client_keys(with_token(ListRequest {}, &ann))
        .await
        .unwrap()
        .into_inner();
    let key_id = mine.client_keys[0].id.clone();
    assert_eq!(mine.client_keys[0].owner, "ann");
    let theirs = admin
        .list_client_keys(with_token(ListRequest {}, &ben))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.client_keys.is_empty());
    let e = admin
        .revoke_client_key(with_token(
            NameRequest {
                name: "ann-app".into(),
            },
            &ben,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // A trace of Ann's key, delivered as a data plane does.
    let mut record = crate::ingest::tests::record("ann-req-1");
    record.client_key_id = key_id;
    record.client_key_name = "ann-app".into();
    let (tx, out) = mpsc::channel(1);
    let mut acks = TraceServiceClient::new(ch.clone())
        .report(as_node(ReceiverStream::new(out), NODE_TOKEN, "n1"))
        .await
        .unwrap()
        .into_inner();
    tx.send(TraceBatch {
        seq: 1,
        records: vec![record],
    })
    .await
    .unwrap();
    assert_eq!(acks.message().await.unwrap().unwrap().stored, 1);
    let mut insight = InsightServiceClient::new(ch.clone());
    let get = |token: &str| {
        with_token(
            GetTraceRequest {
                request_id: "ann-req-1".into(),
            },
            token,
        )
    };
    insight.get_trace(get(&ann)).await.unwrap();
    insight.get_trace(get(&viewer)).await.unwrap();
    let e = insight.get_trace(get(&ben)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let listed = insight
        .list_traces(with_token(TraceQuery::default(), &ben))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.traces.is_empty());

    // Ben cannot raise his role, nor mint a token above it.
    let mut id = IdentityServiceClient::new(ch.clone());
    let e = id
        .update_user(with_token(
            UpdateUserRequest {
                username: "ben".into(),
                role: Some("admin".into()),
                ..Default::default()
            },
            &ben,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = id
        .create_api_token(with_token(
            CreateApiTokenRequest {
                name: "up".into(),
                role: "operator".into(),
                expires_at_ms: 0,
            },
            &ben,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_key_leaves_the_data_planes_snapshot_within_a_second() {
    let server = start().await;
    let ch = server.channel().await;
    let mut node = Node::subscribe(ch.clone(), "node-r", "").await;
    let first = node.next().await;
    node.ack(&first).await;
    let mut admin = AdminServiceClient::new(ch.clone());
    admin
        .upsert_client_key(with_token(
            ClientKeySpec {
                name: "app".into(),
                key: "sk-aigw-revoke-me-0123456789".into(),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap();
    let with_key = node.next().await;
    assert_eq!(snap(&with_key).client_keys.len(), 1);
    node.ack(&with_key).await;

    let t0 = Instant::now();
    let r = admin
        .revoke_client_key(with_token(NameRequest { name: "app".into() }, ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(r.revoked);
    let without = tokio::time::timeout(Duration::from_secs(1), node.rx.message())
        .await
        .expect("no snapshot within a second of the revocation")
        .unwrap()
        .unwrap();
    assert!(snap(&without).client_keys.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(1));
    server.stop().await;
}

/// A stranger's call is refused from its headers alone: the server does
/// not wait for (or buffer, or decode) a message it would throw away. The
/// body here never ends; without the gate the call would hang until the
/// server's 600 s unary timeout. With a token, the same path is served.
/// And the public calls (Login) take small messages only.
#[tokio::test]
async fn strangers_are_refused_before_their_message_is_read() {
    let server: Running = start().await;
    let ch = server.channel().await;
    for method in [
        "/aigw.admin.v1.AdminService/ListProviders",
        "/aigw.admin.v1.InsightService/ListTraces",
        "/aigw.admin.v1.ConfigFileService/ExportConfig",
        "/aigw.admin.v1.OverviewService/GetOverview",
    ] {
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        // Held open: the body's one message never comes.
        let (_held, rx) = mpsc::channel::<ListRequest>(1);
        let mut req = Request::new(ReceiverStream::new(rx));
        req.metadata_mut()
            .insert("authorization", "Bearer not-a-token".parse().unwrap());
        let codec = tonic_prost::ProstCodec::<ListRequest, ListRequest>::default();
        let path = PathAndQuery::try_from(method).unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            grpc.client_streaming(req, path, codec),
        )
        .await
        .unwrap_or_else(|_| panic!("{method}: no answer before the message came"));
        let status = answer.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{method}: {status:?}");
    }
    call(
        &ch,
        "/aigw.admin.v1.AdminService/ListProviders",
        Some(ADMIN_TOKEN),
    )
    .await
    .expect("a caller with a token is served");

    let mut id = IdentityServiceClient::new(ch.clone());
    let huge = id
        .login(LoginRequest {
            username: "someone".into(),
            password: "x".repeat(100 * 1024),
        })
        .await
        .expect_err("a 100 KiB login is refused");
    assert_eq!(huge.code(), Code::OutOfRange, "{huge:?}");
}
