//! IR requests → chat completions bodies, in the provider's dialect, and
//! the tool calls answers share with them.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::dialect::Dialect;
use super::tool_descriptions::{description_out, system_messages};
use super::{FormatOut, JsonSchemaOut, TARGET, end_user_id};
use crate::translate::ir::{
    self, AssistantRun, ChatRequest, Image, Message, Part, ResponseFormat, Role, ToolChoice,
    Unsupported, UserRun,
};
use crate::translate::wire::{Body, is_false};

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
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
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
    strict: Option<bool>,
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
    if let Some(most) = dialect.max_stop {
        req.check_stop_count(most, "OpenAI")?;
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
    if matches!(req.response_format, Some(ResponseFormat::JsonObject)) && !says_json(req) {
        // OpenAI refuses JSON mode unless the messages say "json" (400),
        // which a Gemini app's `responseMimeType` alone never does.
        messages.insert(
            0,
            MessageOut::System {
                content: Cow::Borrowed("Answer in JSON."),
            },
        );
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
                    // Only `true` is said: not strict is the default, and
                    // some compatible vendors know no `strict`.
                    strict: t.strict.filter(|s| *s),
                },
            })
            .collect(),
        // OpenAI answers 400 to a `tool_choice` without `tools`, which an
        // app whose only tools were hosted ones left out (web search) sends
        // with `auto` or `none`: with no tools those say nothing.
        tool_choice: req.tool_choice.as_ref().and_then(|tc| match tc {
            ToolChoice::Auto | ToolChoice::None if req.tools.is_empty() => None,
            tc => Some(tc),
        }).map(|tc| match tc {
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
        seed: req.seed.map(|s| s.value),
        presence_penalty: req.presence_penalty.map(|p| p.value),
        frequency_penalty: req.frequency_penalty.map(|p| p.value),
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
        Part::Text(text) | Part::Refusal(text) => Some(PartOut::Text {
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

/// Whether the request's text says "json" anywhere, as OpenAI's JSON mode
/// requires of the messages.
fn says_json(req: &ChatRequest) -> bool {
    let has = |t: &str| t.to_ascii_lowercase().contains("json");
    req.system.iter().any(|s| has(s))
        || req.messages.iter().any(|m| {
            m.content
                .iter()
                .any(|p| matches!(p, Part::Text(t) if has(t)))
        })
}
