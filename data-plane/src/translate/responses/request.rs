//! Responses request ⇄ IR: `input` items, `instructions`, function tools,
//! `text.format`; everything that needs OpenAI's stored state or hosted tools
//! is refused with the field named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TARGET;
use crate::translate::ir::{
    self, AssistantRun, ChatRequest, Drops, Effort, Image, Message, Part, ResponseFormat, Role,
    Thinking, ThinkingAmount, Tool, ToolChoice, Unsupported, UserRun,
};
use crate::translate::openai_chat::{
    self, FormatOut, JsonSchemaIn, JsonSchemaOut, MISSING_MODEL, end_user_id, response_format,
    tool_choice_mode,
};
use crate::translate::policy::Policy;
use crate::translate::wire::{self, Body, Extra, TextOr, is_false};

/// Request fields that carry no content beside those chat has
/// (`openai_chat::ADVISORY`): dropped when translating, on every route.
/// `store` only matters for retrieving the response later or chaining
/// it with `previous_response_id`, which is refused; `max_tool_calls` only
/// caps hosted tools, which are dropped; `stream_options` only holds
/// `include_obfuscation`.
const ADVISORY: &[&str] = &["prompt_cache_retention", "stream_options", "max_tool_calls"];

/// Request fields that are hints or client bookkeeping: dropped when
/// translating on lenient routes, refused on strict ones. `client_metadata`
/// is the client's own tags (Codex's session and turn ids); `truncation:
/// auto` only matters past the context window. (`reasoning` is read by
/// `decode_reasoning`.)
const HINTS: &[&str] = &["client_metadata", "truncation"];

/// What a Responses request may lose in translation.
const POLICY: Policy = Policy {
    hints: HINTS,
    advisory: &[openai_chat::ADVISORY, ADVISORY],
};

/// `include` values that ask for something only OpenAI returns and the app
/// does without: the encrypted reasoning state to replay later.
const INCLUDE_HINTS: &[&str] = &["reasoning.encrypted_content"];

// ------------------------------------------------------------------ the wire, as apps send it

#[derive(Deserialize)]
struct RequestIn {
    model: Option<String>,
    instructions: Option<String>,
    input: Option<TextOr<ItemIn>>,
    tools: Option<Vec<ToolIn>>,
    tool_choice: Option<ToolChoiceIn>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stream: Option<bool>,
    text: Option<TextIn>,
    user: Option<String>,
    /// Defaults spelled out, hints and bookkeeping, or what cannot be
    /// translated (`previous_response_id`, `conversation`, `background`…).
    #[serde(flatten)]
    extra: Extra,
}

/// An `input` item: a message, a function call or its output, or replayed
/// reasoning.
#[derive(Deserialize)]
struct ItemIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    role: Option<String>,
    content: Option<TextOr<ContentIn>>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    output: Option<TextOr<ContentIn>>,
}

#[derive(Deserialize)]
struct ContentIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<String>,
    file_id: Option<Value>,
}

#[derive(Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected a string or an object")]
enum ToolChoiceIn {
    Mode(String),
    Object {
        #[serde(rename = "type")]
        ty: Option<String>,
        name: Option<String>,
    },
}

#[derive(Deserialize)]
struct TextIn {
    format: Option<FormatIn>,
    verbosity: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
struct FormatIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    description: Option<Value>,
    #[serde(flatten)]
    schema: JsonSchemaIn,
}

