//! Gemini `generateContent` / `streamGenerateContent?alt=sse` ⇄ IR. Same
//! layout as the reference codec `openai_chat`: request, response, stream
//! decoder, stream encoder.
//!
//! Choices a faithful translation forces, in one place:
//! - The model and streaming live in the URL, not the body: `decode_request`
//!   takes them from the path; `encode_request` leaves them out (the caller
//!   picks `:generateContent` or `:streamGenerateContent?alt=sse` from
//!   `ChatRequest::stream`). The advisory `user` has no Gemini field and is dropped.
//! - Field names: the API accepts proto names (`system_instruction`) as well
//!   as JSON names (`systemInstruction`); both are read, JSON names written.
//! - Function calls usually carry no `id`. Decoding synthesizes one: in a
//!   request, `call_0`, `call_1`, … in conversation order, and a
//!   `functionResponse` without `id` answers the first unanswered call of
//!   that name in the turn before; in an answer, `call_<responseId>_<n>`, so
//!   ids from two answers of one conversation never collide (apps in the
//!   other formats keep them in their history, where they must be unique).
//!   Encoding a `functionResponse` needs the function's name: from
//!   `ToolResult::name`, else from the matching earlier call.
//! - `functionResponse.response` follows the API's convention: `output` holds
//!   the result, `error` an error; any other object is the output as a whole.
//! - Tool and response schemas: Gemini takes an OpenAPI subset
//!   ([`encode_schema`] lists what is kept, rewritten, dropped and refused).
//! - Usage: `promptTokenCount` (plus `toolUsePromptTokenCount`) already
//!   includes `cachedContentTokenCount`; thinking is billed as output, so
//!   `output = candidatesTokenCount + thoughtsTokenCount`, `reasoning =
//!   thoughtsTokenCount`.
//! - Thought summaries (`"thought": true` parts) and `thoughtSignature`s are
//!   the model's private reasoning state: the IR has no place for them, other
//!   providers cannot use them, so they are dropped. For Gemini 3 models,
//!   which refuse replayed function calls without a signature, the first call
//!   of each model turn carries Google's documented
//!   `skip_thought_signature_validator` sentinel instead.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::field::{f64_of, str_of};
use super::ir::{ChatResponse, Part, StopReason, Unsupported};
use crate::usage::Usage;

mod request;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use schema::encode_schema;
pub use stream::{Decoder, Encoder};

const TARGET: &str = "Gemini";

/// Request fields that carry no content: dropped when translating, on every
/// route. Google's own safety thresholds (the target provider applies its
/// policy) and Vertex billing labels.
const ADVISORY: &[&str] = &["safetySettings", "labels"];

/// Keys of a part that accompany its data without being content.
const PART_ANNOTATIONS: &[&str] = &["thought", "thoughtSignature", "partMetadata"];

/// Google's documented stand-in for a thought signature the history lacks.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

