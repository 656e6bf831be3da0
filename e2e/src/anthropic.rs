//! Anthropic's Messages API: `POST /v1/messages` (JSON and SSE),
//! `POST /v1/messages/count_tokens`, the model list, and errors in
//! Anthropic's shape `{"type":"error","error":{"type","message"}}`.
//!
//! Usage as the real API reports it: `input_tokens` are the prompt tokens
//! NOT read from the cache, `cache_read_input_tokens` the cached ones (so the
//! prompt is their sum), `output_tokens` the completion. A stream reports
//! them in `message_start` (`output_tokens: 1`, as the real API does) and,
//! cumulative, in `message_delta` (which repeats the input counts): a client
//! must take the last value, not add them up.
//!
//! Cache writes: the words of text blocks marked `cache_control` in the
//! messages (not the system prompt, whose words are the cached ones) are
//! written to the cache: `cache_creation_input_tokens`, split by lifetime in
//! `cache_creation` (`"ttl": "1h"`, else 5 minutes), as the API reports them.
//!
//! Structured outputs (`output_config.format`) are checked and answered in
//! `output`.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{Answer, Ready};
use crate::error::MockError;
use crate::tokens::{
    Exchange, Message, Role, ToolDecl, fill_required, invalid_schema_type, join_parts,
    split_pieces, word_count,
};
use crate::{fields, ids, sse};

mod output;

/// `(id, display name, created_at)` of the models the list shows. Messages
/// accept any model name.
pub const LISTED_MODELS: &[(&str, &str, &str)] = &[
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-15T00:00:00Z",
    ),
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    pub model: String,
    pub stream: bool,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDecl>,
    /// Words of the blocks marked `cache_control`: (5-minute, 1-hour).
    pub cache_writes: (u64, u64),
    /// `output_config.format.schema`: the answer is JSON text.
    pub output_schema: Option<Value>,
}

fn required<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<&'a Value, MockError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(MockError::MissingParam(name)),
        Some(v) => Ok(v),
    }
}

