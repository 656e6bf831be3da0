//! Property-based fuzzing (proptest, stable Rust) of what parses hostile
//! input on the request path: the SSE framer, the JSON-array framer, each
//! format's request, response and stream decoders (and the encoders fed
//! from them), body validation and the glob matcher. No panic, no hang, no
//! blow-up; where there is an exact answer, it is checked.
//!
//! Cases per property: `PROPTEST_CASES` (default 256 here; CI sets more).

use aigw_proto::model::Glob;
use bytes::BytesMut;
use data_plane::json_array::JsonArrayParser;
use data_plane::sse::{Event, SseParser};
use data_plane::translate::{self, Format};
use data_plane::validate;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FORMATS: [Format; 4] = [
    Format::OpenAiChat,
    Format::Responses,
    Format::Anthropic,
    Format::Gemini,
];

/// Field names the codecs look at, so generated bodies reach deep code.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tools",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "parameters",
    "tool_choice",
    "system",
    "input",
    "instructions",
    "contents",
    "parts",
    "functionCall",
    "functionResponse",
    "args",
    "response",
    "id",
    "tool_use_id",
    "image_url",
    "url",
    "source",
    "data",
    "media_type",
    "max_tokens",
    "stream",
    "response_format",
    "json_schema",
    "schema",
    "properties",
    "items",
    "$ref",
    "$defs",
    "anyOf",
    "candidates",
    "usage",
    "usageMetadata",
    "choices",
    "delta",
    "finish_reason",
    "stop_reason",
    "output",
    "call_id",
    "generationConfig",
    "systemInstruction",
    "thinking",
    "cache_control",
    "metadata",
    "temperature",
    "stop",
    "required",
    "enum",
    "description",
    "index",
    "message",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "error",
];
const STRINGS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "model",
    "function",
    "text",
    "image",
    "image_url",
    "tool_use",
    "tool_result",
    "function_call",
    "function_call_output",
    "message",
    "object",
    "string",
    "array",
    "auto",
    "none",
    "required",
    "json_schema",
    "#/$defs/A",
    "data:image/png;base64,AAAA",
    "gpt-4o",
    "",
    "stop",
    "length",
    "tool_calls",
    "end_turn",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..7).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A body shaped like a request of some format, with fuzzed insides.
fn request_body() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value(), any::<bool>()).prop_map(|(a, b, c, stream)| {
        json!({
            "model": "gpt-4o",
            "stream": stream,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": a.clone()}, b.clone()],
            "input": [a.clone(), c.clone()],
            "contents": [{"role": "user", "parts": [a, c.clone()]}],
            "tools": [b, {"type": "function", "function": {"name": "f", "parameters": c}}],
        })
    })
}

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// What a decoded request must survive: every encoder, as a request and
/// as the stream and answer the app would get back.
fn exercise_request(fmt: Format, body: &[u8]) {
    let Ok(req) = translate::decode_request(fmt, body, Some("gemini-x"), true) else {
        return;
    };
    for target in FORMATS {
        let _ = translate::encode_request(target, &mut req.clone());
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn request_decoders_never_panic(body in request_body(), fmt in prop::sample::select(&FORMATS[..])) {
        let bytes = serde_json::to_vec(&body).unwrap();
        exercise_request(fmt, &bytes);
    }

    #[test]
    fn request_decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), fmt in prop::sample::select(&FORMATS[..])) {
        exercise_request(fmt, &bytes);
        let _ = validate::json_body(&bytes);
    }

    #[test]
    fn response_decoders_never_panic(body in json_value(), fmt in prop::sample::select(&FORMATS[..])) {
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(resp) = translate::decode_response(fmt, &bytes) {
            for app in FORMATS {
                let _ = translate::encode_response(app, &resp);
            }
        }
        let _ = translate::usage_of_body(fmt, false, &bytes);
    }

    #[test]
    fn stream_decoders_and_encoders_never_panic(
        events in prop::collection::vec((prop::option::of(prop::sample::select(&[
            "message_start", "content_block_start", "content_block_delta", "content_block_stop",
            "message_delta", "message_stop", "response.created", "response.output_text.delta",
            "response.function_call_arguments.delta", "response.output_item.added",
            "response.completed", "error", "ping"][..])), json_value()), 0..12),
        upstream in prop::sample::select(&FORMATS[..]),
        app in prop::sample::select(&FORMATS[..]),
    ) {
        let req = translate::decode_request(
            Format::OpenAiChat,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            None,
            true,
        ).unwrap();
        let mut decoder = translate::decoder(upstream);
        let mut encoder = translate::encoder(app, &req);
        let mut ir = Vec::new();
        let mut out = BytesMut::new();
        for (name, data) in events {
            let data = data.to_string();
            let ev = Event { raw: BytesMut::from(data.as_bytes()), event: name.map(str::to_string), data };
            decoder.event(&ev, &mut ir);
            for e in ir.drain(..) {
                encoder.event(&e, &mut out);
            }
        }
        decoder.end(&mut ir);
        for e in ir.drain(..) {
            encoder.event(&e, &mut out);
        }
        encoder.end(&mut out);
    }

    /// Whatever the bytes and however they are split, the SSE framer hands
    /// back every byte exactly once, in order.
    #[test]
    fn sse_framing_is_lossless(input in prop::collection::vec(prop::sample::select(&b"data: {}\r\nevent:x:\n\n a"[..]), 0..300), cuts in prop::collection::vec(0usize..300, 0..8)) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            p.push(&input[last..c]);
            last = c;
            while let Some(ev) = p.next_event() {
                out.extend_from_slice(&ev.raw);
            }
        }
        if let Some(ev) = p.finish() {
            out.extend_from_slice(&ev.raw);
        }
        prop_assert_eq!(out, input);
    }

    /// Split anywhere, a JSON array of objects comes out element by element.
    #[test]
    fn json_array_framing_finds_every_element(items in prop::collection::vec(json_value(), 0..6), cut in any::<prop::sample::Index>()) {
        let objects: Vec<Value> = items.into_iter().map(|v| json!({"v": v})).collect();
        let text = serde_json::to_string(&objects).unwrap();
        let bytes = text.as_bytes();
        let at = cut.index(bytes.len() + 1);
        let mut p = JsonArrayParser::new();
        p.push(&bytes[..at]);
        p.push(&bytes[at..]);
        let got: Vec<String> = std::iter::from_fn(|| p.next_event()).map(|e| e.data).collect();
        let want: Vec<String> = objects.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        prop_assert_eq!(got, want);
    }

    /// The matcher agrees with a plain recursive reference on short inputs,
    /// and stays fast on long ones.
    #[test]
    fn glob_matches_like_the_reference(pattern in "[ab*?]{0,12}", text in "[ab]{0,16}") {
        prop_assert_eq!(Glob::new(pattern.as_str()).matches(&text), reference(pattern.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn glob_is_fast_on_hostile_inputs(stars in 1usize..64, len in 1usize..4096) {
        let pattern = format!("{}b", "a*".repeat(stars));
        let text = "a".repeat(len);
        let t = std::time::Instant::now();
        prop_assert!(!Glob::new(pattern).matches(&text));
        prop_assert!(t.elapsed() < std::time::Duration::from_millis(200));
    }
}

fn reference(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
        (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
        _ => false,
    }
}
