//! Gemini request bodies ⇄ IR requests.

use serde_json::{Map, Value, json};

use super::schema::{SchemaBudget, decode_schema, encode_schema_within};
use super::{
    ADVISORY, PART_ANNOTATIONS, SKIP_SIGNATURE, TARGET, camel, f64_of, field, json_object,
    str_field, str_of, u64_of,
};
use crate::translate::ir::{
    ChatRequest, Drops, Image, Message, Part, ResponseFormat, Role, Tool, ToolChoice, Unsupported,
};

// ------------------------------------------------------------------ request

/// `model` and `stream` come from the URL (`models/{model}:streamGenerateContent`).
pub fn decode_request(body: &[u8], model: &str, stream: bool) -> Result<ChatRequest, Unsupported> {
    let v: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| Unsupported::invalid("body", e))?;
    let mut req = ChatRequest {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        stream,
        ..Default::default()
    };
    let mut tool_config = None;
    for (k, val) in &v {
        if val.is_null() {
            continue;
        }
        match camel(k).as_str() {
            "contents" => decode_contents(val, &mut req)?,
            "systemInstruction" => req.system = decode_system(val)?,
            "tools" => req.tools = decode_tools(val, &mut req.dropped)?,
            // Read once the tools are known (ANY over all of them = Required).
            "toolConfig" => tool_config = Some(val),
            "generationConfig" => decode_generation_config(val, &mut req)?,
            // The URL already names it.
            "model" => {}
            a if ADVISORY.contains(&a) => req.dropped.advisory(a),
            other => return Err(Unsupported::new(other, "translated")),
        }
    }
    if let Some(tc) = tool_config {
        req.tool_choice = decode_tool_config(tc, &req.tools)?;
    }
    if req.model.is_empty() {
        return Err(Unsupported::invalid("model", "the path names no model"));
    }
    req.check_tool_choice()?;
    Ok(req)
}

fn decode_system(val: &Value) -> Result<Vec<String>, Unsupported> {
    if let Value::String(s) = val {
        return Ok(vec![s.clone()]);
    }
    let parts = field(val, "parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            field(p, "text")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Unsupported::new(
                        format!("systemInstruction.parts[{i}] (non-text)"),
                        "translated",
                    )
                })
        })
        .collect()
}

fn decode_contents(val: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let arr = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("contents", "expected an array"))?;
    let mut calls = Calls::default();
    for (i, c) in arr.iter().enumerate() {
        let at = format!("contents[{i}]");
        if !c.is_object() {
            return Err(Unsupported::invalid(at, "expected an object"));
        }
        let role = match field(c, "role").and_then(Value::as_str) {
            // A single-turn request may leave the role out.
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(Unsupported::invalid(
                    format!("{at}.role"),
                    format!("expected user or model, got {other:?}"),
                ));
            }
        };
        if role == Role::Assistant {
            // A new model turn: calls left unanswered before it stay so.
            calls.pending.clear();
        }
        let parts = match field(c, "parts") {
            None => &[][..],
            Some(Value::Array(p)) => p.as_slice(),
            Some(_) => {
                return Err(Unsupported::invalid(
                    format!("{at}.parts"),
                    "expected an array",
                ));
            }
        };
        let mut content = Vec::new();
        for (j, p) in parts.iter().enumerate() {
            if let Some(part) = decode_part(p, role, &format!("{at}.parts[{j}]"), &mut calls)? {
                content.push(part);
            }
        }
        req.messages.push(Message { role, content });
    }
    Ok(())
}

/// Function calls seen so far in a request: the count names synthesized ids,
/// `pending` pairs id-less responses with their calls.
#[derive(Default)]
struct Calls {
    count: usize,
    pending: Vec<(String, String)>,
}

