//! OpenAI's Responses API (`POST /v1/responses`): parse `instructions`,
//! `input` (a string or items: messages, `function_call`,
//! `function_call_output`) and function `tools`; answer with a `response`
//! object, or with the real event sequence when streaming (`response.created`
//! … `response.completed`, every event with its `sequence_number`, the usage
//! in `response.completed` only). Errors are OpenAI's.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::app::{Answer, Ready};
use crate::error::MockError;
use crate::tokens::{Exchange, Message, Role, ToolDecl, join_parts, split_pieces};
use crate::{fields, ids, sse};

#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    pub model: String,
    pub stream: bool,
    pub instructions: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDecl>,
    /// Echoed in the response, as the real API does.
    pub raw_tools: Value,
}

impl ResponsesRequest {
    pub fn parse(body: &[u8]) -> Result<Self, MockError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| MockError::BadJson(e.to_string()))?;
        let obj = v.as_object().ok_or(MockError::InvalidType {
            param: "body",
            expected: "an object",
        })?;
        fields::check(obj, fields::RESPONSES, fields::Api::OpenAi)?;
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
        let instructions = obj
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut messages = Vec::new();
        if let Some(text) = &instructions {
            messages.push(Message::new(Role::System, text.clone()));
        }
        match obj.get("input") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => messages.push(Message::new(Role::User, s.clone())),
            Some(Value::Array(items)) => messages.extend(items.iter().filter_map(parse_item)),
            Some(_) => {
                return Err(MockError::InvalidType {
                    param: "input",
                    expected: "a string or an array",
                });
            }
        }
        let raw_tools = obj.get("tools").cloned().unwrap_or_else(|| json!([]));
        let tools: Vec<ToolDecl> = raw_tools
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                    .filter_map(|t| {
                        Some(ToolDecl {
                            name: t.get("name")?.as_str()?.to_owned(),
                            parameters: t.get("parameters").cloned().unwrap_or(Value::Null),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        crate::openai::check_tool_schemas(&tools)?;
        Ok(Self {
            model,
            stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
            instructions,
            messages,
            tools,
            raw_tools,
        })
    }

    pub fn exchange(&self) -> Exchange {
        Exchange::new(&self.messages, &self.tools)
    }
}

/// Text of `content`: a string or `input_text`/`output_text` parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => join_parts(
            parts
                .iter()
                .filter(|p| {
                    matches!(
                        p.get("type").and_then(Value::as_str),
                        Some("input_text" | "output_text" | "text")
                    )
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str)),
        ),
        _ => String::new(),
    }
}

fn parse_item(item: &Value) -> Option<Message> {
    match item.get("type").and_then(Value::as_str) {
        None | Some("message") => {
            let role = Role::from_wire(item.get("role").and_then(Value::as_str).unwrap_or(""));
            Some(Message::new(role, content_text(item.get("content"))))
        }
        Some("function_call_output" | "custom_tool_call_output") => {
            Some(Message::new(Role::Tool, content_text(item.get("output"))))
        }
        // The assistant's own calls and anything else carry no text.
        Some(_) => Some(Message::new(Role::Other, "")),
    }
}

/// The `usage` object of a response.
pub fn usage(ex: &Exchange) -> Value {
    json!({
        "input_tokens": ex.prompt_tokens,
        "input_tokens_details": {"cached_tokens": ex.cached_tokens},
        "output_tokens": ex.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": ex.total_tokens()
    })
}

/// Identity of one response and its output item.
#[derive(Debug, Clone)]
struct Identity {
    id: String,
    item_id: String,
    call_id: String,
    created_at: u64,
}

impl Identity {
    fn new(is_call: bool) -> Self {
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let prefix = if is_call { "fc" } else { "msg" };
        Self {
            id: format!("resp_{}", ids::random_hex(50)),
            item_id: format!("{prefix}_{}", ids::random_hex(50)),
            call_id: format!("call_{}", ids::random_alnum(24)),
            created_at,
        }
    }
}

