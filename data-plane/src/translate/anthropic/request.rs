//! Anthropic request bodies ⇄ IR requests.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{TARGET, default_max_tokens, role_str, tool_id};
use crate::translate::ir::{
    self, ChatRequest, Drops, Image, Message, Part, ResponseFormat, Role, Thinking, ThinkingAmount,
    Tool, ToolChoice, Unsupported,
};
use crate::translate::openai_chat::MISSING_MODEL;
use crate::translate::policy::Policy;
use crate::translate::wire::{self, Body, Extra, TextOr, is_false};

/// Request fields that carry no content: dropped when translating, on
/// every route.
const ADVISORY: &[&str] = &["service_tier"];

/// Request fields that are hints or client bookkeeping: dropped when
/// translating on lenient routes, refused on strict ones. Context management
/// edits what Anthropic keeps of a long conversation server-side; the
/// gateway sends the whole conversation, so there is nothing to edit.
const HINTS: &[&str] = &["context_management"];

/// What a Messages request may lose in translation.
const POLICY: Policy = Policy {
    hints: HINTS,
    advisory: &[ADVISORY],
};

/// Keys of a content block or tool that carry no content: the prompt-cache
/// breakpoint, and streaming granularity of tool input.
const ADVISORY_IN_BLOCK: &[&str] = &["cache_control", "eager_input_streaming"];

// ------------------------------------------------------------------ the wire, as apps send it

#[derive(Deserialize)]
struct RequestIn {
    // In the API reference's order.
    model: Option<String>,
    messages: Option<Vec<MessageIn>>,
    max_tokens: Option<u64>,
    metadata: Option<MetadataIn>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
    system: Option<TextOr<BlockIn>>,
    temperature: Option<f64>,
    tool_choice: Option<ToolChoiceIn>,
    tools: Option<Vec<ToolIn>>,
    top_k: Option<u64>,
    top_p: Option<f64>,
    /// Thinking and effort settings, hints and bookkeeping, or what cannot
    /// be translated (`container`, `mcp_servers`…).
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
struct MetadataIn {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct MessageIn {
    role: Option<String>,
    content: Option<TextOr<BlockIn>>,
}

/// Any content block (and a system block): the fields each kind uses; which
/// belong to which kind is checked by [`BlockIn::check_keys`].
#[derive(Deserialize)]
struct BlockIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    text: Option<String>,
    source: Option<SourceIn>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
    tool_use_id: Option<String>,
    content: Option<TextOr<BlockIn>>,
    is_error: Option<bool>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
struct SourceIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    media_type: Option<String>,
    data: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct ToolIn {
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Value>,
    /// Absent (or `custom`) for the app's own tools.
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
struct ToolChoiceIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    name: Option<String>,
    /// `true`: one tool call at a time.
    disable_parallel_tool_use: Option<bool>,
}

impl BlockIn {
    /// Keys outside `known` must be advisory (`cache_control`, dropped and
    /// recorded) or empty (`citations: null`); anything else carries
    /// something the IR would lose. Checked in key order.
    fn check_keys(&self, at: &str, known: &[&str], drops: &mut Drops) -> Result<(), Unsupported> {
        let typed = [
            (
                "content",
                self.content
                    .as_ref()
                    .is_some_and(|c| !matches!(c, TextOr::Parts(p) if p.is_empty())),
            ),
            ("id", self.id.is_some()),
            ("input", self.input.is_some()),
            ("is_error", self.is_error.is_some()),
            ("name", self.name.is_some()),
            ("source", self.source.is_some()),
            ("text", self.text.is_some()),
            ("tool_use_id", self.tool_use_id.is_some()),
        ];
        let present = typed.iter().filter(|(_, p)| *p).map(|(k, _)| *k);
        check_keys(present, &self.extra, at, known, drops)
    }

    /// A required string field.
    fn required<'a>(v: &'a Option<String>, key: &str, at: &str) -> Result<&'a str, Unsupported> {
        v.as_deref()
            .ok_or_else(|| Unsupported::invalid(format!("{at}.{key}"), "expected a string"))
    }
}

