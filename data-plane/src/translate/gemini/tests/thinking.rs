//! How long the model thinks: Anthropic's budget and OpenAI's efforts as
//! Gemini's `thinkingBudget`, and Gemini's budget as Anthropic's `thinking`.

use super::*;
use crate::translate::{Format, responses};

/// The body a codec sends upstream, and what it left out.
fn sent(fmt: Format, mut req: ChatRequest) -> (Value, Vec<(String, bool)>) {
    let body = crate::translate::encode_request(fmt, &mut req).unwrap();
    let dropped = req
        .dropped
        .iter()
        .map(|d| (d.field.clone(), d.always))
        .collect();
    (serde_json::from_slice(&body).unwrap(), dropped)
}

fn claude_code(model: &str, thinking: Value) -> ChatRequest {
    let body = json!({
        "model": model, "max_tokens": 32000, "thinking": thinking,
        "messages": [{"role": "user", "content": "hi"}],
    });
    anthropic::decode_request(body.to_string().as_bytes()).unwrap()
}

fn openai_app(model: &str, effort: &str) -> ChatRequest {
    let body = json!({
        "model": model, "reasoning_effort": effort,
        "messages": [{"role": "user", "content": "hi"}],
    });
    openai_chat::decode_request(body.to_string().as_bytes()).unwrap()
}