// ------------------------------------------------------------------ decode

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Unsupported> {
    let b: RequestIn = wire::parse(body, "body")?;
    let mut req = ChatRequest {
        model: b.model.unwrap_or_default(),
        // `instructions` comes before any system item of `input`.
        system: b.instructions.into_iter().collect(),
        tool_choice: b.tool_choice.map(decode_tool_choice).transpose()?,
        max_tokens: b.max_output_tokens,
        temperature: b.temperature,
        top_p: b.top_p,
        stream: b.stream.unwrap_or(false),
        user: b.user,
        arguments_field: "input[*].arguments",
        ..Default::default()
    };
    if let Some(tools) = b.tools {
        req.tools = decode_tools(tools, &mut req.dropped)?;
    }
    if let Some(text) = b.text {
        req.response_format = decode_text(text, &mut req.dropped)?;
    }
    match b.input {
        None => {}
        Some(TextOr::Text(s)) => req.messages.push(Message {
            role: Role::User,
            content: vec![Part::Text(s)],
        }),
        Some(TextOr::Parts(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                decode_item(item, i, &mut req)?;
            }
        }
    }
    for (k, v) in b.extra.iter().filter(|(_, v)| !v.is_null()) {
        match k.as_str() {
            // The defaults, spelled out: nothing to translate.
            "truncation" if v.as_str() == Some("disabled") => {}
            "background" if v.as_bool() == Some(false) => {}
            "include" if v.as_array().is_some_and(Vec::is_empty) => {}
            "top_logprobs" if v.as_u64() == Some(0) => {}
            "reasoning" if is_blank(v) => {}
            "reasoning" => decode_reasoning(v, &mut req),
            "include" => decode_include(v, &mut req.dropped)?,
            other => POLICY.field(other, &mut req.dropped)?,
        }
    }
    // A Responses stream always ends with the usage.
    req.stream_usage = req.stream;
    req.checked(MISSING_MODEL)
}

/// `reasoning`: its `effort`, a level another format can say (Gemini's
/// budgets), is kept. Anything else in it (a summary of the model's
/// thoughts, which no translated answer carries), or an effort not known,
/// is a hint, dropped as ever.
fn decode_reasoning(v: &Value, req: &mut ChatRequest) {
    let effort = v
        .get("effort")
        .and_then(Value::as_str)
        .and_then(Effort::from_name);
    if let Some(e) = effort {
        req.thinking = Some(Thinking {
            field: "reasoning",
            amount: ThinkingAmount::Effort(e),
        });
    }
    let lost = v.as_object().is_none_or(|o| {
        o.iter()
            .any(|(k, v)| !v.is_null() && (k != "effort" || effort.is_none()))
    });
    if lost {
        req.dropped.hint("reasoning");
    }
}

/// `include` asks for extra output: what only OpenAI can return and the app
/// does without is a hint; anything else (logprobs, hosted-tool results) is
/// refused.
fn decode_include(v: &Value, drops: &mut Drops) -> Result<(), Unsupported> {
    let items = v
        .as_array()
        .ok_or_else(|| Unsupported::invalid("include", "expected an array of strings"))?;
    for it in items {
        let what = it
            .as_str()
            .ok_or_else(|| Unsupported::invalid("include", "expected a string"))?;
        if INCLUDE_HINTS.contains(&what) {
            drops.hint(&format!("include ({what})"));
        } else {
            return Err(unsupported_value("include", what));
        }
    }
    Ok(())
}

fn decode_item(item: ItemIn, i: usize, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let at = |f: &str| format!("input[{i}].{f}");
    let ty = match item.ty.as_deref() {
        Some(t) => t,
        // Messages may leave out their type (`EasyInputMessage`).
        None if item.role.is_some() => "message",
        None => return Err(Unsupported::invalid(at("type"), "missing")),
    };
    match ty {
        "message" => decode_message(item, i, req)?,
        // The model's private reasoning from an earlier turn (encrypted or
        // summarized): no other provider can use it.
        "reasoning" => req.dropped.hint(&at("type (reasoning)")),
        "function_call" => {
            let part = Part::ToolCall {
                id: required(item.call_id, &at("call_id"))?,
                name: required(item.name, &at("name"))?,
                arguments: item.arguments.unwrap_or_else(|| "{}".to_string()),
            };
            push_assistant(req, vec![part]);
        }
        "function_call_output" => {
            let id = required(item.call_id, &at("call_id"))?;
            let content = match item.output {
                Some(TextOr::Text(s)) => vec![Part::Text(s)],
                Some(out @ TextOr::Parts(_)) => {
                    decode_content(Some(out), &at("output"), Role::User)?
                }
                None => {
                    return Err(Unsupported::invalid(
                        at("output"),
                        "expected a string or an array of parts",
                    ));
                }
            };
            req.push_call_result(id, content);
        }
        other => return Err(unsupported_value(at("type"), other)),
    }
    Ok(())
}

