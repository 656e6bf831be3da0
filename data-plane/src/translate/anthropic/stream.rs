//! Anthropic SSE events ⇄ IR stream events.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gateway::ErrorBody;
use super::response::{BlockIn, MessageOut};
use super::{Counts, UsageOut, WireUsage, msg_id, stop_from, stop_str, tool_id};
use crate::sse::Event;
use crate::translate::codec::{StreamDecoder, StreamEncoder};
use crate::translate::ir::{ChatRequest, StopReason, StreamEvent};
use crate::translate::wire::{self, Count, Object};
use crate::usage::Usage;

/// Any Anthropic stream event: the fields each kind uses, all optional.
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    message: Option<StartIn>,
    #[serde(default)]
    index: Count,
    content_block: Option<BlockIn>,
    delta: Option<DeltaIn<'a>>,
    #[serde(default)]
    usage: Object<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StartIn {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    usage: Object<WireUsage>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    text: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

/// Anthropic events → IR.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    /// Anthropic block index → IR tool-call index, for `tool_use` blocks,
    /// and whether any of its arguments were passed on.
    tools: Vec<(u64, u32, bool)>,
    next_tool: u32,
    counts: Counts,
}

impl Decoder {
    fn usage(&mut self, u: Option<WireUsage>, out: &mut Vec<StreamEvent>) {
        if let Some(u) = u {
            self.counts.merge(&u);
            out.push(StreamEvent::Usage(self.counts.total()));
        }
    }

    fn block_start(&mut self, index: u64, b: BlockIn, out: &mut Vec<StreamEvent>) {
        match b.ty.as_deref() {
            Some("text") => {
                if let Some(t) = b.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
            }
            Some("tool_use") => {
                let ir = self.next_tool;
                self.next_tool = self.next_tool.saturating_add(1);
                out.push(StreamEvent::ToolCallStart {
                    index: ir,
                    id: b.id.unwrap_or_default(),
                    name: b.name.unwrap_or_default(),
                });
                // Normally `{}` with the input following as deltas.
                let input = b
                    .input
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                self.tools.push((index, ir, input.is_some()));
                if let Some(input) = input {
                    out.push(StreamEvent::ToolCallDelta {
                        index: ir,
                        arguments: input.to_string(),
                    });
                }
            }
            _ => {}
        }
    }

    fn block_delta(&mut self, index: u64, d: DeltaIn<'_>, out: &mut Vec<StreamEvent>) {
        match d.ty.as_deref() {
            Some("text_delta") => {
                if let Some(t) = d.text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t));
                }
            }
            Some("input_json_delta") => {
                let tool = self.tools.iter_mut().find(|(b, _, _)| *b == index);
                if let (Some((_, ir, sent)), Some(partial)) =
                    (tool, d.partial_json.filter(|p| !p.is_empty()))
                {
                    *sent = true;
                    out.push(StreamEvent::ToolCallDelta {
                        index: *ir,
                        arguments: partial,
                    });
                }
            }
            // thinking_delta, signature_delta, citations_delta.
            _ => {}
        }
    }

    /// A `tool_use` block that ends with no arguments passed on (a tool
    /// without parameters: `input: {}` then an empty `input_json_delta`,
    /// or none) gets `{}`, as a whole answer's call does: OpenAI apps parse
    /// the arguments as JSON, and `""` is not.
    fn block_stop(&mut self, index: u64, out: &mut Vec<StreamEvent>) {
        if let Some((_, ir, sent)) = self
            .tools
            .iter_mut()
            .find(|(b, _, sent)| *b == index && !*sent)
        {
            *sent = true;
            out.push(StreamEvent::ToolCallDelta {
                index: *ir,
                arguments: "{}".to_string(),
            });
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let Some(v) = wire::event_data::<EventIn>(ev) else {
            return;
        };
        match v.ty.as_deref().or(ev.event.as_deref()).unwrap_or_default() {
            "message_start" => {
                let (id, model, usage) = match v.message {
                    Some(m) => (m.id, m.model, m.usage.0),
                    None => (None, None, None),
                };
                if !self.started {
                    self.started = true;
                    out.push(StreamEvent::Start {
                        id: id.unwrap_or_default(),
                        model: model.unwrap_or_default(),
                    });
                }
                self.usage(usage, out);
            }
            "content_block_start" => {
                if let Some(b) = v.content_block {
                    self.block_start(v.index.0, b, out);
                }
            }
            "content_block_delta" => {
                if let Some(d) = v.delta {
                    self.block_delta(v.index.0, d, out);
                }
            }
            "content_block_stop" => self.block_stop(v.index.0, out),
            "message_delta" => {
                // A block the upstream never closed.
                let open: Vec<u64> = self
                    .tools
                    .iter()
                    .filter(|(_, _, sent)| !*sent)
                    .map(|(b, _, _)| *b)
                    .collect();
                for b in open {
                    self.block_stop(b, out);
                }
                if let Some(r) = v.delta.and_then(|d| d.stop_reason) {
                    out.push(StreamEvent::Finish(stop_from(&r)));
                }
                self.usage(v.usage.0, out);
            }
            "error" => out.push(StreamEvent::Error {
                message: wire::error_message(v.error.as_ref(), "upstream error"),
            }),
            // ping, message_stop.
            _ => {}
        }
    }
}

