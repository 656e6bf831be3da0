//! Anthropic request bodies ⇄ IR requests.

use serde_json::{Map, Value, json};

use super::{
    ADVISORY, ADVISORY_IN_BLOCK, DEFAULT_MAX_TOKENS, HINTS, TARGET, f64_of, str_field, str_of,
    u64_of,
};
use crate::translate::ir::{
    ChatRequest, Drops, Image, Message, Part, ResponseFormat, Role, Tool, ToolChoice, Unsupported,
};

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
            "system" => req.system = decode_system(val, &mut req.dropped)?,
            "messages" => decode_messages(val, &mut req)?,
            "tools" => req.tools = decode_tools(val, &mut req.dropped)?,
            "tool_choice" => req.tool_choice = Some(decode_tool_choice(val)?),
            "max_tokens" => req.max_tokens = Some(u64_of(val, k)?),
            "temperature" => req.temperature = Some(f64_of(val, k)?),
            "top_p" => req.top_p = Some(f64_of(val, k)?),
            "top_k" => req.top_k = Some(u64_of(val, k)?),
            "stop_sequences" => {
                let arr = val
                    .as_array()
                    .ok_or_else(|| Unsupported::invalid(k, "expected an array of strings"))?;
                req.stop = arr
                    .iter()
                    .map(|s| str_of(s, k).map(str::to_string))
                    .collect::<Result<_, _>>()?;
            }
            "stream" => {
                req.stream = val
                    .as_bool()
                    .ok_or_else(|| Unsupported::invalid("stream", "expected a boolean"))?
            }
            "metadata" => {
                if let Some(u) = val.get("user_id").filter(|u| !u.is_null()) {
                    req.user = Some(str_of(u, "metadata.user_id")?.to_string());
                }
            }
            // Thinking explicitly off says nothing the IR has to keep.
            "thinking" if val.get("type").and_then(Value::as_str) == Some("disabled") => {}
            // How long the model deliberates: the target thinks as it does by
            // default, and the answer keeps its shape (thinking blocks are
            // private state no other provider returns).
            "thinking" => req.dropped.hint("thinking"),
            "output_config" if is_effort_only(val) => req.dropped.hint("output_config.effort"),
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

/// `output_config` holding only `effort`: a reasoning hint. Anything else in
/// it (a structured output format) changes the answer and is refused.
fn is_effort_only(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.iter().all(|(k, v)| k == "effort" || v.is_null()))
}

/// `system` is a string or an array of text blocks; each block is one entry.
fn decode_system(val: &Value, drops: &mut Drops) -> Result<Vec<String>, Unsupported> {
    match val {
        Value::String(s) if s.is_empty() => Ok(vec![]),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let at = format!("system[{i}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        check_block_keys(b, &at, &["type", "text"], drops)?;
                        Ok(str_field(b, "text", &at)?.to_string())
                    }
                    Some(other) => Err(Unsupported::new(format!("{at}.{other}"), "translated")),
                    None => Err(Unsupported::invalid(format!("{at}.type"), "missing")),
                }
            })
            .collect(),
        _ => Err(Unsupported::invalid(
            "system",
            "expected a string or an array of text blocks",
        )),
    }
}

fn decode_messages(val: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let msgs = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("messages", "expected an array"))?;
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            // Mid-conversation system messages (beta): instructions, kept
            // with the others as OpenAI chat's `system` messages are.
            Some("system") => {
                let content = m.get("content").unwrap_or(&Value::Null);
                let mut text = decode_system(content, &mut req.dropped)?;
                req.system.append(&mut text);
                continue;
            }
            other => {
                return Err(Unsupported::invalid(
                    format!("{at}.role"),
                    format!("expected user, assistant or system, got {other:?}"),
                ));
            }
        };
        let mut drops = Drops::default();
        let content = match m.get("content") {
            Some(Value::String(s)) => vec![Part::Text(s.clone())],
            Some(Value::Array(blocks)) => {
                let mut parts = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.iter().enumerate() {
                    let here = format!("{at}.content[{j}]");
                    if let Some(p) = decode_block(b, role, &here, req, &mut drops)? {
                        parts.push(p);
                    }
                }
                parts
            }
            _ => {
                return Err(Unsupported::invalid(
                    format!("{at}.content"),
                    "expected a string or an array of content blocks",
                ));
            }
        };
        req.dropped.extend(drops);
        req.messages.push(Message { role, content });
    }
    Ok(())
}

