//! IR requests → Anthropic request bodies, and the content blocks answers
//! share with them.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::fit::{ThinkingOut, fit_sampling, fit_thinking};
use super::schema::{OutputConfigOut, fit_schema, output_config, structured_outputs};
use super::{TARGET, default_max_tokens, is_claude, known_max_output_tokens, role_str, tool_id};
use crate::translate::ir::{self, ChatRequest, Image, Part, Role, ToolChoice, Unsupported};
use crate::translate::wire::{self, Body, TextOr, is_false};

// ------------------------------------------------------------------ the wire, as the gateway sends it

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    // In the API reference's order.
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    max_tokens: u64,
    metadata: Option<MetadataOut<'a>>,
    output_config: Option<OutputConfigOut>,
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

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct SystemBlock<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    text: &'a str,
    cache_control: Option<Ephemeral>,
}

/// `cache_control: {"type": "ephemeral"}`: the prompt up to here is cached.
#[derive(Serialize, Clone, Copy)]
pub(super) struct Ephemeral {
    #[serde(rename = "type")]
    ty: &'static str,
}

const EPHEMERAL: Ephemeral = Ephemeral { ty: "ephemeral" };

/// Anthropic refuses a request with more cache breakpoints than this.
const MAX_BREAKPOINTS: usize = 4;

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
        cache_control: Option<Ephemeral>,
    },
    Image {
        source: SourceOut<'a>,
        cache_control: Option<Ephemeral>,
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
    input_schema: Cow<'a, Value>,
    description: Option<&'a str>,
    /// Only `true` is said: not strict is the default.
    strict: Option<bool>,
    cache_control: Option<Ephemeral>,
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

// ------------------------------------------------------------------ encode

/// IR → an Anthropic body (as JSON, for tests and tools); what it leaves
/// out is added to `req.dropped`, as on the way upstream.
pub fn encode_request(req: &mut ChatRequest) -> Result<Value, Unsupported> {
    request_body(req).map(|b| b.to_json())
}

/// IR → the body sent upstream (after [`fit_thinking`] and
/// [`fit_sampling`], which record in `req.dropped` what they leave out).
pub(super) fn request_body(req: &mut ChatRequest) -> Result<RequestOut<'_>, Unsupported> {
    req.refuse_seed_and_penalties(TARGET)?;
    // A cap above the model's output limit is refused (400): the app asked
    // for at most that many, and the model gives no more. Lowered only for
    // a model known exactly: a family's limit may be below a newer
    // member's, and the app's cap is then sent as it is.
    let max_tokens = match req.max_tokens {
        Some(asked) => known_max_output_tokens(&req.model).map_or(asked, |most| asked.min(most)),
        None => default_max_tokens(req),
    };
    let strict = strict_schemas(req);
    let thinking = fit_thinking(req, max_tokens);
    fit_sampling(req);
    req.fit_call_arguments();
    fit_breakpoints(req);
    let req: &ChatRequest = req;
    let output_config = output_config(req)?;
    let system = match req.system.as_slice() {
        [] => None,
        [one] if req.cache.system.is_empty() => Some(TextOr::Text(one.clone())),
        many => Some(TextOr::Parts(
            many.iter()
                .enumerate()
                .map(|(k, s)| SystemBlock {
                    ty: "text",
                    text: s,
                    cache_control: req.cache.system.contains(&k).then_some(EPHEMERAL),
                })
                .collect(),
        )),
    };
    Ok(RequestOut {
        model: &req.model,
        max_tokens,
        messages: encode_messages(req)?,
        system,
        tools: tools_out(req, strict),
        tool_choice: tool_choice_out(req),
        temperature: req.temperature,
        thinking,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
        metadata: req.user.as_deref().map(|user_id| MetadataOut { user_id }),
        output_config,
        stream: req.stream,
    })
}

/// The schemas of the IR's strict tools (`strict: true`) as Anthropic
/// takes them strict, by tool: fitted as a response schema is
/// (`schema::fit_schema`), for the Claude models with structured outputs.
/// For other models, a schema that cannot be fitted, and a model without
/// `claude-` in its name (an Anthropic-compatible vendor's, such as
/// DeepSeek's or Kimi's Anthropic endpoints, which may refuse a field they
/// do not know), `strict` is a hint, dropped and named.
fn strict_schemas(req: &mut ChatRequest) -> Vec<Option<Value>> {
    let structured = is_claude(&req.model) && structured_outputs(&req.model);
    let mut lost = false;
    let fitted = req
        .tools
        .iter()
        .map(|t| {
            if t.strict != Some(true) {
                return None;
            }
            let fitted = fit_schema(&t.parameters)
                .ok()
                .filter(|s| structured && s.is_object());
            lost |= fitted.is_none();
            fitted
        })
        .collect();
    if lost {
        req.dropped.hint("tools[*].strict");
    }
    fitted
}

