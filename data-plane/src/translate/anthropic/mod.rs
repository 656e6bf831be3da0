//! Anthropic Messages (`POST /v1/messages`) ⇄ IR. Same layout as the
//! reference codec `openai_chat`: `request`, `response`, `stream`, `gateway`.
//!
//! Choices a faithful translation forces, in one place:
//! - `max_tokens` is required by Anthropic: a request from a format that left
//!   it out (Codex CLI, Gemini CLI send none) is sent with the model's own
//!   output limit, as the app's provider would have allowed
//!   ([`default_max_tokens`]).
//! - Sampling: Anthropic's newer models refuse `temperature` and `top_p`
//!   together, and `temperature` is 0..1 there (0..2 in OpenAI and Gemini):
//!   see `fit::fit_sampling`.
//! - Usage: the IR's `input` counts every prompt token, so it is
//!   `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`
//!   and `cached` is `cache_read_input_tokens`; encoding goes back the same
//!   way (`input_tokens = input - cached - cache_write`). Cache *writes*
//!   (`cache_creation_input_tokens`, by lifetime in `cache_creation`) are
//!   kept apart: they are billed above the input price (see `Usage::cost`).
//! - `ContentFilter` is Anthropic's `refusal` stop reason (its own safety stop).
//! - Tool ids must match `^[a-zA-Z0-9_-]+$` at Anthropic; ids from other
//!   vendors are mapped onto that alphabet (the same way on every turn, so
//!   calls and results still pair).
//! - Extended thinking: a budget (`thinking.budget_tokens`) travels as
//!   `ir::Thinking`, which Gemini takes (`thinkingBudget`); a Gemini app's
//!   budget comes here as `thinking` where Anthropic takes it beside the
//!   rest of the request (`fit::fit_thinking`). Anything else (adaptive
//!   thinking, `output_config.effort`, OpenAI's efforts, a budget for
//!   OpenAI) is served with the target's own default reasoning: dropped as
//!   a hint (refused on strict routes). Thinking blocks replayed in the
//!   history are dropped likewise, and thinking blocks in answers are
//!   dropped (their tokens stay in `output`).
//! - One call at a time (`tool_choice.disable_parallel_tool_use`, OpenAI's
//!   `parallel_tool_calls: false`) is said in `tool_choice`, auto when the
//!   app chose none.
//! - Structured output (a JSON schema) is `output_config.format`, for the
//!   models that have it, the schema fitted to what Anthropic takes; JSON
//!   mode without a schema has no counterpart and is refused (see `schema`).

use aigw_proto::model::ProviderKind;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::codec::{
    Codec, Framing, FromPath, Profile, StreamEncoder, UpstreamCall, folder_methods,
};
use super::ir::{ChatRequest, StopReason, Unsupported};
use super::wire::{self, Count, Lenient};
use crate::endpoints::Op;
use crate::sse::Event;
use crate::usage::Usage;

mod encode;
mod fit;
mod gateway;
mod request;
mod response;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

pub use encode::encode_request;
pub use request::decode_request;
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

const TARGET: &str = "Anthropic";

/// `max_tokens` sent to Anthropic (which requires it) when the app's request
/// had none and the model is not in [`MAX_OUTPUT`] (or its prompt may leave
/// less room): every Claude model's output limit is at least this.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The documented output limit of Claude families, by model-name prefix;
/// the first match wins, so a more specific prefix comes first. An app that
/// sets no cap (Codex CLI, Gemini CLI) would get the model's whole output
/// from OpenAI or Gemini; the same here, or its answers are cut short.
/// `claude-3-haiku` and `claude-3-opus` (4096) need no entry, nor does a
/// model not listed: [`DEFAULT_MAX_TOKENS`]. A newer member of a family
/// (say `claude-opus-4-7`) gets its family's limit, which may be below its
/// own but is never refused: this table gives the cap of a request that set
/// none, never a bound on the app's own cap ([`EXACT_MAX_OUTPUT`] does).
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("claude-opus-4-6", 128_000),
    ("claude-opus-4-5", 64_000),
    // Opus 4 and 4.1.
    ("claude-opus-4", 32_000),
    ("claude-sonnet-4-6", 128_000),
    // Sonnet 4 and 4.5.
    ("claude-sonnet-4", 64_000),
    ("claude-haiku-4", 64_000),
    // Without the beta header for 128k.
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5-sonnet", 8_192),
    ("claude-3-5-haiku", 8_192),
];

