//! Responses request ⇄ IR: `input` items, `instructions`, function tools,
//! `text.format`; everything that needs OpenAI's stored state or hosted tools
//! is refused with the field named.

use serde_json::{Map, Value, json};

use crate::translate::field::{f64_of, str_of, u64_of};
use crate::translate::ir::{
    ChatRequest, Drops, Message, Part, ResponseFormat, Role, Tool, ToolChoice, Unsupported,
};
use crate::translate::openai_chat::{image_from_url, image_url};

const TARGET: &str = "OpenAI Responses";

/// Request fields that carry no content: dropped when translating, on every
/// route. `store` only matters for retrieving the response later or chaining
/// it with `previous_response_id`, which is refused; `max_tool_calls` only
/// caps hosted tools, which are dropped; `stream_options` only holds
/// `include_obfuscation`.
const ADVISORY: &[&str] = &[
    "metadata",
    "store",
    "parallel_tool_calls",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
    "max_tool_calls",
];

/// Request fields that are hints or client bookkeeping: dropped when
/// translating on lenient routes, refused on strict ones. `client_metadata`
/// is the client's own tags (Codex's session and turn ids); `reasoning`
/// (effort, summary) leaves the target to think as it does by default;
/// `truncation: auto` only matters past the context window.
const HINTS: &[&str] = &["client_metadata", "reasoning", "truncation"];

/// `include` values that ask for something only OpenAI returns and the app
/// does without: the encrypted reasoning state to replay later.
const INCLUDE_HINTS: &[&str] = &["reasoning.encrypted_content"];

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, Unsupported> {
    let v: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| Unsupported::invalid("body", e))?;
    let mut req = ChatRequest::default();
    // `instructions` comes before any system item of `input`, whatever the key order.
    if let Some(i) = v.get("instructions").filter(|i| !i.is_null()) {
        req.system.push(str_of(i, "instructions")?.to_string());
    }
    for (k, val) in &v {
        if val.is_null() {
            continue;
        }
        match k.as_str() {
            "model" => req.model = str_of(val, "model")?.to_string(),
            "instructions" => {}
            "input" => decode_input(val, &mut req)?,
            "tools" => req.tools = decode_tools(val, &mut req.dropped)?,
            "tool_choice" => req.tool_choice = Some(decode_tool_choice(val)?),
            "max_output_tokens" => req.max_tokens = Some(u64_of(val, k)?),
            "temperature" => req.temperature = Some(f64_of(val, k)?),
            "top_p" => req.top_p = Some(f64_of(val, k)?),
            "stream" => {
                req.stream = val
                    .as_bool()
                    .ok_or_else(|| Unsupported::invalid("stream", "expected a boolean"))?
            }
            "text" => req.response_format = decode_text(val, &mut req.dropped)?,
            "user" => req.user = Some(str_of(val, "user")?.to_string()),
            // The defaults, spelled out: nothing to translate.
            "truncation" if val.as_str() == Some("disabled") => {}
            "background" if val.as_bool() == Some(false) => {}
            "include" if val.as_array().is_some_and(Vec::is_empty) => {}
            "top_logprobs" if val.as_u64() == Some(0) => {}
            "reasoning" if is_blank(val) => {}
            "include" => decode_include(val, &mut req.dropped)?,
            a if HINTS.contains(&a) => req.dropped.hint(a),
            a if ADVISORY.contains(&a) => req.dropped.advisory(a),
            other => return Err(Unsupported::new(other, "translated")),
        }
    }
    req.check_tool_choice()?;
    if req.model.is_empty() {
        return Err(Unsupported::invalid(
            "model",
            "you must provide a model parameter",
        ));
    }
    // A Responses stream always ends with the usage.
    req.stream_usage = req.stream;
    Ok(req)
}

/// `include` asks for extra output: what only OpenAI can return and the app
/// does without is a hint; anything else (logprobs, hosted-tool results) is
/// refused.
fn decode_include(val: &Value, drops: &mut Drops) -> Result<(), Unsupported> {
    let items = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("include", "expected an array of strings"))?;
    for it in items {
        let what = str_of(it, "include")?;
        if INCLUDE_HINTS.contains(&what) {
            drops.hint(&format!("include ({what})"));
        } else {
            return Err(unsupported_value("include", what));
        }
    }
    Ok(())
}

