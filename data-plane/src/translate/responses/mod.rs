//! OpenAI Responses API (`POST /v1/responses`) ⇄ IR, so apps written against
//! `client.responses.create(...)` can be served by providers that only speak
//! chat completions, Anthropic or Gemini. The same six operations as
//! `openai_chat`, in three files: `request`, this one (the response and the
//! output items both kinds of answer are built from) and `stream`.
//!
//! The gateway keeps no conversation state, so whatever needs OpenAI to
//! remember or run something on the app's behalf (`previous_response_id`,
//! `conversation`, item references, hosted tools, `background`) is refused
//! with the field named rather than silently answered without it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::ir::{ChatRequest, ChatResponse, Part, StopReason, Unsupported};
use crate::usage::Usage;

mod request;
mod stream;

pub use request::{decode_request, encode_request};
use request::{format_json, tool_choice_json, tool_json};
pub use stream::{Decoder, Encoder};

// ------------------------------------------------------------------ response

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Unsupported::invalid("response", e))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the response failed");
        return Err(Unsupported::invalid("response.error", message));
    }
    let mut content = Vec::new();
    for item in v
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for c in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let text = match c.get("type").and_then(Value::as_str) {
                        Some("output_text") => c.get("text"),
                        Some("refusal") => c.get("refusal"),
                        _ => None,
                    };
                    if let Some(t) = text.and_then(Value::as_str).filter(|t| !t.is_empty()) {
                        content.push(Part::Text(t.to_string()));
                    }
                }
            }
            Some("function_call") => content.push(Part::ToolCall {
                id: item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name: item
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: item
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_string(),
            }),
            // Reasoning items are the model's scratchpad (counted in usage);
            // hosted-tool items never occur since hosted tools are refused.
            _ => {}
        }
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
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
        stop: stop_from(&v, called),
        usage: v
            .get("usage")
            .filter(|u| u.is_object())
            .map(usage_from)
            .unwrap_or_default(),
    })
}

/// Stop reason of a Response object: `status` and `incomplete_details`, and
/// whether it called a function (the API has no separate "tool use" status).
fn stop_from(resp: &Value, called: bool) -> Option<StopReason> {
    match resp.get("status").and_then(Value::as_str) {
        Some("incomplete") => {
            let reason = resp
                .get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str);
            Some(if reason == Some("content_filter") {
                StopReason::ContentFilter
            } else {
                StopReason::MaxTokens
            })
        }
        Some("completed") | None => Some(if called {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        }),
        Some(_) => None,
    }
}

/// `status` and `incomplete_details` of a Response that stopped for `stop`.
fn status_of(stop: Option<StopReason>) -> (&'static str, Value) {
    match stop {
        Some(StopReason::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(StopReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

pub fn usage_from(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n(u.get("input_tokens")),
        output: n(u.get("output_tokens")),
        cached: n(u
            .get("input_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        reasoning: n(u
            .get("output_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.input.saturating_add(u.output),
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn resp_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else {
        format!("resp_{id}")
    }
}

/// A fresh id when the upstream gave none.
fn fresh_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("resp_{nanos:x}")
}

/// Ids of the output items, derived from the response id so they are stable
/// and unique within it: `msg_…` for messages, `fc_…` for function calls.
fn msg_id(resp: &str, n: usize) -> String {
    let base = resp.strip_prefix("resp_").unwrap_or(resp);
    if n == 0 {
        format!("msg_{base}")
    } else {
        format!("msg_{base}_{n}")
    }
}

fn fc_id(resp: &str, call_id: &str, output_index: usize) -> String {
    if call_id.is_empty() {
        format!(
            "fc_{}_{output_index}",
            resp.strip_prefix("resp_").unwrap_or(resp)
        )
    } else {
        format!("fc_{call_id}")
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([text_part(text)])
    };
    json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id, "name": name})
}

/// What the app asked for, echoed in the Response object as the API does.
struct Echo {
    instructions: Value,
    tools: Value,
    tool_choice: Value,
    text: Value,
    temperature: Value,
    top_p: Value,
    max_output_tokens: Value,
    user: Value,
}

impl Echo {
    fn of(req: Option<&ChatRequest>) -> Self {
        let Some(req) = req else {
            return Self {
                instructions: Value::Null,
                tools: json!([]),
                tool_choice: json!("auto"),
                text: json!({"format": {"type": "text"}}),
                temperature: Value::Null,
                top_p: Value::Null,
                max_output_tokens: Value::Null,
                user: Value::Null,
            };
        };
        Self {
            instructions: if req.system.is_empty() {
                Value::Null
            } else {
                json!(req.system.join("\n\n"))
            },
            tools: req.tools.iter().map(tool_json).collect(),
            tool_choice: req
                .tool_choice
                .as_ref()
                .map_or_else(|| json!("auto"), tool_choice_json),
            text: json!({"format": req.response_format.as_ref().map_or_else(|| json!({"type": "text"}), format_json)}),
            temperature: json!(req.temperature),
            top_p: json!(req.top_p),
            max_output_tokens: json!(req.max_tokens),
            user: json!(req.user),
        }
    }

    /// A Response object in progress, with no output yet; callers fill in
    /// `status`, `output`, `usage` and the details when it ends.
    fn response(&self, id: &str, model: &str, created_at: u64) -> Value {
        json!({
            "id": id,
            "object": "response",
            "created_at": created_at,
            "status": "in_progress",
            "background": false,
            "completed_at": null,
            "error": null,
            "incomplete_details": null,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "max_tool_calls": null,
            "model": model,
            "output": [],
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "store": false,
            "temperature": self.temperature,
            "text": self.text,
            "tool_choice": self.tool_choice,
            "tools": self.tools,
            "top_logprobs": 0,
            "top_p": self.top_p,
            "truncation": "disabled",
            "usage": null,
            "user": self.user,
            "metadata": {},
        })
    }
}

pub fn encode_response(resp: &ChatResponse) -> Value {
    let id = if resp.id.is_empty() {
        fresh_id()
    } else {
        resp_id(&resp.id)
    };
    let created_at = now_secs();
    let (status, details) = status_of(resp.stop);
    // Consecutive text parts make one message item; each call is its own item.
    let mut output: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut messages = 0;
    let flush = |text: &mut String, output: &mut Vec<Value>, messages: &mut usize| {
        if !text.is_empty() {
            output.push(message_item(
                &msg_id(&id, *messages),
                &std::mem::take(text),
                "completed",
            ));
            *messages += 1;
        }
    };
    for p in &resp.content {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall {
                id: call_id,
                name,
                arguments,
            } => {
                flush(&mut text, &mut output, &mut messages);
                let item_id = fc_id(&id, call_id, output.len());
                output.push(call_item(&item_id, call_id, name, arguments, "completed"));
            }
            _ => {}
        }
    }
    flush(&mut text, &mut output, &mut messages);
    // The item the limit cut short is the last one.
    if status == "incomplete"
        && let Some(last) = output.last_mut()
    {
        last["status"] = json!("incomplete");
    }
    let mut r = Echo::of(None).response(&id, &resp.model, created_at);
    r["status"] = json!(status);
    if status == "completed" {
        r["completed_at"] = json!(created_at);
    }
    r["incomplete_details"] = details;
    r["output"] = Value::Array(output);
    r["usage"] = usage_json(&resp.usage);
    r
}