/// The check of [`BlockIn::check_keys`] over the modelled keys present and
/// the unmodelled ones, in key order.
fn check_keys<'a>(
    present: impl Iterator<Item = &'a str>,
    extra: &'a Extra,
    at: &str,
    known: &[&str],
    drops: &mut Drops,
) -> Result<(), Unsupported> {
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    let mut keys: Vec<&str> = present
        .chain(
            extra
                .iter()
                .filter(|(_, v)| !empty(v))
                .map(|(k, _)| k.as_str()),
        )
        .filter(|k| !known.contains(k))
        .collect();
    keys.sort_unstable();
    for k in keys {
        if ADVISORY_IN_BLOCK.contains(&k) {
            drops.advisory(&format!("{at}.{k}"));
        } else {
            return Err(Unsupported::new(format!("{at}.{k}"), "translated"));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ decode

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Unsupported> {
    let b: RequestIn = wire::parse(body, "body")?;
    let mut req = ChatRequest {
        model: b.model.unwrap_or_default(),
        max_tokens: b.max_tokens,
        temperature: b.temperature,
        top_p: b.top_p,
        top_k: b.top_k,
        stop: b.stop_sequences.unwrap_or_default(),
        stream: b.stream.unwrap_or(false),
        user: b.metadata.and_then(|m| m.user_id),
        ..Default::default()
    };
    if let Some(s) = b.system {
        req.system = decode_system(Some(s), &mut req.dropped)?;
    }
    // After `system`: mid-conversation system messages join it.
    for (i, m) in b.messages.into_iter().flatten().enumerate() {
        decode_message(m, i, &mut req)?;
    }
    if let Some(tools) = b.tools {
        req.tools = decode_tools(tools, &mut req.dropped)?;
    }
    if let Some(tc) = b.tool_choice {
        req.serial_tool_calls = tc.disable_parallel_tool_use == Some(true);
        req.tool_choice = Some(decode_tool_choice(tc)?);
    }
    for (k, v) in b.extra.iter().filter(|(_, v)| !v.is_null()) {
        match k.as_str() {
            // Thinking explicitly off says nothing the IR has to keep.
            "thinking" if v.get("type").and_then(Value::as_str) == Some("disabled") => {}
            "thinking" => req.thinking = decode_thinking(v, &mut req.dropped),
            "output_config" if is_effort_only(v) => req.dropped.hint("output_config.effort"),
            other => POLICY.field(other, &mut req.dropped)?,
        }
    }
    req.checked(MISSING_MODEL)
}

/// How long the model deliberates: a budget (`{type: enabled,
/// budget_tokens}`) is kept, for the targets that take one (Gemini's
/// `thinkingBudget`). Anything else (`adaptive`…) is a hint: the target
/// thinks as it does by default. Either way the answer keeps its shape
/// (thinking blocks are private state no other provider returns).
fn decode_thinking(v: &Value, drops: &mut Drops) -> Option<Thinking> {
    let budget = v
        .get("budget_tokens")
        .and_then(Value::as_u64)
        .filter(|b| *b > 0 && v.get("type").and_then(Value::as_str) == Some("enabled"));
    let Some(budget) = budget else {
        drops.hint("thinking");
        return None;
    };
    Some(Thinking {
        field: "thinking",
        amount: ThinkingAmount::Budget(budget),
    })
}

/// `output_config` holding only `effort`: a reasoning hint. Anything else in
/// it (a structured output format) changes the answer and is refused.
fn is_effort_only(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.iter().all(|(k, v)| k == "effort" || v.is_null()))
}

/// `system` is a string or an array of text blocks; each block is one entry.
fn decode_system(
    v: Option<TextOr<BlockIn>>,
    drops: &mut Drops,
) -> Result<Vec<String>, Unsupported> {
    match v {
        Some(TextOr::Text(s)) if s.is_empty() => Ok(vec![]),
        Some(TextOr::Text(s)) => Ok(vec![s]),
        Some(TextOr::Parts(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let at = format!("system[{i}]");
                match b.ty.as_deref() {
                    Some("text") => {
                        b.check_keys(&at, &["text"], drops)?;
                        Ok(BlockIn::required(&b.text, "text", &at)?.to_string())
                    }
                    Some(other) => Err(Unsupported::new(format!("{at}.{other}"), "translated")),
                    None => Err(Unsupported::invalid(format!("{at}.type"), "missing")),
                }
            })
            .collect(),
        None => Err(Unsupported::invalid(
            "system",
            "expected a string or an array of text blocks",
        )),
    }
}

fn decode_message(m: MessageIn, i: usize, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let at = format!("messages[{i}]");
    let role = match m.role.as_deref() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        // Mid-conversation system messages (beta): instructions, kept with
        // the others as OpenAI chat's `system` messages are.
        Some("system") => {
            let mut text = decode_system(m.content, &mut req.dropped)?;
            req.system.append(&mut text);
            return Ok(());
        }
        other => {
            return Err(Unsupported::invalid(
                format!("{at}.role"),
                format!("expected user, assistant or system, got {other:?}"),
            ));
        }
    };
    let mut drops = Drops::default();
    let content = match m.content {
        Some(TextOr::Text(s)) => vec![Part::Text(s)],
        Some(TextOr::Parts(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.into_iter().enumerate() {
                let here = format!("{at}.content[{j}]");
                if let Some(p) = decode_block(b, role, &here, &mut drops)? {
                    parts.push(p);
                }
            }
            parts
        }
        None => {
            return Err(Unsupported::invalid(
                format!("{at}.content"),
                "expected a string or an array of content blocks",
            ));
        }
    };
    req.dropped.extend(drops);
    req.messages.push(Message { role, content });
    Ok(())
}

/// One content block; `None` for a block dropped (replayed thinking).
fn decode_block(
    b: BlockIn,
    role: Role,
    at: &str,
    drops: &mut Drops,
) -> Result<Option<Part>, Unsupported> {
    let Some(ty) = b.ty.as_deref() else {
        return Err(Unsupported::invalid(format!("{at}.type"), "missing"));
    };
    match (ty, role) {
        ("text", _) => {
            b.check_keys(at, &["text"], drops)?;
            Ok(Some(Part::Text(
                BlockIn::required(&b.text, "text", at)?.to_string(),
            )))
        }
        ("image", _) => {
            b.check_keys(at, &["source"], drops)?;
            Ok(Some(Part::Image(decode_image(b.source, at)?)))
        }
        // The model's private reasoning from an earlier turn: no other
        // provider can use it (Gemini's thought signatures likewise).
        ("thinking" | "redacted_thinking", Role::Assistant) => {
            drops.hint(&format!("{at}.{ty}"));
            Ok(None)
        }
        ("tool_use", Role::Assistant) => {
            b.check_keys(at, &["id", "name", "input"], drops)?;
            Ok(Some(Part::ToolCall {
                id: BlockIn::required(&b.id, "id", at)?.to_string(),
                name: BlockIn::required(&b.name, "name", at)?.to_string(),
                arguments: wire::arguments_text(b.input.as_ref()),
            }))
        }
        ("tool_result", Role::User) => {
            b.check_keys(at, &["tool_use_id", "content", "is_error"], drops)?;
            let id = BlockIn::required(&b.tool_use_id, "tool_use_id", at)?.to_string();
            let content = match b.content {
                None => vec![],
                Some(TextOr::Text(s)) => vec![Part::Text(s)],
                Some(TextOr::Parts(items)) => items
                    .into_iter()
                    .enumerate()
                    .map(|(k, c)| result_block(c, &format!("{at}.content[{k}]"), drops))
                    .collect::<Result<_, _>>()?,
            };
            // Named after its call once the whole request is read.
            Ok(Some(Part::ToolResult {
                id,
                name: None,
                content,
                is_error: b.is_error.unwrap_or(false),
            }))
        }
        ("tool_use", Role::User) | ("tool_result", Role::Assistant) => Err(Unsupported::invalid(
            at,
            format!("a {} turn cannot hold a {ty} block", role_str(role)),
        )),
        (other, _) => Err(Unsupported::new(format!("{at}.{other}"), "translated")),
    }
}

/// A block inside a tool result: text or an image.
fn result_block(c: BlockIn, here: &str, drops: &mut Drops) -> Result<Part, Unsupported> {
    match c.ty.as_deref() {
        Some("text") => {
            c.check_keys(here, &["text"], drops)?;
            Ok(Part::Text(
                BlockIn::required(&c.text, "text", here)?.to_string(),
            ))
        }
        Some("image") => Ok(Part::Image(decode_image(c.source, here)?)),
        Some(other) => Err(Unsupported::new(format!("{here}.{other}"), "translated")),
        None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
    }
}

fn decode_image(src: Option<SourceIn>, at: &str) -> Result<Image, Unsupported> {
    let here = format!("{at}.source");
    let src = src.ok_or_else(|| Unsupported::invalid(&here, "missing"))?;
    match src.ty.as_deref() {
        Some("base64") => Ok(Image::Base64 {
            media_type: BlockIn::required(&src.media_type, "media_type", &here)?.to_string(),
            data: BlockIn::required(&src.data, "data", &here)?.to_string(),
        }),
        Some("url") => Ok(Image::Url(
            BlockIn::required(&src.url, "url", &here)?.to_string(),
        )),
        Some(other) => Err(Unsupported::new(format!("{here}.{other}"), "translated")),
        None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
    }
}

fn decode_tools(tools: Vec<ToolIn>, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        let at = format!("tools[{i}]");
        // Server tools (web search, code execution, …) run at Anthropic: the
        // target's model is offered the app's own tools only.
        match t.ty.as_deref() {
            None | Some("custom") => {}
            Some(other) => {
                drops.hint(&format!("{at}.{other}"));
                continue;
            }
        }
        check_keys(std::iter::empty(), &t.extra, &at, &[], drops)?;
        out.push(Tool {
            name: BlockIn::required(&t.name, "name", &at)?.to_string(),
            description: t.description,
            parameters: t.input_schema.unwrap_or_else(ir::no_arguments),
        });
    }
    Ok(out)
}

/// The mode; `disable_parallel_tool_use` is read beside it (as
/// `ChatRequest::serial_tool_calls`).
fn decode_tool_choice(tc: ToolChoiceIn) -> Result<ToolChoice, Unsupported> {
    match tc.ty.as_deref() {
        Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Required),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => Ok(ToolChoice::Tool(
            BlockIn::required(&tc.name, "name", "tool_choice")?.to_string(),
        )),
        other => Err(Unsupported::invalid(
            "tool_choice.type",
            format!("expected auto, any, tool or none, got {other:?}"),
        )),
    }
}

