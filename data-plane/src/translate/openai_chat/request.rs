//! Chat completions request bodies ⇄ IR requests.

use std::borrow::Cow;

use aigw_proto::model::ProviderKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    FormatOut, JsonSchemaIn, JsonSchemaOut, MISSING_MODEL, POLICY, TARGET, end_user_id,
    response_format, tool_choice_mode,
};
use crate::translate::ir::{
    self, AssistantRun, ChatRequest, Drops, Effort, Image, Message, Part, ResponseFormat, Role,
    Thinking, ThinkingAmount, Tool, ToolChoice, Unsupported, UserRun,
};
use crate::translate::wire::{self, Body, Extra, TextOr, is_false, whole_number};

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
    /// The legacy single call: refused.
    function_call: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct PartIn {
    #[serde(rename = "type")]
    ty: Option<String>,
    text: Option<String>,
    image_url: Option<ImageUrlIn>,
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
}

#[derive(Deserialize)]
struct FunctionIn {
    name: Option<String>,
    description: Option<String>,
    /// Absent: no arguments; an explicit `null` is kept as the app sent it.
    #[serde(default = "ir::no_arguments")]
    parameters: Value,
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
        req.tools = decode_tools(tools, &mut req.dropped)?;
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
/// policy says it is (a penalty, logprobs or a bias would change the answer
/// and is refused).
fn is_default(name: &str, v: &Value) -> bool {
    match name {
        "n" => whole_number(v) == Some(1),
        "presence_penalty" | "frequency_penalty" => v.as_f64() == Some(0.0),
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
    match m.role.as_deref().unwrap_or("") {
        "system" | "developer" => req.system.push(text_of(m.content, &at("content"))?),
        "user" => {
            let content = decode_user_content(m.content, &at("content"))?;
            req.messages.push(Message {
                role: Role::User,
                content,
            });
        }
        "assistant" => {
            let mut parts = Vec::new();
            if m.content.is_some() {
                let t = text_of(m.content, &at("content"))?;
                if !t.is_empty() {
                    parts.push(Part::Text(t));
                }
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
                parts @ Some(TextOr::Parts(_)) => vec![Part::Text(text_of(parts, &at("content"))?)],
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
pub(super) fn tool_call(c: ToolCallIn) -> Part {
    let (name, arguments) = match c.function {
        Some(f) => (f.name, f.arguments),
        None => (None, None),
    };
    Part::ToolCall {
        id: c.id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        arguments: arguments.unwrap_or_else(|| "{}".to_string()),
    }
}

/// Text of a string, or of an array of `{type: text}` parts joined.
fn text_of(v: Option<TextOr<PartIn>>, field: &str) -> Result<String, Unsupported> {
    TextOr::joined(v, field, |p| {
        (p.ty.as_deref() == Some("text")).then(|| p.text.as_deref().unwrap_or_default())
    })
}

/// Function tools; `custom` (free-form) tools have no equivalent elsewhere
/// and are dropped as hints, so the target's model is offered the rest.
fn decode_tools(tools: Vec<ToolIn>, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
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
        out.push(Tool {
            name: f.name.unwrap_or_default(),
            description: f.description,
            parameters: f.parameters,
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

// ------------------------------------------------------------------ the wire, as the gateway sends it

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    tool_choice: Option<ToolChoiceOut<'a>>,
    /// `false` when the app wants one call at a time; else unsaid (OpenAI
    /// refuses it without tools).
    parallel_tool_calls: Option<bool>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    response_format: Option<FormatOut<Nested<'a>>>,
    user: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
    stream_options: Option<IncludeUsage>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum MessageOut<'a> {
    System {
        /// The app's instructions; the last one may carry the tools' whole
        /// descriptions (see [`description_out`]).
        content: Cow<'a, str>,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        /// `null` when the turn is only calls.
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCallOut<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<PartOut<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartOut<'a> {
    /// The app's text, or the gateway's own (which tool call images came from).
    Text {
        text: Cow<'a, str>,
    },
    ImageUrl {
        image_url: UrlOut,
    },
}

#[derive(Serialize)]
struct UrlOut {
    url: String,
}

/// A call in a request or an answer.
#[derive(Serialize)]
pub(super) struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub function: FunctionCallOut<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionCallOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

impl<'a> ToolCallOut<'a> {
    pub fn new(id: &'a str, name: &'a str, arguments: &'a str) -> Self {
        Self {
            id,
            ty: "function",
            function: FunctionCallOut { name, arguments },
        }
    }
}

#[derive(Serialize)]
struct ToolOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    function: FunctionOut<'a>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    parameters: &'a Value,
    description: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        ty: &'static str,
        function: NameOut<'a>,
    },
}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

/// Chat nests the schema under `json_schema`.
#[derive(Serialize)]
struct Nested<'a> {
    json_schema: JsonSchemaOut<'a>,
}

#[derive(Serialize)]
struct IncludeUsage {
    include_usage: bool,
}

// ------------------------------------------------------------------ encode

/// IR → a chat completions body (as JSON, for tests and tools).
pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    request_body(req).map(|b| b.to_json())
}

/// What a provider of the chat format takes beyond the ground every vendor
/// shares. OpenAI and the compatible vendors speak one format, but OpenAI
/// has moved on where the vendors have not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Dialect {
    /// The cap goes as `max_completion_tokens`: OpenAI refuses `max_tokens`
    /// for its reasoning models (400 `unsupported_parameter`) and takes
    /// `max_completion_tokens` for every chat model, while vLLM, DeepSeek,
    /// Mistral and most other vendors know only `max_tokens`.
    completion_tokens: bool,
    /// `temperature` and `top_p` are left out: OpenAI's reasoning models take
    /// only the default 1 (400 `unsupported_value` for anything else), and
    /// apps such as Gemini CLI always send both.
    fixed_sampling: bool,
    /// The model's most output tokens, where known: OpenAI refuses a larger
    /// cap (400 `invalid_value`, "max_tokens is too large") where Anthropic
    /// and Gemini take their own models' larger ones, and Claude Code always
    /// asks for 32,000. The cap sent is the smaller of the two: the app asked
    /// for at most that many, and the model can give no more.
    max_output: Option<u64>,
    /// `parallel_tool_calls` is left out: OpenAI's o-series refuses it (400
    /// `unsupported_parameter`, "'parallel_tool_calls' is not supported with
    /// this model"), so one call at a time is a hint there.
    no_parallel_setting: bool,
}

impl Dialect {
    /// The dialect of a provider of `kind` serving `model` (the provider's
    /// name for it).
    pub fn of(kind: ProviderKind, model: &str) -> Self {
        match kind {
            ProviderKind::OpenAi => Self {
                completion_tokens: true,
                fixed_sampling: is_reasoning_model(model),
                max_output: max_output_tokens(model),
                no_parallel_setting: is_o_series(model),
            },
            _ => Self::default(),
        }
    }

    /// Leaves out of `req` what the dialect refuses: a sampling setting
    /// other than the default, and one call at a time where there are tools
    /// to call, are hints (dropped on lenient routes, refused on strict
    /// ones); the default itself goes unsaid.
    pub fn leave_out(self, req: &mut ChatRequest) {
        if self.no_parallel_setting
            && std::mem::take(&mut req.serial_tool_calls)
            && !req.tools.is_empty()
        {
            req.dropped.hint("parallel_tool_calls");
        }
        if !self.fixed_sampling {
            return;
        }
        for (field, value) in [
            ("temperature", &mut req.temperature),
            ("top_p", &mut req.top_p),
        ] {
            if value.take().is_some_and(|v| v != 1.0) {
                req.dropped.hint(field);
            }
        }
    }
}

/// Output limits of OpenAI's chat models, by name prefix (most specific
/// first), from OpenAI's model pages; a model not listed is sent the app's
/// cap as it is.
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("gpt-5-chat", 16_384),
    ("gpt-5", 128_000),
    ("gpt-4.1", 32_768),
    ("gpt-4o-2024-05-13", 4_096),
    ("gpt-4o", 16_384),
    ("chatgpt-4o", 16_384),
    ("gpt-4-turbo", 4_096),
    ("gpt-4-1106", 4_096),
    ("gpt-4-0125", 4_096),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 4_096),
    ("o1-mini", 65_536),
    ("o1", 100_000),
    ("o3", 100_000),
    ("o4-mini", 100_000),
];

/// The most output tokens OpenAI's `model` gives, if known (a fine-tune is
/// its base model).
pub(super) fn max_output_tokens(model: &str) -> Option<u64> {
    let m = model
        .strip_prefix("ft:")
        .unwrap_or(model)
        .to_ascii_lowercase();
    MAX_OUTPUT
        .iter()
        .find(|(prefix, _)| m.starts_with(prefix))
        .map(|(_, max)| *max)
}

/// OpenAI's reasoning models by name: the o-series and the gpt-5 family,
/// but for its chat models (`gpt-5-chat-latest`), which sample like
/// gpt-4o. A fine-tune (`ft:o4-mini-…:org::id`) is its base model.
pub(super) fn is_reasoning_model(model: &str) -> bool {
    let m = base_model(model);
    if m.starts_with("gpt-5") {
        return !m.starts_with("gpt-5-chat");
    }
    is_o_series(&m)
}

/// OpenAI's o-series (o1, o3, o4-mini…) by name.
fn is_o_series(model: &str) -> bool {
    let m = base_model(model);
    ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
}

/// The model's name, lowercase, a fine-tune's (`ft:o4-mini-…:org::id`) as
/// its base model's.
fn base_model(model: &str) -> String {
    model
        .strip_prefix("ft:")
        .unwrap_or(model)
        .to_ascii_lowercase()
}

/// IR → the body sent to an OpenAI-compatible vendor (the format's common
/// ground; see [`Dialect`]).
pub(super) fn request_body(req: &ChatRequest) -> Result<RequestOut<'_>, Unsupported> {
    request_body_in(req, Dialect::default())
}

/// IR → the body sent upstream, in the provider's dialect (what it refuses
/// already left out by [`Dialect::leave_out`]).
pub(super) fn request_body_in(
    req: &ChatRequest,
    dialect: Dialect,
) -> Result<RequestOut<'_>, Unsupported> {
    if req.top_k.is_some() {
        return Err(Unsupported::new("top_k", TARGET));
    }
    let cap = match (req.max_tokens, dialect.max_output) {
        (Some(asked), Some(most)) => Some(asked.min(most)),
        (asked, _) => asked,
    };
    let mut messages: Vec<MessageOut<'_>> = system_messages(req)
        .into_iter()
        .map(|content| MessageOut::System { content })
        .collect();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::User => user_messages(m, i, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(m, i)?),
        }
    }
    Ok(RequestOut {
        model: &req.model,
        messages,
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                ty: "function",
                function: FunctionOut {
                    name: &t.name,
                    parameters: &t.parameters,
                    description: t.description.as_deref().map(description_out),
                },
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().map(|tc| match tc {
            ToolChoice::Auto => ToolChoiceOut::Mode("auto"),
            ToolChoice::None => ToolChoiceOut::Mode("none"),
            ToolChoice::Required => ToolChoiceOut::Mode("required"),
            ToolChoice::Tool(n) => ToolChoiceOut::Function {
                ty: "function",
                function: NameOut { name: n },
            },
        }),
        parallel_tool_calls: (req.serial_tool_calls && !req.tools.is_empty()).then_some(false),
        max_tokens: cap.filter(|_| !dialect.completion_tokens),
        max_completion_tokens: cap.filter(|_| dialect.completion_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: &req.stop,
        response_format: req
            .response_format
            .as_ref()
            .map(|rf| FormatOut::new(Some(rf), |json_schema| Nested { json_schema })),
        user: req.user.as_deref().map(end_user_id),
        stream: req.stream,
        // The gateway always needs the counts, whatever the app asked for.
        stream_options: req.stream.then_some(IncludeUsage {
            include_usage: true,
        }),
    })
}

