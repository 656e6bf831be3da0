//! OpenAI chat completions ⇄ IR. The reference codec: the other formats'
//! modules follow the same layout (request, response, stream decoder, stream
//! encoder).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::field::{f64_of, str_of, u64_of};
use super::ir::{
    ChatRequest, ChatResponse, Drops, Image, Message, Part, ResponseFormat, Role, StopReason,
    StreamEvent, Tool, ToolChoice, Unsupported,
};
use super::{StreamDecoder, StreamEncoder, write_sse};
use crate::sse::Event;
use crate::usage::Usage;

const TARGET: &str = "OpenAI chat";

/// Request fields that carry no content: dropped when translating, on
/// every route.
const ADVISORY: &[&str] = &[
    "metadata",
    "store",
    "parallel_tool_calls",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// Request fields that are hints: dropped when translating on lenient
/// routes, refused on strict ones. How hard a reasoning model thinks, how
/// wordy it is, a predicted output (a latency optimization) and how long a
/// prompt cache lives leave what the answer says to the target's defaults.
const HINTS: &[&str] = &[
    "reasoning_effort",
    "verbosity",
    "prediction",
    "prompt_cache_retention",
];

// ------------------------------------------------------------------ request

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Unsupported> {
    let v: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| Unsupported::invalid("body", e))?;
    let mut req = ChatRequest::default();
    for (k, val) in &v {
        if val.is_null() {
            continue;
        }
        match k.as_str() {
            "model" => req.model = str_of(val, "model")?.to_string(),
            "messages" => decode_messages(val, &mut req)?,
            "tool_choice" => req.tool_choice = Some(decode_tool_choice(val)?),
            "max_tokens" | "max_completion_tokens" => req.max_tokens = Some(u64_of(val, k)?),
            "temperature" => req.temperature = Some(f64_of(val, k)?),
            "top_p" => req.top_p = Some(f64_of(val, k)?),
            "stop" => {
                req.stop = match val {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .map(|s| str_of(s, "stop").map(str::to_string))
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(Unsupported::invalid(
                            "stop",
                            "expected a string or an array of strings",
                        ));
                    }
                }
            }
            "stream" => {
                req.stream = val
                    .as_bool()
                    .ok_or_else(|| Unsupported::invalid("stream", "expected a boolean"))?
            }
            "stream_options" => {
                req.stream_usage = val
                    .get("include_usage")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            }
            "n" if val.as_u64() == Some(1) => {}
            "response_format" => req.response_format = Some(decode_response_format(val)?),
            "user" => req.user = Some(str_of(val, "user")?.to_string()),
            "tools" => req.tools = decode_tools(val, &mut req.dropped)?,
            a if HINTS.contains(&a) => req.dropped.hint(a),
            a if ADVISORY.contains(&a) => req.dropped.advisory(a),
            other => return Err(Unsupported::new(other, "translated")),
        }
    }
    if req.model.is_empty() {
        return Err(Unsupported::invalid(
            "model",
            "you must provide a model parameter",
        ));
    }
    req.check_tool_choice()?;
    Ok(req)
}

fn decode_messages(val: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let msgs = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("messages", "expected an array"))?;
    for (i, m) in msgs.iter().enumerate() {
        let at = |f: &str| format!("messages[{i}].{f}");
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let text = text_of(content, &at("content"))?;
                req.system.push(text);
            }
            "user" => {
                let parts = decode_user_content(content, &at("content"))?;
                req.messages.push(Message {
                    role: Role::User,
                    content: parts,
                });
            }
            "assistant" => {
                let mut parts = Vec::new();
                match content {
                    Value::Null => {}
                    _ => {
                        let t = text_of(content, &at("content"))?;
                        if !t.is_empty() {
                            parts.push(Part::Text(t));
                        }
                    }
                }
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for (j, c) in calls.iter().enumerate() {
                        if c.get("function").is_none() {
                            return Err(Unsupported::invalid(
                                at(&format!("tool_calls[{j}].function")),
                                "missing",
                            ));
                        }
                        parts.push(tool_call(c));
                    }
                }
                if m.get("function_call").is_some_and(|f| !f.is_null()) {
                    return Err(Unsupported::new(at("function_call"), "translated"));
                }
                req.messages.push(Message {
                    role: Role::Assistant,
                    content: parts,
                });
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let content = match content {
                    Value::String(s) => vec![Part::Text(s.clone())],
                    Value::Array(_) => vec![Part::Text(text_of(content, &at("content"))?)],
                    _ => vec![],
                };
                let name = req.tool_name_for(&id).map(str::to_string);
                let part = Part::ToolResult {
                    id,
                    name,
                    content,
                    is_error: false,
                };
                req.push_tool_result(part);
            }
            other => {
                return Err(Unsupported::invalid(
                    at("role"),
                    format!("unknown role {other:?}"),
                ));
            }
        }
    }
    Ok(())
}

