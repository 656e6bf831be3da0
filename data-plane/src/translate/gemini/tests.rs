//! Tests against fixtures of real Gemini payloads
//! (`data-plane/tests/fixtures/gemini/README.md` says where each shape comes
//! from).

use serde_json::{Value, json};

use super::*;
use crate::sse::SseParser;
use crate::translate::ir::{
    ChatRequest, ChatResponse, Image, Message, Part, ResponseFormat, Role, StopReason, StreamEvent,
    Tool, ToolChoice,
};
use crate::translate::testkit::{decode_with, encode_with};
use crate::translate::{anthropic, openai_chat};
use crate::usage::Usage;

/// Function responses named with the app's own ids.
mod call_ids;
/// What of JSON Schema Gemini's tool schemas take.
mod schema;
/// The stream tests, in their own file (this one would pass 800 lines).
mod stream;
/// Thinking budgets and efforts, to and from Gemini's.
mod thinking;
/// Images inside tool results, sent beside the function responses.
mod tool_result_images;

const REQUEST: &str = include_str!("../../../tests/fixtures/gemini/request_tools.json");
const RESPONSE_CALLS: &str =
    include_str!("../../../tests/fixtures/gemini/response_function_call.json");
const RESPONSE_TEXT: &str = include_str!("../../../tests/fixtures/gemini/response_text.json");
const STREAM_TEXT: &str = include_str!("../../../tests/fixtures/gemini/stream_text.sse");
const STREAM_CALLS: &str = include_str!("../../../tests/fixtures/gemini/stream_function_call.sse");

/// An OpenAI chat stream: text, two tool calls streamed in pieces, finish,
/// then the usage chunk.
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Both:\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":2,\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"b\\\":3}\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_m\",\"type\":\"function\",\"function\":{\"name\":\"multiply\",\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":3}\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-9\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":30,\"prompt_tokens_details\":{\"cached_tokens\":16},\"completion_tokens_details\":{\"reasoning_tokens\":12}}}\n\n",
    "data: [DONE]\n\n",
);

fn decode(text: &str) -> Vec<StreamEvent> {
    decode_with(Decoder::default(), text.as_bytes(), [])
}

/// The `data:` of each event, parsed.
fn chunks_of(text: &str) -> Vec<Value> {
    let mut p = SseParser::new();
    p.push(text.as_bytes());
    std::iter::from_fn(|| p.next_event())
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

fn last_usage(evs: &[StreamEvent]) -> Option<Usage> {
    evs.iter().rev().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(*u),
        _ => None,
    })
}

/// The answer in a stream: no start or usage, adjacent deltas joined (a
/// format may split text or arguments differently).
fn content_events(evs: &[StreamEvent]) -> Vec<StreamEvent> {
    let mut out: Vec<StreamEvent> = Vec::new();
    for e in evs {
        match (out.last_mut(), e) {
            (_, StreamEvent::Start { .. } | StreamEvent::Usage(_)) => {}
            (Some(StreamEvent::TextDelta(t)), StreamEvent::TextDelta(more)) => t.push_str(more),
            (
                Some(StreamEvent::ToolCallDelta {
                    index: i,
                    arguments: a,
                }),
                StreamEvent::ToolCallDelta { index, arguments },
            ) if i == index => a.push_str(arguments),
            _ => out.push(e.clone()),
        }
    }
    out
}

fn req_with(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-flash".into(),
        messages,
        ..Default::default()
    }
}

// ------------------------------------------------------------------ request

