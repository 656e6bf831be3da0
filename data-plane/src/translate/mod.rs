//! Translation between the wire formats, through the IR in `ir`: the app's
//! format is decoded into the IR and encoded into the provider's, and the
//! answer comes back the same way. Each format is one module implementing the
//! same six operations; nothing here does I/O, so it is unit-tested against
//! fixtures of real payloads and benchmarked on its own.
//!
//! When the app's format is the provider's, none of this runs: bodies pass
//! through untouched (see `pipeline`).

pub mod anthropic;
mod field;
pub mod gemini;
pub mod ir;
pub mod openai_chat;
pub mod responses;
#[cfg(test)]
mod testkit;

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

// ------------------------------------------------------------------ dispatch

use ir::{ChatRequest, ChatResponse};
use serde_json::Value;

use crate::usage::Usage;

/// The app's request in `fmt` → IR. Gemini takes model and streaming from the path.
pub fn decode_request(
    fmt: Format,
    body: &[u8],
    path_model: Option<&str>,
    path_stream: bool,
) -> Result<ChatRequest, Unsupported> {
    match fmt {
        Format::OpenAiChat => openai_chat::decode_request(body),
        Format::Responses => responses::decode_request(body),
        Format::Anthropic => anthropic::decode_request(body),
        Format::Gemini => {
            let model =
                path_model.ok_or_else(|| Unsupported::invalid("model", "missing from the path"))?;
            gemini::decode_request(
                body,
                model.strip_prefix("models/").unwrap_or(model),
                path_stream,
            )
        }
    }
}

/// IR → the provider's request body in `fmt`; what the target has no place
/// for is added to `req.dropped`.
pub fn encode_request(fmt: Format, req: &mut ChatRequest) -> Result<Value, Unsupported> {
    if matches!(fmt, Format::OpenAiChat | Format::Responses) && req.top_k.take().is_some() {
        // A sampling knob OpenAI's formats lack (Gemini CLI always sends
        // one): a hint, not content. The codecs themselves refuse it.
        req.dropped.hint("top_k");
    }
    match fmt {
        Format::OpenAiChat => openai_chat::encode_request(req),
        Format::Responses => responses::encode_request(req),
        Format::Anthropic => anthropic::encode_request(req),
        Format::Gemini => {
            // Gemini has no end-user id.
            if req.user.is_some() {
                req.dropped.advisory("user");
            }
            gemini::encode_request(req)
        }
    }
}

/// The provider's answer in `fmt` → IR.
pub fn decode_response(fmt: Format, body: &[u8]) -> Result<ChatResponse, Unsupported> {
    match fmt {
        Format::OpenAiChat => openai_chat::decode_response(body),
        Format::Responses => responses::decode_response(body),
        Format::Anthropic => anthropic::decode_response(body),
        Format::Gemini => gemini::decode_response(body),
    }
}

/// IR → the app's answer in `fmt`.
pub fn encode_response(fmt: Format, resp: &ChatResponse) -> Value {
    match fmt {
        Format::OpenAiChat => openai_chat::encode_response(resp),
        Format::Responses => responses::encode_response(resp),
        Format::Anthropic => anthropic::encode_response(resp),
        Format::Gemini => gemini::encode_response(resp),
    }
}

pub fn decoder(fmt: Format) -> Box<dyn StreamDecoder> {
    match fmt {
        Format::OpenAiChat => Box::<openai_chat::Decoder>::default(),
        Format::Responses => Box::<responses::Decoder>::default(),
        Format::Anthropic => Box::<anthropic::Decoder>::default(),
        Format::Gemini => Box::<gemini::Decoder>::default(),
    }
}

pub fn encoder(fmt: Format, req: &ChatRequest) -> Box<dyn StreamEncoder> {
    match fmt {
        Format::OpenAiChat => Box::new(openai_chat::Encoder::new(req)),
        Format::Responses => Box::new(responses::Encoder::new(req)),
        Format::Anthropic => Box::new(anthropic::Encoder::new(req)),
        Format::Gemini => Box::new(gemini::Encoder::new(req)),
    }
}

/// Usage reported in a whole (non-streamed) answer in `fmt`, if any.
/// Embeddings bill input tokens only.
pub fn usage_of_body(fmt: Format, embeddings: bool, body: &[u8]) -> Option<Usage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match (fmt, embeddings) {
        (Format::OpenAiChat, true) => v.get("usage").map(|u| Usage {
            input: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
            ..Usage::default()
        }),
        (Format::OpenAiChat, false) => v.get("usage").map(openai_chat::usage_from),
        (Format::Responses, _) => v.get("usage").map(responses::usage_from),
        (Format::Anthropic, _) => v.get("usage").map(anthropic::usage_from),
        (Format::Gemini, _) => v.get("usageMetadata").map(gemini::usage_from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_answer_usage() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":7,"completion_tokens_details":{"reasoning_tokens":3}}}"#;
        let u = usage_of_body(Format::OpenAiChat, false, body).unwrap();
        assert_eq!((u.input, u.output, u.cached, u.reasoning), (5, 7, 0, 3));
        assert!(usage_of_body(Format::OpenAiChat, false, b"{}").is_none());
        let e = usage_of_body(
            Format::OpenAiChat,
            true,
            br#"{"usage":{"prompt_tokens":4,"total_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!((e.input, e.output), (4, 0));
    }
}
