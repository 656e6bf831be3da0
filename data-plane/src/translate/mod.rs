//! Translation between the wire formats, through the IR in `ir`: the app's
//! format is decoded into the IR and encoded into the provider's, and the
//! answer comes back the same way. Each format is one module implementing the
//! same six operations; nothing here does I/O, so it is unit-tested against
//! fixtures of real payloads and benchmarked on its own.
//!
//! When the app's format is the provider's, none of this runs: bodies pass
//! through untouched (see `pipeline`).

pub mod ir;
pub mod openai_chat;

use bytes::BytesMut;

use crate::sse::Event;
pub use ir::{StreamEvent, Unsupported};

/// A chat wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI `POST /v1/chat/completions` (and every OpenAI-compatible vendor).
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// Anthropic `POST /v1/messages`.
    Anthropic,
    /// Gemini `:generateContent` / `:streamGenerateContent?alt=sse`.
    Gemini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai",
            Self::Responses => "openai-responses",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

/// Turns one upstream stream into IR events. Stateful: providers spread one
/// logical event over several (Anthropic's content blocks, OpenAI's indexed
/// tool-call deltas) or repeat totals (Gemini's cumulative usage).
pub trait StreamDecoder: Send {
    /// One upstream SSE event; pushes zero or more IR events.
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>);
    /// The upstream stream ended (cleanly or not).
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

/// Writes IR events as the app's SSE stream. Stateful: it opens and closes
/// the blocks its format needs and knows what the app asked for. `Usage` may
/// arrive after `Finish` (OpenAI sends it last), so a format that carries the
/// stop reason and usage in one event writes that event in `end`.
pub trait StreamEncoder: Send {
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut);
    /// After the last event: whatever closes the stream (`data: [DONE]`,
    /// `message_stop`, …). Called once, also after an upstream failure.
    fn end(&mut self, out: &mut BytesMut);
}

/// Writes one SSE event: optional `event:` line, one `data:` line, blank line.
pub fn write_sse(out: &mut BytesMut, event: Option<&str>, data: &str) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}
