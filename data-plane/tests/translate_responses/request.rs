//! Requests: decoding, round trips, what a chat-only provider receives, refusals.

use super::*;

#[test]
fn request_fixture_decodes() {
    let req = responses::decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(req.model, "gpt-4.1");
    assert_eq!(
        req.system,
        [
            "You are a concise weather assistant.",
            "Answer in metric units."
        ]
    );
    assert_eq!(req.messages.len(), 3);
    let user = &req.messages[0];
    assert_eq!(user.role, Role::User);
    assert_eq!(
        user.content[0],
        Part::Text("What's the weather in Lyon? Here is the sky right now.".into())
    );
    assert!(
        matches!(&user.content[1], Part::Image(Image::Base64 { media_type, data }) if media_type == "image/png" && data.starts_with("iVBOR"))
    );
    assert_eq!(
        user.content[2],
        Part::Image(Image::Url("https://example.com/lyon-sky.jpg".into()))
    );
    assert_eq!(
        req.messages[1],
        Message {
            role: Role::Assistant,
            content: vec![
                Part::Text("Let me look that up.".into()),
                Part::ToolCall {
                    id: "call_Q2xvdWR5V2l0aEFDaGFuY2U".into(),
                    name: "get_weather".into(),
                    arguments: CALL_ARGS.into()
                },
            ],
        }
    );
    assert_eq!(
        req.messages[2],
        Message {
            role: Role::User,
            content: vec![Part::ToolResult {
                id: "call_Q2xvdWR5V2l0aEFDaGFuY2U".into(),
                name: Some("get_weather".into()),
                content: vec![Part::Text(r#"{"temp_c":21,"sky":"clear"}"#.into())],
                is_error: false,
            }],
        }
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(
        req.tools[0].description.as_deref(),
        Some("Current weather for a city")
    );
    assert_eq!(req.tools[0].parameters["required"], json!(["city", "unit"]));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.max_tokens, Some(512));
    assert_eq!(req.temperature, Some(0.2));
    assert_eq!(req.top_p, Some(0.9));
    assert_eq!(req.user.as_deref(), Some("user-42"));
    assert!(req.stream && req.stream_usage);
    assert!(
        matches!(&req.response_format, Some(ResponseFormat::JsonSchema { name, strict: true, schema }) if name == "weather_report" && schema["required"] == json!(["summary", "temp_c"]))
    );
}

#[test]
fn request_roundtrip() {
    let mut req = responses::decode_request(REQUEST.as_bytes()).unwrap();
    let dropped: Vec<String> = std::mem::take(&mut req.dropped)
        .iter()
        .map(|d| d.field.clone())
        .collect();
    assert_eq!(dropped, ["metadata", "parallel_tool_calls", "store"]);
    let body = responses::encode_request(&req).unwrap();
    assert_eq!(
        body["input"][0],
        json!({"type": "message", "role": "system", "content": "You are a concise weather assistant."})
    );
    assert_eq!(body["input"][3]["content"], "Let me look that up.");
    assert_eq!(body["input"][4]["type"], "function_call");
    assert_eq!(body["input"][5]["type"], "function_call_output");
    assert_eq!(body["max_output_tokens"], 512);
    assert_eq!(body["text"]["format"]["name"], "weather_report");
    // The app's `strict: true`, kept.
    assert_eq!(body["tools"][0]["strict"], true);
    assert_eq!(
        responses::decode_request(body.to_string().as_bytes()).unwrap(),
        req
    );

    // The simplest call: `client.responses.create(model=…, instructions=…, input="…")`.
    let simple = br#"{"model":"gpt-4o-mini","instructions":"Be funny.","input":"Tell me a joke."}"#;
    let req = responses::decode_request(simple).unwrap();
    assert_eq!(req.system, ["Be funny."]);
    assert_eq!(
        req.messages,
        [Message {
            role: Role::User,
            content: vec![Part::Text("Tell me a joke.".into())]
        }]
    );
    let body = responses::encode_request(&req).unwrap();
    assert_eq!(body["instructions"], "Be funny.");
    assert_eq!(
        responses::decode_request(body.to_string().as_bytes()).unwrap(),
        req
    );
}

/// Bodies the official SDK itself produced (`responses.create` with tools,
/// `responses.parse` with a pydantic `text_format`).
#[test]
fn sdk_requests_decode() {
    let req = responses::decode_request(REQUEST_SDK_TOOLS.as_bytes()).unwrap();
    assert_eq!(req.system, ["Be brief."]);
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Tool("get_weather".into()))
    );
    assert_eq!(req.max_tokens, Some(100));
    assert_eq!(req.messages.len(), 3);
    assert_eq!(
        req.messages[0].content[1],
        Part::Image(Image::Url("https://example.com/a.png".into()))
    );
    assert!(matches!(&req.messages[1].content[..], [Part::ToolCall { id, .. }] if id == "call_1"));
    assert!(
        matches!(&req.messages[2].content[..], [Part::ToolResult { id, name: Some(n), .. }] if id == "call_1" && n == "get_weather")
    );
    let chat = openai_chat::encode_request(&req).unwrap();
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        chat["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "21C"})
    );

    let req = responses::decode_request(REQUEST_SDK_PARSE.as_bytes()).unwrap();
    assert!(
        matches!(&req.response_format, Some(ResponseFormat::JsonSchema { name, strict: true, schema }) if name == "Report" && schema["required"] == json!(["summary"]))
    );
    let chat = openai_chat::encode_request(&req).unwrap();
    assert_eq!(chat["response_format"]["json_schema"]["strict"], true);
}

