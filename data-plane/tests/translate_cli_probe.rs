//! What the coding CLIs (Claude Code, Codex, Gemini CLI) see through a
//! translated provider, for the payloads a black-box probe of the real CLIs
//! against strict fakes of each provider caught going wrong: each test
//! drives the app's request or the upstream's answer through the codecs as
//! the gateway does and asserts on what the provider or the app receives.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers too: a panic is the failure report (allow-unwrap-in-tests covers only #[test] fns)"
)]

use bytes::BytesMut;
use data_plane::sse::SseParser;
use data_plane::translate::ir::ChatRequest;
use data_plane::translate::{self, Format};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

/// The app's request in `app`, decoded as the gateway does.
fn decode(app: Format, body: &Value) -> ChatRequest {
    translate::decode_request(app, body.to_string().as_bytes(), Some("m"), true).unwrap()
}

/// The body a provider in `target` is sent for `req` (its drops recorded).
fn encode(target: Format, req: &mut ChatRequest) -> Value {
    let body = translate::encode_request(target, req).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `(field, always)` of each drop.
fn drops(req: &ChatRequest) -> Vec<(String, bool)> {
    req.dropped
        .iter()
        .map(|d| (d.field.clone(), d.always))
        .collect()
}

/// An upstream stream in `upstream` (SSE text) passed to an app in `app`:
/// the app's events, as (event name, JSON data) pairs.
fn relay(upstream: Format, app: Format, req: &ChatRequest, sse: &str) -> Vec<(String, Value)> {
    let mut dec = translate::decoder(upstream);
    dec.translating();
    let mut enc = translate::encoder(app, req);
    let mut p = SseParser::new();
    p.push(sse.as_bytes());
    let mut evs = Vec::new();
    while let Some(e) = p.next_event() {
        dec.event(&e, &mut evs);
    }
    if let Some(e) = p.finish() {
        dec.event(&e, &mut evs);
    }
    dec.end(&mut evs);
    let mut out = BytesMut::new();
    for e in &evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    let mut p = SseParser::new();
    p.push(&out);
    let mut app_events = Vec::new();
    while let Some(e) = p.next_event() {
        let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
        app_events.push((e.event.clone().unwrap_or_default(), data));
    }
    app_events
}

/// SSE text of `data:` lines (OpenAI chat, Gemini).
fn data_lines(chunks: &[Value]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

/// SSE text of named events (Anthropic).
fn named(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(n, d)| format!("event: {n}\ndata: {d}\n\n"))
        .collect()
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events
        .iter()
        .map(|(n, d)| d["type"].as_str().unwrap_or(n.as_str()))
        .collect()
}

fn codex_request() -> ChatRequest {
    decode(
        Format::Responses,
        &json!({"model": "m", "stream": true, "input": [{"role": "user", "content": "cat it"}]}),
    )
}

/// An OpenAI chat upstream's chunk holding one call delta.
fn chat_call_chunk(id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut call = json!({"index": 0, "function": {"arguments": args}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    json!({"id": "chatcmpl-1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]})
}

// ------------------------------------------------------------------ 1. schemas

/// Claude Code's TaskCreate/TaskUpdate `metadata` (as captured) has
/// `propertyNames`, which Gemini's schema cannot say and which says nothing
/// JSON keys are not already: the first request to a Gemini provider was
/// refused. Dropped, the object stays an object.
#[test]
fn claude_code_task_tools_reach_a_gemini_provider() {
    let task_create = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "subject": {"description": "A brief title for the task", "type": "string"},
            "metadata": {
                "description": "Arbitrary metadata to attach to the task",
                "type": "object",
                "propertyNames": {"type": "string"},
                "additionalProperties": {}
            }
        },
        "required": ["subject"],
        "additionalProperties": false
    });
    let mut req = decode(
        Format::Anthropic,
        &json!({
            "model": "m", "max_tokens": 100,
            "messages": [{"role": "user", "content": "plan"}],
            "tools": [{"name": "TaskCreate", "description": "Create a task", "input_schema": task_create}]
        }),
    );
    let sent = encode(Format::Gemini, &mut req);
    let params = &sent["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(
        params["properties"]["metadata"],
        json!({"type": "OBJECT", "description": "Arbitrary metadata to attach to the task"})
    );
    assert!(!sent.to_string().contains("propertyNames"), "{sent}");
}

/// A keyword Gemini cannot take is refused naming the app's own field: an
/// Anthropic app's `input_schema`, at its index (a server tool before it is
/// dropped, which shifts the IR's), not the IR's `parameters`.
#[test]
fn a_refused_schema_keyword_names_the_apps_field() {
    let mut req = decode(
        Format::Anthropic,
        &json!({
            "model": "m", "max_tokens": 100,
            "messages": [{"role": "user", "content": "go"}],
            "tools": [
                {"type": "web_search_20250305", "name": "web_search"},
                {"name": "f", "input_schema": {"type": "object", "properties": {"x": {"not": {"type": "string"}}}}}
            ]
        }),
    );
    let err = translate::encode_request(Format::Gemini, &mut req).unwrap_err();
    assert_eq!(err.field, "tools[1].input_schema.properties.x.not");
    let mut req = decode(
        Format::OpenAiChat,
        &json!({
            "model": "m",
            "messages": [{"role": "user", "content": "go"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"allOf": []}}}}}]
        }),
    );
    let err = translate::encode_request(Format::Gemini, &mut req).unwrap_err();
    assert_eq!(err.field, "tools[0].function.parameters.properties.x.allOf");
}