/// Longest `tools[].function.description` OpenAI takes: a longer one is
/// refused (400 `string_above_max_length`, gpt-4o, o3-mini and others),
/// and Claude Code's run to several thousand characters.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// What ends a description cut to [`MAX_DESCRIPTION_CHARS`].
const CUT_MARKER: &str = " … (see the system message)";

/// What opens the section of the system message that holds the whole of
/// the descriptions cut.
const WHOLE_DESCRIPTIONS: &str = "# Tool descriptions\n\nThe descriptions of these tools are cut short in the tool list; here they are in full.";

/// Past [`MAX_DESCRIPTION_CHARS`] (counted as OpenAI counts: characters).
fn is_too_long(description: &str) -> bool {
    description.len() > MAX_DESCRIPTION_CHARS && description.chars().count() > MAX_DESCRIPTION_CHARS
}

/// A tool's description as OpenAI takes it: as it is, or, when too long,
/// cut at a character boundary to [`MAX_DESCRIPTION_CHARS`] ending with
/// [`CUT_MARKER`]; the whole of it then goes in the system message (see
/// [`system_messages`]), so the model loses none of the app's guidance.
fn description_out(description: &str) -> Cow<'_, str> {
    if !is_too_long(description) {
        return Cow::Borrowed(description);
    }
    let keep = MAX_DESCRIPTION_CHARS - CUT_MARKER.chars().count();
    let end = description
        .char_indices()
        .nth(keep)
        .map_or(description.len(), |(at, _)| at);
    let head = description.get(..end).unwrap_or_default().trim_end();
    Cow::Owned(format!("{head}{CUT_MARKER}"))
}