#[test]
fn request_fixture_decodes() {
    let req = decode_request(REQUEST.as_bytes(), "models/gemini-2.5-flash", true).unwrap();
    assert_eq!((req.model.as_str(), req.stream), ("gemini-2.5-flash", true));
    assert_eq!(
        req.system,
        ["You are a helpful assistant.", "Answer in one sentence."]
    );
    assert!(
        matches!(&req.messages[0].content[0], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
    );
    // No ids on the wire: synthesized, and the response pairs with its call by name.
    let Part::ToolCall {
        id,
        name,
        arguments,
    } = &req.messages[1].content[0]
    else {
        panic!("not a call")
    };
    assert_eq!((id.as_str(), name.as_str()), ("call_0", "weather"));
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"location": "Florence, Italy"})
    );
    assert_eq!(
        req.messages[2].content,
        [Part::ToolResult {
            id: "call_0".into(),
            name: Some("weather".into()),
            // Neither `output` nor `error`: the whole object is the output.
            content: vec![Part::Text("{\"result\":\"40 C, sunny\"}".into())],
            is_error: false,
        }]
    );
    let params = &req.tools[0].parameters;
    assert_eq!(params["type"], "object");
    assert_eq!(
        params["properties"]["unit"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        (req.max_tokens, req.temperature, req.top_p, req.top_k),
        (Some(1024), Some(0.7), Some(0.95), Some(40))
    );
    assert_eq!(req.stop, ["END"]);
}

#[test]
fn request_roundtrip() {
    let mut req = decode_request(REQUEST.as_bytes(), "gemini-2.5-flash", false).unwrap();
    let dropped: Vec<String> = std::mem::take(&mut req.dropped)
        .iter()
        .map(|d| d.field.clone())
        .collect();
    assert_eq!(dropped, ["safetySettings"]);
    let body = encode_request(&req).unwrap();
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"]["id"],
        "call_0"
    );
    assert!(
        body["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .is_none(),
        "2.5 needs no sentinel"
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"result": "40 C, sunny"})
    );
    let params = &body["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(
        params["properties"]["unit"],
        json!({"type": "STRING", "enum": ["C", "F"], "nullable": true})
    );
    assert!(body.get("safetySettings").is_none() && body.get("model").is_none());
    assert_eq!(
        decode_request(body.to_string().as_bytes(), "gemini-2.5-flash", false).unwrap(),
        req
    );
}

#[test]
fn proto_field_names_are_read() {
    let body = json!({
        "contents": [{"parts": [{"text": "hi"}, {"file_data": {"mime_type": "image/png", "file_uri": "https://x/y.png"}}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {"max_output_tokens": 10, "response_mime_type": "application/json", "top_k": 3.0},
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
    });
    let req = decode_request(body.to_string().as_bytes(), "gemini-2.0-flash", false).unwrap();
    assert_eq!(req.system, ["be brief"]);
    assert_eq!(
        req.messages[0].content[1],
        Part::Image(Image::Url("https://x/y.png".into()))
    );
    assert_eq!((req.max_tokens, req.top_k), (Some(10), Some(3)));
    assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(req.tool_choice, Some(ToolChoice::None));
}

#[test]
fn request_to_anthropic_and_openai() {
    let mut req = decode_request(REQUEST.as_bytes(), "gemini-2.5-flash", false).unwrap();
    let a = anthropic::encode_request(&mut req).unwrap();
    let roles: Vec<&str> = a["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        a["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "call_0", "name": "weather", "input": {"location": "Florence, Italy"}})
    );
    assert_eq!(a["messages"][2]["content"][0]["tool_use_id"], "call_0");
    assert_eq!(
        (a["max_tokens"].as_u64(), a["top_k"].as_u64()),
        (Some(1024), Some(40))
    );
    assert_eq!(a["system"].as_array().map(Vec::len), Some(2));
    // Gemini CLI sends both; newer Claude models refuse both.
    assert_eq!(
        (a["temperature"].as_f64(), a.get("top_p")),
        (Some(0.7), None)
    );
    assert_eq!(
        openai_chat::encode_request(&req).unwrap_err().field,
        "top_k"
    );
}

#[test]
fn openai_request_to_gemini() {
    let body = json!({
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_p", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_l", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Lyon\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_p", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_l", "content": "{\"temp\": 21}"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"city": {"$ref": "#/$defs/City"}, "when": {"type": ["string", "null"], "format": "date"}},
            "required": ["city"], "$defs": {"City": {"type": "string", "description": "a city", "minLength": 1}}
        }, "strict": true}}, {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "integer"}}}}}
    });
    let req = openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    let g = encode_request(&req).unwrap();
    let model_turn = &g["contents"][1]["parts"];
    assert_eq!(
        model_turn[0]["thoughtSignature"], "skip_thought_signature_validator",
        "Gemini 3 validates signatures"
    );
    assert!(
        model_turn[1].get("thoughtSignature").is_none(),
        "only the first call of a turn"
    );
    let results = &g["contents"][2]["parts"];
    assert_eq!(
        results[0]["functionResponse"],
        json!({"id": "call_p", "name": "weather", "response": {"output": "18C"}})
    );
    assert_eq!(
        results[1]["functionResponse"]["response"],
        json!({"temp": 21})
    );
    let decls = &g["tools"][0]["functionDeclarations"];
    assert_eq!(
        decls[0]["parameters"],
        json!({"type": "OBJECT", "required": ["city"], "properties": {
            "city": {"type": "STRING", "description": "a city", "minLength": 1},
            "when": {"type": "STRING", "nullable": true}
        }, "propertyOrdering": ["city", "when"]}),
        "`date` is no format Gemini takes"
    );
    assert_eq!(
        decls[1],
        json!({"name": "now"}),
        "no arguments: no parameters"
    );
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
    );
    assert_eq!(
        g["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        g["generationConfig"]["responseSchema"]["properties"]["t"]["type"],
        "INTEGER"
    );
}

