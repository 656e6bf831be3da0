//! Chat completion chunks ⇄ IR stream events.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::call_order::CallOrder;
use super::gateway::{ErrorBody, ErrorOut};
use super::{UsageOut, WireUsage, chat_id, stop_beside, stop_from, stop_str};
use crate::sse::Event;
use crate::translate::codec::{StreamDecoder, StreamEncoder};
use crate::translate::ids;
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::wire::{self, Count, Object};
use crate::usage::Usage;

#[derive(Deserialize)]
struct ChunkIn<'a> {
    error: Option<Value>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    choices: Option<Vec<ChoiceIn<'a>>>,
    #[serde(default)]
    usage: Object<WireUsage>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    delta: Option<DeltaIn>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaIn {
    content: Option<String>,
    /// What the model refused with: a refusal of the answer, which then
    /// stops as a content filter's.
    refusal: Option<String>,
    tool_calls: Option<Vec<CallDeltaIn>>,
}

#[derive(Deserialize)]
struct CallDeltaIn {
    /// Absent from some vendors' chunks (see [`Decoder::call`]).
    index: Option<Count>,
    id: Option<String>,
    function: Option<FunctionDeltaIn>,
}

#[derive(Deserialize)]
struct FunctionDeltaIn {
    name: Option<String>,
    arguments: Option<String>,
}

/// OpenAI chunks → IR.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    /// The stream's id, which names calls their vendor left unnamed.
    stream_id: String,
    /// The tool calls started so far, in order; a call's place here is its
    /// IR index.
    calls: Vec<Call>,
    /// The model refused (`delta.refusal`).
    refused: bool,
    /// Translated: calls leave one after another (see `call_order`).
    order: Option<CallOrder>,
}

/// A tool call of the stream, as its chunks identify it.
struct Call {
    /// Its `index` on the wire (`None`: the vendor sent none).
    wire: Option<u64>,
    /// Its id as the vendor sent it (`None`: not sent when it started).
    id: Option<String>,
    /// Some of its arguments were passed on.
    argued: bool,
}

/// Most tool calls one stream starts: far beyond any real answer (the
/// pipeline ends a stream past 256), and a bound on the decoder's memory
/// and on each chunk's lookup whatever an upstream sends. Calls past it are
/// not passed on.
const MAX_CALLS: usize = 1024;

impl Decoder {
    /// The IR index of the call a chunk's tool-call delta belongs to,
    /// starting a call (pushing its `ToolCallStart`) when the delta opens
    /// one. OpenAI names a call (id and name) on its first chunk only, but
    /// DeepSeek, Qwen, Fireworks and LiteLLM repeat both on every chunk:
    /// a call starts when its index is new, or when the id differs from the
    /// one its index already has (a vendor that numbers every call 0) and
    /// is no earlier call's; a repeated id or name continues it. Without an
    /// index, a delta with a new id starts a call and any other continues
    /// the last one.
    fn call(
        &mut self,
        wire: Option<u64>,
        id: Option<String>,
        name: Option<String>,
        out: &mut Vec<StreamEvent>,
    ) -> Option<u32> {
        let id = id.filter(|i| !i.is_empty());
        let current = match wire {
            Some(w) => self.calls.iter().rposition(|c| c.wire == Some(w)),
            None => self.calls.len().checked_sub(1),
        };
        if let Some(at) = current {
            let known = self.calls.get(at).and_then(|c| c.id.as_deref());
            let continues = match (known, id.as_deref()) {
                (Some(known), Some(id)) => known == id,
                // No id to tell calls apart: the index's call goes on.
                _ => true,
            };
            if continues {
                return u32::try_from(at).ok();
            }
        }
        if let Some(id) = id.as_deref()
            && let Some(at) = self.calls.iter().rposition(|c| c.id.as_deref() == Some(id))
        {
            return u32::try_from(at).ok();
        }
        if self.calls.len() >= MAX_CALLS {
            return None;
        }
        let index = u32::try_from(self.calls.len()).ok()?;
        out.push(StreamEvent::ToolCallStart {
            index,
            id: id.clone().unwrap_or_else(|| self.unnamed_call_id(index)),
            name: name.unwrap_or_default(),
        });
        self.calls.push(Call {
            wire,
            id,
            argued: false,
        });
        Some(index)
    }

