//! What an upstream says back that the app must not get as it came: the
//! pool's secret quoted in an answer, an error event or an error sent with
//! `200`, and a stream passed through that ends before its finish.

use aigw_e2e::Fault;

use crate::harness::*;

fn stream_fault(body: String) -> Fault {
    Fault {
        stream_body: Some(body),
        ..Fault::default()
    }
}

fn answer_fault(body: String) -> Fault {
    Fault {
        status: Some(200),
        error_body: Some(body),
        ..Fault::default()
    }
}

fn anthropic_chat(stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

fn assert_no_secret(a: &Answer) {
    let text = String::from_utf8_lossy(&a.body);
    assert!(
        !text.contains(KEY_ONE),
        "the pool's secret reached the app: {text}"
    );
}

/// An error event that quotes the credential it was sent with reaches the
/// app without it, passed through (OpenAI app) or translated (Anthropic
/// app), and the trace says the stream broke off.
#[tokio::test]
async fn a_secret_quoted_in_a_stream_error_event_is_redacted() {
    let gw = Gw::start(&[]).await;
    let event = serde_json::json!({"error": {
        "message": format!("Incorrect API key provided: {KEY_ONE}"),
        "type": "invalid_request_error",
    }});
    let body = format!("data: {event}\n\n");

    gw.mock.mock().add_fault(stream_fault(body.clone()));
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    assert_eq!(a.status, 200);
    assert_no_secret(&a);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(
        text.contains("Incorrect API key provided: [redacted]"),
        "{text}"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream sent an error mid-stream");

    gw.mock.mock().add_fault(stream_fault(body));
    let a = read(gw.send(anthropic_post(&anthropic_chat(true))).await).await;
    assert_no_secret(&a);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

/// An answer that quotes the credential (a vendor's `200` with an error
/// text, a model repeating its prompt) reaches the app without it.
#[tokio::test]
async fn a_secret_quoted_in_a_whole_answer_is_redacted() {
    let gw = Gw::start(&[]).await;
    let answer = serde_json::json!({
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": format!("your key is {KEY_ONE}")}}],
    })
    .to_string();

    gw.mock.mock().add_fault(answer_fault(answer.clone()));
    let a = gw.post("/v1/chat/completions", chat("hi")).await;
    assert_eq!(a.status, 200);
    assert_no_secret(&a);
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        "your key is [redacted]"
    );

    gw.mock.mock().add_fault(answer_fault(answer));
    let a = read(gw.send(anthropic_post(&anthropic_chat(false))).await).await;
    assert_eq!(a.status, 200);
    assert_no_secret(&a);
    assert_eq!(a.json()["content"][0]["text"], "your key is [redacted]");
}

/// An error object sent with `200` (or an empty object) is not an answer:
/// translated for an app of another format it is an upstream failure in
/// that app's shape, not a finished, empty turn, and its message carries
/// no secret.
#[tokio::test]
async fn an_error_sent_with_200_is_an_upstream_failure_when_translated() {
    let gw = Gw::start(&[]).await;
    let error = serde_json::json!({"error": {
        "message": format!("Insufficient credits on {KEY_ONE}"), "code": 402,
    }});
    for (body, says) in [
        (error.to_string(), "Insufficient credits on [redacted]"),
        ("{}".to_string(), "no `choices`"),
    ] {
        gw.mock.mock().add_fault(answer_fault(body));
        let a = read(gw.send(anthropic_post(&anthropic_chat(false))).await).await;
        assert_eq!(a.status, 502, "{:?}", a.body);
        assert_no_secret(&a);
        let v = a.json();
        assert_eq!(v["type"], "error", "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{v}");
        let t = gw.cp.trace(&a.request_id()).await;
        assert_eq!(t.status, 502);
    }
}

/// An OpenAI chat stream passed through that the upstream ends before a
/// finish reason (and without `[DONE]`) ends with an error chunk, so the
/// app's SDK raises instead of returning half an answer as whole; one that
/// finishes without `[DONE]` (some vendors leave it out) is whole.
#[tokio::test]
async fn a_passed_through_stream_ended_before_its_finish_gets_an_error_chunk() {
    let gw = Gw::start(&[]).await;
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({
            "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let half = chunk(
        serde_json::json!({"role": "assistant", "content": "half an answ"}),
        serde_json::Value::Null,
    );
    gw.mock
        .mock()
        .add_fault(stream_fault(format!("data: {half}\n\n")));
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.contains("half an answ"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("data: {\"error\""), "{text}");
    assert!(
        last.contains("ended before the answer was complete"),
        "{text}"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream ended before its finish");

    let done = chunk(serde_json::json!({}), serde_json::json!("stop"));
    gw.mock
        .mock()
        .add_fault(stream_fault(format!("data: {half}\n\ndata: {done}\n\n")));
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(!text.contains("\"error\""), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "");
}

/// A Responses stream passed through that the upstream ends before
/// `response.completed` ends with an `error` event numbered after the
/// upstream's (the SDKs raise on it), and is traced as broken.
#[tokio::test]
async fn a_passed_through_responses_stream_cut_short_ends_with_an_error_event() {
    let gw = Gw::start(&[]).await;
    let created = serde_json::json!({
        "type": "response.created", "sequence_number": 0,
        "response": {"id": "resp_1", "object": "response", "status": "in_progress",
                     "model": "gpt-4o-mini", "output": []},
    });
    let delta = serde_json::json!({
        "type": "response.output_text.delta", "sequence_number": 1,
        "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "half an answ",
    });
    gw.mock.mock().add_fault(stream_fault(format!(
        "event: response.created\ndata: {created}\n\nevent: response.output_text.delta\ndata: {delta}\n\n"
    )));
    let body = serde_json::json!({"model": "gpt-4o-mini", "input": "hi", "stream": true});
    let a = gw.post("/v1/responses", body).await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.contains("half an answ"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("event: error\n"), "{text}");
    let data: serde_json::Value =
        serde_json::from_str(last.split_once("data: ").map_or("", |(_, d)| d)).expect("JSON");
    assert_eq!(data["type"], "error", "{data}");
    assert_eq!(data["sequence_number"], 2, "{data}");
    assert!(
        data["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ended before")),
        "{data}"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream ended before its finish");
}

/// A stream that is not made of events (here one JSON body sent for a
/// stream request) is searched chunk by chunk: a secret the upstream's
/// writes cut in two is still taken out, and nothing else is held back.
#[tokio::test]
async fn a_secret_cut_across_raw_stream_chunks_is_redacted() {
    let gw = Gw::start(&[]).await;
    let (head, tail) = KEY_ONE.split_at(6);
    gw.mock.mock().add_fault(Fault {
        stream_chunks: Some(vec![
            format!("{{\"error\":{{\"message\":\"bad key {head}"),
            format!("{tail} given\"}}}}"),
        ]),
        stream_content_type: Some("application/json".into()),
        chunk_delay_ms: Some(50),
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat_stream("hi")).await;
    assert_no_secret(&a);
    assert_eq!(
        String::from_utf8_lossy(&a.body),
        r#"{"error":{"message":"bad key [redacted] given"}}"#
    );
}