/// The output item, `completed` or as first announced (`in_progress`, empty).
fn output_item(id: &Identity, ex: &Exchange, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    match &ex.tool_call {
        Some(call) => json!({
            "id": id.item_id,
            "type": "function_call",
            "status": status,
            "arguments": if done { call.arguments_json() } else { String::new() },
            "call_id": id.call_id,
            "name": call.name
        }),
        None => json!({
            "id": id.item_id,
            "type": "message",
            "status": status,
            "content": if done { json!([text_part(&ex.reply)]) } else { json!([]) },
            "role": "assistant"
        }),
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// The `response` object; `done`: completed with output and usage, else as
/// announced by `response.created` (in progress, no output yet).
fn response_object(req: &ResponsesRequest, id: &Identity, ex: &Exchange, done: bool) -> Value {
    json!({
        "id": id.id,
        "object": "response",
        "created_at": id.created_at,
        "status": if done { "completed" } else { "in_progress" },
        "background": false,
        "completed_at": if done { json!(id.created_at) } else { Value::Null },
        "error": null,
        "incomplete_details": null,
        "instructions": req.instructions,
        "max_output_tokens": null,
        "max_tool_calls": null,
        "model": req.model,
        "output": if done { json!([output_item(id, ex, true)]) } else { json!([]) },
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "prompt_cache_key": null,
        "reasoning": {"effort": null, "summary": null},
        "safety_identifier": null,
        "service_tier": "default",
        "store": true,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": req.raw_tools,
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if done { usage(ex) } else { Value::Null },
        "user": null,
        "metadata": {}
    })
}

/// The streamed events, in order, each `event: TYPE` + `data:` frame.
fn stream_frames(req: &ResponsesRequest, id: &Identity, ex: &Exchange) -> Vec<Bytes> {
    let mut events: Vec<Value> = vec![
        json!({"type": "response.created", "response": response_object(req, id, ex, false)}),
        json!({"type": "response.in_progress", "response": response_object(req, id, ex, false)}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": output_item(id, ex, false)}),
    ];
    match &ex.tool_call {
        Some(call) => {
            let args = call.arguments_json();
            for piece in split_pieces(&args, 2) {
                events.push(json!({
                    "type": "response.function_call_arguments.delta",
                    "item_id": id.item_id, "output_index": 0, "delta": piece
                }));
            }
            events.push(json!({
                "type": "response.function_call_arguments.done",
                "item_id": id.item_id, "output_index": 0, "name": call.name, "arguments": args
            }));
        }
        None => {
            events.push(json!({
                "type": "response.content_part.added",
                "item_id": id.item_id, "output_index": 0, "content_index": 0, "part": text_part("")
            }));
            for piece in ex.reply_pieces() {
                events.push(json!({
                    "type": "response.output_text.delta",
                    "item_id": id.item_id, "output_index": 0, "content_index": 0,
                    "delta": piece, "logprobs": []
                }));
            }
            events.push(json!({
                "type": "response.output_text.done",
                "item_id": id.item_id, "output_index": 0, "content_index": 0,
                "text": ex.reply, "logprobs": []
            }));
            events.push(json!({
                "type": "response.content_part.done",
                "item_id": id.item_id, "output_index": 0, "content_index": 0,
                "part": text_part(&ex.reply)
            }));
        }
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": output_item(id, ex, true)}));
    events.push(
        json!({"type": "response.completed", "response": response_object(req, id, ex, true)}),
    );
    events
        .into_iter()
        .enumerate()
        .map(|(seq, mut e)| {
            e["sequence_number"] = json!(seq);
            let name = e["type"].as_str().unwrap_or_default().to_owned();
            sse::event(&name, &e)
        })
        .collect()
}

/// The answer to a Responses request.
pub fn answer(req: &ResponsesRequest) -> Ready {
    let ex = req.exchange();
    let id = Identity::new(ex.tool_call.is_some());
    let answer = if req.stream {
        let frames = stream_frames(req, &id, &ex);
        let last = frames.len() - 1;
        Answer::Sse {
            frames,
            usage: Some(usage(&ex)),
            usage_index: Some(last),
        }
    } else {
        Answer::Json {
            body: response_object(req, &id, &ex, true),
            usage: Some(usage(&ex)),
        }
    };
    Ready {
        model: req.model.clone(),
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> ResponsesRequest {
        ResponsesRequest::parse(v.to_string().as_bytes()).expect("valid")
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

    fn weather_tools() -> Value {
        json!([{"type": "function", "name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    }

    #[test]
    fn string_input_and_instructions() {
        let req =
            parse(json!({"model": "gpt-4o", "instructions": "Be brief.", "input": "hi there"}));
        let ex = req.exchange();
        assert_eq!(ex.reply, "mock reply: hi there");
        assert_eq!((ex.prompt_tokens, ex.cached_tokens), (4, 2));
        let Answer::Json { body, usage } = answer(&req).answer else {
            panic!("json expected")
        };
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["output"][0]["type"], "message");
        assert_eq!(
            body["output"][0]["content"][0]["text"],
            "mock reply: hi there"
        );
        assert_eq!(body["usage"]["input_tokens"], 4);
        assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 2);
        assert_eq!(body["usage"]["output_tokens"], 4);
        assert_eq!(usage, Some(body["usage"].clone()));
    }

    #[test]
    fn tool_round_trip_items() {
        let first = parse(json!({"model": "m", "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}
        ], "tools": weather_tools()}));
        let Answer::Json { body, .. } = answer(&first).answer else {
            panic!("json expected")
        };
        let item = &body["output"][0];
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["name"], "get_weather");
        assert_eq!(item["arguments"], r#"{"city":"Paris"}"#);
        assert!(
            item["call_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("call_"))
        );
        assert_eq!(body["usage"]["output_tokens"], 1);

        let second = parse(json!({"model": "m", "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"}
        ], "tools": weather_tools()}));
        let ex = second.exchange();
        assert_eq!(ex.reply, "mock reply: tool said Sunny, 21 C");
        assert_eq!((ex.prompt_tokens, ex.cached_tokens), (8, 2));
    }

    #[test]
    fn text_stream_has_the_real_event_sequence() {
        let req = parse(json!({"model": "m", "input": "hi you", "stream": true}));
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
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        for (i, (name, e)) in evs.iter().enumerate() {
            assert_eq!(e["sequence_number"], i);
            assert_eq!(&e["type"], name);
        }
        let text: String = evs
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, e)| e["delta"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(text, "mock reply: hi you");
        assert!(evs[0].1["response"]["usage"].is_null());
        let done = &evs[evs.len() - 1].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["id"], evs[0].1["response"]["id"]);
        assert_eq!(done["usage"]["output_tokens"], 4);
        assert_eq!(usage_index, Some(frames.len() - 1));
        assert_eq!(usage, Some(done["usage"].clone()));
    }

    #[test]
    fn tool_stream_streams_the_arguments() {
        let req = parse(
            json!({"model": "m", "input": "weather?", "stream": true, "tools": weather_tools()}),
        );
        let Answer::Sse { frames, .. } = answer(&req).answer else {
            panic!("sse expected")
        };
        let evs = events(&frames);
        let deltas: Vec<&str> = evs
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .map(|(_, e)| e["delta"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(deltas.len(), 2);
        assert_eq!(deltas.concat(), r#"{"city":"Paris"}"#);
        let added = &evs[2].1["item"];
        let done = &evs[evs.len() - 2].1["item"];
        assert_eq!(added["call_id"], done["call_id"]);
        assert_eq!(added["arguments"], "");
        assert_eq!(done["arguments"], r#"{"city":"Paris"}"#);
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            ResponsesRequest::parse(br#"{"input":"x"}"#),
            Err(MockError::MissingParam("model"))
        ));
        assert!(matches!(
            ResponsesRequest::parse(br#"{"model":"m","input":3}"#),
            Err(MockError::InvalidType { param: "input", .. })
        ));
    }
}
