//! Sampling and thinking settings fitted to what Anthropic takes, where
//! the other formats allow more.

use serde::Serialize;

use crate::translate::ir::{ChatRequest, Part, Role, ThinkingAmount, ToolChoice};

/// `thinking: {type: enabled, budget_tokens}`.
#[derive(Serialize)]
pub(super) struct ThinkingOut {
    #[serde(rename = "type")]
    ty: &'static str,
    budget_tokens: u64,
}

/// Fits the IR's sampling to what Anthropic accepts, where OpenAI's and
/// Gemini's rules are wider:
/// - Sonnet 4.5, Haiku 4.5, Opus 4.1 and later answer 400 "`temperature`
///   and `top_p` cannot both be specified for this model" to a request with
///   both, which Gemini CLI always sends (and OpenAI SDK callers may). Only
///   `temperature` is sent, the knob every format has and the one Anthropic
///   says to adjust; `top_p` is dropped as a hint (refused on strict routes,
///   as other sampling hints are). Older models get the same request: one
///   of the two is what Anthropic recommends for them too.
/// - `temperature` is 0..1 at Anthropic, 0..2 in OpenAI and Gemini, and
///   out of range is a 400. Both scales start at deterministic (0) and
///   Anthropic's 1 is its most varied sampling, so a value above 1 is sent
///   as 1 (the nearest it can do) rather than refused; the value is not
///   rescaled, as 0.7 means much the same to every provider's apps.
pub(super) fn fit_sampling(req: &mut ChatRequest) {
    // `top_p: 1` samples from everything, as leaving it out does: unsaid.
    if req.temperature.is_some() && req.top_p.take().is_some_and(|p| p != 1.0) {
        req.dropped.hint("top_p");
    }
    if let Some(t) = req.temperature.as_mut() {
        *t = t.clamp(0.0, 1.0);
    }
    // Anthropic answers 400 to a stop sequence of whitespace only ("each
    // stop sequence must contain non-whitespace"), which OpenAI and Gemini
    // take (`stop: ["\n"]` for one-line answers): left out and named, so
    // a strict route refuses rather than answering past the line.
    let before = req.stop.len();
    req.stop.retain(|s| !s.trim().is_empty());
    if req.stop.len() != before {
        let field = req.stop_field();
        req.dropped.hint(field);
    }
}

/// Least `budget_tokens` Anthropic takes.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The app's thinking budget (Gemini's `thinkingBudget`) as Anthropic's
/// `thinking`, where Anthropic takes it for this request; else it is left
/// out, named as a hint (a budget of 0 is Anthropic's default, and says
/// nothing). Anthropic refuses (400):
/// - a budget under [`MIN_THINKING_BUDGET`], or not under `max_tokens`;
/// - thinking with a `tool_choice` that forces a call;
/// - thinking whose last assistant turn, continued by tool results, does
///   not open with its thinking block, which a translated history never
///   has (no other provider returns Anthropic's signed blocks);
/// - thinking for a model without it (Claude 3.5 and older: "does not
///   support thinking"), or after an assistant prefill;
/// - `temperature` other than 1, `top_k`, or `top_p` under 0.95 beside
///   thinking. These sampling settings (Gemini CLI sends them with every
///   request) are then left out, as hints, so the model thinks as the app
///   asked.
pub(super) fn fit_thinking(req: &mut ChatRequest, max_tokens: u64) -> Option<ThinkingOut> {
    let t = req.thinking.take()?;
    let budget = match t.amount {
        ThinkingAmount::Budget(0) => return None,
        ThinkingAmount::Budget(b) => Some(b),
        ThinkingAmount::Effort(_) => None,
    };
    let forced = matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    );
    let continued = req.messages.last().is_some_and(|m| {
        m.role == Role::Assistant
            || m.content
                .iter()
                .any(|p| matches!(p, Part::ToolResult { .. }))
    });
    let Some(budget) = budget.filter(|b| {
        (MIN_THINKING_BUDGET..max_tokens).contains(b) && !forced && !continued && thinks(&req.model)
    }) else {
        req.dropped.hint(t.field);
        return None;
    };
    if req.temperature.take_if(|t| *t != 1.0).is_some() {
        req.dropped.hint("temperature");
    }
    if req.top_k.take().is_some() {
        req.dropped.hint("top_k");
    }
    if req.top_p.take_if(|p| *p < 0.95).is_some() {
        req.dropped.hint("top_p");
    }
    Some(ThinkingOut {
        ty: "enabled",
        budget_tokens: budget,
    })
}

/// Whether Anthropic's `model` takes `thinking`: Claude 3.7 Sonnet and
/// every model since; not Claude 3.5, 3 or 2 (a name it does not know is
/// taken to be newer).
fn thinks(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    // Past platform decorations (`us.anthropic.…`, `publishers/…/models/…`).
    let m = m.find("claude-").map_or(m.as_str(), |at| &m[at..]);
    let older = ["claude-3-", "claude-2", "claude-instant"]
        .iter()
        .any(|p| m.starts_with(p));
    !older || m.starts_with("claude-3-7")
}

#[cfg(test)]
mod tests {
    use super::thinks;

    #[test]
    fn which_models_think() {
        for (model, yes) in [
            ("claude-sonnet-4-5", true),
            ("claude-3-7-sonnet-latest", true),
            ("us.anthropic.claude-opus-4-1-20250805-v1:0", true),
            ("claude-3-5-haiku-20241022", false),
            ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", false),
            ("publishers/anthropic/models/claude-3-haiku@20240307", false),
            ("claude-2.1", false),
        ] {
            assert_eq!(thinks(model), yes, "{model}");
        }
    }
}
