//! The reference codec against hand-written payloads of each shape.

use super::*;
use crate::sse::SseParser;
use crate::translate::ir::Role;
use serde_json::json;

use crate::translate::testkit::{PNG, tool_images};

#[test]
fn request_roundtrip_with_tools() {
    let body = br#"{
      "model": "gpt-4o",
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type":"text","text":"Weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
      ],
      "tools": [{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
      "tool_choice": "auto", "max_tokens": 100, "stream": true
    }"#;
    let req = decode_request(body).unwrap();
    assert_eq!(req.system, vec!["Be brief."]);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(
        req.messages[1].content[0],
        Part::ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into()
        }
    );
    assert_eq!(
        req.messages[2].content[0],
        Part::ToolResult {
            id: "call_1".into(),
            name: Some("get_weather".into()),
            content: vec![Part::Text("18C".into())],
            is_error: false
        }
    );
    assert!(
        matches!(&req.messages[0].content[1], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
    );
    let back = encode_request(&req).unwrap();
    assert_eq!(back["messages"][3]["role"], "tool");
    assert_eq!(
        back["messages"][2]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(back["stream_options"]["include_usage"], true);
    assert_eq!(
        decode_request(back.to_string().as_bytes())
            .unwrap()
            .messages,
        req.messages
    );
}

#[test]
fn unknown_fields_are_named() {
    let e = decode_request(br#"{"model":"m","messages":[],"logprobs":true}"#).unwrap_err();
    assert_eq!(e.field, "logprobs");
    let r = ChatRequest {
        top_k: Some(3),
        model: "m".into(),
        ..Default::default()
    };
    assert_eq!(encode_request(&r).unwrap_err().field, "top_k");
}

#[test]
fn stream_decode_encode() {
    let upstream = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );
    let mut p = SseParser::new();
    p.push(upstream.as_bytes());
    let mut d = Decoder::default();
    let mut evs = vec![];
    while let Some(e) = p.next_event() {
        d.event(&e, &mut evs);
    }
    assert_eq!(
        evs,
        vec![
            StreamEvent::Start {
                id: "chatcmpl-1".into(),
                model: "gpt-4o".into()
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_9".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":1}".into()
            },
            StreamEvent::Finish(StopReason::ToolUse),
            StreamEvent::Usage(Usage {
                input: 5,
                output: 3,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            }),
        ]
    );
    let mut enc = Encoder::new(&ChatRequest {
        model: "gpt-4o".into(),
        stream_usage: true,
        ..Default::default()
    });
    let mut out = BytesMut::new();
    for e in &evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(text.contains("\"finish_reason\":\"tool_calls\""));
    assert!(text.contains("\"prompt_tokens\":5"));
}

// ------------------------------------------------------------------ OpenAI's own dialect

/// An Anthropic app's request as IR: a cap and the sampling settings.
fn capped(model: &str, temperature: Option<f64>, top_p: Option<f64>) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        max_tokens: Some(256),
        temperature,
        top_p,
        messages: vec![crate::translate::ir::Message {
            role: crate::translate::ir::Role::User,
            content: vec![Part::Text("hi".into())],
        }],
        ..Default::default()
    }
}

/// The body the codec sends a provider of `kind`, and what it dropped.
fn encoded_for(kind: ProviderKind, mut req: ChatRequest) -> (serde_json::Value, ChatRequest) {
    let body = OpenAiChat.encode_request_for(&mut req, kind).unwrap();
    (serde_json::from_slice(&body).unwrap(), req)
}

fn dropped(req: &ChatRequest) -> Vec<(&str, bool)> {
    req.dropped
        .iter()
        .map(|d| (d.field.as_str(), d.always))
        .collect()
}

