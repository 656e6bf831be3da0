//! Unit tests of the Responses codec (those driven by fixtures of real
//! payloads are in `data-plane/tests/translate_responses`). Here: the
//! model's refusals, between Responses and chat completions both ways, as
//! the app receives them.

use serde_json::{Value, json};

use crate::sse::SseParser;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::testkit::{decode_with, encode_with};
use crate::translate::{Format, decode_response, encode_response, openai_chat, responses};

const REFUSAL: &str = "I'm sorry, I can't help with that.";

/// The app's whole answer (in `app`'s format) to an upstream's answer.
fn answer(upstream: Format, body: &Value, app: Format) -> Value {
    let resp = decode_response(upstream, body.to_string().as_bytes()).expect("decodes");
    let bytes = encode_response(app, &resp).expect("encodes");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A chat completion answering with `content` and `refusal`.
fn chat_answer(content: Value, refusal: Value) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    })
}

fn streaming_app() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o".into(),
        stream: true,
        ..Default::default()
    }
}

/// The event names and JSON data of an app's stream (`[DONE]` left out).
fn sse_events(sse: &str) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::new();
    p.push(sse.as_bytes());
    std::iter::from_fn(|| p.next_event())
        .filter_map(|e| Some((e.event, serde_json::from_str(&e.data).ok()?)))
        .collect()
}

/// A chat completion chunk with `delta` (and a finish reason).
fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// What a Responses app receives for a chat completion stream.
fn responses_app_stream(chat_sse: &str) -> Vec<Value> {
    let evs = decode_with(openai_chat::Decoder::default(), chat_sse.as_bytes(), []);
    let sse = encode_with(responses::Encoder::new(&streaming_app()), &evs);
    let events = sse_events(&sse);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(name.as_deref(), data["type"].as_str(), "event {i}");
        assert_eq!(data["sequence_number"], i, "event {i}");
    }
    events.into_iter().map(|(_, d)| d).collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[test]
fn a_chat_refusal_reaches_a_responses_app_as_a_refusal_part() {
    let r = answer(
        Format::OpenAiChat,
        &chat_answer(Value::Null, json!(REFUSAL)),
        Format::Responses,
    );
    // As OpenAI's own Responses API answers it: a completed message whose
    // one content part is the refusal, and no text.
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["incomplete_details"], Value::Null);
    let output = r["output"].as_array().expect("output");
    assert_eq!(output.len(), 1, "{r}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(
        output[0]["content"],
        json!([{"type": "refusal", "refusal": REFUSAL}])
    );

    // Text and a refusal: one message, the text's part then the refusal's.
    let r = answer(
        Format::OpenAiChat,
        &chat_answer(json!("Here is what I can say."), json!(REFUSAL)),
        Format::Responses,
    );
    assert_eq!(
        r["output"][0]["content"],
        json!([
            {"type": "output_text", "annotations": [], "logprobs": [], "text": "Here is what I can say."},
            {"type": "refusal", "refusal": REFUSAL}
        ])
    );
    assert_eq!(r["output"].as_array().map(Vec::len), Some(1));

    // No refusal (`null`, or empty): text only, as before.
    for refusal in [Value::Null, json!("")] {
        let r = answer(
            Format::OpenAiChat,
            &chat_answer(json!("Hello."), refusal),
            Format::Responses,
        );
        assert_eq!(
            r["output"][0]["content"],
            json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello."}])
        );
    }
}

