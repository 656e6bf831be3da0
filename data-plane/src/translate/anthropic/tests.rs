//! Tests against fixtures of real Anthropic payloads
//! (`data-plane/tests/fixtures/anthropic/README.md` says where each shape
//! comes from).

use serde_json::{Value, json};

use super::*;
use crate::translate::ir::{
    ChatRequest, ChatResponse, Image, Message, Part, ResponseFormat, Role, StopReason, StreamEvent,
    ToolChoice,
};
use crate::translate::testkit::{decode_with, encode_with};
use crate::translate::{gemini, openai_chat};
use crate::usage::Usage;

const REQUEST: &str = include_str!("../../../tests/fixtures/anthropic/request_tools.json");
const RESPONSE_TOOL: &str =
    include_str!("../../../tests/fixtures/anthropic/response_tool_use.json");
const RESPONSE_TEXT: &str = include_str!("../../../tests/fixtures/anthropic/response_text.json");

fn decode(bytes: &str) -> Vec<StreamEvent> {
    decode_with(Decoder::default(), bytes.as_bytes(), [])
}

// ------------------------------------------------------------------ request

#[test]
fn request_fixture_decodes() {
    let req = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(req.model, "claude-sonnet-4-20250514");
    assert_eq!(
        req.system,
        ["You are a helpful assistant.", "Answer in one sentence."]
    );
    assert_eq!(req.messages.len(), 3);
    assert!(
        matches!(&req.messages[0].content[0], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
    );
    let Part::ToolCall {
        id,
        name,
        arguments,
    } = &req.messages[1].content[1]
    else {
        panic!("not a tool call")
    };
    assert_eq!(
        (id.as_str(), name.as_str()),
        ("toolu_01A09q90qw90lq917835lq9", "weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"location": "Florence, Italy"})
    );
    assert_eq!(
        req.messages[2].content,
        [Part::ToolResult {
            id: "toolu_01A09q90qw90lq917835lq9".into(),
            name: Some("weather".into()),
            content: vec![Part::Text("40 C, sunny".into())],
            is_error: false,
        }]
    );
    assert_eq!(req.tools[0].parameters["additionalProperties"], false);
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        (req.max_tokens, req.temperature, req.top_k),
        (Some(1024), Some(0.7), Some(40))
    );
    assert_eq!(req.stop, ["END"]);
    assert_eq!(req.user.as_deref(), Some("user-7f3a"));
    assert!(req.stream);
}

#[test]
fn request_roundtrip() {
    let mut req = decode_request(REQUEST.as_bytes()).unwrap();
    // The fixture's cache breakpoint is the only thing left out.
    assert_eq!(
        dropped(&std::mem::take(&mut req.dropped)),
        [("system[*].cache_control", true)]
    );
    let body = encode_request(&mut req).unwrap();
    assert_eq!(
        body["system"][1],
        json!({"type": "text", "text": "Answer in one sentence."})
    );
    assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(body["messages"][2]["content"][0]["content"], "40 C, sunny");
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["metadata"], json!({"user_id": "user-7f3a"}));
    assert_eq!(decode_request(body.to_string().as_bytes()).unwrap(), req);
}

