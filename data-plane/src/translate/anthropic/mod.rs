//! Anthropic Messages (`POST /v1/messages`) ⇄ IR. Same layout as the
//! reference codec `openai_chat`: request, response, stream decoder, stream
//! encoder.
//!
//! Choices a faithful translation forces, in one place:
//! - `max_tokens` is required by Anthropic: a request from a format that left
//!   it out is sent with [`DEFAULT_MAX_TOKENS`].
//! - Usage: the IR's `input` counts every prompt token, so it is
//!   `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`
//!   and `cached` is `cache_read_input_tokens`; encoding goes back the same
//!   way (`input_tokens = input - cached`). Cache *writes* are not told apart
//!   by the IR, so encoded usage reports `cache_creation_input_tokens: 0`.
//! - `ContentFilter` is Anthropic's `refusal` stop reason (its own safety stop).
//! - Tool ids must match `^[a-zA-Z0-9_-]+$` at Anthropic; ids from other
//!   vendors are mapped onto that alphabet (the same way on every turn, so
//!   calls and results still pair).
//! - Extended thinking (`thinking`, `output_config.effort`) cannot be carried
//!   by the IR: a request that enables it is served with the target's own
//!   default reasoning (the field is dropped as a hint: refused on strict
//!   routes); thinking blocks replayed in the history are dropped likewise,
//!   and thinking blocks in answers are dropped (their tokens stay in
//!   `output`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::ir::{ChatResponse, Part, StopReason, Unsupported};
use crate::usage::Usage;

mod request;
mod stream;
#[cfg(test)]
mod tests;

use super::field::{f64_of, str_field, str_of, u64_of};
pub use request::{decode_request, encode_request};
use request::{tool_id, tool_input};
pub use stream::{Decoder, Encoder};

const TARGET: &str = "Anthropic";

/// `max_tokens` sent to Anthropic (which requires it) when the app's request
/// had none. Generous enough for a chat answer, below every current model's
/// output limit.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Request fields that carry no content: dropped when translating, on
/// every route.
const ADVISORY: &[&str] = &["service_tier"];

/// Request fields that are hints or client bookkeeping: dropped when
/// translating on lenient routes, refused on strict ones. Context management
/// edits what Anthropic keeps of a long conversation server-side; the
/// gateway sends the whole conversation, so there is nothing to edit.
const HINTS: &[&str] = &["context_management"];

/// Keys of a content block or tool that carry no content: the prompt-cache
/// breakpoint, and streaming granularity of tool input.
const ADVISORY_IN_BLOCK: &[&str] = &["cache_control", "eager_input_streaming"];

// ------------------------------------------------------------------ response

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Unsupported::invalid("response", e))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(Unsupported::invalid("response", error_message(&v)));
    }
    let mut content = Vec::new();
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = b
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    content.push(Part::Text(t.to_string()));
                }
            }
            Some("tool_use") => content.push(Part::ToolCall {
                id: b
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name: b
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: b
                    .get("input")
                    .filter(|i| !i.is_null())
                    .map_or_else(|| "{}".to_string(), Value::to_string),
            }),
            // thinking / redacted_thinking and server-tool blocks: the IR has
            // no place for them (and requests that ask for them are refused).
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        content,
        stop: v.get("stop_reason").and_then(Value::as_str).map(stop_from),
        usage: v.get("usage").map(usage_from).unwrap_or_default(),
    })
}

fn error_message(v: &Value) -> String {
    v.get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_string()
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        // end_turn, pause_turn (a server tool paused a long turn).
        _ => StopReason::EndTurn,
    }
}

fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

/// Anthropic's counts, field by field. Streams report them cumulatively and
/// split (`message_start` has the input, `message_delta` the running output
/// and, in newer API versions, the input again), so they are merged by
/// keeping the highest value per field: never summed.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input: u64,
    cache_read: u64,
    cache_creation: u64,
    output: u64,
}

impl Counts {
    fn merge(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        self.input = self.input.max(n("input_tokens"));
        self.cache_read = self.cache_read.max(n("cache_read_input_tokens"));
        self.cache_creation = self.cache_creation.max(n("cache_creation_input_tokens"));
        self.output = self.output.max(n("output_tokens"));
    }

    fn total(&self) -> Usage {
        Usage {
            input: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            output: self.output,
            cached: self.cache_read,
            reasoning: 0,
        }
    }
}

/// Anthropic `usage` → IR usage (input includes cache reads and writes).
pub fn usage_from(u: &Value) -> Usage {
    let mut c = Counts::default();
    c.merge(u);
    c.total()
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
        "output_tokens": u.output,
    })
}

fn msg_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else if id.is_empty() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("msg_{nanos:x}")
    } else {
        format!("msg_{id}")
    }
}

pub fn encode_response(resp: &ChatResponse) -> Value {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(json!({"type": "text", "text": t})),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({
                "type": "tool_use",
                "id": tool_id(id),
                "name": name,
                // An upstream's malformed arguments cannot be an `input` object.
                "input": tool_input(arguments, "arguments").unwrap_or_else(|_| json!({})),
            })),
            _ => None,
        })
        .collect();
    json!({
        "id": msg_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": stop_str(resp.stop.unwrap_or(StopReason::EndTurn)),
        // The IR does not keep which stop sequence matched.
        "stop_sequence": null,
        "usage": usage_json(&resp.usage),
    })
}

// ------------------------------------------------------------------ helpers