#[test]
fn a_streamed_chat_refusal_reaches_a_responses_app_as_refusal_events() {
    let sse = [
        chunk(json!({"role": "assistant", "refusal": ""}), Value::Null),
        chunk(json!({"refusal": "I'm sorry, "}), Value::Null),
        chunk(json!({"refusal": "I can't help with that."}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let events = responses_app_stream(&sse);
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.refusal.delta",
            "response.refusal.delta",
            "response.refusal.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let item_id = events[2]["item"]["id"].as_str().expect("item id");
    assert_eq!(events[2]["item"]["content"], json!([]));
    let at = |e: &Value| {
        (
            e["item_id"].as_str() == Some(item_id),
            e["output_index"].clone(),
            e["content_index"].clone(),
        )
    };
    for e in &events[3..8] {
        assert_eq!(at(e), (true, json!(0), json!(0)), "{e}");
    }
    assert_eq!(events[3]["part"], json!({"type": "refusal", "refusal": ""}));
    assert_eq!(
        (events[4]["delta"].as_str(), events[5]["delta"].as_str()),
        (Some("I'm sorry, "), Some("I can't help with that."))
    );
    assert_eq!(events[6]["refusal"], REFUSAL);
    let part = json!({"type": "refusal", "refusal": REFUSAL});
    assert_eq!(events[7]["part"], part);
    assert_eq!(events[8]["item"]["content"], json!([part]));
    assert_eq!(events[8]["item"]["status"], "completed");
    let done = &events[9]["response"];
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"][0]["content"], json!([part]));
}

#[test]
fn text_then_a_refusal_stream_as_two_content_parts() {
    let sse = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Partly: "}), Value::Null),
        chunk(json!({"refusal": REFUSAL}), Value::Null),
        chunk(json!({}), json!("stop")),
    ]
    .concat();
    let events = responses_app_stream(&sse);
    assert_eq!(
        types(&events)[2..],
        [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.content_part.added",
            "response.refusal.delta",
            "response.refusal.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let index = |i: usize| events[i]["content_index"].as_u64();
    assert_eq!(
        (3..=10).map(index).collect::<Vec<_>>(),
        [0, 0, 0, 0, 1, 1, 1, 1].map(Some)
    );
    assert_eq!(events[7]["part"], json!({"type": "refusal", "refusal": ""}));
    let parts = json!([
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "Partly: "},
        {"type": "refusal", "refusal": REFUSAL}
    ]);
    assert_eq!(events[11]["item"]["content"], parts);
    assert_eq!(events[12]["response"]["output"][0]["content"], parts);
}

/// A Responses answer holding a refusal part.
fn responses_answer() -> Value {
    json!({
        "id": "resp_1", "object": "response", "model": "gpt-4o", "status": "completed",
        "output": [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "refusal", "refusal": REFUSAL}]}],
        "usage": {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}
    })
}

#[test]
fn a_responses_refusal_reaches_a_chat_app_as_its_refusal() {
    let c = answer(Format::Responses, &responses_answer(), Format::OpenAiChat);
    let choice = &c["choices"][0];
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": null, "refusal": REFUSAL}),
        "{c}"
    );
    assert_eq!(choice["finish_reason"], "stop");
    // Text with it: both, each in its place.
    let mut both = responses_answer();
    both["output"][0]["content"] = json!([
        {"type": "output_text", "text": "Partly."},
        {"type": "refusal", "refusal": REFUSAL}
    ]);
    let c = answer(Format::Responses, &both, Format::OpenAiChat);
    assert_eq!(c["choices"][0]["message"]["content"], "Partly.");
    assert_eq!(c["choices"][0]["message"]["refusal"], REFUSAL);
    // An answer without one says `refusal: null`, as OpenAI's does.
    let plain = answer(
        Format::OpenAiChat,
        &chat_answer(json!("Hello."), Value::Null),
        Format::OpenAiChat,
    );
    assert_eq!(plain["choices"][0]["message"]["refusal"], Value::Null);
    assert_eq!(plain["choices"][0]["message"]["content"], "Hello.");

    // Formats without a refusal part get its text, and their refusal stop.
    let a = answer(Format::Responses, &responses_answer(), Format::Anthropic);
    assert_eq!(a["content"], json!([{"type": "text", "text": REFUSAL}]));
    assert_eq!(a["stop_reason"], "refusal");
    let g = answer(Format::Responses, &responses_answer(), Format::Gemini);
    let candidate = &g["candidates"][0];
    assert_eq!(candidate["content"]["parts"], json!([{"text": REFUSAL}]));
    assert_eq!(candidate["finishReason"], "SAFETY");
}

/// A Responses stream refusing: by deltas, or (`deltas: false`) only in the
/// finished item.
fn responses_stream(deltas: bool) -> String {
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    let part = |refusal: &str| json!({"type": "refusal", "refusal": refusal});
    let at = json!({"item_id": "msg_1", "output_index": 0, "content_index": 0});
    let with_at = |mut v: Value| {
        if let (Some(o), Some(a)) = (v.as_object_mut(), at.as_object()) {
            o.extend(a.clone());
        }
        ev(v)
    };
    let item = |status: &str, content: Value| json!({"id": "msg_1", "type": "message", "status": status, "role": "assistant", "content": content});
    let response = |status: &str, output: Value| {
        json!({"id": "resp_1", "object": "response", "model": "gpt-4o", "status": status,
            "output": output, "usage": {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}})
    };
    let mut s = vec![
        ev(json!({"type": "response.created", "response": response("in_progress", json!([]))})),
        ev(
            json!({"type": "response.output_item.added", "output_index": 0, "item": item("in_progress", json!([]))}),
        ),
    ];
    if deltas {
        s.extend([
            with_at(json!({"type": "response.content_part.added", "part": part("")})),
            with_at(json!({"type": "response.refusal.delta", "delta": "I'm sorry, "})),
            with_at(json!({"type": "response.refusal.delta", "delta": "I can't help with that."})),
            with_at(json!({"type": "response.refusal.done", "refusal": REFUSAL})),
            with_at(json!({"type": "response.content_part.done", "part": part(REFUSAL)})),
        ]);
    }
    let done = item("completed", json!([part(REFUSAL)]));
    s.extend([
        ev(json!({"type": "response.output_item.done", "output_index": 0, "item": done})),
        ev(json!({"type": "response.completed", "response": response("completed", json!([done]))})),
    ]);
    s.concat()
}

