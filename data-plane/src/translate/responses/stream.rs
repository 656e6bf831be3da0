//! Responses stream events → IR stream events.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::response::{ItemIn, ResponseIn};
use crate::sse::Event;
use crate::translate::codec::StreamDecoder;
use crate::translate::ir::{Part, StopReason, StreamEvent};
use crate::translate::wire::{self, Lenient};

/// Any Responses stream event: the fields each kind uses, all optional.
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    response: Option<ResponseIn>,
    item: Option<ItemIn>,
    #[serde(default)]
    output_index: Lenient<u64>,
    item_id: Option<String>,
    delta: Option<String>,
    arguments: Option<String>,
    error: Option<Value>,
    message: Option<Value>,
}

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
    /// The model refused (a `refusal` part): the answer stops as a content
    /// filter's, as a chat completion's does.
    refused: bool,
}

impl Decoder {
    fn start(&mut self, resp: Option<&ResponseIn>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            let (id, model) = match resp {
                Some(r) => (r.id.clone(), r.model.clone()),
                None => (None, None),
            };
            out.push(StreamEvent::Start {
                id: id.unwrap_or_default(),
                model: model.unwrap_or_default(),
            });
        }
    }

    /// The output index an event refers to.
    fn index_of(&self, v: &EventIn) -> Option<u64> {
        v.output_index
            .0
            .or_else(|| self.items.get(v.item_id.as_deref()?).copied())
    }

    /// A function call item appeared (normally in `output_item.added`; in
    /// `output_item.done` when the stream skipped that).
    fn open_call(&mut self, oi: u64, item: &ItemIn, out: &mut Vec<StreamEvent>) {
        if self.calls.contains_key(&oi) {
            return;
        }
        let index = self.next_tool;
        self.next_tool += 1;
        self.calls.insert(oi, (index, false));
        if let Some(id) = &item.id {
            self.items.insert(id.clone(), oi);
        }
        out.push(StreamEvent::ToolCallStart {
            index,
            id: item.call_id.clone().unwrap_or_default(),
            name: item.name.clone().unwrap_or_default(),
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

    fn finish(&mut self, resp: Option<ResponseIn>, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let called = !self.calls.is_empty();
        let default = if called {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        };
        let stop = resp.as_ref().and_then(|r| r.stop(called)).unwrap_or(default);
        let stop = if self.refused {
            StopReason::refused(Some(stop)).unwrap_or(stop)
        } else {
            stop
        };
        out.push(StreamEvent::Finish(stop));
        if let Some(u) = resp.and_then(|r| r.usage.0) {
            out.push(StreamEvent::Usage(u.into()));
        }
    }

    fn refuse(&mut self, t: String, out: &mut Vec<StreamEvent>) {
        self.refused = true;
        out.push(StreamEvent::RefusalDelta(t));
    }

    fn on_item(&mut self, done: bool, v: EventIn, out: &mut Vec<StreamEvent>) {
        self.start(None, out);
        let (Some(item), Some(oi)) = (v.item, v.output_index.0) else {
            return;
        };
        match item.ty.as_deref() {
            Some("function_call") => {
                self.open_call(oi, &item, out);
                if done {
                    self.whole_arguments(oi, item.arguments.as_deref(), out);
                }
            }
            // A message whose text never came as deltas.
            Some("message") if done && !self.texted.contains(&oi) => {
                for c in item.content.iter().flatten() {
                    match c.part() {
                        Some(Part::Text(t)) => out.push(StreamEvent::TextDelta(t)),
                        Some(Part::Refusal(t)) => self.refuse(t, out),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) {
        let Some(mut v) = wire::event_data::<EventIn>(ev) else {
            return;
        };
        let ty = v.ty.take();
        match ty.as_deref().or(ev.event.as_deref()).unwrap_or_default() {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(v.response.as_ref(), out)
            }
            "response.output_item.added" => self.on_item(false, v, out),
            "response.output_item.done" => self.on_item(true, v, out),
            kind @ ("response.output_text.delta" | "response.refusal.delta") => {
                self.start(None, out);
                if let Some(oi) = self.index_of(&v) {
                    self.texted.insert(oi);
                }
                match v.delta.filter(|t| !t.is_empty()) {
                    Some(t) if kind == "response.refusal.delta" => self.refuse(t, out),
                    Some(t) => out.push(StreamEvent::TextDelta(t)),
                    None => {}
                }
            }
            "response.function_call_arguments.delta" => {
                let Some(oi) = self.index_of(&v) else { return };
                let (Some((index, sent)), Some(a)) = (self.calls.get_mut(&oi), v.delta) else {
                    return;
                };
                if !a.is_empty() {
                    *sent = true;
                    out.push(StreamEvent::ToolCallDelta {
                        index: *index,
                        arguments: a,
                    });
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(oi) = self.index_of(&v) {
                    self.whole_arguments(oi, v.arguments.as_deref(), out);
                }
            }
            "response.completed" | "response.incomplete" => {
                let resp = v.response;
                self.start(resp.as_ref(), out);
                self.finish(resp, out);
            }
            "response.failed" => {
                // A failed response still reports what it used (a failure
                // after generating is billed): kept, as a whole answer's is.
                let (usage, err) = v.response.map_or((None, None), |r| (r.usage.0, r.error));
                if let Some(u) = usage {
                    out.push(StreamEvent::Usage(u.into()));
                }
                out.push(StreamEvent::Error {
                    message: wire::error_message(err.as_ref(), "the response failed"),
                });
            }
            "error" => {
                // Older streams put the fields at the top, newer ones under `error`.
                let message = match v.error.as_ref().filter(|e| e.is_object()) {
                    Some(e) => wire::error_message(Some(e), "upstream error"),
                    None => v
                        .message
                        .as_ref()
                        .and_then(Value::as_str)
                        .unwrap_or("upstream error")
                        .to_string(),
                };
                out.push(StreamEvent::Error { message });
            }
            _ => {}
        }
    }
}