// ------------------------------------------------------------------ 2. calls cut by a failure

/// The upstream fails mid tool call: Codex must not be handed the
/// half-received call as finished (it ran `{"cmd": "cat /tmp/x/` and kept it
/// in its history). The `error` and `response.failed` end the stream, and
/// the failed response holds no call.
#[test]
fn a_call_cut_by_an_upstream_error_never_reaches_codex_as_done() {
    let mut chunks = vec![
        chat_call_chunk(Some("call_a"), Some("exec_command"), ""),
        chat_call_chunk(None, None, r#"{"cmd": "cat /tmp/x/"#),
    ];
    chunks.push(json!({"error": {"message": "upstream exploded", "type": "server_error"}}));
    let got = relay(
        Format::OpenAiChat,
        Format::Responses,
        &codex_request(),
        &data_lines(&chunks),
    );
    let ty = types(&got);
    assert!(ty.contains(&"error"), "{ty:?}");
    assert_eq!(ty.last(), Some(&"response.failed"), "{ty:?}");
    assert!(
        !ty.contains(&"response.function_call_arguments.done")
            && !ty.contains(&"response.output_item.done"),
        "{ty:?}"
    );
    let failed = &got.last().unwrap().1["response"];
    assert_eq!(failed["output"], json!([]), "{failed}");
}

/// The upstream just stops before its finish: the same, and nothing is
/// marked `completed`.
#[test]
fn a_call_cut_by_an_ended_stream_never_reaches_codex_as_done() {
    let chunks = [
        chat_call_chunk(Some("call_a"), Some("exec_command"), ""),
        chat_call_chunk(None, None, r#"{"cmd": "cat /tmp/x/"#),
    ];
    let got = relay(
        Format::OpenAiChat,
        Format::Responses,
        &codex_request(),
        &data_lines(&chunks),
    );
    let ty = types(&got);
    assert_eq!(ty.last(), Some(&"response.failed"), "{ty:?}");
    assert!(!ty.contains(&"response.output_item.done"), "{ty:?}");
    assert!(
        !got.iter()
            .any(|(_, d)| d.to_string().contains("\"completed\""))
    );

    // Text already under way is closed as incomplete, a call closed before
    // the break (the next one had begun) stays.
    let chunks = [
        chat_call_chunk(Some("call_a"), Some("ls"), "{}"),
        json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\": \"ca"}}]}}]}),
    ];
    let got = relay(
        Format::OpenAiChat,
        Format::Responses,
        &codex_request(),
        &data_lines(&chunks),
    );
    let output = &got.last().unwrap().1["response"]["output"];
    assert_eq!(output.as_array().unwrap().len(), 1, "{output}");
    assert_eq!(output[0]["call_id"], "call_a");
}

