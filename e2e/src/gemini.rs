//! Gemini's API (`/v1beta/models/...`, and the same under `/v1/`):
//! `:generateContent`, `:streamGenerateContent` (`?alt=sse`: `data: JSON`
//! frames separated by `\r\n\r\n` like the real API; without it, a JSON array
//! of the chunks), `:countTokens`, `:embedContent`, `:batchEmbedContents`
//! (which the `google-genai` SDK's `embed_content` calls), the model list,
//! and errors in Google's shape `{"error":{"code","message","status"}}`.
//!
//! Usage as the real API reports it, in `usageMetadata`: `promptTokenCount`
//! includes the cached tokens, `cachedContentTokenCount` (only when there are
//! some), `candidatesTokenCount`, `totalTokenCount`. Every streamed chunk
//! carries the usage so far (cumulative: a client must take the last one,
//! not add them up). A tool call is a whole `functionCall` part, with
//! `finishReason: "STOP"` like the real API. The embedding answers carry no
//! usage, as the real API's (only `embedding` / `embeddings`).
//!
//! A function declaration's `parameters` (Gemini's OpenAPI subset, unlike
//! `parametersJsonSchema`) is refused as the real API refuses it: a
//! `format` other than `enum`/`date-time` on strings, `int32`/`int64` on
//! integers, `float`/`double` on numbers; an enum value that is not a
//! string; an enum on a node not typed `STRING`.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{Answer, Ready};
use crate::embeddings;
use crate::error::MockError;
use crate::tokens::{Exchange, Message, Role, ToolDecl, join_parts, strings_in, word_count};
use crate::{fields, ids, sse};

/// `(id, display name, methods)` of the models the list shows. Any model
/// name is served.
pub const LISTED_MODELS: &[(&str, &str, &[&str])] = &[
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        &[
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
    ),
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        &[
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
    ),
    (
        "gemini-embedding-001",
        "Gemini Embedding 001",
        &[
            "embedContent",
            "countTextTokens",
            "countTokens",
            "asyncBatchEmbedContent",
        ],
    ),
];

/// Default embedding size (`outputDimensionality` overrides it).
const EMBEDDING_DIMS: usize = 8;

/// A generateContent request, reduced to what the rules need.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDecl>,
}

fn get<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn part_text(part: &Value) -> Option<&str> {
    part.get("text").and_then(Value::as_str)
}

fn contents_missing() -> MockError {
    MockError::Invalid("* GenerateContentRequest.contents: contents is not specified\n".to_owned())
}

impl GenerateRequest {
    pub fn from_value(v: &Value) -> Result<Self, MockError> {
        if !v.is_object() {
            return Err(MockError::Invalid(
                "Invalid JSON payload received. Expected an object.".to_owned(),
            ));
        }
        let mut messages = Vec::new();
        if let Some(sys) = get(v, "systemInstruction", "system_instruction") {
            let text = match sys {
                Value::String(s) => s.clone(),
                other => join_parts(
                    other
                        .get("parts")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().filter_map(part_text).collect::<Vec<_>>())
                        .unwrap_or_default(),
                ),
            };
            messages.push(Message::new(Role::System, text));
        }
        let contents = get(v, "contents", "contents")
            .and_then(Value::as_array)
            .ok_or_else(contents_missing)?;
        if contents.is_empty() {
            return Err(contents_missing());
        }
        for c in contents {
            parse_content(c, &mut messages);
        }
        check_declarations(v)?;
        let tools = get(v, "tools", "tools")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|t| get(t, "functionDeclarations", "function_declarations"))
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|d| {
                        Some(ToolDecl {
                            name: d.get("name")?.as_str()?.to_owned(),
                            parameters: get(d, "parameters", "parameters")
                                .or_else(|| {
                                    get(d, "parametersJsonSchema", "parameters_json_schema")
                                })
                                .cloned()
                                .unwrap_or(Value::Null),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self { messages, tools })
    }

    pub fn exchange(&self) -> Exchange {
        Exchange::new(&self.messages, &self.tools)
    }
}

