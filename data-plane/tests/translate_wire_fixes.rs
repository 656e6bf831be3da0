//! What providers receive and apps get for request and answer shapes a
//! black-box probe of the translation found mishandled: URL-safe base64
//! images from Gemini apps, streamed tools without arguments, OpenAI
//! refusals, `strict` tools, seeds and penalties, text blocks, output caps,
//! stop-sequence limits, schema property order.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers too: a panic is the failure report (allow-unwrap-in-tests covers only #[test] fns)"
)]

use aigw_proto::model::ProviderKind;
use bytes::BytesMut;
use data_plane::sse::SseParser;
use data_plane::translate::ir::{ChatRequest, StopReason};
use data_plane::translate::{Format, FromPath, StreamEvent, Unsupported};
use serde_json::{Value, json};

// ------------------------------------------------------------------ helpers

/// The app's request (`app`'s format; Gemini's model from the path).
fn decode(app: Format, body: &Value, model: &str) -> Result<ChatRequest, Unsupported> {
    let path = FromPath {
        model: Some(model),
        stream: false,
    };
    app.codec()
        .decode_request(body.to_string().as_bytes(), path)
}

/// What a provider of `kind` is sent for the app's request.
fn sent(
    app: Format,
    body: Value,
    model: &str,
    kind: ProviderKind,
) -> Result<(Value, ChatRequest), Unsupported> {
    let mut req = decode(app, &body, model)?;
    let bytes = Format::from(kind)
        .codec()
        .encode_request_for(&mut req, kind)?;
    Ok((serde_json::from_slice(&bytes).unwrap(), req))
}

/// What a provider of `kind` is sent for `body` (model from the body).
fn sent_ok(app: Format, body: Value, kind: ProviderKind) -> Value {
    sent(app, body, "", kind).expect("translates").0
}

/// The dropped fields' names.
fn dropped(req: &ChatRequest) -> Vec<String> {
    req.dropped.iter().map(|d| d.field.clone()).collect()
}

/// The IR events a provider's SSE stream (in `upstream`'s format) decodes to.
fn stream_events(upstream: Format, sse: &str) -> Vec<StreamEvent> {
    let mut d = upstream.codec().stream_decoder();
    let mut p = SseParser::new();
    p.push(sse.as_bytes());
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        d.event(&e, &mut out);
    }
    if let Some(e) = p.finish() {
        d.event(&e, &mut out);
    }
    d.end(&mut out);
    out
}

/// The app's stream (in `app`'s format, SSE) for IR events.
fn app_stream(app: Format, req: &ChatRequest, evs: &[StreamEvent]) -> String {
    let mut enc = data_plane::translate::encoder(app, req);
    let mut out = BytesMut::new();
    for e in evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// The `data:` JSON objects of an SSE stream.
fn data_of(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// The app's whole answer (in `app`'s format) to a provider's answer.
fn answer(upstream: Format, body: Value, app: Format) -> Value {
    let resp =
        data_plane::translate::decode_response(upstream, body.to_string().as_bytes()).unwrap();
    serde_json::from_slice(&data_plane::translate::encode_response(app, &resp).unwrap()).unwrap()
}

// ------------------------------------------------------------------ 1. URL-safe base64 from Gemini apps

/// google-genai (Python) sends `Part.from_bytes` data URL-safe and
/// unpadded; OpenAI's `data:` URLs and Anthropic's `source.data` take only
/// standard base64.
#[test]
fn gemini_urlsafe_base64_images_reach_other_providers_as_standard_base64() {
    // Bytes whose standard base64 holds `+` and `/`, and needs padding.
    let std = "+/+/AAEC+w==";
    let urlsafe = "-_-_AAEC-w";
    let body = json!({"contents": [{"role": "user", "parts": [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": urlsafe}}
    ]}]});
    let (openai, _) = sent(Format::Gemini, body.clone(), "gpt-4o", ProviderKind::OpenAi).unwrap();
    assert_eq!(
        openai["messages"][0]["content"][1]["image_url"]["url"],
        format!("data:image/png;base64,{std}")
    );
    let (anthropic, _) = sent(
        Format::Gemini,
        body.clone(),
        "claude-sonnet-4-5",
        ProviderKind::Anthropic,
    )
    .unwrap();
    assert_eq!(
        anthropic["messages"][0]["content"][1]["source"]["data"],
        std
    );
    // Standard base64 passes as it is.
    let body = json!({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": std}}
    ]}]});
    let (anthropic, _) = sent(
        Format::Gemini,
        body,
        "claude-sonnet-4-5",
        ProviderKind::Anthropic,
    )
    .unwrap();
    assert_eq!(
        anthropic["messages"][0]["content"][0]["source"]["data"],
        std
    );
}