fn decode_part(
    p: &Value,
    role: Role,
    at: &str,
    calls: &mut Calls,
) -> Result<Option<Part>, Unsupported> {
    let obj = p
        .as_object()
        .ok_or_else(|| Unsupported::invalid(at, "expected an object"))?;
    let mut data = obj
        .iter()
        .filter(|(k, v)| !v.is_null() && !PART_ANNOTATIONS.contains(&camel(k).as_str()));
    let (Some((key, val)), None) = (data.next(), data.next()) else {
        return Err(Unsupported::invalid(
            at,
            "a part holds exactly one of text, inlineData, fileData, functionCall, functionResponse",
        ));
    };
    let thought = field(p, "thought").and_then(Value::as_bool) == Some(true);
    match camel(key).as_str() {
        "text" => {
            let t = val
                .as_str()
                .ok_or_else(|| Unsupported::invalid(format!("{at}.text"), "expected a string"))?;
            // A replayed thought summary is the model's reasoning, not the conversation.
            Ok((!thought).then(|| Part::Text(t.to_string())))
        }
        "inlineData" => {
            let here = format!("{at}.inlineData");
            let mime = str_field(val, "mimeType", &here)?;
            if !mime.starts_with("image/") {
                return Err(Unsupported::new(
                    format!("{here}.mimeType ({mime})"),
                    "translated",
                ));
            }
            Ok(Some(Part::Image(Image::Base64 {
                media_type: mime.to_string(),
                data: str_field(val, "data", &here)?.to_string(),
            })))
        }
        "fileData" => {
            let here = format!("{at}.fileData");
            match field(val, "mimeType").and_then(Value::as_str) {
                None => {}
                Some(m) if m.starts_with("image/") => {}
                Some(m) => {
                    return Err(Unsupported::new(
                        format!("{here}.mimeType ({m})"),
                        "translated",
                    ));
                }
            }
            Ok(Some(Part::Image(Image::Url(
                str_field(val, "fileUri", &here)?.to_string(),
            ))))
        }
        "functionCall" => {
            let here = format!("{at}.functionCall");
            if role != Role::Assistant {
                return Err(Unsupported::invalid(
                    here,
                    "only a model turn can call a function",
                ));
            }
            let name = str_field(val, "name", &here)?.to_string();
            let id = match field(val, "id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("call_{}", calls.count),
            };
            calls.count += 1;
            calls.pending.push((id.clone(), name.clone()));
            let arguments = field(val, "args").map_or_else(|| "{}".to_string(), Value::to_string);
            Ok(Some(Part::ToolCall {
                id,
                name,
                arguments,
            }))
        }
        "functionResponse" => {
            let here = format!("{at}.functionResponse");
            if role != Role::User {
                return Err(Unsupported::invalid(
                    here,
                    "only a user turn can answer a function call",
                ));
            }
            let name = str_field(val, "name", &here)?.to_string();
            let id = match field(val, "id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => calls
                    .pending
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| {
                        Unsupported::invalid(
                            here.clone(),
                            format!("no earlier functionCall named {name:?} to answer"),
                        )
                    })?,
            };
            calls.pending.retain(|(p, _)| *p != id);
            let (content, is_error) = result_from(field(val, "response").unwrap_or(&Value::Null));
            Ok(Some(Part::ToolResult {
                id,
                name: Some(name),
                content,
                is_error,
            }))
        }
        other => Err(Unsupported::new(format!("{at}.{other}"), "translated")),
    }
}

/// `response` → result text: the `output` (or `error`) string alone when that
/// is all there is, else the whole object as JSON.
fn result_from(resp: &Value) -> (Vec<Part>, bool) {
    let is_error = resp.get("error").is_some_and(|e| !e.is_null());
    let text = match resp.as_object() {
        None if resp.is_null() => return (vec![], false),
        Some(o) if o.len() == 1 => match o.iter().next() {
            Some((k, Value::String(s))) if k == "output" || k == "error" => s.clone(),
            _ => resp.to_string(),
        },
        _ => resp.to_string(),
    };
    (vec![Part::Text(text)], is_error)
}

