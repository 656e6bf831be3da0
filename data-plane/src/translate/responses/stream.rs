//! The Responses stream: its events → IR (`Decoder`) and IR → the exact
//! event sequence the API sends (`Encoder`).

use std::collections::{HashMap, HashSet};

use bytes::BytesMut;
use serde_json::{Value, json};

use super::{
    Echo, call_item, fc_id, fresh_id, message_item, msg_id, now_secs, resp_id, status_of,
    stop_from, text_part, usage_from, usage_json,
};
use crate::sse::Event;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::{StreamDecoder, StreamEncoder, write_sse};
use crate::usage::Usage;

/// Responses events → IR. Function calls are numbered in the order their
/// items are added and found again by output index or item id.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    finished: bool,
    next_tool: u32,
    /// Output index → the call's IR index and whether its arguments were sent.
    calls: HashMap<u64, (u32, bool)>,
    /// Item id → output index, for events that carry only the item id.
    items: HashMap<String, u64>,
    /// Output indexes of messages whose text came as deltas.
    texted: HashSet<u64>,
}

impl Decoder {
    fn start(&mut self, resp: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            let field = |k: &str| {
                resp.and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            out.push(StreamEvent::Start {
                id: field("id"),
                model: field("model"),
            });
        }
    }

    /// The output index an event refers to.
    fn index_of(&self, v: &Value) -> Option<u64> {
        v.get("output_index").and_then(Value::as_u64).or_else(|| {
            let id = v.get("item_id").and_then(Value::as_str)?;
            self.items.get(id).copied()
        })
    }

    /// A function call item appeared (normally in `output_item.added`; in
    /// `output_item.done` when the stream skipped that).
    fn open_call(&mut self, oi: u64, item: &Value, out: &mut Vec<StreamEvent>) {
        if self.calls.contains_key(&oi) {
            return;
        }
        let index = self.next_tool;
        self.next_tool += 1;
        self.calls.insert(oi, (index, false));
        if let Some(id) = item.get("id").and_then(Value::as_str) {
            self.items.insert(id.to_string(), oi);
        }
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        out.push(StreamEvent::ToolCallStart {
            index,
            id: s("call_id"),
            name: s("name"),
        });
    }

    /// Arguments sent whole (`.done`, `output_item.done`), unless deltas already carried them.
    fn whole_arguments(&mut self, oi: u64, args: Option<&str>, out: &mut Vec<StreamEvent>) {
        if let (Some((index, sent)), Some(a)) = (self.calls.get_mut(&oi), args)
            && !*sent
            && !a.is_empty()
        {
            *sent = true;
            out.push(StreamEvent::ToolCallDelta {
                index: *index,
                arguments: a.to_string(),
            });
        }
    }

    fn finish(&mut self, resp: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let resp = resp.unwrap_or(&Value::Null);
        let called = !self.calls.is_empty();
        let stop = stop_from(resp, called).unwrap_or(if called {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        out.push(StreamEvent::Finish(stop));
        if let Some(u) = resp.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(usage_from(u)));
        }
    }
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
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or_default();
        match ty {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(v.get("response"), out)
            }
            "response.output_item.added" | "response.output_item.done" => {
                self.start(None, out);
                let item = v.get("item").unwrap_or(&Value::Null);
                let Some(oi) = v.get("output_index").and_then(Value::as_u64) else {
                    return;
                };
                match item.get("type").and_then(Value::as_str) {
                    Some("function_call") => {
                        self.open_call(oi, item, out);
                        if ty == "response.output_item.done" {
                            self.whole_arguments(
                                oi,
                                item.get("arguments").and_then(Value::as_str),
                                out,
                            );
                        }
                    }
                    // A message whose text never came as deltas.
                    Some("message")
                        if ty == "response.output_item.done" && !self.texted.contains(&oi) =>
                    {
                        for c in item
                            .get("content")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            let t = c
                                .get("text")
                                .or_else(|| c.get("refusal"))
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            if !t.is_empty() {
                                out.push(StreamEvent::TextDelta(t.to_string()));
                            }
                        }
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.start(None, out);
                if let Some(oi) = self.index_of(&v) {
                    self.texted.insert(oi);
                }
                if let Some(t) = v
                    .get("delta")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    out.push(StreamEvent::TextDelta(t.to_string()));
                }
            }
            "response.function_call_arguments.delta" => {
                let Some(oi) = self.index_of(&v) else { return };
                let (Some((index, sent)), Some(a)) = (
                    self.calls.get_mut(&oi),
                    v.get("delta").and_then(Value::as_str),
                ) else {
                    return;
                };
                if !a.is_empty() {
                    *sent = true;
                    out.push(StreamEvent::ToolCallDelta {
                        index: *index,
                        arguments: a.to_string(),
                    });
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(oi) = self.index_of(&v) {
                    self.whole_arguments(oi, v.get("arguments").and_then(Value::as_str), out);
                }
            }
            "response.completed" | "response.incomplete" => {
                let resp = v.get("response");
                self.start(resp, out);
                self.finish(resp, out);
            }
            "response.failed" => {
                let err = v.get("response").and_then(|r| r.get("error"));
                out.push(StreamEvent::Error {
                    message: error_message(err, "the response failed"),
                });
            }
            "error" => {
                // Older streams put the fields at the top, newer ones under `error`.
                let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
                out.push(StreamEvent::Error {
                    message: error_message(Some(err), "upstream error"),
                });
            }
            _ => {}
        }
    }
}

