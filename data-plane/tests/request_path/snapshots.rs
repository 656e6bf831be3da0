//! Snapshot swap and NACK: a node serves its previous snapshot or the new
//! one, never a mix, and refuses an invalid one whole, keeping the old.

use aigw_proto::pb::config::node_message::Kind;
use http::Request;
use http_body_util::Full;

use crate::harness::*;

async fn get(gw: &Gw, path: &str) -> Answer {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {APP_KEY}"))
        .body(Full::default())
        .expect("request");
    read(gw.send(req).await).await
}

#[tokio::test]
async fn without_a_snapshot_the_node_is_not_ready_and_says_when_to_retry() {
    let gw = Gw::bare(&[]).await;
    assert_eq!(get(&gw, "/readyz").await.status, 503);
    let a = gw.post("/v1/chat/completions", chat("hi")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert!(a.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn snapshots_are_acked_swapped_whole_or_nacked_keeping_the_old() {
    let gw = Gw::bare(&[]).await;
    gw.node.follow_control_plane();
    gw.cp.push(snapshot(&gw.mock.base_url(), "v1"), "n1").await;
    let acked = gw
        .cp
        .wait(|s| {
            lock_replies(s).into_iter().find_map(|k| match k {
                Kind::Ack(a) => Some(a),
                _ => None,
            })
        })
        .await;
    assert_eq!((acked.version.as_str(), acked.nonce.as_str()), ("v1", "n1"));
    assert_eq!(get(&gw, "/readyz").await.body, "ready v1\n");
    assert_eq!(gw.post("/v1/chat/completions", chat("a")).await.status, 200);

    // Invalid: refused whole, with the reason and the version kept.
    let mut bad = snapshot(&gw.mock.base_url(), "v2");
    bad.providers[1].kind = "carrier-pigeon".into();
    gw.cp.push(bad, "n2").await;
    let nacked = gw
        .cp
        .wait(|s| {
            lock_replies(s).into_iter().find_map(|k| match k {
                Kind::Nack(n) => Some(n),
                _ => None,
            })
        })
        .await;
    assert_eq!(
        (nacked.version.as_str(), nacked.nonce.as_str()),
        ("v2", "n2")
    );
    assert_eq!(nacked.kept_version, "v1");
    assert!(nacked.error.contains("carrier-pigeon"), "{}", nacked.error);
    assert_eq!(get(&gw, "/readyz").await.body, "ready v1\n");
    assert_eq!(gw.post("/v1/chat/completions", chat("b")).await.status, 200);

    // Valid again, without the app's key: swapped whole, the key is gone.
    let mut v3 = snapshot(&gw.mock.base_url(), "v3");
    v3.client_keys.clear();
    gw.cp.push(v3, "n3").await;
    gw.cp
        .wait(|s| {
            lock_replies(s)
                .into_iter()
                .any(|k| matches!(k, Kind::Ack(a) if a.version == "v3"))
                .then_some(())
        })
        .await;
    assert_eq!(get(&gw, "/readyz").await.body, "ready v3\n");
    let refused = gw.post("/v1/chat/completions", chat("c")).await;
    assert_eq!(refused.status, 401);
}

#[tokio::test]
async fn a_restarted_node_serves_its_disk_copy_at_once() {
    let gw = Gw::bare(&[]).await;
    gw.node.follow_control_plane();
    gw.cp.push(snapshot(&gw.mock.base_url(), "v1"), "n1").await;
    gw.cp
        .wait(|s| {
            lock_replies(s)
                .iter()
                .any(|k| matches!(k, Kind::Ack(_)))
                .then_some(())
        })
        .await;
    let Gw {
        mock, node, dir, ..
    } = gw;
    node.stop().await;
    // The same state dir, and a control plane that is not there.
    let node = restart(dir.path(), "http://127.0.0.1:9");
    let svc = node.service();
    let resp = tower::ServiceExt::oneshot(svc, post("/v1/chat/completions", &chat("again")))
        .await
        .unwrap_or_else(|never| match never {});
    let a = read(resp).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    drop(mock);
}

fn lock_replies(s: &crate::control_plane::Seen) -> Vec<Kind> {
    crate::control_plane::lock(&s.replies).clone()
}
