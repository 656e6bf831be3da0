//! OpenAI's chat-completions wire format: parse a request into the neutral
//! conversation, render an [`Exchange`] (text or tool call) as a
//! `chat.completion` or as `chat.completion.chunk` SSE frames, and errors in
//! OpenAI's shape (shared by Responses and embeddings).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{Answer, Ready};
use crate::error::MockError;
use crate::tokens::{
    Exchange, Message, Role, ToolDecl, invalid_schema_type, join_parts, split_pieces,
};
use crate::{fields, ids, sse};

pub const SYSTEM_FINGERPRINT: &str = "fp_mock0001";

/// The models `GET /v1/models` lists. Chat accepts any model name.
pub const LISTED_MODELS: &[&str] = &["gpt-4o-mini", "gpt-4o", "mock-model"];

/// What the mock needs from a chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDecl>,
}

impl ChatRequest {
    pub fn parse(body: &[u8]) -> Result<Self, MockError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| MockError::BadJson(e.to_string()))?;
        let obj = v.as_object().ok_or(MockError::InvalidType {
            param: "body",
            expected: "an object",
        })?;
        fields::check(obj, fields::OPENAI_CHAT, fields::Api::OpenAi)?;
        let model = match obj.get("model") {
            None | Some(Value::Null) => return Err(MockError::MissingParam("model")),
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => {
                return Err(MockError::InvalidType {
                    param: "model",
                    expected: "a non-empty string",
                });
            }
        };
        check_reasoning_model(&model, obj)?;
        check_output_cap(&model, obj)?;
        check_lengths(obj)?;
        let raw_messages = match obj.get("messages") {
            None | Some(Value::Null) => return Err(MockError::MissingParam("messages")),
            Some(Value::Array(m)) => m,
            Some(_) => {
                return Err(MockError::InvalidType {
                    param: "messages",
                    expected: "an array",
                });
            }
        };
        let messages = raw_messages.iter().map(parse_message).collect();
        let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tools = parse_tools(obj.get("tools"));
        check_tool_schemas(&tools)?;
        Ok(Self {
            model,
            stream,
            include_usage,
            messages,
            tools,
        })
    }

    pub fn exchange(&self) -> Exchange {
        Exchange::new(&self.messages, &self.tools)
    }
}

/// OpenAI's reasoning models by name: the o-series and the gpt-5 family,
/// but for its chat models (`gpt-5-chat-latest`), which take what gpt-4o
/// takes. A fine-tune (`ft:o4-mini-…`) is its base model.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model
        .strip_prefix("ft:")
        .unwrap_or(model)
        .to_ascii_lowercase();
    if m.starts_with("gpt-5") {
        return !m.starts_with("gpt-5-chat");
    }
    ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
}

/// How the real API's refusal of a parameter a model does not take begins.
const UNSUPPORTED_PARAMETER: &str = "Unsupported parameter: ";
/// How the real API's refusal of a value a model does not take begins.
const UNSUPPORTED_VALUE: &str = "Unsupported value: ";

/// What the real API refuses a reasoning model, in its words: `max_tokens`
/// (deprecated; `max_completion_tokens` also counts the reasoning) and
/// sampling settings other than the default 1. A gateway translating an
/// app's request for such a model must not send them.
fn check_reasoning_model(
    model: &str,
    obj: &serde_json::Map<String, Value>,
) -> Result<(), MockError> {
    if !is_reasoning_model(model) {
        return Ok(());
    }
    if obj.get("max_tokens").is_some_and(|v| !v.is_null()) {
        return Err(MockError::Invalid(format!(
            "{UNSUPPORTED_PARAMETER}'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
        )));
    }
    for name in ["temperature", "top_p"] {
        if let Some(v) = obj
            .get(name)
            .filter(|v| v.as_f64().is_some_and(|f| f != 1.0))
        {
            return Err(MockError::Invalid(format!(
                "{UNSUPPORTED_VALUE}'{name}' does not support {v} with this model. Only the default (1) value is supported."
            )));
        }
    }
    // The o-series takes no `parallel_tool_calls` (gpt-5 does).
    let m = model.strip_prefix("ft:").unwrap_or(model);
    if ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
        && obj.get("parallel_tool_calls").is_some_and(|v| !v.is_null())
    {
        return Err(MockError::Invalid(format!(
            "{UNSUPPORTED_PARAMETER}'parallel_tool_calls' is not supported with this model."
        )));
    }
    Ok(())
}