/// The other apps were already safe; kept so: an Anthropic app gets no
/// `content_block_stop` for the half `tool_use`, a Gemini app no
/// `functionCall`, an OpenAI chat app no `finish_reason`.
#[test]
fn a_call_cut_by_an_upstream_failure_reaches_no_app_as_finished() {
    let chunks = [
        chat_call_chunk(Some("call_a"), Some("exec_command"), ""),
        chat_call_chunk(None, None, r#"{"cmd": "cat /tmp/x/"#),
    ];
    let req = codex_request();
    let anthropic = relay(
        Format::OpenAiChat,
        Format::Anthropic,
        &req,
        &data_lines(&chunks),
    );
    let ty = types(&anthropic);
    assert!(!ty.contains(&"content_block_stop"), "{ty:?}");
    assert_eq!(ty.last(), Some(&"error"));
    let gemini = relay(
        Format::OpenAiChat,
        Format::Gemini,
        &req,
        &data_lines(&chunks),
    );
    assert!(
        !gemini
            .iter()
            .any(|(_, d)| d.to_string().contains("functionCall")),
        "{gemini:?}"
    );
    let upstream = named(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "exec_command", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"cmd\": \"cat"}}),
        ),
        (
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
    ]);
    let chat = relay(Format::Anthropic, Format::OpenAiChat, &req, &upstream);
    assert!(
        !chat
            .iter()
            .any(|(_, d)| !d["choices"][0]["finish_reason"].is_null()),
        "{chat:?}"
    );
    assert!(chat.last().unwrap().1.get("error").is_some());
}

/// Codex sends its history back with a call whose arguments broke off:
/// OpenAI takes any text there, so an Anthropic or Gemini provider is sent
/// `{}` instead of the session ending on a 400, and the loss is named by
/// the app's own field.
#[test]
fn codex_history_with_broken_arguments_still_translates() {
    let body = json!({
        "model": "m",
        "input": [
            {"role": "user", "content": "cat it"},
            {"type": "function_call", "call_id": "call_a", "name": "exec_command", "arguments": "{\"cmd\": \"cat /tmp/x/"},
            {"type": "function_call_output", "call_id": "call_a", "output": "aborted"},
            {"role": "user", "content": "again"}
        ]
    });
    let mut req = decode(Format::Responses, &body);
    let sent = encode(Format::Anthropic, &mut req);
    assert_eq!(sent["messages"][1]["content"][0]["input"], json!({}));
    assert_eq!(drops(&req), [("input[*].arguments".to_string(), false)]);

    let mut req = decode(Format::Responses, &body);
    let sent = encode(Format::Gemini, &mut req);
    assert_eq!(
        sent["contents"][1]["parts"][0]["functionCall"],
        json!({"id": "call_a", "name": "exec_command", "args": {}})
    );
    assert_eq!(drops(&req), [("input[*].arguments".to_string(), false)]);

    // Whole arguments are untouched, and nothing is named.
    let mut whole = body.clone();
    whole["input"][1]["arguments"] = json!("{\"cmd\": \"ls\"}");
    let mut req = decode(Format::Responses, &whole);
    let sent = encode(Format::Anthropic, &mut req);
    assert_eq!(
        sent["messages"][1]["content"][0]["input"],
        json!({"cmd": "ls"})
    );
    assert!(req.dropped.is_empty());
}

// ------------------------------------------------------------------ 3. call ids