// ------------------------------------------------------------------ the wire, as the gateway sends it

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    // In the API reference's order.
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    max_tokens: u64,
    metadata: Option<MetadataOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
    system: Option<TextOr<SystemBlock<'a>>>,
    temperature: Option<f64>,
    thinking: Option<ThinkingOut>,
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    top_k: Option<u64>,
    top_p: Option<f64>,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Vec<BlockOut<'a>>,
}

/// A content block, in requests and answers.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: SourceOut<'a>,
    },
    ToolUse {
        id: String,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<ResultOut<'a>>,
        #[serde(skip_serializing_if = "is_false")]
        is_error: bool,
    },
}

impl BlockOut<'_> {
    fn is_result(&self) -> bool {
        matches!(self, Self::ToolResult { .. })
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum SourceOut<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ResultOut<'a> {
    Text(&'a str),
    Blocks(Vec<BlockOut<'a>>),
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct ToolOut<'a> {
    name: &'a str,
    input_schema: &'a Value,
    description: Option<&'a str>,
}

/// `tool_choice`: the mode, and one call at a time if the app asked so.
#[derive(Serialize)]
struct ToolChoiceOut<'a> {
    #[serde(flatten)]
    mode: ModeOut<'a>,
    #[serde(skip_serializing_if = "is_false")]
    disable_parallel_tool_use: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ModeOut<'a> {
    Auto,
    None,
    Any,
    Tool { name: &'a str },
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    user_id: &'a str,
}

/// `thinking: {type: enabled, budget_tokens}`.
#[derive(Serialize)]
struct ThinkingOut {
    #[serde(rename = "type")]
    ty: &'static str,
    budget_tokens: u64,
}

// ------------------------------------------------------------------ encode

/// IR → an Anthropic body (as JSON, for tests and tools); what it leaves
/// out is added to `req.dropped`, as on the way upstream.
pub fn encode_request(req: &mut ChatRequest) -> Result<Value, Unsupported> {
    request_body(req).map(|b| b.to_json())
}

/// Fits the IR's sampling to what Anthropic accepts, where OpenAI's and
/// Gemini's rules are wider:
/// - Sonnet 4.5, Haiku 4.5, Opus 4.1 and later answer 400 "`temperature`
///   and `top_p` cannot both be specified for this model" to a request with
///   both, which Gemini CLI always sends (and OpenAI SDK callers may). Only
///   `temperature` is sent, the knob every format has and the one Anthropic
///   says to adjust; `top_p` is dropped as a hint (refused on strict routes,
///   as other sampling hints are). Older models get the same request: one
///   of the two is what Anthropic recommends for them too.
/// - `temperature` is 0..1 at Anthropic, 0..2 in OpenAI and Gemini, and
///   out of range is a 400. Both scales start at deterministic (0) and
///   Anthropic's 1 is its most varied sampling, so a value above 1 is sent
///   as 1 (the nearest it can do) rather than refused; the value is not
///   rescaled, as 0.7 means much the same to every provider's apps.
fn fit_sampling(req: &mut ChatRequest) {
    // `top_p: 1` samples from everything, as leaving it out does: unsaid.
    if req.temperature.is_some() && req.top_p.take().is_some_and(|p| p != 1.0) {
        req.dropped.hint("top_p");
    }
    if let Some(t) = req.temperature.as_mut() {
        *t = t.clamp(0.0, 1.0);
    }
}

/// Least `budget_tokens` Anthropic takes.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The app's thinking budget (Gemini's `thinkingBudget`) as Anthropic's
/// `thinking`, where Anthropic takes it for this request; else it is left
/// out, named as a hint (a budget of 0 is Anthropic's default, and says
/// nothing). Anthropic refuses (400):
/// - a budget under [`MIN_THINKING_BUDGET`], or not under `max_tokens`;
/// - thinking with a `tool_choice` that forces a call;
/// - thinking whose last assistant turn, continued by tool results, does
///   not open with its thinking block, which a translated history never
///   has (no other provider returns Anthropic's signed blocks);
/// - `temperature` other than 1, `top_k`, or `top_p` under 0.95 beside
///   thinking. These sampling settings (Gemini CLI sends them with every
///   request) are then left out, as hints, so the model thinks as the app
///   asked.
fn fit_thinking(req: &mut ChatRequest, max_tokens: u64) -> Option<ThinkingOut> {
    let t = req.thinking.take()?;
    let budget = match t.amount {
        ThinkingAmount::Budget(0) => return None,
        ThinkingAmount::Budget(b) => Some(b),
        ThinkingAmount::Effort(_) => None,
    };
    let forced = matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    );
    let continued = req.messages.last().is_some_and(|m| {
        m.role == Role::User
            && m.content
                .iter()
                .any(|p| matches!(p, Part::ToolResult { .. }))
    });
    let Some(budget) =
        budget.filter(|b| (MIN_THINKING_BUDGET..max_tokens).contains(b) && !forced && !continued)
    else {
        req.dropped.hint(t.field);
        return None;
    };
    if req.temperature.take_if(|t| *t != 1.0).is_some() {
        req.dropped.hint("temperature");
    }
    if req.top_k.take().is_some() {
        req.dropped.hint("top_k");
    }
    if req.top_p.take_if(|p| *p < 0.95).is_some() {
        req.dropped.hint("top_p");
    }
    Some(ThinkingOut {
        ty: "enabled",
        budget_tokens: budget,
    })
}

/// IR → the body sent upstream (after [`fit_thinking`] and
/// [`fit_sampling`], which record in `req.dropped` what they leave out).
pub(super) fn request_body(req: &mut ChatRequest) -> Result<RequestOut<'_>, Unsupported> {
    let max_tokens = req.max_tokens.unwrap_or_else(|| default_max_tokens(req));
    let thinking = fit_thinking(req, max_tokens);
    fit_sampling(req);
    let req: &ChatRequest = req;
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => return Err(Unsupported::new("response_format", TARGET)),
    }
    let system = match req.system.as_slice() {
        [] => None,
        [one] => Some(TextOr::Text(one.clone())),
        many => Some(TextOr::Parts(
            many.iter()
                .map(|s| SystemBlock {
                    ty: "text",
                    text: s,
                })
                .collect(),
        )),
    };
    // An object schema as is; anything else says "no arguments".
    static NO_ARGUMENTS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(ir::no_arguments);
    Ok(RequestOut {
        model: &req.model,
        max_tokens,
        messages: encode_messages(req)?,
        system,
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                name: &t.name,
                input_schema: if t.parameters.is_object() {
                    &t.parameters
                } else {
                    &NO_ARGUMENTS
                },
                description: t.description.as_deref(),
            })
            .collect(),
        tool_choice: tool_choice_out(req),
        temperature: req.temperature,
        thinking,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
        metadata: req.user.as_deref().map(|user_id| MetadataOut { user_id }),
        stream: req.stream,
    })
}

