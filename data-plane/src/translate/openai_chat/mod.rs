//! OpenAI chat completions (`POST /v1/chat/completions`, spoken by OpenAI
//! and every OpenAI-compatible vendor) ⇄ IR, and OpenAI's embeddings, which
//! pass through only. The reference codec: the other formats' folders follow
//! the same layout (`request`, `response`, `stream`, `gateway`).

use aigw_proto::model::ProviderKind;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};

use super::codec::{
    Codec, Framing, FromPath, Profile, StreamEncoder, UpstreamCall, folder_methods,
};
use super::ir::{Absent, ChatRequest, StopReason, Unsupported};
use super::policy::Policy;
use super::wire::{self, Count, Object};
use crate::endpoints::Op;
use crate::sse::Event;
use crate::usage::Usage;

mod call_order;
mod dialect;
mod encode;
pub(crate) mod gateway;
mod options;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;
mod tool_descriptions;

pub use encode::encode_request;
pub(crate) use options::{
    ADVISORY, FormatOut, JsonSchemaIn, JsonSchemaOut, MISSING_MODEL, end_user_id, response_format,
    tool_choice_mode,
};
pub use request::decode_request;
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

// What the tests (moved unchanged from the one-file codec) find through
// `super::*`.
#[cfg(test)]
use super::codec::StreamDecoder;
#[cfg(test)]
use super::ir::{Image, Part, StreamEvent};
#[cfg(test)]
use bytes::BytesMut;

const TARGET: &str = "OpenAI chat";

/// What a chat request may lose in translation.
const POLICY: Policy = Policy {
    hints: HINTS,
    advisory: &[ADVISORY],
};

/// Request fields that are hints: dropped when translating on lenient
/// routes, refused on strict ones. How wordy a model is, a predicted output
/// (a latency optimization) and how long a prompt cache lives leave what the
/// answer says to the target's defaults. (How hard a reasoning model thinks,
/// `reasoning_effort`, is read by the decoder: see `ir::Thinking`.)
const HINTS: &[&str] = &["verbosity", "prediction", "prompt_cache_retention"];

/// The chat completions codec.
pub struct OpenAiChat;

/// OpenAI and every compatible vendor; keys are bearer tokens.
static PROFILE: Profile = Profile {
    name: "openai",
    spoken_by: &[ProviderKind::OpenAi, ProviderKind::OpenAiCompatible],
    auth: BEARER,
    absent: &[Absent::TopK, Absent::Thinking],
};

/// Both OpenAI formats take keys as bearer tokens.
pub(crate) const BEARER: (HeaderName, &str) = (http::header::AUTHORIZATION, "Bearer ");

impl Codec for OpenAiChat {
    folder_methods!();

    fn upstream_path(&self, to: &UpstreamCall<'_>) -> Option<String> {
        match to.call.op {
            Op::Generate => Some("/v1/chat/completions".into()),
            Op::Embed => Some("/v1/embeddings".into()),
            Op::CountTokens => None,
        }
    }

    fn upstream_headers(&self, app: &HeaderMap, native: bool, out: &mut HeaderMap) {
        openai_beta(app, native, out);
    }

    fn stream_usage_on_request(&self) -> bool {
        true
    }

    fn decode_request(&self, body: &[u8], _: FromPath<'_>) -> Result<ChatRequest, Unsupported> {
        decode_request(body)
    }

    /// OpenAI itself gets its own dialect (`max_completion_tokens`, and no
    /// sampling settings for its reasoning models); compatible vendors the
    /// format's common ground.
    fn encode_request_for(
        &self,
        req: &mut ChatRequest,
        kind: ProviderKind,
    ) -> Result<Vec<u8>, Unsupported> {
        req.drop_absent(PROFILE.absent);
        let dialect = dialect::Dialect::of(kind, &req.model);
        dialect.leave_out(req);
        wire::Body::request_bytes(&encode::request_body_in(req, dialect)?)
    }

    fn stream_encoder(&self, req: &ChatRequest, _: Framing) -> Box<dyn StreamEncoder> {
        Box::new(Encoder::new(req))
    }

    fn is_closing(&self, ev: &Event) -> bool {
        ev.data.trim() == "[DONE]"
    }
}

/// A passed-through OpenAI request keeps its beta opt-ins.
pub(crate) fn openai_beta(app: &HeaderMap, native: bool, out: &mut HeaderMap) {
    if native && let Some(b) = app.get("openai-beta") {
        out.insert(HeaderName::from_static("openai-beta"), b.clone());
    }
}

/// `chatcmpl-` ids, as OpenAI's SDKs expect.
fn chat_id(id: &str) -> String {
    super::ids::with_prefix("chatcmpl-", id)
}

/// `finish_reason` → stop reason; `called`: the answer holds tool calls.
/// vLLM and Ollama end an answer of calls with `stop`, not `tool_calls`:
/// such an answer still stops for its calls, as Gemini's (which has no
/// tool-call reason) and Responses' do, or an Anthropic app would read
/// `end_turn` and never run them.
fn stop_from(s: &str, called: bool) -> StopReason {
    match s {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// The stop of an answer holding a refusal (`refused`), as OpenAI's formats
/// say it: decoders stop a refusal as a content filter's, so Anthropic and
/// Gemini apps are told (`refusal`, `SAFETY`), where OpenAI's formats carry
/// the refusal in its own place and end it as a plain stop, as OpenAI does.
pub(crate) fn stop_beside(refused: bool, stop: StopReason) -> StopReason {
    match stop {
        StopReason::ContentFilter if refused => StopReason::EndTurn,
        other => other,
    }
}

fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

/// `usage` as OpenAI reports it (answers, the last stream chunk, embeddings).
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Count,
    #[serde(default)]
    completion_tokens: Count,
    #[serde(default)]
    prompt_tokens_details: Object<Cached>,
    #[serde(default)]
    completion_tokens_details: Object<Reasoning>,
}

/// The cached part of the input, as both OpenAI formats detail it.
#[derive(Deserialize, Serialize)]
pub(crate) struct Cached {
    #[serde(default)]
    pub cached_tokens: Count,
}

/// The reasoning part of the output, as both OpenAI formats detail it.
#[derive(Deserialize, Serialize)]
pub(crate) struct Reasoning {
    #[serde(default)]
    pub reasoning_tokens: Count,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input: u.prompt_tokens.0,
            output: u.completion_tokens.0,
            cached: u.prompt_tokens_details.0.map_or(0, |d| d.cached_tokens.0),
            reasoning: u
                .completion_tokens_details
                .0
                .map_or(0, |d| d.reasoning_tokens.0),
            ..Default::default()
        }
    }
}

/// An OpenAI `usage` object's text → IR usage (anything else counts
/// nothing; see [`wire::usage_text`]).
pub fn usage_from(u: &str) -> Usage {
    wire::usage_text::<WireUsage>(u)
        .map(Into::into)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: Cached,
    completion_tokens_details: Reasoning,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.input.saturating_add(u.output),
            prompt_tokens_details: Cached {
                cached_tokens: Count(u.cached),
            },
            completion_tokens_details: Reasoning {
                reasoning_tokens: Count(u.reasoning),
            },
        }
    }
}