fn decode_input(val: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let items = match val {
        Value::String(s) => {
            req.messages.push(Message {
                role: Role::User,
                content: vec![Part::Text(s.clone())],
            });
            return Ok(());
        }
        Value::Array(items) => items,
        _ => {
            return Err(Unsupported::invalid(
                "input",
                "expected a string or an array of items",
            ));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("input[{i}].{f}");
        let ty = match item.get("type").and_then(Value::as_str) {
            Some(t) => t,
            // Messages may leave out their type (`EasyInputMessage`).
            None if item.get("role").is_some() => "message",
            None => return Err(Unsupported::invalid(at("type"), "missing")),
        };
        match ty {
            "message" => decode_message(item, i, req)?,
            // The model's private reasoning from an earlier turn (encrypted
            // or summarized): no other provider can use it.
            "reasoning" => req.dropped.hint(&at("type (reasoning)")),
            "function_call" => {
                let part = Part::ToolCall {
                    id: required_str(item, "call_id", &at("call_id"))?.to_string(),
                    name: required_str(item, "name", &at("name"))?.to_string(),
                    arguments: item
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_string(),
                };
                push_assistant(req, vec![part]);
            }
            "function_call_output" => {
                let id = required_str(item, "call_id", &at("call_id"))?.to_string();
                let content = match item.get("output") {
                    Some(Value::String(s)) => vec![Part::Text(s.clone())],
                    Some(out @ Value::Array(_)) => decode_content(out, &at("output"), Role::User)?,
                    _ => {
                        return Err(Unsupported::invalid(
                            at("output"),
                            "expected a string or an array of parts",
                        ));
                    }
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
            other => return Err(unsupported_value(at("type"), other)),
        }
    }
    Ok(())
}

fn decode_message(item: &Value, i: usize, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let at = format!("input[{i}].content");
    let content = item.get("content").unwrap_or(&Value::Null);
    match item.get("role").and_then(Value::as_str).unwrap_or("") {
        "system" | "developer" => req.system.push(text_of(content, &at)?),
        "user" => {
            let parts = decode_content(content, &at, Role::User)?;
            req.messages.push(Message {
                role: Role::User,
                content: parts,
            });
        }
        "assistant" => {
            let parts = decode_content(content, &at, Role::Assistant)?;
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
fn decode_content(content: &Value, at: &str, role: Role) -> Result<Vec<Part>, Unsupported> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => items,
        Value::Null => return Ok(vec![]),
        _ => {
            return Err(Unsupported::invalid(
                at,
                "expected a string or an array of parts",
            ));
        }
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        let here = format!("{at}[{j}]");
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text") => parts.push(Part::Text(
                required_str(p, "text", &format!("{here}.text"))?.to_string(),
            )),
            // What the model refused with is what it said.
            Some("refusal") if role == Role::Assistant => parts.push(Part::Text(
                required_str(p, "refusal", &format!("{here}.refusal"))?.to_string(),
            )),
            Some("input_image") if role == Role::User => {
                if p.get("file_id").is_some_and(|f| !f.is_null()) {
                    return Err(Unsupported::new(format!("{here}.file_id"), "translated"));
                }
                // `detail` is a resolution hint with no equivalent in the IR; the image itself is kept.
                let url = required_str(p, "image_url", &format!("{here}.image_url"))?;
                parts.push(Part::Image(image_from_url(url)));
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
fn decode_tools(val: &Value, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let arr = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("tools", "expected an array"))?;
    let mut tools = Vec::with_capacity(arr.len());
    for (i, t) in arr.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(other) => {
                drops.hint(&format!("tools[{i}] ({other})"));
                continue;
            }
            None => return Err(Unsupported::invalid(format!("tools[{i}].type"), "missing")),
        }
        tools.push(decode_tool(t, i)?);
    }
    Ok(tools)
}

fn decode_tool(t: &Value, i: usize) -> Result<Tool, Unsupported> {
    // `strict` asks OpenAI to enforce the schema while sampling; other
    // providers follow it without that guarantee, so it is not kept.
    Ok(Tool {
        name: required_str(t, "name", &format!("tools[{i}].name"))?.to_string(),
        description: t
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        parameters: t
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
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
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => o
                .get("name")
                .and_then(Value::as_str)
                .map(|n| ToolChoice::Tool(n.to_string()))
                .ok_or_else(|| Unsupported::invalid("tool_choice.name", "missing")),
            Some(other) => Err(unsupported_value("tool_choice.type", other)),
            None => Err(Unsupported::invalid("tool_choice.type", "missing")),
        },
        _ => Err(Unsupported::invalid(
            "tool_choice",
            "expected a string or an object",
        )),
    }
}

fn decode_text(val: &Value, drops: &mut Drops) -> Result<Option<ResponseFormat>, Unsupported> {
    let obj = val
        .as_object()
        .ok_or_else(|| Unsupported::invalid("text", "expected an object"))?;
    let mut format = None;
    for (k, v) in obj {
        match k.as_str() {
            _ if v.is_null() => {}
            "format" => format = Some(decode_format(v)?),
            "verbosity" if v.as_str() == Some("medium") => {}
            // How wordy, not what: a hint.
            "verbosity" => drops.hint("text.verbosity"),
            other => return Err(Unsupported::new(format!("text.{other}"), "translated")),
        }
    }
    Ok(format)
}

fn decode_format(f: &Value) -> Result<ResponseFormat, Unsupported> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            if f.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty())
            {
                return Err(Unsupported::new("text.format.description", "translated"));
            }
            Ok(ResponseFormat::JsonSchema {
                name: f
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_string(),
                schema: f.get("schema").cloned().unwrap_or(Value::Null),
                strict: f.get("strict").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        _ => Err(Unsupported::invalid(
            "text.format.type",
            "expected text, json_object or json_schema",
        )),
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    if req.top_k.is_some() {
        return Err(Unsupported::new("top_k", TARGET));
    }
    if !req.stop.is_empty() {
        return Err(Unsupported::new("stop", TARGET));
    }
    let mut out = json!({"model": req.model});
    let mut input = Vec::new();
    match req.system.as_slice() {
        [] => {}
        [one] => out["instructions"] = json!(one),
        many => input.extend(
            many.iter()
                .map(|s| json!({"type": "message", "role": "system", "content": s})),
        ),
    }
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::User => {
                let mut parts = Vec::new();
                for p in &m.content {
                    match p {
                        Part::Text(t) => parts.push(json!({"type": "input_text", "text": t})),
                        Part::Image(img) => {
                            parts.push(json!({"type": "input_image", "image_url": image_url(img), "detail": "auto"}))
                        }
                        Part::ToolResult { id, content, is_error, .. } => {
                            flush_user(&mut parts, &mut input);
                            input.push(json!({
                                "type": "function_call_output",
                                "call_id": id,
                                "output": tool_output(content, *is_error, i)?,
                            }));
                        }
                        Part::ToolCall { .. } => {
                            return Err(Unsupported::invalid(format!("messages[{i}]"), "a user turn cannot contain a tool call"));
                        }
                    }
                }
                flush_user(&mut parts, &mut input);
            }
            Role::Assistant => {
                let mut text = String::new();
                for p in &m.content {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            flush_assistant(&mut text, &mut input);
                            input.push(json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments}));
                        }
                        _ => {
                            return Err(Unsupported::invalid(
                                format!("messages[{i}]"),
                                "an assistant turn can only hold text and tool calls",
                            ));
                        }
                    }
                }
                flush_assistant(&mut text, &mut input);
            }
        }
    }
    out["input"] = Value::Array(input);
    if !req.tools.is_empty() {
        out["tools"] = req.tools.iter().map(tool_json).collect();
    }
    if let Some(tc) = &req.tool_choice {
        out["tool_choice"] = tool_choice_json(tc);
    }
    if let Some(v) = req.max_tokens {
        out["max_output_tokens"] = json!(v);
    }
    if let Some(v) = req.temperature {
        out["temperature"] = json!(v);
    }
    if let Some(v) = req.top_p {
        out["top_p"] = json!(v);
    }
    if let Some(rf) = &req.response_format {
        out["text"] = json!({"format": format_json(rf)});
    }
    if let Some(u) = &req.user {
        out["user"] = json!(u);
    }
    if req.stream {
        out["stream"] = json!(true);
    }
    Ok(out)
}