#[test]
fn openai_itself_gets_max_completion_tokens_and_vendors_max_tokens() {
    for model in ["gpt-4o", "o3", "gpt-5-mini", "gpt-5-chat-latest"] {
        let (v, _) = encoded_for(ProviderKind::OpenAi, capped(model, None, None));
        assert_eq!(v["max_completion_tokens"], 256, "{model}");
        assert!(v.get("max_tokens").is_none(), "{model}: {v}");
        // vLLM, DeepSeek, Mistral… know only `max_tokens`.
        let (v, _) = encoded_for(ProviderKind::OpenAiCompatible, capped(model, None, None));
        assert_eq!(v["max_tokens"], 256, "{model}");
        assert!(v.get("max_completion_tokens").is_none(), "{model}: {v}");
    }
    // The kind-less encoding is the common ground.
    let v = encode_request(&capped("o3", None, None)).unwrap();
    assert_eq!(v["max_tokens"], 256);
}

/// Claude Code asks for 32,000 output tokens; gpt-4o gives at most 16,384
/// and OpenAI refuses a larger cap. The smaller one is sent, to OpenAI
/// only (a vendor's model of the same name may differ), and a smaller cap
/// the app set stays as it is.
#[test]
fn openai_gets_at_most_its_models_output_limit() {
    let asked = |model: &str, cap: u64| ChatRequest {
        max_tokens: Some(cap),
        ..capped(model, None, None)
    };
    for (model, sent) in [
        ("gpt-4o", 16_384),
        ("gpt-4o-mini-2024-07-18", 16_384),
        ("gpt-4.1-mini", 32_000),
        ("o3", 32_000),
        ("gpt-5-chat-latest", 16_384),
        ("ft:gpt-4o-mini:org::x1", 16_384),
        ("ft:gpt-4o-mini-2024-07-18:org::x1", 16_384),
        ("gpt-4o-2024-08-06", 16_384),
        ("gpt-4o-2024-05-13", 4_096),
        ("chatgpt-4o-latest", 16_384),
        ("gpt-4-0613", 8_192),
        ("gpt-4-turbo-2024-04-09", 4_096),
        ("gpt-4-1106-preview", 4_096),
        ("gpt-3.5-turbo-0125", 4_096),
        ("gpt-4.1-2025-04-14", 32_000),
        ("some-new-model", 32_000),
        // Known by family alone: the app's cap, never a family's smaller
        // limit (gpt-4's 8,192, gpt-5's 128,000).
        ("gpt-4.5-preview", 16_384),
        ("gpt-4-32k", 32_000),
        ("gpt-4o-audio-preview", 32_000),
        ("gpt-4.1-new", 32_000),
        ("o3-pro", 32_000),
    ] {
        let (v, _) = encoded_for(ProviderKind::OpenAi, asked(model, 32_000));
        assert_eq!(v["max_completion_tokens"], sent, "{model}");
    }
    for model in ["gpt-5-pro", "gpt-5.1", "gpt-5-codex", "gpt-4.5"] {
        let (v, _) = encoded_for(ProviderKind::OpenAi, asked(model, 200_000));
        assert_eq!(v["max_completion_tokens"], 200_000, "{model}");
    }
    let (v, _) = encoded_for(ProviderKind::OpenAi, asked("gpt-5-2025-08-07", 200_000));
    assert_eq!(v["max_completion_tokens"], 128_000);
    let (v, _) = encoded_for(ProviderKind::OpenAi, asked("gpt-4.5-preview", 16_000));
    assert_eq!(v["max_completion_tokens"], 16_000);
    let (v, _) = encoded_for(ProviderKind::OpenAi, asked("gpt-4o", 1_000));
    assert_eq!(v["max_completion_tokens"], 1_000);
    let (v, _) = encoded_for(ProviderKind::OpenAiCompatible, asked("gpt-4o", 32_000));
    assert_eq!(v["max_tokens"], 32_000);
}