// ------------------------------------------------------------------ 2. streamed tool without arguments

/// Anthropic streams a call of a tool without parameters as `input: {}`
/// and an empty `input_json_delta` (or none).
fn anthropic_noarg_stream(delta: bool) -> String {
    let mut s = String::from(concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"now\",\"input\":{}}}\n\n",
    ));
    if delta {
        s.push_str(concat!(
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        ));
    }
    s.push_str(concat!(
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    ));
    s
}

#[test]
fn anthropic_streamed_call_without_arguments_reaches_openai_apps_as_empty_object() {
    let req = decode(
        Format::OpenAiChat,
        &json!({"model": "claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        "",
    )
    .unwrap();
    for delta in [true, false] {
        let evs = stream_events(Format::Anthropic, &anthropic_noarg_stream(delta));
        let args: String = evs
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(args, "{}", "delta sent: {delta}");
        // Chat: the call's arguments, joined over its chunks.
        let chat: String = data_of(&app_stream(Format::OpenAiChat, &req, &evs))
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(chat, "{}");
        // Responses: the finished function call item.
        let responses = data_of(&app_stream(Format::Responses, &req, &evs));
        let done = responses
            .iter()
            .find(|e| e["type"] == "response.function_call_arguments.done")
            .unwrap();
        assert_eq!(done["arguments"], "{}");
    }
    // Arguments that did stream are left as they are.
    let with_args = anthropic_noarg_stream(false).replace(
        "\"input\":{}}}",
        "\"input\":{}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}",
    );
    let evs = stream_events(Format::Anthropic, &with_args);
    let args: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(args, [r#"{"a":1}"#]);
}

// ------------------------------------------------------------------ 3. OpenAI refusals

const REFUSAL: &str = "I'm sorry, I can't help with that.";

#[test]
fn openai_refusal_reaches_anthropic_and_gemini_apps_as_text_and_a_safety_stop() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": null, "refusal": REFUSAL}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9}
    });
    let a = answer(Format::OpenAiChat, body.clone(), Format::Anthropic);
    assert_eq!(a["content"], json!([{"type": "text", "text": REFUSAL}]));
    assert_eq!(a["stop_reason"], "refusal");
    let g = answer(Format::OpenAiChat, body.clone(), Format::Gemini);
    assert_eq!(
        g["candidates"][0]["content"]["parts"],
        json!([{"text": REFUSAL}])
    );
    assert_eq!(g["candidates"][0]["finishReason"], "SAFETY");
    let r = answer(Format::OpenAiChat, body, Format::Responses);
    // A Responses app gets OpenAI's own shape: a refusal part.
    assert_eq!(
        r["output"][0]["content"][0],
        json!({"type": "refusal", "refusal": REFUSAL})
    );
}

#[test]
fn openai_streamed_refusal_reaches_anthropic_and_gemini_apps() {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let sse = [
        chunk(json!({"role": "assistant", "refusal": ""}), Value::Null),
        chunk(json!({"refusal": "I'm sorry, "}), Value::Null),
        chunk(json!({"refusal": "I can't help with that."}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let evs = stream_events(Format::OpenAiChat, &sse);
    assert_eq!(
        evs.last(),
        Some(&StreamEvent::Finish(StopReason::ContentFilter))
    );
    let req = decode(
        Format::Anthropic,
        &json!({"model": "gpt-4o", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        "",
    )
    .unwrap();
    let anthropic = data_of(&app_stream(Format::Anthropic, &req, &evs));
    let text: String = anthropic
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, REFUSAL);
    assert!(
        anthropic
            .iter()
            .any(|e| e["type"] == "message_delta" && e["delta"]["stop_reason"] == "refusal"),
        "{anthropic:?}"
    );
    let gemini = data_of(&app_stream(Format::Gemini, &req, &evs));
    let text: String = gemini
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, REFUSAL);
    assert!(
        gemini
            .iter()
            .any(|c| c["candidates"][0]["finishReason"] == "SAFETY"),
        "{gemini:?}"
    );
}

// ------------------------------------------------------------------ 4. strict tools

/// A schema OpenAI's strict mode takes.
fn strict_schema() -> Value {
    json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false})
}

#[test]
fn strict_tools_are_kept_where_the_target_has_them() {
    let responses_app = json!({"model": "m", "input": "x", "tools": [
        {"type": "function", "name": "f", "parameters": strict_schema(), "strict": true}
    ]});
    let chat_app = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [
        {"type": "function", "function": {"name": "f", "parameters": strict_schema(), "strict": true}}
    ]});
    for (app, body) in [
        (Format::Responses, &responses_app),
        (Format::OpenAiChat, &chat_app),
    ] {
        let (compat, req) = sent(app, body.clone(), "", ProviderKind::OpenAiCompatible).unwrap();
        assert_eq!(compat["tools"][0]["function"]["strict"], true, "{app:?}");
        assert!(dropped(&req).is_empty());
        let mut b = body.clone();
        b["model"] = json!("claude-sonnet-4-5");
        let (anthropic, req) = sent(app, b.clone(), "", ProviderKind::Anthropic).unwrap();
        assert_eq!(anthropic["tools"][0]["strict"], true, "{app:?}");
        assert_eq!(anthropic["tools"][0]["input_schema"], strict_schema());
        assert!(dropped(&req).is_empty());
        // A Claude model without strict tool use: a hint.
        b["model"] = json!("claude-3-5-haiku-20241022");
        let (anthropic, req) = sent(app, b.clone(), "", ProviderKind::Anthropic).unwrap();
        assert!(anthropic["tools"][0].get("strict").is_none());
        assert_eq!(dropped(&req), ["tools[*].strict"]);
        // An Anthropic-compatible vendor's model (DeepSeek's, Kimi's
        // Anthropic endpoints): not known to take `strict`, which such an
        // endpoint may refuse; dropped, named.
        for model in ["deepseek-chat", "kimi-k2-0905-preview"] {
            b["model"] = json!(model);
            let (vendor, req) = sent(app, b.clone(), "", ProviderKind::Anthropic).unwrap();
            assert!(vendor["tools"][0].get("strict").is_none(), "{model}");
            assert_eq!(vendor["tools"][0]["input_schema"], strict_schema());
            assert_eq!(dropped(&req), ["tools[*].strict"], "{model}");
        }
        // Gemini has none: dropped, named.
        b["model"] = json!("gemini-2.5-flash");
        let (gemini, req) = sent(app, b, "", ProviderKind::Gemini).unwrap();
        assert!(
            gemini["tools"][0]["functionDeclarations"][0]
                .get("strict")
                .is_none()
        );
        assert_eq!(dropped(&req), ["tools[*].strict"]);
    }
    // Not asked: not said.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}], "tools": [
            {"type": "function", "function": {"name": "f", "parameters": strict_schema()}}
        ]}),
        ProviderKind::Anthropic,
    );
    assert!(anthropic["tools"][0].get("strict").is_none());
}

