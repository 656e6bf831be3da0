//! The Response object ⇄ IR answers, and the output items answers and
//! streams are built from.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::{TextOut, ToolChoiceOut, ToolOut};
use super::{Details, UsageOut, WireUsage, fc_id, msg_id, resp_id, status_of, stop_from};
use crate::translate::ids;
use crate::translate::ir::{
    ChatRequest, ChatResponse, Part, ResponseFormat, StopReason, Tool, ToolChoice, Unsupported,
};
use crate::translate::openai_chat::stop_beside;
use crate::translate::wire::{self, Body, Object};

// ------------------------------------------------------------------ the wire, as OpenAI answers

/// A Response object: a whole answer, or the one a stream's events carry
/// (whose `output` the decoder skips: it has read the items already).
#[derive(Deserialize)]
pub(super) struct ResponseIn<O = IgnoredAny> {
    pub id: Option<String>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub incomplete_details: Option<Details>,
    #[serde(default)]
    pub usage: Object<WireUsage>,
    pub error: Option<Value>,
    output: Option<O>,
}

impl<O> ResponseIn<O> {
    pub fn stop(&self, called: bool) -> Option<StopReason> {
        let reason = self
            .incomplete_details
            .as_ref()
            .and_then(|d| d.reason.as_deref());
        stop_from(self.status.as_deref(), reason, called)
    }
}

/// An output item (answers and stream events alike).
#[derive(Deserialize)]
pub(super) struct ItemIn {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub id: Option<String>,
    pub call_id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
    pub content: Option<Vec<OutputPartIn>>,
}

#[derive(Deserialize)]
pub(super) struct OutputPartIn {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub text: Option<String>,
    pub refusal: Option<String>,
}

impl OutputPartIn {
    /// The IR part: text, or a refusal; `None` for an empty or unknown part.
    pub fn part(&self) -> Option<Part> {
        let (text, refusal) = match self.ty.as_deref() {
            Some("output_text") => (self.text.as_deref(), false),
            Some("refusal") => (self.refusal.as_deref(), true),
            _ => return None,
        };
        let t = text.filter(|t| !t.is_empty())?.to_string();
        Some(if refusal {
            Part::Refusal(t)
        } else {
            Part::Text(t)
        })
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: ResponseIn<Vec<ItemIn>> = wire::parse(body, "response")?;
    if let Some(err) = v.error.as_ref().filter(|e| !e.is_null()) {
        let message = wire::error_message(Some(err), "the response failed");
        return Err(Unsupported::invalid("response.error", message));
    }
    if let Some(e) = wire::not_an_answer(None, v.output.is_some(), "output") {
        return Err(e);
    }
    let mut content = Vec::new();
    for item in v.output.iter().flatten() {
        match item.ty.as_deref() {
            Some("message") => {
                content.extend(item.content.iter().flatten().filter_map(|c| c.part()))
            }
            Some("function_call") => content.push(Part::ToolCall {
                id: item.call_id.clone().unwrap_or_default(),
                name: item.name.clone().unwrap_or_default(),
                arguments: item.arguments.clone().unwrap_or_else(|| "{}".to_string()),
            }),
            // Reasoning items are the model's scratchpad (counted in usage);
            // hosted-tool items never occur since hosted tools are refused.
            _ => {}
        }
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let refused = content.iter().any(|p| matches!(p, Part::Refusal(_)));
    // A refusal stops as a content filter's, as a chat completion's does.
    let stop = if refused {
        StopReason::refused(v.stop(called))
    } else {
        v.stop(called)
    };
    Ok(ChatResponse {
        id: v.id.unwrap_or_default(),
        model: v.model.unwrap_or_default(),
        content,
        stop,
        usage: v.usage.0.map(Into::into).unwrap_or_default(),
    })
}

// ------------------------------------------------------------------ the wire, as the gateway answers

/// An output item.
#[derive(Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Item {
    Message {
        id: String,
        status: &'static str,
        content: Vec<OutputPart<'static>>,
        role: &'static str,
    },
    FunctionCall {
        id: String,
        status: &'static str,
        arguments: String,
        call_id: String,
        name: String,
    },
}

impl Item {
    /// A message item (in progress, it has no content part yet).
    pub fn message(id: String, content: Vec<OutputPart<'static>>, status: &'static str) -> Self {
        Self::Message {
            id,
            status,
            content,
            role: "assistant",
        }
    }