fn flush_user(parts: &mut Vec<Value>, input: &mut Vec<Value>) {
    if !parts.is_empty() {
        input.push(json!({"type": "message", "role": "user", "content": std::mem::take(parts)}));
    }
}

fn flush_assistant(text: &mut String, input: &mut Vec<Value>) {
    if !text.is_empty() {
        input
            .push(json!({"type": "message", "role": "assistant", "content": std::mem::take(text)}));
    }
}

/// A tool result as `function_call_output.output`: a string when it is all
/// text, else a list of input parts.
fn tool_output(content: &[Part], is_error: bool, i: usize) -> Result<Value, Unsupported> {
    let prefix = if is_error { "Error: " } else { "" };
    if content.iter().all(|p| matches!(p, Part::Text(_))) {
        let text: String = content.iter().filter_map(Part::text).collect();
        return Ok(json!(format!("{prefix}{text}")));
    }
    let mut parts = Vec::new();
    if is_error {
        parts.push(json!({"type": "input_text", "text": "Error:"}));
    }
    for c in content {
        parts.push(match c {
            Part::Text(t) => json!({"type": "input_text", "text": t}),
            Part::Image(img) => {
                json!({"type": "input_image", "image_url": image_url(img), "detail": "auto"})
            }
            _ => {
                return Err(Unsupported::invalid(
                    format!("messages[{i}].tool_result.content"),
                    "only text and images",
                ));
            }
        });
    }
    Ok(Value::Array(parts))
}

/// Function tools are sent non-strict: `strict` defaults to true in this API,
/// and schemas written for other providers rarely meet its rules.
pub(super) fn tool_json(t: &Tool) -> Value {
    let mut v =
        json!({"type": "function", "name": t.name, "parameters": t.parameters, "strict": false});
    if let Some(d) = &t.description {
        v["description"] = json!(d);
    }
    v
}

pub(super) fn tool_choice_json(tc: &ToolChoice) -> Value {
    match tc {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(n) => json!({"type": "function", "name": n}),
    }
}

pub(super) fn format_json(rf: &ResponseFormat) -> Value {
    match rf {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict})
        }
    }
}

// ------------------------------------------------------------------ helpers

fn required_str<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a str, Unsupported> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::invalid(field, "expected a string"))
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

/// Text of a string, or of an array of text parts joined (system messages).
fn text_of(v: &Value, field: &str) -> Result<String, Unsupported> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text") => {
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
