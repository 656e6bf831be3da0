//! IR stream events → the exact event sequence the Responses API sends.

use std::collections::HashMap;

use bytes::BytesMut;
use serde::Serialize;

use super::response::{Echo, FailureOut, Item, OutputPart, ResponseOut};
use super::{UsageOut, fc_id, msg_id, resp_id, status_of};
use crate::translate::codec::StreamEncoder;
use crate::translate::ids;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::openai_chat::stop_beside;
use crate::translate::wire;
use crate::usage::Usage;

/// An event: its payload with `type` and `sequence_number`.
#[derive(Serialize)]
struct EventOut<'a, T> {
    #[serde(rename = "type")]
    ty: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    payload: T,
}

#[derive(Serialize)]
struct WithResponse<'a> {
    response: &'a ResponseOut<'a>,
}

#[derive(Serialize)]
struct WithItem<'a> {
    output_index: usize,
    item: &'a Item,
}

/// Where in the output an event's content goes.
#[derive(Serialize, Clone, Copy)]
struct At<'a> {
    item_id: &'a str,
    output_index: usize,
}

#[derive(Serialize)]
struct WithPart<'a> {
    #[serde(flatten)]
    at: At<'a>,
    content_index: usize,
    part: &'a OutputPart<'a>,
}

/// `output_text.delta` (a `delta`) and `.done` (the whole `text`).
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct TextOut<'a> {
    #[serde(flatten)]
    at: At<'a>,
    content_index: usize,
    delta: Option<&'a str>,
    text: Option<&'a str>,
    logprobs: [(); 0],
}

/// `refusal.delta` (a `delta`) and `.done` (the whole `refusal`).
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct RefusalOut<'a> {
    #[serde(flatten)]
    at: At<'a>,
    content_index: usize,
    delta: Option<&'a str>,
    refusal: Option<&'a str>,
}

#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    #[serde(flatten)]
    at: At<'a>,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDone<'a> {
    #[serde(flatten)]
    at: At<'a>,
    arguments: &'a str,
}

/// The shape the API sends: fields at the top (as the SDK types them) and
/// under `error` (which makes the SDKs raise).
#[derive(Serialize)]
struct ErrorEvent<'a> {
    code: &'static str,
    message: &'a str,
    param: Option<()>,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    code: &'static str,
    message: &'a str,
    param: Option<()>,
}

/// The `error` event that ends a stream passed through which the upstream
/// broke off before its end: `seq` continues the upstream's numbering.
pub fn error_event(seq: u64, message: &str, out: &mut BytesMut) {
    write_error(&mut { seq }, message, out);
}

/// An `error` event numbered `seq` (then advanced).
fn write_error(seq: &mut u64, message: &str, out: &mut BytesMut) {
    let ev = ErrorEvent {
        code: "server_error",
        message,
        param: None,
        error: ErrorDetail {
            ty: "server_error",
            code: "server_error",
            message,
            param: None,
        },
    };
    Encoder::emit(seq, "error", ev, out);
}

/// Why a stream that ended without a finish failed.
const CUT_SHORT: &str = "the upstream stream ended before the response was complete";