fn decode_user_content(content: &Value, at: &str) -> Result<Vec<Part>, Unsupported> {
    match content {
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let here = format!("{at}[{j}]");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => Ok(Part::Text(
                        p.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )),
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Unsupported::invalid(format!("{here}.image_url.url"), "missing")
                            })?;
                        Ok(Part::Image(image_from_url(url)))
                    }
                    Some(other) => Err(Unsupported::new(format!("{here}.{other}"), "translated")),
                    None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
                }
            })
            .collect(),
        Value::Null => Ok(vec![]),
        _ => Err(Unsupported::invalid(
            at,
            "expected a string or an array of parts",
        )),
    }
}

/// One entry of `tool_calls`: `{id, type: function, function: {name, arguments}}`.
fn tool_call(c: &Value) -> Part {
    let f = c.get("function").unwrap_or(&Value::Null);
    let text = |v: &Value, k: &str, default: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Part::ToolCall {
        id: text(c, "id", ""),
        name: text(f, "name", ""),
        arguments: text(f, "arguments", "{}"),
    }
}

/// `data:` URLs become inline images; anything else stays a URL.
pub fn image_from_url(url: &str) -> Image {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return Image::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        };
    }
    Image::Url(url.to_string())
}

/// Function tools; `custom` (free-form) tools have no equivalent elsewhere
/// and are dropped as hints, so the target's model is offered the rest.
fn decode_tools(val: &Value, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let arr = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("tools", "expected an array"))?;
    let mut tools = Vec::with_capacity(arr.len());
    for (i, t) in arr.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some("custom") => {
                drops.hint(&format!("tools[{i}].custom"));
                continue;
            }
            _ => return Err(Unsupported::new(format!("tools[{i}].type"), "translated")),
        }
        let f = t
            .get("function")
            .ok_or_else(|| Unsupported::invalid(format!("tools[{i}].function"), "missing"))?;
        tools.push(Tool {
            name: f
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

fn decode_tool_choice(val: &Value) -> Result<ToolChoice, Unsupported> {
    match val {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(Unsupported::invalid(
                "tool_choice",
                format!("unknown value {other:?}"),
            )),
        },
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Tool(n.to_string()))
            .ok_or_else(|| Unsupported::invalid("tool_choice.function.name", "missing")),
        _ => Err(Unsupported::invalid(
            "tool_choice",
            "expected a string or an object",
        )),
    }
}