#[test]
fn openai_reasoning_models_get_no_sampling_settings() {
    for model in [
        "o1",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5.1-codex",
        "ft:o4-mini:org::x",
    ] {
        let (v, req) = encoded_for(ProviderKind::OpenAi, capped(model, Some(0.2), Some(0.95)));
        assert!(
            v.get("temperature").is_none() && v.get("top_p").is_none(),
            "{model}: {v}"
        );
        // Hints: dropped on lenient routes, refused on strict ones.
        assert_eq!(
            dropped(&req),
            [("temperature", false), ("top_p", false)],
            "{model}"
        );
        assert_eq!(req.dropped.strict_refusal().unwrap().field, "temperature");
        // The default is what the model does anyway: left out unsaid.
        let (v, req) = encoded_for(ProviderKind::OpenAi, capped(model, Some(1.0), Some(1.0)));
        assert!(
            v.get("temperature").is_none() && v.get("top_p").is_none(),
            "{model}: {v}"
        );
        assert!(req.dropped.is_empty(), "{model}");
    }
    // Chat models, and any model of a compatible vendor, keep them.
    for (kind, model) in [
        (ProviderKind::OpenAi, "gpt-4o"),
        (ProviderKind::OpenAi, "gpt-5-chat-latest"),
        (ProviderKind::OpenAiCompatible, "o3"),
        (ProviderKind::OpenAiCompatible, "gpt-5"),
    ] {
        let (v, req) = encoded_for(kind, capped(model, Some(0.2), Some(0.95)));
        assert_eq!(
            (&v["temperature"], &v["top_p"]),
            (&json!(0.2), &json!(0.95)),
            "{model}"
        );
        assert!(req.dropped.is_empty(), "{model}");
    }
}

/// Through the planner: an Anthropic app on a route to OpenAI's o3.
#[test]
fn the_planner_encodes_for_the_providers_kind() {
    use crate::endpoints::{Endpoint, classify};
    use crate::plan::{Probe, plan};
    use crate::runtime::Upstream;
    use crate::schedule::Pool;
    use aigw_proto::model::{Glob, Provider, Strategy};
    use bytes::Bytes;
    use http::{HeaderMap, Method};

    let Endpoint::Call(call) = classify(&Method::POST, "/v1/messages", None, &HeaderMap::new())
    else {
        panic!("an Anthropic call")
    };
    let upstream = |kind| Upstream {
        provider: Provider {
            name: "p".into(),
            kind,
            base_url: "http://x".into(),
            models: vec![Glob::new("*")],
            strategy: Strategy::RoundRobin,
            keys: vec![],
            model_map: Default::default(),
            affinity: Default::default(),
        },
        pool: Pool::new(vec![], Strategy::RoundRobin),
    };
    let body = Bytes::from_static(
        br#"{"model":"o3","max_tokens":64,"temperature":0.5,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let probe = Probe::parse(&call, &body).unwrap();
    let go = |kind, strict| {
        plan(
            &call,
            &probe,
            &body,
            &HeaderMap::new(),
            &upstream(kind),
            strict,
        )
    };
    let p = go(ProviderKind::OpenAi, false).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["max_completion_tokens"], 64);
    assert!(
        v.get("max_tokens").is_none() && v.get("temperature").is_none(),
        "{v}"
    );
    assert_eq!(p.dropped_header().unwrap(), "temperature");
    let Err(e) = go(ProviderKind::OpenAi, true) else {
        panic!("a strict route refuses the dropped temperature")
    };
    assert!(e.to_string().contains("`temperature`"), "{e}");
    let p = go(ProviderKind::OpenAiCompatible, true).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(
        (&v["max_tokens"], &v["temperature"]),
        (&json!(64), &json!(0.5))
    );
}

// ------------------------------------------------------------------ defaults spelled out

#[test]
fn fields_at_their_defaults_are_accepted_unnamed() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],
        "n":1,"presence_penalty":0,"frequency_penalty":0.0,"logprobs":false,"top_logprobs":0,
        "logit_bias":{},"modalities":["text"],"functions":[],
        "stream":false,"stream_options":{"include_usage":true}}"#;
    let req = decode_request(body).unwrap();
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
    assert!(!req.stream);
    // `parallel_tool_calls` is translated (see `refusals`), whatever its value.
    let req = decode_request(
        br#"{"model":"m","messages":[],"parallel_tool_calls":false,"presence_penalty":0}"#,
    )
    .unwrap();
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
    assert!(req.serial_tool_calls);
}