// ------------------------------------------------------------------ response

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Unsupported::invalid("response", e))?;
    if let Some(e) = v.get("error") {
        return Err(Unsupported::invalid("response", error_message(e)));
    }
    let response_id = v
        .get("responseId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cand = v
        .get("candidates")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let mut calls = 0;
    for p in parts_of(cand) {
        if let Some(t) = answer_text(p) {
            content.push(Part::Text(t.to_string()));
        } else if let Some(fc) = p.get("functionCall") {
            let (id, name, arguments) = call_of(fc, response_id, calls);
            calls = calls.saturating_add(1);
            content.push(Part::ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    Ok(ChatResponse {
        id: response_id.to_string(),
        model: v
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        content,
        stop: stop_of(&v, cand, calls > 0),
        usage: v.get("usageMetadata").map(usage_from).unwrap_or_default(),
    })
}

fn parts_of(cand: &Value) -> &[Value] {
    cand.get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The answer's text in a part: not a thought summary, not empty.
fn answer_text(p: &Value) -> Option<&str> {
    if p.get("thought").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    p.get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

/// (id, name, arguments) of an answer's `n`th call; see the module doc for ids.
fn call_of(fc: &Value, response_id: &str, n: u32) -> (String, String, String) {
    let id = match fc.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            let rid: String = response_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if rid.is_empty() {
                format!("call_{n}")
            } else {
                format!("call_{rid}_{n}")
            }
        }
    };
    let name = fc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (
        id,
        name,
        fc.get("args")
            .filter(|a| !a.is_null())
            .map_or_else(|| "{}".to_string(), Value::to_string),
    )
}

/// The candidate's finish reason, or a prompt blocked before any candidate.
fn stop_of(v: &Value, cand: &Value, called: bool) -> Option<StopReason> {
    if let Some(r) = cand.get("finishReason").and_then(Value::as_str) {
        return Some(stop_from(r, called));
    }
    let blocked = v
        .get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .is_some_and(|b| !b.is_null());
    blocked.then_some(StopReason::ContentFilter)
}

/// Gemini has no tool-call finish reason (calls end with STOP) and does not
/// tell a stop sequence from a natural stop.
fn stop_from(s: &str, called: bool) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => StopReason::ContentFilter,
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn finish_str(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
    }
}

fn error_message(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_string()
}

/// Gemini `usageMetadata` → IR usage.
pub fn usage_from(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        output: n("candidatesTokenCount").saturating_add(thoughts),
        cached: n("cachedContentTokenCount"),
        reasoning: thoughts,
    }
}

fn usage_json(u: &Usage) -> Value {
    let mut m = json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output.saturating_sub(u.reasoning),
        "totalTokenCount": u.input.saturating_add(u.output),
    });
    if u.cached > 0 {
        m["cachedContentTokenCount"] = json!(u.cached);
    }
    if u.reasoning > 0 {
        m["thoughtsTokenCount"] = json!(u.reasoning);
    }
    m
}

fn call_part(id: &str, name: &str, arguments: &str) -> Value {
    // An upstream's malformed arguments cannot be an `args` object.
    let args = json_object(arguments, "arguments").unwrap_or_else(|_| json!({}));
    json!({"functionCall": {"id": id, "name": name, "args": args}})
}

fn response_id(id: &str) -> String {
    if !id.is_empty() {
        return id.to_string();
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

pub fn encode_response(resp: &ChatResponse) -> Value {
    let parts: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(json!({"text": t})),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(call_part(id, name, arguments)),
            _ => None,
        })
        .collect();
    json!({
        "candidates": [{
            "content": {"parts": parts, "role": "model"},
            "finishReason": finish_str(resp.stop.unwrap_or(StopReason::EndTurn)),
            "index": 0,
        }],
        "usageMetadata": usage_json(&resp.usage),
        "modelVersion": resp.model,
        "responseId": response_id(&resp.id),
    })
}

// ------------------------------------------------------------------ helpers

/// `max_output_tokens` → `maxOutputTokens`: the API accepts both spellings.
fn camel(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut upper = false;
    for c in k.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A non-null field by its JSON name, or by its proto (snake_case) name.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(name)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.contains('_') && camel(k) == name)
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn json_object(arguments: &str, at: &str) -> Result<Value, Unsupported> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Unsupported::invalid(
            at,
            "tool call arguments must be a JSON object",
        )),
        Err(e) => Err(Unsupported::invalid(
            at,
            format!("tool call arguments are not valid JSON: {e}"),
        )),
    }
}

fn str_field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, Unsupported> {
    field(v, key)
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::invalid(format!("{at}.{key}"), "expected a string"))
}

/// Gemini's int32 fields sometimes arrive as `40.0` from loosely typed clients.
fn u64_of(v: &Value, field: &str) -> Result<u64, Unsupported> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= u32::MAX as f64)
                .map(|f| f as u64)
        })
        .ok_or_else(|| Unsupported::invalid(field, "expected a non-negative integer"))
}