    pub fn call(
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: &'static str,
    ) -> Self {
        Self::FunctionCall {
            id,
            status,
            arguments,
            call_id,
            name,
        }
    }

    pub fn set_status(&mut self, s: &'static str) {
        match self {
            Self::Message { status, .. } | Self::FunctionCall { status, .. } => *status = s,
        }
    }
}

/// A message's content part: `output_text`, or `refusal` (what the model
/// refused with, which the API keeps apart from the text).
#[derive(Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutputPart<'a> {
    OutputText {
        annotations: [(); 0],
        logprobs: [(); 0],
        text: Cow<'a, str>,
    },
    Refusal {
        refusal: Cow<'a, str>,
    },
}

impl<'a> OutputPart<'a> {
    /// A part of text, or (`refusal`) a refusal.
    pub fn new(refusal: bool, text: impl Into<Cow<'a, str>>) -> Self {
        let text = text.into();
        if refusal {
            Self::Refusal { refusal: text }
        } else {
            Self::OutputText {
                annotations: [],
                logprobs: [],
                text,
            }
        }
    }

    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refusal { .. })
    }

    /// Its text (a refusal's words).
    pub fn text(&self) -> &str {
        match self {
            Self::OutputText { text, .. } => text,
            Self::Refusal { refusal } => refusal,
        }
    }

    pub fn push_str(&mut self, more: &str) {
        match self {
            Self::OutputText { text, .. } => text.to_mut().push_str(more),
            Self::Refusal { refusal } => refusal.to_mut().push_str(more),
        }
    }
}

/// Adds text (or a refusal's) to a message's parts: to the last part when
/// it is of the same kind, else as a new part.
pub(super) fn push_content(parts: &mut Vec<OutputPart<'static>>, refusal: bool, text: &str) {
    match parts.last_mut() {
        Some(last) if last.is_refusal() == refusal => last.push_str(text),
        _ => parts.push(OutputPart::new(refusal, text.to_string())),
    }
}

/// A Response object, as the gateway writes it.
#[derive(Serialize)]
pub(super) struct ResponseOut<'a> {
    id: Cow<'a, str>,
    object: &'static str,
    created_at: u64,
    pub status: &'static str,
    background: bool,
    pub completed_at: Option<u64>,
    pub error: Option<FailureOut<'a>>,
    pub incomplete_details: Option<Details>,
    instructions: Option<&'a str>,
    max_output_tokens: Option<u64>,
    max_tool_calls: Option<u64>,
    model: &'a str,
    pub output: Cow<'a, [Item]>,
    parallel_tool_calls: bool,
    previous_response_id: Option<&'a str>,
    reasoning: ReasoningOut,
    store: bool,
    temperature: Option<f64>,
    text: TextOut<'a>,
    tool_choice: ToolChoiceOut<'a>,
    tools: Vec<ToolOut<'a>>,
    top_logprobs: u32,
    top_p: Option<f64>,
    truncation: &'static str,
    pub usage: Option<UsageOut>,
    user: Option<&'a str>,
    metadata: Empty,
}

/// Why a Response failed.
#[derive(Serialize)]
pub(super) struct FailureOut<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

#[derive(Serialize)]
struct ReasoningOut {
    effort: Option<()>,
    summary: Option<()>,
}

#[derive(Serialize)]
struct Empty {}

/// What the app asked for, echoed in the Response object as the API does.
pub(super) struct Echo {
    instructions: Option<String>,
    tools: Vec<Tool>,
    tool_choice: ToolChoice,
    response_format: Option<ResponseFormat>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_output_tokens: Option<u64>,
    user: Option<String>,
}

/// What a whole answer echoes: the request is not at hand, so the defaults.
static NO_ECHO: Echo = Echo {
    instructions: None,
    tools: Vec::new(),
    tool_choice: ToolChoice::Auto,
    response_format: None,
    temperature: None,
    top_p: None,
    max_output_tokens: None,
    user: None,
};