impl MessagesRequest {
    /// `counting`: a count_tokens request (no `max_tokens` needed).
    pub fn parse(body: &[u8], counting: bool) -> Result<Self, MockError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| MockError::BadJson(e.to_string()))?;
        let obj = v.as_object().ok_or(MockError::InvalidType {
            param: "body",
            expected: "an object",
        })?;
        fields::check(obj, fields::ANTHROPIC, fields::Api::Anthropic)?;
        let model = match required(obj, "model")? {
            Value::String(m) if !m.is_empty() => m.clone(),
            _ => {
                return Err(MockError::InvalidType {
                    param: "model",
                    expected: "a non-empty string",
                });
            }
        };
        if !counting {
            required(obj, "max_tokens")?
                .as_u64()
                .ok_or(MockError::InvalidType {
                    param: "max_tokens",
                    expected: "a positive integer",
                })?;
            check_sampling(obj)?;
        }
        let output_schema = if counting {
            None
        } else {
            output::schema(obj, &model)?
        };
        let raw_messages = required(obj, "messages")?
            .as_array()
            .ok_or(MockError::InvalidType {
                param: "messages",
                expected: "an array",
            })?;
        // As Anthropic answers an empty conversation (counting included).
        if raw_messages.is_empty() {
            return Err(MockError::Invalid(
                "messages: at least one message is required".into(),
            ));
        }
        let mut messages = Vec::new();
        match obj.get("system") {
            Some(Value::String(s)) => messages.push(Message::new(Role::System, s.clone())),
            Some(Value::Array(blocks)) => messages.push(Message::new(
                Role::System,
                join_parts(blocks.iter().filter_map(block_text)),
            )),
            _ => {}
        }
        for m in raw_messages {
            parse_message(m, &mut messages);
        }
        let cache_writes = cache_writes(raw_messages);
        let tools: Vec<ToolDecl> = obj
            .get("tools")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    // Custom tools have an input schema; server tools do not.
                    .filter(|t| t.get("input_schema").is_some())
                    .filter_map(|t| {
                        Some(ToolDecl {
                            name: t.get("name")?.as_str()?.to_owned(),
                            parameters: t.get("input_schema").cloned().unwrap_or(Value::Null),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (i, t) in tools.iter().enumerate() {
            if !crate::openai::tool_name_fits(&t.name, 128) {
                return Err(MockError::Invalid(format!(
                    "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )));
            }
            if let Some(bad) = invalid_schema_type(&t.parameters) {
                return Err(MockError::Invalid(format!(
                    "tools.{i}.custom.input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 ('{bad}' is not a valid type)."
                )));
            }
        }
        Ok(Self {
            model,
            stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
            messages,
            tools,
            cache_writes,
            output_schema,
        })
    }

    pub fn exchange(&self) -> Exchange {
        let mut ex = Exchange::new(&self.messages, &self.tools);
        let (five_min, one_hour) = self.cache_writes;
        ex.cache_write_tokens = five_min + one_hour;
        ex.cache_write_1h_tokens = one_hour;
        if let (Some(schema), None) = (&self.output_schema, &ex.tool_call) {
            ex.reply = fill_required(schema).to_string();
            ex.completion_tokens = word_count(&ex.reply);
        }
        ex
    }
}

/// What the real API refuses of sampling: `temperature` outside 0..1
/// (OpenAI and Gemini allow up to 2), and `temperature` with `top_p`, which
/// Claude Sonnet 4.5, Haiku 4.5, Opus 4.1 and later refuse (every model
/// here: the mock serves current ones under any name).
pub const BOTH_SAMPLING: &str =
    "`temperature` and `top_p` cannot both be specified for this model. Please use only one.";

fn check_sampling(obj: &serde_json::Map<String, Value>) -> Result<(), MockError> {
    let set = |name: &str| obj.get(name).filter(|v| !v.is_null());
    if let Some(t) = set("temperature") {
        let t = t.as_f64().ok_or(MockError::InvalidType {
            param: "temperature",
            expected: "a valid number",
        })?;
        if !(0.0..=1.0).contains(&t) {
            return Err(MockError::Invalid("temperature: range: 0..1".to_owned()));
        }
    }
    if set("temperature").is_some() && set("top_p").is_some() {
        return Err(MockError::Invalid(BOTH_SAMPLING.to_owned()));
    }
    Ok(())
}

/// Words of the messages' text blocks marked `cache_control`, by lifetime:
/// (5-minute, 1-hour).
fn cache_writes(messages: &[Value]) -> (u64, u64) {
    let blocks = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten();
    let mut writes = (0, 0);
    for b in blocks {
        let (Some(text), Some(cc)) = (block_text(b), b.get("cache_control")) else {
            continue;
        };
        let words = word_count(text);
        if cc.get("ttl").and_then(Value::as_str) == Some("1h") {
            writes.1 += words;
        } else {
            writes.0 += words;
        }
    }
    writes
}

/// The text of a `{"type":"text","text":..}` block.
fn block_text(block: &Value) -> Option<&str> {
    (block.get("type").and_then(Value::as_str) == Some("text"))
        .then(|| block.get("text").and_then(Value::as_str))
        .flatten()
}

/// One wire message: its text blocks make one message of its role, each
/// `tool_result` block a tool message (after the text, so that a message
/// carrying results ends the conversation with them).
fn parse_message(m: &Value, out: &mut Vec<Message>) {
    let role = Role::from_wire(m.get("role").and_then(Value::as_str).unwrap_or(""));
    match m.get("content") {
        Some(Value::String(s)) => out.push(Message::new(role, s.clone())),
        Some(Value::Array(blocks)) => {
            let texts: Vec<&str> = blocks.iter().filter_map(block_text).collect();
            let results: Vec<String> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .map(|b| match b.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => join_parts(parts.iter().filter_map(block_text)),
                    _ => String::new(),
                })
                .collect();
            if !texts.is_empty() || results.is_empty() {
                out.push(Message::new(role, join_parts(texts)));
            }
            out.extend(results.into_iter().map(|r| Message::new(Role::Tool, r)));
        }
        _ => out.push(Message::new(role, "")),
    }
}

/// The usage object: `output_tokens` given (1 in `message_start`).
fn usage_with_output(ex: &Exchange, output_tokens: u64) -> Value {
    json!({
        "input_tokens": ex.uncached_tokens(),
        "cache_creation_input_tokens": ex.cache_write_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": ex.cache_write_tokens - ex.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": ex.cache_write_1h_tokens
        },
        "cache_read_input_tokens": ex.cached_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard"
    })
}

/// The final usage of an exchange.
pub fn usage(ex: &Exchange) -> Value {
    usage_with_output(ex, ex.completion_tokens)
}

struct Identity {
    id: String,
    tool_use_id: String,
}

impl Identity {
    fn new() -> Self {
        Self {
            id: format!("msg_01{}", ids::random_alnum(22)),
            tool_use_id: format!("toolu_01{}", ids::random_alnum(22)),
        }
    }
}

fn stop_reason(ex: &Exchange) -> &'static str {
    if ex.tool_call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn message(model: &str, id: &Identity, ex: &Exchange) -> Value {
    let block = match &ex.tool_call {
        Some(call) => json!({
            "type": "tool_use", "id": id.tool_use_id, "name": call.name, "input": call.arguments
        }),
        None => json!({"type": "text", "text": ex.reply}),
    };
    json!({
        "id": id.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop_reason(ex),
        "stop_sequence": null,
        "usage": usage(ex)
    })
}

/// The SSE events: message_start, content_block_start, ping, the deltas
/// (one `text_delta` per word, or `input_json_delta`s: an empty one first,
/// as the real API sends, then the arguments in two pieces),
/// content_block_stop, message_delta, message_stop. Returns the frames and
/// the index of the `message_delta` (the final usage).
fn stream_frames(model: &str, id: &Identity, ex: &Exchange) -> (Vec<Bytes>, usize) {
    let start = json!({
        "id": id.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": usage_with_output(ex, 1)
    });
    let mut events = vec![json!({"type": "message_start", "message": start})];
    let (block, deltas): (Value, Vec<Value>) = match &ex.tool_call {
        Some(call) => {
            let mut pieces = vec![String::new()];
            pieces.extend(split_pieces(&call.arguments_json(), 2));
            (
                json!({"type": "tool_use", "id": id.tool_use_id, "name": call.name, "input": {}}),
                pieces
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            )
        }
        None => (
            json!({"type": "text", "text": ""}),
            ex.reply_pieces()
                .into_iter()
                .map(|p| json!({"type": "text_delta", "text": p}))
                .collect(),
        ),
    };
    events.push(json!({"type": "content_block_start", "index": 0, "content_block": block}));
    events.push(json!({"type": "ping"}));
    for d in deltas {
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": d}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    let mut final_usage = usage(ex);
    if let Some(u) = final_usage.as_object_mut() {
        u.remove("service_tier");
    }
    let usage_index = events.len();
    events.push(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(ex), "stop_sequence": null},
        "usage": final_usage
    }));
    events.push(json!({"type": "message_stop"}));
    let frames = events
        .iter()
        .map(|e| sse::event(e["type"].as_str().unwrap_or_default(), e))
        .collect();
    (frames, usage_index)
}

/// The answer to `POST /v1/messages`.
pub fn answer(req: &MessagesRequest) -> Ready {
    let ex = req.exchange();
    let id = Identity::new();
    let answer = if req.stream {
        let (frames, usage_index) = stream_frames(&req.model, &id, &ex);
        Answer::Sse {
            frames,
            usage: Some(usage(&ex)),
            usage_index: Some(usage_index),
        }
    } else {
        Answer::Json {
            body: message(&req.model, &id, &ex),
            usage: Some(usage(&ex)),
        }
    };
    Ready {
        model: req.model.clone(),
        answer,
    }
}

/// The answer to `POST /v1/messages/count_tokens`: every prompt token.
pub fn count_tokens(req: &MessagesRequest) -> Ready {
    let ex = req.exchange();
    Ready {
        model: req.model.clone(),
        answer: Answer::Json {
            body: json!({"input_tokens": ex.prompt_tokens}),
            usage: None,
        },
    }
}

fn model_object(id: &str, name: &str, created_at: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": name, "created_at": created_at})
}

/// `GET /v1/models` (Anthropic's shape).
pub fn models_list() -> Value {
    let data: Vec<Value> = LISTED_MODELS
        .iter()
        .map(|(id, name, created)| model_object(id, name, created))
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": LISTED_MODELS.first().map(|m| m.0),
        "last_id": LISTED_MODELS.last().map(|m| m.0)
    })
}