#[test]
fn fields_off_their_defaults_are_still_refused() {
    for (field, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("logit_bias", json!({"50256": -100})),
        ("modalities", json!(["text", "audio"])),
        ("functions", json!([{"name": "f"}])),
        ("presence_penalty", json!("0")),
    ] {
        let body = json!({"model": "m", "messages": [], field: value});
        let e = decode_request(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, field, "{body}");
    }
}

// ------------------------------------------------------------------ vendors that repeat a call's name

/// DeepSeek, Qwen, Fireworks and LiteLLM send a call's id and name on every
/// chunk of it (here two parallel calls, interleaved).
const REPEATING: &str = concat!(
    "data: {\"id\":\"c1\",\"model\":\"deepseek-chat\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"file_path\\\":\"}}]}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"Grep\",\"arguments\":\"{\\\"pattern\\\":\"}}]}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"\\\"/a.txt\\\"}\"}}]}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"Grep\",\"arguments\":\"\\\"x\\\"}\"}}]}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: [DONE]\n\n",
);

/// The calls a list of IR events makes: (index, id, name, arguments).
fn calls_of(evs: &[StreamEvent]) -> Vec<(u32, String, String, String)> {
    let mut calls: Vec<(u32, String, String, String)> = vec![];
    for e in evs {
        match e {
            StreamEvent::ToolCallStart { index, id, name } => {
                calls.push((*index, id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                let call = calls.iter_mut().find(|c| c.0 == *index).unwrap();
                call.3.push_str(arguments);
            }
            _ => {}
        }
    }
    calls
}

fn decoded(stream: &str) -> Vec<StreamEvent> {
    crate::translate::testkit::decode_with(Decoder::default(), stream.as_bytes(), [])
}

#[test]
fn a_call_repeating_its_id_and_name_starts_once() {
    let evs = decoded(REPEATING);
    let starts = evs
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallStart { .. }))
        .count();
    assert_eq!(starts, 2, "{evs:?}");
    assert_eq!(
        calls_of(&evs),
        [
            (
                0,
                "call_a".into(),
                "Read".into(),
                r#"{"file_path":"/a.txt"}"#.into()
            ),
            (
                1,
                "call_b".into(),
                "Grep".into(),
                r#"{"pattern":"x"}"#.into()
            ),
        ]
    );
}

