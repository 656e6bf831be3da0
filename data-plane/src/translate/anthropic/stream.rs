//! Anthropic SSE events ⇄ IR stream events.

use bytes::BytesMut;
use serde_json::{Value, json};

use super::{Counts, error_message, msg_id, stop_from, stop_str, tool_id, usage_json};
use crate::sse::Event;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::{StreamDecoder, StreamEncoder, write_sse};
use crate::usage::Usage;

// ------------------------------------------------------------------ stream

/// Anthropic events → IR.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    /// Anthropic block index → IR tool-call index, for `tool_use` blocks.
    tools: Vec<(u64, u32)>,
    next_tool: u32,
    counts: Counts,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let data = ev.data.trim();
        if data.is_empty() {
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
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                if !self.started {
                    self.started = true;
                    out.push(StreamEvent::Start {
                        id: m
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        model: m
                            .get("model")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    });
                }
                if let Some(u) = m.get("usage").filter(|u| u.is_object()) {
                    self.counts.merge(u);
                    out.push(StreamEvent::Usage(self.counts.total()));
                }
            }
            "content_block_start" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(StreamEvent::TextDelta(t.to_string()));
                        }
                    }
                    Some("tool_use") => {
                        let ir = self.next_tool;
                        self.next_tool = self.next_tool.saturating_add(1);
                        self.tools.push((index, ir));
                        out.push(StreamEvent::ToolCallStart {
                            index: ir,
                            id: b
                                .get("id")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            name: b
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        });
                        // Normally `{}` with the input following as deltas.
                        if let Some(input) = b
                            .get("input")
                            .and_then(Value::as_object)
                            .filter(|o| !o.is_empty())
                        {
                            out.push(StreamEvent::ToolCallDelta {
                                index: ir,
                                arguments: Value::Object(input.clone()).to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let d = v.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = d
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(StreamEvent::TextDelta(t.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let ir = self
                            .tools
                            .iter()
                            .find(|(b, _)| *b == index)
                            .map(|(_, ir)| *ir);
                        let partial = d
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if let (Some(ir), false) = (ir, partial.is_empty()) {
                            out.push(StreamEvent::ToolCallDelta {
                                index: ir,
                                arguments: partial.to_string(),
                            });
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    out.push(StreamEvent::Finish(stop_from(r)));
                }
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.counts.merge(u);
                    out.push(StreamEvent::Usage(self.counts.total()));
                }
            }
            "error" => out.push(StreamEvent::Error {
                message: error_message(&v),
            }),
            // ping, content_block_stop, message_stop.
            _ => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text(u64),
    Tool(u64),
}

/// IR → Anthropic events, in the order Anthropic sends them: `message_start`,
/// per block `content_block_start` / `content_block_delta`… /
/// `content_block_stop` (one `ping` after the first start, as Anthropic does),
/// then `message_delta` (stop reason and cumulative usage) and `message_stop`,
/// both written in `end` because usage may come after the finish.
pub struct Encoder {
    id: String,
    model: String,
    started: bool,
    pinged: bool,
    open: Option<Open>,
    next_block: u64,
    /// IR tool-call index → Anthropic block index.
    tools: Vec<(u32, u64)>,
    usage: Usage,
    stop: Option<StopReason>,
    failed: bool,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            started: false,
            pinged: false,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            usage: Usage::default(),
            stop: None,
            failed: false,
        }
    }

    fn send(out: &mut BytesMut, event: &str, data: Value) {
        write_sse(out, Some(event), &data.to_string());
    }

    /// `message_start` goes out with the first content, so it can carry the
    /// input count when the upstream reported it first (Anthropic, Gemini);
    /// an OpenAI upstream reports it last, in `message_delta`.
    fn ensure_started(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = msg_id("");
        }
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage_json(&self.usage),
        });
        Self::send(
            out,
            "message_start",
            json!({"type": "message_start", "message": message}),
        );
    }

    fn open_block(&mut self, block: Value, out: &mut BytesMut) -> u64 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        Self::send(
            out,
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        if !self.pinged {
            self.pinged = true;
            Self::send(out, "ping", json!({"type": "ping"}));
        }
        index
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            Self::send(
                out,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn start_tool(&mut self, index: u32, id: &str, name: &str, out: &mut BytesMut) -> u64 {
        let block = self.open_block(
            json!({"type": "tool_use", "id": tool_id(id), "name": name, "input": {}}),
            out,
        );
        self.open = Some(Open::Tool(block));
        self.tools.push((index, block));
        block
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if !id.is_empty() {
                        self.id = msg_id(id);
                    }
                    if !model.is_empty() {
                        self.model = model.clone();
                    }
                }
            }
            StreamEvent::TextDelta(t) => {
                if t.is_empty() {
                    return;
                }
                self.ensure_started(out);
                let index = match self.open {
                    Some(Open::Text(i)) => i,
                    _ => {
                        let i = self.open_block(json!({"type": "text", "text": ""}), out);
                        self.open = Some(Open::Text(i));
                        i
                    }
                };
                let d = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}});
                Self::send(out, "content_block_delta", d);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.start_tool(*index, id, name, out);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if arguments.is_empty() {
                    return;
                }
                self.ensure_started(out);
                // A delta goes to its own block, even one already stopped
                // (OpenAI may interleave parallel calls; SDKs accumulate by index).
                let block = match self.tools.iter().find(|(t, _)| t == index) {
                    Some((_, b)) => *b,
                    None => self.start_tool(*index, &format!("toolu_{index}"), "", out),
                };
                let d = json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": arguments}});
                Self::send(out, "content_block_delta", d);
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Finish(r) => {
                self.stop = Some(*r);
                self.ensure_started(out);
                self.close_block(out);
            }
            StreamEvent::Error { message } => {
                self.failed = true;
                Self::send(
                    out,
                    "error",
                    json!({"type": "error", "error": {"type": "api_error", "message": message}}),
                );
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        let Some(stop) = self.stop else {
            // No stop reason: the upstream was cut. Saying `end_turn` would
            // pass a truncated answer off as complete.
            let e = json!({"type": "error", "error": {"type": "api_error", "message": "the upstream stream ended before the answer was complete"}});
            Self::send(out, "error", e);
            return;
        };
        self.ensure_started(out);
        self.close_block(out);
        let d = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_str(stop), "stop_sequence": null},
            "usage": usage_json(&self.usage),
        });
        Self::send(out, "message_delta", d);
        Self::send(out, "message_stop", json!({"type": "message_stop"}));
    }
}
