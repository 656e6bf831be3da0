//! The gateway's own model of a chat exchange, the hub every translation
//! goes through: app format → IR → provider format, and back. It is as rich
//! as the union of what the three formats can say about a conversation, so a
//! field is lost only when the *target* cannot express it. What changes the
//! answer (content, tools, response format) is then refused with a 400
//! naming the field; what is advisory or client bookkeeping is left out and
//! listed in [`ChatRequest::dropped`], so the app is told (a response header)
//! and the trace keeps it. See [`Dropped`].

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
    /// The app's name for `stop` (`stop`, `stop_sequences`,
    /// `generationConfig.stopSequences`), for refusals that name it; empty:
    /// `stop`.
    pub stop_field: &'static str,
    /// The app's name for a history call's arguments
    /// (`input[*].arguments`, …), for the drop that names them when they
    /// are not an object ([`ChatRequest::fit_call_arguments`]); empty: OpenAI
    /// chat's.
    pub arguments_field: &'static str,
    /// Sampling seed (OpenAI chat `seed`, Gemini `generationConfig.seed`).
    pub seed: Option<Named<i64>>,
    /// OpenAI chat `presence_penalty`, Gemini `presencePenalty` (0, the
    /// default, is left unsaid).
    pub presence_penalty: Option<Named<f64>>,
    /// OpenAI chat `frequency_penalty`, Gemini `frequencyPenalty`.
    pub frequency_penalty: Option<Named<f64>>,
    pub stream: bool,
    /// The app asked for usage in the stream (OpenAI `include_usage`).
    pub stream_usage: bool,
    /// OpenAI `response_format` / Gemini `responseMimeType`+`responseSchema`.
    pub response_format: Option<ResponseFormat>,
    /// Advisory end-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// At most one tool call per answer (OpenAI `parallel_tool_calls:
    /// false`, Anthropic `tool_choice.disable_parallel_tool_use: true`): an
    /// app that runs its tools one after the other expects no more.
    pub serial_tool_calls: bool,
    /// How long the model may think before it answers, where the app said
    /// so in a way another format can say too.
    pub thinking: Option<Thinking>,
    /// Where the app marked a prompt-cache breakpoint (`cache_control`, as
    /// OpenRouter and LiteLLM take it in OpenAI chat requests), for a
    /// target that caches by breakpoints (Anthropic).
    pub cache: CacheMarks,
    /// Fields of the app's request left out on the way (decoders and
    /// encoders add to it).
    pub dropped: Drops,
}

/// A value, and the app's name for its field (named when the target
/// cannot say it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Named<T> {
    pub field: &'static str,
    pub value: T,
}

/// A field of the IR a format has no place for: what is left out when
/// encoding for it (instead of refusing the request), and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// `top_k` (OpenAI's formats; Gemini CLI always sends one): a sampling
    /// hint, not content; dropped as a hint.
    TopK,
    /// The advisory end-user id (Gemini): always dropped.
    User,
    /// One tool call at a time (Gemini, which has no such setting): how the
    /// model batches its calls, not what they do; dropped as a hint when
    /// there are tools to call.
    SerialToolCalls,
    /// How long the model thinks (OpenAI's formats: the gateway does not
    /// translate budgets and levels into OpenAI's efforts): dropped as a
    /// hint, named as the app named it.
    Thinking,
}

/// How long the model may think, as the app said it, and the app's field
/// that said it (named when the target has no place for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    pub field: &'static str,
    pub amount: ThinkingAmount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingAmount {
    /// A level (OpenAI `reasoning_effort`, Responses `reasoning.effort`).
    Effort(Effort),
    /// At most this many tokens (Anthropic `thinking.budget_tokens`, Gemini
    /// `thinkingConfig.thinkingBudget`); 0: no thinking.
    Budget(u64),
}