#[test]
fn a_streamed_responses_refusal_reaches_a_chat_app_as_refusal_chunks() {
    for deltas in [true, false] {
        let evs = decode_with(
            responses::Decoder::default(),
            responses_stream(deltas).as_bytes(),
            [],
        );
        // It stops as a content filter's (which Anthropic and Gemini apps
        // are told), and a chat app's stream ends as OpenAI's does.
        assert!(evs.contains(&StreamEvent::Finish(StopReason::ContentFilter)));
        let sse = encode_with(openai_chat::Encoder::new(&streaming_app()), &evs);
        let chunks: Vec<Value> = sse_events(&sse).into_iter().map(|(_, d)| d).collect();
        let deltas_of = |key: &str| -> String {
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"][key].as_str())
                .collect()
        };
        assert_eq!(deltas_of("refusal"), REFUSAL, "{sse}");
        assert_eq!(deltas_of("content"), "", "{sse}");
        let finish: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finish, ["stop"]);
        assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
    }
}

#[test]
fn a_streamed_refusal_reaches_anthropic_and_gemini_apps_as_text() {
    let evs = decode_with(
        responses::Decoder::default(),
        responses_stream(true).as_bytes(),
        [],
    );
    let app = streaming_app();
    let anthropic = encode_with(crate::translate::anthropic::Encoder::new(&app), &evs);
    let data: Vec<Value> = sse_events(&anthropic).into_iter().map(|(_, d)| d).collect();
    let text: String = data
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, REFUSAL);
    assert!(
        data.iter().any(|e| e["delta"]["stop_reason"] == "refusal"),
        "{anthropic}"
    );
    let gemini = encode_with(crate::translate::gemini::Encoder::new(&app), &evs);
    let data: Vec<Value> = sse_events(&gemini).into_iter().map(|(_, d)| d).collect();
    let text: String = data
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, REFUSAL);
    assert!(
        data.iter()
            .any(|c| c["candidates"][0]["finishReason"] == "SAFETY"),
        "{gemini}"
    );
}

/// A refusal beside calls to run, or cut at the length limit, keeps the
/// stop the app must act on: the calls (`tool_calls`, `tool_use`) or the
/// cut (`length`, `max_tokens`), not a refusal's.
#[test]
fn a_refusal_beside_calls_or_a_length_cut_keeps_that_stop() {
    let mut called = chat_answer(Value::Null, json!(REFUSAL));
    called["choices"][0]["finish_reason"] = json!("tool_calls");
    called["choices"][0]["message"]["tool_calls"] = json!([{"id": "call_1", "type": "function",
        "function": {"name": "lookup", "arguments": "{}"}}]);
    let a = answer(Format::OpenAiChat, &called, Format::Anthropic);
    assert_eq!(a["stop_reason"], "tool_use");
    let r = answer(Format::OpenAiChat, &called, Format::Responses);
    assert_eq!(r["status"], "completed");
    assert!(
        r["output"].as_array().unwrap().iter().any(|i| i["type"] == "function_call"),
        "{r}"
    );
    let mut cut = chat_answer(Value::Null, json!(REFUSAL));
    cut["choices"][0]["finish_reason"] = json!("length");
    let a = answer(Format::OpenAiChat, &cut, Format::Anthropic);
    assert_eq!(a["stop_reason"], "max_tokens");
    let r = answer(Format::OpenAiChat, &cut, Format::Responses);
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    // Streamed, from a chat completion: the same stops.
    let sse = [
        chunk(json!({"role": "assistant", "refusal": "No."}), Value::Null),
        chunk(json!({}), json!("length")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let evs = decode_with(openai_chat::Decoder::default(), sse.as_bytes(), []);
    assert_eq!(evs.last(), Some(&StreamEvent::Finish(StopReason::MaxTokens)));
}
