//! Streams, both ways, against the fixtures of `tests.rs`.

use super::*;
use crate::translate::codec::StreamDecoder as _;

// ------------------------------------------------------------------ stream

#[test]
fn stream_text_fixture_cumulative_usage() {
    let evs = decode(STREAM_TEXT);
    let u = |output| {
        StreamEvent::Usage(Usage {
            input: 181,
            output,
            cached: 0,
            reasoning: 0,
            ..Default::default()
        })
    };
    assert_eq!(
        evs,
        [
            StreamEvent::Start {
                id: "q8WdaJ3vFq2nz7IPm5TKuQ4".into(),
                model: "gemini-2.5-flash".into()
            },
            // Each chunk's usage before its parts.
            u(3),
            StreamEvent::TextDelta("Adding 2 and 3".into()),
            u(17),
            StreamEvent::TextDelta(" gives 5; multiplying them".into()),
            u(22),
            StreamEvent::TextDelta(" gives 6.".into()),
            StreamEvent::Finish(StopReason::EndTurn),
        ]
    );
}

/// Gemini counts the prompt from its first chunk: an Anthropic app's
/// `message_start` (written with the first content) carries it.
#[test]
fn an_anthropic_apps_message_start_carries_the_input_count() {
    for stream in [STREAM_TEXT, STREAM_CALLS] {
        let text = encode_with(
            anthropic::Encoder::new(&ChatRequest::default()),
            &decode(stream),
        );
        let mut p = SseParser::new();
        p.push(text.as_bytes());
        let first = p.next_event().unwrap();
        assert_eq!(first.event.as_deref(), Some("message_start"));
        let v: Value = serde_json::from_str(&first.data).unwrap();
        let input = v["message"]["usage"]["input_tokens"].as_u64().unwrap();
        assert!(input > 0, "{text}");
    }
}

#[test]
fn stream_calls_fixture() {
    let evs = decode(STREAM_CALLS);
    let rid = "XmWdaNrLBO2oz7IPr4Hy-Qs";
    assert_eq!(
        content_events(&evs),
        [
            StreamEvent::ToolCallStart {
                index: 0,
                id: format!("call_{rid}_0"),
                name: "add".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":2,\"b\":3}".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: format!("call_{rid}_1"),
                name: "multiply".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"b\":3,\"a\":2}".into()
            },
            StreamEvent::Finish(StopReason::ToolUse),
        ],
        "the thought summary is not answer text"
    );
    assert_eq!(
        last_usage(&evs),
        Some(Usage {
            input: 121,
            output: 75,
            cached: 0,
            reasoning: 39,
            ..Default::default()
        })
    );
}

#[test]
fn stream_split_at_every_byte() {
    for stream in [STREAM_TEXT, STREAM_CALLS] {
        crate::translate::testkit::assert_split_proof::<Decoder>(stream);
    }
}

#[test]
fn openai_stream_to_gemini_chunks() {
    let ir = decode_with(
        openai_chat::Decoder::default(),
        OPENAI_STREAM.as_bytes(),
        [],
    );
    let req = ChatRequest {
        model: "gemini-2.5-flash".into(),
        stream: true,
        ..Default::default()
    };
    let text = encode_with(Encoder::new(&req), &ir);
    let chunks = chunks_of(&text);
    assert_eq!(chunks.len(), 3, "{text}");
    assert_eq!(
        chunks[0]["candidates"][0]["content"],
        json!({"parts": [{"text": "Both:"}], "role": "model"})
    );
    // The first call goes out whole once the next one starts.
    assert_eq!(
        chunks[1]["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"id": "call_a", "name": "add", "args": {"a": 2, "b": 3}}}])
    );
    assert!(
        chunks[1].get("usageMetadata").is_none()
            && chunks[1]["candidates"][0].get("finishReason").is_none()
    );
    // The last one rides on the final chunk with the finish and the usage.
    let last = &chunks[2];
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "multiply"
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 50, "candidatesTokenCount": 18, "thoughtsTokenCount": 12, "cachedContentTokenCount": 16, "totalTokenCount": 80})
    );
    assert_eq!(
        (last["responseId"].as_str(), last["modelVersion"].as_str()),
        (Some("chatcmpl-9"), Some("gpt-4o"))
    );

    // What the app receives decodes to the same answer, ids included.
    let back = decode(&text);
    assert_eq!(content_events(&back), content_events(&ir));
    assert_eq!(last_usage(&back), last_usage(&ir));
}