/// The documented output limit of each Claude model, by its exact id (an
/// alias, or the id without its date): an app's own cap above it is lowered
/// to it, as Anthropic would refuse it. Only an exact model is bounded so;
/// a model matched by its family alone (`claude-opus-4-6` is no
/// `claude-opus-4`) is sent the app's cap, for Anthropic to take or refuse
/// (a 400 the app sees in its own format), never one silently lowered.
const EXACT_MAX_OUTPUT: &[(&str, u64)] = &[
    ("claude-opus-4-6", 128_000),
    ("claude-sonnet-4-6", 128_000),
    ("claude-opus-4-5", 64_000),
    ("claude-sonnet-4-5", 64_000),
    ("claude-haiku-4-5", 64_000),
    ("claude-opus-4-1", 32_000),
    ("claude-opus-4", 32_000),
    ("claude-opus-4-0", 32_000),
    ("claude-sonnet-4", 64_000),
    ("claude-sonnet-4-0", 64_000),
    // Without the beta header for 128k.
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5-sonnet", 8_192),
    ("claude-3-5-haiku", 8_192),
    ("claude-3-opus", 4_096),
    ("claude-3-sonnet", 4_096),
    ("claude-3-haiku", 4_096),
];

/// The context window of every Claude model (the 1M-token window of some is
/// a beta the gateway does not ask for).
const CONTEXT_WINDOW: u64 = 200_000;

/// The output limit of `model` per [`MAX_OUTPUT`] (its family), else
/// [`DEFAULT_MAX_TOKENS`]: the cap sent when the app set none. The name may
/// carry a platform's decoration (`anthropic.claude-…-v1:0`,
/// `claude-…@20250514`): it is matched from its `claude-`.
pub fn max_output_tokens(model: &str) -> u64 {
    let Some(name) = claude_name(model) else {
        return DEFAULT_MAX_TOKENS;
    };
    MAX_OUTPUT
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or(DEFAULT_MAX_TOKENS, |(_, max)| *max)
}

/// The output limit of exactly `model` per [`EXACT_MAX_OUTPUT`], if listed:
/// a cap above it is refused (400 "max_tokens: … > 64000, which is the
/// maximum allowed number of output tokens"), so the cap sent is the
/// smaller of the two. The id may end in a date (`-20250514`,
/// `@20250514`), `-latest` or a platform's version (`-v1:0`, `-v2`); any
/// other ending is another model (`claude-opus-4-6` is not `claude-opus-4`),
/// whose limit is not known.
pub fn known_max_output_tokens(model: &str) -> Option<u64> {
    let mut name = claude_name(model)?;
    loop {
        if let Some((_, max)) = EXACT_MAX_OUTPUT.iter().find(|(id, _)| *id == name) {
            return Some(*max);
        }
        name = without_version(name)?;
    }
}

/// Whether `model` is one of Anthropic's own (its name has `claude-`), not
/// an Anthropic-compatible vendor's.
pub(super) fn is_claude(model: &str) -> bool {
    claude_name(model).is_some()
}

/// `model` from its `claude-`, lowercase; `None` without one (an
/// Anthropic-compatible vendor's model).
fn claude_name(model: &str) -> Option<String> {
    let m = model.to_ascii_lowercase();
    let at = m.find("claude-")?;
    Some(m[at..].to_owned())
}