fn decode_response_format(val: &Value) -> Result<ResponseFormat, Unsupported> {
    match val.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let js = val.get("json_schema").unwrap_or(&Value::Null);
            Ok(ResponseFormat::JsonSchema {
                name: js
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_string(),
                schema: js.get("schema").cloned().unwrap_or(Value::Null),
                strict: js.get("strict").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        _ => Err(Unsupported::invalid(
            "response_format.type",
            "expected text, json_object or json_schema",
        )),
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    if req.top_k.is_some() {
        return Err(Unsupported::new("top_k", TARGET));
    }
    let mut messages = Vec::new();
    for s in &req.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::User => {
                let mut parts = Vec::new();
                for p in &m.content {
                    match p {
                        Part::ToolResult {
                            id,
                            content,
                            is_error,
                            ..
                        } => {
                            let mut text = String::new();
                            for c in content {
                                match c {
                                    Part::Text(t) => text.push_str(t),
                                    _ => {
                                        return Err(Unsupported::new(
                                            format!("messages[{i}].tool_result.content (non-text)"),
                                            TARGET,
                                        ));
                                    }
                                }
                            }
                            if *is_error {
                                text = format!("Error: {text}");
                            }
                            messages
                                .push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                        }
                        Part::Text(t) => parts.push(json!({"type": "text", "text": t})),
                        Part::Image(img) => parts.push(
                            json!({"type": "image_url", "image_url": {"url": image_url(img)}}),
                        ),
                        Part::ToolCall { .. } => {
                            return Err(Unsupported::invalid(
                                format!("messages[{i}]"),
                                "a user turn cannot contain a tool call",
                            ));
                        }
                    }
                }
                if !parts.is_empty() {
                    let content = match parts.as_slice() {
                        [one] if one["type"] == "text" => one["text"].clone(),
                        _ => Value::Array(parts),
                    };
                    messages.push(json!({"role": "user", "content": content}));
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for p in &m.content {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::ToolCall { id, name, arguments } => calls.push(json!({
                            "id": id, "type": "function", "function": {"name": name, "arguments": arguments}
                        })),
                        _ => return Err(Unsupported::invalid(format!("messages[{i}]"), "an assistant turn can only hold text and tool calls")),
                    }
                }
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut out = json!({"model": req.model, "messages": messages});
    if !req.tools.is_empty() {
        out["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
    }
    if let Some(tc) = &req.tool_choice {
        out["tool_choice"] = match tc {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
        };
    }
    if let Some(v) = req.max_tokens {
        out["max_tokens"] = json!(v);
    }
    if let Some(v) = req.temperature {
        out["temperature"] = json!(v);
    }
    if let Some(v) = req.top_p {
        out["top_p"] = json!(v);
    }
    if !req.stop.is_empty() {
        out["stop"] = json!(req.stop);
    }
    if let Some(rf) = &req.response_format {
        out["response_format"] = match rf {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}})
            }
        };
    }
    if let Some(u) = &req.user {
        out["user"] = json!(u);
    }
    if req.stream {
        out["stream"] = json!(true);
        // The gateway always needs the counts, whatever the app asked for.
        out["stream_options"] = json!({"include_usage": true});
    }
    Ok(out)
}

pub fn image_url(img: &Image) -> String {
    match img {
        Image::Url(u) => u.clone(),
        Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    }
}

// ------------------------------------------------------------------ response

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Unsupported> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Unsupported::invalid("response", e))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(t) = msg.get("content").and_then(Value::as_str)
        && !t.is_empty()
    {
        content.push(Part::Text(t.to_string()));
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        content.extend(calls.iter().map(tool_call));
    }
    Ok(ChatResponse {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        content,
        stop: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(stop_from),
        usage: v.get("usage").map(usage_from).unwrap_or_default(),
    })
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

pub fn usage_from(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n(u.get("prompt_tokens")),
        output: n(u.get("completion_tokens")),
        cached: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        reasoning: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input.saturating_add(u.output),
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn chat_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_string()
    } else {
        format!("chatcmpl-{id}")
    }
}

pub fn encode_response(resp: &ChatResponse) -> Value {
    let text: String = resp.content.iter().filter_map(Part::text).collect();
    let calls: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, name, arguments } => {
                Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
            }
            _ => None,
        })
        .collect();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": chat_id(&resp.id),
        "object": "chat.completion",
        "created": now_secs(),
        "model": resp.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": stop_str(resp.stop.unwrap_or(StopReason::EndTurn)),
        }],
        "usage": usage_json(&resp.usage),
    })
}

// ------------------------------------------------------------------ stream

/// OpenAI chunks → IR.
#[derive(Default)]
pub struct Decoder {
    started: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let data = ev.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(err) = v.get("error") {
            out.push(StreamEvent::Error {
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error")
                    .to_string(),
            });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: v
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                model: v
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(t) = delta.get("content").and_then(Value::as_str)
                && !t.is_empty()
            {
                out.push(StreamEvent::TextDelta(t.to_string()));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for c in calls {
                    let index = c.get("index").and_then(Value::as_u64).unwrap_or(0) as u32;
                    let f = c.get("function").unwrap_or(&Value::Null);
                    if let Some(id) = c.get("id").and_then(Value::as_str) {
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: id.to_string(),
                            name: f
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        });
                    }
                    if let Some(a) = f.get("arguments").and_then(Value::as_str)
                        && !a.is_empty()
                    {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            arguments: a.to_string(),
                        });
                    }
                }
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                out.push(StreamEvent::Finish(stop_from(r)));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(usage_from(u)));
        }
    }
}

