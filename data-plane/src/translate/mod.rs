//! The wire formats and translation between them. Each format is a codec
//! (`codec::Codec`, one folder here) holding everything the format is: its
//! paths and credential header, its request/answer/stream mapping to and
//! from the IR in `ir`, its usage reports, and the gateway's own errors and
//! listings in its shape. The app's format is decoded into the IR and encoded
//! into the provider's, and the answer comes back the same way, so N formats
//! need N codecs, not N² converters. Nothing here does I/O: codecs are
//! unit-tested against fixtures of real payloads and benchmarked on their own.
//!
//! When the app's format is the provider's, no translation runs: bodies pass
//! through untouched (see `plan`); the codec still meters them.
//!
//! Adding a format: a folder with a unit struct implementing `Codec`, and one
//! line in `formats!` below.

mod app_fields;
mod codec;
mod ids;
pub mod ir;
mod policy;
pub(crate) mod schema_budget;
#[cfg(test)]
mod testkit;
pub mod tool_names;
pub(crate) mod wire;

use aigw_proto::model::ProviderKind;

pub use app_fields::{name_drops, name_refusal};
pub use codec::{Codec, Framing, FromPath, Profile, StreamDecoder, StreamEncoder, UpstreamCall};
use ir::{ChatRequest, ChatResponse};
pub use ir::{StreamEvent, Unsupported};
pub use wire::write_sse;

use crate::usage::Usage;

/// Declares the formats: a module and a `Format` variant per codec, and the
/// one place a variant is mapped to its codec.
macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident => $module:ident :: $codec:ident,)+) => {
        $(pub mod $module;)+

        /// A wire format the gateway speaks, to apps and to providers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$doc])* $variant,)+
        }

        impl Format {
            /// Every format, in the order listed.
            pub const ALL: &'static [Format] = &[$(Format::$variant),+];

            /// The format's codec: everything the gateway knows about it.
            pub fn codec(self) -> &'static dyn Codec {
                match self {
                    $(Format::$variant => &$module::$codec,)+
                }
            }
        }
    };
}

formats! {
    /// OpenAI `POST /v1/chat/completions` (and every OpenAI-compatible
    /// vendor), and `POST /v1/embeddings`.
    OpenAiChat => openai_chat::OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    Responses => responses::Responses,
    /// Anthropic `POST /v1/messages` (and `count_tokens`).
    Anthropic => anthropic::Anthropic,
    /// Gemini `:generateContent` / `:streamGenerateContent` (and
    /// `countTokens`, `embedContent`).
    Gemini => gemini::Gemini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        self.codec().name()
    }
}

/// The format a provider of each kind is sent translated requests in (it
/// may speak others natively too: see `Codec::spoken_by`).
impl From<ProviderKind> for Format {
    fn from(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => Self::OpenAiChat,
            ProviderKind::Anthropic => Self::Anthropic,
            ProviderKind::Gemini => Self::Gemini,
        }
    }
}

// ------------------------------------------------------------------ shorthands

/// The app's request in `fmt` → IR. Gemini takes model and streaming from the path.
pub fn decode_request(
    fmt: Format,
    body: &[u8],
    path_model: Option<&str>,
    path_stream: bool,
) -> Result<ChatRequest, Unsupported> {
    let path = FromPath {
        model: path_model,
        stream: path_stream,
    };
    fmt.codec().decode_request(body, path)
}

/// IR → the provider's request body in `fmt`; what the target has no place
/// for is added to `req.dropped`.
pub fn encode_request(fmt: Format, req: &mut ChatRequest) -> Result<Vec<u8>, Unsupported> {
    fmt.codec().encode_request(req)
}

/// The provider's answer in `fmt` → IR.
pub fn decode_response(fmt: Format, body: &[u8]) -> Result<ChatResponse, Unsupported> {
    fmt.codec().decode_response(body)
}

/// IR → the app's answer in `fmt`.
pub fn encode_response(fmt: Format, resp: &ChatResponse) -> Result<Vec<u8>, serde_json::Error> {
    fmt.codec().encode_response(resp)
}

pub fn decoder(fmt: Format) -> Box<dyn StreamDecoder> {
    fmt.codec().stream_decoder()
}

/// An SSE encoder for an app in `fmt`.
pub fn encoder(fmt: Format, req: &ChatRequest) -> Box<dyn StreamEncoder> {
    fmt.codec().stream_encoder(req, Framing::Sse)
}

/// Usage reported in a whole (non-streamed) answer in `fmt`, if any.
/// Embeddings bill input tokens only.
pub fn usage_of_body(fmt: Format, embeddings: bool, body: &[u8]) -> Option<Usage> {
    let u = fmt.codec().usage(body)?;
    Some(if embeddings {
        Usage {
            input: u.input,
            ..Usage::default()
        }
    } else {
        u
    })
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

    /// Usage shaped otherwise counts nothing (the answer still passes);
    /// the rest of the answer, whatever it holds, is not read as usage.
    #[test]
    fn odd_usage_counts_nothing_and_only_the_top_level_key_is_read() {
        for odd in [
            r#"{"usage":[]}"#,
            r#"{"usage":null}"#,
            r#"{"usage":"12"}"#,
            r#"{"usage":{"prompt_tokens":5}"#,
        ] {
            assert!(
                usage_of_body(Format::OpenAiChat, false, odd.as_bytes()).is_none(),
                "{odd}"
            );
        }
        // A key repeated inside the usage: its last value counts.
        let twice = br#"{"usage":{"prompt_tokens":5,"completion_tokens":1,"completion_tokens":7}}"#;
        let u = usage_of_body(Format::OpenAiChat, false, twice).unwrap();
        assert_eq!((u.input, u.output), (5, 7));
        let body = br#"{"choices":[{"message":{"content":"{\"usage\":{\"prompt_tokens\":99}}","usage":{"prompt_tokens":98}}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
        let u = usage_of_body(Format::OpenAiChat, false, body).unwrap();
        assert_eq!((u.input, u.output), (5, 1));
        let gemini =
            br#"{"candidates":[],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}"#;
        let g = usage_of_body(Format::Gemini, false, gemini).unwrap();
        assert_eq!((g.input, g.output), (3, 2));
    }

    #[test]
    fn every_provider_kind_speaks_its_own_format() {
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiCompatible,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            assert!(Format::from(kind).codec().spoken_by(kind), "{kind}");
        }
        let names: std::collections::HashSet<&str> =
            Format::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names.len(), Format::ALL.len(), "names are unique");
    }
}