fn decode_message(item: ItemIn, i: usize, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let at = format!("input[{i}].content");
    match item.role.as_deref().unwrap_or("") {
        // Each text part its own instruction, as Anthropic's `system`
        // blocks are: not run together.
        "system" | "developer" => req.system.extend(texts_of(item.content, &at)?),
        "user" => {
            let content = decode_content(item.content, &at, Role::User)?;
            req.messages.push(Message {
                role: Role::User,
                content,
            });
        }
        "assistant" => {
            let parts = decode_content(item.content, &at, Role::Assistant)?;
            push_assistant(
                req,
                parts.into_iter().filter(|p| p.text() != Some("")).collect(),
            );
        }
        other => {
            return Err(Unsupported::invalid(
                format!("input[{i}].role"),
                format!("unknown role {other:?}"),
            ));
        }
    }
    Ok(())
}

/// A turn's output items (message, function calls) arrive as separate items;
/// the IR holds them as one assistant turn, in order.
fn push_assistant(req: &mut ChatRequest, parts: Vec<Part>) {
    match req.messages.last_mut() {
        Some(last) if last.role == Role::Assistant => last.content.extend(parts),
        _ => req.messages.push(Message {
            role: Role::Assistant,
            content: parts,
        }),
    }
}

/// Message content (or a function call's output): a string or a list of parts.
fn decode_content(
    content: Option<TextOr<ContentIn>>,
    at: &str,
    role: Role,
) -> Result<Vec<Part>, Unsupported> {
    let items = match content {
        None => return Ok(vec![]),
        Some(TextOr::Text(s)) => return Ok(vec![Part::Text(s)]),
        Some(TextOr::Parts(items)) => items,
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, p) in items.into_iter().enumerate() {
        let here = format!("{at}[{j}]");
        match p.ty.as_deref() {
            Some("input_text" | "output_text") => {
                parts.push(Part::Text(required(p.text, &format!("{here}.text"))?))
            }
            // What the model refused with is what it said.
            Some("refusal") if role == Role::Assistant => {
                parts.push(Part::Text(required(p.refusal, &format!("{here}.refusal"))?))
            }
            Some("input_image") if role == Role::User => {
                if p.file_id.is_some() {
                    return Err(Unsupported::new(format!("{here}.file_id"), "translated"));
                }
                // `detail` is a resolution hint with no equivalent in the IR;
                // the image itself is kept.
                let url = required(p.image_url, &format!("{here}.image_url"))?;
                parts.push(Part::Image(Image::from_url(&url)));
            }
            Some(other) => return Err(unsupported_value(format!("{here}.type"), other)),
            None => return Err(Unsupported::invalid(format!("{here}.type"), "missing")),
        }
    }
    Ok(parts)
}

/// Function tools. Tools OpenAI runs itself (web search, file search, code
/// interpreter…), tool namespaces and free-form `custom` tools have no
/// equivalent at another provider: they are dropped as hints, and the
/// target's model is offered the app's function tools.
fn decode_tools(tools: Vec<ToolIn>, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        match t.ty.as_deref() {
            Some("function") => {}
            Some(other) => {
                drops.hint(&format!("tools[{i}] ({other})"));
                continue;
            }
            None => return Err(Unsupported::invalid(format!("tools[{i}].type"), "missing")),
        }
        // `strict` asks for the schema to be enforced while sampling: kept
        // for the targets that can (OpenAI chat, Anthropic), named where
        // dropped. Unsaid (this API's default is strict) is not asked for:
        // schemas written for other providers rarely meet the strict rules.
        out.push(Tool {
            name: required(t.name, &format!("tools[{i}].name"))?,
            description: t.description,
            parameters: t.parameters.unwrap_or_else(ir::no_arguments),
            strict: t.strict,
            schema_field: format!("tools[{i}].parameters"),
        });
    }
    Ok(out)
}

fn decode_tool_choice(tc: ToolChoiceIn) -> Result<ToolChoice, Unsupported> {
    match tc {
        ToolChoiceIn::Mode(s) => tool_choice_mode(&s),
        ToolChoiceIn::Object { ty, name } => match ty.as_deref() {
            Some("function") => name
                .map(ToolChoice::Tool)
                .ok_or_else(|| Unsupported::invalid("tool_choice.name", "missing")),
            Some(other) => Err(unsupported_value("tool_choice.type", other)),
            None => Err(Unsupported::invalid("tool_choice.type", "missing")),
        },
    }
}