/// Function declarations. Tools Google runs itself (`googleSearch`,
/// `codeExecution`, `urlContext`, …) have no equivalent at another provider:
/// they are dropped as hints, and the target's model is offered the app's
/// own functions.
fn decode_tools(val: &Value, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let arr = val
        .as_array()
        .ok_or_else(|| Unsupported::invalid("tools", "expected an array"))?;
    let mut tools = Vec::new();
    for (i, t) in arr.iter().enumerate() {
        let obj = t
            .as_object()
            .ok_or_else(|| Unsupported::invalid(format!("tools[{i}]"), "expected an object"))?;
        for (k, decls) in obj {
            if camel(k) != "functionDeclarations" {
                drops.hint(&format!("tools[{i}].{}", camel(k)));
                continue;
            }
            let decls = decls.as_array().map(Vec::as_slice).unwrap_or_default();
            for (j, d) in decls.iter().enumerate() {
                tools.push(decode_declaration(
                    d,
                    &format!("tools[{i}].functionDeclarations[{j}]"),
                )?);
            }
        }
    }
    Ok(tools)
}

fn decode_declaration(d: &Value, at: &str) -> Result<Tool, Unsupported> {
    let obj = d
        .as_object()
        .ok_or_else(|| Unsupported::invalid(at, "expected an object"))?;
    let mut tool = Tool {
        name: String::new(),
        description: None,
        parameters: json!({"type": "object", "properties": {}}),
    };
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match camel(k).as_str() {
            "name" => tool.name = str_of(v, &format!("{at}.name"))?.to_string(),
            "description" => {
                tool.description = Some(str_of(v, &format!("{at}.description"))?.to_string())
            }
            "parameters" => tool.parameters = decode_schema(v),
            "parametersJsonSchema" => tool.parameters = v.clone(),
            other => return Err(Unsupported::new(format!("{at}.{other}"), "translated")),
        }
    }
    if tool.name.is_empty() {
        return Err(Unsupported::invalid(format!("{at}.name"), "missing"));
    }
    Ok(tool)
}

fn decode_generation_config(val: &Value, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let obj = val
        .as_object()
        .ok_or_else(|| Unsupported::invalid("generationConfig", "expected an object"))?;
    let (mut mime, mut schema) = (None, None);
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        let name = camel(k);
        let at = format!("generationConfig.{name}");
        match name.as_str() {
            "maxOutputTokens" => req.max_tokens = Some(u64_of(v, &at)?),
            "temperature" => req.temperature = Some(f64_of(v, &at)?),
            "topP" => req.top_p = Some(f64_of(v, &at)?),
            "topK" => req.top_k = Some(u64_of(v, &at)?),
            "stopSequences" => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| Unsupported::invalid(&at, "expected an array of strings"))?;
                req.stop = arr
                    .iter()
                    .map(|s| str_of(s, &at).map(str::to_string))
                    .collect::<Result<_, _>>()?;
            }
            "candidateCount" if v.as_u64() == Some(1) => {}
            "responseModalities" if v.as_array().is_some_and(|m| m.iter().all(|x| x == "TEXT")) => {
            }
            "responseMimeType" => mime = Some(str_of(v, &at)?.to_string()),
            "responseSchema" => schema = Some(decode_schema(v)),
            "responseJsonSchema" => schema = Some(v.clone()),
            // How long the model deliberates: the target thinks as it does by
            // default (thought parts are private state no other provider returns).
            "thinkingConfig" => req.dropped.hint(&at),
            // seed, penalties, logprobs, speech, media…
            _ => return Err(Unsupported::new(at, "translated")),
        }
    }
    req.response_format = match (mime.as_deref(), schema) {
        (None, None) => None,
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        // Gemini constrains decoding to the schema, but `strict` would make
        // OpenAI refuse any schema outside its strict subset.
        (Some("application/json"), Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema,
            strict: false,
        }),
        (None, Some(_)) => {
            return Err(Unsupported::invalid(
                "generationConfig.responseSchema",
                "requires responseMimeType application/json",
            ));
        }
        // text/x.enum and friends.
        (Some(_), _) => {
            return Err(Unsupported::new(
                "generationConfig.responseMimeType",
                "translated",
            ));
        }
    };
    Ok(())
}