/// `GET /v1/models/{id}`.
pub fn model(id: &str) -> Option<Value> {
    LISTED_MODELS
        .iter()
        .find(|m| m.0 == id)
        .map(|(id, name, created)| model_object(id, name, created))
}

/// Anthropic's words for an error.
fn message_of(err: &MockError) -> String {
    match err {
        MockError::MissingKey => "x-api-key header is required".to_owned(),
        MockError::MissingParam(p) => format!("{p}: Field required"),
        MockError::InvalidType { param, expected } => {
            format!("{param}: Input should be {expected}")
        }
        MockError::BadJson(e) => format!("There was an error parsing the body: {e}"),
        MockError::UnknownPath { .. } => "Not Found".to_owned(),
        MockError::Injected { status, message } => match status.as_u16() {
            529 => "Overloaded".to_owned(),
            _ => message.clone(),
        },
        other => other.to_string(),
    }
}

/// Status and body of an error in Anthropic's shape.
pub fn error_parts(err: &MockError) -> (StatusCode, Value) {
    let status = err.status();
    let kind = match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": message_of(err)},
        "request_id": format!("req_011C{}", ids::random_alnum(20))
    });
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<MessagesRequest, MockError> {
        MessagesRequest::parse(v.to_string().as_bytes(), false)
    }

    fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).expect("utf8");
                let (head, data) = s.split_once('\n').expect("two lines");
                let name = head.strip_prefix("event: ").expect("event line");
                let data = data
                    .strip_prefix("data: ")
                    .and_then(|d| d.strip_suffix("\n\n"))
                    .expect("data line");
                (name.to_owned(), serde_json::from_str(data).expect("json"))
            })
            .collect()
    }

    fn tools() -> Value {
        json!([{"name": "get_weather", "description": "weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    }

    #[test]
    fn text_message_and_usage() {
        let req = parse(json!({
            "model": "claude-x", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]}]
        }))
        .expect("valid");
        let Answer::Json { body, usage } = answer(&req).answer else {
            panic!("json expected")
        };
        assert!(body["id"].as_str().is_some_and(|i| i.starts_with("msg_")));
        assert_eq!(body["type"], "message");
        assert_eq!(
            body["content"][0],
            json!({"type": "text", "text": "mock reply: hello there"})
        );
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["input_tokens"], 2);
        assert_eq!(body["usage"]["cache_read_input_tokens"], 2);
        assert_eq!(body["usage"]["output_tokens"], 4);
        assert_eq!(usage, Some(body["usage"].clone()));
    }

    #[test]
    fn blocks_marked_for_the_cache_are_written_by_lifetime() {
        let req = parse(json!({
            "model": "claude-x", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "a long document", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "kept an hour", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "question"}]}]
        }))
        .expect("valid");
        let Answer::Json { body, .. } = answer(&req).answer else {
            panic!("json expected")
        };
        let u = &body["usage"];
        assert_eq!(u["cache_read_input_tokens"], 2);
        assert_eq!(u["cache_creation_input_tokens"], 6);
        assert_eq!(u["cache_creation"]["ephemeral_5m_input_tokens"], 3);
        assert_eq!(u["cache_creation"]["ephemeral_1h_input_tokens"], 3);
        assert_eq!(u["input_tokens"], 1);
    }

    #[test]
    fn tool_use_then_tool_result() {
        let req = parse(json!({
            "model": "c", "max_tokens": 10, "system": "Be brief.", "tools": tools(),
            "messages": [{"role": "user", "content": "Weather in Paris?"}]
        }))
        .expect("valid");
        let Answer::Json { body, .. } = answer(&req).answer else {
            panic!("json expected")
        };
        let block = &body["content"][0];
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({"city": "Paris"}));
        assert!(
            block["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("toolu_"))
        );
        assert_eq!(body["stop_reason"], "tool_use");
        assert_eq!(body["usage"]["output_tokens"], 1);

        let req = parse(json!({
            "model": "c", "max_tokens": 10, "system": "Be brief.", "tools": tools(),
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [block.clone()]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"],
                    "content": [{"type": "text", "text": "Sunny, 21 C"}]}]}
            ]
        }))
        .expect("valid");
        let ex = req.exchange();
        assert_eq!(ex.reply, "mock reply: tool said Sunny, 21 C");
        assert_eq!((ex.prompt_tokens, ex.cached_tokens), (8, 2));
    }

    #[test]
    fn text_stream_events() {
        let req = parse(
            json!({"model": "c", "max_tokens": 5, "stream": true, "system": "sys",
            "messages": [{"role": "user", "content": "hi you"}]}),
        )
        .expect("valid");
        let Answer::Sse {
            frames,
            usage,
            usage_index,
        } = answer(&req).answer
        else {
            panic!("sse expected")
        };
        let evs = events(&frames);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, e) in &evs {
            assert_eq!(&e["type"], name);
        }
        let start = &evs[0].1["message"]["usage"];
        assert_eq!(
            (
                start["input_tokens"].as_u64(),
                start["cache_read_input_tokens"].as_u64()
            ),
            (Some(2), Some(1))
        );
        assert_eq!(start["output_tokens"], 1);
        let text: String = evs
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, e)| e["delta"]["text"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(text, "mock reply: hi you");
        let delta = &evs[8].1;
        assert_eq!(usage_index, Some(8));
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta["usage"]["output_tokens"], 4);
        assert_eq!(delta["usage"]["input_tokens"], 2);
        assert_eq!(usage.expect("usage")["output_tokens"], 4);
    }

    #[test]
    fn tool_stream_sends_json_in_pieces() {
        let req = parse(
            json!({"model": "c", "max_tokens": 5, "stream": true, "tools": tools(),
            "messages": [{"role": "user", "content": "weather?"}]}),
        )
        .expect("valid");
        let Answer::Sse { frames, .. } = answer(&req).answer else {
            panic!("sse expected")
        };
        let evs = events(&frames);
        assert_eq!(evs[1].1["content_block"]["type"], "tool_use");
        assert_eq!(evs[1].1["content_block"]["input"], json!({}));
        let pieces: Vec<&str> = evs
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, e)| {
                assert_eq!(e["delta"]["type"], "input_json_delta");
                e["delta"]["partial_json"].as_str().unwrap_or_default()
            })
            .collect();
        assert!(pieces.len() >= 3);
        assert_eq!(pieces.concat(), r#"{"city":"Paris"}"#);
        let delta = evs
            .iter()
            .find(|(n, _)| n == "message_delta")
            .expect("delta");
        assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta.1["usage"]["output_tokens"], 1);
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            parse(json!({"model": "c", "messages": []})),
            Err(MockError::MissingParam("max_tokens"))
        ));
        assert!(matches!(
            parse(json!({"max_tokens": 1, "messages": []})),
            Err(MockError::MissingParam("model"))
        ));
        let one = br#"{"model":"c","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(MessagesRequest::parse(one, true).is_ok());
        assert!(matches!(
            MessagesRequest::parse(br#"{"model":"c","max_tokens":1,"messages":[]}"#, false),
            Err(MockError::Invalid(m)) if m.contains("at least one message")
        ));
        let (status, body) = error_parts(&MockError::MissingParam("max_tokens"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "max_tokens: Field required");
        let (status, body) = error_parts(&MockError::MissingKey);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["type"], "authentication_error");
    }

    #[test]
    fn refuses_sampling_the_real_api_refuses() {
        let with = |extra: Value| {
            let mut v = json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            parse(v)
        };
        let err = with(json!({"temperature": 0.5, "top_p": 0.9})).expect_err("both");
        let (status, body) = error_parts(&err);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], BOTH_SAMPLING);
        for t in [1.5, 2.0, -0.1] {
            let err = with(json!({"temperature": t})).expect_err("out of range");
            let (status, body) = error_parts(&err);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"]["message"], "temperature: range: 0..1");
        }
        assert!(with(json!({"temperature": "hot"})).is_err());
        for ok in [
            json!({"temperature": 0.0}),
            json!({"temperature": 1}),
            json!({"top_p": 0.9}),
            json!({"temperature": 0.7, "top_p": null}),
        ] {
            assert!(with(ok.clone()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn count_tokens_counts_the_prompt() {
        let req = MessagesRequest::parse(
            json!({"model": "c", "system": "a b", "messages": [{"role": "user", "content": "c d e"}]})
                .to_string()
                .as_bytes(),
            true,
        )
        .expect("valid");
        let Answer::Json { body, .. } = count_tokens(&req).answer else {
            panic!("json expected")
        };
        assert_eq!(body, json!({"input_tokens": 5}));
    }
}