    /// The answer ended: held calls go out, and (unless `fill` is false)
    /// every call without arguments gets `{}` before the next starts.
    fn close_calls(&mut self, fill: bool, out: &mut Vec<StreamEvent>) {
        let Some(order) = &mut self.order else {
            if fill {
                self.empty_arguments(out);
            }
            return;
        };
        let calls = &mut self.calls;
        order.flush(
            |i, out| {
                if let Some(c) = calls.get_mut(i).filter(|c| fill && !c.argued)
                    && let Ok(index) = u32::try_from(i)
                {
                    c.argued = true;
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        arguments: "{}".to_string(),
                    });
                }
            },
            out,
        );
    }

    /// Calls that finished with no arguments (a tool without parameters:
    /// OpenAI-compatible vendors send `""`, or nothing) get `{}`, as the
    /// Anthropic decoder gives them and a whole answer's call has: apps
    /// parse the arguments as JSON (Codex), and `""` is not. Not after a
    /// `length` stop, which may have cut the call before its arguments.
    fn empty_arguments(&mut self, out: &mut Vec<StreamEvent>) {
        for (index, c) in self.calls.iter_mut().enumerate() {
            if !c.argued
                && let Ok(index) = u32::try_from(index)
            {
                c.argued = true;
                out.push(StreamEvent::ToolCallDelta {
                    index,
                    arguments: "{}".to_string(),
                });
            }
        }
    }

    /// An id for a call its vendor sent none for, unique in the
    /// conversation (the stream's id is) and in the characters every
    /// format's ids allow.
    fn unnamed_call_id(&self, index: u32) -> String {
        let stream: String = self
            .stream_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if stream.is_empty() {
            format!("call_{index}")
        } else {
            format!("call_{stream}_{index}")
        }
    }
}

impl StreamDecoder for Decoder {
    fn translating(&mut self) {
        self.order = Some(CallOrder::default());
    }