/// IR → OpenAI chunks, ending with the usage chunk (if the app asked for it)
/// and `data: [DONE]`.
pub struct Encoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    usage: Option<Usage>,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            created: now_secs(),
            include_usage: req.stream_usage,
            started: false,
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut BytesMut) {
        let c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        write_sse(out, None, &c.to_string());
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                self.id = format!("chatcmpl-{}", self.created);
            }
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        match ev {
            StreamEvent::Start { id, model } => {
                if !id.is_empty() {
                    self.id = chat_id(id);
                }
                if !model.is_empty() {
                    self.model = model.clone();
                }
                self.ensure_started(out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                self.chunk(json!({"content": t}), None, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                    out,
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.ensure_started(out);
                self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                    None,
                    out,
                );
            }
            StreamEvent::Finish(r) => {
                self.ensure_started(out);
                self.chunk(json!({}), Some(stop_str(*r)), out);
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error { message } => {
                let e = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
                write_sse(out, None, &e.to_string());
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if self.include_usage
            && let Some(u) = self.usage
        {
            let c = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage_json(&u),
            });
            write_sse(out, None, &c.to_string());
        }
        write_sse(out, None, "[DONE]");
    }
}

// ------------------------------------------------------------------ helpers

/// Text of a string, or of an array of `{type: text}` parts joined.
fn text_of(v: &Value, field: &str) -> Result<String, Unsupported> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        out.push_str(p.get("text").and_then(Value::as_str).unwrap_or_default())
                    }
                    _ => {
                        return Err(Unsupported::invalid(
                            field,
                            "only text parts are allowed here",
                        ));
                    }
                }
            }
            Ok(out)
        }
        Value::Null => Ok(String::new()),
        _ => Err(Unsupported::invalid(
            field,
            "expected a string or an array of text parts",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    #[test]
    fn request_roundtrip_with_tools() {
        let body = br#"{
          "model": "gpt-4o",
          "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type":"text","text":"Weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
          ],
          "tools": [{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
          "tool_choice": "auto", "max_tokens": 100, "stream": true
        }"#;
        let req = decode_request(body).unwrap();
        assert_eq!(req.system, vec!["Be brief."]);
        assert_eq!(req.messages.len(), 3);
        assert_eq!(
            req.messages[1].content[0],
            Part::ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into()
            }
        );
        assert_eq!(
            req.messages[2].content[0],
            Part::ToolResult {
                id: "call_1".into(),
                name: Some("get_weather".into()),
                content: vec![Part::Text("18C".into())],
                is_error: false
            }
        );
        assert!(
            matches!(&req.messages[0].content[1], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
        );
        let back = encode_request(&req).unwrap();
        assert_eq!(back["messages"][3]["role"], "tool");
        assert_eq!(
            back["messages"][2]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        assert_eq!(back["stream_options"]["include_usage"], true);
        assert_eq!(
            decode_request(back.to_string().as_bytes())
                .unwrap()
                .messages,
            req.messages
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = decode_request(br#"{"model":"m","messages":[],"logprobs":true}"#).unwrap_err();
        assert_eq!(e.field, "logprobs");
        let r = ChatRequest {
            top_k: Some(3),
            model: "m".into(),
            ..Default::default()
        };
        assert_eq!(encode_request(&r).unwrap_err().field, "top_k");
    }

    #[test]
    fn stream_decode_encode() {
        let upstream = concat!(
            "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut p = SseParser::new();
        p.push(upstream.as_bytes());
        let mut d = Decoder::default();
        let mut evs = vec![];
        while let Some(e) = p.next_event() {
            d.event(&e, &mut evs);
        }
        assert_eq!(
            evs,
            vec![
                StreamEvent::Start {
                    id: "chatcmpl-1".into(),
                    model: "gpt-4o".into()
                },
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_9".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments: "{\"a\":1}".into()
                },
                StreamEvent::Finish(StopReason::ToolUse),
                StreamEvent::Usage(Usage {
                    input: 5,
                    output: 3,
                    cached: 0,
                    reasoning: 0
                }),
            ]
        );
        let mut enc = Encoder::new(&ChatRequest {
            model: "gpt-4o".into(),
            stream_usage: true,
            ..Default::default()
        });
        let mut out = BytesMut::new();
        for e in &evs {
            enc.event(e, &mut out);
        }
        enc.end(&mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(text.contains("\"finish_reason\":\"tool_calls\""));
        assert!(text.contains("\"prompt_tokens\":5"));
    }
}