/// The item being streamed: the API streams one output item at a time.
enum Open {
    None,
    /// A message; its last part is the one being streamed.
    Message {
        id: String,
        parts: Vec<OutputPart<'static>>,
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
    output: Vec<Item>,
    open: Open,
    messages: usize,
    /// IR tool index → output index, for deltas to a call already closed.
    calls: HashMap<u32, usize>,
    stop: Option<StopReason>,
    /// A refusal was streamed: the finish it has is a plain stop.
    refused: bool,
    usage: Option<Usage>,
    error: Option<String>,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            created_at: ids::now_secs(),
            echo: Echo::of(req),
            seq: 0,
            started: false,
            output: Vec::new(),
            open: Open::None,
            messages: 0,
            calls: HashMap::new(),
            stop: None,
            refused: false,
            usage: None,
            error: None,
        }
    }

    fn emit(seq: &mut u64, ty: &str, payload: impl Serialize, out: &mut BytesMut) {
        let ev = EventOut {
            ty,
            sequence_number: *seq,
            payload,
        };
        *seq += 1;
        wire::write_sse_json(out, Some(ty), &ev);
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = resp_id("");
        }
        let r = self
            .echo
            .response(self.id.as_str(), &self.model, self.created_at, &[][..]);
        let seq = &mut self.seq;
        Self::emit(seq, "response.created", WithResponse { response: &r }, out);
        Self::emit(
            seq,
            "response.in_progress",
            WithResponse { response: &r },
            out,
        );
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
        let seq = &mut self.seq;
        let item = match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Message { id, parts } => {
                let at = At {
                    item_id: &id,
                    output_index: oi,
                };
                Self::part_done(seq, at, &parts, out);
                Item::message(id, parts, status)
            }
            Open::Call {
                tool,
                id,
                call_id,
                name,
                args,
            } => {
                let at = At {
                    item_id: &id,
                    output_index: oi,
                };
                let done = ArgumentsDone {
                    at,
                    arguments: &args,
                };
                Self::emit(seq, "response.function_call_arguments.done", done, out);
                self.calls.insert(tool, oi);
                Item::call(id, call_id, name, args, status)
            }
        };
        let done = WithItem {
            output_index: oi,
            item: &item,
        };
        Self::emit(seq, "response.output_item.done", done, out);
        self.output.push(item);
    }

    /// Leaves out the call being streamed when the stream broke off: its
    /// arguments stopped mid-way (`{"cmd": "cat /tmp/x/`), and Codex runs a
    /// call its `output_item.done` hands over, then keeps it in the
    /// history it sends back. The deltas already sent stay unclaimed; the
    /// `error` and `response.failed` say why. A call closed before (the
    /// next item had begun) was whole and stays.
    fn drop_unfinished_call(&mut self) {
        if matches!(self.open, Open::Call { .. }) {
            self.open = Open::None;
        }
    }

    /// The last of a message's parts is done: its text's `.done` event
    /// (`output_text` or `refusal`), then `content_part.done`.
    fn part_done(seq: &mut u64, at: At<'_>, parts: &[OutputPart<'_>], out: &mut BytesMut) {
        let Some((last, content_index)) = parts.last().zip(parts.len().checked_sub(1)) else {
            return;
        };
        if last.is_refusal() {
            let done = RefusalOut {
                at,
                content_index,
                delta: None,
                refusal: Some(last.text()),
            };
            Self::emit(seq, "response.refusal.done", done, out);
        } else {
            let done = TextOut {
                at,
                content_index,
                delta: None,
                text: Some(last.text()),
                logprobs: [],
            };
            Self::emit(seq, "response.output_text.done", done, out);
        }
        let part = WithPart {
            at,
            content_index,
            part: last,
        };
        Self::emit(seq, "response.content_part.done", part, out);
    }

    fn open_message(&mut self, out: &mut BytesMut) {
        if matches!(self.open, Open::Message { .. }) {
            return;
        }
        self.close(out);
        let oi = self.output.len();
        let id = msg_id(&self.id, self.messages);
        self.messages += 1;
        let item = Item::message(id.clone(), Vec::new(), "in_progress");
        let added = WithItem {
            output_index: oi,
            item: &item,
        };
        Self::emit(&mut self.seq, "response.output_item.added", added, out);
        self.open = Open::Message {
            id,
            parts: Vec::new(),
        };
    }

    /// Text (or, `refusal`, a refusal's) streamed into the open message:
    /// into its last part when that is of the same kind, else into a new
    /// part (the last one done first), as the API streams each part whole
    /// before the next.
    fn content_delta(&mut self, refusal: bool, delta: &str, out: &mut BytesMut) {
        self.ensure_started(out);
        if delta.is_empty() {
            return;
        }
        self.open_message(out);
        let output_index = self.output.len();
        let seq = &mut self.seq;
        let Open::Message { id, parts } = &mut self.open else {
            return;
        };
        let at = At {
            item_id: id,
            output_index,
        };
        if parts.last().is_none_or(|p| p.is_refusal() != refusal) {
            Self::part_done(seq, at, parts, out);
            let part = OutputPart::new(refusal, "");
            let added = WithPart {
                at,
                content_index: parts.len(),
                part: &part,
            };
            Self::emit(seq, "response.content_part.added", added, out);
            parts.push(part);
        }
        let content_index = parts.len().saturating_sub(1);
        if let Some(p) = parts.last_mut() {
            p.push_str(delta);
        }
        if refusal {
            let ev = RefusalOut {
                at,
                content_index,
                delta: Some(delta),
                refusal: None,
            };
            Self::emit(seq, "response.refusal.delta", ev, out);
        } else {
            let ev = TextOut {
                at,
                content_index,
                delta: Some(delta),
                text: None,
                logprobs: [],
            };
            Self::emit(seq, "response.output_text.delta", ev, out);
        }
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
        let item = Item::call(
            id.clone(),
            call_id.clone(),
            name.to_string(),
            String::new(),
            "in_progress",
        );
        let added = WithItem {
            output_index: oi,
            item: &item,
        };
        Self::emit(&mut self.seq, "response.output_item.added", added, out);
        self.open = Open::Call {
            tool,
            id,
            call_id,
            name: name.to_string(),
            args: String::new(),
        };
    }

    fn call_delta(&mut self, tool: u32, delta: &str, out: &mut BytesMut) {
        let open = self.output.len();
        // The call being streamed, or one already closed (upstreams stream
        // calls one after another, so this is rare): its arguments still
        // reach the app and the final object.
        let target = match &mut self.open {
            Open::Call {
                tool: t, id, args, ..
            } if *t == tool => Some((open, id.as_str(), args)),
            _ => self
                .calls
                .get(&tool)
                .and_then(|&oi| match self.output.get_mut(oi) {
                    Some(Item::FunctionCall { id, arguments, .. }) => {
                        Some((oi, id.as_str(), arguments))
                    }
                    _ => None,
                }),
        };
        if let Some((output_index, item_id, args)) = target {
            args.push_str(delta);
            let ev = ArgumentsDelta {
                at: At {
                    item_id,
                    output_index,
                },
                delta,
            };
            Self::emit(
                &mut self.seq,
                "response.function_call_arguments.delta",
                ev,
                out,
            );
        } else if !self.calls.contains_key(&tool) {
            // Arguments for a call that never started: start it nameless
            // rather than lose them.
            self.open_call(tool, "", "", out);
            self.call_delta(tool, delta, out);
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        // The stream has failed: content after the error would reopen the
        // call left out (a late delta starts a nameless one).
        if self.error.is_some()
            && matches!(
                ev,
                StreamEvent::TextDelta(_)
                    | StreamEvent::RefusalDelta(_)
                    | StreamEvent::ToolCallStart { .. }
                    | StreamEvent::ToolCallDelta { .. }
                    | StreamEvent::Finish(_)
            )
        {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if !id.is_empty() {
                        self.id = resp_id(id);
                    }
                    if !model.is_empty() {
                        self.model.clone_from(model);
                    }
                }
                self.ensure_started(out);
            }
            StreamEvent::TextDelta(t) => self.content_delta(false, t, out),
            StreamEvent::RefusalDelta(t) => {
                self.refused |= !t.is_empty();
                self.content_delta(true, t, out);
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
                // A refusal ends a response `completed`, as OpenAI's does.
                self.stop = Some(stop_beside(self.refused, *r));
                self.close(out);
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error { message } => {
                self.ensure_started(out);
                self.error = Some(message.clone());
                self.drop_unfinished_call();
                write_error(&mut self.seq, message, out);
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        self.ensure_started(out);
        if self.stop.is_none() && self.error.is_none() {
            // No finish: the upstream just stopped. What is open is
            // unfinished, as after an error (and never `completed`).
            self.error = Some(CUT_SHORT.to_string());
        }
        if self.error.is_some() {
            self.drop_unfinished_call();
        }
        self.close(out);
        let mut r = self.echo.response(
            self.id.as_str(),
            &self.model,
            self.created_at,
            &self.output[..],
        );
        r.usage = self.usage.as_ref().map(UsageOut::from);
        let failure = self.error.as_deref();
        let seq = &mut self.seq;
        if let Some(message) = failure {
            r.status = "failed";
            r.error = Some(FailureOut {
                code: "server_error",
                message,
            });
            Self::emit(seq, "response.failed", WithResponse { response: &r }, out);
            return;
        }
        let (status, details) = status_of(self.stop);
        r.status = status;
        if status == "completed" {
            r.completed_at = Some(ids::now_secs());
        }
        r.incomplete_details = details;
        let ty = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        Self::emit(seq, ty, WithResponse { response: &r }, out);
    }
}
