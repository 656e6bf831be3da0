//! What a wire format is, in one trait: how apps and providers speak it
//! (paths, credentials), how it maps to and from the IR (requests, answers,
//! streams), how usage is read from it, and how the gateway's own answers
//! (errors, model listings) look in it. The pipeline, the planner and the
//! listener only ever ask a format's codec; nothing outside a codec's folder
//! matches on formats.

use aigw_proto::model::ProviderKind;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName};

use super::ir::{Absent, ChatRequest, ChatResponse, StreamEvent, Unsupported};
use crate::endpoints::AppCall;
use crate::error::GatewayError;
use crate::sse::Event;
use crate::usage::Usage;

/// What the app's URL says beside its body (Gemini names the model and
/// streaming there, not in the body).
#[derive(Debug, Clone, Copy, Default)]
pub struct FromPath<'a> {
    pub model: Option<&'a str>,
    pub stream: bool,
}

/// How a stream is framed for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events.
    Sse,
    /// One JSON array, an element per chunk (Gemini without `?alt=sse`).
    JsonArray,
}

/// Who speaks a format and how they are addressed: plain data, one
/// `static` per codec.
pub struct Profile {
    /// The format's name in traces and messages (`openai`, `anthropic`, …).
    pub name: &'static str,
    /// Provider kinds that take the format as it is (the app's body then
    /// passes through untouched).
    pub spoken_by: &'static [ProviderKind],
    /// The header an API key travels in to a provider of this format, and
    /// the scheme before it (`Authorization: Bearer …`, `x-api-key: …`).
    pub auth: (HeaderName, &'static str),
    /// What of the IR the format has no place for (dropped, not refused).
    pub absent: &'static [Absent],
}

/// What the upstream path of a call depends on.
pub struct UpstreamCall<'a> {
    /// The app's call (its operation, and what its URL said).
    pub call: &'a AppCall,
    /// The provider's model, already escaped as one path segment.
    pub model: &'a str,
    pub stream: bool,
    /// The app speaks the provider's format too.
    pub native: bool,
}

/// One wire format. Implementations are unit structs, listed once in
/// `translate::formats!`; each lives in its own folder under `translate/`.
pub trait Codec: Sync {
    fn profile(&self) -> &'static Profile;