/// The events the encoder writes; `type` is also the SSE event name.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventOut<'a> {
    MessageStart {
        message: MessageOut<'a>,
    },
    ContentBlockStart {
        index: u64,
        content_block: BlockStartOut<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u64,
        delta: DeltaOut<'a>,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: StopOut,
        usage: UsageOut,
    },
    MessageStop,
}

impl EventOut<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStartOut<'a> {
    Text {
        text: &'static str,
    },
    ToolUse {
        id: String,
        name: &'a str,
        input: Empty,
    },
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopOut {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
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

    fn send(out: &mut BytesMut, ev: &EventOut<'_>) {
        wire::write_sse_json(out, Some(ev.name()), ev);
    }

    /// A stream that cannot go on: an `error` event, as Anthropic sends it.
    fn fail(out: &mut BytesMut, message: &str) {
        wire::write_sse_json(out, Some("error"), &ErrorBody::new("api_error", message));
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
        let message = MessageOut {
            id: Cow::Borrowed(&self.id),
            ty: "message",
            role: "assistant",
            model: &self.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: UsageOut::from(&self.usage),
        };
        Self::send(out, &EventOut::MessageStart { message });
    }

    fn open_block(&mut self, block: BlockStartOut<'_>, out: &mut BytesMut) -> u64 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        let start = EventOut::ContentBlockStart {
            index,
            content_block: block,
        };
        Self::send(out, &start);
        if !self.pinged {
            self.pinged = true;
            Self::send(out, &EventOut::Ping);
        }
        index
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            Self::send(out, &EventOut::ContentBlockStop { index });
        }
    }

    fn start_tool(&mut self, index: u32, id: &str, name: &str, out: &mut BytesMut) -> u64 {
        let block = BlockStartOut::ToolUse {
            id: tool_id(id),
            name,
            input: Empty {},
        };
        let block = self.open_block(block, out);
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
                        self.model.clone_from(model);
                    }
                }
            }
            // A refusal streams as text, as a whole answer's is a text block.
            StreamEvent::TextDelta(t) | StreamEvent::RefusalDelta(t) => {
                if t.is_empty() {
                    return;
                }
                self.ensure_started(out);
                let index = match self.open {
                    Some(Open::Text(i)) => i,
                    _ => {
                        let i = self.open_block(BlockStartOut::Text { text: "" }, out);
                        self.open = Some(Open::Text(i));
                        i
                    }
                };
                let delta = DeltaOut::TextDelta { text: t };
                Self::send(out, &EventOut::ContentBlockDelta { index, delta });
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
                let delta = DeltaOut::InputJsonDelta {
                    partial_json: arguments,
                };
                Self::send(
                    out,
                    &EventOut::ContentBlockDelta {
                        index: block,
                        delta,
                    },
                );
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Finish(r) => {
                self.stop = Some(*r);
                self.ensure_started(out);
                self.close_block(out);
            }
            StreamEvent::Error { message } => {
                self.failed = true;
                Self::fail(out, message);
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
            Self::fail(
                out,
                "the upstream stream ended before the answer was complete",
            );
            return;
        };
        self.ensure_started(out);
        self.close_block(out);
        let delta = EventOut::MessageDelta {
            delta: StopOut {
                stop_reason: stop_str(stop),
                stop_sequence: None,
            },
            usage: UsageOut::from(&self.usage),
        };
        Self::send(out, &delta);
        Self::send(out, &EventOut::MessageStop);
    }
}