/// The IR's tool choice as Anthropic takes it. Anthropic refuses a
/// `tool_choice` without tools: auto and none say nothing then. One call at
/// a time is said in `tool_choice` alone (auto when the app chose nothing),
/// and means nothing where no tool may be called.
fn tool_choice_out(req: &ChatRequest) -> Option<ToolChoiceOut<'_>> {
    let mode = match &req.tool_choice {
        Some(ToolChoice::Auto | ToolChoice::None) if req.tools.is_empty() => return None,
        None if req.serial_tool_calls && !req.tools.is_empty() => ModeOut::Auto,
        None => return None,
        Some(ToolChoice::Auto) => ModeOut::Auto,
        Some(ToolChoice::None) => ModeOut::None,
        Some(ToolChoice::Required) => ModeOut::Any,
        Some(ToolChoice::Tool(n)) => ModeOut::Tool { name: n },
    };
    Some(ToolChoiceOut {
        disable_parallel_tool_use: req.serial_tool_calls && !matches!(mode, ModeOut::None),
        mode,
    })
}

/// IR turns → strictly alternating Anthropic turns: consecutive turns of one
/// role are merged, and in a user turn the tool results come first (Anthropic
/// requires them right after the `tool_use` turn they answer).
fn encode_messages(req: &ChatRequest) -> Result<Vec<MessageOut<'_>>, Unsupported> {
    let mut turns: Vec<(Role, Vec<BlockOut<'_>>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let mut blocks = Vec::new();
        for p in &m.content {
            match (p, m.role) {
                // Anthropic rejects empty text blocks.
                (Part::Text(t), _) if t.is_empty() => {}
                (Part::Text(t), _) => blocks.push(BlockOut::Text { text: t }),
                (Part::Image(img), _) => blocks.push(image_block(img)),
                (
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    },
                    Role::Assistant,
                ) => blocks.push(BlockOut::ToolUse {
                    id: tool_id(id),
                    name,
                    input: wire::arguments_object(
                        arguments,
                        &format!("messages[{i}].tool_calls.{name}.arguments"),
                    )?,
                }),
                (
                    Part::ToolResult {
                        id,
                        content,
                        is_error,
                        ..
                    },
                    Role::User,
                ) => blocks.push(BlockOut::ToolResult {
                    tool_use_id: tool_id(id),
                    content: result_content(content, i)?,
                    is_error: *is_error,
                }),
                (Part::ToolCall { .. }, Role::User) => {
                    return Err(Unsupported::misplaced(i, ir::USER_CALL));
                }
                (Part::ToolResult { .. }, Role::Assistant) => {
                    return Err(Unsupported::misplaced(i, ir::ASSISTANT_RESULT));
                }
            }
        }
        ir::push_turn(&mut turns, m.role, blocks);
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut content)| {
            if role == Role::User {
                // Stable: results keep their order, and so does the rest.
                content.sort_by_key(|b| !b.is_result());
            }
            MessageOut {
                role: role_str(role),
                content,
            }
        })
        .collect())
}

