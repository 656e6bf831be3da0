//! Images apps' tools return (Claude Code's Read on a picture, screenshot
//! tools, Codex's `input_image` outputs), translated for Gemini: each
//! `functionResponse` carries the result's text, its images follow it in the
//! same user content.

use super::*;

/// A PNG's first bytes, base64: what Claude Code's Read tool sends for a picture.
const PNG: &str = "iVBORw0KGgo=";

/// The Gemini contents for an Anthropic request.
fn contents_for_anthropic(body: Value) -> Value {
    let req = anthropic::decode_request(body.to_string().as_bytes()).expect("decodes");
    encode_request(&req).expect("encodes")["contents"].clone()
}

/// Claude Code reads an image file: Gemini gets the tool's text in the
/// `functionResponse` and the picture as `inlineData` right behind it, in
/// the user content answering the model's calls; a text-only result and the
/// turn's own text follow as ever.
#[test]
fn claude_code_reading_an_image_is_answered_by_gemini() {
    let contents = contents_for_anthropic(json!({
        "model": "gemini-2.5-flash",
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
    }));
    assert_eq!(contents.as_array().map(Vec::len), Some(3));
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "toolu_1", "name": "Read", "response": {"output": "Read image (12 bytes)"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
            {"functionResponse": {"id": "toolu_2", "name": "Read", "response": {"output": "buy milk"}}},
            {"text": "Describe both."}
        ]})
    );
}

/// A screenshot tool returns only a picture (a URL one, and an error):
/// the `functionResponse` says the image follows, the image follows it.
#[test]
fn screenshot_tool_returning_only_images_is_answered_by_gemini() {
    let contents = contents_for_anthropic(json!({
        "model": "gemini-2.5-flash",
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
    }));
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "toolu_a", "name": "screenshot", "response": {"output": "(image attached below)"}}},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4A=="}},
            {"functionResponse": {"id": "toolu_b", "name": "screenshot", "response": {"error": "(image attached below)"}}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/crash.png"}}
        ]})
    );
}

/// Codex's `function_call_output` holding an `input_image` reaches Gemini
/// the same way.
#[test]
fn codex_function_output_with_an_image_is_answered_by_gemini() {
    let body = json!({
        "model": "gemini-2.5-flash",
        "input": [
            {"role": "user", "content": "Show me the chart"},
            {"type": "function_call", "call_id": "call_1", "name": "view_image", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": [
                {"type": "input_text", "text": "chart.png"},
                {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG}")}
            ]}
        ]
    });
    let req =
        crate::translate::responses::decode_request(body.to_string().as_bytes()).expect("decodes");
    let contents = encode_request(&req).expect("encodes")["contents"].clone();
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "view_image", "response": {"output": "chart.png"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}}
        ]})
    );
}
