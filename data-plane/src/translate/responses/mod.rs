//! OpenAI Responses API (`POST /v1/responses`) ⇄ IR, so apps written against
//! `client.responses.create(...)` can be served by providers that only speak
//! chat completions, Anthropic or Gemini. In four files: `request`,
//! `response` (the Response object and the output items both kinds of answer
//! are built from), `stream` (decoder) and `events` (the encoder's event
//! sequence). Errors and listings are OpenAI's (`openai_chat::gateway`).
//!
//! The gateway keeps no conversation state, so whatever needs OpenAI to
//! remember or run something on the app's behalf (`previous_response_id`,
//! `conversation`, item references, hosted tools, `background`) is refused
//! with the field named rather than silently answered without it.

use aigw_proto::model::ProviderKind;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::codec::{
    Codec, Framing, FromPath, Profile, StreamEncoder, UpstreamCall, folder_methods,
};
use super::ir::{Absent, ChatRequest, StopReason, Unsupported};
use super::openai_chat::{self, Cached, Reasoning, gateway};
use super::wire::{self, Count, Object};
use crate::endpoints::Op;
use crate::sse::Event;
use crate::usage::Usage;

mod events;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use events::{Encoder, error_event};
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::Decoder;

const TARGET: &str = "OpenAI Responses";

/// The Responses codec.
pub struct Responses;

/// OpenAI only: compatible vendors speak chat completions only.
static PROFILE: Profile = Profile {
    name: "openai-responses",
    spoken_by: &[ProviderKind::OpenAi],
    auth: openai_chat::BEARER,
    absent: &[Absent::TopK, Absent::Thinking],
};

impl Codec for Responses {
    folder_methods!();

    fn upstream_path(&self, to: &UpstreamCall<'_>) -> Option<String> {
        (to.call.op == Op::Generate).then(|| "/v1/responses".into())
    }

    fn upstream_headers(&self, app: &HeaderMap, native: bool, out: &mut HeaderMap) {
        openai_chat::openai_beta(app, native, out);
    }

    fn decode_request(&self, body: &[u8], _: FromPath<'_>) -> Result<ChatRequest, Unsupported> {
        decode_request(body)
    }

    fn stream_encoder(&self, req: &ChatRequest, _: Framing) -> Box<dyn StreamEncoder> {
        Box::new(Encoder::new(req))
    }

    fn is_closing(&self, ev: &Event) -> bool {
        matches!(
            ev.event.as_deref(),
            Some("response.completed" | "response.incomplete" | "response.failed")
        )
    }
}

/// Stop reason of a Response object: `status` and `incomplete_details`, and
/// whether it called a function (the API has no separate "tool use" status).
fn stop_from(status: Option<&str>, reason: Option<&str>, called: bool) -> Option<StopReason> {
    match status {
        Some("incomplete") => Some(if reason == Some("content_filter") {
            StopReason::ContentFilter
        } else {
            StopReason::MaxTokens
        }),
        Some("completed") | None => Some(if called {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        }),
        Some(_) => None,
    }
}

/// `incomplete_details` of a Response.
#[derive(Deserialize, Serialize)]
struct Details {
    reason: Option<String>,
}

/// `status` and `incomplete_details` of a Response that stopped for `stop`.
fn status_of(stop: Option<StopReason>) -> (&'static str, Option<Details>) {
    let incomplete = |reason: &str| {
        Some(Details {
            reason: Some(reason.to_string()),
        })
    };
    match stop {
        Some(StopReason::MaxTokens) => ("incomplete", incomplete("max_output_tokens")),
        Some(StopReason::ContentFilter) => ("incomplete", incomplete("content_filter")),
        _ => ("completed", None),
    }
}

/// `usage` as the Responses API reports it.
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    output_tokens: Count,
    #[serde(default)]
    input_tokens_details: Object<Cached>,
    #[serde(default)]
    output_tokens_details: Object<Reasoning>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input: u.input_tokens.0,
            output: u.output_tokens.0,
            cached: u.input_tokens_details.0.map_or(0, |d| d.cached_tokens.0),
            reasoning: u
                .output_tokens_details
                .0
                .map_or(0, |d| d.reasoning_tokens.0),
            ..Default::default()
        }
    }
}

/// A Responses `usage` object → IR usage (anything else counts nothing).
pub fn usage_from(u: &serde_json::Value) -> Usage {
    wire::usage_of::<WireUsage>(u)
}

#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    input_tokens_details: Cached,
    output_tokens: u64,
    output_tokens_details: Reasoning,
    total_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u.input,
            input_tokens_details: Cached {
                cached_tokens: Count(u.cached),
            },
            output_tokens: u.output,
            output_tokens_details: Reasoning {
                reasoning_tokens: Count(u.reasoning),
            },
            total_tokens: u.input.saturating_add(u.output),
        }
    }
}

/// `resp_` ids, as OpenAI's SDKs expect; a fresh one when the upstream gave none.
fn resp_id(id: &str) -> String {
    super::ids::prefixed("resp_", id)
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