#[test]
fn signature_sentinel_by_model() {
    for (model, wanted) in [
        ("gemini-3-pro-preview", true),
        ("gemini-3.1-flash-lite-preview", true),
        ("gemini-flash-latest", true),
        ("models/gemini-2.5-flash", false),
        ("gemini-1.5-pro", false),
        ("gemma-3-27b-it", false),
    ] {
        assert_eq!(request::needs_signature(model), wanted, "{model}");
    }
}

/// google-genai's automatic function calling declares every typed Python
/// function with the JSON schema of its result (`responseJsonSchema`, from
/// the return annotation); Vertex and ADK say `response` and `behavior`.
/// None is part of what the model is asked: each is left out and named, and
/// the defaults google-genai spells out in a generation config pass.
#[test]
fn a_declared_result_schema_and_spelled_out_defaults_are_hints() {
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
        "tools": [{"functionDeclarations": [
            {"name": "get_current_weather", "description": "Weather.",
             "parametersJsonSchema": {"type": "object", "properties": {"location": {"type": "string"}},
                                      "required": ["location"]},
             "responseJsonSchema": {"type": "string"}},
            {"name": "lookup", "response": {"type": "OBJECT"}, "behavior": "BLOCKING"},
        ]}],
        "generationConfig": {"responseLogprobs": false, "audioTimestamp": false,
                             "enableEnhancedCivicAnswers": false,
                             "mediaResolution": "MEDIA_RESOLUTION_LOW"},
    });
    let req = decode_request(body.to_string().as_bytes(), "gpt-4o-mini", false).unwrap();
    let names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["get_current_weather", "lookup"]);
    assert_eq!(req.tools[0].parameters["required"], json!(["location"]));
    let mut dropped: Vec<(&str, bool)> = req
        .dropped
        .iter()
        .map(|d| (d.field.as_str(), d.always))
        .collect();
    dropped.sort();
    assert_eq!(
        dropped,
        [
            ("generationConfig.mediaResolution", false),
            ("tools[*].functionDeclarations[*].behavior", false),
            ("tools[*].functionDeclarations[*].response", false),
            ("tools[*].functionDeclarations[*].responseJsonSchema", false),
        ]
    );
    // Asking for what the target cannot give is still refused.
    let e = decode_request(
        json!({"contents": [{"parts": [{"text": "hi"}]}],
               "generationConfig": {"responseLogprobs": true}})
        .to_string()
        .as_bytes(),
        "gpt-4o-mini",
        false,
    )
    .unwrap_err();
    assert_eq!(e.field, "generationConfig.responseLogprobs");
}

