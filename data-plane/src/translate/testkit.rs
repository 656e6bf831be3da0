//! Helpers the codecs' tests share: run a stream decoder over SSE bytes cut
//! anywhere, and an encoder over IR events.

use bytes::BytesMut;

use super::{StreamDecoder, StreamEncoder, StreamEvent};
use crate::sse::SseParser;

/// Feeds `bytes` to an SSE parser in pieces cut at `cuts`, decoding each event.
pub fn decode_with(
    mut d: impl StreamDecoder,
    bytes: &[u8],
    cuts: impl IntoIterator<Item = usize>,
) -> Vec<StreamEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        p.push(&bytes[last..c]);
        last = c;
        while let Some(e) = p.next_event() {
            d.event(&e, &mut out);
        }
    }
    if let Some(e) = p.finish() {
        d.event(&e, &mut out);
    }
    d.end(&mut out);
    out
}

/// Asserts that `stream` decodes alike however it is split: at every byte
/// once, and byte by byte (a network may cut an event anywhere).
pub fn assert_split_proof<D: StreamDecoder + Default>(stream: &str) {
    let bytes = stream.as_bytes();
    let whole = decode_with(D::default(), bytes, []);
    for i in 0..=bytes.len() {
        assert_eq!(decode_with(D::default(), bytes, [i]), whole, "split at {i}");
    }
    assert_eq!(
        decode_with(D::default(), bytes, 1..bytes.len()),
        whole,
        "byte by byte"
    );
}

/// The app's stream an encoder writes for `evs`, closing included.
pub fn encode_with(mut enc: impl StreamEncoder, evs: &[StreamEvent]) -> String {
    let mut out = BytesMut::new();
    for e in evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// A PNG's first bytes, base64: what Claude Code's Read tool sends for a
/// picture.
pub const PNG: &str = "iVBORw0KGgo=";

/// Apps whose tools returned images, as the codecs' tests for each target
/// decode them (the same requests, whatever the target).
pub mod tool_images {
    use serde_json::json;

    use super::PNG;
    use crate::translate::ir::ChatRequest;
    use crate::translate::{anthropic, responses};

    fn from_anthropic(body: serde_json::Value) -> ChatRequest {
        anthropic::decode_request(body.to_string().as_bytes()).expect("decodes")
    }

    /// Claude Code reads an image file and a text file, then asks about
    /// both: one result of text and a picture, one of text, then the turn's
    /// own text.
    pub fn claude_code_read() -> ChatRequest {
        from_anthropic(json!({
            "model": "any-model",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "What is in shot.png and notes.txt?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "shot.png"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"file_path": "notes.txt"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                        {"type": "text", "text": "Read image (12 bytes)"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
                    ]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "buy milk"},
                    {"type": "text", "text": "Describe both."}
                ]}
            ]
        }))
    }

    /// A screenshot tool returns only pictures: a base64 one, and a URL one
    /// marked as an error.
    pub fn screenshots() -> ChatRequest {
        from_anthropic(json!({
            "model": "any-model",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Take screenshots"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_a", "name": "screenshot", "input": {}},
                    {"type": "tool_use", "id": "toolu_b", "name": "screenshot", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A=="}}
                    ]},
                    {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": true, "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/crash.png"}}
                    ]}
                ]}
            ]
        }))
    }

    /// Codex's `function_call_output` holding an `input_image`.
    pub fn codex_output() -> ChatRequest {
        let body = json!({
            "model": "any-model",
            "input": [
                {"role": "user", "content": "Show me the chart"},
                {"type": "function_call", "call_id": "call_1", "name": "view_image", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": [
                    {"type": "input_text", "text": "chart.png"},
                    {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG}")}
                ]}
            ]
        });
        responses::decode_request(body.to_string().as_bytes()).expect("decodes")
    }
}

/// The error `body` writes for an upstream answer of `status`: field `key`
/// of its `error` object (Anthropic's `type`, Gemini's `status`).
pub fn error_field_for(
    body: fn(&crate::error::GatewayError) -> bytes::Bytes,
    status: u16,
    key: &str,
) -> String {
    let e = crate::error::GatewayError::UpstreamResponse {
        status: http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::IM_A_TEAPOT),
        retry_after: None,
        body: bytes::Bytes::new(),
    };
    let v: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap_or_default();
    v["error"][key].as_str().unwrap_or_default().to_string()
}
