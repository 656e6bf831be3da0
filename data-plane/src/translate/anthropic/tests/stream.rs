//! Anthropic streams: the fixtures, read whole and split at every byte,
//! errors and cut streams, and to and from OpenAI chat's chunks.

use super::*;
use crate::sse::SseParser;

const STREAM_TEXT: &str = include_str!("../../../../tests/fixtures/anthropic/stream_text.sse");
const STREAM_TOOL: &str = include_str!("../../../../tests/fixtures/anthropic/stream_tool_use.sse");

/// An OpenAI chat stream (shape of `openai_chat`'s own tests): text, two
/// tool calls, finish, then the usage chunk.
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-7\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Checking\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" both.\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"location\\\":\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Lyon\\\"}\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}\"}}]}}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-7\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9,\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n",
    "data: [DONE]\n\n",
);

/// (`event:` name, parsed `data:`) of each event of an SSE text.
fn events_of(text: &str) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::new();
    p.push(text.as_bytes());
    std::iter::from_fn(|| p.next_event())
        .map(|e| (e.event, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

fn last_usage(evs: &[StreamEvent]) -> Option<Usage> {
    evs.iter().rev().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(*u),
        _ => None,
    })
}

#[test]
fn stream_text_fixture() {
    assert_eq!(
        decode(STREAM_TEXT),
        [
            StreamEvent::Start {
                id: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY".into(),
                model: "claude-sonnet-4-20250514".into()
            },
            StreamEvent::Usage(Usage {
                input: 25,
                output: 1,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            }),
            StreamEvent::TextDelta("Hello".into()),
            StreamEvent::TextDelta("!".into()),
            StreamEvent::Finish(StopReason::EndTurn),
            StreamEvent::Usage(Usage {
                input: 25,
                output: 15,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            }),
        ]
    );
}

#[test]
fn stream_tool_fixture_and_usage_totals() {
    let evs = decode(STREAM_TOOL);
    let calls: Vec<&StreamEvent> = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. }
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            &StreamEvent::ToolCallStart {
                index: 0,
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "weather".into()
            },
            &StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"lo".into()
            },
            &StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "cation\": ".into()
            },
            &StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "\"Florence, Italy\"}".into()
            },
        ]
    );
    assert!(evs.contains(&StreamEvent::Finish(StopReason::ToolUse)));
    // message_start and message_delta both report the input (newer API):
    // totals, never their sum.
    assert_eq!(
        last_usage(&evs),
        Some(Usage {
            input: 394 + 1024,
            output: 66,
            cached: 1024,
            reasoning: 0,
            ..Default::default()
        })
    );
}

#[test]
fn stream_split_at_every_byte() {
    for stream in [STREAM_TEXT, STREAM_TOOL] {
        crate::translate::testkit::assert_split_proof::<Decoder>(stream);
    }
}

#[test]
fn openai_stream_to_anthropic_events() {
    let ir = decode_with(
        openai_chat::Decoder::default(),
        OPENAI_STREAM.as_bytes(),
        [],
    );
    let req = ChatRequest {
        model: "claude-via-gateway".into(),
        ..Default::default()
    };
    let text = encode_with(Encoder::new(&req), &ir);
    let evs = events_of(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &evs {
        assert_eq!(
            Some(data["type"].as_str().unwrap()),
            name.as_deref(),
            "type matches the event name"
        );
    }
    let start = &evs[0].1["message"];
    assert_eq!(
        (start["id"].as_str(), start["model"].as_str()),
        (Some("msg_chatcmpl-7"), Some("gpt-4o"))
    );
    assert_eq!(
        evs[6].1["content_block"],
        json!({"type": "tool_use", "id": "call_a", "name": "weather", "input": {}})
    );
    assert_eq!(
        evs[7].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"location\":"})
    );
    assert_eq!(evs[10].1["index"], 2);
    let delta = &evs[13].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"],
        json!({"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "cache_read_input_tokens": 8, "output_tokens": 9})
    );

    // And back: what the app receives decodes to the same answer.
    let back = decode(&text);
    let content = |evs: &[StreamEvent]| -> Vec<StreamEvent> {
        evs.iter()
            .filter(|e| !matches!(e, StreamEvent::Start { .. } | StreamEvent::Usage(_)))
            .cloned()
            .collect()
    };
    assert_eq!(content(&back), content(&ir));
    assert_eq!(last_usage(&back), last_usage(&ir));
}

#[test]
fn anthropic_stream_to_openai_chunks() {
    let ir = decode(STREAM_TOOL);
    let req = ChatRequest {
        model: "claude".into(),
        stream: true,
        stream_usage: true,
        ..Default::default()
    };
    let text = encode_with(openai_chat::Encoder::new(&req), &ir);
    assert!(text.ends_with("data: [DONE]\n\n"));
    let back = decode_with(openai_chat::Decoder::default(), text.as_bytes(), []);
    assert!(back.contains(&StreamEvent::ToolCallStart {
        index: 0,
        id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
        name: "weather".into()
    }));
    assert!(back.contains(&StreamEvent::Finish(StopReason::ToolUse)));
    assert_eq!(
        last_usage(&back),
        Some(Usage {
            input: 1418,
            output: 66,
            cached: 1024,
            reasoning: 0,
            ..Default::default()
        })
    );
}