/// OpenAI's reasoning efforts, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// `none` (gpt-5.1): no reasoning.
    Off,
    Minimal,
    Low,
    Medium,
    /// `high`, and `xhigh` (gpt-5.1-codex-max), which other providers have
    /// no room above `high` for.
    High,
}

impl Effort {
    /// An effort by OpenAI's name for it; `None` for a name not known.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::Off,
            "minimal" => Self::Minimal,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" | "xhigh" => Self::High,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// Prompt-cache breakpoints: the prefix up to each marked place is cached.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheMarks {
    /// Indexes in `system`.
    pub system: Vec<usize>,
    /// Indexes in `tools`.
    pub tools: Vec<usize>,
    /// (message, part) indexes in `messages`.
    pub parts: Vec<(usize, usize)>,
}

impl CacheMarks {
    pub fn is_empty(&self) -> bool {
        self.system.is_empty() && self.tools.is_empty() && self.parts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

/// A stretch of a user turn, for the formats that send a turn's tool results
/// apart from its content (OpenAI's).
#[derive(Debug)]
pub enum UserRun<'a> {
    /// Text and images in a row.
    Content(Vec<&'a Part>),
    Result {
        id: &'a str,
        content: &'a [Part],
        is_error: bool,
    },
}

/// A stretch of an assistant turn, for the formats that send a turn's calls
/// apart from its text (OpenAI's).
#[derive(Debug)]
pub enum AssistantRun<'a> {
    /// Text in a row, joined.
    Text(String),
    Call {
        id: &'a str,
        name: &'a str,
        arguments: &'a str,
    },
}

impl Message {
    /// The user turn (the `turn`th) as [`UserRun`]s, in order; a call in it is
    /// misplaced.
    pub fn user_runs(&self, turn: usize) -> Result<Vec<UserRun<'_>>, Unsupported> {
        let mut runs = Vec::new();
        for p in &self.content {
            match p {
                Part::Text(_) | Part::Refusal(_) | Part::Image(_) => match runs.last_mut() {
                    Some(UserRun::Content(parts)) => parts.push(p),
                    _ => runs.push(UserRun::Content(vec![p])),
                },
                Part::ToolResult {
                    id,
                    content,
                    is_error,
                    ..
                } => runs.push(UserRun::Result {
                    id,
                    content,
                    is_error: *is_error,
                }),
                Part::ToolCall { .. } => return Err(Unsupported::misplaced(turn, USER_CALL)),
            }
        }
        Ok(runs)
    }

