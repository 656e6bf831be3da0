//! The metered stream: events pass as they arrive, usage is read on the
//! way, and the trace is filed however the stream ends (cleanly, cut by
//! the upstream, stalled, or dropped by the app).

use std::time::Duration;

use aigw_e2e::Fault;
use aigw_proto::pb::trace::TraceRecord;
use http_body_util::BodyExt;

use crate::harness::*;

#[tokio::test]
async fn a_stream_passes_through_and_is_metered() {
    let gw = Gw::start(&[]).await;
    let a = gw
        .post("/v1/chat/completions", chat_stream("stream please"))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // The app asked for usage, so the usage chunk is kept.
    assert!(text.contains("\"usage\":{"), "{text}");
    let (prompt, completion) = mock_usage(&gw);
    let t = gw.cp.trace(&a.request_id()).await;
    assert!(t.stream);
    assert_eq!((t.status, t.error.as_str()), (200, ""));
    assert_eq!((t.input_tokens, t.output_tokens), (prompt, completion));
    assert!((t.cost - cost(prompt, completion)).abs() < 1e-12);
    assert!(t.ttfb_us > 0 && t.ttfb_us <= t.latency_us);
}

#[tokio::test]
async fn a_stream_translated_for_an_anthropic_app_is_metered() {
    let gw = Gw::start(&[]).await;
    let a = anthropic_stream(&gw, "gpt-4o-mini", "translate me").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let start = text.find("event: message_start").expect("message_start");
    let delta = text
        .find("event: content_block_delta")
        .expect("a text delta");
    let stop = text.find("event: message_stop").expect("message_stop");
    assert!(start < delta && delta < stop, "{text}");
    let (prompt, completion) = mock_usage(&gw);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!((t.input_tokens, t.output_tokens), (prompt, completion));
    assert_eq!(t.api_format, "anthropic");
}

#[tokio::test]
async fn an_upstream_cut_is_delivered_after_the_events_before_it() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        cut_after_chunks: Some(2),
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat_stream("cut me")).await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    // The events that arrived before the cut reached the app first, then
    // OpenAI's own error chunk, which its SDK raises (a torn-down body
    // reads as a network failure, which some clients do not survive).
    let cut = text
        .find("data: {\"error\"")
        .expect("the stream ends with an error chunk");
    assert_eq!(text[..cut].matches("data: {").count(), 2, "{text}");
    assert!(text[cut..].contains("upstream connection broke"), "{text}");
    assert!(!text.contains("<error:"), "the body ends cleanly: {text}");
    assert!(!text.contains("[DONE]"));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream cut");
    assert_eq!(t.status, 200);
    // Cut before the usage chunk: not free. The prompt is estimated and
    // the two content chunks streamed are charged.
    assert_eq!(t.usage_source, "estimated_broken");
    assert!(t.input_tokens > 0, "{t:?}");
    assert_eq!(t.output_tokens, 2, "{t:?}");
    assert!(t.cost > 0.0);
}

#[tokio::test]
async fn a_stalled_upstream_is_given_up_after_the_idle_timeout() {
    let gw = Gw::start(&["--stream-idle-timeout-secs", "1"]).await;
    gw.mock.mock().add_fault(Fault {
        chunk_delay_ms: Some(1_500),
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat_stream("stall")).await;
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(
        text.contains("data: {\"error\"") && text.contains("the upstream sent nothing for 1 s"),
        "{text}"
    );
    assert!(!text.contains("<error:"), "the body ends cleanly: {text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream stalled");
}

/// An upstream event that never ends is not buffered past the bound: the
/// app gets the events before it, then the error, and the trace says why.
#[tokio::test]
async fn an_endless_upstream_event_ends_the_stream_at_the_bound() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        cut_after_chunks: Some(2),
        endless_event_bytes: Some(data_plane::sse::MAX_EVENT + 256 * 1024),
        ..Fault::default()
    });
    let a = gw
        .post("/v1/chat/completions", chat_stream("endless"))
        .await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let err = text
        .find("data: {\"error\"")
        .expect("the stream ends with the error");
    assert!(text[err..].contains("upstream event too large"), "{text}");
    assert!(!text.contains("<error:"), "the body ends cleanly: {text}");
    assert_eq!(
        text[..err].matches("data: {").count(),
        2,
        "{}",
        &text[..err]
    );
    assert!(!text.contains("data: aaa"), "no part of the endless event");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(
        (t.status, t.error.as_str()),
        (200, "upstream event too large")
    );
}

