//! Images apps' tools return (Claude Code's Read on a picture, screenshot
//! tools, Codex's `input_image` outputs), translated for Gemini: each
//! `functionResponse` carries the result's text, its images follow it in the
//! same user content.

use super::*;
use crate::translate::testkit::{PNG, tool_images};

/// The Gemini contents for a request whose tools returned images.
fn contents_for(req: ChatRequest) -> Value {
    encode_request(&req).expect("encodes")["contents"].clone()
}

/// Claude Code reads an image file: Gemini gets the tool's text in the
/// `functionResponse` and the picture as `inlineData` right behind it, in
/// the user content answering the model's calls; a text-only result and the
/// turn's own text follow as ever.
#[test]
fn claude_code_reading_an_image_is_answered_by_gemini() {
    let contents = contents_for(tool_images::claude_code_read());
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
    let contents = contents_for(tool_images::screenshots());
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
    let contents = contents_for(tool_images::codex_output());
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "view_image", "response": {"output": "chart.png"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}}
        ]})
    );
}

/// Gemini CLI on a Gemini 3 model puts a tool's images inside its
/// `functionResponse` (`parts`). Routed to Claude, the images stay with
/// that result, in the `tool_result`, rather than being lost.
#[test]
fn gemini_clis_multimodal_function_result_reaches_claude_with_its_image() {
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "what is in shot.png?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {"path": "shot.png"}}}]},
        {"role": "user", "parts": [{"functionResponse": {
            "name": "read_file",
            "response": {"output": "Read image file: shot.png"},
            "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}]
        }}]}
    ]});
    let mut req = crate::translate::gemini::decode_request(body.to_string().as_bytes(), "claude-sonnet-4-5", false)
        .expect("decodes");
    let sent = crate::translate::encode_request(crate::translate::Format::Anthropic, &mut req)
        .expect("encodes");
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    let result = &sent["messages"][2]["content"][0];
    assert_eq!(result["type"], "tool_result", "{sent}");
    assert_eq!(
        result["content"],
        json!([
            {"type": "text", "text": "Read image file: shot.png"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        ]),
        "{sent}"
    );
    // A part that is no image, or empty, is refused by name.
    let mut bad = body.clone();
    bad["contents"][2]["parts"][0]["functionResponse"]["parts"] =
        json!([{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}, {}]);
    let e = crate::translate::gemini::decode_request(bad.to_string().as_bytes(), "claude-sonnet-4-5", false)
        .expect_err("a PDF is not translated");
    assert!(e.to_string().contains("functionResponse.parts[0].inlineData.mimeType"), "{e}");
}