fn decode_tool_config(tc: &Value, tools: &[Tool]) -> Result<Option<ToolChoice>, Unsupported> {
    let obj = tc
        .as_object()
        .ok_or_else(|| Unsupported::invalid("toolConfig", "expected an object"))?;
    let mut choice = None;
    for (k, fcc) in obj {
        if fcc.is_null() {
            continue;
        }
        if camel(k) != "functionCallingConfig" {
            return Err(Unsupported::new(
                format!("toolConfig.{}", camel(k)),
                "translated",
            ));
        }
        const AT: &str = "toolConfig.functionCallingConfig";
        let allowed: Vec<&str> = match field(fcc, "allowedFunctionNames") {
            None => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|n| str_of(n, &format!("{AT}.allowedFunctionNames")))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Unsupported::invalid(
                    format!("{AT}.allowedFunctionNames"),
                    "expected an array of strings",
                ));
            }
        };
        choice = Some(match field(fcc, "mode").and_then(Value::as_str) {
            None | Some("AUTO" | "MODE_UNSPECIFIED") if allowed.is_empty() => ToolChoice::Auto,
            Some("NONE") => ToolChoice::None,
            Some("ANY") => match allowed.as_slice() {
                [] => ToolChoice::Required,
                [one] => ToolChoice::Tool(one.to_string()),
                many if tools.iter().all(|t| many.contains(&t.name.as_str())) => {
                    ToolChoice::Required
                }
                // A subset of the tools: the IR names one tool or all.
                _ => {
                    return Err(Unsupported::new(
                        format!("{AT}.allowedFunctionNames"),
                        "translated",
                    ));
                }
            },
            None | Some("AUTO" | "MODE_UNSPECIFIED") => {
                return Err(Unsupported::new(
                    format!("{AT}.allowedFunctionNames"),
                    "translated",
                ));
            }
            Some("VALIDATED") => return Err(Unsupported::new(format!("{AT}.mode"), "translated")),
            Some(other) => {
                return Err(Unsupported::invalid(
                    format!("{AT}.mode"),
                    format!("unknown mode {other:?}"),
                ));
            }
        });
    }
    Ok(choice)
}

pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    let mut out = json!({"contents": encode_contents(req)?});
    // One budget for every schema of the request ($ref inlining).
    let mut budget = SchemaBudget::default();
    if !req.system.is_empty() {
        out["systemInstruction"] =
            json!({"parts": req.system.iter().map(|s| json!({"text": s})).collect::<Vec<_>>()});
    }
    if !req.tools.is_empty() {
        let decls = req
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let budget = &mut budget;
                let mut d = json!({"name": t.name});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                // Gemini refuses an OBJECT without properties: no arguments
                // is said by leaving `parameters` out.
                let no_args = t.parameters.is_null()
                    || (t.parameters.get("type").is_some_and(|ty| ty == "object")
                        && t.parameters
                            .get("properties")
                            .and_then(Value::as_object)
                            .is_none_or(Map::is_empty));
                if !no_args {
                    d["parameters"] = encode_schema_within(
                        &t.parameters,
                        &format!("tools[{i}].parameters"),
                        budget,
                    )?;
                }
                Ok(d)
            })
            .collect::<Result<Vec<_>, Unsupported>>()?;
        out["tools"] = json!([{"functionDeclarations": decls}]);
    }
    match &req.tool_choice {
        Some(ToolChoice::Auto | ToolChoice::None) if req.tools.is_empty() => {}
        Some(tc) => {
            out["toolConfig"] = json!({"functionCallingConfig": match tc {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Tool(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            }});
        }
        None => {}
    }
    let mut gc = Map::new();
    if let Some(v) = req.max_tokens {
        gc.insert("maxOutputTokens".into(), json!(v));
    }
    if let Some(v) = req.temperature {
        gc.insert("temperature".into(), json!(v));
    }
    if let Some(v) = req.top_p {
        gc.insert("topP".into(), json!(v));
    }
    if let Some(v) = req.top_k {
        gc.insert("topK".into(), json!(v));
    }
    if !req.stop.is_empty() {
        gc.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => {
            gc.insert("responseMimeType".into(), json!("text/plain"));
        }
        Some(ResponseFormat::JsonObject) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
            gc.insert(
                "responseSchema".into(),
                encode_schema_within(schema, "response_format.json_schema.schema", &mut budget)?,
            );
        }
    }
    if !gc.is_empty() {
        out["generationConfig"] = Value::Object(gc);
    }
    Ok(out)
}