/// An upstream that ignores `include_usage` (as some OpenAI-compatible
/// vendors do) does not make the stream free: it is charged an estimate,
/// and the trace says so.
#[tokio::test]
async fn a_stream_without_any_usage_report_is_charged_an_estimate() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        omit_usage: true,
        ..Fault::default()
    });
    let a = gw
        .post("/v1/chat/completions", chat_stream("no usage"))
        .await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"usage\":{"), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!((t.status, t.error.as_str()), (200, ""));
    assert_eq!(t.usage_source, "estimated_unreported", "{t:?} {text}");
    assert!(t.input_tokens > 0 && t.output_tokens > 0, "{t:?}");
    assert!(t.cost > 0.0);
}

/// A translated stream naming more tool calls than any answer has is ended
/// at the bound: the formats keep state per call, looked up per event.
#[tokio::test]
async fn a_stream_with_too_many_tool_calls_is_ended() {
    let gw = Gw::start(&[]).await;
    let mut body = String::new();
    for i in 0..300 {
        let chunk = serde_json::json!({
            "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"tool_calls": [{
                "index": i, "id": format!("call_{i}"), "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]}}],
        });
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    gw.mock.mock().add_fault(Fault {
        stream_body: Some(body),
        ..Fault::default()
    });
    let a = anthropic_stream(&gw, "gpt-4o-mini", "call tools").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    // Anthropic's own error event, which its SDK raises.
    assert!(
        text.trim_end().ends_with("upstream stream too large\"}}") && text.contains("event: error"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    // The calls before the bound reached the app, not one more.
    assert_eq!(text.matches("\"type\":\"tool_use\"").count(), 256);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream too large");
}

/// A translated stream the upstream ends without its finish was cut short:
/// the app is told so in its format, and the trace says so.
#[tokio::test]
async fn a_translated_stream_ended_before_its_finish_is_broken() {
    let gw = Gw::start(&[]).await;
    let chunk = serde_json::json!({
        "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "half an answ"}}],
    });
    gw.mock.mock().add_fault(Fault {
        stream_body: Some(format!("data: {chunk}\n\ndata: [DONE]\n\n")),
        ..Fault::default()
    });
    let a = anthropic_stream(&gw, "gpt-4o-mini", "hi").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.contains("half an answ"), "{text}");
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream ended before its finish");
}

/// Streams a chat request that the mock answers with `body` as one JSON
/// document (a vendor that ignores `stream: true`); returns the answer and
/// its trace.
async fn one_json_body_for_a_stream(gw: &Gw, body: &str) -> aigw_proto::pb::trace::TraceRecord {
    gw.mock.mock().add_fault(Fault {
        stream_body: Some(body.into()),
        stream_content_type: Some("application/json".into()),
        ..Fault::default()
    });
    let a = read(
        gw.send(post("/v1/chat/completions", &chat_stream("one body")))
            .await,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, body.as_bytes(), "relayed as it came");
    gw.cp.trace(&a.request_id()).await
}

/// A vendor that answers a stream request with one JSON body: charged the
/// usage it reports, else by its bytes, not as free.
#[tokio::test]
async fn a_stream_answered_without_events_is_charged_its_usage_or_its_bytes() {
    let gw = Gw::start(&[]).await;
    let answer = format!(
        r#"{{"id":"x","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}]}}"#,
        "word ".repeat(400)
    );
    let t = one_json_body_for_a_stream(&gw, &answer).await;
    assert_eq!(t.usage_source, "estimated_unreported");
    assert_eq!(t.output_tokens, answer.len().div_ceil(4) as u64, "{t:?}");

    let reported = r#"{"id":"y","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}"#;
    let t = one_json_body_for_a_stream(&gw, reported).await;
    assert_eq!((t.input_tokens, t.output_tokens), (11, 3), "{t:?}");
}

/// One OpenAI chunk of a streamed chat answer, as an SSE event.
fn chunk(body: serde_json::Value) -> String {
    let mut c = serde_json::json!({
        "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini", "choices": [],
    });
    if let (Some(c), Some(b)) = (c.as_object_mut(), body.as_object()) {
        c.extend(b.clone());
    }
    format!("data: {c}\n\n")
}

fn text_chunk(text: &str) -> String {
    chunk(serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]}))
}