#[test]
fn calls_sharing_an_index_or_without_one_are_told_apart_by_id() {
    // Every call at index 0, told apart by its id alone.
    let same_index = concat!(
        "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1\"}}]}}]}\n\n",
        // An earlier call's id, repeated: that call goes on.
        "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\" \"}}]}}]}\n\n",
        "data: {\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"}\"}}]}}]}\n\n",
    );
    assert_eq!(
        calls_of(&decoded(same_index)),
        [
            (0, "call_a".into(), "f".into(), "{} ".into()),
            (1, "call_b".into(), "g".into(), r#"{"a":1}"#.into()),
        ]
    );
    // No index at all: a new id starts a call, anything else continues the
    // last; a call sent without an id is given one.
    let no_index = concat!(
        "data: {\"id\":\"c-3\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c-3\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_a\",\"function\":{\"name\":\"f\",\"arguments\":\":1}\"}}]}}]}\n\n",
        "data: {\"id\":\"c-3\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"c-3\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":5,\"function\":{\"name\":\"h\",\"arguments\":\"{}\"}}]}}]}\n\n",
    );
    assert_eq!(
        calls_of(&decoded(no_index)),
        [
            (0, "call_a".into(), "f".into(), r#"{"a":1}"#.into()),
            (1, "call_b".into(), "g".into(), "{}".into()),
            (2, "call_c-3_2".into(), "h".into(), "{}".into()),
        ]
    );
}

/// The repeating stream as Claude Code reads it: one `tool_use` block per
/// call, each with its whole input.
#[test]
fn a_repeating_stream_reaches_an_anthropic_app_as_one_block_per_call() {
    use crate::translate::anthropic;
    let app = ChatRequest {
        model: "deepseek-chat".into(),
        stream: true,
        ..Default::default()
    };
    let text =
        crate::translate::testkit::encode_with(anthropic::Encoder::new(&app), &decoded(REPEATING));
    let mut p = SseParser::new();
    p.push(text.as_bytes());
    let mut blocks: Vec<(u64, String, String)> = vec![];
    while let Some(e) = p.next_event() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data) else {
            continue;
        };
        match v["type"].as_str() {
            Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
                blocks.push((
                    v["index"].as_u64().unwrap(),
                    v["content_block"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            Some("content_block_delta") if v["delta"]["type"] == "input_json_delta" => {
                let b = blocks
                    .iter_mut()
                    .find(|b| Some(b.0) == v["index"].as_u64())
                    .unwrap();
                b.2.push_str(v["delta"]["partial_json"].as_str().unwrap());
            }
            _ => {}
        }
    }
    let calls: Vec<(&str, &str)> = blocks
        .iter()
        .map(|b| (b.1.as_str(), b.2.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("Read", r#"{"file_path":"/a.txt"}"#),
            ("Grep", r#"{"pattern":"x"}"#)
        ],
        "{text}"
    );
}

// ------------------------------------------------------------------ images in tool results

/// The upstream chat messages for a request whose tools returned images.
fn messages_for(req: ChatRequest) -> serde_json::Value {
    encode_request(&req).expect("encodes")["messages"].clone()
}

/// Claude Code reads an image file (and later turns keep it in the history):
/// OpenAI gets the tool's text as the `tool` message and the picture in a
/// `user` message after all the turn's `tool` messages, named after its
/// call, before the turn's own text; a text-only result beside it is sent as
/// ever.
#[test]
fn claude_code_reading_an_image_is_answered_by_openai() {
    let messages = messages_for(tool_images::claude_code_read());
    assert_eq!(
        messages.as_array().map(|m| m[2..].to_vec()),
        Some(vec![
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Read image (12 bytes)"}),
            json!({"role": "tool", "tool_call_id": "toolu_2", "content": "buy milk"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "Images returned by tool call toolu_1:"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "text", "text": "Describe both."}
            ]}),
        ])
    );
}

/// A screenshot tool returns only a picture (one of them a URL, one an
/// error): each `tool` message says the image follows, and the images come
/// in one `user` message, in the order of the results.
#[test]
fn screenshot_tool_returning_only_images_is_answered_by_openai() {
    let messages = messages_for(tool_images::screenshots());
    assert_eq!(
        messages.as_array().map(|m| m[2..].to_vec()),
        Some(vec![
            json!({"role": "tool", "tool_call_id": "toolu_a", "content": "(image attached below)"}),
            json!({"role": "tool", "tool_call_id": "toolu_b", "content": "Error: (image attached below)"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "Images returned by tool call toolu_a:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A=="}},
                {"type": "text", "text": "Images returned by tool call toolu_b:"},
                {"type": "image_url", "image_url": {"url": "https://example.com/crash.png"}}
            ]}),
        ])
    );
}

/// Codex's `function_call_output` holding an `input_image` reaches OpenAI
/// chat the same way: text in the `tool` message, the picture after it.
#[test]
fn codex_function_output_with_an_image_is_answered_by_openai_chat() {
    let messages = messages_for(tool_images::codex_output());
    assert_eq!(
        messages.as_array().map(|m| m[2..].to_vec()),
        Some(vec![
            json!({"role": "tool", "tool_call_id": "call_1", "content": "chart.png"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "Images returned by tool call call_1:"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}
            ]}),
        ])
    );
}

