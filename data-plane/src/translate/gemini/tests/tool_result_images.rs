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