/// Streams `pieces` (one every `gap_ms`), reads the answer until a frame
/// holds `until`, then leaves; the trace the stream was filed with.
async fn leave_at(gw: &Gw, pieces: Vec<String>, gap_ms: u64, until: &str) -> TraceRecord {
    gw.mock.mock().add_fault(Fault {
        stream_chunks: Some(pieces),
        chunk_delay_ms: Some(gap_ms),
        ..Fault::default()
    });
    let resp = gw
        .send(post("/v1/chat/completions", &chat_stream("leave early")))
        .await;
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id")
        .to_string();
    let mut body = resp.into_body();
    let mut read = String::new();
    while !read.contains(until) {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event")
            .expect("a frame")
            .expect("data");
        let data = frame.into_data().expect("data");
        read.push_str(&String::from_utf8_lossy(&data));
    }
    assert!(!read.contains("[DONE]"), "left before the end: {read}");
    drop(body);
    gw.cp.trace(&request_id).await
}

/// An app that leaves mid-answer, while the provider has more than a
/// moment of it left to send: the connection is closed (the provider stops
/// generating), and what it did not report is estimated.
#[tokio::test]
async fn a_stream_the_app_drops_is_filed_and_charged_as_estimated() {
    let gw = Gw::start(&[]).await;
    let pieces = vec![
        text_chunk("the first words"),
        text_chunk(" and more"),
        text_chunk(" and more"),
        text_chunk(" and more"),
        chunk(serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        "data: [DONE]\n\n".to_string(),
    ];
    let t = leave_at(&gw, pieces, 700, "the first words").await;
    assert_eq!(t.error, "client closed the stream early");
    assert_eq!(t.usage_source, "estimated_abandoned");
    // The prompt is charged (estimated), and the output seen so far.
    assert!(t.input_tokens > 0 && t.output_tokens > 0, "{t:?}");
    assert!(t.cost > 0.0);
}

/// An app that leaves right after the answer's finish, before OpenAI's
/// usage chunk: the rest is read for the usage, so the hidden reasoning
/// the provider bills is charged, not an estimate from the visible text
/// (which would let an app dodge its budgets by hanging up early).
#[tokio::test]
async fn a_stream_the_app_leaves_after_its_finish_is_charged_its_reported_usage() {
    let gw = Gw::start(&[]).await;
    let usage = serde_json::json!({
        "prompt_tokens": 1000, "completion_tokens": 20300, "total_tokens": 21300,
        "completion_tokens_details": {"reasoning_tokens": 20000},
    });
    let pieces = vec![
        text_chunk("Paris."),
        chunk(serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        chunk(serde_json::json!({"usage": usage})),
        "data: [DONE]\n\n".to_string(),
    ];
    let t = leave_at(&gw, pieces, 200, "\"finish_reason\":\"stop\"").await;
    assert_eq!(t.error, "client closed the stream early");
    assert_eq!(t.usage_source, "", "the provider's own report");
    assert_eq!((t.input_tokens, t.output_tokens), (1000, 20300), "{t:?}");
    assert_eq!(t.reasoning_tokens, 20000);
    assert!((t.cost - cost(1000, 20300)).abs() < 1e-12, "{t:?}");
}

/// An app that hangs up while its whole (non-streamed) answer is being
/// made: the request is traced, and charged the reservation's estimate
/// (the provider may have made all of it), not nothing.
#[tokio::test]
async fn a_whole_answer_the_app_leaves_is_traced_and_charged() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        delay_ms: Some(400),
        ..Fault::default()
    });
    let mut body = chat("slow, and the app leaves");
    body["max_tokens"] = 300.into();
    body["n"] = 2.into();
    let left = tokio::time::timeout(
        Duration::from_millis(150),
        gw.send(post("/v1/chat/completions", &body)),
    )
    .await;
    assert!(left.is_err(), "the answer came before the app left");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let t = loop {
        if let Some(t) = gw.cp.records().into_iter().find(|r| r.status == 499) {
            break t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no trace of the request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(t.error, "client closed the connection early");
    assert_eq!(t.usage_source, "estimated_abandoned");
    assert!(t.input_tokens > 0, "{t:?}");
    assert_eq!(t.output_tokens, 600, "the cap for each of the two answers");
    assert!(t.cost > 0.0);
}

/// An upstream that cuts the connection after its closing event has told
/// the app how the answer ends: the app's whole answer ends cleanly, with
/// no error event after it (its SDK would fail the finished answer).
#[tokio::test]
async fn a_cut_after_the_closing_event_adds_no_error() {
    let gw = Gw::start(&[]).await;
    let events = [
        r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"whole"}}"#,
        r#"event: content_block_stop
data: {"type":"content_block_stop","index":0}"#,
        r#"event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        r#"event: message_stop
data: {"type":"message_stop"}"#,
    ];
    let whole: String = events.iter().map(|e| format!("{e}\n\n")).collect();
    gw.mock.mock().add_fault(Fault {
        stream_chunks: Some(vec![whole]),
        cut_after_chunks: Some(1),
        ..Fault::default()
    });
    let a = anthropic_stream(&gw, "claude-sonnet-4-5", "hi").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(
        text.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{text}"
    );
    assert!(
        !text.contains("event: error") && !text.contains("<error:"),
        "{text}"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "");
    assert_eq!(t.output_tokens, 2);
}