fn decode_text(text: TextIn, drops: &mut Drops) -> Result<Option<ResponseFormat>, Unsupported> {
    match text.verbosity.as_ref() {
        None => {}
        Some(v) if v.as_str() == Some("medium") => {}
        // How wordy, not what: a hint.
        Some(_) => drops.hint("text.verbosity"),
    }
    if let Some((k, _)) = text.extra.iter().find(|(_, v)| !v.is_null()) {
        return Err(Unsupported::new(format!("text.{k}"), "translated"));
    }
    text.format.map(decode_format).transpose()
}

fn decode_format(f: FormatIn) -> Result<ResponseFormat, Unsupported> {
    let schema = || {
        if f.description
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty())
        {
            return Err(Unsupported::new("text.format.description", "translated"));
        }
        Ok(f.schema)
    };
    response_format(f.ty.as_deref(), schema, "text.format.type")
}

/// A field the item must have.
fn required(v: Option<String>, field: &str) -> Result<String, Unsupported> {
    v.ok_or_else(|| Unsupported::invalid(field, "expected a string"))
}

/// An object whose every field is null (`reasoning: {"effort": null}`) asks for nothing.
fn is_blank(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.values().all(Value::is_null))
}

/// A field whose *value* cannot be translated (a hosted tool, an item kind).
fn unsupported_value(field: impl Into<String>, value: &str) -> Unsupported {
    let field = field.into();
    Unsupported {
        message: format!(
            "`{field}` {value:?} cannot be expressed for a translated provider; remove it or route this model to a provider that supports it"
        ),
        field,
    }
}

/// Texts of a string, or of an array of text parts (system messages).
fn texts_of(v: Option<TextOr<ContentIn>>, field: &str) -> Result<Vec<String>, Unsupported> {
    TextOr::texts(v, field, |p| match p.ty.as_deref() {
        Some("input_text" | "output_text") => Some(p.text.as_deref().unwrap_or_default()),
        _ => None,
    })
}

// ------------------------------------------------------------------ the wire, as the gateway sends it

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    model: &'a str,
    instructions: Option<&'a str>,
    input: Vec<InputOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    tool_choice: Option<ToolChoiceOut<'a>>,
    /// `false` when the app wants one call at a time; else unsaid.
    parallel_tool_calls: Option<bool>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    text: Option<TextOut<'a>>,
    user: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputOut<'a> {
    Message {
        role: &'static str,
        content: MessageContentOut<'a>,
    },
    FunctionCall {
        call_id: &'a str,
        name: &'a str,
        arguments: &'a str,
    },
    FunctionCallOutput {
        call_id: &'a str,
        output: MessageContentOut<'a>,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum MessageContentOut<'a> {
    Text(String),
    Parts(Vec<InputPartOut<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputPartOut<'a> {
    InputText {
        text: &'a str,
    },
    InputImage {
        image_url: String,
        detail: &'static str,
    },
}

/// Function tools are sent non-strict: `strict` defaults to true in this API,
/// and schemas written for other providers rarely meet its rules.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
pub(super) struct ToolOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    name: &'a str,
    parameters: &'a Value,
    strict: bool,
    description: Option<&'a str>,
}

impl<'a> From<&'a Tool> for ToolOut<'a> {
    fn from(t: &'a Tool) -> Self {
        Self {
            ty: "function",
            name: &t.name,
            parameters: &t.parameters,
            strict: t.strict.unwrap_or(false),
            description: t.description.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        ty: &'static str,
        name: &'a str,
    },
}

impl<'a> From<&'a ToolChoice> for ToolChoiceOut<'a> {
    fn from(tc: &'a ToolChoice) -> Self {
        match tc {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode("required"),
            ToolChoice::Tool(n) => Self::Function {
                ty: "function",
                name: n,
            },
        }
    }
}

/// `text`: the output format, the schema inline.
#[derive(Serialize)]
pub(super) struct TextOut<'a> {
    format: FormatOut<JsonSchemaOut<'a>>,
}

impl<'a> From<Option<&'a ResponseFormat>> for TextOut<'a> {
    fn from(rf: Option<&'a ResponseFormat>) -> Self {
        Self {
            format: FormatOut::new(rf, |s| s),
        }
    }
}

// ------------------------------------------------------------------ encode

/// IR → a Responses body (as JSON, for tests and tools).
pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    request_body(req).map(|b| b.to_json())
}

