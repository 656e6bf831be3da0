//! OpenAI's chat completions format, spoken by OpenAI and every
//! OpenAI-compatible vendor.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::GatewayError;
use crate::sse::Event;
use crate::translate::openai_chat::usage_from;
use crate::usage::Usage;

/// What the gateway needs from a chat request before forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The app asked for `stream_options.include_usage`.
    pub include_usage: bool,
    /// The answer's cap as the app set it, in whichever format's field
    /// (read here, in the one pass over the body, for budget reservations).
    pub output_cap: Option<u64>,
    /// How many answers the request asks for (`n`): each may reach the cap.
    pub choices: u64,
    /// Responses `background: true`: answered at once, run later upstream.
    pub background: bool,
}

#[derive(Deserialize)]
struct Probe {
    model: Option<Value>,
    stream: Option<Value>,
    stream_options: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
    max_output_tokens: Option<Value>,
    n: Option<Value>,
    background: Option<Value>,
}

/// Every format's field for the most output tokens an answer may have
/// (Gemini's, whose model is in the path, read on its own). Values that are
/// not counts are ignored (the provider refuses them).
#[derive(Deserialize, Default)]
pub struct OutputCaps {
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
    max_output_tokens: Option<Value>,
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<Value>,
}

impl OutputCaps {
    /// The largest cap the body sets, in any format's field: formats read
    /// them in different orders (and a translated request may carry one
    /// the budget would not have read first), so the reservation takes the
    /// one that lets the answer run longest.
    pub fn cap(&self) -> Option<u64> {
        let g = self.generation_config.as_ref();
        let gemini = ["maxOutputTokens", "max_output_tokens"].map(|k| g.and_then(|g| g.get(k)));
        largest_count(
            [
                self.max_completion_tokens.as_ref(),
                self.max_tokens.as_ref(),
                self.max_output_tokens.as_ref(),
            ]
            .into_iter()
            .chain(gemini),
        )
    }

    /// Gemini's `candidateCount`: each candidate may reach the cap.
    pub fn choices(&self) -> u64 {
        let g = self.generation_config.as_ref();
        let n = ["candidateCount", "candidate_count"].map(|k| g.and_then(|g| g.get(k)));
        largest_count(n.into_iter()).unwrap_or(1).max(1)
    }
}

/// The largest of `fields` that holds a count.
fn largest_count<'a>(fields: impl Iterator<Item = Option<&'a Value>>) -> Option<u64> {
    fields.filter_map(|v| v.and_then(count)).max()
}

/// A whole, non-negative number as providers accept one: `64000`, also
/// `64000.0` and, as protobuf's JSON mapping allows (Gemini), `"64000"`.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        v => crate::translate::wire::whole_number(v),
    }
}

impl ChatRequest {
    /// Validates the body as JSON (all of it) and reads the routing fields.
    /// (That it is an object at all is checked first, in `plan`.)
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let p: Probe =
            serde_json::from_slice(body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
        let model = match p.model {
            Some(Value::String(m)) if !m.is_empty() => m,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(GatewayError::invalid(
                    "you must provide a model parameter",
                    Some("model"),
                ));
            }
            Some(_) => {
                return Err(GatewayError::invalid(
                    "`model` must be a string",
                    Some("model"),
                ));
            }
        };
        let stream = match p.stream {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(GatewayError::invalid(
                    "`stream` must be a boolean",
                    Some("stream"),
                ));
            }
        };
        let include_usage = p
            .stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            model,
            stream,
            include_usage,
            output_cap: largest_count(
                [
                    p.max_completion_tokens.as_ref(),
                    p.max_tokens.as_ref(),
                    p.max_output_tokens.as_ref(),
                ]
                .into_iter(),
            ),
            choices: p.n.as_ref().and_then(count).unwrap_or(1).max(1),
            background: p.background.as_ref().and_then(Value::as_bool) == Some(true),
        })
    }
}

/// What to do with one event of a chat stream.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkAction {
    Forward,
    /// The usage-only chunk the app did not ask for.
    Drop,
}

