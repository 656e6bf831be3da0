//! Anthropic request bodies → IR requests (and back, in `encode`).

use serde::Deserialize;
use serde_json::Value;

use super::role_str;
use crate::translate::ir::{
    self, ChatRequest, Drops, Image, Message, Part, Role, Thinking, ThinkingAmount, Tool,
    ToolChoice, Unsupported,
};
use crate::translate::openai_chat::MISSING_MODEL;
use crate::translate::policy::Policy;
use crate::translate::wire::{self, Extra, TextOr};

pub(super) use super::encode::request_body;

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
    /// Arguments that follow the schema exactly.
    strict: Option<bool>,
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
        stop_field: "stop_sequences",
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

/// What Claude Code's first system block begins with
/// (`x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;`).
const BILLING_HEADER: &str = "x-anthropic-billing-header:";

/// `system` is a string or an array of text blocks; each block is one entry.
/// A block holding Claude Code's billing header is Anthropic's client
/// bookkeeping, not instructions: another provider's model would read it as
/// part of its prompt. A request is decoded only to go to a provider of
/// another format (Anthropic's are passed through), so it is dropped here,
/// named as carrying nothing for the target (a strict route still takes
/// Claude Code).
fn decode_system(
    v: Option<TextOr<BlockIn>>,
    drops: &mut Drops,
) -> Result<Vec<String>, Unsupported> {
    match v {
        Some(TextOr::Text(s)) if s.is_empty() => Ok(vec![]),
        Some(TextOr::Text(s)) => Ok(vec![s]),
        Some(TextOr::Parts(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let at = format!("system[{i}]");
                match b.ty.as_deref() {
                    Some("text") => {
                        b.check_keys(&at, &["text"], drops)?;
                        let text = BlockIn::required(&b.text, "text", &at)?;
                        if text.starts_with(BILLING_HEADER) {
                            drops.advisory(&format!("{at}.text (x-anthropic-billing-header)"));
                        } else {
                            out.push(text.to_string());
                        }
                    }
                    Some(other) => {
                        return Err(Unsupported::new(format!("{at}.{other}"), "translated"));
                    }
                    None => return Err(Unsupported::invalid(format!("{at}.type"), "missing")),
                }
            }
            Ok(out)
        }
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
            strict: t.strict,
            schema_field: format!("{at}.input_schema"),
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
