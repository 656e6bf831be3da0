//! Chat completions request bodies → IR requests (and back, in `encode`).

use serde::Deserialize;
use serde_json::Value;

use super::{JsonSchemaIn, MISSING_MODEL, POLICY, response_format, tool_choice_mode};
use crate::translate::ir::{
    self, ChatRequest, Drops, Effort, Image, Message, Named, Part, ResponseFormat, Role, Thinking,
    ThinkingAmount, Tool, ToolChoice, Unsupported,
};
use crate::translate::wire::{self, Extra, TextOr, whole_number};

pub(super) use super::encode::request_body;

// ------------------------------------------------------------------ the wire, as apps send it

#[derive(Deserialize)]
struct RequestIn {
    model: Option<String>,
    messages: Option<Vec<MessageIn>>,
    tools: Option<Vec<ToolIn>>,
    tool_choice: Option<ToolChoiceIn>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<TextOr<String>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    response_format: Option<ResponseFormatIn>,
    user: Option<String>,
    /// `false`: one tool call at a time; `true` is OpenAI's default.
    parallel_tool_calls: Option<bool>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    /// How hard a reasoning model thinks (`Value`: an effort not known is
    /// a hint, whatever its type).
    reasoning_effort: Option<Value>,
    /// Everything else: `n`, hints and bookkeeping, or what cannot be translated.
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
struct MessageIn {
    role: Option<String>,
    content: Option<TextOr<PartIn>>,
    tool_calls: Option<Vec<ToolCallIn>>,
    tool_call_id: Option<String>,
    /// An assistant's refusal, as an answer carries it (an SDK appends the
    /// answer's message to the history as is).
    refusal: Option<String>,
    /// The legacy single call: refused.
    function_call: Option<Value>,
    /// A cache breakpoint after the whole message (LiteLLM's spelling).
    cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct PartIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    text: Option<String>,
    /// A `refusal` part's text (assistant turns).
    refusal: Option<String>,
    image_url: Option<ImageUrlIn>,
    /// A cache breakpoint after this part (OpenRouter's and LiteLLM's
    /// spelling of Anthropic's, which Cline and Roo Code send).
    cache_control: Option<Value>,
}

impl PartIn {
    fn marked(&self) -> bool {
        self.cache_control.as_ref().is_some_and(|v| !v.is_null())
    }
}

/// `{"url": …}`, or the URL alone as some clients send it.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a URL or an object with a url")]
enum ImageUrlIn {
    Bare(String),
    Object { url: Option<String> },
}

/// One entry of `tool_calls` (requests and answers alike):
/// `{id, type: function, function: {name, arguments}}`.
#[derive(Deserialize)]
pub(super) struct ToolCallIn {
    id: Option<String>,
    function: Option<FunctionCallIn>,
}

#[derive(Deserialize)]
struct FunctionCallIn {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    function: Option<FunctionIn>,
    /// A cache breakpoint after the tools up to this one.
    cache_control: Option<Value>,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: Option<String>,
    description: Option<String>,
    /// Absent: no arguments; an explicit `null` is kept as the app sent it.
    #[serde(default = "ir::no_arguments")]
    parameters: Value,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected a string or an object")]
enum ToolChoiceIn {
    Mode(String),
    Function { function: Option<FunctionName> },
}

#[derive(Deserialize)]
struct FunctionName {
    name: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct ResponseFormatIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    json_schema: Option<JsonSchemaIn>,
}

// ------------------------------------------------------------------ decode

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Unsupported> {
    let b: RequestIn = wire::parse(body, "body")?;
    let mut req = ChatRequest {
        model: b.model.unwrap_or_default(),
        tool_choice: b.tool_choice.map(decode_tool_choice).transpose()?,
        max_tokens: b.max_tokens.or(b.max_completion_tokens),
        temperature: b.temperature,
        top_p: b.top_p,
        stop: match b.stop {
            None => vec![],
            Some(TextOr::Text(s)) => vec![s],
            Some(TextOr::Parts(all)) => all,
        },
        stop_field: "stop",
        seed: b.seed.map(|value| Named {
            field: "seed",
            value,
        }),
        // 0 is the default: nothing to say.
        presence_penalty: b.presence_penalty.filter(|p| *p != 0.0).map(|value| Named {
            field: "presence_penalty",
            value,
        }),
        frequency_penalty: b
            .frequency_penalty
            .filter(|p| *p != 0.0)
            .map(|value| Named {
                field: "frequency_penalty",
                value,
            }),
        stream: b.stream.unwrap_or(false),
        stream_usage: b
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        response_format: b.response_format.map(decode_response_format).transpose()?,
        user: b.user,
        serial_tool_calls: b.parallel_tool_calls == Some(false),
        ..Default::default()
    };
    if let Some(tools) = b.tools {
        req.tools = decode_tools(tools, &mut req.dropped, &mut req.cache.tools)?;
    }
    if let Some(effort) = b.reasoning_effort.filter(|v| !v.is_null()) {
        req.thinking = decode_effort(&effort, &mut req.dropped);
    }
    for (i, m) in b.messages.into_iter().flatten().enumerate() {
        decode_message(m, i, &mut req)?;
    }
    for (k, v) in b.extra.iter().filter(|(_, v)| !v.is_null()) {
        if !is_default(k, v) {
            POLICY.field(k, &mut req.dropped)?;
        }
    }
    req.checked(MISSING_MODEL)
}

/// A field spelled out with the value OpenAI takes without it (SDKs and
/// frameworks fill in their defaults): leaving it out loses nothing, so it is
/// neither refused nor named, on any route. Any other value is what the
/// policy says it is (logprobs or a bias would change the answer and is
/// refused).
fn is_default(name: &str, v: &Value) -> bool {
    match name {
        "n" => whole_number(v) == Some(1),
        "logprobs" => v.as_bool() == Some(false),
        "top_logprobs" => whole_number(v) == Some(0),
        "logit_bias" => v.as_object().is_some_and(|m| m.is_empty()),
        "modalities" => v
            .as_array()
            .is_some_and(|m| matches!(m.as_slice(), [t] if t == "text")),
        "functions" => v.as_array().is_some_and(Vec::is_empty),
        _ => false,
    }
}

/// `reasoning_effort`: a level another format can say (Gemini's budgets);
/// one not known is a hint, dropped as ever.
fn decode_effort(v: &Value, drops: &mut Drops) -> Option<Thinking> {
    let Some(effort) = v.as_str().and_then(Effort::from_name) else {
        drops.hint("reasoning_effort");
        return None;
    };
    Some(Thinking {
        field: "reasoning_effort",
        amount: ThinkingAmount::Effort(effort),
    })
}

fn decode_message(m: MessageIn, i: usize, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let at = |f: &str| format!("messages[{i}].{f}");
    let whole_marked = m.cache_control.as_ref().is_some_and(|v| !v.is_null());
    match m.role.as_deref().unwrap_or("") {
        // Each text part its own instruction, as Anthropic's `system`
        // blocks are: not run together.
        "system" | "developer" => {
            let base = req.system.len();
            // Counted as `texts_of` keeps them: empty texts are left out.
            let marked = marked_texts(&m.content);
            req.system.extend(texts_of(m.content, &at("content"))?);
            req.cache.system.extend(marked.into_iter().map(|j| base + j));
            if whole_marked && req.system.len() > base {
                req.cache.system.push(req.system.len() - 1);
            }
        }
        "user" => {
            let marked = marked_parts(&m.content);
            let content = decode_user_content(m.content, &at("content"))?;
            let at_message = req.messages.len();
            req.cache.parts.extend(marked.into_iter().map(|j| (at_message, j)));
            if whole_marked && !content.is_empty() {
                req.cache.parts.push((at_message, content.len() - 1));
            }
            req.messages.push(Message {
                role: Role::User,
                content,
            });
        }
        "assistant" => {
            let mut parts = Vec::new();
            if m.content.is_some() {
                // A refusal in the history is what the model said: text to
                // every target, as in the IR's history.
                let t = TextOr::joined(m.content, &at("content"), |p| match p.ty.as_deref() {
                    Some("text") => Some(p.text.as_deref().unwrap_or_default()),
                    Some("refusal") => Some(p.refusal.as_deref().unwrap_or_default()),
                    _ => None,
                })?;
                if !t.is_empty() {
                    parts.push(Part::Text(t));
                }
            }
            if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
                parts.push(Part::Text(r));
            }
            for (j, c) in m.tool_calls.into_iter().flatten().enumerate() {
                if c.function.is_none() {
                    return Err(Unsupported::invalid(
                        at(&format!("tool_calls[{j}].function")),
                        "missing",
                    ));
                }
                parts.push(tool_call(c));
            }
            if m.function_call.is_some() {
                return Err(Unsupported::new(at("function_call"), "translated"));
            }
            req.messages.push(Message {
                role: Role::Assistant,
                content: parts,
            });
        }
        "tool" => {
            let id = m.tool_call_id.unwrap_or_default();
            let content = match m.content {
                Some(TextOr::Text(s)) => vec![Part::Text(s)],
                // Each part apart: targets whose results are one text join
                // them a line each.
                parts @ Some(TextOr::Parts(_)) => texts_of(parts, &at("content"))?
                    .into_iter()
                    .map(Part::Text)
                    .collect(),
                None => vec![],
            };
            req.push_call_result(id, content);
        }
        other => {
            return Err(Unsupported::invalid(
                at("role"),
                format!("unknown role {other:?}"),
            ));
        }
    }
    Ok(())
}

/// The indexes, among the non-empty texts, of those a cache breakpoint
/// follows (system instructions, which keep only those).
fn marked_texts(content: &Option<TextOr<PartIn>>) -> Vec<usize> {
    match content {
        Some(TextOr::Parts(parts)) => parts
            .iter()
            .filter(|p| p.text.as_deref().is_some_and(|t| !t.is_empty()))
            .enumerate()
            .filter(|(_, p)| p.marked())
            .map(|(j, _)| j)
            .collect(),
        _ => Vec::new(),
    }
}

/// The indexes of the parts a cache breakpoint follows.
fn marked_parts(content: &Option<TextOr<PartIn>>) -> Vec<usize> {
    match content {
        Some(TextOr::Parts(parts)) => parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.marked())
            .map(|(j, _)| j)
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_user_content(
    content: Option<TextOr<PartIn>>,
    at: &str,
) -> Result<Vec<Part>, Unsupported> {
    let items = match content {
        None => return Ok(vec![]),
        Some(TextOr::Text(s)) => return Ok(vec![Part::Text(s)]),
        Some(TextOr::Parts(items)) => items,
    };
    items
        .into_iter()
        .enumerate()
        .map(|(j, p)| {
            let here = format!("{at}[{j}]");
            match p.ty.as_deref() {
                Some("text") => Ok(Part::Text(p.text.unwrap_or_default())),
                Some("image_url") => {
                    let url = match p.image_url {
                        Some(ImageUrlIn::Bare(u) | ImageUrlIn::Object { url: Some(u) }) => u,
                        _ => {
                            return Err(Unsupported::invalid(
                                format!("{here}.image_url.url"),
                                "missing",
                            ));
                        }
                    };
                    Ok(Part::Image(Image::from_url(&url)))
                }
                Some(other) => Err(Unsupported::new(format!("{here}.{other}"), "translated")),
                None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
            }
        })
        .collect()
}

/// A call of `tool_calls`; what it leaves out is empty (`{}` arguments).
/// Blank arguments (some OpenAI-compatible vendors send `""` for a call
/// without parameters) are `{}` too: the other formats' apps get an empty
/// object for such a call, and a Responses app (Codex) parses them as JSON.
pub(super) fn tool_call(c: ToolCallIn) -> Part {
    let (name, arguments) = match c.function {
        Some(f) => (f.name, f.arguments),
        None => (None, None),
    };
    Part::ToolCall {
        id: c.id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        arguments: arguments
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "{}".to_string()),
    }
}

/// Texts of a string, or of an array of `{type: text}` parts, each apart.
fn texts_of(v: Option<TextOr<PartIn>>, field: &str) -> Result<Vec<String>, Unsupported> {
    TextOr::texts(v, field, |p| {
        (p.ty.as_deref() == Some("text")).then(|| p.text.as_deref().unwrap_or_default())
    })
}

/// Function tools; `custom` (free-form) tools have no equivalent elsewhere
/// and are dropped as hints, so the target's model is offered the rest.
fn decode_tools(
    tools: Vec<ToolIn>,
    drops: &mut Drops,
    marks: &mut Vec<usize>,
) -> Result<Vec<Tool>, Unsupported> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        match t.ty.as_deref() {
            Some("function") => {}
            Some("custom") => {
                drops.hint(&format!("tools[{i}].custom"));
                continue;
            }
            _ => return Err(Unsupported::new(format!("tools[{i}].type"), "translated")),
        }
        let f = t
            .function
            .ok_or_else(|| Unsupported::invalid(format!("tools[{i}].function"), "missing"))?;
        if t.cache_control.as_ref().is_some_and(|v| !v.is_null()) {
            marks.push(out.len());
        }
        out.push(Tool {
            name: f.name.unwrap_or_default(),
            description: f.description,
            parameters: f.parameters,
            strict: f.strict,
            schema_field: format!("tools[{i}].function.parameters"),
        });
    }
    Ok(out)
}

fn decode_tool_choice(tc: ToolChoiceIn) -> Result<ToolChoice, Unsupported> {
    match tc {
        ToolChoiceIn::Mode(s) => tool_choice_mode(&s),
        ToolChoiceIn::Function { function } => function
            .and_then(|f| f.name)
            .map(ToolChoice::Tool)
            .ok_or_else(|| Unsupported::invalid("tool_choice.function.name", "missing")),
    }
}

fn decode_response_format(rf: ResponseFormatIn) -> Result<ResponseFormat, Unsupported> {
    let schema = || Ok(rf.json_schema.unwrap_or_default());
    response_format(rf.ty.as_deref(), schema, "response_format.type")
}