/// IR → the body sent upstream.
pub(super) fn request_body(req: &ChatRequest) -> Result<RequestOut<'_>, Unsupported> {
    if req.top_k.is_some() {
        return Err(Unsupported::new("top_k", TARGET));
    }
    if !req.stop.is_empty() {
        return Err(Unsupported::new(req.stop_field(), TARGET));
    }
    req.refuse_seed_and_penalties(TARGET)?;
    let mut input = Vec::new();
    let instructions = match req.system.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        many => {
            input.extend(many.iter().map(|s| InputOut::Message {
                role: "system",
                content: MessageContentOut::Text(s.clone()),
            }));
            None
        }
    };
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::User => user_items(m, i, &mut input)?,
            Role::Assistant => assistant_items(m, i, &mut input)?,
        }
    }
    Ok(RequestOut {
        model: &req.model,
        instructions,
        input,
        tools: req.tools.iter().map(ToolOut::from).collect(),
        tool_choice: req.tool_choice.as_ref().map(ToolChoiceOut::from),
        parallel_tool_calls: (req.serial_tool_calls && !req.tools.is_empty()).then_some(false),
        max_output_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        text: req
            .response_format
            .as_ref()
            .map(|rf| TextOut::from(Some(rf))),
        user: req.user.as_deref().map(end_user_id),
        stream: req.stream,
    })
}

/// A user turn: its content as messages, its tool results as
/// `function_call_output` items between them.
fn user_items<'a>(
    m: &'a Message,
    i: usize,
    input: &mut Vec<InputOut<'a>>,
) -> Result<(), Unsupported> {
    for run in m.user_runs(i)? {
        input.push(match run {
            UserRun::Content(c) => InputOut::Message {
                role: "user",
                content: MessageContentOut::Parts(c.into_iter().filter_map(input_part).collect()),
            },
            UserRun::Result {
                id,
                content,
                is_error,
            } => InputOut::FunctionCallOutput {
                call_id: id,
                output: tool_output(content, is_error, i)?,
            },
        });
    }
    Ok(())
}

/// An assistant turn: its text as messages, its calls as `function_call`
/// items between them.
fn assistant_items<'a>(
    m: &'a Message,
    i: usize,
    input: &mut Vec<InputOut<'a>>,
) -> Result<(), Unsupported> {
    for run in m.assistant_runs(i)? {
        input.push(match run {
            // Empty text makes no message.
            AssistantRun::Text(t) if t.is_empty() => continue,
            AssistantRun::Text(t) => InputOut::Message {
                role: "assistant",
                content: MessageContentOut::Text(t),
            },
            AssistantRun::Call {
                id,
                name,
                arguments,
            } => InputOut::FunctionCall {
                call_id: id,
                name,
                arguments,
            },
        });
    }
    Ok(())
}

fn input_part(p: &Part) -> Option<InputPartOut<'_>> {
    match p {
        Part::Text(text) | Part::Refusal(text) => Some(InputPartOut::InputText { text }),
        Part::Image(img) => Some(image(img)),
        _ => None,
    }
}

fn image(img: &Image) -> InputPartOut<'_> {
    InputPartOut::InputImage {
        image_url: img.url(),
        detail: "auto",
    }
}

/// A tool result as `function_call_output.output`: a string when it is all
/// text, else a list of input parts.
fn tool_output(
    content: &[Part],
    is_error: bool,
    i: usize,
) -> Result<MessageContentOut<'_>, Unsupported> {
    let prefix = if is_error { "Error: " } else { "" };
    if content.iter().all(|p| matches!(p, Part::Text(_))) {
        let text = content
            .iter()
            .filter_map(Part::text)
            .collect::<Vec<_>>()
            .join("\n");
        return Ok(MessageContentOut::Text(format!("{prefix}{text}")));
    }
    let mut parts = Vec::new();
    if is_error {
        parts.push(InputPartOut::InputText { text: "Error:" });
    }
    for c in content {
        parts.push(match c {
            Part::Text(t) => InputPartOut::InputText { text: t },
            Part::Image(img) => image(img),
            _ => {
                return Err(Unsupported::invalid(
                    format!("messages[{i}].tool_result.content"),
                    "only text and images",
                ));
            }
        });
    }
    Ok(MessageContentOut::Parts(parts))
}