#[test]
fn request_to_openai_and_gemini() {
    let mut req = decode_request(REQUEST.as_bytes()).unwrap();
    // OpenAI has no top_k: refused, named.
    assert_eq!(
        openai_chat::encode_request(&req).unwrap_err().field,
        "top_k"
    );
    req.top_k = None;
    let oa = openai_chat::encode_request(&req).unwrap();
    let roles: Vec<&str> = oa["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "system", "user", "assistant", "tool"]);
    assert!(
        oa["messages"][2]["content"][0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(
        oa["messages"][3]["tool_calls"][0]["id"],
        "toolu_01A09q90qw90lq917835lq9"
    );
    assert_eq!(
        oa["messages"][4],
        json!({"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "40 C, sunny"})
    );
    assert_eq!(oa["stop"], json!(["END"]));

    let req = decode_request(REQUEST.as_bytes()).unwrap();
    let g = gemini::encode_request(&req).unwrap();
    let roles: Vec<&str> = g["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(
        g["contents"][1]["parts"][1]["functionCall"]["args"],
        json!({"location": "Florence, Italy"})
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"],
        json!({"id": "toolu_01A09q90qw90lq917835lq9", "name": "weather", "response": {"output": "40 C, sunny"}})
    );
    let params = &g["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(params["type"], "OBJECT");
    assert!(params.get("additionalProperties").is_none());
    assert_eq!(g["generationConfig"]["topK"], 40);
    assert_eq!(
        g["systemInstruction"]["parts"][1]["text"],
        "Answer in one sentence."
    );
}

#[test]
fn encoding_alternates_and_defaults() {
    let call = |id: &str| Part::ToolCall {
        id: id.into(),
        name: "f".into(),
        arguments: String::new(),
    };
    let result = |id: &str| Part::ToolResult {
        id: id.into(),
        name: None,
        content: vec![],
        is_error: true,
    };
    let mut req = ChatRequest {
        model: "claude".into(),
        messages: vec![
            Message {
                role: Role::User,
                content: vec![Part::Text("a".into())],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::Text(String::new()),
                    Part::Image(Image::Url("https://x/y.png".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![call("functions.f:0")],
            },
            Message {
                role: Role::Assistant,
                content: vec![call("call_2")],
            },
            Message {
                role: Role::User,
                content: vec![Part::Text("and?".into())],
            },
            Message {
                role: Role::User,
                content: vec![result("functions.f:0"), result("call_2")],
            },
        ],
        ..Default::default()
    };
    let body = encode_request(&mut req).unwrap();
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "same-role turns merge: {msgs:?}");
    assert_eq!(
        msgs[0]["content"][1]["source"],
        json!({"type": "url", "url": "https://x/y.png"})
    );
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "functions_f_0", "name": "f", "input": {}})
    );
    let types: Vec<&str> = msgs[2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["tool_result", "tool_result", "text"],
        "results first"
    );
    assert_eq!(
        msgs[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "functions_f_0", "is_error": true})
    );
}

fn dropped(d: &crate::translate::ir::Drops) -> Vec<(&str, bool)> {
    d.iter().map(|x| (x.field.as_str(), x.always)).collect()
}

#[test]
fn unsupported_fields_are_named() {
    let field = |body: Value| {
        decode_request(body.to_string().as_bytes())
            .unwrap_err()
            .field
    };
    let drops = |body: Value| decode_request(body.to_string().as_bytes()).unwrap().dropped;
    let base = |extra: Value| {
        let mut b =
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // Hints and bookkeeping Claude Code sends are dropped, named, and
    // refused on strict routes (`always: false`).
    let claude_code = base(json!({
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "{\"device_id\":\"d\"}"},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
        ],
        "output_config": {"effort": "high"},
        "service_tier": "auto",
    }));
    let req = decode_request(claude_code.to_string().as_bytes()).unwrap();
    assert_eq!(
        dropped(&req.dropped),
        [
            ("context_management", false),
            ("messages[*].content[*].cache_control", true),
            ("messages[*].content[*].thinking", false),
            ("output_config.effort", false),
            ("service_tier", true),
            ("system[*].cache_control", true),
        ]
    );
    // The thinking budget is kept for the targets that take one (Gemini);
    // for the others it is a hint, named on the way.
    let mut for_openai = req.clone();
    crate::translate::encode_request(crate::translate::Format::OpenAiChat, &mut for_openai)
        .unwrap();
    assert_eq!(
        for_openai
            .dropped
            .iter()
            .last()
            .map(|d| (d.field.as_str(), d.always)),
        Some(("thinking", false))
    );
    assert_eq!(
        req.messages[1].content.len(),
        1,
        "the thinking block is gone"
    );
    assert_eq!(
        req.dropped.strict_refusal().map(|d| d.field.as_str()),
        Some("context_management")
    );
    assert_eq!(
        field(base(
            json!({"output_config": {"format": {"type": "json_schema"}}})
        )),
        "output_config"
    );
    assert!(
        decode_request(
            base(json!({"thinking": {"type": "disabled"}}))
                .to_string()
                .as_bytes()
        )
        .is_ok()
    );
    assert_eq!(field(base(json!({"container": "c_1"}))), "container");
    // A server tool is left out of the offer; forcing it cannot be honoured.
    let server_tool = json!({"tools": [
        {"type": "web_search_20250305", "name": "web_search"},
        {"name": "f", "input_schema": {"type": "object"}}
    ]});
    let d = drops(base(server_tool.clone()));
    assert_eq!(dropped(&d), [("tools[*].web_search_20250305", false)]);
    let mut forced = server_tool;
    forced["tool_choice"] = json!({"type": "tool", "name": "web_search"});
    assert_eq!(field(base(forced)), "tool_choice (web_search)");
    let doc = json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}}]}]});
    assert_eq!(field(base(doc)), "messages[0].content[0].document");
    let cited = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "citations": [{"type": "char_location"}]}]}]});
    assert_eq!(field(base(cited)), "messages[0].content[0].citations");
    let cached = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}, "citations": null}]}]});
    assert!(
        decode_request(base(cached).to_string().as_bytes()).is_ok(),
        "cache_control is advisory"
    );
    let wrong_turn = json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]});
    assert_eq!(field(base(wrong_turn)), "messages[0].content[0]");
    assert_eq!(field(json!({"messages": []})), "model");
    assert_eq!(decode_request(b"{").unwrap_err().field, "body");

    let mut r = ChatRequest {
        model: "m".into(),
        response_format: Some(ResponseFormat::JsonObject),
        ..Default::default()
    };
    assert_eq!(encode_request(&mut r).unwrap_err().field, "response_format");
    let mut bad_args = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "[1]".into(),
            }],
        }],
        ..Default::default()
    };
    // Arguments that are no object (OpenAI's formats carry any text) are
    // sent as `{}` and named, rather than refusing every later turn.
    let sent = encode_request(&mut bad_args).unwrap();
    assert_eq!(sent["messages"][0]["content"][0]["input"], json!({}));
    assert_eq!(
        dropped(&bad_args.dropped),
        [("messages[*].tool_calls[*].function.arguments", false)]
    );
}