/// OpenAI answers 400 "'tool_choice' is only allowed when 'tools' are
/// specified". An app whose only tools are hosted ones the translation
/// leaves out (Anthropic's web search, Gemini's googleSearch) sends no
/// `tool_choice` on; a forced call still fails as it should.
#[test]
fn tool_choice_without_tools_is_not_sent() {
    use crate::translate::{Format, decode_request, encode_request};
    let anthropic = br#"{"model":"gpt-4o","max_tokens":100,
        "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}],
        "tool_choice":{"type":"auto"},
        "messages":[{"role":"user","content":"News today?"}]}"#;
    let gemini = br#"{"contents":[{"role":"user","parts":[{"text":"News today?"}]}],
        "tools":[{"googleSearch":{}}],
        "toolConfig":{"functionCallingConfig":{"mode":"NONE"}}}"#;
    for (fmt, body) in [(Format::Anthropic, &anthropic[..]), (Format::Gemini, &gemini[..])] {
        let mut req = decode_request(fmt, body, Some("gpt-4o"), false).unwrap();
        let out: serde_json::Value =
            serde_json::from_slice(&encode_request(Format::OpenAiChat, &mut req).unwrap()).unwrap();
        assert!(out.get("tools").is_none() && out.get("tool_choice").is_none(), "{fmt:?}: {out}");
    }
    let mut with_tool = decode_request(
        Format::Anthropic,
        br#"{"model":"gpt-4o","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"},"messages":[{"role":"user","content":"hi"}]}"#,
        None,
        false,
    )
    .unwrap();
    let out: serde_json::Value =
        serde_json::from_slice(&encode_request(Format::OpenAiChat, &mut with_tool).unwrap()).unwrap();
    assert_eq!(out["tool_choice"], "auto", "{out}");
}

/// Azure OpenAI opens every stream with the prompt's filter results, a
/// chunk with no id, model or choices
/// (https://github.com/pydantic/pydantic-ai/issues/797): the answer's id
/// and model come from the next chunk, not blanks from that one.
#[test]
fn azure_prompt_filter_chunk_starts_nothing() {
    let up = concat!(
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let evs = crate::translate::testkit::decode_with(Decoder::default(), up.as_bytes(), []);
    assert_eq!(
        evs,
        vec![
            StreamEvent::Start {
                id: "chatcmpl-9".into(),
                model: "gpt-4o-2024-08-06".into()
            },
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::Finish(StopReason::EndTurn),
        ]
    );
}

/// Answers of calls that end with `stop`, streams cut short.
mod endings;
/// What OpenAI refuses that other formats' apps send.
mod refusals;

/// An SDK appends the answer's message to the history as is: a refusal
/// (`content: null` beside `refusal`, or a `refusal` part) stays the
/// assistant's turn, as text, so the next turn does not run into the last.
#[test]
fn a_refusal_in_the_history_stays_the_assistants_turn() {
    let body = br#"{
      "model": "gpt-4o",
      "messages": [
        {"role": "user", "content": "Do the bad thing."},
        {"role": "assistant", "content": null, "refusal": "I can't help with that."},
        {"role": "user", "content": "Then the good one."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "Still no."}]},
        {"role": "user", "content": "Fine."}
      ]
    }"#;
    let req = decode_request(body).unwrap();
    let turns: Vec<(Role, Vec<Part>)> = req
        .messages
        .iter()
        .map(|m| (m.role, m.content.clone()))
        .collect();
    assert_eq!(
        turns,
        vec![
            (Role::User, vec![Part::Text("Do the bad thing.".into())]),
            (Role::Assistant, vec![Part::Text("I can't help with that.".into())]),
            (Role::User, vec![Part::Text("Then the good one.".into())]),
            (Role::Assistant, vec![Part::Text("Still no.".into())]),
            (Role::User, vec![Part::Text("Fine.".into())]),
        ]
    );
}

