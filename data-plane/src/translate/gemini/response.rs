//! Gemini answers (whole, or one streamed chunk) ⇄ IR answers.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contents::{ContentOut, PartOut};
use super::request::CallIn;
use super::{UsageOut, WireUsage, finish_str, response_id, stop_from};
use crate::translate::ids;
use crate::translate::ir::{ChatResponse, Part, StopReason, Unsupported};
use crate::translate::wire::{self, Body, Object};

/// A `GenerateContentResponse`: a whole answer, or one chunk of a stream.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnswerIn {
    pub error: Option<Value>,
    pub response_id: Option<String>,
    pub model_version: Option<String>,
    candidates: Option<Vec<CandidateIn>>,
    prompt_feedback: Option<FeedbackIn>,
    #[serde(default)]
    pub usage_metadata: Object<WireUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateIn {
    content: Option<CandidateContentIn>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContentIn {
    parts: Option<Vec<AnswerPartIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnswerPartIn {
    text: Option<String>,
    thought: Option<Value>,
    pub function_call: Option<CallIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackIn {
    block_reason: Option<Value>,
}

impl AnswerPartIn {
    /// The answer's text in a part: not a thought summary, not empty.
    pub fn answer_text(&mut self) -> Option<String> {
        if self.thought.as_ref().and_then(Value::as_bool) == Some(true) {
            return None;
        }
        self.text.take().filter(|t| !t.is_empty())
    }
}

impl AnswerIn {
    /// The first candidate's parts, taken out.
    pub fn take_parts(&mut self) -> Vec<AnswerPartIn> {
        self.candidates
            .as_mut()
            .and_then(|c| c.first_mut())
            .and_then(|c| c.content.as_mut())
            .and_then(|c| c.parts.take())
            .unwrap_or_default()
    }

    /// The finish reason of a turn Gemini ended because it could not make
    /// the function call it began (a malformed call, a call to no declared
    /// tool, too many calls): no answer, and Gemini CLI sends such turns
    /// again. Other apps are told it failed, so their clients retry too,
    /// rather than an empty turn that looks finished.
    pub fn failed_call(&self) -> Option<&str> {
        self.candidates
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.finish_reason.as_deref())
            .filter(|r| {
                matches!(
                    *r,
                    "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS"
                )
            })
    }

    /// The candidate's finish reason, or a prompt blocked before any candidate.
    pub fn stop(&self, called: bool) -> Option<StopReason> {
        let finish = self
            .candidates
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.finish_reason.as_deref());
        if let Some(r) = finish {
            return Some(stop_from(r, called));
        }
        let blocked = self
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.as_ref().is_some_and(|b| !b.is_null()));
        blocked.then_some(StopReason::ContentFilter)
    }
}

/// What the ids the gateway makes for one answer's calls begin with:
/// `call_<responseId>`, or, for an answer without a `responseId`, a fresh
/// id (`ids::fresh`) in its place. Apps keep the ids in their history, where
/// each must be unique: a fixed `call_<n>` made every turn's first call
/// `call_0`, and Claude Code dropped the second turn's as a duplicate,
/// asking again and again.
pub(super) fn call_prefix(response_id: &str) -> String {
    let rid: String = response_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if rid.is_empty() {
        format!("call_{}", ids::fresh())
    } else {
        format!("call_{rid}")
    }
}

/// (id, name, arguments) of an answer's `n`th call, its id made from the
/// answer's [`call_prefix`] when Gemini gave none; see the module doc for ids.
pub(super) fn call_of(fc: CallIn, prefix: &str, n: u32) -> (String, String, String) {
    let id = match fc.id {
        Some(id) if !id.is_empty() => id,
        _ => format!("{prefix}_{n}"),
    };
    (
        id,
        fc.name.unwrap_or_default(),
        wire::arguments_text(fc.args.as_ref()),
    )
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let mut v: AnswerIn = wire::parse(body, "response")?;
    if let Some(e) = &v.error {
        return Err(Unsupported::invalid(
            "response",
            wire::error_message(Some(e), "upstream error"),
        ));
    }
    let has_answer = v.candidates.is_some() || v.prompt_feedback.is_some();
    if let Some(e) = wire::not_an_answer(None, has_answer, "candidates") {
        return Err(e);
    }
    if let Some(r) = v.failed_call() {
        return Err(Unsupported::invalid("response", failed_call_message(r)));
    }
    let response_id = v.response_id.take().unwrap_or_default();
    let prefix = call_prefix(&response_id);
    let mut content = Vec::new();
    let mut calls = 0;
    for mut p in v.take_parts() {
        if let Some(t) = p.answer_text() {
            content.push(Part::Text(t));
        } else if let Some(fc) = p.function_call {
            let (id, name, arguments) = call_of(fc, &prefix, calls);
            calls = calls.saturating_add(1);
            content.push(Part::ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    Ok(ChatResponse {
        stop: v.stop(calls > 0),
        id: response_id,
        model: v.model_version.unwrap_or_default(),
        content,
        usage: v.usage_metadata.0.map(Into::into).unwrap_or_default(),
    })
}

/// A chunk or whole answer, as the gateway writes it.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnswerOut<'a> {
    pub candidates: [CandidateOut<'a>; 1],
    pub usage_metadata: Option<UsageOut>,
    pub model_version: &'a str,
    pub response_id: Cow<'a, str>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CandidateOut<'a> {
    pub content: ContentOut<'a>,
    pub finish_reason: Option<&'static str>,
    pub index: u32,
}

impl<'a> CandidateOut<'a> {
    pub fn new(parts: Vec<PartOut<'a>>, finish: Option<StopReason>) -> Self {
        Self {
            content: ContentOut {
                parts,
                role: "model",
            },
            finish_reason: finish.map(finish_str),
            index: 0,
        }
    }
}

/// IR → the body the app receives. A refusal is a text part: Gemini has no
/// refusal part, and says a refusal with its `SAFETY` finish reason (the
/// stop a refusal's answer has).
pub(super) fn answer_body(resp: &ChatResponse) -> AnswerOut<'_> {
    let parts = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) | Part::Refusal(t) if !t.is_empty() => Some(PartOut::text(t)),
            Part::ToolCall { arguments, .. } if wire::cut_by_cap(resp.stop, arguments) => None,
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(PartOut::call(id, name, wire::arguments_or_empty(arguments))),
            _ => None,
        })
        .collect();
    AnswerOut {
        candidates: [CandidateOut::new(
            parts,
            Some(resp.stop.unwrap_or(StopReason::EndTurn)),
        )],
        usage_metadata: Some(UsageOut::from(&resp.usage)),
        model_version: &resp.model,
        response_id: Cow::Owned(response_id(&resp.id)),
    }
}

/// IR → a Gemini answer (as JSON, for tests and tools).
pub fn encode_response(resp: &ChatResponse) -> Value {
    answer_body(resp).to_json()
}

/// What an app is told of a turn [`AnswerIn::failed_call`] ended.
pub(super) fn failed_call_message(reason: &str) -> String {
    format!(
        "Gemini could not complete the function call it began ({reason}); send the request again"
    )
}
