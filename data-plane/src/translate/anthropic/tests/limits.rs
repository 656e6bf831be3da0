//! What Anthropic accepts of sampling and output caps, where the other
//! formats allow more (or leave the cap out).

use super::*;
use crate::translate::Format;

/// A Gemini CLI request (it always sends `temperature` and `topP`), as IR.
fn gemini_cli(generation: Value) -> ChatRequest {
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": generation,
    });
    gemini::decode_request(body.to_string().as_bytes(), "claude-sonnet-4-5", false).unwrap()
}

/// Newer Claude models answer 400 to `temperature` with `top_p`: only
/// `temperature` goes, `top_p` is a dropped hint (so a strict route refuses
/// the request rather than sampling differently than asked).
#[test]
fn temperature_and_top_p_together_send_only_temperature() {
    let mut req = gemini_cli(json!({"temperature": 0.4, "topP": 0.95}));
    // The codec's own path, as the plan calls it.
    let body = crate::translate::encode_request(Format::Anthropic, &mut req).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["temperature"], 0.4);
    assert!(body.get("top_p").is_none(), "{body}");
    assert_eq!(dropped(&req.dropped), [("top_p", false)]);
    assert_eq!(
        req.dropped.strict_refusal().map(|d| d.field.as_str()),
        Some("top_p")
    );

    // `top_p: 1` is no setting at all: left out unnamed, strict or not.
    let mut req = gemini_cli(json!({"temperature": 0.0, "topP": 1.0}));
    let body = encode_request(&mut req).unwrap();
    assert!(body.get("top_p").is_none(), "{body}");
    assert!(req.dropped.is_empty());

    // Either alone is sent as is, and nothing is dropped.
    for (generation, key, other) in [
        (json!({"temperature": 0.4}), "temperature", "top_p"),
        (json!({"topP": 0.9}), "top_p", "temperature"),
    ] {
        let mut req = gemini_cli(generation);
        let body = encode_request(&mut req).unwrap();
        assert!(
            body.get(key).is_some() && body.get(other).is_none(),
            "{body}"
        );
        assert!(req.dropped.is_empty());
    }
}

/// OpenAI and Gemini allow temperatures up to 2; Anthropic refuses above 1.
#[test]
fn temperature_is_clamped_to_anthropics_range() {
    for (t, sent) in [
        (1.7, 1.0),
        (2.0, 1.0),
        (1.0, 1.0),
        (0.3, 0.3),
        (0.0, 0.0),
        (-0.5, 0.0),
    ] {
        let mut req = ChatRequest {
            model: "claude-sonnet-4-5".into(),
            temperature: Some(t),
            ..Default::default()
        };
        let body = encode_request(&mut req).unwrap();
        assert_eq!(body["temperature"], sent, "{t}");
        assert!(req.dropped.is_empty(), "a clamp drops nothing");
    }
    let oa = json!({"model": "m", "temperature": 1.5, "top_p": 0.5,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut req = openai_chat::decode_request(oa.to_string().as_bytes()).unwrap();
    let body = encode_request(&mut req).unwrap();
    assert_eq!(
        (body["temperature"].as_f64(), body.get("top_p")),
        (Some(1.0), None)
    );
}

#[test]
fn output_limits_by_family() {
    for (model, max) in [
        ("claude-opus-4-6", 128_000),
        ("claude-sonnet-4-6", 128_000),
        // A newer member of a family: the family's limit, as a default.
        ("claude-opus-4-7", 32_000),
        ("claude-opus-4-1-20250805", 32_000),
        ("claude-opus-4-20250514", 32_000),
        ("claude-opus-4-0", 32_000),
        ("claude-opus-4-5-20251101", 64_000),
        ("claude-sonnet-4-5-20250929", 64_000),
        ("claude-sonnet-4-20250514", 64_000),
        ("claude-haiku-4-5-20251001", 64_000),
        ("claude-3-7-sonnet-latest", 64_000),
        ("claude-3-5-sonnet-20241022", 8_192),
        ("claude-3-5-haiku-20241022", 8_192),
        ("claude-3-haiku-20240307", 4_096),
        ("claude-3-opus-20240229", 4_096),
        // Platforms' spellings of a model.
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", 64_000),
        ("claude-opus-4-1@20250805", 32_000),
        ("my-model", DEFAULT_MAX_TOKENS),
        ("claude", DEFAULT_MAX_TOKENS),
    ] {
        assert_eq!(max_output_tokens(model), max, "{model}");
    }
}

/// Codex CLI and Gemini CLI send no cap: their answers may be as long as
/// the model allows, as from OpenAI or Gemini, not cut at 4096.
#[test]
fn no_cap_sends_the_models_limit_within_the_context_window() {
    let with_prompt = |model: &str, text: String, cap: Option<u64>| {
        let mut req = ChatRequest {
            model: model.into(),
            max_tokens: cap,
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Text(text)],
            }],
            ..Default::default()
        };
        encode_request(&mut req).unwrap()["max_tokens"].as_u64()
    };
    let short = || "hi".to_string();
    assert_eq!(
        with_prompt("claude-sonnet-4-5-20250929", short(), None),
        Some(64_000)
    );
    assert_eq!(with_prompt("claude-opus-4-1", short(), None), Some(32_000));
    assert_eq!(
        with_prompt("claude-3-5-haiku-latest", short(), None),
        Some(8_192)
    );
    assert_eq!(
        with_prompt("other", short(), None),
        Some(DEFAULT_MAX_TOKENS)
    );
    // The app's cap is the app's.
    assert_eq!(
        with_prompt("claude-sonnet-4-5", short(), Some(100)),
        Some(100)
    );
    // A prompt that may fill most of the window leaves less room (older
    // models refuse prompt + max_tokens beyond it), never below 4096.
    let long = "x".repeat(150_000);
    let sent = with_prompt("claude-sonnet-4-20250514", long, None).unwrap();
    assert!(sent < 64_000 && sent > DEFAULT_MAX_TOKENS, "{sent}");
    assert!(150_000 + sent <= 200_000);
    let huge = "x".repeat(400_000);
    assert_eq!(
        with_prompt("claude-sonnet-4-20250514", huge, None),
        Some(DEFAULT_MAX_TOKENS)
    );
    // An image counts as its most tokens, not its bytes.
    let mut req = ChatRequest {
        model: "claude-sonnet-4-5".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Image(Image::Base64 {
                media_type: "image/png".into(),
                data: "A".repeat(1_000_000),
            })],
        }],
        ..Default::default()
    };
    assert_eq!(default_max_tokens(&req), 64_000);
    req.messages[0]
        .content
        .push(Part::Text("y".repeat(197_000)));
    assert_eq!(default_max_tokens(&req), DEFAULT_MAX_TOKENS);
}