/// The real API's checks of every function declaration's `parameters`.
fn check_declarations(v: &Value) -> Result<(), MockError> {
    let tools = get(v, "tools", "tools").and_then(Value::as_array);
    for (i, t) in tools.into_iter().flatten().enumerate() {
        let decls =
            get(t, "functionDeclarations", "function_declarations").and_then(Value::as_array);
        for (j, d) in decls.into_iter().flatten().enumerate() {
            if let Some(p) = get(d, "parameters", "parameters") {
                let at = format!("tools[{i}].function_declarations[{j}].parameters");
                check_schema(p, &at)?;
            }
        }
    }
    Ok(())
}

/// One node of a `parameters` schema and those below it (`properties`,
/// `items`, `anyOf`), in the real API's words.
fn check_schema(s: &Value, at: &str) -> Result<(), MockError> {
    let Some(obj) = s.as_object() else {
        return Ok(());
    };
    let invalid = |what: String| {
        Err(MockError::Invalid(format!(
            "* GenerateContentRequest.{at}.{what}\n"
        )))
    };
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase);
    if let Some(format) = obj.get("format").and_then(Value::as_str) {
        let allowed: &[&str] = match ty.as_deref() {
            Some("STRING") => &["enum", "date-time"],
            Some("INTEGER") => &["int32", "int64"],
            Some("NUMBER") => &["float", "double"],
            _ => &[],
        };
        if !allowed.contains(&format) {
            return invalid(match (ty.as_deref(), allowed) {
                (Some(t), [a, b]) => {
                    format!("format: only '{a}' and '{b}' are supported for {t} type")
                }
                _ => "format: only supported for NUMBER, INTEGER and STRING type".to_owned(),
            });
        }
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        // Enum values are a repeated string field: anything else fails to parse.
        if let Some((k, bad)) = values.iter().enumerate().find(|(_, e)| !e.is_string()) {
            return Err(MockError::Invalid(format!(
                "Invalid JSON payload received. Invalid value at '{at}.enum[{k}]' (TYPE_STRING), {bad}"
            )));
        }
        if ty.as_deref() != Some("STRING") {
            return invalid("enum: only allowed for STRING type".to_owned());
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            check_schema(p, &format!("{at}.properties[{name}]"))?;
        }
    }
    if let Some(items) = obj.get("items") {
        check_schema(items, &format!("{at}.items"))?;
    }
    let any = get(s, "anyOf", "any_of").and_then(Value::as_array);
    for (k, branch) in any.into_iter().flatten().enumerate() {
        check_schema(branch, &format!("{at}.any_of[{k}]"))?;
    }
    Ok(())
}

/// One content: its text parts make one message of its role, each
/// `functionResponse` part a tool message (its text: the string values of
/// `response`).
fn parse_content(c: &Value, out: &mut Vec<Message>) {
    let role = match c.get("role").and_then(Value::as_str) {
        Some("model") => Role::Other,
        Some("function" | "tool") => Role::Tool,
        _ => Role::User,
    };
    let parts = c.get("parts").and_then(Value::as_array);
    let parts = parts.map(Vec::as_slice).unwrap_or_default();
    let texts: Vec<&str> = parts.iter().filter_map(part_text).collect();
    let results: Vec<String> = parts
        .iter()
        .filter_map(|p| get(p, "functionResponse", "function_response"))
        .map(|r| join_parts(r.get("response").map(strings_in).unwrap_or_default()))
        .collect();
    if !texts.is_empty() || results.is_empty() {
        out.push(Message::new(role, join_parts(texts)));
    }
    out.extend(results.into_iter().map(|r| Message::new(Role::Tool, r)));
}

/// `usageMetadata` with `candidates` completion tokens so far.
fn usage_metadata(ex: &Exchange, candidates: u64) -> Value {
    let mut u = json!({
        "promptTokenCount": ex.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": ex.prompt_tokens + candidates,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ex.prompt_tokens}]
    });
    if ex.cached_tokens > 0 {
        u["cachedContentTokenCount"] = json!(ex.cached_tokens);
        u["cacheTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": ex.cached_tokens}]);
    }
    u
}

