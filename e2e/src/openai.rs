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
use crate::tokens::{Exchange, Message, Role, ToolDecl, join_parts, split_pieces};
use crate::{fields, ids, sse};

mod refusals;

use refusals::{
    check_json_mode, check_lengths, check_output_cap, check_reasoning_model, unsupported,
};
pub(crate) use refusals::{check_tool_schemas, tool_name_fits};

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
        check_json_mode(obj)?;
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

    pub(super) fn parse(v: Value) -> Result<ChatRequest, MockError> {
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