/// Cline and Roo Code mark prompt-cache breakpoints in OpenAI chat requests
/// with Anthropic's `cache_control` (OpenRouter's and LiteLLM's spelling):
/// to Anthropic they are kept where the app put them, at most four (tools
/// and system first, then the latest messages'); to Gemini, which caches
/// by itself, they are dropped and named.
#[test]
fn cache_breakpoints_reach_anthropic_where_the_app_put_them() {
    use crate::translate::{Format, decode_request, encode_request};
    use serde_json::Value;
    let mark = json!({"type": "ephemeral"});
    let user = |text: &str, cached: bool| {
        let mut part = json!({"type": "text", "text": text});
        if cached {
            part["cache_control"] = mark.clone();
        }
        json!({"role": "user", "content": [part]})
    };
    let body = |users: Vec<Value>| {
        let mut messages = vec![json!({"role": "system", "content": [
            {"type": "text", "text": "You are Cline."},
            {"type": "text", "text": "Rules.", "cache_control": mark}]})];
        messages.extend(users);
        json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": messages,
               "tools": [{"type": "function", "cache_control": mark,
                          "function": {"name": "read_file", "parameters": {"type": "object"}}}]})
        .to_string()
    };
    let anthropic = |b: String| {
        let mut req = decode_request(Format::OpenAiChat, b.as_bytes(), None, false).unwrap();
        let out = encode_request(Format::Anthropic, &mut req).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        (v, req)
    };
    let (v, req) = anthropic(body(vec![user("first", true), user("plain", false)]));
    assert_eq!(v["system"][0].get("cache_control"), None, "{v}");
    assert_eq!(v["system"][1]["cache_control"], mark, "{v}");
    assert_eq!(v["tools"][0]["cache_control"], mark, "{v}");
    let blocks: Vec<&Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap())
        .collect();
    assert_eq!(blocks[0]["cache_control"], mark, "{v}");
    assert_eq!(blocks[1].get("cache_control"), None, "{v}");
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);

    // Five marks: the oldest message's goes, and is named.
    let (v, req) = anthropic(body(vec![
        user("a", true),
        json!({"role": "assistant", "content": "ok"}),
        user("b", true),
        json!({"role": "assistant", "content": "ok"}),
        user("c", true),
    ]));
    let marked = v.to_string().matches("cache_control").count();
    assert_eq!(marked, 4, "{v}");
    assert_eq!(v["messages"][0]["content"][0].get("cache_control"), None, "{v}");
    assert_eq!(v["messages"][4]["content"][0]["cache_control"], mark, "{v}");
    assert_eq!(dropped(&req), [("messages[*].content[*].cache_control", true)]);

    // An empty system text is left out: the mark stays on its own text.
    // Every tool marked: the last one caches them all, and is kept.
    let tools: Vec<Value> = (0..6)
        .map(|k| json!({"type": "function", "cache_control": mark,
                        "function": {"name": format!("t{k}"), "parameters": {"type": "object"}}}))
        .collect();
    let b = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": tools, "messages": [
        {"role": "system", "content": [{"type": "text", "text": ""},
                                       {"type": "text", "text": "Long rules.", "cache_control": mark}]},
        {"role": "system", "content": "More."},
        {"role": "user", "content": [{"type": "text", "text": "  ", "cache_control": mark},
                                     {"type": "text", "text": "hi", "cache_control": mark}]}]});
    let (v, _) = anthropic(b.to_string());
    assert_eq!(v["system"][0]["text"], "Long rules.", "{v}");
    assert_eq!(v["system"][0]["cache_control"], mark, "{v}");
    assert_eq!(v["system"][1].get("cache_control"), None, "{v}");
    assert_eq!(v["tools"][5]["cache_control"], mark, "{v}");
    assert_eq!(v["messages"][0]["content"][0]["cache_control"], mark, "{v}");
    assert_eq!(v.to_string().matches("cache_control").count(), 4, "{v}");

    let mut req = decode_request(
        Format::OpenAiChat,
        body(vec![user("x", true)]).as_bytes(),
        None,
        false,
    )
    .unwrap();
    let out = encode_request(Format::Gemini, &mut req).unwrap();
    assert!(!String::from_utf8_lossy(&out).contains("cache"));
    assert_eq!(dropped(&req), [("messages[*].content[*].cache_control", true)]);
}