/// The family table gives the default cap, never a bound on the app's own:
/// only a model known exactly (its id, with a date, `-latest` or a
/// platform's version) has its cap lowered to its limit.
#[test]
fn output_limits_of_exact_models() {
    for (model, max) in [
        ("claude-opus-4-20250514", Some(32_000)),
        ("claude-opus-4", Some(32_000)),
        ("claude-opus-4-0", Some(32_000)),
        ("claude-opus-4-1", Some(32_000)),
        ("claude-opus-4-1@20250805", Some(32_000)),
        ("claude-opus-4-5", Some(64_000)),
        ("claude-opus-4-5-20251101", Some(64_000)),
        ("claude-opus-4-6", Some(128_000)),
        ("claude-sonnet-4-6", Some(128_000)),
        ("claude-sonnet-4-20250514", Some(64_000)),
        ("claude-haiku-4-5-20251001", Some(64_000)),
        ("claude-3-7-sonnet-latest", Some(64_000)),
        ("claude-3-5-haiku-20241022", Some(8_192)),
        ("claude-3-haiku-20240307", Some(4_096)),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", Some(64_000)),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", Some(8_192)),
        ("claude-3-5-sonnet-v2@20241022", Some(8_192)),
        ("Claude-Opus-4-20250514", Some(32_000)),
        // Family members not listed: not known.
        ("claude-opus-4-7", None),
        ("claude-opus-4-7-20260101", None),
        ("claude-sonnet-4-7", None),
        ("claude-haiku-4-6", None),
        ("claude-opus-4-20250514-fast", None),
        ("claude-opus-4-x", None),
        ("deepseek-chat", None),
        ("claude", None),
    ] {
        assert_eq!(known_max_output_tokens(model), max, "{model}");
    }
}

/// An app's cap of 64,000 reaches a model known only by its family as it
/// is (Opus 4's 32,000 would cut a newer Opus's answers short unsaid);
/// Opus 4 itself gets its 32,000, and with no cap the family's default.
#[test]
fn an_explicit_cap_is_lowered_only_for_a_model_known_exactly() {
    let cap = |model: &str, max_tokens: Option<u64>| {
        let mut req = ChatRequest {
            model: model.into(),
            max_tokens,
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Text("hi".into())],
            }],
            ..Default::default()
        };
        encode_request(&mut req).unwrap()["max_tokens"].as_u64()
    };
    assert_eq!(cap("claude-opus-4-20250514", Some(64_000)), Some(32_000));
    assert_eq!(cap("claude-opus-4-5", Some(64_000)), Some(64_000));
    assert_eq!(cap("claude-opus-4-6", Some(64_000)), Some(64_000));
    assert_eq!(cap("claude-opus-4-7", Some(64_000)), Some(64_000));
    assert_eq!(cap("claude-opus-4-7", Some(200_000)), Some(200_000));
    assert_eq!(cap("claude-sonnet-4-7", Some(100_000)), Some(100_000));
    assert_eq!(cap("claude-opus-4-5", Some(100_000)), Some(64_000));
    // No cap: the family's limit still.
    assert_eq!(cap("claude-opus-4-7", None), Some(32_000));
    assert_eq!(cap("claude-sonnet-4-7", None), Some(64_000));
}

/// Anthropic answers 400 "each stop sequence must contain non-whitespace"
/// (https://github.com/BerriAI/litellm/issues/3286) to `stop: ["\n"]`,
/// which OpenAI takes for one-line answers: it is left out and named (a
/// strict route refuses), and the other sequences still go.
#[test]
fn whitespace_only_stop_sequences_are_left_out_and_named() {
    let body = br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Name a colour."}],"stop":["\n"," \t","END"]}"#;
    let mut req = crate::translate::decode_request(Format::OpenAiChat, body, None, false).unwrap();
    let out = encode_request(&mut req).unwrap();
    assert_eq!(out["stop_sequences"], json!(["END"]), "{out}");
    assert_eq!(dropped(&req.dropped), [("stop", false)]);
    // Only whitespace: no `stop_sequences` at all.
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"stopSequences":["\n"]}}"#;
    let mut req = gemini::decode_request(body, "claude-sonnet-4-5", false).unwrap();
    let out = encode_request(&mut req).unwrap();
    assert!(out.get("stop_sequences").is_none(), "{out}");
    assert_eq!(dropped(&req.dropped), [("generationConfig.stopSequences", false)]);
}

