//! What OpenAI refuses that the other formats' apps send: long end-user
//! ids, long tool descriptions, `parallel_tool_calls` where it is unknown.

use super::*;
use crate::translate::anthropic;
use crate::translate::ir::{Message, Role, Tool};

/// Claude Code's `metadata.user_id`: a JSON object of ids, well over 64
/// characters.
const CLAUDE_CODE_USER: &str = r#"{"device_id":"8f1c2a9e4b7d6f3a5c0e1b2d4f6a8c9e7b5d3f1a2c4e6b8d0f2a4c6e8b0d2f4a","account_uuid":"","session_id":"3f2e1d0c-9b8a-4f6e-8d7c-5b4a3f2e1d0c"}"#;

fn anthropic_app(extra: serde_json::Value) -> ChatRequest {
    let mut body = json!({
        "model": "gpt-4o",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    anthropic::decode_request(body.to_string().as_bytes()).unwrap()
}

#[test]
fn a_long_end_user_id_is_sent_as_its_sha256() {
    assert!(CLAUDE_CODE_USER.chars().count() > 64);
    let req = anthropic_app(json!({"metadata": {"user_id": CLAUDE_CODE_USER}}));
    let (v, _) = encoded_for(ProviderKind::OpenAi, req.clone());
    let sent = v["user"].as_str().unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, CLAUDE_CODE_USER.as_bytes());
    assert_eq!(sent, hex::encode(digest.as_ref()));
    assert_eq!(sent.len(), 64);
    // The same user is the same identifier on every request.
    let (again, _) = encoded_for(ProviderKind::OpenAiCompatible, req.clone());
    assert_eq!(again["user"], sent);
    // Responses likewise.
    let r = crate::translate::responses::encode_request(&req).unwrap();
    assert_eq!(r["user"], sent);
    // Ids OpenAI takes go as they are: 64 characters, multibyte included.
    for user in ["user-7f3a", &"é".repeat(64)] {
        let req = anthropic_app(json!({"metadata": {"user_id": user}}));
        let (v, _) = encoded_for(ProviderKind::OpenAi, req);
        assert_eq!(v["user"], user);
    }
}

/// A tool list as Claude Code sends it: one description far past OpenAI's
/// 1024 characters (multibyte characters around the cut), one short.
fn claude_code_tools(system: Vec<String>) -> ChatRequest {
    let long = format!(
        "Executes a bash command.\n\n# Usage notes\n{}",
        "Use → absolute paths. ".repeat(200)
    );
    ChatRequest {
        system,
        tools: vec![
            Tool {
                name: "Bash".into(),
                description: Some(long),
                parameters: json!({"type": "object", "properties": {}}),
                strict: None,
                schema_field: String::new(),
            },
            Tool {
                name: "Read".into(),
                description: Some("Reads a file.".into()),
                parameters: json!({"type": "object", "properties": {}}),
                strict: None,
                schema_field: String::new(),
            },
        ],
        ..capped("gpt-4o", None, None)
    }
}

#[test]
fn long_tool_descriptions_are_cut_and_given_whole_in_the_system_message() {
    let req = claude_code_tools(vec!["You are Claude Code.".into(), "Be brief.".into()]);
    let long = req.tools[0].description.clone().unwrap();
    let (v, _) = encoded_for(ProviderKind::OpenAi, req.clone());
    let cut = v["tools"][0]["function"]["description"].as_str().unwrap();
    assert!(cut.chars().count() <= 1024, "{}", cut.chars().count());
    assert!(cut.ends_with(" … (see the system message)"), "{cut}");
    assert!(long.starts_with(cut.trim_end_matches(" … (see the system message)")));
    assert_eq!(v["tools"][1]["function"]["description"], "Reads a file.");
    // The app's instructions stay as they were; the last one is followed by
    // the whole description under the tool's heading.
    assert_eq!(v["messages"][0]["content"], "You are Claude Code.");
    let last = v["messages"][1]["content"].as_str().unwrap();
    assert!(
        last.starts_with("Be brief.\n\n# Tool descriptions"),
        "{last}"
    );
    let quoted: String = long.lines().map(|l| format!("\n> {l}")).collect();
    assert!(
        last.ends_with(&format!("## Tool `Bash`\n{quoted}")),
        "{last}"
    );
    assert!(!last.contains("Reads a file."));
    // The description's own heading stays inside its quote.
    assert!(last.contains("\n> # Usage notes\n") && !last.contains("\n# Usage notes"));
    assert_eq!(v["messages"][2]["role"], "user");
    // Deterministic: the prompt's cached prefix holds from turn to turn.
    let (again, _) = encoded_for(ProviderKind::OpenAiCompatible, req);
    assert_eq!(
        (&again["messages"], &again["tools"]),
        (&v["messages"], &v["tools"])
    );

    // No instructions: the descriptions are a system message of their own.
    let (v, _) = encoded_for(ProviderKind::OpenAi, claude_code_tools(vec![]));
    assert_eq!(v["messages"][0]["role"], "system");
    assert!(
        v["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("# Tool descriptions")
    );
    assert_eq!(v["messages"][1]["role"], "user");

    // Short descriptions change nothing.
    let mut req = claude_code_tools(vec!["Be brief.".into()]);
    req.tools.remove(0);
    let (v, _) = encoded_for(ProviderKind::OpenAi, req);
    assert_eq!(v["messages"][0]["content"], "Be brief.");
}

#[test]
fn one_tool_call_at_a_time_is_kept() {
    let tools = r#"[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
    let body = |model: &str, parallel: &str| {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"tools":{tools},"parallel_tool_calls":{parallel}}}"#
        )
    };
    let req = decode_request(body("gpt-4o", "false").as_bytes()).unwrap();
    assert!(req.serial_tool_calls);
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
    let (v, req) = encoded_for(ProviderKind::OpenAi, req);
    assert_eq!(v["parallel_tool_calls"], false);
    assert!(req.dropped.is_empty());
    // The default says nothing.
    let req = decode_request(body("gpt-4o", "true").as_bytes()).unwrap();
    assert!(!req.serial_tool_calls && req.dropped.is_empty());
    let (v, _) = encoded_for(ProviderKind::OpenAi, req);
    assert!(v.get("parallel_tool_calls").is_none(), "{v}");

    // Anthropic's `disable_parallel_tool_use` is the same request.
    let req = anthropic_app(json!({
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
    }));
    assert!(req.serial_tool_calls);
    let (v, _) = encoded_for(ProviderKind::OpenAiCompatible, req.clone());
    assert_eq!(v["parallel_tool_calls"], false);

    // OpenAI's o-series refuses the setting: left out, a hint.
    let o3 = ChatRequest {
        model: "o3-mini".into(),
        ..req.clone()
    };
    let (v, o3) = encoded_for(ProviderKind::OpenAi, o3);
    assert!(v.get("parallel_tool_calls").is_none(), "{v}");
    assert_eq!(dropped(&o3), [("parallel_tool_calls", false)]);
    // A vendor's o3 and OpenAI's gpt-5 take it.
    for (kind, model) in [
        (ProviderKind::OpenAiCompatible, "o3-mini"),
        (ProviderKind::OpenAi, "gpt-5"),
    ] {
        let r = ChatRequest {
            model: model.into(),
            ..req.clone()
        };
        let (v, _) = encoded_for(kind, r);
        assert_eq!(v["parallel_tool_calls"], false, "{model}");
    }
    // Without tools, OpenAI refuses it: unsaid (and nothing is lost).
    let no_tools = ChatRequest {
        tools: vec![],
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Text("hi".into())],
        }],
        ..req
    };
    let (v, r) = encoded_for(ProviderKind::OpenAi, no_tools);
    assert!(v.get("parallel_tool_calls").is_none(), "{v}");
    assert!(r.dropped.is_empty());
}

/// OpenAI's JSON mode needs the word "json" in the messages; a Gemini app's
/// `responseMimeType` alone never says it, so the gateway does.
#[test]
fn json_mode_without_the_word_is_told_to_answer_in_json() {
    let gemini_app = |text: &str| {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"responseMimeType": "application/json"},
        });
        crate::translate::gemini::decode_request(body.to_string().as_bytes(), "gpt-4o", false)
            .unwrap()
    };
    let (v, _) = encoded_for(ProviderKind::OpenAi, gemini_app("List three colours."));
    assert_eq!(v["response_format"], json!({"type": "json_object"}));
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "Answer in JSON."})
    );
    assert_eq!(v["messages"][1]["role"], "user");
    // Said already: nothing added.
    let (v, _) = encoded_for(ProviderKind::OpenAi, gemini_app("List colours as Json."));
    assert_eq!(v["messages"][0]["role"], "user");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(1));
}