#[test]
fn anthropic_strict_tools_reach_openai() {
    let (openai, req) = sent(
        Format::Anthropic,
        json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
               "tools": [{"name": "f", "input_schema": strict_schema(), "strict": true}]}),
        "",
        ProviderKind::OpenAi,
    )
    .unwrap();
    assert_eq!(openai["tools"][0]["function"]["strict"], true);
    assert_eq!(
        openai["tools"][0]["function"]["parameters"],
        strict_schema()
    );
    assert!(dropped(&req).is_empty());
}

// ------------------------------------------------------------------ 5. seed and penalties

#[test]
fn seed_and_penalties_travel_between_openai_chat_and_gemini() {
    let (gemini, req) = sent(
        Format::OpenAiChat,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],
               "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.25}),
        "",
        ProviderKind::Gemini,
    )
    .unwrap();
    assert_eq!(
        gemini["generationConfig"],
        json!({"seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.25})
    );
    assert!(dropped(&req).is_empty());
    let gemini_app = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"seed": 7, "presencePenalty": 0.5, "frequencyPenalty": 0.5}});
    for kind in [ProviderKind::OpenAi, ProviderKind::OpenAiCompatible] {
        let (openai, _) = sent(Format::Gemini, gemini_app.clone(), "gpt-4o", kind).unwrap();
        assert_eq!(
            (
                &openai["seed"],
                &openai["presence_penalty"],
                &openai["frequency_penalty"]
            ),
            (&json!(7), &json!(0.5), &json!(0.5))
        );
    }
    // Anthropic has none of them: refused, naming the app's field, as before.
    let e = sent(
        Format::Gemini,
        gemini_app,
        "claude-sonnet-4-5",
        ProviderKind::Anthropic,
    )
    .unwrap_err();
    assert_eq!(e.field, "generationConfig.seed");
    let e = sent(
        Format::OpenAiChat,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "presence_penalty": 0.5}),
        "",
        ProviderKind::Anthropic,
    )
    .unwrap_err();
    assert_eq!(e.field, "presence_penalty");
    // The default, 0, passes unsaid everywhere.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "presence_penalty": 0, "frequency_penalty": 0.0}),
        ProviderKind::Anthropic,
    );
    assert!(anthropic.get("presence_penalty").is_none());
    // Gemini's seed is 32 bits.
    let e = sent(
        Format::OpenAiChat,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}], "seed": 1_u64 << 40}),
        "",
        ProviderKind::Gemini,
    )
    .unwrap_err();
    assert_eq!(e.field, "seed");
    // More than one candidate stays refused.
    let e = decode(
        Format::Gemini,
        &json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"candidateCount": 2}}),
        "gpt-4o",
    )
    .unwrap_err();
    assert_eq!(e.field, "generationConfig.candidateCount");
    let e = decode(
        Format::OpenAiChat,
        &json!({"model": "gemini-2.5-flash", "messages": [], "n": 2}),
        "",
    )
    .unwrap_err();
    assert_eq!(e.field, "n");
}