    /// The assistant turn (the `turn`th) as [`AssistantRun`]s, in order;
    /// anything but text and calls in it is misplaced.
    pub fn assistant_runs(&self, turn: usize) -> Result<Vec<AssistantRun<'_>>, Unsupported> {
        let mut runs = Vec::new();
        for p in &self.content {
            match p {
                Part::Text(t) | Part::Refusal(t) => match runs.last_mut() {
                    Some(AssistantRun::Text(text)) => text.push_str(t),
                    _ => runs.push(AssistantRun::Text(t.clone())),
                },
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => runs.push(AssistantRun::Call {
                    id,
                    name,
                    arguments,
                }),
                _ => return Err(Unsupported::misplaced(turn, ASSISTANT_ONLY)),
            }
        }
        Ok(runs)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// What the model refused with, in its words (OpenAI's `refusal`); its
    /// answer stops as a content filter's. Answers only: a history keeps
    /// refusals as text, as do formats without a place for one.
    Refusal(String),
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

impl Image {
    /// `data:` URLs become inline images; anything else stays a URL.
    pub fn from_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            return Self::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            };
        }
        Self::Url(url.to_string())
    }

    /// As a URL: inline images as `data:` URLs (OpenAI's formats).
    pub fn url(&self) -> String {
        match self {
            Self::Url(u) => u.clone(),
            Self::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    /// The app asked for the arguments to follow the schema exactly
    /// (OpenAI `strict`, Anthropic `strict`); `None`: unsaid.
    pub strict: Option<bool>,
    /// Where the app wrote `parameters` (`tools[14].input_schema`), so a
    /// schema refused names the app's own field: the index is the app's
    /// (tools a decoder dropped shift the IR's) and so is the key. Empty:
    /// `tools[<IR index>].parameters`.
    pub schema_field: String,
}

/// The schema of a tool that takes no arguments.
pub fn no_arguments() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
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

impl StopReason {
    /// The stop of an answer that refused: a content filter's (what
    /// Anthropic and Gemini apps are told of a refusal), unless it ended
    /// otherwise (calls to run, a length cut) and the app must hear that.
    pub fn refused(stop: Option<Self>) -> Option<Self> {
        match stop {
            None | Some(Self::EndTurn) | Some(Self::StopSequence) => Some(Self::ContentFilter),
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Text, refusals and tool calls, in order.
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
    /// More of a [`Part::Refusal`].
    RefusalDelta(String),
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

/// "an" before a provider's name that opens with a vowel (an Anthropic, an
/// OpenAI), else "a".
pub fn article(name: &str) -> &'static str {
    if name.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
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
                "`{field}` cannot be expressed for {} {target} provider; remove it or route this model to a provider that supports it",
                article(target)
            ),
            field,
        }
    }

    /// A part in a turn of the wrong role: `what` says which
    /// (see [`USER_CALL`], [`ASSISTANT_RESULT`], [`ASSISTANT_ONLY`]).
    pub fn misplaced(turn: usize, what: &str) -> Self {
        Self::invalid(format!("messages[{turn}]"), what)
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

/// [`Unsupported::misplaced`] reasons.
pub const USER_CALL: &str = "a user turn cannot contain a tool call";
pub const ASSISTANT_RESULT: &str = "an assistant turn cannot contain a tool result";
pub const ASSISTANT_ONLY: &str = "an assistant turn can only hold text and tool calls";

/// What a tool result's text says when the result is only images, for the
/// formats that send a result's images beside it: a result needs some text
/// there (OpenAI's `tool` message is text; Gemini's `functionResponse` an
/// object), and an empty one would read as "the tool returned nothing" to a
/// model that has not yet reached the images.
pub const IMAGES_FOLLOW: &str = "(image attached below)";

/// A tool result's content split for the formats whose results are text
/// only (OpenAI chat, Gemini): the text the result itself carries, and the
/// images the encoder sends beside it (Claude Code's Read tool on a picture
/// and screenshot tools return images, and a refused image stays in the
/// history, failing every later turn).
#[derive(Debug, PartialEq)]
pub struct ResultContent<'a> {
    /// The text parts, one a line (a result of one text is sent as it is;
    /// several, Claude Code's file listings say, are not run together), or
    /// [`IMAGES_FOLLOW`] when there are images and no text.
    pub text: String,
    /// The images, in order.
    pub images: Vec<&'a Image>,
}

/// Splits a tool result's content (`messages[turn]`'s) into
/// [`ResultContent`]; anything but text and images in it (no decoder puts
/// anything else there) is refused for `target`.
pub fn result_content<'a>(
    content: &'a [Part],
    turn: usize,
    target: &str,
) -> Result<ResultContent<'a>, Unsupported> {
    let mut text = String::new();
    let mut texts = 0usize;
    let mut images = Vec::new();
    for c in content {
        match c {
            Part::Text(t) | Part::Refusal(t) => {
                if texts > 0 {
                    text.push('\n');
                }
                texts += 1;
                text.push_str(t);
            }
            Part::Image(img) => images.push(img),
            Part::ToolCall { .. } | Part::ToolResult { .. } => {
                return Err(Unsupported::new(
                    format!("messages[{turn}].tool_result.content (neither text nor image)"),
                    target,
                ));
            }
        }
    }
    if text.is_empty() && !images.is_empty() {
        text.push_str(IMAGES_FOLLOW);
    }
    Ok(ResultContent { text, images })
}