    /// Calls still held when a stream is cut go out as they came.
    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_calls(false, out);
    }

    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let Some(c) = wire::event_data::<ChunkIn>(ev) else {
            return;
        };
        if let Some(err) = c.error {
            // Calls held back go out before the error that ends them.
            self.close_calls(false, out);
            out.push(StreamEvent::Error {
                message: wire::error_message(Some(&err), "upstream error"),
            });
            return;
        }
        // Azure opens its streams with the prompt's filter results: a chunk
        // with no id, no model and no choices, which starts nothing (the
        // answer's id and model come with the next).
        let prelude = || {
            c.id.as_deref().is_none_or(str::is_empty)
                && c.model.as_deref().is_none_or(str::is_empty)
                && c.choices.as_ref().is_none_or(|c| c.is_empty())
                && c.usage.0.is_none()
        };
        if !self.started && prelude() {
            return;
        }
        if !self.started {
            self.started = true;
            self.stream_id = c.id.unwrap_or_default().into_owned();
            out.push(StreamEvent::Start {
                id: self.stream_id.clone(),
                model: c.model.unwrap_or_default().into_owned(),
            });
        }
        if let Some(choice) = c.choices.and_then(|c| c.into_iter().next()) {
            if let Some(delta) = choice.delta {
                if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
                if let Some(t) = delta.refusal.filter(|t| !t.is_empty()) {
                    self.refused = true;
                    out.push(StreamEvent::RefusalDelta(t));
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    let (name, arguments) = match call.function {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    let wire = call.index.map(|i| i.0);
                    let mark = out.len();
                    let Some(index) = self.call(wire, call.id, name, out) else {
                        continue;
                    };
                    if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                        if let Some(c) = self.calls.get_mut(index as usize) {
                            c.argued = true;
                        }
                        out.push(StreamEvent::ToolCallDelta { index, arguments });
                    }
                    if let Some(order) = &mut self.order {
                        for ev in out.split_off(mark) {
                            order.push(index as usize, ev, out);
                        }
                    }
                }
            }
            if let Some(r) = choice.finish_reason {
                let called = !self.calls.is_empty();
                self.close_calls(r != "length", out);
                let stop = stop_from(&r, called);
                out.push(StreamEvent::Finish(if self.refused {
                    StopReason::refused(Some(stop)).unwrap_or(stop)
                } else {
                    stop
                }));
            }
        }
        if let Some(u) = c.usage.0 {
            out.push(StreamEvent::Usage(u.into()));
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<Value>,
    finish_reason: Option<&'static str>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    role: Option<&'static str>,
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    tool_calls: Option<[CallDeltaOut<'a>; 1]>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct CallDeltaOut<'a> {
    index: u32,
    id: Option<&'a str>,
    #[serde(rename = "type")]
    ty: Option<&'static str>,
    function: FunctionDeltaOut<'a>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct FunctionDeltaOut<'a> {
    name: Option<&'a str>,
    arguments: &'a str,
}

/// IR → OpenAI chunks, ending with the usage chunk (if the app asked for it)
/// and `data: [DONE]`. A stream that fails (an upstream error, or an end
/// before any finish reason) ends with an error chunk instead, as OpenAI's
/// does: its SDKs raise it, where a clean `[DONE]` would pass a truncated
/// answer off as complete.
pub struct Encoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    usage: Option<Usage>,
    /// A refusal was streamed: the finish it has is a plain stop.
    refused: bool,
    finished: bool,
    failed: bool,
}

impl Encoder {
    pub fn new(req: &ChatRequest) -> Self {
        Self {
            id: String::new(),
            model: req.model.clone(),
            created: ids::now_secs(),
            include_usage: req.stream_usage,
            started: false,
            usage: None,
            refused: false,
            finished: false,
            failed: false,
        }
    }

    fn chunk(&self, delta: DeltaOut<'_>, finish: Option<&'static str>, out: &mut BytesMut) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
        let c = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &choices,
            usage: None,
        };
        wire::write_sse_json(out, None, &c);
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                self.id = format!("chatcmpl-{}", self.created);
            }
            let delta = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..Default::default()
            };
            self.chunk(delta, None, out);
        }
    }

    fn call(&self, call: CallDeltaOut<'_>, out: &mut BytesMut) {
        let delta = DeltaOut {
            tool_calls: Some([call]),
            ..Default::default()
        };
        self.chunk(delta, None, out);
    }

    /// A stream that cannot go on: an error chunk, in OpenAI's error shape;
    /// nothing follows it.
    fn fail(&mut self, message: &str, out: &mut BytesMut) {
        self.failed = true;
        let e = ErrorBody {
            error: ErrorOut {
                message,
                ty: "server_error",
                param: None,
                code: None,
            },
        };
        wire::write_sse_json(out, None, &e);
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        match ev {
            StreamEvent::Start { id, model } => {
                if !id.is_empty() {
                    self.id = chat_id(id);
                }
                if !model.is_empty() {
                    self.model.clone_from(model);
                }
                self.ensure_started(out);
            }
            StreamEvent::TextDelta(t) => {
                self.ensure_started(out);
                let delta = DeltaOut {
                    content: Some(t),
                    ..Default::default()
                };
                self.chunk(delta, None, out);
            }
            StreamEvent::RefusalDelta(t) => {
                self.ensure_started(out);
                self.refused = true;
                let delta = DeltaOut {
                    refusal: Some(t),
                    ..Default::default()
                };
                self.chunk(delta, None, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let call = CallDeltaOut {
                    index: *index,
                    id: Some(id),
                    ty: Some("function"),
                    function: FunctionDeltaOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                self.call(call, out);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.ensure_started(out);
                let call = CallDeltaOut {
                    index: *index,
                    id: None,
                    ty: None,
                    function: FunctionDeltaOut {
                        name: None,
                        arguments,
                    },
                };
                self.call(call, out);
            }
            StreamEvent::Finish(r) => {
                self.ensure_started(out);
                self.finished = true;
                let finish = stop_str(stop_beside(self.refused, *r));
                self.chunk(DeltaOut::default(), Some(finish), out);
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error { message } => self.fail(message, out),
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        if !self.finished {
            // No finish reason: the upstream was cut.
            self.fail(
                "the upstream stream ended before the answer was complete",
                out,
            );
            return;
        }
        if self.include_usage
            && let Some(u) = self.usage
        {
            let c = ChunkOut {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: Some(UsageOut::from(&u)),
            };
            wire::write_sse_json(out, None, &c);
        }
        wire::write_sse(out, None, "[DONE]");
    }
}