/// The app's system instructions, one message each, the last followed by
/// the whole descriptions of the tools [`description_out`] cut, a heading
/// per tool in the tools' order (a message of its own when the app gave no
/// instructions). The same tools give the same text, so the prompt's cached
/// prefix holds from one turn to the next.
fn system_messages(req: &ChatRequest) -> Vec<Cow<'_, str>> {
    let mut system: Vec<Cow<'_, str>> = req
        .system
        .iter()
        .map(|s| Cow::Borrowed(s.as_str()))
        .collect();
    let mut whole = String::new();
    for t in &req.tools {
        if let Some(d) = t.description.as_deref().filter(|d| is_too_long(d)) {
            if whole.is_empty() {
                whole.push_str(WHOLE_DESCRIPTIONS);
            }
            whole.push_str("\n\n## Tool `");
            whole.push_str(&t.name);
            whole.push_str("`\n\n");
            whole.push_str(d);
        }
    }
    if whole.is_empty() {
        return system;
    }
    match system.last_mut() {
        Some(last) => {
            let last = last.to_mut();
            last.push_str("\n\n");
            last.push_str(&whole);
        }
        None => system.push(Cow::Owned(whole)),
    }
    system
}

/// A user turn: its tool results as `tool` messages first, then the rest as
/// one `user` message.
///
/// A `tool` message holds text only, so a result's images (Claude Code's
/// Read tool on a picture, screenshot tools, Codex's `input_image` outputs)
/// go in that `user` message, each result's behind a line naming its call:
/// OpenAI wants every `tool` message answering one assistant message
/// straight after it, so the images cannot sit between them. The message
/// keeps the turn's order (its content before a result stays before that
/// result's images); a turn of text-only results is sent as it always was.
fn user_messages<'a>(
    m: &'a Message,
    i: usize,
    out: &mut Vec<MessageOut<'a>>,
) -> Result<(), Unsupported> {
    let mut parts = Vec::new();
    for run in m.user_runs(i)? {
        match run {
            UserRun::Result {
                id,
                content,
                is_error,
            } => {
                let result = ir::result_content(content, i, TARGET)?;
                let content = if is_error {
                    format!("Error: {}", result.text)
                } else {
                    result.text
                };
                out.push(MessageOut::Tool {
                    tool_call_id: id,
                    content,
                });
                if !result.images.is_empty() {
                    parts.push(PartOut::Text {
                        text: Cow::Owned(format!("Images returned by tool call {id}:")),
                    });
                    parts.extend(result.images.into_iter().map(image_part));
                }
            }
            UserRun::Content(c) => parts.extend(c.into_iter().filter_map(part_out)),
        }
    }
    let content = match <[PartOut<'_>; 1]>::try_from(parts) {
        Ok([PartOut::Text { text }]) => UserContent::Text(text),
        Ok(one) => UserContent::Parts(one.into()),
        Err(parts) if parts.is_empty() => return Ok(()),
        Err(parts) => UserContent::Parts(parts),
    };
    out.push(MessageOut::User { content });
    Ok(())
}

fn part_out(p: &Part) -> Option<PartOut<'_>> {
    match p {
        Part::Text(text) => Some(PartOut::Text {
            text: Cow::Borrowed(text),
        }),
        Part::Image(img) => Some(image_part(img)),
        _ => None,
    }
}

/// An image as an `image_url` part: inline images as `data:` URLs.
fn image_part(img: &Image) -> PartOut<'_> {
    PartOut::ImageUrl {
        image_url: UrlOut { url: img.url() },
    }
}

/// An assistant turn: its text joined, its calls beside it.
fn assistant_message(m: &Message, i: usize) -> Result<MessageOut<'_>, Unsupported> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for run in m.assistant_runs(i)? {
        match run {
            AssistantRun::Text(t) => text.push_str(&t),
            AssistantRun::Call {
                id,
                name,
                arguments,
            } => tool_calls.push(ToolCallOut::new(id, name, arguments)),
        }
    }
    Ok(MessageOut::Assistant {
        content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
        tool_calls,
    })
}
