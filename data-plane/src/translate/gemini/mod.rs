//! Gemini `generateContent` / `streamGenerateContent` ⇄ IR. Same layout as
//! the reference codec `openai_chat`: `request`, `response`, `stream`,
//! `gateway`, and `schema` for the OpenAPI subset Gemini takes.
//!
//! Choices a faithful translation forces, in one place:
//! - The model and streaming live in the URL, not the body: `decode_request`
//!   takes them from the path; `encode_request` leaves them out (the upstream
//!   path is `:generateContent` or `:streamGenerateContent?alt=sse` from
//!   `ChatRequest::stream`). The advisory `user` has no Gemini field and is
//!   dropped; nor has one call at a time (a hint).
//! - Field names: the API accepts proto names (`system_instruction`) as well
//!   as JSON names (`systemInstruction`); both are read, JSON names written.
//! - Function calls usually carry no `id`. Decoding synthesizes one: in a
//!   request, `call_0`, `call_1`, … in conversation order, and a
//!   `functionResponse` without `id`, or with an id no call has (Gemini CLI
//!   makes up its own), answers the first unanswered call of that name in
//!   the turn before; in an answer, `call_<responseId>_<n>` (a fresh id
//!   in place of a missing `responseId`), so ids from two answers of one
//!   conversation never collide (apps in the other formats keep them in
//!   their history, where they must be unique).
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
//! - Thinking: `thinkingConfig.thinkingBudget` travels as `ir::Thinking`
//!   (to Anthropic's `thinking`); Anthropic's budget and OpenAI's efforts
//!   (low, medium, high: 1,024, 8,192, 24,576 tokens; minimal and none: 0,
//!   or the least a model that always thinks takes) are sent as a budget
//!   fitted to the model (`contents::BudgetRange`), to models that think.
//! - Thought summaries (`"thought": true` parts) and `thoughtSignature`s are
//!   the model's private reasoning state: the IR has no place for them, other
//!   providers cannot use them, so they are dropped. For Gemini 3 models,
//!   which refuse replayed function calls without a signature, the first call
//!   of each model turn carries Google's documented
//!   `skip_thought_signature_validator` sentinel instead.

use aigw_proto::model::ProviderKind;
use http::HeaderName;
use serde::{Deserialize, Serialize};

use super::codec::{
    Codec, Framing, FromPath, Profile, StreamEncoder, UpstreamCall, folder_methods,
};
use super::ir::{Absent, ChatRequest, StopReason, Unsupported};
use super::wire::{self, Count, is_zero};
use crate::endpoints::{AppCall, Op};
use crate::sse::Event;
use crate::usage::Usage;

mod contents;
mod gateway;
mod request;
mod response;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

pub use contents::encode_request;
pub use request::decode_request;
pub use response::{decode_response, encode_response};
pub use schema::encode_schema;
pub use stream::{Decoder, Encoder};

const TARGET: &str = "Gemini";

/// The Gemini codec.
pub struct Gemini;

static PROFILE: Profile = Profile {
    name: "gemini",
    spoken_by: &[ProviderKind::Gemini],
    auth: (HeaderName::from_static("x-goog-api-key"), ""),
    absent: &[Absent::User, Absent::SerialToolCalls],
};

impl Codec for Gemini {
    folder_methods!();

    fn upstream_path(&self, to: &UpstreamCall<'_>) -> Option<String> {
        let (call, model) = (to.call, to.model);
        Some(match call.op {
            Op::Generate if to.stream => {
                // Translated streams are always SSE; a native caller keeps its choice.
                let sse = !to.native || call.alt_sse;
                format!(
                    "/v1beta/models/{model}:streamGenerateContent{}",
                    if sse { "?alt=sse" } else { "" }
                )
            }
            Op::Generate => format!("/v1beta/models/{model}:generateContent"),
            // `embedContent` or `batchEmbedContents`, as the app called it.
            Op::Embed => format!("/v1beta/models/{model}:{}", call.endpoint),
            Op::CountTokens => format!("/v1beta/models/{model}:countTokens"),
        })
    }

    fn model_in_path(&self) -> bool {
        true
    }

    fn framing(&self, call: &AppCall) -> Framing {
        if call.alt_sse {
            Framing::Sse
        } else {
            Framing::JsonArray
        }
    }

    fn decode_request(&self, body: &[u8], path: FromPath<'_>) -> Result<ChatRequest, Unsupported> {
        let model = path
            .model
            .ok_or_else(|| Unsupported::invalid("model", "missing from the path"))?;
        decode_request(body, model, path.stream)
    }

    fn stream_encoder(&self, req: &ChatRequest, framing: Framing) -> Box<dyn StreamEncoder> {
        match framing {
            Framing::Sse => Box::new(Encoder::new(req)),
            Framing::JsonArray => Box::new(Encoder::json_array(req)),
        }
    }

    /// Gemini streams just end.
    fn is_closing(&self, _: &Event) -> bool {
        false
    }
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

/// `usageMetadata` as Gemini reports it (cumulatively, in streams).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: Count,
    #[serde(default)]
    tool_use_prompt_token_count: Count,
    #[serde(default)]
    candidates_token_count: Count,
    #[serde(default)]
    thoughts_token_count: Count,
    #[serde(default)]
    cached_content_token_count: Count,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let thoughts = u.thoughts_token_count.0;
        Usage {
            input: u
                .prompt_token_count
                .0
                .saturating_add(u.tool_use_prompt_token_count.0),
            output: u.candidates_token_count.0.saturating_add(thoughts),
            cached: u.cached_content_token_count.0,
            reasoning: thoughts,
            ..Default::default()
        }
    }
}

/// Gemini `usageMetadata` → IR usage (anything else counts nothing).
pub fn usage_from(u: &serde_json::Value) -> Usage {
    wire::usage_of::<WireUsage>(u)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageOut {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cached_content_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    thoughts_token_count: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_token_count: u.input,
            candidates_token_count: u.output.saturating_sub(u.reasoning),
            total_token_count: u.input.saturating_add(u.output),
            cached_content_token_count: u.cached,
            thoughts_token_count: u.reasoning,
        }
    }
}

/// The response id an answer gets when the upstream gave none.
fn response_id(id: &str) -> String {
    if id.is_empty() {
        super::ids::fresh()
    } else {
        id.to_string()
    }
}

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