/// IR turns → Gemini contents: consecutive turns of one role are merged.
fn encode_contents(req: &ChatRequest) -> Result<Vec<Value>, Unsupported> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let mut parts = Vec::new();
        for p in &m.content {
            match (p, m.role) {
                (Part::Text(t), _) => {
                    if !t.is_empty() {
                        parts.push(json!({"text": t}));
                    }
                }
                (Part::Image(Image::Base64 { media_type, data }), _) => {
                    parts.push(json!({"inlineData": {"mimeType": media_type, "data": data}}));
                }
                (Part::Image(Image::Url(url)), _) => {
                    parts.push(json!({"fileData": {"mimeType": image_mime(url), "fileUri": url}}));
                }
                (
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    },
                    Role::Assistant,
                ) => {
                    let args = json_object(
                        arguments,
                        &format!("messages[{i}].tool_calls.{name}.arguments"),
                    )?;
                    parts.push(json!({"functionCall": {"id": id, "name": name, "args": args}}));
                }
                (
                    Part::ToolResult {
                        id,
                        name,
                        content,
                        is_error,
                    },
                    Role::User,
                ) => {
                    let name = name.as_deref().or_else(|| req.tool_name_for(id)).ok_or_else(|| {
                        Unsupported::invalid(format!("messages[{i}].tool_result"), format!("no earlier tool call has the id {id:?}, so the function's name is unknown"))
                    })?;
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
                    let response = response_for(&text, *is_error);
                    parts.push(
                        json!({"functionResponse": {"id": id, "name": name, "response": response}}),
                    );
                }
                (Part::ToolCall { .. }, Role::User) => {
                    return Err(Unsupported::invalid(
                        format!("messages[{i}]"),
                        "a user turn cannot contain a tool call",
                    ));
                }
                (Part::ToolResult { .. }, Role::Assistant) => {
                    return Err(Unsupported::invalid(
                        format!("messages[{i}]"),
                        "an assistant turn cannot contain a tool result",
                    ));
                }
            }
        }
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((role, prev)) if *role == m.role => prev.extend(parts),
            _ => turns.push((m.role, parts)),
        }
    }
    let sign = needs_signature(&req.model);
    Ok(turns
        .into_iter()
        .map(|(role, mut parts)| {
            if sign
                && role == Role::Assistant
                && let Some(first_call) = parts.iter_mut().find(|p| p.get("functionCall").is_some())
            {
                first_call["thoughtSignature"] = json!(SKIP_SIGNATURE);
            }
            json!({"role": if role == Role::User { "user" } else { "model" }, "parts": parts})
        })
        .collect())
}

/// Result text → `response`: a JSON object as is, else under `output`/`error`.
fn response_for(text: &str, is_error: bool) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) if !is_error || o.contains_key("error") => Value::Object(o),
        _ if is_error => json!({"error": text}),
        _ => json!({"output": text}),
    }
}

/// Gemini 3 and later validate thought signatures on replayed calls; the
/// version-less aliases (`gemini-flash-latest`) may point at one.
pub(super) fn needs_signature(model: &str) -> bool {
    let Some((_, rest)) = model.split_once("gemini-") else {
        return false;
    };
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().map_or(true, |m| m >= 3)
}

/// `fileData` needs a MIME type; a URL says it only by its extension.
fn image_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    }
}