fn error_message(err: Option<&Value>, default: &str) -> String {
    err.and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

/// The item being streamed: the API streams one output item at a time.
enum Open {
    None,
    Message {
        id: String,
        text: String,
    },
    Call {
        tool: u32,
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
}

/// IR → Responses events: `response.created`, `response.in_progress`, then
/// per item `output_item.added` … `output_item.done`, and in `end` the final
/// `response.completed` / `.incomplete` / `.failed` with the whole Response
/// and its usage (which may arrive after `Finish`).
pub struct Encoder {
    id: String,
    model: String,
    created_at: u64,
    echo: Echo,
    seq: u64,
    started: bool,
    /// Finished output items; the open one's output index is `output.len()`.
    output: Vec<Value>,
    open: Open,
    messages: usize,
    /// IR tool index → output index, for deltas to a call already closed.
    calls: HashMap<u32, usize>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    error: Option<String>,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            created_at: now_secs(),
            echo: Echo::of(Some(req)),
            seq: 0,
            started: false,
            output: Vec::new(),
            open: Open::None,
            messages: 0,
            calls: HashMap::new(),
            stop: None,
            usage: None,
            error: None,
        }
    }

    fn emit(&mut self, ty: &str, mut payload: Value, out: &mut BytesMut) {
        payload["type"] = json!(ty);
        payload["sequence_number"] = json!(self.seq);
        self.seq += 1;
        write_sse(out, Some(ty), &payload.to_string());
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = fresh_id();
        }
        let r = self.echo.response(&self.id, &self.model, self.created_at);
        self.emit("response.created", json!({"response": r}), out);
        self.emit("response.in_progress", json!({"response": r}), out);
    }

    /// Status of the item being closed: the one a limit cut short is incomplete.
    fn item_status(&self) -> &'static str {
        match self.stop {
            Some(StopReason::MaxTokens | StopReason::ContentFilter) => "incomplete",
            _ if self.error.is_some() => "incomplete",
            _ => "completed",
        }
    }

    fn close(&mut self, out: &mut BytesMut) {
        let oi = self.output.len();
        let status = self.item_status();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message { id, text } => {
                let at = json!({"item_id": id, "output_index": oi, "content_index": 0});
                let mut done = at.clone();
                done["text"] = json!(text);
                done["logprobs"] = json!([]);
                self.emit("response.output_text.done", done, out);
                let mut part = at;
                part["part"] = text_part(&text);
                self.emit("response.content_part.done", part, out);
                let item = message_item(&id, &text, status);
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item}),
                    out,
                );
                self.output.push(item);
            }
            Open::Call {
                tool,
                id,
                call_id,
                name,
                args,
            } => {
                let done = json!({"item_id": id, "output_index": oi, "arguments": args});
                self.emit("response.function_call_arguments.done", done, out);
                let item = call_item(&id, &call_id, &name, &args, status);
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": oi, "item": item}),
                    out,
                );
                self.output.push(item);
                self.calls.insert(tool, oi);
            }
        }
    }

    fn open_message(&mut self, out: &mut BytesMut) {
        if matches!(self.open, Open::Message { .. }) {
            return;
        }
        self.close(out);
        let oi = self.output.len();
        let id = msg_id(&self.id, self.messages);
        self.messages += 1;
        let item = message_item(&id, "", "in_progress");
        self.emit(
            "response.output_item.added",
            json!({"output_index": oi, "item": item}),
            out,
        );
        let part =
            json!({"item_id": id, "output_index": oi, "content_index": 0, "part": text_part("")});
        self.emit("response.content_part.added", part, out);
        self.open = Open::Message {
            id,
            text: String::new(),
        };
    }

    fn open_call(&mut self, tool: u32, call_id: &str, name: &str, out: &mut BytesMut) {
        self.close(out);
        let oi = self.output.len();
        let call_id = if call_id.is_empty() {
            format!("call_{}_{oi}", self.id)
        } else {
            call_id.to_string()
        };
        let id = fc_id(&self.id, &call_id, oi);
        let item = call_item(&id, &call_id, name, "", "in_progress");
        self.emit(
            "response.output_item.added",
            json!({"output_index": oi, "item": item}),
            out,
        );
        self.open = Open::Call {
            tool,
            id,
            call_id,
            name: name.to_string(),
            args: String::new(),
        };
    }

    fn call_delta(&mut self, tool: u32, delta: &str, out: &mut BytesMut) {
        let oi = self.output.len();
        if let Open::Call {
            tool: t, id, args, ..
        } = &mut self.open
            && *t == tool
        {
            args.push_str(delta);
            let ev = json!({"item_id": id, "output_index": oi, "delta": delta});
            self.emit("response.function_call_arguments.delta", ev, out);
            return;
        }
        // A call already closed (upstreams stream calls one after another, so
        // this is rare): its arguments still reach the app and the final object.
        if let Some(&oi) = self.calls.get(&tool) {
            if let Some(item) = self.output.get_mut(oi) {
                let args = format!("{}{delta}", item["arguments"].as_str().unwrap_or_default());
                item["arguments"] = json!(args);
                let id = item["id"].clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": oi, "delta": delta}),
                    out,
                );
            }
            return;
        }
        // Arguments for a call that never started: start it nameless rather than lose them.
        self.open_call(tool, "", "", out);
        self.call_delta(tool, delta, out);
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        match ev {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if !id.is_empty() {
                        self.id = resp_id(id);
                    }
                    if !model.is_empty() {
                        self.model = model.clone();
                    }
                }
                self.ensure_started(out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                if t.is_empty() {
                    return;
                }
                self.open_message(out);
                let oi = self.output.len();
                if let Open::Message { id, text } = &mut self.open {
                    text.push_str(t);
                    let ev = json!({"item_id": id, "output_index": oi, "content_index": 0, "delta": t, "logprobs": []});
                    self.emit("response.output_text.delta", ev, out);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.open_call(*index, id, name, out);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.ensure_started(out);
                if !arguments.is_empty() {
                    self.call_delta(*index, arguments, out);
                }
            }
            StreamEvent::Finish(r) => {
                self.ensure_started(out);
                self.stop = Some(*r);
                self.close(out);
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error { message } => {
                self.ensure_started(out);
                self.error = Some(message.clone());
                // The shape the API sends: fields at the top (as the SDK types
                // them) and under `error` (which makes the SDKs raise).
                let err = json!({"type": "server_error", "code": "server_error", "message": message, "param": null});
                let ev = json!({"code": "server_error", "message": message, "param": null, "error": err});
                self.emit("error", ev, out);
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        self.ensure_started(out);
        self.close(out);
        let mut r = self.echo.response(&self.id, &self.model, self.created_at);
        r["output"] = Value::Array(std::mem::take(&mut self.output));
        if let Some(u) = &self.usage {
            r["usage"] = usage_json(u);
        }
        let failure = match (&self.error, self.stop) {
            (Some(m), _) => Some(m.clone()),
            (None, None) => {
                Some("the upstream stream ended before the response was complete".to_string())
            }
            (None, Some(_)) => None,
        };
        if let Some(message) = failure {
            r["status"] = json!("failed");
            r["error"] = json!({"code": "server_error", "message": message});
            self.emit("response.failed", json!({"response": r}), out);
            return;
        }
        let (status, details) = status_of(self.stop);
        r["status"] = json!(status);
        if status == "completed" {
            r["completed_at"] = json!(now_secs());
        }
        r["incomplete_details"] = details;
        let ty = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(ty, json!({"response": r}), out);
    }
}