    fn name(&self) -> &'static str {
        self.profile().name
    }

    fn spoken_by(&self, kind: ProviderKind) -> bool {
        self.profile().spoken_by.contains(&kind)
    }

    fn auth(&self) -> (HeaderName, &'static str) {
        self.profile().auth.clone()
    }

    // ---------------------------------------------------------- the wire

    /// The upstream path for a call; `None` when this format has no such
    /// operation.
    fn upstream_path(&self, to: &UpstreamCall<'_>) -> Option<String>;

    /// Headers beside the credential the provider needs (an API version),
    /// and those of the app's that may travel when the body passes through
    /// (betas).
    fn upstream_headers(&self, _app: &HeaderMap, _native: bool, _out: &mut HeaderMap) {}

    /// The model is named in the URL, not the body (Gemini): a pass-through
    /// body keeps its own.
    fn model_in_path(&self) -> bool {
        false
    }

    /// Streams carry usage only when the request asks for it (OpenAI chat's
    /// `stream_options.include_usage`): a passed-through stream is asked for
    /// it, and the usage chunk the app did not ask for is taken out again.
    fn stream_usage_on_request(&self) -> bool {
        false
    }

    /// How the app asked its stream to be framed.
    fn framing(&self, _call: &AppCall) -> Framing {
        Framing::Sse
    }

    // ---------------------------------------------------------- the IR

    /// The app's request → IR. What the IR cannot carry is dropped (and
    /// recorded in `ChatRequest::dropped`) or refused, naming the field.
    fn decode_request(&self, body: &[u8], path: FromPath<'_>) -> Result<ChatRequest, Unsupported>;

    /// IR → the provider's request body. Hints the format has no place for
    /// are dropped into `req.dropped`; content it cannot say is refused.
    fn encode_request(&self, req: &mut ChatRequest) -> Result<Vec<u8>, Unsupported>;

    /// [`Codec::encode_request`] for a provider of `kind`: kinds that share a
    /// format may still differ in what they accept (OpenAI refuses
    /// `max_tokens` for its reasoning models, which compatible vendors alone
    /// know), so a codec spoken by several kinds overrides this.
    fn encode_request_for(
        &self,
        req: &mut ChatRequest,
        _kind: ProviderKind,
    ) -> Result<Vec<u8>, Unsupported> {
        self.encode_request(req)
    }

    /// The provider's whole answer → IR.
    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Unsupported>;

    /// IR → the app's whole answer.
    fn encode_response(&self, resp: &ChatResponse) -> Result<Vec<u8>, serde_json::Error>;

    /// Reads a provider's stream in this format as IR events.
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;

    /// Writes IR events as the app's stream in this format.
    fn stream_encoder(&self, req: &ChatRequest, framing: Framing) -> Box<dyn StreamEncoder>;

    // ---------------------------------------------------------- metering

    /// Usage reported in a whole answer, if any.
    fn usage(&self, body: &[u8]) -> Option<Usage>;

    /// The event after which a stream in this format carries nothing more:
    /// the trace is filed before it leaves (the app's SDK may stop reading).
    fn is_closing(&self, ev: &Event) -> bool;

    // ---------------------------------------------------------- the gateway's own answers

    /// The gateway's error, in the shape this format's SDKs understand.
    fn error_body(&self, e: &GatewayError) -> Bytes;

    /// A model listing (name, owner) in this format's shape.
    fn model_list(&self, models: &[(&str, &str)]) -> String;

    /// One model (name, owner) in this format's shape (`models.retrieve`).
    fn model_entry(&self, id: &str, owner: &str) -> String;
}

/// Writes the `Codec` methods that only point at what every codec folder
/// holds under the same names: its `PROFILE`, `request::request_body`,
/// `decode_response`, `response::answer_body`, its usage's `WireUsage`, the
/// stream `Decoder`, and the `gateway` answers.
/// The other methods each say something about their format, so each codec
/// writes them out.
macro_rules! folder_methods {
    () => {
        fn profile(&self) -> &'static crate::translate::Profile {
            &PROFILE
        }

        fn encode_request(
            &self,
            req: &mut crate::translate::ir::ChatRequest,
        ) -> Result<Vec<u8>, crate::translate::Unsupported> {
            req.drop_absent(PROFILE.absent);
            crate::translate::wire::Body::request_bytes(&request::request_body(req)?)
        }

        fn usage(&self, body: &[u8]) -> Option<crate::usage::Usage> {
            crate::translate::wire::answer_usage::<WireUsage>(body).map(Into::into)
        }

        fn decode_response(
            &self,
            body: &[u8],
        ) -> Result<crate::translate::ir::ChatResponse, crate::translate::Unsupported> {
            decode_response(body)
        }

        fn encode_response(
            &self,
            resp: &crate::translate::ir::ChatResponse,
        ) -> Result<Vec<u8>, serde_json::Error> {
            crate::translate::wire::Body::to_bytes(&response::answer_body(resp))
        }

        fn stream_decoder(&self) -> Box<dyn crate::translate::StreamDecoder> {
            Box::<Decoder>::default()
        }

        fn error_body(&self, e: &crate::error::GatewayError) -> bytes::Bytes {
            gateway::error_body(e)
        }

        fn model_list(&self, models: &[(&str, &str)]) -> String {
            gateway::model_list(models)
        }

        fn model_entry(&self, id: &str, owner: &str) -> String {
            gateway::model_entry(id, owner)
        }
    };
}
pub(crate) use folder_methods;

/// Turns one upstream stream into IR events. Stateful: providers spread one
/// logical event over several (Anthropic's content blocks, OpenAI's indexed
/// tool-call deltas) or repeat totals (Gemini's cumulative usage).
pub trait StreamDecoder: Send {
    /// One upstream SSE event; pushes zero or more IR events.
    fn event(&mut self, ev: &Event, out: &mut Vec<StreamEvent>);
    /// The upstream stream ended (cleanly or not).
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
    /// The events go to an encoder for an app of another format (else the
    /// app gets the upstream's own bytes, and the events only meter them):
    /// what only another format's app must be told may then be said.
    fn translating(&mut self) {}
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