#[test]
fn encoder_errors_and_cut_streams() {
    let req = ChatRequest {
        model: "m".into(),
        ..Default::default()
    };
    // Mid-stream error: an `error` event, then nothing (as Anthropic does).
    let evs = [
        StreamEvent::Start {
            id: "x".into(),
            model: String::new(),
        },
        StreamEvent::TextDelta("par".into()),
        StreamEvent::Error {
            message: "Overloaded".into(),
        },
        StreamEvent::TextDelta("tial".into()),
    ];
    let out = events_of(&encode_with(Encoder::new(&req), &evs));
    let last = out.last().unwrap();
    assert_eq!(last.0.as_deref(), Some("error"));
    assert_eq!(last.1["error"]["message"], "Overloaded");
    // Cut before any finish: an error, not a made-up end_turn.
    let out = events_of(&encode_with(Encoder::new(&req), &evs[..2]));
    assert_eq!(out.last().unwrap().0.as_deref(), Some("error"));
    assert!(
        !out.iter()
            .any(|(n, _)| n.as_deref() == Some("message_stop"))
    );
    // Usage known before the content (Anthropic, Gemini): message_start has it.
    let evs = [
        StreamEvent::Usage(Usage {
            input: 30,
            output: 0,
            cached: 10,
            reasoning: 0,
            ..Default::default()
        }),
        StreamEvent::TextDelta("hi".into()),
        StreamEvent::Finish(StopReason::MaxTokens),
    ];
    let out = events_of(&encode_with(Encoder::new(&req), &evs));
    assert_eq!(out[0].1["message"]["usage"]["input_tokens"], 20);
    assert_eq!(out[0].1["message"]["usage"]["cache_read_input_tokens"], 10);
    assert!(
        out[0].1["message"]["id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(out[out.len() - 2].1["delta"]["stop_reason"], "max_tokens");
}

#[test]
fn decoder_reports_stream_errors() {
    let s = "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    assert_eq!(
        decode(s),
        [StreamEvent::Error {
            message: "Overloaded".into()
        }]
    );
}

/// An OpenAI-compatible vendor may interleave parallel calls' argument
/// deltas (each names its call by `index`): two calls started, then one
/// chunk with both calls' arguments, then a tool without arguments. The
/// Anthropic app gets each call's block whole before the next opens, and
/// the Gemini app each call with its own arguments.
#[test]
fn interleaved_openai_calls_reach_other_formats_one_after_another() {
    let up = concat!(
        "data: {\"id\":\"c1\",\"model\":\"qwen\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"fa\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"fb\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"y\\\":2}\"}},{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":2,\"id\":\"call_c\",\"type\":\"function\",\"function\":{\"name\":\"fc\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let decoded = || {
        let mut d = openai_chat::Decoder::default();
        crate::translate::codec::StreamDecoder::translating(&mut d);
        decode_with(d, up.as_bytes(), [])
    };
    let req = ChatRequest {
        model: "qwen".into(),
        ..Default::default()
    };
    let evs = events_of(&encode_with(Encoder::new(&req), &decoded()));
    // Each block: start, its deltas, stop, before the next starts.
    let mut open: Option<u64> = None;
    let mut args: Vec<(String, String)> = Vec::new();
    for (name, data) in &evs {
        let index = data["index"].as_u64();
        match name.as_deref() {
            Some("content_block_start") => {
                assert_eq!(open, None, "{evs:?}");
                open = index;
                let name = data["content_block"]["name"].as_str().unwrap_or_default();
                args.push((name.to_string(), String::new()));
            }
            Some("content_block_delta") => {
                assert_eq!(open, index, "a delta outside its open block: {evs:?}");
                if let Some(a) = data["delta"]["partial_json"].as_str() {
                    args.last_mut().unwrap().1.push_str(a);
                }
            }
            Some("content_block_stop") => {
                assert_eq!(open, index, "{evs:?}");
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(
        args,
        [
            ("fa".to_string(), r#"{"x":1}"#.to_string()),
            ("fb".to_string(), r#"{"y":2}"#.to_string()),
            ("fc".to_string(), "{}".to_string()),
        ]
    );

    let text = encode_with(gemini::Encoder::new(&req), &decoded());
    let calls: Vec<Value> = events_of(&text)
        .into_iter()
        .flat_map(|(_, d)| d["candidates"][0]["content"]["parts"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.get("functionCall").cloned())
        .collect();
    assert_eq!(
        calls,
        [
            json!({"id": "call_a", "name": "fa", "args": {"x": 1}}),
            json!({"id": "call_b", "name": "fb", "args": {"y": 2}}),
            json!({"id": "call_c", "name": "fc", "args": {}}),
        ],
        "{text}"
    );

    // A Responses app: each call's item is done with its own arguments.
    let text = encode_with(
        crate::translate::responses::Encoder::new(&req),
        &decoded(),
    );
    let done: Vec<(String, String)> = events_of(&text)
        .into_iter()
        .filter(|(n, _)| n.as_deref() == Some("response.output_item.done"))
        .map(|(_, d)| {
            let item = &d["item"];
            (item["name"].as_str().unwrap_or_default().to_string(), item["arguments"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(
        done,
        [
            ("fa".to_string(), r#"{"x":1}"#.to_string()),
            ("fb".to_string(), r#"{"y":2}"#.to_string()),
            ("fc".to_string(), "{}".to_string()),
        ],
        "{text}"
    );
}