/// Reads usage from a stream chunk. OpenAI sends it once, in a chunk with
/// `choices: []` just before `[DONE]`; the last report wins, never summed.
pub fn scan_chunk(ev: &Event, usage: &mut Usage, strip_usage_chunk: bool) -> ChunkAction {
    // Every chunk carries `"usage":null` once usage is asked for; only the
    // one with an object is worth parsing.
    if !has_usage_object(&ev.data) {
        return ChunkAction::Forward;
    }
    let Ok(chunk) = serde_json::from_str::<ChunkTop<'_>>(&ev.data) else {
        return ChunkAction::Forward;
    };
    let Some(u) = chunk
        .usage
        .map(RawValue::get)
        .filter(|u| u.starts_with('{'))
    else {
        return ChunkAction::Forward;
    };
    *usage = usage_from(u);
    if strip_usage_chunk && !chunk.has_choices {
        ChunkAction::Drop
    } else {
        ChunkAction::Forward
    }
}

/// The top level of a chat chunk as metering reads it: its `usage` as sent,
/// and whether `choices` is a non-empty array. A key that repeats counts
/// as its last value (as a `Value` keeps it); everything else is skipped
/// without being built. Read in place: the usage chunk through a `Value`
/// cost a tenth of a streamed request's instructions.
struct ChunkTop<'a> {
    usage: Option<&'a RawValue>,
    has_choices: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for ChunkTop<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Key {
            Usage,
            Choices,
            #[serde(other)]
            Other,
        }
        struct Top<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Top<'a> {
            type Value = ChunkTop<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a chat chunk")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChunkTop<'a>, A::Error> {
                let mut top = ChunkTop {
                    usage: None,
                    has_choices: false,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Usage => top.usage = Some(map.next_value()?),
                        Key::Choices => top.has_choices = map.next_value::<NonEmptyList>()?.0,
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(Top(PhantomData))
    }
}

/// Whether a value is an array with at least one element (anything else,
/// or an empty array, is not).
struct NonEmptyList(bool);

impl<'de> Deserialize<'de> for NonEmptyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = NonEmptyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmptyList, A::Error> {
                let first = seq.next_element::<IgnoredAny>()?.is_some();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NonEmptyList(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NonEmptyList, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NonEmptyList(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmptyList, E> {
                Ok(NonEmptyList(false))
            }
        }
        d.deserialize_any(List)
    }
}

/// True when a `"usage"` key is followed by an object, without parsing.
fn has_usage_object(data: &str) -> bool {
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("\"usage\""));
    key_then(data, &USAGE, '{')
}

/// True when a chunk finishes a choice: a `"finish_reason"` key followed by
/// a string (every chunk before carries `null`), without parsing.
pub fn finishes_choice(data: &str) -> bool {
    static FINISH: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("\"finish_reason\""));
    key_then(data, &FINISH, '"')
}