// ------------------------------------------------------------------ 6. text blocks kept apart

#[test]
fn text_blocks_are_not_run_together() {
    let ls = json!({"model": "m", "max_tokens": 10, "tools": [{"name": "ls", "input_schema": {"type": "object", "properties": {}}}],
    "messages": [
        {"role": "user", "content": "ls"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "text", "text": "a.txt"}, {"type": "text", "text": "b.txt"}]}]}
    ]});
    let (openai, _) = sent(Format::Anthropic, ls.clone(), "", ProviderKind::OpenAi).unwrap();
    assert_eq!(
        openai["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt\nb.txt"})
    );
    let (gemini, _) = sent(Format::Anthropic, ls, "", ProviderKind::Gemini).unwrap();
    assert_eq!(
        gemini["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"output": "a.txt\nb.txt"})
    );
    // A chat system message of two parts: two of Anthropic's system blocks.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        json!({"model": "claude-sonnet-4-5", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}]},
            {"role": "user", "content": "x"}]}),
        ProviderKind::Anthropic,
    );
    assert_eq!(
        anthropic["system"],
        json!([{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}])
    );
    // A chat tool message of two parts, to Anthropic: two blocks.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        json!({"model": "claude-sonnet-4-5", "messages": [
            {"role": "user", "content": "ls"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a.txt"}, {"type": "text", "text": "b.txt"}]}]}),
        ProviderKind::Anthropic,
    );
    assert_eq!(
        anthropic["messages"][2]["content"][0]["content"],
        json!([{"type": "text", "text": "a.txt"}, {"type": "text", "text": "b.txt"}])
    );
}

// ------------------------------------------------------------------ 7. output caps

