//! Streams: decoding at every split, and the event sequence apps receive.

use super::*;

#[test]
fn stream_fixtures_decode() {
    let evs = decode(STREAM_TEXT.as_bytes());
    assert_eq!(
        evs[0],
        StreamEvent::Start {
            id: "resp_68b1f3c0d2e48190a4c6e8f0b2d4f6a8".into(),
            model: "gpt-4.1-2025-04-14".into()
        }
    );
    assert_eq!(text_of(&evs), "Lyon is clear and 21 °C right now.");
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
            .count(),
        9
    );
    assert_eq!(
        evs[evs.len() - 2..],
        [
            StreamEvent::Finish(StopReason::EndTurn),
            StreamEvent::Usage(Usage {
                input: 1310,
                output: 14,
                cached: 1152,
                reasoning: 0,
                ..Default::default()
            })
        ]
    );

    let evs = decode(STREAM_CALL.as_bytes());
    assert_eq!(
        evs[1],
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_bHlvbi1tZXRlby1jYWxs".into(),
            name: "get_weather".into()
        }
    );
    // Deltas only: the `.done` events repeat the arguments and must not double them.
    assert_eq!(args_of(&evs, 0), CALL_ARGS);
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
            .count(),
        10
    );
    assert_eq!(
        evs[evs.len() - 2..],
        [
            StreamEvent::Finish(StopReason::ToolUse),
            StreamEvent::Usage(Usage {
                input: 87,
                output: 24,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            })
        ]
    );
}

#[test]
fn stream_decoding_is_split_proof() {
    for fixture in [STREAM_TEXT, STREAM_CALL] {
        let bytes = fixture.as_bytes();
        let whole = decode(bytes);
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(
                decode_with(responses::Decoder::default(), &sse_events(&[a, b])),
                whole,
                "split at {i}"
            );
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(
            decode_with(responses::Decoder::default(), &sse_events(&one_by_one)),
            whole
        );
    }
}

/// Streams that leave out events (proxies, other vendors' Responses
/// endpoints) still yield the whole answer, once.
#[test]
fn stream_decoding_fills_gaps() {
    let sse = concat!(
        "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi there\"}]}}\n\n",
        "data: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}\n\n",
        "data: {\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"type\":\"function_call\",\"id\":\"fc_2\",\"call_id\":\"call_2\",\"name\":\"g\",\"arguments\":\"\"}}\n\n",
        "data: {\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_2\",\"arguments\":\"{}\"}\n\n",
        "data: {\"type\":\"response.incomplete\",\"response\":{\"id\":\"resp_9\",\"model\":\"m\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n",
        "data: [DONE]\n\n",
    );
    let evs = decode(sse.as_bytes());
    assert_eq!(
        evs,
        [
            StreamEvent::Start {
                id: String::new(),
                model: String::new()
            },
            StreamEvent::TextDelta("Hi there".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":1}".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_2".into(),
                name: "g".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{}".into()
            },
            StreamEvent::Finish(StopReason::MaxTokens),
            StreamEvent::Usage(Usage {
                input: 3,
                output: 4,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            }),
        ]
    );

    // Errors, in both shapes the API has used, and a failed response.
    let sse = concat!(
        "event: error\ndata: {\"type\":\"error\",\"sequence_number\":2,\"error\":{\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\",\"message\":\"quota\",\"param\":null}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"code\":\"x\",\"message\":\"flat\",\"param\":null,\"sequence_number\":3}\n\n",
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n",
    );
    let messages: Vec<_> = decode(sse.as_bytes())
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Error { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(messages, ["quota", "flat", "boom"]);
}

/// A chat-only provider's stream, through its decoder, out as the Responses
/// events the app's SDK expects, with text and both calls' arguments intact.
#[test]
fn chat_upstream_to_responses_stream() {
    let req = responses::decode_request(REQUEST.as_bytes()).unwrap();
    let upstream = decode_with(
        openai_chat::Decoder::default(),
        &sse_events(&[CHAT_UPSTREAM.as_bytes()]),
    );
    assert_eq!(text_of(&upstream), "Checking Lyon for you.");
    let sse = encode(&req, &upstream);
    let (types, resp) = check_well_formed(&sse);
    assert_eq!(
        types
            .iter()
            .map(String::as_str)
            .filter(|t| t.starts_with("response.output_item"))
            .count(),
        6,
        "a message and two calls, each added and done"
    );
    assert_eq!(types.last().map(String::as_str), Some("response.completed"));
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["model"], "gpt-4o-2024-08-06");
    assert_eq!(resp["id"], "resp_chatcmpl-C3kQ9xVbN2mLp7RtYw4Ze8Fh1Ja");
    assert_eq!(output_text(&resp), "Checking Lyon for you.");
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[1]["call_id"], "call_W3k1VnR0aGVyTHlvbg");
    assert_eq!(out[1]["name"], "get_weather");
    assert_eq!(out[1]["arguments"], CALL_ARGS);
    assert_eq!(out[2]["call_id"], "call_U2Vjb25kQ2FsbFBhcmlz");
    assert_eq!(out[2]["arguments"], r#"{"city":"Paris","unit":"c"}"#);
    assert_eq!(resp["usage"]["input_tokens"], 96);
    assert_eq!(resp["usage"]["output_tokens"], 61);
    assert_eq!(resp["usage"]["total_tokens"], 157);
    // What the app asked for is echoed, as the API does.
    assert_eq!(resp["tools"][0]["name"], "get_weather");
    assert_eq!(resp["text"]["format"]["name"], "weather_report");
    assert_eq!(resp["max_output_tokens"], 512);
    assert_eq!(
        resp["instructions"],
        "You are a concise weather assistant.\n\nAnswer in metric units."
    );

    // And our own decoder reads it back to the same IR.
    let mut back = decode(sse.as_bytes());
    assert_eq!(
        back[0],
        StreamEvent::Start {
            id: "resp_chatcmpl-C3kQ9xVbN2mLp7RtYw4Ze8Fh1Ja".into(),
            model: "gpt-4o-2024-08-06".into()
        }
    );
    back[0] = upstream[0].clone();
    assert_eq!(back, upstream);
}