/// True when `key` (a quoted name) is followed, after a colon and any
/// JSON whitespace, by a value that opens with `open`. A match inside a
/// string is possible in principle and harmless where this is used: a
/// false "yes" costs a parse or marks a finish the trace also checks.
fn key_then(data: &str, key: &memchr::memmem::Finder<'_>, open: char) -> bool {
    let mut rest = data;
    while let Some(i) = key.find(rest.as_bytes()) {
        rest = &rest[i + key.needle().len()..];
        let after = rest.trim_start();
        if let Some(v) = after.strip_prefix(':')
            && v.trim_start().starts_with(open)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    #[test]
    fn usage_object_detection() {
        assert!(has_usage_object(
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(has_usage_object(r#"{"usage" : {"x":1}}"#));
        assert!(!has_usage_object(
            r#"{"choices":[{"delta":{"content":"\"usage\""}}],"usage":null}"#
        ));
        assert!(!has_usage_object(r#"{"choices":[]}"#));
        assert!(!finishes_choice(r#"{"choices":[{"finish_reason":null}]}"#));
        assert!(finishes_choice(r#"{"choices":[{"finish_reason":"stop"}]}"#));
        assert!(finishes_choice(
            "{\"choices\":[{\"finish_reason\" :\n \"length\"}]}"
        ));
        assert!(finishes_choice(
            r#"{"choices":[{"finish_reason":null},{"finish_reason":"stop"}]}"#
        ));
    }

    #[test]
    fn parse_request() {
        let r = ChatRequest::parse(br#"{"model":"gpt-4o","messages":[],"stream":true}"#).unwrap();
        assert_eq!(
            r,
            ChatRequest {
                model: "gpt-4o".into(),
                stream: true,
                include_usage: false,
                output_cap: None,
                choices: 1,
                background: false,
            }
        );
        assert!(matches!(
            ChatRequest::parse(b"{\"model\":"),
            Err(GatewayError::BadJson(_))
        ));
        assert!(matches!(
            ChatRequest::parse(b"[1]"),
            Err(GatewayError::BadJson(_))
        ));
        assert!(matches!(
            ChatRequest::parse(b"{\"messages\":[]}"),
            Err(GatewayError::InvalidRequest {
                param: Some("model"),
                ..
            })
        ));
    }

    #[test]
    fn reads_and_strips_stream_usage() {
        let mut p = SseParser::new();
        p.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n");
        p.push(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n");
        let mut usage = Usage::default();
        let first = p.next_event().unwrap();
        assert_eq!(scan_chunk(&first, &mut usage, true), ChunkAction::Forward);
        let second = p.next_event().unwrap();
        assert_eq!(scan_chunk(&second, &mut usage, true), ChunkAction::Drop);
        assert_eq!(
            usage,
            Usage {
                input: 9,
                output: 2,
                cached: 4,
                reasoning: 0,
                ..Default::default()
            }
        );
        assert_eq!(scan_chunk(&second, &mut usage, false), ChunkAction::Forward);
    }

    /// The chunk's top level read in place keeps what the `Value` reader
    /// gave: the last of a repeated key, choices only
    /// when a non-empty array, usage only when an object, odd shapes
    /// forwarded untouched.
    #[test]
    fn stream_usage_edge_shapes() {
        let scan = |data: &str, strip: bool| {
            let mut usage = Usage::default();
            let ev = Event {
                raw: bytes::BytesMut::new(),
                event: None,
                data: data.to_string(),
            };
            (
                scan_chunk(&ev, &mut usage, strip),
                usage.input,
                usage.output,
            )
        };
        use ChunkAction::{Drop, Forward};
        let cases = [
            (
                r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
                (Drop, 2, 0),
            ),
            (
                r#"{"usage":{"prompt_tokens":1},"usage":null}"#,
                (Forward, 0, 0),
            ),
            (
                r#"{"id":"\"usage\":{","usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
                (Drop, 3, 4),
            ),
            (
                r#"{"choices":[{}],"usage":{"prompt_tokens":5}}"#,
                (Forward, 5, 0),
            ),
            (
                r#"{"choices":{"a":1},"usage":{"prompt_tokens":5}}"#,
                (Drop, 5, 0),
            ),
            (
                r#"{"choices":[{}],"choices":[],"usage":{"prompt_tokens":5}}"#,
                (Drop, 5, 0),
            ),
            (
                r#"{"choices":"x","model":{"usage":[1]},"usage":{"prompt_tokens":6}}"#,
                (Drop, 6, 0),
            ),
            // A key repeated inside the usage: its last value, as before.
            (
                r#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":9,"completion_tokens":50}}"#,
                (Drop, 100, 50),
            ),
            // A count written as a string is read (some compatible vendors
            // send them so); a usage of another shape counts nothing.
            (
                r#"{"choices":[],"usage":{"prompt_tokens":"7"}}"#,
                (Drop, 7, 0),
            ),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":[7]}}"#,
                (Drop, 0, 0),
            ),
            (r#"[{"usage":{"prompt_tokens":8}}]"#, (Forward, 0, 0)),
            (r#"{"usage":{"prompt_tokens":9}"#, (Forward, 0, 0)),
        ];
        for (data, want) in &cases {
            assert_eq!(&scan(data, true), want, "{data}");
        }
        assert_eq!(scan(cases[0].0, false), (Forward, 2, 0));
    }
}
