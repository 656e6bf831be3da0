//! Non-streamed answers: decoding, encoding the official SDK parses, stop reasons, usage.

use super::*;

#[test]
fn response_fixtures_decode_and_roundtrip() {
    let r = responses::decode_response(RESPONSE_TEXT.as_bytes()).unwrap();
    assert_eq!(r.id, "resp_68b1f1d4e2a08190b7c9e1f3a5d7b9c1");
    assert_eq!(r.model, "gpt-4.1-2025-04-14");
    assert_eq!(
        r.content,
        [Part::Text("Lyon is clear and 21 °C right now.".into())]
    );
    assert_eq!(r.stop, Some(StopReason::EndTurn));
    assert_eq!(
        r.usage,
        Usage {
            input: 1310,
            output: 14,
            cached: 1152,
            reasoning: 0,
            ..Default::default()
        }
    );
    let v = responses::encode_response(&r);
    assert_eq!(v["id"], "resp_68b1f1d4e2a08190b7c9e1f3a5d7b9c1");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["incomplete_details"], Value::Null);
    assert_eq!(v["error"], Value::Null);
    let msg = &v["output"][0];
    assert_eq!(
        (&msg["type"], &msg["role"], &msg["status"]),
        (&json!("message"), &json!("assistant"), &json!("completed"))
    );
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["content"][0]["type"], "output_text");
    assert_eq!(msg["content"][0]["annotations"], json!([]));
    assert_eq!(output_text(&v), "Lyon is clear and 21 °C right now.");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 1310, "input_tokens_details": {"cached_tokens": 1152}, "output_tokens": 14, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 1324})
    );
    // The fields the SDK's `Response` model requires, and the usual echoes.
    for k in [
        "parallel_tool_calls",
        "tool_choice",
        "tools",
        "text",
        "model",
        "output",
        "created_at",
    ] {
        assert!(v.get(k).is_some_and(|x| !x.is_null()), "{k}");
    }
    assert_eq!(v["text"]["format"]["type"], "text");
    assert_eq!(
        responses::decode_response(v.to_string().as_bytes()).unwrap(),
        r
    );

    let r = responses::decode_response(RESPONSE_CALL.as_bytes()).unwrap();
    assert_eq!(
        r.content,
        [Part::ToolCall {
            id: "call_TGVzIGJvdWNob25zIGx5b25uYWlz".into(),
            name: "get_weather".into(),
            arguments: CALL_ARGS.into()
        }]
    );
    assert_eq!(r.stop, Some(StopReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage {
            input: 87,
            output: 154,
            cached: 0,
            reasoning: 128,
            ..Default::default()
        }
    );
    let v = responses::encode_response(&r);
    let fc = &v["output"][0];
    assert_eq!(fc["type"], "function_call");
    assert!(fc["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(fc["call_id"], "call_TGVzIGJvdWNob25zIGx5b25uYWlz");
    assert_eq!(fc["arguments"], CALL_ARGS);
    assert_eq!(fc["status"], "completed");
    assert_eq!(output_text(&v), "");
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 128);
    assert_eq!(
        responses::decode_response(v.to_string().as_bytes()).unwrap(),
        r
    );
}

#[test]
fn response_stop_reasons() {
    for (stop, reason) in [
        (StopReason::MaxTokens, "max_output_tokens"),
        (StopReason::ContentFilter, "content_filter"),
    ] {
        let r = ChatResponse {
            id: "msg_01XYZ".into(),
            model: "claude-sonnet-4-5".into(),
            content: vec![Part::Text("Once upon a".into())],
            stop: Some(stop),
            usage: Usage {
                input: 10,
                output: 3,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            },
        };
        let v = responses::encode_response(&r);
        assert_eq!(v["id"], "resp_msg_01XYZ");
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], reason);
        assert_eq!(v["output"][0]["status"], "incomplete");
        let back = responses::decode_response(v.to_string().as_bytes()).unwrap();
        assert_eq!(back.stop, Some(stop));
        assert_eq!(back.content, r.content);
    }
    // Text then two calls: one message item, then one item per call, in order.
    let r = ChatResponse {
        id: String::new(),
        model: "gemini-2.5-flash".into(),
        content: vec![
            Part::Text("Checking both.".into()),
            Part::ToolCall {
                id: "call_a".into(),
                name: "f".into(),
                arguments: "{}".into(),
            },
            Part::ToolCall {
                id: "call_b".into(),
                name: "g".into(),
                arguments: r#"{"x":1}"#.into(),
            },
        ],
        stop: Some(StopReason::ToolUse),
        usage: Usage::default(),
    };
    let v = responses::encode_response(&r);
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    let types: Vec<_> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["message", "function_call", "function_call"]);
    assert_ne!(v["output"][1]["id"], v["output"][2]["id"]);
    let back = responses::decode_response(v.to_string().as_bytes()).unwrap();
    assert_eq!((back.content, back.stop), (r.content, r.stop));

    let failed = br#"{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#;
    assert_eq!(
        responses::decode_response(failed).unwrap_err().field,
        "response.error"
    );
}

#[test]
fn usage_semantics() {
    let u = json!({"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 1500}, "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 200}, "total_tokens": 2300});
    assert_eq!(
        responses::usage_from(&u),
        Usage {
            input: 2000,
            output: 300,
            cached: 1500,
            reasoning: 200,
            ..Default::default()
        }
    );
    assert_eq!(
        responses::usage_from(&json!({"input_tokens": 5})),
        Usage {
            input: 5,
            ..Default::default()
        }
    );
    assert_eq!(responses::usage_from(&json!("nonsense")), Usage::default());
}

#[test]
fn huge_usage_does_not_overflow() {
    let r = ChatResponse {
        id: "x".into(),
        model: "m".into(),
        content: vec![],
        stop: None,
        usage: Usage {
            input: u64::MAX,
            output: u64::MAX,
            cached: 0,
            reasoning: 0,
            ..Default::default()
        },
    };
    assert_eq!(
        responses::encode_response(&r)["usage"]["total_tokens"],
        u64::MAX
    );
}