/// How the real API's refusal of a string past its length begins.
const TOO_LONG: &str = "': string too long.";

/// Strings the real API refuses past a length (400
/// `string_above_max_length`): the end-user id past 64 characters (Claude
/// Code's `metadata.user_id` is longer), a tool's description past 1024
/// (Claude Code's run to several thousand).
fn check_lengths(obj: &serde_json::Map<String, Value>) -> Result<(), MockError> {
    let too_long = |param: String, s: &str, max: usize| {
        let len = s.chars().count();
        (len > max).then(|| {
            MockError::Invalid(format!(
                "Invalid '{param}{TOO_LONG} Expected a string with maximum length {max}, but got a string with length {len} instead."
            ))
        })
    };
    if let Some(e) = obj
        .get("user")
        .and_then(Value::as_str)
        .and_then(|u| too_long("user".into(), u, 64))
    {
        return Err(e);
    }
    let tools = obj.get("tools").and_then(Value::as_array);
    for (i, t) in tools.into_iter().flatten().enumerate() {
        let description = t.pointer("/function/description").and_then(Value::as_str);
        if let Some(e) =
            description.and_then(|d| too_long(format!("tools[{i}].function.description"), d, 1024))
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Output limits of a few of OpenAI's chat models (the ones the suites use),
/// by name prefix, most specific first.
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("gpt-4o", 16_384),
    ("gpt-4.1", 32_768),
    ("gpt-5-chat", 16_384),
];

/// The real API's refusal of a cap above the model's output limit.
const TOO_LARGE: &str = " is too large: ";

/// Refuses a cap above the model's output limit, in the real API's words
/// (Claude Code asks for 32,000; gpt-4o gives at most 16,384).
fn check_output_cap(model: &str, obj: &serde_json::Map<String, Value>) -> Result<(), MockError> {
    let m = model.strip_prefix("ft:").unwrap_or(model);
    let Some((_, most)) = MAX_OUTPUT.iter().find(|(p, _)| m.starts_with(p)) else {
        return Ok(());
    };
    for name in ["max_completion_tokens", "max_tokens"] {
        if let Some(asked) = obj.get(name).and_then(Value::as_u64).filter(|a| a > most) {
            return Err(MockError::Invalid(format!(
                "{name}{TOO_LARGE}{asked}. This model supports at most {most} completion tokens, whereas you provided {asked}."
            )));
        }
    }
    Ok(())
}

/// The `param` and `code` the real API gives its refusals of what a model
/// does not take (`unsupported_parameter`, `unsupported_value`): read back
/// from the message [`check_reasoning_model`] wrote, the one place the mock
/// writes them.
fn unsupported(err: &MockError) -> Option<(&str, &'static str)> {
    let MockError::Invalid(m) = err else {
        return None;
    };
    if let Some((param, _)) = m
        .strip_prefix("Invalid '")
        .and_then(|rest| rest.split_once(TOO_LONG))
    {
        return Some((param, "string_above_max_length"));
    }
    if let Some((param, _)) = m.split_once(TOO_LARGE)
        && matches!(param, "max_tokens" | "max_completion_tokens")
    {
        return Some((param, "invalid_value"));
    }
    let (rest, code) = if let Some(rest) = m.strip_prefix(UNSUPPORTED_PARAMETER) {
        (rest, "unsupported_parameter")
    } else {
        (m.strip_prefix(UNSUPPORTED_VALUE)?, "unsupported_value")
    };
    let param = rest.strip_prefix('\'')?.split('\'').next()?;
    Some((param, code))
}

/// Refuses a tool whose schema has a type JSON Schema does not know (such
/// as Gemini's `STRING`), with the real API's message.
pub fn check_tool_schemas(tools: &[ToolDecl]) -> Result<(), MockError> {
    for t in tools {
        if let Some(bad) = invalid_schema_type(&t.parameters) {
            return Err(MockError::Invalid(format!(
                "Invalid schema for function '{}': '{bad}' is not valid under any of the given schemas.",
                t.name
            )));
        }
    }
    Ok(())
}

/// `tools: [{"type": "function", "function": {"name", "parameters"}}]`.
fn parse_tools(tools: Option<&Value>) -> Vec<ToolDecl> {
    tools
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    Some(ToolDecl {
                        name: f.get("name")?.as_str()?.to_owned(),
                        parameters: f.get("parameters").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_message(m: &Value) -> Message {
    let role = Role::from_wire(m.get("role").and_then(Value::as_str).unwrap_or(""));
    let text = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => join_parts(
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str)),
        ),
        _ => String::new(),
    };
    Message { role, text }
}

/// The `usage` object for an exchange.
pub fn usage(ex: &Exchange) -> Value {
    json!({
        "prompt_tokens": ex.prompt_tokens,
        "completion_tokens": ex.completion_tokens,
        "total_tokens": ex.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": ex.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// Identity shared by the chunks of one completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub id: String,
    /// The id of the tool call, when the reply is one.
    pub call_id: String,
    pub created: u64,
    pub model: String,
}

impl Completion {
    pub fn new(model: &str) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            id: format!("chatcmpl-{}", ids::random_alnum(29)),
            call_id: format!("call_{}", ids::random_alnum(24)),
            created,
            model: model.to_owned(),
        }
    }

    /// A whole `chat.completion` object.
    pub fn response(&self, ex: &Exchange) -> Value {
        let (message, finish) = match &ex.tool_call {
            Some(call) => (
                json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": self.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json()}
                    }],
                    "refusal": null,
                    "annotations": []
                }),
                "tool_calls",
            ),
            None => (
                json!({
                    "role": "assistant",
                    "content": ex.reply,
                    "refusal": null,
                    "annotations": []
                }),
                "stop",
            ),
        };
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish
            }],
            "usage": usage(ex),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT
        })
    }

    fn chunk(&self, choices: Value, usage: Option<Value>, include_usage: bool) -> Value {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices
        });
        if include_usage {
            c["usage"] = usage.unwrap_or(Value::Null);
        }
        c
    }

    /// The SSE frames of a streamed completion, `data: [DONE]` included, and
    /// the index of the frame that carries the usage (if any).
    pub fn stream_frames(&self, ex: &Exchange, include_usage: bool) -> (Vec<Bytes>, Option<usize>) {
        let delta = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        let mut chunks = Vec::new();
        let finish = if let Some(call) = &ex.tool_call {
            chunks.push(self.chunk(
                delta(
                    json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "index": 0,
                            "id": self.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""}
                        }],
                        "refusal": null
                    }),
                    Value::Null,
                ),
                None,
                include_usage,
            ));
            for piece in split_pieces(&call.arguments_json(), 2) {
                chunks.push(self.chunk(
                    delta(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                        Value::Null,
                    ),
                    None,
                    include_usage,
                ));
            }
            "tool_calls"
        } else {
            chunks.push(self.chunk(
                delta(
                    json!({"role": "assistant", "content": "", "refusal": null}),
                    Value::Null,
                ),
                None,
                include_usage,
            ));
            for piece in ex.reply_pieces() {
                chunks.push(self.chunk(
                    delta(json!({"content": piece}), Value::Null),
                    None,
                    include_usage,
                ));
            }
            "stop"
        };
        chunks.push(self.chunk(delta(json!({}), json!(finish)), None, include_usage));
        let mut usage_index = None;
        if include_usage {
            usage_index = Some(chunks.len());
            chunks.push(self.chunk(json!([]), Some(usage(ex)), true));
        }
        let mut frames: Vec<Bytes> = chunks.iter().map(|c| sse::data(&c.to_string())).collect();
        frames.push(sse::data("[DONE]"));
        (frames, usage_index)
    }
}