fn result_content(content: &[Part], i: usize) -> Result<Option<ResultOut<'_>>, Unsupported> {
    Ok(match content {
        [] => None,
        [Part::Text(t)] => Some(ResultOut::Text(t)),
        many => Some(ResultOut::Blocks(
            many.iter()
                .map(|c| match c {
                    Part::Text(t) => Ok(BlockOut::Text { text: t }),
                    Part::Image(img) => Ok(image_block(img)),
                    _ => Err(Unsupported::invalid(
                        format!("messages[{i}].tool_result"),
                        "a tool result holds text and images only",
                    )),
                })
                .collect::<Result<_, _>>()?,
        )),
    })
}

fn image_block(img: &Image) -> BlockOut<'_> {
    let source = match img {
        Image::Base64 { media_type, data } => SourceOut::Base64 { media_type, data },
        Image::Url(url) => SourceOut::Url { url },
    };
    BlockOut::Image { source }
}

#[cfg(test)]
mod system_tests {
    use super::*;

    /// Claude Code sends `system` and, mid-conversation, `role: "system"`
    /// messages (a beta): both are instructions, in that order, whatever
    /// order the body's keys come in.
    #[test]
    fn mid_conversation_system_messages_join_the_system_prompt() {
        for body in [
            r#"{"model":"m","system":"first","messages":[{"role":"user","content":"q"},{"role":"system","content":"later"}]}"#,
            r#"{"messages":[{"role":"user","content":"q"},{"role":"system","content":"later"}],"model":"m","system":"first"}"#,
        ] {
            let req = decode_request(body.as_bytes()).unwrap();
            assert_eq!(req.system, ["first", "later"], "{body}");
            assert_eq!(req.messages.len(), 1);
        }
    }
}