#[test]
fn caps_above_a_known_models_limit_are_clamped_for_every_target() {
    let body = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 100_000});
    let anthropic = sent_ok(
        Format::OpenAiChat,
        body("claude-sonnet-4-5"),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 64_000);
    let anthropic = sent_ok(
        Format::OpenAiChat,
        body("claude-3-5-haiku-20241022"),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 8_192);
    // A model whose limit is not known: the app's cap.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        body("vendor-model"),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 100_000);
    let gemini = sent_ok(
        Format::OpenAiChat,
        body("gemini-2.5-flash"),
        ProviderKind::Gemini,
    );
    assert_eq!(gemini["generationConfig"]["maxOutputTokens"], 65_536);
    let gemini = sent_ok(
        Format::OpenAiChat,
        body("gemini-2.0-flash"),
        ProviderKind::Gemini,
    );
    assert_eq!(gemini["generationConfig"]["maxOutputTokens"], 8_192);
    // A model known only by its family: the app's cap as it is (a family's
    // smaller limit would cut its answers short unsaid); the provider may
    // refuse one too large, which the app then sees.
    let explicit = |model: &str, cap: u64| json!({"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": cap});
    for model in [
        "claude-opus-4-5",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-sonnet-4-7",
    ] {
        let anthropic = sent_ok(
            Format::OpenAiChat,
            explicit(model, 64_000),
            ProviderKind::Anthropic,
        );
        assert_eq!(anthropic["max_tokens"], 64_000, "{model}");
    }
    let anthropic = sent_ok(
        Format::OpenAiChat,
        explicit("claude-opus-4-20250514", 64_000),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 32_000);
    // An Anthropic app's own cap, too.
    let anthropic = sent_ok(
        Format::Anthropic,
        explicit("claude-opus-4-7", 64_000),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 64_000);
    // No cap: the family's limit.
    let anthropic = sent_ok(
        Format::OpenAiChat,
        json!({"model": "claude-opus-4-7", "messages": [{"role": "user", "content": "x"}]}),
        ProviderKind::Anthropic,
    );
    assert_eq!(anthropic["max_tokens"], 32_000);
    let openai = sent_ok(
        Format::Anthropic,
        explicit("gpt-4.5-preview", 16_000),
        ProviderKind::OpenAi,
    );
    assert_eq!(openai["max_completion_tokens"], 16_000);
    let openai = sent_ok(
        Format::Anthropic,
        explicit("gpt-4-0613", 16_000),
        ProviderKind::OpenAi,
    );
    assert_eq!(openai["max_completion_tokens"], 8_192);
    let gemini = sent_ok(
        Format::OpenAiChat,
        body("gemini-3.5-pro"),
        ProviderKind::Gemini,
    );
    assert_eq!(gemini["generationConfig"]["maxOutputTokens"], 100_000);
    // Below the limit: as asked.
    let mut small = body("claude-sonnet-4-5");
    small["max_tokens"] = json!(1000);
    let (anthropic, _) = sent(Format::OpenAiChat, small, "", ProviderKind::Anthropic).unwrap();
    assert_eq!(anthropic["max_tokens"], 1000);
}

// ------------------------------------------------------------------ 8. limits, budgets, image types

#[test]
fn too_many_stop_sequences_are_refused_naming_the_field() {
    let stops = |n: usize| (0..n).map(|i| format!("S{i}")).collect::<Vec<_>>();
    let body = |model: &str, n: usize| json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "stop_sequences": stops(n)});
    let e = sent(
        Format::Anthropic,
        body("gpt-4o", 5),
        "",
        ProviderKind::OpenAi,
    )
    .unwrap_err();
    assert_eq!(e.field, "stop_sequences");
    assert!(e.message.contains("at most 4"), "{}", e.message);
    let openai = sent_ok(Format::Anthropic, body("gpt-4o", 4), ProviderKind::OpenAi);
    assert_eq!(openai["stop"], json!(stops(4)));
    let e = sent(
        Format::Anthropic,
        body("gemini-2.5-flash", 6),
        "",
        ProviderKind::Gemini,
    )
    .unwrap_err();
    assert_eq!(e.field, "stop_sequences");
    let gemini = sent_ok(
        Format::Anthropic,
        body("gemini-2.5-flash", 5),
        ProviderKind::Gemini,
    );
    assert_eq!(gemini["generationConfig"]["stopSequences"], json!(stops(5)));
    // The app's own name for the field.
    let e = sent(
        Format::Gemini,
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"stopSequences": stops(5)}}),
        "gpt-4o",
        ProviderKind::OpenAi,
    )
    .unwrap_err();
    assert_eq!(e.field, "generationConfig.stopSequences");
}