#[test]
fn anthropic_budgets_become_gemini_budgets() {
    let req = claude_code(
        "gemini-2.5-pro",
        json!({"type": "enabled", "budget_tokens": 10000}),
    );
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
    let (v, dropped) = sent(Format::Gemini, req);
    assert_eq!(
        v["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 10000})
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    // Past the model's most: its most (Claude Code's "ultrathink" asks 31,999).
    let req = claude_code(
        "gemini-2.5-flash",
        json!({"type": "enabled", "budget_tokens": 31999}),
    );
    let (v, _) = sent(Format::Gemini, req);
    assert_eq!(
        v["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        24576
    );
    // A model that does not think is not told to: a hint, named as the app
    // named it (as for OpenAI, which takes no budget).
    for (fmt, model) in [
        (Format::Gemini, "gemini-2.0-flash"),
        (Format::OpenAiChat, "gpt-4o"),
    ] {
        let req = claude_code(model, json!({"type": "enabled", "budget_tokens": 2048}));
        let (v, dropped) = sent(fmt, req);
        assert!(
            v.get("generationConfig")
                .is_none_or(|g| g.get("thinkingConfig").is_none()),
            "{v}"
        );
        assert_eq!(dropped, [("thinking".to_string(), false)], "{model}");
    }
    // Adaptive thinking has no budget: a hint, as ever.
    let req = claude_code("gemini-2.5-pro", json!({"type": "adaptive"}));
    assert_eq!(
        req.dropped
            .iter()
            .map(|d| d.field.as_str())
            .collect::<Vec<_>>(),
        ["thinking"]
    );
}

#[test]
fn openai_efforts_become_gemini_budgets() {
    for (effort, flash, pro) in [
        ("minimal", 0, 128),
        ("none", 0, 128),
        ("low", 1024, 1024),
        ("medium", 8192, 8192),
        ("high", 24576, 24576),
    ] {
        for (model, budget) in [
            ("gemini-2.5-flash", flash),
            ("gemini-2.5-flash-lite", flash),
            ("gemini-2.5-pro", pro),
        ] {
            let (v, dropped) = sent(Format::Gemini, openai_app(model, effort));
            assert_eq!(
                v["generationConfig"]["thinkingConfig"]["thinkingBudget"], budget,
                "{effort} {model}"
            );
            assert!(dropped.is_empty(), "{dropped:?}");
        }
    }
    // Models not known to take 0: the least a thinking model takes.
    for model in ["gemini-flash-latest", "gemini-3-pro-preview"] {
        let (v, _) = sent(Format::Gemini, openai_app(model, "minimal"));
        assert_eq!(
            v["generationConfig"]["thinkingConfig"]["thinkingBudget"], 128,
            "{model}"
        );
    }
    // An effort not known is a hint, as ever.
    let req = openai_app("gemini-2.5-pro", "extreme");
    assert!(req.thinking.is_none());
    assert_eq!(
        req.dropped.strict_refusal().map(|d| d.field.as_str()),
        Some("reasoning_effort")
    );
    // To Anthropic, which takes budgets only: a hint, as ever.
    let (v, dropped) = sent(Format::Anthropic, openai_app("claude-sonnet-4-5", "high"));
    assert!(v.get("thinking").is_none(), "{v}");
    assert_eq!(dropped, [("reasoning_effort".to_string(), false)]);

    // Codex's `reasoning`: the effort is kept, the summary it asks for is
    // not (no translated answer carries one).
    let codex = json!({"model": "gemini-2.5-pro", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}});
    let req = responses::decode_request(codex.to_string().as_bytes()).unwrap();
    let (v, dropped) = sent(Format::Gemini, req);
    assert_eq!(
        v["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        1024
    );
    assert_eq!(dropped, [("reasoning".to_string(), false)]);
    let effort_only =
        json!({"model": "gemini-2.5-pro", "input": "hi", "reasoning": {"effort": "high"}});
    let req = responses::decode_request(effort_only.to_string().as_bytes()).unwrap();
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
}

/// Gemini CLI's request: a budget, thought summaries, and the sampling
/// settings it always sends.
fn gemini_cli(thinking: Value, contents: Value) -> ChatRequest {
    let body = json!({
        "contents": contents,
        "generationConfig": {"temperature": 0, "topP": 1, "topK": 64, "thinkingConfig": thinking},
    });
    decode_request(body.to_string().as_bytes(), "claude-sonnet-4-5", false).unwrap()
}

fn hi() -> Value {
    json!([{"role": "user", "parts": [{"text": "hi"}]}])
}

#[test]
fn gemini_budgets_become_anthropic_thinking() {
    let req = gemini_cli(
        json!({"thinkingBudget": 8192, "includeThoughts": false}),
        hi(),
    );
    assert!(req.dropped.is_empty(), "{:?}", req.dropped);
    let (v, dropped) = sent(Format::Anthropic, req);
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    // Anthropic refuses these beside thinking: left out, as hints.
    assert!(
        v.get("temperature").is_none() && v.get("top_k").is_none(),
        "{v}"
    );
    assert_eq!(v["top_p"], 1.0);
    let names: Vec<&str> = dropped.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(names, ["temperature", "top_k"]);

    // Thought summaries are still a hint, as ever.
    let req = gemini_cli(
        json!({"thinkingBudget": 8192, "includeThoughts": true}),
        hi(),
    );
    let (v, dropped) = sent(Format::Anthropic, req);
    assert_eq!(v["thinking"]["budget_tokens"], 8192);
    assert_eq!(
        dropped[0],
        ("generationConfig.thinkingConfig".to_string(), false)
    );

    // What Anthropic would refuse is left out, named; the sampling stays.
    let small = gemini_cli(json!({"thinkingBudget": 512}), hi());
    let mut capped = gemini_cli(json!({"thinkingBudget": 4096}), hi());
    capped.max_tokens = Some(4096);
    let dynamic = gemini_cli(json!({"thinkingBudget": -1}), hi());
    let loop_turn = gemini_cli(
        json!({"thinkingBudget": 4096}),
        json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "ok"}}}]}
        ]),
    );
    let prefill = gemini_cli(
        json!({"thinkingBudget": 4096}),
        json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "Sure, "}]}
        ]),
    );
    // Claude 3.5 and older: "does not support thinking".
    let mut old = gemini_cli(json!({"thinkingBudget": 4096}), hi());
    old.model = "claude-3-5-haiku-20241022".into();
    for req in [small, capped, dynamic, loop_turn, prefill, old] {
        let (v, dropped) = sent(Format::Anthropic, req);
        assert!(v.get("thinking").is_none(), "{v}");
        assert_eq!(v["temperature"], 0.0);
        assert_eq!(
            dropped,
            [("generationConfig.thinkingConfig".to_string(), false)]
        );
    }
    // A budget of 0 is Anthropic's default: nothing said, nothing lost.
    let (v, dropped) = sent(
        Format::Anthropic,
        gemini_cli(json!({"thinkingBudget": 0}), hi()),
    );
    assert!(
        v.get("thinking").is_none() && dropped.is_empty(),
        "{v} {dropped:?}"
    );
}
