//! A stream the upstream opens with an overload or rate-limit event is the
//! failure a `529`, `500` or `429` status is: the next credential is tried,
//! and when none serves the app gets that status in its own format (which
//! its SDK retries), not a `200` whose stream breaks at once.

use aigw_e2e::Fault;

use crate::harness::*;

fn opening_with(key: &str, event: &str) -> Fault {
    Fault {
        key: Some(key.into()),
        stream_body: Some(event.into()),
        ..Fault::default()
    }
}

const SERVER_ERROR: &str =
    "data: {\"error\":{\"message\":\"The server is busy\",\"type\":\"server_error\"}}\n\n";
const OVERLOADED: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

#[tokio::test]
async fn a_stream_opening_with_a_server_error_moves_to_the_next_credential() {
    let gw = Gw::start(&[]).await;
    gw.mock
        .mock()
        .add_fault(opening_with(KEY_ONE, SERVER_ERROR));
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(!text.contains("busy") && text.contains("[DONE]"), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    let tried: Vec<_> = t
        .attempts
        .iter()
        .map(|a| (a.provider_key.as_str(), a.status))
        .collect();
    assert_eq!(tried, [("one", 500), ("two", 200)]);
    assert!(t.error.is_empty(), "{}", t.error);
}

#[tokio::test]
async fn an_overloaded_stream_is_a_529_for_an_anthropic_app_and_a_503_for_others() {
    let gw = Gw::start(&[]).await;
    let key = "sk-ant-upstream-main";
    gw.mock.mock().add_fault(opening_with(key, OVERLOADED));
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 529, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["type"], "error");
    assert_eq!(a.json()["error"]["type"], "overloaded_error");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.status, 529);

    gw.mock.mock().add_fault(opening_with(key, OVERLOADED));
    let mut chat = chat_stream("hi");
    chat["model"] = "claude-sonnet-4-5".into();
    let a = gw.post("/v1/chat/completions", chat).await;
    assert_eq!(a.status, 503, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["error"]["message"].is_string(), "{:?}", a.json());
}

/// An error about the request itself, or an ordinary first event, goes on
/// to the app as the upstream sent it.
#[tokio::test]
async fn other_first_events_go_on_as_they_came() {
    let gw = Gw::start(&[]).await;
    let invalid =
        "data: {\"error\":{\"message\":\"bad tool\",\"type\":\"invalid_request_error\"}}\n\n";
    gw.mock.mock().add_fault(opening_with(KEY_ONE, invalid));
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    assert_eq!(a.status, 200);
    assert!(String::from_utf8_lossy(&a.body).contains("bad tool"));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.attempts.len(), 1);
}

/// A stream cut before its first chunk is a cut stream, as it was before
/// the head waited for that chunk (the read-ahead keeps the error).
#[tokio::test]
async fn a_stream_cut_before_its_first_chunk_is_traced_as_cut() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        cut_after_chunks: Some(0),
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream cut", "{t:?}");
}
