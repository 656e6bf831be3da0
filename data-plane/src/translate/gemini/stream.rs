//! Gemini stream chunks ⇄ IR stream events.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Serialize;

use super::contents::PartOut;
use super::gateway::ErrorBody;
use super::response::{AnswerIn, AnswerOut, CandidateOut, call_of, call_prefix};
use super::{UsageOut, response_id};
use crate::sse::Event;
use crate::translate::codec::{StreamDecoder, StreamEncoder};
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::wire;
use crate::usage::Usage;

/// Gemini chunks → IR. Each chunk is a whole response; usage is cumulative,
/// so each report is a total and the last one wins. A chunk's usage goes
/// before its parts: Gemini counts the prompt from the first chunk on, and
/// an Anthropic app's `message_start` (written with the first content)
/// carries the input count only if it is known by then.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    response_id: String,
    /// What ids made for the answer's calls begin with ([`call_prefix`]).
    call_prefix: String,
    calls: u32,
    finished: bool,
    /// See [`StreamDecoder::translating`].
    translating: bool,
}

impl StreamDecoder for Decoder {
    fn translating(&mut self) {
        self.translating = true;
    }

    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let Some(mut v) = wire::event_data::<AnswerIn>(ev) else {
            return;
        };
        if let Some(e) = &v.error {
            out.push(StreamEvent::Error {
                message: wire::error_message(Some(e), "upstream error"),
            });
            return;
        }
        if !self.started {
            self.started = true;
            self.response_id = v.response_id.take().unwrap_or_default();
            self.call_prefix = call_prefix(&self.response_id);
            out.push(StreamEvent::Start {
                id: self.response_id.clone(),
                model: v.model_version.take().unwrap_or_default(),
            });
        }
        if let Some(u) = v.usage_metadata.0.take() {
            out.push(StreamEvent::Usage(u.into()));
        }
        for mut p in v.take_parts() {
            if let Some(t) = p.answer_text() {
                out.push(StreamEvent::TextDelta(t));
            } else if let Some(fc) = p.function_call {
                // Calls arrive whole: a start and all the arguments at once.
                let index = self.calls;
                let (id, name, arguments) = call_of(fc, &self.call_prefix, index);
                self.calls = self.calls.saturating_add(1);
                out.push(StreamEvent::ToolCallStart { index, id, name });
                out.push(StreamEvent::ToolCallDelta { index, arguments });
            }
        }
        // Gemini CLI sends such a turn again on its own, so a Gemini app
        // gets it as Gemini sent it; another format's app is told it failed.
        if self.translating
            && !self.finished
            && let Some(reason) = v.failed_call()
        {
            self.finished = true;
            out.push(StreamEvent::Error {
                message: super::response::failed_call_message(reason),
            });
            return;
        }
        if !self.finished
            && let Some(stop) = v.stop(self.calls > 0)
        {
            self.finished = true;
            out.push(StreamEvent::Finish(stop));
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
/// and the usage, with the calls still buffered (or an empty text part),
/// less one the token cap cut off ([`wire::cut_by_cap`]).
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
    fn emit(array: &mut Option<bool>, out: &mut BytesMut, chunk: &impl Serialize) {
        match array {
            None => wire::write_sse_json(out, None, chunk),
            Some(started) => {
                out.extend_from_slice(if *started { b",\r\n" } else { b"[" });
                *started = true;
                wire::write_json(out, chunk);
            }
        }
    }

    fn chunk(&mut self, parts: Vec<PartOut<'_>>, finish: Option<StopReason>, out: &mut BytesMut) {
        if self.id.is_empty() {
            self.id = response_id("");
        }
        let c = AnswerOut {
            candidates: [CandidateOut::new(parts, finish)],
            usage_metadata: finish.and(self.usage.as_ref()).map(UsageOut::from),
            model_version: &self.model,
            response_id: Cow::Borrowed(&self.id),
        };
        Self::emit(&mut self.array, out, &c);
    }

    /// The buffered calls as parts; they count as sent.
    fn take_calls(&mut self) -> Vec<PendingCall> {
        self.sent.extend(self.pending.iter().map(|c| c.index));
        std::mem::take(&mut self.pending)
    }

    fn flush_calls(&mut self, out: &mut BytesMut) {
        if !self.pending.is_empty() {
            let calls = self.take_calls();
            self.chunk(call_parts(&calls), None, out);
        }
    }

    /// The upstream's id and model, unless the stream has them already.
    fn start(&mut self, id: &str, model: &str) {
        if self.id.is_empty() && !id.is_empty() {
            self.id = id.to_string();
        }
        if !model.is_empty() {
            self.model = model.to_string();
        }
    }

    fn fail(&mut self, out: &mut BytesMut, message: &str) {
        Self::emit(&mut self.array, out, &ErrorBody::internal(message));
    }
}

fn call_parts(calls: &[PendingCall]) -> Vec<PartOut<'_>> {
    calls
        .iter()
        .map(|c| PartOut::call(&c.id, &c.name, wire::arguments_or_empty(&c.arguments)))
        .collect()
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => self.start(id, model),
            // A refusal streams as text, as a whole answer's is a text part.
            StreamEvent::TextDelta(t) | StreamEvent::RefusalDelta(t) => {
                if !t.is_empty() {
                    self.flush_calls(out);
                    self.chunk(vec![PartOut::text(t)], None, out);
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
                    self.pending.push(PendingCall {
                        index: *index,
                        id: format!("call_{index}"),
                        name: String::new(),
                        arguments: arguments.clone(),
                    });
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Finish(r) => self.stop = Some(*r),
            StreamEvent::Error { message } => {
                self.failed = true;
                self.fail(out, message);
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if !self.failed {
            if let Some(stop) = self.stop {
                let mut calls = self.take_calls();
                calls.retain(|c| !wire::cut_by_cap(Some(stop), &c.arguments));
                let mut parts = call_parts(&calls);
                if parts.is_empty() {
                    parts.push(PartOut::text(""));
                }
                self.chunk(parts, Some(stop), out);
            } else {
                // No finish reason: the upstream was cut; do not pass a
                // truncated answer off as complete.
                self.fail(
                    out,
                    "the upstream stream ended before the answer was complete",
                );
            }
        }
        if let Some(started) = self.array.take() {
            out.extend_from_slice(if started { b"]" } else { b"[]" });
        }
    }
}