/// Adds a turn's blocks to `turns`, joining it to the last turn when the
/// role is the same: formats that want roles to alternate (Anthropic,
/// Gemini) get one turn where the IR has several in a row.
pub fn push_turn<B>(turns: &mut Vec<(Role, Vec<B>)>, role: Role, blocks: Vec<B>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, prev)) if *r == role => prev.extend(blocks),
        _ => turns.push((role, blocks)),
    }
}

impl ChatRequest {
    /// The app's name for its stop sequences.
    pub fn stop_field(&self) -> &'static str {
        if self.stop_field.is_empty() {
            "stop"
        } else {
            self.stop_field
        }
    }

    /// Makes every history call's arguments a JSON object, for the targets
    /// that take them structured (Anthropic `input`, Gemini `args`).
    /// OpenAI's formats carry them as text, and OpenAI takes any text back:
    /// a call whose arguments broke off (an upstream failure mid-call) or
    /// that the model wrote badly stays in a Codex history as it came. It
    /// is sent as `{}` rather than refused, which would end the session on
    /// every later turn, and the loss is named as a hint. Blank arguments
    /// are a call without parameters, as the encoders read them.
    pub fn fit_call_arguments(&mut self) {
        let mut lost = false;
        for p in self.messages.iter_mut().flat_map(|m| m.content.iter_mut()) {
            if let Part::ToolCall { arguments, .. } = p
                && !arguments.trim().is_empty()
                && !is_json_object(arguments)
            {
                "{}".clone_into(arguments);
                lost = true;
            }
        }
        if lost {
            let field = match self.arguments_field {
                "" => "messages[*].tool_calls[*].function.arguments",
                f => f,
            };
            self.dropped.hint(field);
        }
    }

    /// Refuses more stop sequences than the target (`target`) takes
    /// (`most`): the app is told, naming its field, rather than some of
    /// them being left out unsaid.
    pub fn check_stop_count(&self, most: usize, target: &str) -> Result<(), Unsupported> {
        if self.stop.len() <= most {
            return Ok(());
        }
        let field = self.stop_field();
        Err(Unsupported {
            field: field.to_string(),
            message: format!(
                "`{field}` has {} entries; a {target} provider takes at most {most}",
                self.stop.len()
            ),
        })
    }

    /// Refuses a conversation with no turn besides system instructions, for
    /// a target that needs one (`target`): OpenAI answers system-only
    /// chats, Anthropic and Gemini refuse an empty `messages` / `contents`
    /// in their own words, which would reach the app after a billed-looking
    /// trace.
    pub fn refuse_empty_conversation(&self, target: &str) -> Result<(), Unsupported> {
        if self.messages.is_empty() {
            return Err(Unsupported::invalid(
                "messages",
                format!(
                    "{} {target} provider needs at least one user message besides system instructions",
                    capitalized(article(target))
                ),
            ));
        }
        Ok(())
    }

    /// Refuses the seed and penalties, for a target that has none of them
    /// (`target`), naming the app's field.
    pub fn refuse_seed_and_penalties(&self, target: &str) -> Result<(), Unsupported> {
        let fields = [
            self.seed.map(|s| s.field),
            self.presence_penalty.map(|p| p.field),
            self.frequency_penalty.map(|p| p.field),
        ];
        match fields.into_iter().flatten().next() {
            Some(f) => Err(Unsupported::new(f, target)),
            None => Ok(()),
        }
    }

    /// Adds a tool result as the app's turn: consecutive results answer one
    /// assistant turn together, so they share one user message.
    ///
    /// Only this adds results to a user turn in the formats that call it, so
    /// a user turn ending in a result holds nothing else: its last part is
    /// checked, not all of them (which made many results quadratic).
    pub fn push_tool_result(&mut self, part: Part) {
        match self.messages.last_mut() {
            Some(last)
                if last.role == Role::User
                    && matches!(last.content.last(), Some(Part::ToolResult { .. })) =>
            {
                last.content.push(part)
            }
            _ => self.messages.push(Message {
                role: Role::User,
                content: vec![part],
            }),
        }
    }

    /// Leaves out what the target's format has no place for, naming it.
    pub fn drop_absent(&mut self, absent: &[Absent]) {
        for a in absent {
            match a {
                Absent::TopK if self.top_k.take().is_some() => self.dropped.hint("top_k"),
                Absent::User if self.user.is_some() => self.dropped.advisory("user"),
                // Taken whatever the tools: nothing to call, nothing lost.
                Absent::SerialToolCalls
                    if std::mem::take(&mut self.serial_tool_calls) && !self.tools.is_empty() =>
                {
                    self.dropped.hint("parallel_tool_calls")
                }
                Absent::Thinking => {
                    if let Some(t) = self.thinking.take() {
                        self.dropped.hint(t.field);
                    }
                }
                _ => {}
            }
        }
    }

    /// What every decoder ends with: the model named (`missing` says where
    /// it should have been), the drops in key order, a `tool_choice` that
    /// can be honoured.
    pub fn checked(mut self, missing: &str) -> Result<Self, Unsupported> {
        if self.model.is_empty() {
            return Err(Unsupported::invalid("model", missing));
        }
        self.name_tool_results();
        self.dropped.order_by_key();
        self.check_tool_choice()?;
        Ok(self)
    }

    /// The app's result for an earlier call `id` (named after that call), as
    /// formats that send results as their own messages give it.
    pub fn push_call_result(&mut self, id: String, content: Vec<Part>) {
        self.push_tool_result(Part::ToolResult {
            id,
            name: None,
            content,
            is_error: false,
        });
    }

    /// A `tool_choice` naming a tool that was dropped (a hosted tool the
    /// target lacks) cannot be honoured: refused rather than answered
    /// without it. Decoders call it last.
    pub fn check_tool_choice(&self) -> Result<(), Unsupported> {
        match &self.tool_choice {
            Some(ToolChoice::Tool(n))
                if !self.dropped.is_empty() && !self.tools.iter().any(|t| &t.name == n) =>
            {
                Err(Unsupported::new(format!("tool_choice ({n})"), "translated"))
            }
            Some(ToolChoice::Required) if self.tools.is_empty() && !self.dropped.is_empty() => {
                Err(Unsupported::new("tool_choice", "translated"))
            }
            _ => Ok(()),
        }
    }

    /// Names each tool result its format left unnamed after the function of
    /// the earlier call with its id, in one pass (a lookup per result would
    /// be quadratic in a conversation an app can make as long as it likes).
    fn name_tool_results(&mut self) {
        let mut names: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        let mut named: Vec<(usize, usize, String)> = Vec::new();
        for (i, m) in self.messages.iter().enumerate() {
            for (j, p) in m.content.iter().enumerate() {
                match p {
                    Part::ToolCall { id, name, .. } => {
                        names.entry(id).or_insert(name);
                    }
                    Part::ToolResult { id, name: None, .. } => {
                        if let Some(n) = names.get(id.as_str()) {
                            named.push((i, j, (*n).to_string()));
                        }
                    }
                    _ => {}
                }
            }
        }
        for (i, j, n) in named {
            if let Some(Part::ToolResult { name, .. }) =
                self.messages.get_mut(i).and_then(|m| m.content.get_mut(j))
            {
                *name = Some(n);
            }
        }
    }
}

/// Whether `text` is one JSON object: checked without building it (the
/// encoders build it after).
fn is_json_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

impl Part {
    pub fn text(&self) -> Option<&str> {
        match self {
            Part::Text(t) => Some(t),
            _ => None,
        }
    }
}

mod drops;
pub use drops::{Dropped, Drops};

#[cfg(test)]
mod tests;
