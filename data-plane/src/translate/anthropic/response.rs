//! Anthropic answers ⇄ IR answers.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encode::BlockOut;
use super::{UsageOut, WireUsage, msg_id, stop_from, stop_str, tool_id};
use crate::translate::ir::{ChatResponse, Part, StopReason, Unsupported};
use crate::translate::wire::{self, Body, Object};

#[derive(Deserialize)]
struct MessageIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    content: Option<Vec<BlockIn>>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Object<WireUsage>,
}

/// A content block of an answer (`content_block` of a stream's
/// `content_block_start` too).
#[derive(Deserialize)]
pub(super) struct BlockIn {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub text: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub input: Option<Value>,
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: MessageIn = wire::parse(body, "response")?;
    if v.ty.as_deref() == Some("error") {
        return Err(Unsupported::invalid(
            "response",
            wire::error_message(v.error.as_ref(), "upstream error"),
        ));
    }
    if let Some(e) = wire::not_an_answer(v.error.as_ref(), v.content.is_some(), "content") {
        return Err(e);
    }
    let mut content = Vec::new();
    for b in v.content.into_iter().flatten() {
        match b.ty.as_deref() {
            Some("text") => {
                if let Some(t) = b.text.filter(|t| !t.is_empty()) {
                    content.push(Part::Text(t));
                }
            }
            Some("tool_use") => content.push(Part::ToolCall {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                arguments: wire::arguments_text(b.input.as_ref()),
            }),
            // thinking / redacted_thinking and server-tool blocks: the IR has
            // no place for them (and requests that ask for them are refused).
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: v.id.unwrap_or_default(),
        model: v.model.unwrap_or_default(),
        content,
        stop: v.stop_reason.as_deref().map(stop_from),
        usage: v.usage.0.map(Into::into).unwrap_or_default(),
    })
}

/// A message: a whole answer, or the one `message_start` opens a stream with.
#[derive(Serialize)]
pub(super) struct MessageOut<'a> {
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<BlockOut<'a>>,
    pub stop_reason: Option<&'static str>,
    /// The IR does not keep which stop sequence matched.
    pub stop_sequence: Option<()>,
    pub usage: UsageOut,
}

/// IR → the body the app receives. A refusal is a text block: Anthropic
/// has no refusal block, and says a refusal with its `refusal` stop reason
/// (the stop a refusal's answer has).
pub(super) fn answer_body(resp: &ChatResponse) -> MessageOut<'_> {
    let content = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) | Part::Refusal(t) if !t.is_empty() => Some(BlockOut::Text {
                text: t,
                cache_control: None,
            }),
            Part::ToolCall { arguments, .. } if wire::cut_by_cap(resp.stop, arguments) => None,
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(BlockOut::ToolUse {
                id: tool_id(id),
                name,
                input: wire::arguments_or_empty(arguments),
            }),
            _ => None,
        })
        .collect();
    MessageOut {
        id: Cow::Owned(msg_id(&resp.id)),
        ty: "message",
        role: "assistant",
        model: &resp.model,
        content,
        stop_reason: Some(stop_str(resp.stop.unwrap_or(StopReason::EndTurn))),
        stop_sequence: None,
        usage: UsageOut::from(&resp.usage),
    }
}

/// IR → an Anthropic message (as JSON, for tests and tools).
pub fn encode_response(resp: &ChatResponse) -> Value {
    answer_body(resp).to_json()
}