/// One content block; `None` for a block dropped (replayed thinking).
fn decode_block(
    b: &Value,
    role: Role,
    at: &str,
    req: &ChatRequest,
    drops: &mut Drops,
) -> Result<Option<Part>, Unsupported> {
    let ty = b
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::invalid(format!("{at}.type"), "missing"))?;
    match (ty, role) {
        ("text", _) => {
            check_block_keys(b, at, &["type", "text"], drops)?;
            Ok(Some(Part::Text(str_field(b, "text", at)?.to_string())))
        }
        ("image", _) => {
            check_block_keys(b, at, &["type", "source"], drops)?;
            Ok(Some(Part::Image(decode_image(b, at)?)))
        }
        // The model's private reasoning from an earlier turn: no other
        // provider can use it (Gemini's thought signatures likewise).
        ("thinking" | "redacted_thinking", Role::Assistant) => {
            drops.hint(&format!("{at}.{ty}"));
            Ok(None)
        }
        ("tool_use", Role::Assistant) => {
            check_block_keys(b, at, &["type", "id", "name", "input"], drops)?;
            let input = b
                .get("input")
                .filter(|i| !i.is_null())
                .cloned()
                .unwrap_or_else(|| json!({}));
            Ok(Some(Part::ToolCall {
                id: str_field(b, "id", at)?.to_string(),
                name: str_field(b, "name", at)?.to_string(),
                arguments: input.to_string(),
            }))
        }
        ("tool_result", Role::User) => {
            check_block_keys(
                b,
                at,
                &["type", "tool_use_id", "content", "is_error"],
                drops,
            )?;
            let id = str_field(b, "tool_use_id", at)?.to_string();
            let content = match b.get("content") {
                None | Some(Value::Null) => vec![],
                Some(Value::String(s)) => vec![Part::Text(s.clone())],
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        let here = format!("{at}.content[{k}]");
                        match c.get("type").and_then(Value::as_str) {
                            Some("text") => {
                                check_block_keys(c, &here, &["type", "text"], drops)?;
                                Ok(Part::Text(str_field(c, "text", &here)?.to_string()))
                            }
                            Some("image") => Ok(Part::Image(decode_image(c, &here)?)),
                            Some(other) => {
                                Err(Unsupported::new(format!("{here}.{other}"), "translated"))
                            }
                            None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(Unsupported::invalid(
                        format!("{at}.content"),
                        "expected a string or an array of blocks",
                    ));
                }
            };
            let is_error = match b.get("is_error") {
                None | Some(Value::Null) => false,
                Some(v) => v.as_bool().ok_or_else(|| {
                    Unsupported::invalid(format!("{at}.is_error"), "expected a boolean")
                })?,
            };
            let name = req.tool_name_for(&id).map(str::to_string);
            Ok(Some(Part::ToolResult {
                id,
                name,
                content,
                is_error,
            }))
        }
        ("tool_use", Role::User) | ("tool_result", Role::Assistant) => Err(Unsupported::invalid(
            at,
            format!("a {} turn cannot hold a {ty} block", role_str(role)),
        )),
        (other, _) => Err(Unsupported::new(format!("{at}.{other}"), "translated")),
    }
}

/// Keys outside `known` must be advisory (`cache_control`, dropped and
/// recorded) or empty (`citations: null`); anything else carries something
/// the IR would lose.
fn check_block_keys(
    b: &Value,
    at: &str,
    known: &[&str],
    drops: &mut Drops,
) -> Result<(), Unsupported> {
    let Some(obj) = b.as_object() else {
        return Err(Unsupported::invalid(at, "expected an object"));
    };
    for (k, v) in obj {
        let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        if known.contains(&k.as_str()) || empty {
            continue;
        }
        if ADVISORY_IN_BLOCK.contains(&k.as_str()) {
            drops.advisory(&format!("{at}.{k}"));
        } else {
            return Err(Unsupported::new(format!("{at}.{k}"), "translated"));
        }
    }
    Ok(())
}

fn decode_image(b: &Value, at: &str) -> Result<Image, Unsupported> {
    let src = b
        .get("source")
        .ok_or_else(|| Unsupported::invalid(format!("{at}.source"), "missing"))?;
    let here = format!("{at}.source");
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(Image::Base64 {
            media_type: str_field(src, "media_type", &here)?.to_string(),
            data: str_field(src, "data", &here)?.to_string(),
        }),
        Some("url") => Ok(Image::Url(str_field(src, "url", &here)?.to_string())),
        Some(other) => Err(Unsupported::new(format!("{here}.{other}"), "translated")),
        None => Err(Unsupported::invalid(format!("{here}.type"), "missing")),
    }
}