#[test]
fn malformed_input_never_panics() {
    let bodies = [
        "[]",
        "null",
        "{\"model\": 1}",
        "{\"model\": \"m\", \"messages\": {}}",
        "{\"model\": \"m\", \"messages\": [1, null, {\"role\": 3}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [1, {\"type\": 2}, {\"type\": \"image\"}]}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"tool_result\"}]}]}",
        "{\"model\": \"m\", \"system\": [{\"type\": \"text\"}], \"tools\": [{}], \"tool_choice\": {\"type\": \"tool\"}}",
        "{\"model\": \"m\", \"max_tokens\": -1, \"stop_sequences\": [1]}",
    ];
    for b in bodies {
        assert!(decode_request(b.as_bytes()).is_err(), "{b}");
    }
    for b in [
        "[]",
        "{\"content\": 5, \"usage\": []}",
        "{\"content\": [{\"type\": \"tool_use\", \"input\": 3}, 7]}",
    ] {
        let _ = decode_response(b.as_bytes());
    }
    assert!(decode_response(b"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}").is_err());
    let garbage = "data: {\ndata: [1]\n\nevent: content_block_delta\ndata: {\"index\": \"x\", \"delta\": 5}\n\ndata: {\"type\":\"message_delta\",\"usage\":7}\n\n";
    let _ = decode(garbage);
}

// ------------------------------------------------------------------ response