/// An error body in OpenAI's shape.
pub fn error_body(err: &MockError) -> Value {
    let status = err.status();
    let (kind, code) = match (err, status.as_u16()) {
        (MockError::MissingKey, _) => ("invalid_request_error", Value::Null),
        (MockError::UnknownPath { .. }, _) => ("invalid_request_error", Value::Null),
        (_, 401) => ("invalid_request_error", json!("invalid_api_key")),
        (_, 403) => ("permission_error", Value::Null),
        (_, 404) => ("invalid_request_error", json!("model_not_found")),
        (_, 429) => ("requests", json!("rate_limit_exceeded")),
        (_, s) if s >= 500 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    let (param, code) = match unsupported(err) {
        Some((param, code)) => (json!(param), json!(code)),
        None => (json!(err.param()), code),
    };
    json!({
        "error": {
            "message": err.to_string(),
            "type": kind,
            "param": param,
            "code": code
        }
    })
}

/// The answer to a chat request.
pub fn answer(req: &ChatRequest) -> Ready {
    let ex = req.exchange();
    let completion = Completion::new(&req.model);
    let answer = if req.stream {
        let (frames, usage_index) = completion.stream_frames(&ex, req.include_usage);
        Answer::Sse {
            frames,
            usage: usage_index.map(|_| usage(&ex)),
            usage_index,
        }
    } else {
        Answer::Json {
            body: completion.response(&ex),
            usage: Some(usage(&ex)),
        }
    };
    Ready {
        model: req.model.clone(),
        answer,
    }
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"})
}

/// `GET /v1/models/{id}`: any listed model.
pub fn model(id: &str) -> Option<Value> {
    LISTED_MODELS.contains(&id).then(|| model_object(id))
}

/// The `GET /v1/models` list.
pub fn models_list() -> Value {
    let data: Vec<Value> = LISTED_MODELS.iter().map(|id| model_object(id)).collect();
    json!({"object": "list", "data": data})
}

/// Status and body for a refused request.
pub fn error_parts(err: &MockError) -> (StatusCode, Value) {
    (err.status(), error_body(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, MockError> {
        ChatRequest::parse(v.to_string().as_bytes())
    }

    fn frames_json(frames: &[Bytes]) -> Vec<Value> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).expect("utf8");
                let data = s
                    .strip_prefix("data: ")
                    .and_then(|s| s.strip_suffix("\n\n"))
                    .expect("an SSE data frame");
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(data).expect("json chunk")
                }
            })
            .collect()
    }

    #[test]
    fn parses_string_and_array_content() {
        let req = parse(json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look at"},
                    {"type": "image_url", "image_url": {"url": "http://x"}},
                    {"type": "text", "text": "this"}
                ]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ],
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .expect("valid");
        assert_eq!(req.model, "gpt-4o-mini");
        assert!(req.stream && req.include_usage);
        assert_eq!(req.messages[1].text, "look at this");
        assert_eq!(req.messages[2].text, "");
        let ex = Exchange::for_messages(&req.messages);
        assert_eq!(ex.reply, "mock reply: look at this");
        assert_eq!((ex.prompt_tokens, ex.cached_tokens), (5, 2));
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            ChatRequest::parse(b"{\"model\":"),
            Err(MockError::BadJson(_))
        ));
        assert!(matches!(
            parse(json!({"messages": []})),
            Err(MockError::MissingParam("model"))
        ));
        assert!(matches!(
            parse(json!({"model": "m"})),
            Err(MockError::MissingParam("messages"))
        ));
        assert!(matches!(
            parse(json!({"model": "m", "messages": "hi"})),
            Err(MockError::InvalidType {
                param: "messages",
                ..
            })
        ));
    }

    #[test]
    fn completion_is_faithful() {
        let ex = Exchange::for_messages(&[
            Message {
                role: Role::System,
                text: "be brief".into(),
            },
            Message {
                role: Role::User,
                text: "hello there".into(),
            },
        ]);
        let c = Completion::new("gpt-4o-mini");
        let r = c.response(&ex);
        assert!(
            r["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("chatcmpl-"))
        );
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["model"], "gpt-4o-mini");
        assert_eq!(
            r["choices"][0]["message"]["content"],
            "mock reply: hello there"
        );
        assert_eq!(r["choices"][0]["message"]["role"], "assistant");
        assert!(r["choices"][0]["message"]["refusal"].is_null());
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert_eq!(r["usage"]["prompt_tokens"], 4);
        assert_eq!(r["usage"]["completion_tokens"], 4);
        assert_eq!(r["usage"]["total_tokens"], 8);
        assert_eq!(r["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
        assert_eq!(
            r["usage"]["completion_tokens_details"]["reasoning_tokens"],
            0
        );
        assert_eq!(r["system_fingerprint"], SYSTEM_FINGERPRINT);
    }

    #[test]
    fn stream_without_usage() {
        let ex = Exchange::for_messages(&[Message {
            role: Role::User,
            text: "hi you".into(),
        }]);
        let (frames, usage_index) = Completion::new("m").stream_frames(&ex, false);
        assert_eq!(usage_index, None);
        let chunks = frames_json(&frames);
        // role + 4 words ("mock reply: hi you") + stop + [DONE]
        assert_eq!(chunks.len(), 7);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks[1..5]
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(text, "mock reply: hi you");
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[6], "[DONE]");
        for c in &chunks[..6] {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert!(c.get("usage").is_none());
        }
    }

    #[test]
    fn stream_with_usage_ends_with_a_usage_chunk() {
        let ex = Exchange::for_messages(&[Message {
            role: Role::User,
            text: "hi".into(),
        }]);
        let (frames, usage_index) = Completion::new("m").stream_frames(&ex, true);
        let chunks = frames_json(&frames);
        let ui = usage_index.expect("usage frame");
        assert_eq!(ui, chunks.len() - 2);
        for c in &chunks[..ui] {
            assert!(c["usage"].is_null() && c.get("usage").is_some());
        }
        assert_eq!(chunks[ui]["choices"], json!([]));
        assert_eq!(chunks[ui]["usage"]["completion_tokens"], 3);
        assert_eq!(chunks[ui]["usage"]["prompt_tokens"], 1);
        assert_eq!(chunks[ui + 1], "[DONE]");
    }

    fn weather_tools() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    }

    #[test]
    fn tool_call_and_tool_result() {
        let req = parse(json!({"model": "m", "tools": weather_tools(), "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ]}))
        .expect("valid");
        let ex = req.exchange();
        let r = Completion::new("m").response(&ex);
        let msg = &r["choices"][0]["message"];
        assert!(msg["content"].is_null());
        let call = &msg["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().is_some_and(|i| i.starts_with("call_")));
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(r["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(r["usage"]["completion_tokens"], 1);

        let req = parse(json!({"model": "m", "tools": weather_tools(), "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"}
        ]}))
        .expect("valid");
        let ex = req.exchange();
        assert_eq!(ex.reply, "mock reply: tool said Sunny, 21 C");
        assert_eq!(ex.prompt_tokens, 8);
    }

    #[test]
    fn streamed_tool_call() {
        let req = parse(
            json!({"model": "m", "tools": weather_tools(), "stream": true,
            "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .expect("valid");
        let (frames, _) = Completion::new("m").stream_frames(&req.exchange(), false);
        let chunks = frames_json(&frames);
        let first = &chunks[0]["choices"][0]["delta"];
        assert_eq!(first["role"], "assistant");
        assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(first["tool_calls"][0]["function"]["arguments"], "");
        let args: String = chunks[1..chunks.len() - 2]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        assert_eq!(args, r#"{"city":"Paris"}"#);
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn gemini_schema_types_are_refused() {
        let err = parse(
            json!({"model": "m", "messages": [], "tools": [{"type": "function",
            "function": {"name": "f", "parameters": {"type": "OBJECT"}}}]}),
        );
        assert!(matches!(err, Err(MockError::Invalid(m)) if m.contains("'OBJECT'")));
    }

    #[test]
    fn a_cap_above_the_models_output_limit_is_refused() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for field in ["max_tokens", "max_completion_tokens"] {
            let err = parse(json!({"model": "gpt-4o-mini", "messages": msgs, field: 32000}))
                .expect_err(field);
            let body = error_body(&err);
            assert_eq!(
                body["error"]["message"],
                format!(
                    "{field} is too large: 32000. This model supports at most 16384 completion tokens, whereas you provided 32000."
                )
            );
            assert_eq!(
                (&body["error"]["param"], &body["error"]["code"]),
                (&json!(field), &json!("invalid_value"))
            );
            parse(json!({"model": "gpt-4o-mini", "messages": msgs, field: 16384})).expect(field);
        }
    }

    #[test]
    fn reasoning_models_refuse_what_the_real_api_refuses() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for model in [
            "o1",
            "o3",
            "o3-mini",
            "o4-mini-2025-04-16",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.1",
            "ft:o4-mini-2025-04-16:org::x",
        ] {
            let err = parse(json!({"model": model, "messages": msgs, "max_tokens": 10}))
                .expect_err(model);
            let (status, body) = error_parts(&err);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(
                body,
                json!({"error": {
                    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": "unsupported_parameter"
                }}),
                "{model}"
            );
            let err = parse(json!({"model": model, "messages": msgs, "temperature": 0.2}))
                .expect_err(model);
            let body = error_body(&err);
            assert_eq!(
                body["error"]["message"],
                "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported."
            );
            assert_eq!(
                (&body["error"]["param"], &body["error"]["code"]),
                (&json!("temperature"), &json!("unsupported_value"))
            );
            let err =
                parse(json!({"model": model, "messages": msgs, "top_p": 0.9})).expect_err(model);
            assert_eq!(error_body(&err)["error"]["param"], "top_p");
            // What they take: the cap as `max_completion_tokens`, the
            // default sampling, `max_tokens: null`.
            parse(
                json!({"model": model, "messages": msgs, "max_completion_tokens": 10,
                "temperature": 1, "top_p": 1.0, "max_tokens": null}),
            )
            .expect(model);
        }
        // Chat models take both, whatever their name looks like.
        for model in [
            "gpt-4o",
            "gpt-4.1-mini",
            "gpt-5-chat-latest",
            "mock-model",
            "omni",
        ] {
            parse(json!({"model": model, "messages": msgs, "max_tokens": 10, "temperature": 0.2, "top_p": 0.5}))
                .expect(model);
        }
    }

    /// What Claude Code sends, untranslated: an end-user id and a tool
    /// description longer than the real API takes.
    #[test]
    fn strings_past_their_length_are_refused() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let err = parse(json!({"model": "gpt-4o", "messages": msgs, "user": "u".repeat(65)}))
            .expect_err("a long user");
        assert_eq!(
            error_body(&err),
            json!({"error": {
                "message": "Invalid 'user': string too long. Expected a string with maximum length 64, but got a string with length 65 instead.",
                "type": "invalid_request_error",
                "param": "user",
                "code": "string_above_max_length"
            }})
        );
        let tool = |d: String| json!([{"type": "function", "function": {"name": "f", "description": d, "parameters": {"type": "object"}}}]);
        let err =
            parse(json!({"model": "gpt-4o", "messages": msgs, "tools": tool("é".repeat(1025))}))
                .expect_err("a long description");
        assert_eq!(
            (
                &error_body(&err)["error"]["param"],
                &error_body(&err)["error"]["code"]
            ),
            (
                &json!("tools[0].function.description"),
                &json!("string_above_max_length")
            )
        );
        parse(json!({"model": "gpt-4o", "messages": msgs, "user": "é".repeat(64), "tools": tool("é".repeat(1024))}))
            .expect("at the limits");
    }

    #[test]
    fn the_o_series_refuses_parallel_tool_calls() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let err =
            parse(json!({"model": "o3-mini", "messages": msgs, "parallel_tool_calls": false}))
                .expect_err("o3-mini");
        assert_eq!(
            (
                &error_body(&err)["error"]["param"],
                &error_body(&err)["error"]["code"]
            ),
            (
                &json!("parallel_tool_calls"),
                &json!("unsupported_parameter")
            )
        );
        for model in ["gpt-4o", "gpt-5"] {
            parse(json!({"model": model, "messages": msgs, "parallel_tool_calls": false}))
                .expect(model);
        }
    }

    #[test]
    fn errors_have_openai_shape() {
        let b = error_body(&MockError::MissingKey);
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("API key"))
        );
        let b = error_body(&MockError::Injected {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "slow down".into(),
        });
        assert_eq!(b["error"]["code"], "rate_limit_exceeded");
        assert_eq!(b["error"]["message"], "slow down");
        assert!(b["error"].get("param").is_some());
        let b = error_body(&MockError::MissingParam("model"));
        assert_eq!(b["error"]["param"], "model");
    }
}
