//! The IR's own rules: naming tool results, splitting their content, the dropped-fields list.

use super::drops::{MAX_DROPPED, MAX_FIELD_CHARS};
use super::*;

/// Tool results are named after the earlier call with their id (not a
/// later one), unknown ids stay unnamed, and consecutive results share
/// one user turn, however many there are.
#[test]
fn tool_results_are_named_in_one_pass() {
    let mut messages = vec![
        serde_json::json!({"role": "user", "content": "go"}),
        serde_json::json!({"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "first", "arguments": "{}"}}]}),
        serde_json::json!({"role": "tool", "tool_call_id": "a", "content": "1"}),
        // Its call only comes later: not an answer to it.
        serde_json::json!({"role": "tool", "tool_call_id": "late", "content": "2"}),
    ];
    for i in 0..20_000 {
        messages.push(
            serde_json::json!({"role": "tool", "tool_call_id": format!("u{i}"), "content": ""}),
        );
    }
    messages.push(serde_json::json!({"role": "assistant", "tool_calls": [
        {"id": "late", "type": "function", "function": {"name": "second", "arguments": "{}"}}]}));
    let body = serde_json::json!({"model": "m", "messages": messages}).to_string();
    let req = crate::translate::decode_request(
        crate::translate::Format::OpenAiChat,
        body.as_bytes(),
        None,
        false,
    )
    .expect("decodes");
    let results = &req.messages[2].content;
    assert_eq!(results.len(), 20_002, "one user turn for the results");
    let names: Vec<Option<&str>> = results
        .iter()
        .map(|p| match p {
            Part::ToolResult { name, .. } => name.as_deref(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names[0], Some("first"));
    assert!(names[1..].iter().all(Option::is_none));
}

/// A result's texts are joined a line each, its images kept beside it; text
/// stands in for a result of images only; anything else is refused.
#[test]
fn tool_result_content_splits_text_from_images() {
    let png = Image::Base64 {
        media_type: "image/png".into(),
        data: "iVBOR".into(),
    };
    let content = [
        Part::Text("a".into()),
        Part::Image(png.clone()),
        Part::Text("b".into()),
    ];
    assert_eq!(
        result_content(&content, 2, "t"),
        Ok(ResultContent {
            text: "a\nb".into(),
            images: vec![&png]
        })
    );
    let only = [Part::Image(png.clone())];
    assert_eq!(
        result_content(&only, 2, "t").map(|r| r.text),
        Ok(IMAGES_FOLLOW.to_string())
    );
    assert_eq!(
        result_content(&[], 2, "t"),
        Ok(ResultContent {
            text: String::new(),
            images: vec![]
        })
    );
    let nested = [Part::ToolCall {
        id: "c".into(),
        name: "f".into(),
        arguments: "{}".into(),
    }];
    assert_eq!(
        result_content(&nested, 2, "t").map_err(|e| e.field),
        Err("messages[2].tool_result.content (neither text nor image)".to_string())
    );
}

#[test]
fn drops_are_generalized_deduplicated_and_bounded() {
    let mut d = Drops::default();
    d.advisory("messages[0].content[1].cache_control");
    d.advisory("messages[12].content[0].cache_control");
    d.hint("context_management");
    d.advisory("context_management");
    let got: Vec<(&str, bool)> = d.iter().map(|x| (x.field.as_str(), x.always)).collect();
    assert_eq!(
        got,
        [
            ("messages[*].content[*].cache_control", true),
            // Once a hint, refused on strict routes whatever else said it.
            ("context_management", false)
        ]
    );
    assert_eq!(
        d.strict_refusal().map(|x| x.field.as_str()),
        Some("context_management")
    );
    for i in 0..1000 {
        d.hint(&format!("f{i}"));
    }
    assert_eq!(d.iter().count(), MAX_DROPPED);
    let mut d = Drops::default();
    d.hint(&format!("tools[0] (\n{}é)", "x".repeat(500)));
    let f = &d.iter().next().unwrap().field;
    assert!(
        f.starts_with("tools[*] (?xx") && f.len() == MAX_FIELD_CHARS,
        "{f}"
    );
}