/// The final `usageMetadata` of an exchange.
pub fn usage(ex: &Exchange) -> Value {
    usage_metadata(ex, ex.completion_tokens)
}

fn chunk(model: &str, response_id: &str, parts: Value, finish: bool, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id
    })
}

fn tool_part(ex: &Exchange) -> Option<Value> {
    ex.tool_call
        .as_ref()
        .map(|call| json!({"functionCall": {"name": call.name, "args": call.arguments}}))
}

/// The whole `GenerateContentResponse`.
pub fn response(model: &str, ex: &Exchange) -> Value {
    let part = tool_part(ex).unwrap_or_else(|| json!({"text": ex.reply}));
    chunk(
        model,
        &ids::random_alnum(22),
        json!([part]),
        true,
        usage(ex),
    )
}

/// The streamed chunks: one per reply word (or one with the whole
/// `functionCall`), the last one with `finishReason`, each with the
/// cumulative usage.
pub fn stream_chunks(model: &str, ex: &Exchange) -> Vec<Value> {
    let response_id = ids::random_alnum(22);
    if let Some(part) = tool_part(ex) {
        return vec![chunk(model, &response_id, json!([part]), true, usage(ex))];
    }
    let pieces = ex.reply_pieces();
    let n = pieces.len();
    let mut so_far = 0;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            so_far += word_count(&piece);
            chunk(
                model,
                &response_id,
                json!([{"text": piece}]),
                i + 1 == n,
                usage_metadata(ex, so_far),
            )
        })
        .collect()
}

fn parse_json(body: &[u8]) -> Result<Value, MockError> {
    serde_json::from_slice(body).map_err(|e| {
        MockError::Invalid(format!(
            "Invalid JSON payload received. Unexpected token. ({e})"
        ))
    })
}

/// Whether the query asks for SSE (`alt=sse`).
pub fn wants_sse(query: &str) -> bool {
    query.split('&').any(|kv| kv == "alt=sse")
}

/// `POST .../models/{rest}` where `rest` is `MODEL:ACTION`.
pub fn answer(rest: &str, query: &str, body: &[u8]) -> Result<Ready, MockError> {
    let unknown = || MockError::UnknownPath {
        method: "POST".to_owned(),
        path: format!("models/{rest}"),
    };
    let (model, action) = rest.rsplit_once(':').ok_or_else(unknown)?;
    if model.is_empty() {
        return Err(unknown());
    }
    let model = model.to_owned();
    let v = parse_json(body)?;
    if matches!(
        action,
        "generateContent" | "streamGenerateContent" | "countTokens"
    ) && let Some(obj) = v.as_object()
    {
        fields::check(obj, fields::GEMINI, fields::Api::Gemini)?;
    }
    let answer = match action {
        "generateContent" => {
            let ex = GenerateRequest::from_value(&v)?.exchange();
            Answer::Json {
                body: response(&model, &ex),
                usage: Some(usage(&ex)),
            }
        }
        "streamGenerateContent" => {
            let ex = GenerateRequest::from_value(&v)?.exchange();
            let chunks = stream_chunks(&model, &ex);
            if wants_sse(query) {
                let frames: Vec<Bytes> = chunks.iter().map(sse::crlf_data).collect();
                let last = frames.len() - 1;
                Answer::Sse {
                    frames,
                    usage: Some(usage(&ex)),
                    usage_index: Some(last),
                }
            } else {
                // Without alt=sse the real API streams one JSON array,
                // element by element.
                let frames: Vec<Bytes> = chunks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Bytes::from(format!("{}{c}", if i == 0 { "[" } else { ",\r\n" })))
                    .chain(std::iter::once(Bytes::from_static(b"]")))
                    .collect();
                let last = frames.len() - 2;
                Answer::Sse {
                    frames,
                    usage: Some(usage(&ex)),
                    usage_index: Some(last),
                }
            }
        }
        "countTokens" => {
            let req = match get(&v, "generateContentRequest", "generate_content_request") {
                Some(inner) => GenerateRequest::from_value(inner)?,
                None => GenerateRequest::from_value(&v)?,
            };
            let total = req.exchange().prompt_tokens;
            Answer::Json {
                body: json!({
                    "totalTokens": total,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]
                }),
                usage: None,
            }
        }
        // The real API reports no usage for embeddings.
        "embedContent" => Answer::Json {
            body: json!({"embedding": {"values": embed_one(&v)?}}),
            usage: None,
        },
        "batchEmbedContents" => {
            let requests = v.get("requests").and_then(Value::as_array).ok_or_else(|| {
                MockError::Invalid(
                    "* BatchEmbedContentsRequest.requests: requests is not specified\n".to_owned(),
                )
            })?;
            let embeddings = requests
                .iter()
                .map(|r| Ok(json!({"values": embed_one(r)?})))
                .collect::<Result<Vec<_>, MockError>>()?;
            Answer::Json {
                body: json!({"embeddings": embeddings}),
                usage: None,
            }
        }
        _ => return Err(unknown()),
    };
    Ok(Ready { model, answer })
}