#[test]
fn response_fixtures_decode() {
    let r = decode_response(RESPONSE_TOOL.as_bytes()).unwrap();
    assert_eq!(r.id, "msg_01Aq9w938a90dw8q");
    assert_eq!(
        r.content[0],
        Part::Text("I'll check the weather in Florence, Italy for you.".into())
    );
    assert!(matches!(&r.content[1], Part::ToolCall { name, .. } if name == "weather"));
    assert_eq!(r.stop, Some(StopReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage {
            input: 394,
            output: 66,
            cached: 0,
            reasoning: 0,
            ..Default::default()
        }
    );

    // input = uncached + cache reads + cache writes; cached = reads.
    let r = decode_response(RESPONSE_TEXT.as_bytes()).unwrap();
    assert_eq!(
        r.usage,
        Usage {
            input: 25 + 1800 + 120,
            output: 34,
            cached: 1800,
            reasoning: 0,
            cache_write: 120,
            cache_write_1h: 0,
        }
    );

    // Writes by lifetime, as the API reports them since 2025: a 1-hour
    // write is billed at twice the input price, a 5-minute one at 1.25x.
    let by_ttl = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_read_input_tokens":0,"cache_creation_input_tokens":300,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":5}}"#;
    let u = decode_response(by_ttl.as_bytes()).unwrap().usage;
    assert_eq!((u.input, u.cache_write, u.cache_write_1h), (310, 300, 200));
    let price = aigw_proto::model::Price {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
    };
    let expected = (10.0 * 3.0 + 100.0 * 3.75 + 200.0 * 6.0 + 5.0 * 15.0) / 1e6;
    assert!((u.cost(Some(price)) - expected).abs() < 1e-12);
    // A hostile object in place of the breakdown costs the rest nothing.
    let odd = by_ttl.replace(
        r#"{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}"#,
        "[1]",
    );
    let u = decode_response(odd.as_bytes()).unwrap().usage;
    assert_eq!((u.input, u.cache_write, u.cache_write_1h), (310, 300, 0));
    assert_eq!(r.stop, Some(StopReason::EndTurn));
}

#[test]
fn response_roundtrip_and_to_openai() {
    for body in [RESPONSE_TOOL, RESPONSE_TEXT] {
        let r = decode_response(body.as_bytes()).unwrap();
        let again = encode_response(&r);
        assert_eq!(
            again["usage"]["input_tokens"],
            r.usage.input - r.usage.cached - r.usage.cache_write
        );
        assert_eq!(
            again["usage"]["cache_creation_input_tokens"],
            r.usage.cache_write
        );
        assert_eq!(decode_response(again.to_string().as_bytes()).unwrap(), r);
    }
    let r = decode_response(RESPONSE_TOOL.as_bytes()).unwrap();
    let oa = openai_chat::encode_response(&r);
    assert_eq!(oa["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        oa["choices"][0]["message"]["tool_calls"][0]["id"],
        "toolu_01A09q90qw90lq917835lq9"
    );
    assert_eq!(oa["usage"]["prompt_tokens"], 394);

    let filtered = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        content: vec![Part::Text("no".into())],
        stop: Some(StopReason::ContentFilter),
        usage: Usage {
            input: 10,
            output: 2,
            cached: 4,
            reasoning: 0,
            ..Default::default()
        },
    };
    let a = encode_response(&filtered);
    assert_eq!(
        (a["id"].as_str(), a["stop_reason"].as_str()),
        (Some("msg_chatcmpl-1"), Some("refusal"))
    );
    assert_eq!(
        a["usage"],
        json!({"input_tokens": 6, "cache_creation_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "cache_read_input_tokens": 4, "output_tokens": 2})
    );
}

/// Anthropic answers 400 "text content blocks must contain non-whitespace
/// text" (https://github.com/anthropics/claude-code/issues/23440). Other
/// models write "\n\n" beside their calls, and the app sends that turn
/// back: it is left out, and the call still goes.
#[test]
fn whitespace_only_text_is_not_sent_as_a_block() {
    let body = br#"{"model":"claude-sonnet-4-5","messages":[
        {"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":"\n\n","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"18C"}
    ],"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#;
    let mut req = crate::translate::decode_request(crate::translate::Format::OpenAiChat, body, None, false).unwrap();
    let out = encode_request(&mut req).unwrap();
    assert_eq!(
        out["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}]),
        "{out}"
    );
    // A last user turn of whitespace only is refused, not left out (which
    // would make the assistant turn before it a prefill to continue).
    let body = br#"{"model":"claude-sonnet-4-5","messages":[
        {"role":"user","content":"Write a haiku."},
        {"role":"assistant","content":"Autumn moonlight"},
        {"role":"user","content":"\n"}
    ]}"#;
    let mut req = crate::translate::decode_request(crate::translate::Format::OpenAiChat, body, None, false).unwrap();
    let e = encode_request(&mut req).unwrap_err();
    assert_eq!(e.field, "messages[2]", "{e:?}");
}

/// Sampling and output caps, in their own file (this one is long enough).
mod limits;
/// One tool call at a time, to and from the other formats.
mod parallel;
/// Streams: the fixtures, split reads, errors, and to and from OpenAI chat.
mod stream;
/// Structured output: `output_config.format` and the schema fitted.
mod structured;
