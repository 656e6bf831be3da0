//! Gemini SSE chunks ⇄ IR stream events.

use bytes::BytesMut;
use serde_json::{Value, json};

use super::{
    answer_text, call_of, call_part, error_message, finish_str, parts_of, response_id, stop_of,
    usage_from, usage_json,
};
use crate::sse::Event;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::{StreamDecoder, StreamEncoder, write_sse};
use crate::usage::Usage;

// ------------------------------------------------------------------ stream

/// Gemini chunks → IR. Each chunk is a whole response; usage is cumulative,
/// so each report is a total and the last one wins.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    response_id: String,
    calls: u32,
    finished: bool,
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
        if let Some(e) = v.get("error") {
            out.push(StreamEvent::Error {
                message: error_message(e),
            });
            return;
        }
        if !self.started {
            self.started = true;
            self.response_id = v
                .get("responseId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            out.push(StreamEvent::Start {
                id: self.response_id.clone(),
                model: v
                    .get("modelVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        let cand = v
            .get("candidates")
            .and_then(|c| c.get(0))
            .unwrap_or(&Value::Null);
        for p in parts_of(cand) {
            if let Some(t) = answer_text(p) {
                out.push(StreamEvent::TextDelta(t.to_string()));
            } else if let Some(fc) = p.get("functionCall") {
                // Calls arrive whole: a start and all the arguments at once.
                let index = self.calls;
                let (id, name, arguments) = call_of(fc, &self.response_id, index);
                self.calls = self.calls.saturating_add(1);
                out.push(StreamEvent::ToolCallStart { index, id, name });
                out.push(StreamEvent::ToolCallDelta { index, arguments });
            }
        }
        if !self.finished
            && let Some(stop) = stop_of(&v, cand, self.calls > 0)
        {
            self.finished = true;
            out.push(StreamEvent::Finish(stop));
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(usage_from(u)));
        }
    }
}

/// A call whose arguments are still arriving.
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

/// IR → Gemini chunks. Text goes out as it comes; a tool call is buffered
/// until it is complete (the next call or text starts, or the stream ends)
/// and sent whole, as Gemini does. The last chunk carries the finish reason
/// and the usage, with the calls still buffered (or an empty text part).
pub struct Encoder {
    id: String,
    model: String,
    pending: Vec<PendingCall>,
    /// Calls already sent: a late argument delta for one cannot be added.
    sent: Vec<u32>,
    usage: Option<Usage>,
    stop: Option<StopReason>,
    failed: bool,
    /// `None`: SSE (`?alt=sse`); `Some(started)`: a JSON array, as Gemini
    /// streams without `alt=sse`, with `started` once `[` is out.
    array: Option<bool>,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            pending: Vec::new(),
            sent: Vec::new(),
            usage: None,
            stop: None,
            failed: false,
            array: None,
        }
    }

    /// For a `:streamGenerateContent` call without `?alt=sse`.
    pub fn json_array(req: &ChatRequest) -> Self {
        Self {
            array: Some(false),
            ..Self::new(req)
        }
    }

    /// One chunk, framed as the app asked.
    fn emit(&mut self, out: &mut BytesMut, data: &str) {
        match &mut self.array {
            None => write_sse(out, None, data),
            Some(started) => {
                out.extend_from_slice(if *started { b",\r\n" } else { b"[" });
                *started = true;
                out.extend_from_slice(data.as_bytes());
            }
        }
    }

    fn chunk(&mut self, parts: Vec<Value>, finish: Option<StopReason>, out: &mut BytesMut) {
        if self.id.is_empty() {
            self.id = response_id("");
        }
        let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let mut c = json!({"candidates": [], "modelVersion": self.model, "responseId": self.id});
        if let Some(r) = finish {
            cand["finishReason"] = json!(finish_str(r));
            if let Some(u) = &self.usage {
                c["usageMetadata"] = usage_json(u);
            }
        }
        c["candidates"] = json!([cand]);
        self.emit(out, &c.to_string());
    }

    fn take_calls(&mut self) -> Vec<Value> {
        let calls: Vec<Value> = self
            .pending
            .iter()
            .map(|c| call_part(&c.id, &c.name, &c.arguments))
            .collect();
        self.sent.extend(self.pending.drain(..).map(|c| c.index));
        calls
    }

    fn flush_calls(&mut self, out: &mut BytesMut) {
        if !self.pending.is_empty() {
            let parts = self.take_calls();
            self.chunk(parts, None, out);
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => {
                if self.id.is_empty() && !id.is_empty() {
                    self.id = id.clone();
                }
                if !model.is_empty() {
                    self.model = model.clone();
                }
            }
            StreamEvent::TextDelta(t) => {
                if !t.is_empty() {
                    self.flush_calls(out);
                    self.chunk(vec![json!({"text": t})], None, out);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.flush_calls(out);
                self.pending.push(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(c) = self.pending.iter_mut().find(|c| c.index == *index) {
                    c.arguments.push_str(arguments);
                } else if !self.sent.contains(index) {
                    let id = format!("call_{index}");
                    self.pending.push(PendingCall {
                        index: *index,
                        id,
                        name: String::new(),
                        arguments: arguments.clone(),
                    });
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Finish(r) => self.stop = Some(*r),
            StreamEvent::Error { message } => {
                self.failed = true;
                let e = json!({"error": {"code": 500, "message": message, "status": "INTERNAL"}});
                self.emit(out, &e.to_string());
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if !self.failed {
            if let Some(stop) = self.stop {
                let mut parts = self.take_calls();
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                self.chunk(parts, Some(stop), out);
            } else {
                // No finish reason: the upstream was cut; do not pass a
                // truncated answer off as complete.
                let e = json!({"error": {"code": 500, "message": "the upstream stream ended before the answer was complete", "status": "INTERNAL"}});
                self.emit(out, &e.to_string());
            }
        }
        if let Some(started) = self.array.take() {
            out.extend_from_slice(if started { b"]" } else { b"[]" });
        }
    }
}