fn decode_tools(val: &Value, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let arr = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("tools", "expected an array"))?;
    let mut tools = Vec::with_capacity(arr.len());
    for (i, t) in arr.iter().enumerate() {
        let at = format!("tools[{i}]");
        // Server tools (web search, code execution, …) run at Anthropic: the
        // target's model is offered the app's own tools only.
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                drops.hint(&format!("{at}.{other}"));
                continue;
            }
        }
        check_block_keys(
            t,
            &at,
            &["type", "name", "description", "input_schema"],
            drops,
        )?;
        tools.push(Tool {
            name: str_field(t, "name", &at)?.to_string(),
            description: t
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: t
                .get("input_schema")
                .filter(|s| !s.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

/// `disable_parallel_tool_use` is dropped, as `openai_chat` drops
/// `parallel_tool_calls`: it shapes how calls are batched, not what is said.
fn decode_tool_choice(val: &Value) -> Result<ToolChoice, Unsupported> {
    match val.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Required),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => Ok(ToolChoice::Tool(
            str_field(val, "name", "tool_choice")?.to_string(),
        )),
        other => Err(Unsupported::invalid(
            "tool_choice.type",
            format!("expected auto, any, tool or none, got {other:?}"),
        )),
    }
}

pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => return Err(Unsupported::new("response_format", TARGET)),
    }
    let mut out = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": encode_messages(req)?,
    });
    match req.system.as_slice() {
        [] => {}
        [one] => out["system"] = json!(one),
        many => {
            out["system"] = many
                .iter()
                .map(|s| json!({"type": "text", "text": s}))
                .collect()
        }
    }
    if !req.tools.is_empty() {
        out["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let schema = if t.parameters.is_object() {
                    t.parameters.clone()
                } else {
                    json!({"type": "object", "properties": {}})
                };
                let mut tool = json!({"name": t.name, "input_schema": schema});
                if let Some(d) = &t.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
    }
    match &req.tool_choice {
        // Anthropic refuses a tool_choice without tools; auto/none say nothing then.
        Some(ToolChoice::Auto | ToolChoice::None) if req.tools.is_empty() => {}
        Some(tc) => {
            out["tool_choice"] = match tc {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(n) => json!({"type": "tool", "name": n}),
            }
        }
        None => {}
    }
    if let Some(v) = req.temperature {
        out["temperature"] = json!(v);
    }
    if let Some(v) = req.top_p {
        out["top_p"] = json!(v);
    }
    if let Some(v) = req.top_k {
        out["top_k"] = json!(v);
    }
    if !req.stop.is_empty() {
        out["stop_sequences"] = json!(req.stop);
    }
    if let Some(u) = &req.user {
        out["metadata"] = json!({"user_id": u});
    }
    if req.stream {
        out["stream"] = json!(true);
    }
    Ok(out)
}

/// IR turns → strictly alternating Anthropic turns: consecutive turns of one
/// role are merged, and in a user turn the tool results come first (Anthropic
/// requires them right after the `tool_use` turn they answer).
fn encode_messages(req: &ChatRequest) -> Result<Vec<Value>, Unsupported> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let mut blocks = Vec::new();
        for p in &m.content {
            match (p, m.role) {
                (Part::Text(t), _) => {
                    // Anthropic rejects empty text blocks.
                    if !t.is_empty() {
                        blocks.push(json!({"type": "text", "text": t}));
                    }
                }
                (Part::Image(img), _) => blocks.push(image_block(img)),
                (Part::ToolCall { id, name, arguments }, Role::Assistant) => blocks.push(json!({
                    "type": "tool_use",
                    "id": tool_id(id),
                    "name": name,
                    "input": tool_input(arguments, &format!("messages[{i}].tool_calls.{name}.arguments"))?,
                })),
                (Part::ToolResult { id, content, is_error, .. }, Role::User) => {
                    let mut b = json!({"type": "tool_result", "tool_use_id": tool_id(id)});
                    match content.as_slice() {
                        [] => {}
                        [Part::Text(t)] => b["content"] = json!(t),
                        many => {
                            b["content"] = many
                                .iter()
                                .map(|c| match c {
                                    Part::Text(t) => Ok(json!({"type": "text", "text": t})),
                                    Part::Image(img) => Ok(image_block(img)),
                                    _ => Err(Unsupported::invalid(format!("messages[{i}].tool_result"), "a tool result holds text and images only")),
                                })
                                .collect::<Result<Value, _>>()?
                        }
                    }
                    if *is_error {
                        b["is_error"] = json!(true);
                    }
                    blocks.push(b);
                }
                (Part::ToolCall { .. }, Role::User) => {
                    return Err(Unsupported::invalid(format!("messages[{i}]"), "a user turn cannot contain a tool call"));
                }
                (Part::ToolResult { .. }, Role::Assistant) => {
                    return Err(Unsupported::invalid(format!("messages[{i}]"), "an assistant turn cannot contain a tool result"));
                }
            }
        }
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((role, content)) if *role == m.role => content.extend(blocks),
            _ => turns.push((m.role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, mut content)| {
            if role == Role::User {
                // Stable: results keep their order, and so does the rest.
                content.sort_by_key(|b| b["type"] != "tool_result");
            }
            json!({"role": role_str(role), "content": content})
        })
        .collect())
}

fn image_block(img: &Image) -> Value {
    match img {
        Image::Base64 { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        Image::Url(url) => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// Tool-call arguments (JSON text) → the `input` object Anthropic wants.
pub(super) fn tool_input(arguments: &str, at: &str) -> Result<Value, Unsupported> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Unsupported::invalid(
            at,
            "tool call arguments must be a JSON object",
        )),
        Err(e) => Err(Unsupported::invalid(
            at,
            format!("tool call arguments are not valid JSON: {e}"),
        )),
    }
}

/// An id Anthropic accepts (`^[a-zA-Z0-9_-]+$`), the same for the same input.
pub(super) fn tool_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() {
        return "toolu_".to_string();
    }
    if id.chars().all(ok) {
        return id.to_string();
    }
    id.chars().map(|c| if ok(c) { c } else { '_' }).collect()
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}
