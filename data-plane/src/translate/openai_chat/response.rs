//! Chat completions answers ⇄ IR answers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encode::ToolCallOut;
use super::request::{ToolCallIn, tool_call};
use super::{UsageOut, WireUsage, chat_id, stop_beside, stop_from, stop_str};
use crate::translate::ids;
use crate::translate::ir::{ChatResponse, Part, StopReason, Unsupported};
use crate::translate::wire::{self, Body, Lenient};

#[derive(Deserialize)]
struct CompletionIn {
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    usage: Lenient<WireUsage>,
}

#[derive(Deserialize)]
struct ChoiceIn {
    message: Option<AnswerIn>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerIn {
    #[serde(default)]
    content: Lenient<String>,
    /// What the model refused with (structured outputs, safety): a refusal
    /// part of the answer, which stops as a content filter's.
    #[serde(default)]
    refusal: Lenient<String>,
    tool_calls: Option<Vec<ToolCallIn>>,
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: CompletionIn = wire::parse(body, "response")?;
    let has_choices = v.choices.as_ref().is_some_and(|c| !c.is_empty());
    if let Some(e) = wire::not_an_answer(v.error.as_ref(), has_choices, "choices") {
        return Err(e);
    }
    let choice = v.choices.and_then(|c| c.into_iter().next());
    let (message, finish) = match choice {
        Some(c) => (c.message, c.finish_reason),
        None => (None, None),
    };
    let mut content = Vec::new();
    let mut refused = false;
    if let Some(m) = message {
        if let Some(t) = m.content.0.filter(|t| !t.is_empty()) {
            content.push(Part::Text(t));
        }
        if let Some(r) = m.refusal.0.filter(|r| !r.is_empty()) {
            refused = true;
            content.push(Part::Refusal(r));
        }
        content.extend(m.tool_calls.into_iter().flatten().map(tool_call));
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let stop = finish.as_deref().map(|r| stop_from(r, called));
    Ok(ChatResponse {
        id: v.id.unwrap_or_default(),
        model: v.model.unwrap_or_default(),
        content,
        stop: if refused {
            StopReason::refused(stop)
        } else {
            stop
        },
        usage: v.usage.0.map(Into::into).unwrap_or_default(),
    })
}

#[derive(Serialize)]
pub(super) struct CompletionOut<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: AnswerOut<'a>,
    logprobs: Option<Value>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AnswerOut<'a> {
    role: &'static str,
    /// `null` when the answer is only calls or a refusal.
    content: Option<String>,
    /// What the model refused with; `null` when it did not.
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

/// IR → the body the app receives.
pub(super) fn answer_body(resp: &ChatResponse) -> CompletionOut<'_> {
    let text: String = resp.content.iter().filter_map(Part::text).collect();
    let refusal: String = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Refusal(r) => Some(r.as_str()),
            _ => None,
        })
        .collect();
    let refused = !refusal.is_empty();
    let tool_calls: Vec<ToolCallOut<'_>> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(ToolCallOut::new(id, name, arguments)),
            _ => None,
        })
        .collect();
    CompletionOut {
        id: chat_id(&resp.id),
        object: "chat.completion",
        created: ids::now_secs(),
        model: &resp.model,
        choices: [ChoiceOut {
            index: 0,
            message: AnswerOut {
                role: "assistant",
                content: (!text.is_empty() || (tool_calls.is_empty() && !refused)).then_some(text),
                refusal: refused.then_some(refusal),
                tool_calls,
            },
            logprobs: None,
            finish_reason: stop_str(stop_beside(
                refused,
                resp.stop.unwrap_or(StopReason::EndTurn),
            )),
        }],
        usage: UsageOut::from(&resp.usage),
    }
}

/// IR → a chat completion (as JSON, for tests and tools).
pub fn encode_response(resp: &ChatResponse) -> Value {
    answer_body(resp).to_json()
}