#[test]
fn gemini_stream_to_anthropic_and_openai() {
    let ir = decode(STREAM_CALLS);
    let text = encode_with(anthropic::Encoder::new(&ChatRequest::default()), &ir);
    let mut p = SseParser::new();
    p.push(text.as_bytes());
    let names: Vec<String> = std::iter::from_fn(|| p.next_event())
        .filter_map(|e| e.event)
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        .map(String::from),
        "{text}"
    );
    // Gemini reports the prompt first, so message_start already carries it.
    assert!(text.contains("\"input_tokens\":121"));
    assert!(text.contains("\"stop_reason\":\"tool_use\""));

    let oa = encode_with(
        openai_chat::Encoder::new(&ChatRequest {
            stream_usage: true,
            ..Default::default()
        }),
        &ir,
    );
    let back = decode_with(openai_chat::Decoder::default(), oa.as_bytes(), []);
    assert_eq!(content_events(&back), content_events(&ir));
    assert_eq!(
        last_usage(&back),
        Some(Usage {
            input: 121,
            output: 75,
            cached: 0,
            reasoning: 39,
            ..Default::default()
        })
    );
}

#[test]
fn encoder_errors_and_cut_streams() {
    let req = req_with(vec![]);
    let evs = [
        StreamEvent::TextDelta("par".into()),
        StreamEvent::Error {
            message: "boom".into(),
        },
        StreamEvent::TextDelta("x".into()),
    ];
    let chunks = chunks_of(&encode_with(Encoder::new(&req), &evs));
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["error"]["message"], "boom");
    let chunks = chunks_of(&encode_with(Encoder::new(&req), &evs[..1]));
    assert!(
        chunks.last().unwrap().get("error").is_some(),
        "cut before a finish is an error"
    );
    let done = [
        StreamEvent::TextDelta("ok".into()),
        StreamEvent::Finish(StopReason::MaxTokens),
    ];
    let chunks = chunks_of(&encode_with(Encoder::new(&req), &done));
    assert_eq!(
        chunks[1]["candidates"][0],
        json!({"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0})
    );
    assert_eq!(
        decode(
            "data: {\"error\": {\"code\": 500, \"message\": \"Internal\", \"status\": \"INTERNAL\"}}\n\n"
        ),
        [StreamEvent::Error {
            message: "Internal".into()
        }]
    );
}

/// A turn Gemini ended because it could not make the call it began is a
/// failure the app's client retries, not an empty finished turn.
#[test]
fn a_failed_function_call_is_an_error_not_an_empty_turn() {
    let finished = |reason: &str| {
        format!(
            "{{\"candidates\": [{{\"content\": {{\"role\": \"model\", \"parts\": [{{\"text\": \"\"}}]}}, \"finishReason\": \"{reason}\"}}], \"usageMetadata\": {{\"promptTokenCount\": 9, \"candidatesTokenCount\": 0, \"totalTokenCount\": 9}}}}"
        )
    };
    for reason in [
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
    ] {
        let body = finished(reason);
        let err = decode_response(body.as_bytes()).unwrap_err();
        assert!(err.message.contains(reason), "{}", err.message);
        let mut translating = Decoder::default();
        translating.translating();
        let events = decode_with(translating, format!("data: {body}\n\n").as_bytes(), []);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::Error { message } if message.contains(reason))),
            "{events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, StreamEvent::Finish(_))),
            "{events:?}"
        );
        // A Gemini app gets the turn as Gemini sent it (Gemini CLI sends it
        // again on its own): metered as finished, not as an error.
        let native = decode(&format!("data: {body}\n\n"));
        assert!(
            !native
                .iter()
                .any(|e| matches!(e, StreamEvent::Error { .. })),
            "{native:?}"
        );
    }
    // A plain stop is still a finished turn.
    let events = decode(&format!("data: {}\n\n", finished("STOP")));
    assert!(
        events.contains(&StreamEvent::Finish(StopReason::EndTurn)),
        "{events:?}"
    );
}
