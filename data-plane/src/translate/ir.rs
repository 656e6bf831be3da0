//! The gateway's own model of a chat exchange, the hub every translation
//! goes through: app format → IR → provider format, and back. It is as rich
//! as the union of what the three formats can say about a conversation, so a
//! field is lost only when the *target* cannot express it, and then the
//! encoder refuses with a 400 naming the field instead of dropping it.

use serde_json::Value;

use crate::usage::Usage;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    /// System instructions, in order (OpenAI system/developer messages,
    /// Anthropic `system`, Gemini `systemInstruction`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Anthropic and Gemini only.
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// The app asked for usage in the stream (OpenAI `include_usage`).
    pub stream_usage: bool,
    /// OpenAI `response_format` / Gemini `responseMimeType`+`responseSchema`.
    pub response_format: Option<ResponseFormat>,
    /// Advisory end-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A call the assistant made. `arguments` is JSON text, as OpenAI carries it.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The app's answer to a call, in a user turn.
    ToolResult {
        id: String,
        /// Known in Gemini and Anthropic-from-context; encoders that need it
        /// look it up from the matching earlier `ToolCall` when absent.
        name: Option<String>,
        content: Vec<Part>,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    Url(String),
    Base64 { media_type: String, data: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool.
    Required,
    /// Must call this tool.
    Tool(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    ContentFilter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Text and tool calls, in order.
    pub content: Vec<Part>,
    pub stop: Option<StopReason>,
    pub usage: Usage,
}

/// One step of a streamed answer. Decoders turn a provider's events into
/// these; encoders turn them into the app's events. Tool calls are numbered
/// from 0 in the order they start.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
    },
    TextDelta(String),
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: u32,
        arguments: String,
    },
    /// Usage so far; the last one is the total (decoders turn cumulative or
    /// split reports into totals, so nothing is summed twice).
    Usage(Usage),
    Finish(StopReason),
    /// An error the provider reported mid-stream.
    Error {
        message: String,
    },
}

/// A translation refused: the field is named so the app can fix the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Unsupported {
    pub field: String,
    pub message: String,
}

impl Unsupported {
    pub fn new(field: impl Into<String>, target: &str) -> Self {
        let field = field.into();
        Self {
            message: format!(
                "`{field}` cannot be expressed for a {target} provider; remove it or route this model to a provider that supports it"
            ),
            field,
        }
    }

    /// The source request itself is malformed at `field`.
    pub fn invalid(field: impl Into<String>, why: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            message: format!("invalid `{field}`: {why}"),
            field,
        }
    }
}

impl ChatRequest {
    /// Adds a tool result as the app's turn: consecutive results answer one
    /// assistant turn together, so they share one user message.
    pub fn push_tool_result(&mut self, part: Part) {
        match self.messages.last_mut() {
            Some(last)
                if last.role == Role::User
                    && last
                        .content
                        .iter()
                        .all(|p| matches!(p, Part::ToolResult { .. })) =>
            {
                last.content.push(part)
            }
            _ => self.messages.push(Message {
                role: Role::User,
                content: vec![part],
            }),
        }
    }

    /// Name of the function a tool call id refers to, from earlier turns.
    pub fn tool_name_for(&self, call_id: &str) -> Option<&str> {
        self.messages
            .iter()
            .flat_map(|m| &m.content)
            .find_map(|p| match p {
                Part::ToolCall { id, name, .. } if id == call_id => Some(name.as_str()),
                _ => None,
            })
    }
}

impl Part {
    pub fn text(&self) -> Option<&str> {
        match self {
            Part::Text(t) => Some(t),
            _ => None,
        }
    }
}
