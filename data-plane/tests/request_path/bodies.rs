//! The node's bound on request bytes held at once
//! (`AIGW_MAX_BODY_BYTES_IN_FLIGHT`), as apps see it.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::Frame;
use http_body_util::StreamBody;
use tokio_stream::wrappers::ReceiverStream;
use tower::ServiceExt;

use crate::harness::{APP_KEY, Gw, chat, read};

#[tokio::test]
async fn past_the_bound_on_bodies_held_a_request_is_told_to_retry() {
    let gw = Gw::start(&[
        "--max-body-bytes",
        "65536",
        "--max-body-bytes-in-flight",
        "65536",
    ])
    .await;
    let text = "word ".repeat(8_000);
    let whole = chat(&text).to_string();
    let (head, tail) = whole.as_bytes().split_at(whole.len() - 10);

    // An app sends 40 KB of its body, then pauses.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    tx.send(Ok(Frame::data(Bytes::copy_from_slice(head))))
        .await
        .expect("body part");
    let slow = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {APP_KEY}"))
        .header("content-type", "application/json")
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .expect("request");
    let svc = gw.svc.clone();
    let pending = tokio::spawn(async move {
        match svc.oneshot(slow).await {
            Ok(r) => read(r).await,
            Err(never) => match never {},
        }
    });

    // Once the node holds it, another 40 KB body would take the node past
    // 64 KiB: 503, retry soon, in the app's format.
    for _ in 0..500 {
        if gw.node.state.bodies.used() >= head.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.node.state.bodies.used(), head.len());
    let refused = gw.post("/v1/chat/completions", chat(&text)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], "overloaded");
    assert_eq!(refused.json()["error"]["type"], "server_error");

    // The first body ends: it is answered, and the node takes bodies again.
    tx.send(Ok(Frame::data(Bytes::copy_from_slice(tail))))
        .await
        .expect("body end");
    drop(tx);
    let first = pending.await.expect("first request");
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(gw.node.state.bodies.used(), 0);
    let again = gw.post("/v1/chat/completions", chat(&text)).await;
    assert_eq!(again.status, 200);
}
