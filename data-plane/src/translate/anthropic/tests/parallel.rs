//! One tool call at a time: Anthropic's `disable_parallel_tool_use`, to
//! and from the other formats.

use super::*;
use crate::translate::Format;

const TOOLS: &str = r#"[{"name": "f", "input_schema": {"type": "object"}}]"#;

/// An Anthropic app's request with `tool_choice`, as IR.
fn with_choice(tool_choice: Value) -> ChatRequest {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": serde_json::from_str::<Value>(TOOLS).unwrap(),
        "tool_choice": tool_choice,
    });
    decode_request(body.to_string().as_bytes()).unwrap()
}

/// The `tool_choice` sent to Anthropic for `req`.
fn choice_sent(mut req: ChatRequest) -> Value {
    let body = crate::translate::encode_request(Format::Anthropic, &mut req).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    v.get("tool_choice").cloned().unwrap_or(Value::Null)
}

#[test]
fn disable_parallel_tool_use_is_kept() {
    for ty in ["auto", "any"] {
        let req = with_choice(json!({"type": ty, "disable_parallel_tool_use": true}));
        assert!(req.serial_tool_calls && req.dropped.is_empty(), "{ty}");
        assert_eq!(
            choice_sent(req),
            json!({"type": ty, "disable_parallel_tool_use": true})
        );
    }
    let req = with_choice(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}));
    assert_eq!(
        choice_sent(req),
        json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
    );
    // `false` (the fixture's) is the default: unsaid.
    let fixture = decode_request(REQUEST.as_bytes()).unwrap();
    assert!(!fixture.serial_tool_calls);
    assert_eq!(choice_sent(fixture), json!({"type": "auto"}));
}

/// OpenAI's `parallel_tool_calls: false` needs a `tool_choice` to say it
/// at Anthropic: auto when the app chose none; none takes no such setting,
/// and without tools there is no `tool_choice` at all.
#[test]
fn parallel_tool_calls_false_becomes_disable_parallel_tool_use() {
    let openai = |extra: &str| {
        let body = format!(
            r#"{{"model":"claude-sonnet-4-5","messages":[{{"role":"user","content":"hi"}}],"parallel_tool_calls":false{extra}}}"#
        );
        openai_chat::decode_request(body.as_bytes()).unwrap()
    };
    let tools =
        r#","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
    assert_eq!(
        choice_sent(openai(tools)),
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        choice_sent(openai(&format!(r#"{tools},"tool_choice":"required""#))),
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        choice_sent(openai(&format!(r#"{tools},"tool_choice":"none""#))),
        json!({"type": "none"})
    );
    assert_eq!(choice_sent(openai("")), Value::Null);
}

/// Gemini has no such setting: dropped as a hint where there are tools.
#[test]
fn one_call_at_a_time_is_a_hint_for_gemini() {
    let mut req = with_choice(json!({"type": "auto", "disable_parallel_tool_use": true}));
    let body = crate::translate::encode_request(Format::Gemini, &mut req).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(dropped(&req.dropped), [("parallel_tool_calls", false)]);
    // Nothing to call: nothing lost.
    let body =
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false}"#;
    let mut req = openai_chat::decode_request(body.as_bytes()).unwrap();
    crate::translate::encode_request(Format::Gemini, &mut req).unwrap();
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
}