#[test]
fn thinking_budget_stays_below_the_output_cap() {
    let gemini = sent_ok(
        Format::OpenAiChat,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
               "reasoning_effort": "high", "max_completion_tokens": 2000}),
        ProviderKind::Gemini,
    );
    let gc = &gemini["generationConfig"];
    assert_eq!(gc["maxOutputTokens"], 2000);
    let budget = gc["thinkingConfig"]["thinkingBudget"].as_u64().unwrap();
    assert!(budget < 2000, "{gc}");
    // Without a cap, the effort's budget.
    let gemini = sent_ok(
        Format::OpenAiChat,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}),
        ProviderKind::Gemini,
    );
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        24_576
    );
}

#[test]
fn image_urls_without_an_extension_are_not_labelled_jpeg() {
    let body = |url: &str| {
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    let file = |url: &str| {
        let (g, _) = sent(Format::OpenAiChat, body(url), "", ProviderKind::Gemini).unwrap();
        g["contents"][0]["parts"][0]["fileData"].clone()
    };
    assert_eq!(
        file("https://example.com/render?id=3"),
        json!({"fileUri": "https://example.com/render?id=3"})
    );
    assert_eq!(
        file("https://example.com/a.png?x=1"),
        json!({"mimeType": "image/png", "fileUri": "https://example.com/a.png?x=1"})
    );
    assert_eq!(
        file("https://example.com/a.JPG"),
        json!({"mimeType": "image/jpeg", "fileUri": "https://example.com/a.JPG"})
    );
}

// ------------------------------------------------------------------ schema property order

#[test]
fn schemas_keep_the_app_property_order() {
    let schema = json!({"type": "object", "properties": {
        "reasoning": {"type": "string"},
        "answer": {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "number"}}}
    }, "required": ["reasoning", "answer"], "additionalProperties": false});
    let body = |model: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "cot", "schema": schema, "strict": true}},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]})
    };
    let keys = |v: &Value| -> Vec<String> {
        v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let order = ["reasoning", "answer"];
    let anthropic = sent_ok(
        Format::OpenAiChat,
        body("claude-sonnet-4-5"),
        ProviderKind::Anthropic,
    );
    assert_eq!(keys(&anthropic["output_config"]["format"]["schema"]), order);
    assert_eq!(keys(&anthropic["tools"][0]["input_schema"]), order);
    let compat = sent_ok(
        Format::Anthropic,
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": schema}]}),
        ProviderKind::OpenAiCompatible,
    );
    assert_eq!(keys(&compat["tools"][0]["function"]["parameters"]), order);
    let gemini = sent_ok(
        Format::OpenAiChat,
        body("gemini-2.5-flash"),
        ProviderKind::Gemini,
    );
    let response = &gemini["generationConfig"]["responseSchema"];
    assert_eq!(keys(response), order);
    assert_eq!(response["propertyOrdering"], json!(order));
    assert_eq!(
        response["properties"]["answer"]["propertyOrdering"],
        json!(["zeta", "alpha"])
    );
    let params = &gemini["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(params["propertyOrdering"], json!(order));
    // One property: nothing to order. The app's own ordering: kept.
    let one = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let own = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "propertyOrdering": ["b", "a"]});
    for (s, want) in [(one, Value::Null), (own, json!(["b", "a"]))] {
        let gemini = sent_ok(
            Format::OpenAiChat,
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": s}}}),
            ProviderKind::Gemini,
        );
        assert_eq!(
            gemini["generationConfig"]["responseSchema"]["propertyOrdering"],
            want
        );
    }
    // A Gemini app's schema, to OpenAI: its order.
    let (openai, _) = sent(
        Format::Gemini,
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseMimeType": "application/json",
            "responseJsonSchema": schema}}),
        "gpt-4o",
        ProviderKind::OpenAi,
    )
    .unwrap();
    assert_eq!(
        keys(&openai["response_format"]["json_schema"]["schema"]),
        order
    );
}