#[test]
fn responses_stream_reencodes_identically_shaped() {
    for fixture in [STREAM_TEXT, STREAM_CALL] {
        let ir = decode(fixture.as_bytes());
        let sse = encode(
            &ChatRequest {
                model: "gpt-4.1".into(),
                stream: true,
                ..Default::default()
            },
            &ir,
        );
        let (types, _) = check_well_formed(&sse);
        let original: Vec<String> = sse_events(&[fixture.as_bytes()])
            .iter()
            .map(|e| e.event.clone().unwrap_or_default())
            .collect();
        assert_eq!(types, original, "same event sequence as the real API");
        assert_eq!(decode(sse.as_bytes()), ir);
    }
}

#[test]
fn stream_endings() {
    let req = ChatRequest {
        model: "m".into(),
        ..Default::default()
    };
    let start = StreamEvent::Start {
        id: "abc".into(),
        model: "m-1".into(),
    };

    // Cut short by the token limit; usage arriving after Finish still lands in the final event.
    let evs = [
        start.clone(),
        StreamEvent::TextDelta("Once".into()),
        StreamEvent::Finish(StopReason::MaxTokens),
        StreamEvent::Usage(Usage {
            input: 9,
            output: 1,
            cached: 0,
            reasoning: 0,
            ..Default::default()
        }),
    ];
    let (types, resp) = check_well_formed(&encode(&req, &evs));
    assert_eq!(
        types.last().map(String::as_str),
        Some("response.incomplete")
    );
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(resp["output"][0]["status"], "incomplete");
    assert_eq!(resp["usage"]["input_tokens"], 9);

    // An upstream error mid-stream: an `error` event, then `response.failed`.
    let evs = [
        start.clone(),
        StreamEvent::TextDelta("Hal".into()),
        StreamEvent::Error {
            message: "overloaded".into(),
        },
    ];
    let sse = encode(&req, &evs);
    let (types, resp) = check_well_formed(&sse);
    assert!(types.contains(&"error".to_string()));
    assert_eq!(types.last().map(String::as_str), Some("response.failed"));
    assert_eq!(resp["error"]["message"], "overloaded");
    assert_eq!(output_text(&resp), "Hal");

    // A stream cut without a finish is not passed off as complete.
    let (types, resp) = check_well_formed(&encode(
        &req,
        &[start.clone(), StreamEvent::TextDelta("Hal".into())],
    ));
    assert_eq!(types.last().map(String::as_str), Some("response.failed"));
    assert_eq!(resp["status"], "failed");

    // Nothing at all from upstream: still a well-formed stream.
    let (types, _) = check_well_formed(&encode(&req, &[]));
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.failed"
        ]
    );

    // A delta for a call already closed still reaches the final object.
    let evs = [
        start,
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_a".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_b".into(),
            name: "g".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{}".into(),
        },
        StreamEvent::Finish(StopReason::ToolUse),
    ];
    let sse = encode(&req, &evs);
    let last = sse_events(&[sse.as_bytes()]).pop().unwrap();
    let resp: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(resp["response"]["output"][0]["arguments"], "{}");
    assert_eq!(resp["response"]["output"][1]["call_id"], "call_b");
}