/// A Gemini answer without `responseId`: each answer's calls get ids of
/// their own, whole or streamed (every turn's first call was `call_0`, and
/// Claude Code dropped the second as a duplicate, asking again forever).
#[test]
fn gemini_calls_without_a_response_id_get_ids_unique_per_answer() {
    let answer = json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "Read", "args": {"file_path": "a"}}}
        ]}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.5-flash"
    });
    let whole_id = || {
        let body = answer.to_string();
        let resp = translate::decode_response(Format::Gemini, body.as_bytes()).unwrap();
        let app = translate::encode_response(Format::Anthropic, &resp).unwrap();
        let app: Value = serde_json::from_slice(&app).unwrap();
        app["content"][0]["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (whole_id(), whole_id());
    assert_ne!(a, b);

    let req = decode(
        Format::Anthropic,
        &json!({"model": "m", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "read"}]}),
    );
    let stream_id = || {
        let got = relay(
            Format::Gemini,
            Format::Anthropic,
            &req,
            &data_lines(std::slice::from_ref(&answer)),
        );
        got.iter()
            .find(|(n, _)| n == "content_block_start")
            .map(|(_, d)| d["content_block"]["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (c, d) = (stream_id(), stream_id());
    assert_ne!(c, d);
    let all = [&a, &b, &c, &d];
    for (i, x) in all.iter().enumerate() {
        assert!(!all[i + 1..].contains(x), "{all:?}");
    }
}

// ------------------------------------------------------------------ 4. calls cut by the token cap

/// An Anthropic `max_tokens` stop in the middle of a `tool_use`: a Gemini
/// app (Gemini CLI ran it as `args: {}`) gets no call, and the finish
/// reason still says MAX_TOKENS.
#[test]
fn a_call_cut_by_the_token_cap_is_not_given_to_a_gemini_app() {
    let upstream = named(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Reading."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"absolute_path\": \"/tm"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 20}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let req = decode(
        Format::Gemini,
        &json!({"contents": [{"role": "user", "parts": [{"text": "read"}]}]}),
    );
    let got = relay(Format::Anthropic, Format::Gemini, &req, &upstream);
    assert!(
        !got.iter()
            .any(|(_, d)| d.to_string().contains("functionCall")),
        "{got:?}"
    );
    let last = &got.last().unwrap().1["candidates"][0];
    assert_eq!(last["finishReason"], "MAX_TOKENS", "{last}");

    // A whole answer (an OpenAI upstream's `length` with half arguments):
    // no call for a Gemini app nor an Anthropic one; a whole call before
    // it stays.
    let answer = json!({
        "id": "chatcmpl-1", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "read_file", "arguments": "{\"absolute_path\": \"/tm"}}
        ]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 20}
    });
    let resp =
        translate::decode_response(Format::OpenAiChat, answer.to_string().as_bytes()).unwrap();
    let gemini: Value =
        serde_json::from_slice(&translate::encode_response(Format::Gemini, &resp).unwrap())
            .unwrap();
    let cand = &gemini["candidates"][0];
    assert_eq!(
        cand["content"]["parts"],
        json!([{"functionCall": {"id": "call_a", "name": "ls", "args": {}}}]),
        "{cand}"
    );
    assert_eq!(cand["finishReason"], "MAX_TOKENS");
    let anthropic: Value =
        serde_json::from_slice(&translate::encode_response(Format::Anthropic, &resp).unwrap())
            .unwrap();
    let blocks = anthropic["content"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{anthropic}");
    assert_eq!(blocks[0]["name"], "ls");
    assert_eq!(anthropic["stop_reason"], "max_tokens");
}

// ------------------------------------------------------------------ 5. small

/// An OpenAI-compatible upstream's `arguments: ""` for a call without
/// parameters: Codex gets `"{}"`, as Anthropic and Gemini apps get `{}`.
#[test]
fn empty_upstream_arguments_reach_codex_as_an_empty_object() {
    let chunks = [
        chat_call_chunk(Some("call_a"), Some("list_mcp_resources"), ""),
        json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ];
    let got = relay(
        Format::OpenAiChat,
        Format::Responses,
        &codex_request(),
        &data_lines(&chunks),
    );
    let done = got
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done.1["arguments"], "{}");
    let item = got
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap();
    assert_eq!(item.1["item"]["arguments"], "{}");

    let answer = json!({
        "id": "chatcmpl-1", "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "list_mcp_resources", "arguments": ""}}
        ]}}]
    });
    let resp =
        translate::decode_response(Format::OpenAiChat, answer.to_string().as_bytes()).unwrap();
    let codex: Value =
        serde_json::from_slice(&translate::encode_response(Format::Responses, &resp).unwrap())
            .unwrap();
    assert_eq!(codex["output"][0]["arguments"], "{}", "{codex}");
}

/// Claude Code's first system block is Anthropic's billing bookkeeping
/// (`x-anthropic-billing-header: cc_version=…`): an OpenAI or Gemini
/// provider's model is not sent it as instructions; the drop is named.
#[test]
fn claude_codes_billing_header_is_not_sent_to_other_providers() {
    let body = json!({
        "model": "m", "max_tokens": 100,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.b15; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": "hi"}]
    });
    let mut req = decode(Format::Anthropic, &body);
    let sent = encode(Format::OpenAiChat, &mut req);
    assert!(!sent.to_string().contains("billing"), "{sent}");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are Claude Code."})
    );
    assert!(
        drops(&req).contains(&(
            "system[*].text (x-anthropic-billing-header)".to_string(),
            true
        )),
        "{:?}",
        drops(&req)
    );
    let mut req = decode(Format::Anthropic, &body);
    let sent = encode(Format::Gemini, &mut req);
    assert_eq!(
        sent["systemInstruction"]["parts"],
        json!([{"text": "You are Claude Code."}])
    );
}