/// The vector of one `EmbedContentRequest`.
fn embed_one(v: &Value) -> Result<Vec<f32>, MockError> {
    let content = get(v, "content", "content").ok_or_else(|| {
        MockError::Invalid("* EmbedContentRequest.content: content is not specified\n".to_owned())
    })?;
    let text = join_parts(
        content
            .get("parts")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(part_text).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let dims = get(v, "outputDimensionality", "output_dimensionality")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| (1..=4096).contains(d))
        .unwrap_or(EMBEDDING_DIMS);
    Ok(embeddings::vector(&text, dims))
}

fn model_object(id: &str, name: &str, methods: &[&str]) -> Value {
    let embedding = id.contains("embedding");
    json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": name,
        "description": format!("{name} (mock)"),
        "inputTokenLimit": if embedding { 2048 } else { 1_048_576 },
        "outputTokenLimit": if embedding { 1 } else { 65536 },
        "supportedGenerationMethods": methods,
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0,
        "thinking": !embedding
    })
}

/// `GET /v1beta/models`.
pub fn models_list() -> Value {
    let models: Vec<Value> = LISTED_MODELS
        .iter()
        .map(|(id, name, methods)| model_object(id, name, methods))
        .collect();
    json!({"models": models})
}

/// `GET /v1beta/models/{id}` (`id` with or without `models/`).
pub fn model(id: &str) -> Option<Value> {
    let id = id.strip_prefix("models/").unwrap_or(id);
    LISTED_MODELS
        .iter()
        .find(|m| m.0 == id)
        .map(|(id, name, methods)| model_object(id, name, methods))
}

/// Status and body of an error in Google's shape.
/// What Google answers a request made with a key that is not valid (400).
pub const API_KEY_NOT_VALID: &str = "API key not valid. Please pass a valid API key.";

pub fn error_parts(err: &MockError) -> (StatusCode, Value) {
    let (status, message) = match err {
        // What the real API answers a call without a key.
        MockError::MissingKey => (
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".to_owned(),
        ),
        MockError::UnknownPath { path, .. } => (
            StatusCode::NOT_FOUND,
            format!("{path} is not found for API version v1beta, or is not supported for this method."),
        ),
        MockError::MissingParam(p) => (
            StatusCode::BAD_REQUEST,
            format!("* GenerateContentRequest.{p}: {p} is not specified\n"),
        ),
        other => (other.status(), other.to_string()),
    };
    let grpc = match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    let mut body = json!({"error": {"code": status.as_u16(), "message": message, "status": grpc}});
    if message == API_KEY_NOT_VALID {
        // The reason is only in the structured details, as Google sends it.
        body["error"]["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }]);
    }
    (status, body)
}

#[cfg(test)]
mod tests;