/// The chat completions body a chat-only provider receives for the fixture.
#[test]
fn request_to_chat_provider() {
    let req = responses::decode_request(REQUEST.as_bytes()).unwrap();
    let chat = openai_chat::encode_request(&req).unwrap();
    let m = &chat["messages"];
    assert_eq!(
        m[0],
        json!({"role": "system", "content": "You are a concise weather assistant."})
    );
    assert_eq!(
        m[1],
        json!({"role": "system", "content": "Answer in metric units."})
    );
    assert_eq!(m[2]["role"], "user");
    assert_eq!(
        m[2]["content"][0],
        json!({"type": "text", "text": "What's the weather in Lyon? Here is the sky right now."})
    );
    assert!(
        m[2]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR")
    );
    assert_eq!(
        m[2]["content"][2]["image_url"]["url"],
        "https://example.com/lyon-sky.jpg"
    );
    assert_eq!(m[3]["role"], "assistant");
    assert_eq!(m[3]["content"], "Let me look that up.");
    assert_eq!(
        m[3]["tool_calls"],
        json!([{"id": "call_Q2xvdWR5V2l0aEFDaGFuY2U", "type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGS}}])
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "call_Q2xvdWR5V2l0aEFDaGFuY2U", "content": r#"{"temp_c":21,"sky":"clear"}"#})
    );
    assert_eq!(m.as_array().unwrap().len(), 5);
    assert_eq!(chat["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        chat["tools"][0]["function"]["parameters"]["required"],
        json!(["city", "unit"])
    );
    assert_eq!(chat["tool_choice"], "auto");
    assert_eq!(chat["max_tokens"], 512);
    assert_eq!(chat["temperature"], 0.2);
    assert_eq!(chat["response_format"]["type"], "json_schema");
    assert_eq!(
        chat["response_format"]["json_schema"]["name"],
        "weather_report"
    );
    assert_eq!(chat["user"], "user-42");
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"]["include_usage"], true);
}

fn refused(body: Value) -> String {
    let e = responses::decode_request(body.to_string().as_bytes()).expect_err(&body.to_string());
    assert!(
        e.message.contains(&e.field),
        "message names the field: {}",
        e.message
    );
    e.field
}

#[test]
fn unsupported_fields_are_named() {
    let base = json!({"model": "gpt-4.1", "input": "hi"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (k, v) in [
        ("previous_response_id", json!("resp_123")),
        ("conversation", json!("conv_123")),
        ("prompt", json!({"id": "pmpt_1"})),
        ("background", json!(true)),
        ("top_logprobs", json!(5)),
        ("context_management", json!([{"type": "compaction"}])),
    ] {
        assert_eq!(refused(with(k, v)), k);
    }
    let cases = [
        (
            with("include", json!(["message.output_text.logprobs"])),
            "include",
        ),
        (
            with("tool_choice", json!({"type": "web_search_preview"})),
            "tool_choice.type",
        ),
        (
            with(
                "text",
                json!({"format": {"type": "json_schema", "name": "x", "schema": {}, "description": "A report"}}),
            ),
            "text.format.description",
        ),
        (
            with(
                "input",
                json!([{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "msg_1"}]),
            ),
            "input[1].type",
        ),
        (
            with(
                "input",
                json!([{"role": "user", "content": [{"type": "input_text", "text": "read"}, {"type": "input_file", "file_id": "file-1"}]}]),
            ),
            "input[0].content[1].type",
        ),
        (
            with(
                "input",
                json!([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]),
            ),
            "input[0].content[0].file_id",
        ),
        // Malformed, not merely untranslatable: still named.
        (json!({"input": "hi"}), "model"),
        (with("input", json!(5)), "input"),
        (
            with(
                "input",
                json!([{"type": "function_call", "name": "f", "arguments": "{}"}]),
            ),
            "input[0].call_id",
        ),
        (
            with("input", json!([{"role": "tool", "content": "x"}])),
            "input[0].role",
        ),
        (
            with("instructions", json!(["not", "a", "string"])),
            "instructions",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(refused(body), field);
    }
    let e = responses::decode_request(
        with("include", json!(["web_search_call.results"]))
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    assert!(e.message.contains("web_search"), "{}", e.message);

    // What Codex sends: hints and bookkeeping are dropped and named (refused
    // on strict routes); hosted tools and tool namespaces are left out of the
    // offer; the reasoning item of an earlier turn goes too.
    let codex = json!({
        "model": "gpt-5-codex", "stream": true, "store": false, "parallel_tool_calls": true,
        "client_metadata": {"session_id": "s"}, "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "high", "summary": "auto"}, "prompt_cache_key": "k",
        "text": {"verbosity": "low"}, "truncation": "auto", "tool_choice": "auto",
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}, "strict": false},
            {"type": "namespace", "name": "multi_agent_v1", "tools": []},
            {"type": "web_search", "external_web_access": false},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
        ],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "exec_command", "arguments": "{}", "status": "completed"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
    });
    let req = responses::decode_request(codex.to_string().as_bytes()).unwrap();
    let dropped: Vec<(&str, bool)> = req
        .dropped
        .iter()
        .map(|d| (d.field.as_str(), d.always))
        .collect();
    assert_eq!(
        dropped,
        [
            ("client_metadata", false),
            ("include (reasoning.encrypted_content)", false),
            ("input[*].type (reasoning)", false),
            ("parallel_tool_calls", true),
            ("prompt_cache_key", true),
            ("reasoning", false),
            ("store", true),
            ("text.verbosity", false),
            ("tools[*] (namespace)", false),
            ("tools[*] (web_search)", false),
            ("tools[*] (file_search)", false),
            ("truncation", false),
        ]
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.messages.len(), 3);

    // Advisory or default-valued fields are dropped.
    let advisory = json!({
        "model": "gpt-4.1", "input": "hi", "store": true, "metadata": {"a": "b"}, "parallel_tool_calls": false,
        "truncation": "disabled", "background": false, "include": [], "reasoning": {"effort": null, "summary": null},
        "service_tier": "auto", "prompt_cache_key": "k", "safety_identifier": "u", "stream_options": {"include_obfuscation": false},
        "top_logprobs": 0, "text": {"format": {"type": "text"}, "verbosity": "medium"}, "previous_response_id": null,
    });
    let req = responses::decode_request(advisory.to_string().as_bytes()).unwrap();
    assert_eq!(req.response_format, Some(ResponseFormat::Text));

    // And the other way: what this API cannot say.
    let r = ChatRequest {
        model: "m".into(),
        top_k: Some(3),
        ..Default::default()
    };
    assert_eq!(responses::encode_request(&r).unwrap_err().field, "top_k");
    let r = ChatRequest {
        model: "m".into(),
        stop: vec!["END".into()],
        ..Default::default()
    };
    assert_eq!(responses::encode_request(&r).unwrap_err().field, "stop");
}
