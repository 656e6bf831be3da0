//! How an answer ends: calls that end with `stop`, and streams cut short.

use super::*;
use crate::translate::testkit::encode_with;

/// vLLM and Ollama end an answer of calls with `stop`: still a tool use,
/// whole or streamed; `stop` without calls is still the end of a turn.
#[test]
fn a_stop_with_tool_calls_is_a_tool_use() {
    let answer = |finish: &str, calls: &str| {
        format!(
            r#"{{"id":"x","model":"qwen","choices":[{{"message":{{"role":"assistant","content":null,"tool_calls":{calls}}},"finish_reason":"{finish}"}}]}}"#
        )
    };
    let call = r#"[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]"#;
    let stop = |body: String| decode_response(body.as_bytes()).unwrap().stop;
    assert_eq!(stop(answer("stop", call)), Some(StopReason::ToolUse));
    assert_eq!(stop(answer("tool_calls", call)), Some(StopReason::ToolUse));
    assert_eq!(stop(answer("length", call)), Some(StopReason::MaxTokens));
    assert_eq!(stop(answer("stop", "[]")), Some(StopReason::EndTurn));

    let stream = |finish: &str| {
        format!(
            concat!(
                "data: {{\"id\":\"c\",\"model\":\"qwen\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{{\"name\":\"f\",\"arguments\":\"{{}}\"}}}}]}}}}]}}\n\n",
                "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{}\"}}]}}\n\n",
                "data: [DONE]\n\n",
            ),
            finish
        )
    };
    let finish = |evs: Vec<StreamEvent>| {
        evs.into_iter().find_map(|e| match e {
            StreamEvent::Finish(r) => Some(r),
            _ => None,
        })
    };
    assert_eq!(finish(decoded(&stream("stop"))), Some(StopReason::ToolUse));
    assert_eq!(
        finish(decoded(&stream("length"))),
        Some(StopReason::MaxTokens)
    );
    let text_only = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n";
    assert_eq!(finish(decoded(text_only)), Some(StopReason::EndTurn));

    // An Anthropic app is told to run the call.
    let app = ChatRequest {
        model: "qwen".into(),
        stream: true,
        ..Default::default()
    };
    let text = encode_with(
        crate::translate::anthropic::Encoder::new(&app),
        &decoded(&stream("stop")),
    );
    assert!(text.contains("\"stop_reason\":\"tool_use\""), "{text}");
}

/// The data of each event of an app's stream.
fn data_of(text: &str) -> Vec<String> {
    let mut p = SseParser::new();
    p.push(text.as_bytes());
    std::iter::from_fn(|| p.next_event())
        .map(|e| e.data)
        .collect()
}

/// A stream that ends before any finish reason, or with an upstream error,
/// ends with an error chunk, not a clean `[DONE]`; nothing follows it.
#[test]
fn a_stream_cut_short_ends_with_an_error_chunk() {
    let app = ChatRequest {
        model: "m".into(),
        stream_usage: true,
        ..Default::default()
    };
    let start = StreamEvent::Start {
        id: "x".into(),
        model: String::new(),
    };
    let usage = StreamEvent::Usage(Usage {
        input: 5,
        ..Default::default()
    });
    let cut = [start.clone(), StreamEvent::TextDelta("par".into()), usage];
    let data = data_of(&encode_with(Encoder::new(&app), &cut));
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{data:?}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before the answer was complete")
    );
    assert!(!data.iter().any(|d| d == "[DONE]"), "{data:?}");

    let failed = [
        start.clone(),
        StreamEvent::TextDelta("par".into()),
        StreamEvent::Error {
            message: "Overloaded".into(),
        },
        StreamEvent::TextDelta("tial".into()),
        StreamEvent::Finish(StopReason::EndTurn),
    ];
    let data = data_of(&encode_with(Encoder::new(&app), &failed));
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["message"], "Overloaded", "{data:?}");
    assert_eq!(data.iter().filter(|d| d.contains("\"error\"")).count(), 1);

    // A finished stream still ends cleanly.
    let done = [
        start,
        StreamEvent::TextDelta("ok".into()),
        StreamEvent::Finish(StopReason::EndTurn),
    ];
    let data = data_of(&encode_with(Encoder::new(&app), &done));
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(!data.iter().any(|d| d.contains("\"error\"")));
}