/// `name` without its last date (`-20250514`, `@20250514`), `-latest` or
/// platform version (`-v1:0`, `-v2`); `None` when it ends in none of them.
fn without_version(name: String) -> Option<String> {
    if let Some(head) = name.strip_suffix("-latest") {
        return Some(head.to_owned());
    }
    let at = name.rfind(['-', '@'])?;
    let word = &name[at + 1..];
    let digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    let date = word.len() == 8 && digits(word);
    let version = word
        .strip_prefix('v')
        .is_some_and(|v| v.split(':').count() <= 2 && v.split(':').all(digits));
    (date || version).then(|| name[..at].to_owned())
}

/// The `max_tokens` sent for a request that set none: the model's output
/// limit, as far as its prompt leaves room in the context window. Models
/// before the 4.5 family refuse (400 "input length and `max_tokens` exceed
/// context limit") a prompt plus `max_tokens` beyond the window, where a
/// long conversation sent with the old fixed 4096 passed. The prompt is
/// counted from above (one token per byte of text and schema: a token is
/// at least a byte; [`IMAGE_TOKENS`] per image; [`OVERHEAD_TOKENS`]), so
/// the sum fits; never below [`DEFAULT_MAX_TOKENS`], what was always sent.
pub fn default_max_tokens(req: &ChatRequest) -> u64 {
    let room = CONTEXT_WINDOW.saturating_sub(prompt_bound(req));
    max_output_tokens(&req.model)
        .min(room)
        .max(DEFAULT_MAX_TOKENS)
}

/// Most tokens Anthropic counts for one image (it scales larger ones down
/// to about 1.15 megapixels, 1600 tokens), whatever its bytes.
const IMAGE_TOKENS: u64 = 1_600;

/// Tokens Anthropic adds around the prompt: the tool-use system prompt (a few
/// hundred) and each turn's framing, with room to spare.
const OVERHEAD_TOKENS: u64 = 2_048;

/// An upper bound of the prompt's tokens (see [`default_max_tokens`]).
fn prompt_bound(req: &ChatRequest) -> u64 {
    use super::ir::{Part, ResponseFormat};
    let len = |s: &str| s.len() as u64;
    let part = |p: &Part| -> u64 {
        match p {
            Part::Text(t) | Part::Refusal(t) => len(t),
            Part::Image(_) => IMAGE_TOKENS,
            Part::ToolCall {
                name, arguments, ..
            } => len(name) + len(arguments),
            Part::ToolResult { content, .. } => content
                .iter()
                .map(|c| match c {
                    Part::Text(t) => len(t),
                    _ => IMAGE_TOKENS,
                })
                .sum(),
        }
    };
    let system: u64 = req.system.iter().map(|s| len(s)).sum();
    let messages: u64 = req.messages.iter().flat_map(|m| &m.content).map(part).sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            len(&t.name)
                + t.description.as_deref().map_or(0, len)
                + serde_json::to_string(&t.parameters).map_or(0, |s| len(&s))
        })
        .sum();
    // Anthropic gives the model the answer's schema in a system prompt.
    let format = match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            serde_json::to_string(schema).map_or(0, |s| len(&s))
        }
        _ => 0,
    };
    OVERHEAD_TOKENS + system + messages + tools + format
}

/// The Anthropic API version sent when the app (in another format) gives none.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Messages codec.
pub struct Anthropic;

static PROFILE: Profile = Profile {
    name: "anthropic",
    spoken_by: &[ProviderKind::Anthropic],
    auth: (HeaderName::from_static("x-api-key"), ""),
    absent: &[],
};

impl Codec for Anthropic {
    folder_methods!();

    fn upstream_path(&self, to: &UpstreamCall<'_>) -> Option<String> {
        match to.call.op {
            Op::Generate => Some("/v1/messages".into()),
            Op::CountTokens => Some("/v1/messages/count_tokens".into()),
            Op::Embed => None,
        }
    }