/// A streamed Anthropic Messages request for `model`, read whole.
/// An OpenAI-compatible upstream interleaves two calls' arguments, then
/// the connection breaks while the first call is unfinished: the second
/// call, held back so that calls reach the Anthropic app one after
/// another, still reaches it before the error, and counts toward the
/// estimate of what was generated.
#[tokio::test]
async fn a_call_held_back_reaches_the_app_when_the_upstream_cuts() {
    let gw = Gw::start(&[]).await;
    let chunk = |calls: &str| {
        format!(
            "data: {{\"id\":\"c1\",\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":{calls}}}}}]}}\n\n"
        )
    };
    gw.mock.mock().add_fault(Fault {
        stream_chunks: Some(vec![
            chunk(r#"[{"index":0,"id":"call_a","type":"function","function":{"name":"fa","arguments":"{\"x\":"}}]"#),
            chunk(r#"[{"index":1,"id":"call_b","type":"function","function":{"name":"fb","arguments":"{\"y\":2}"}}]"#),
        ]),
        cut_after_chunks: Some(2),
        ..Fault::default()
    });
    let a = anthropic_stream(&gw, "gpt-4o-mini", "call both").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let fa = text.find("\"name\":\"fa\"").expect("call fa");
    let fb = text
        .find("\"name\":\"fb\"")
        .expect("call fb reached the app");
    let err = text
        .find("event: error")
        .expect("the stream ends with an error");
    assert!(fa < fb && fb < err, "{text}");
    assert!(text.contains(r#"{\"y\":2}"#), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream stream cut");
    assert_eq!(t.usage_source, "estimated_broken");
    // Both calls' arguments (11 bytes) are estimated: at least 2 tokens.
    assert!(t.output_tokens >= 2, "{t:?}");
}

async fn anthropic_stream(gw: &Gw, model: &str, say: &str) -> Answer {
    let req = serde_json::json!({
        "model": model,
        "max_tokens": 64,
        "stream": true,
        "messages": [{"role": "user", "content": say}],
    });
    read(gw.send(anthropic_post(&req)).await).await
}

/// A Responses stream that ends in `response.failed` after generating:
/// the usage that event reports is charged, as it is when the same failure
/// comes as a whole answer (not an estimate from the few deltas seen).
#[tokio::test]
async fn a_failed_responses_stream_is_charged_the_usage_it_reports() {
    let gw = Gw::start(&[]).await;
    let event = |ty: &str, body: serde_json::Value| format!("event: {ty}\ndata: {body}\n\n");
    let response = |status: &str| {
        serde_json::json!({"id": "resp_1", "object": "response", "status": status,
                           "model": "gpt-4o-mini", "output": []})
    };
    let mut failed = response("failed");
    failed["error"] = serde_json::json!({"code": "server_error", "message": "it broke"});
    failed["usage"] = serde_json::json!({
        "input_tokens": 1000, "input_tokens_details": {"cached_tokens": 400},
        "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 200},
        "total_tokens": 1300,
    });
    let body = [
        event(
            "response.created",
            serde_json::json!({"type": "response.created", "sequence_number": 0,
                               "response": response("in_progress")}),
        ),
        event(
            "response.output_text.delta",
            serde_json::json!({"type": "response.output_text.delta", "sequence_number": 1,
                               "item_id": "msg_1", "output_index": 0, "content_index": 0,
                               "delta": "Hal"}),
        ),
        event(
            "response.failed",
            serde_json::json!({"type": "response.failed", "sequence_number": 2,
                               "response": failed}),
        ),
    ]
    .concat();
    gw.mock.mock().add_fault(Fault {
        stream_body: Some(body),
        ..Fault::default()
    });
    let req = serde_json::json!({"model": "gpt-4o-mini", "input": "hi", "stream": true});
    let a = gw.post("/v1/responses", req).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(String::from_utf8_lossy(&a.body).contains("response.failed"));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!((t.input_tokens, t.output_tokens), (1000, 300), "{t:?}");
    assert_eq!((t.cached_tokens, t.reasoning_tokens), (400, 200), "{t:?}");
    assert!(!t.error.is_empty(), "the failure is recorded");
}