impl Echo {
    pub fn of(req: &ChatRequest) -> Self {
        Self {
            instructions: (!req.system.is_empty()).then(|| req.system.join("\n\n")),
            tools: req.tools.clone(),
            tool_choice: req.tool_choice.clone().unwrap_or(ToolChoice::Auto),
            response_format: req.response_format.clone(),
            temperature: req.temperature,
            top_p: req.top_p,
            max_output_tokens: req.max_tokens,
            user: req.user.clone(),
        }
    }

    /// A Response object in progress with `output`; callers set `status`,
    /// `usage` and the details when it ends.
    pub fn response<'a>(
        &'a self,
        id: impl Into<Cow<'a, str>>,
        model: &'a str,
        created_at: u64,
        output: impl Into<Cow<'a, [Item]>>,
    ) -> ResponseOut<'a> {
        ResponseOut {
            id: id.into(),
            object: "response",
            created_at,
            status: "in_progress",
            background: false,
            completed_at: None,
            error: None,
            incomplete_details: None,
            instructions: self.instructions.as_deref(),
            max_output_tokens: self.max_output_tokens,
            max_tool_calls: None,
            model,
            output: output.into(),
            parallel_tool_calls: true,
            previous_response_id: None,
            reasoning: ReasoningOut {
                effort: None,
                summary: None,
            },
            store: false,
            temperature: self.temperature,
            text: TextOut::from(self.response_format.as_ref()),
            tool_choice: ToolChoiceOut::from(&self.tool_choice),
            tools: self.tools.iter().map(ToolOut::from).collect(),
            top_logprobs: 0,
            top_p: self.top_p,
            truncation: "disabled",
            usage: None,
            user: self.user.as_deref(),
            metadata: Empty {},
        }
    }
}

/// The answer's output items: consecutive text and refusal parts make one
/// message item (text in a row one `output_text` part, a refusal a
/// `refusal` part); each call is its own item. The item a limit cut short
/// is the last one.
fn output_items(resp: &ChatResponse, id: &str, status: &'static str) -> Vec<Item> {
    let mut output: Vec<Item> = Vec::new();
    let mut parts: Vec<OutputPart<'static>> = Vec::new();
    let mut messages = 0;
    let flush =
        |parts: &mut Vec<OutputPart<'static>>, output: &mut Vec<Item>, messages: &mut usize| {
            if !parts.is_empty() {
                let item = Item::message(msg_id(id, *messages), std::mem::take(parts), "completed");
                output.push(item);
                *messages += 1;
            }
        };
    for p in &resp.content {
        match p {
            Part::Text(t) if !t.is_empty() => push_content(&mut parts, false, t),
            Part::Refusal(t) if !t.is_empty() => push_content(&mut parts, true, t),
            Part::ToolCall {
                id: call_id,
                name,
                arguments,
            } => {
                flush(&mut parts, &mut output, &mut messages);
                let item_id = fc_id(id, call_id, output.len());
                let item = Item::call(
                    item_id,
                    call_id.clone(),
                    name.clone(),
                    arguments.clone(),
                    "completed",
                );
                output.push(item);
            }
            _ => {}
        }
    }
    flush(&mut parts, &mut output, &mut messages);
    if status == "incomplete"
        && let Some(last) = output.last_mut()
    {
        last.set_status("incomplete");
    }
    output
}

/// IR → the body the app receives. A refusal is a `refusal` part of a
/// message, and the response it ends is `completed`, as OpenAI's is.
pub(super) fn answer_body(resp: &ChatResponse) -> ResponseOut<'_> {
    let id = resp_id(&resp.id);
    let created_at = ids::now_secs();
    let refused = resp.content.iter().any(|p| matches!(p, Part::Refusal(_)));
    let (status, details) = status_of(resp.stop.map(|s| stop_beside(refused, s)));
    let output = output_items(resp, &id, status);
    let mut r = NO_ECHO.response(id, &resp.model, created_at, output);
    r.status = status;
    if status == "completed" {
        r.completed_at = Some(created_at);
    }
    r.incomplete_details = details;
    r.usage = Some(UsageOut::from(&resp.usage));
    r
}

/// IR → a Response object (as JSON, for tests and tools).
pub fn encode_response(resp: &ChatResponse) -> Value {
    answer_body(resp).to_json()
}