    /// Anthropic requires an API version; a passed-through request keeps the
    /// app's, and its betas.
    fn upstream_headers(&self, app: &HeaderMap, native: bool, out: &mut HeaderMap) {
        let version = app
            .get("anthropic-version")
            .filter(|_| native)
            .cloned()
            .unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION));
        out.insert(HeaderName::from_static("anthropic-version"), version);
        if native && let Some(b) = app.get("anthropic-beta") {
            out.insert(HeaderName::from_static("anthropic-beta"), b.clone());
        }
    }

    fn decode_request(&self, body: &[u8], _: FromPath<'_>) -> Result<ChatRequest, Unsupported> {
        decode_request(body)
    }

    fn stream_encoder(&self, req: &ChatRequest, _: Framing) -> Box<dyn StreamEncoder> {
        Box::new(Encoder::new(req))
    }

    fn is_closing(&self, ev: &Event) -> bool {
        ev.event.as_deref() == Some("message_stop")
    }
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

/// `usage` as Anthropic reports it (answers, `message_start`, `message_delta`).
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    cache_read_input_tokens: Count,
    #[serde(default)]
    cache_creation_input_tokens: Count,
    /// The writes by cache lifetime (since 2025): a 1-hour write costs
    /// more than a 5-minute one.
    #[serde(default)]
    cache_creation: Lenient<CacheCreation>,
    #[serde(default)]
    output_tokens: Count,
}

/// `usage.cache_creation`: tokens written to the cache, by lifetime.
#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Count,
    #[serde(default)]
    ephemeral_1h_input_tokens: Count,
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
    cache_creation_1h: u64,
    output: u64,
}

impl Counts {
    fn merge(&mut self, u: &WireUsage) {
        self.input = self.input.max(u.input_tokens.0);
        self.cache_read = self.cache_read.max(u.cache_read_input_tokens.0);
        let (by_ttl, one_hour) = u.cache_creation.0.as_ref().map_or((0, 0), |c| {
            let one_hour = c.ephemeral_1h_input_tokens.0;
            (
                c.ephemeral_5m_input_tokens.0.saturating_add(one_hour),
                one_hour,
            )
        });
        self.cache_creation = self
            .cache_creation
            .max(u.cache_creation_input_tokens.0)
            .max(by_ttl);
        self.cache_creation_1h = self.cache_creation_1h.max(one_hour);
        self.output = self.output.max(u.output_tokens.0);
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
            cache_write: self.cache_creation,
            cache_write_1h: self.cache_creation_1h.min(self.cache_creation),
        }
    }
}

/// One usage report → IR usage (input includes cache reads and writes).
impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let mut c = Counts::default();
        c.merge(&u);
        c.total()
    }
}

/// Anthropic `usage` → IR usage (anything else counts nothing).
pub fn usage_from(u: &serde_json::Value) -> Usage {
    wire::usage_of::<WireUsage>(u)
}

#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_creation: CacheCreationOut,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
struct CacheCreationOut {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u
                .input
                .saturating_sub(u.cached)
                .saturating_sub(u.cache_write),
            cache_creation_input_tokens: u.cache_write,
            cache_creation: CacheCreationOut {
                ephemeral_5m_input_tokens: u.cache_write.saturating_sub(u.cache_write_1h),
                ephemeral_1h_input_tokens: u.cache_write_1h,
            },
            cache_read_input_tokens: u.cached,
            output_tokens: u.output,
        }
    }
}

/// `msg_` ids, as Anthropic's SDKs expect; a fresh one when the upstream gave none.
fn msg_id(id: &str) -> String {
    super::ids::prefixed("msg_", id)
}

/// An id Anthropic accepts (`^[a-zA-Z0-9_-]+$`), the same for the same input.
fn tool_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() {
        return "toolu_".to_string();
    }
    if id.chars().all(ok) {
        return id.to_string();
    }
    id.chars().map(|c| if ok(c) { c } else { '_' }).collect()
}

fn role_str(r: super::ir::Role) -> &'static str {
    match r {
        super::ir::Role::User => "user",
        super::ir::Role::Assistant => "assistant",
    }
}