/// The IR's tools: an object schema as is, anything else says "no
/// arguments"; a strict tool's schema as [`strict_schemas`] fitted it.
fn tools_out(req: &ChatRequest, strict: Vec<Option<Value>>) -> Vec<ToolOut<'_>> {
    static NO_ARGUMENTS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(ir::no_arguments);
    req.tools
        .iter()
        .zip(strict.into_iter().chain(std::iter::repeat(None)))
        .enumerate()
        .map(|(k, (t, fitted))| ToolOut {
            cache_control: req.cache.tools.contains(&k).then_some(EPHEMERAL),
            name: &t.name,
            strict: fitted.is_some().then_some(true),
            input_schema: match fitted {
                Some(s) => Cow::Owned(s),
                None if t.parameters.is_object() => Cow::Borrowed(&t.parameters),
                None => Cow::Borrowed(&*NO_ARGUMENTS),
            },
            description: t.description.as_deref(),
        })
        .collect()
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
        for (j, p) in m.content.iter().enumerate() {
            let cache_control = req.cache.parts.contains(&(i, j)).then_some(EPHEMERAL);
            match (p, m.role) {
                // Anthropic rejects text blocks of nothing or of whitespace
                // only (400), which other models write beside their calls
                // ("\n\n") and apps send back as history.
                (Part::Text(t) | Part::Refusal(t), _) if t.trim().is_empty() => {}
                (Part::Text(t) | Part::Refusal(t), _) => blocks.push(BlockOut::Text {
                    text: t,
                    cache_control,
                }),
                (Part::Image(img), _) => blocks.push(image_block(img, cache_control)),
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
    // A last user turn of only whitespace, left out, would leave the
    // assistant's turn last: a prefill Anthropic would continue, not the
    // answer the app asked for.
    if let Some(last) = req.messages.len().checked_sub(1)
        && req.messages[last].role == Role::User
        && turns.last().is_none_or(|(role, _)| *role != Role::User)
    {
        return Err(Unsupported::invalid(
            format!("messages[{last}]"),
            "the last message holds no text but whitespace, which Anthropic refuses",
        ));
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
                    Part::Text(t) => Ok(BlockOut::Text {
                        text: t,
                        cache_control: None,
                    }),
                    Part::Image(img) => Ok(image_block(img, None)),
                    _ => Err(Unsupported::invalid(
                        format!("messages[{i}].tool_result"),
                        "a tool result holds text and images only",
                    )),
                })
                .collect::<Result<_, _>>()?,
        )),
    })
}

fn image_block(img: &Image, cache_control: Option<Ephemeral>) -> BlockOut<'_> {
    let source = match img {
        Image::Base64 { media_type, data } => SourceOut::Base64 { media_type, data },
        Image::Url(url) => SourceOut::Url { url },
    };
    BlockOut::Image {
        source,
        cache_control,
    }
}

/// Keeps at most [`MAX_BREAKPOINTS`] cache breakpoints, in the order
/// Anthropic caches its prompt (tools, system, then the messages): the
/// tools' and system's, then the latest messages' (where a conversation's
/// growing prefix ends). Those past the bound are dropped and named.
fn fit_breakpoints(req: &mut ChatRequest) {
    // Only marks on blocks that are sent count: a text of whitespace is
    // left out (see `encode_messages`), and so is its mark.
    let messages = &req.messages;
    let sent = |&(i, j): &(usize, usize)| {
        messages
            .get(i)
            .and_then(|m| m.content.get(j))
            .is_some_and(|p| match p {
                Part::Text(t) | Part::Refusal(t) => !t.trim().is_empty(),
                Part::Image(_) => true,
                _ => false,
            })
    };
    let (tools, system) = (req.tools.len(), req.system.len());
    let c = &mut req.cache;
    c.parts.retain(sent);
    c.tools.retain(|&k| k < tools);
    c.system.retain(|&k| k < system);
    for v in [&mut c.tools, &mut c.system] {
        v.sort_unstable();
        v.dedup();
    }
    c.parts.sort_unstable();
    c.parts.dedup();
    if c.tools.len() + c.system.len() + c.parts.len() <= MAX_BREAKPOINTS {
        return;
    }
    // The last mark of a section caches everything before it: the tools'
    // last, the system's last, then the latest messages', then the rest.
    let mut keep_tools = c.tools.last().copied().into_iter().collect::<Vec<_>>();
    let mut keep_system = c.system.last().copied().into_iter().collect::<Vec<_>>();
    let room = MAX_BREAKPOINTS - keep_tools.len() - keep_system.len();
    let keep_parts: Vec<(usize, usize)> = c.parts.iter().rev().take(room).copied().collect();
    let mut room = room - keep_parts.len();
    for k in c.system.iter().rev().skip(1) {
        if room == 0 {
            break;
        }
        keep_system.push(*k);
        room -= 1;
    }
    for k in c.tools.iter().rev().skip(1) {
        if room == 0 {
            break;
        }
        keep_tools.push(*k);
        room -= 1;
    }
    c.tools = keep_tools;
    c.system = keep_system;
    c.parts = keep_parts;
    req.dropped.advisory("messages[*].content[*].cache_control");
}