#[test]
fn unsupported_fields_are_named() {
    let field = |body: Value| {
        decode_request(body.to_string().as_bytes(), "gemini-2.5-flash", false)
            .unwrap_err()
            .field
    };
    let hi = json!([{"role": "user", "parts": [{"text": "hi"}]}]);
    assert_eq!(
        field(json!({"contents": hi, "cachedContent": "cachedContents/abc"})),
        "cachedContent"
    );
    // Gemini CLI's thinking settings and Google-run tools are hints: left
    // out (named), refused on strict routes.
    let req = decode_request(
        json!({"contents": hi, "tools": [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f"}]}],
               "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}}})
        .to_string()
        .as_bytes(),
        "gemini-2.5-flash",
        false,
    )
    .unwrap();
    let dropped: Vec<(&str, bool)> = req
        .dropped
        .iter()
        .map(|d| (d.field.as_str(), d.always))
        .collect();
    assert_eq!(
        dropped,
        [
            ("generationConfig.thinkingConfig", false),
            ("tools[*].googleSearch", false)
        ]
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(
        field(json!({"contents": hi, "generationConfig": {"seed": "4"}})),
        "generationConfig.seed"
    );
    assert_eq!(
        field(json!({"contents": hi, "generationConfig": {"logprobs": 2}})),
        "generationConfig.logprobs"
    );
    assert_eq!(
        field(
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]}]})
        ),
        "contents[0].parts[0].inlineData.mimeType (application/pdf)"
    );
    assert_eq!(
        field(json!({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]})),
        "contents[0].parts[0].executableCode"
    );
    let tools3 = json!([{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}]);
    let subset =
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}});
    assert_eq!(
        field(json!({"contents": hi, "tools": tools3, "toolConfig": subset})),
        "toolConfig.functionCallingConfig.allowedFunctionNames"
    );
    let all =
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b", "c"]}});
    let req = decode_request(
        json!({"contents": hi, "tools": tools3, "toolConfig": all})
            .to_string()
            .as_bytes(),
        "g",
        false,
    )
    .unwrap();
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    let orphan = json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]});
    assert_eq!(field(orphan), "contents[0].parts[0].functionResponse");
    assert_eq!(
        field(json!({"contents": hi, "generationConfig": {"responseSchema": {"type": "OBJECT"}}})),
        "generationConfig.responseSchema"
    );

    // Encoding: a result whose call is unknown has no function name.
    let r = req_with(vec![Message {
        role: Role::User,
        content: vec![Part::ToolResult {
            id: "call_x".into(),
            name: None,
            content: vec![],
            is_error: false,
        }],
    }]);
    assert_eq!(
        encode_request(&r).unwrap_err().field,
        "messages[0].tool_result"
    );
    let schema_field = |schema: Value| {
        let r = ChatRequest {
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: schema,
                strict: None,
                schema_field: String::new(),
            }],
            ..req_with(vec![])
        };
        encode_request(&r).unwrap_err().field
    };
    let all_of = json!({"type": "object", "properties": {"x": {"allOf": [{"type": "string"}]}}});
    assert_eq!(
        schema_field(all_of),
        "tools[0].parameters.properties.x.allOf"
    );
    let recursive = json!({"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}});
    assert!(schema_field(recursive).starts_with("tools[0].parameters.properties.n"));
    assert_eq!(
        schema_field(json!({"type": "object", "properties": {"x": {"$ref": "https://x/s.json"}}})),
        "tools[0].parameters.properties.x.$ref"
    );
}

#[test]
fn malformed_input_never_panics() {
    let bodies = [
        "[]",
        "{\"contents\": 3}",
        "{\"contents\": [1]}",
        "{\"contents\": [{\"role\": \"model\", \"parts\": [{}]}]}",
        "{\"contents\": [{\"parts\": [{\"text\": \"a\", \"inlineData\": {}}]}]}",
        "{\"contents\": [{\"parts\": [{\"functionCall\": {\"name\": \"f\"}}]}]}",
        "{\"contents\": [{\"parts\": 5}]}",
        "{\"tools\": [{\"functionDeclarations\": [{}]}]}",
        "{\"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"SOMETIMES\"}}}",
        "{\"generationConfig\": {\"maxOutputTokens\": -3}}",
        "{\"systemInstruction\": {\"parts\": [{\"inlineData\": {}}]}}",
    ];
    for b in bodies {
        assert!(
            decode_request(b.as_bytes(), "gemini-2.5-flash", false).is_err(),
            "{b}"
        );
    }
    for b in [
        "[]",
        "{\"candidates\": 1}",
        "{\"candidates\": [{\"content\": {\"parts\": [1, {\"functionCall\": 2}]}}], \"usageMetadata\": []}",
    ] {
        let _ = decode_response(b.as_bytes());
    }
    assert!(
        decode_response(b"{\"error\": {\"code\": 429, \"message\": \"Resource exhausted\"}}")
            .is_err()
    );
    let _ = decode(
        "data: {\"candidates\": [{\"content\": {\"parts\": {}}}]}\n\ndata: [\n\ndata: {\"usageMetadata\": 3}\n\n",
    );
    assert!(encode_schema(&json!(true), "s").is_ok() && encode_schema(&json!(3), "s").is_err());
}

// ------------------------------------------------------------------ response

#[test]
fn response_fixtures_decode() {
    let r = decode_response(RESPONSE_CALLS.as_bytes()).unwrap();
    assert_eq!(
        (r.id.as_str(), r.model.as_str()),
        ("k2WdaPq0LcXjz7IP8Nnq0Ak", "gemini-2.5-flash")
    );
    assert_eq!(
        r.content,
        [
            Part::ToolCall {
                id: "call_k2WdaPq0LcXjz7IP8Nnq0Ak_0".into(),
                name: "add".into(),
                arguments: "{\"a\":2,\"b\":3}".into()
            },
            Part::ToolCall {
                id: "call_k2WdaPq0LcXjz7IP8Nnq0Ak_1".into(),
                name: "multiply".into(),
                // As Gemini sent them: key order kept.
                arguments: "{\"b\":3,\"a\":2}".into()
            },
        ]
    );
    assert_eq!(
        r.stop,
        Some(StopReason::ToolUse),
        "STOP with calls is a tool stop"
    );
    // Thinking is billed as output.
    assert_eq!(
        r.usage,
        Usage {
            input: 121,
            output: 36 + 39,
            cached: 0,
            reasoning: 39,
            ..Default::default()
        }
    );

    let r = decode_response(RESPONSE_TEXT.as_bytes()).unwrap();
    assert_eq!(
        r.content,
        [Part::Text(
            "It is 40°C and sunny in Florence right now.".into()
        )]
    );
    assert_eq!(r.stop, Some(StopReason::EndTurn));
    // promptTokenCount already includes the cached tokens.
    assert_eq!(
        r.usage,
        Usage {
            input: 2084,
            output: 12 + 51,
            cached: 2048,
            reasoning: 51,
            ..Default::default()
        }
    );
}

#[test]
fn response_roundtrip_and_cross_format() {
    for body in [RESPONSE_CALLS, RESPONSE_TEXT] {
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(
            decode_response(encode_response(&r).to_string().as_bytes()).unwrap(),
            r
        );
    }
    let r = decode_response(RESPONSE_CALLS.as_bytes()).unwrap();
    let a = anthropic::encode_response(&r);
    assert_eq!(a["stop_reason"], "tool_use");
    assert_eq!(a["content"][1]["id"], "call_k2WdaPq0LcXjz7IP8Nnq0Ak_1");
    assert_eq!(a["usage"]["output_tokens"], 75);

    let from_anthropic = ChatResponse {
        id: "msg_1".into(),
        model: "claude".into(),
        content: vec![Part::Text("x".into())],
        stop: Some(StopReason::ContentFilter),
        usage: Usage {
            input: 9,
            output: 4,
            cached: 3,
            reasoning: 0,
            ..Default::default()
        },
    };
    let g = encode_response(&from_anthropic);
    assert_eq!(g["candidates"][0]["finishReason"], "SAFETY");
    assert_eq!(
        g["usageMetadata"],
        json!({"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13, "cachedContentTokenCount": 3})
    );
    let blocked = br#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7}}"#;
    assert_eq!(
        decode_response(blocked).unwrap().stop,
        Some(StopReason::ContentFilter)
    );
}

#[test]
fn ref_bombs_are_refused_within_the_budget() {
    // Each definition refers to the next one three times: 3^14 nodes if
    // inlined, all within the depth limit.
    let mut defs = serde_json::Map::new();
    for i in 0..14 {
        let next = json!({"$ref": format!("#/$defs/D{}", i + 1)});
        defs.insert(
            format!("D{i}"),
            json!({"type": "object", "properties": {"a": next, "b": next, "c": next}}),
        );
    }
    defs.insert("D14".into(), json!({"type": "string"}));
    let schema = json!({"$defs": defs, "$ref": "#/$defs/D0"});
    assert!(schema.to_string().len() < 4096);
    let t = std::time::Instant::now();
    let err = encode_schema(&schema, "tools[0].parameters").unwrap_err();
    assert!(err.message.contains("20,000 nodes"), "{}", err.message);
    // Refused after the budget, not after 2^30 nodes (a generous bound:
    // this is a sanity check, not a benchmark).
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    // A big description copied through many refs hits the byte bound.
    let big = "x".repeat(100_000);
    let schema = json!({
        "$defs": {"S": {"type": "string", "description": big}},
        "type": "object",
        "properties": (0..100).map(|i| (format!("p{i}"), json!({"$ref": "#/$defs/S"}))).collect::<serde_json::Map<_, _>>(),
    });
    assert!(encode_schema(&schema, "s").is_err());
    // A long property name is in the path of every node below it: the
    // paths are charged too, so it cannot be copied per node unbounded.
    let children: serde_json::Map<_, _> = (0..100)
        .map(|i| (format!("c{i}"), json!({"type": "string"})))
        .collect();
    let schema = json!({
        "type": "object",
        "properties": {big.clone(): {"type": "object", "properties": children}},
    });
    let err = encode_schema(&schema, "s").unwrap_err();
    assert!(err.message.contains("4 MiB"), "{}", err.message);
}

/// An app's cap above a Gemini model's output limit is lowered to it only
/// for a model known exactly (its id, a version such as `-001`, or
/// `-latest`); any other model, a newer one of a known family too, is sent
/// the app's cap as it is.
#[test]
fn caps_are_lowered_only_for_models_known_exactly() {
    let sent = |model: &str| {
        let req = ChatRequest {
            model: model.into(),
            max_tokens: Some(100_000),
            ..req_with(vec![Message {
                role: Role::User,
                content: vec![Part::Text("x".into())],
            }])
        };
        encode_request(&req).unwrap()["generationConfig"]["maxOutputTokens"].as_u64()
    };
    for (model, cap) in [
        ("gemini-2.5-pro", 65_536),
        ("gemini-2.5-flash-lite", 65_536),
        ("models/gemini-2.5-flash", 65_536),
        ("gemini-3-pro-preview", 65_536),
        ("gemini-2.0-flash", 8_192),
        ("gemini-2.0-flash-001", 8_192),
        ("gemini-1.5-pro-002", 8_192),
        ("gemini-1.5-flash-latest", 8_192),
        // Not known exactly: the app's cap.
        ("gemini-2.0-flash-thinking-exp-01-21", 100_000),
        ("gemini-2.5-flash-preview-09-2025", 100_000),
        ("gemini-2.5-ultra", 100_000),
        ("gemini-flash-latest", 100_000),
        ("gemini-3.5-pro", 100_000),
        ("gemini-2.0-flash-x", 100_000),
    ] {
        assert_eq!(sent(model), Some(cap), "{model}");
    }
}
