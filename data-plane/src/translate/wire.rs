//! Serde plumbing every codec shares: reading a body into a format's typed
//! wire structs (an error names the field, as the app must fix it), the
//! "text or a list of parts" shape most formats give their content, lenient
//! counts for what providers report, and writing typed events without an
//! intermediate `Value`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ir::{StopReason, Unsupported};
use crate::sse::Event;
use crate::usage::Usage;

/// Fields of a wire object the codec does not model, as sent (in key order),
/// so the dropped-field policy can drop, name or refuse each one and nothing
/// is lost silently.
pub type Extra = BTreeMap<String, Value>;

/// Reads a whole body (`what`: `body` for the app's request, `response` for
/// a provider's answer) into `T`. Malformed JSON is `what`'s fault; a value
/// of the wrong type is named by its path (`messages[2].content`), through
/// `name` (Gemini writes paths in its JSON spelling).
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Unsupported> {
    parse_named(bytes, what, str::to_string)
}

/// [`parse`], with the failing field's path rewritten by `name`.
pub fn parse_named<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    name: impl Fn(&str) -> String,
) -> Result<T, Unsupported> {
    // The common case pays nothing for paths: they are only worked out again
    // for a body that failed.
    serde_json::from_slice(bytes).map_err(|first| {
        if first.is_syntax() || first.is_eof() {
            return Unsupported::invalid(what, first);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => match path_of(e.path()) {
                Some(path) => Unsupported::invalid(name(&path), bare(e.inner())),
                None => Unsupported::invalid(what, first),
            },
            Ok(_) => Unsupported::invalid(what, first),
        }
    })
}

/// `messages[2].content`, as far as the path is known. `None` when the body
/// itself is the wrong shape (an array where an object belongs).
fn path_of(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } if !out.is_empty() => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A serde_json error's message without its ` at line L column C`.
fn bare(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match s.strip_suffix(&at) {
        Some(m) => m.to_string(),
        None => s,
    }
}

/// The usage a whole answer reports (`usage`, Gemini's `usageMetadata`), if
/// it reports one.
///
/// Every answer's usage is read, so this is on every request's path: the
/// rest of the answer is skipped without building anything, and the usage
/// object is read straight into `U` from its text (not through a `Value`
/// first, as [`Object`] does, which cost most of the time here). The same
/// leniency: a usage that is not an object, or not of `U`'s shape, is none.
pub fn answer_usage<U: DeserializeOwned>(body: &[u8]) -> Option<U> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(default, borrow, alias = "usageMetadata")]
        usage: Option<&'a RawValue>,
    }
    let raw = serde_json::from_slice::<Answer<'_>>(body)
        .ok()?
        .usage?
        .get();
    if !raw.starts_with('{') {
        return None;
    }
    usage_text(raw)
}

/// A usage object's text as `U`, read in place. One with a repeated key
/// (serde's structs refuse one) is read through a `Value`, which keeps
/// each key's last value, so one odd vendor does not bill as zero.
pub fn usage_text<U: DeserializeOwned>(raw: &str) -> Option<U> {
    serde_json::from_str::<U>(raw).ok().or_else(|| {
        serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| U::deserialize(v).ok())
    })
}

/// The `message` of a provider's error object, or `default`.
pub fn error_message(error: Option<&Value>, default: &str) -> String {
    let m = error
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(Value::as_str)
        .unwrap_or(default);
    // What the app reads, not the upstream's whole body.
    let mut end = m.len().min(MAX_ERROR_MESSAGE);
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    m[..end].to_string()
}

/// The most of an upstream's error message the app is given.
const MAX_ERROR_MESSAGE: usize = 2048;

/// An answer that carries an `error` (some vendors send one with `200`)
/// or lacks the field every answer of its format has (`what`): not an
/// answer to give the app as a finished, empty one.
pub fn not_an_answer(error: Option<&Value>, has_answer: bool, what: &str) -> Option<Unsupported> {
    if let Some(e) = error.filter(|e| !e.is_null()) {
        return Some(Unsupported::invalid(
            "response",
            error_message(Some(e), "upstream error"),
        ));
    }
    (!has_answer).then(|| Unsupported::invalid("response", format!("the answer has no `{what}`")))
}

/// The `data:` of a provider's SSE event as `T`. `None` for keep-alives,
/// `[DONE]` and data that is not the JSON expected: a stream decoder skips
/// what it cannot read rather than failing the whole answer.
pub fn event_data<'a, T: Deserialize<'a>>(ev: &'a Event) -> Option<T> {
    let data = ev.data.trim();
    if data.is_empty() || data == "[DONE]" {
        return None;
    }
    serde_json::from_str(data).ok()
}

/// One SSE event: optional `event:` line, one `data:` line, blank line.
pub fn write_sse(out: &mut BytesMut, event: Option<&str>, data: &str) {
    sse_head(out, event);
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// [`write_sse`] with `data` serialized straight into the buffer.
pub fn write_sse_json(out: &mut BytesMut, event: Option<&str>, data: &impl Serialize) {
    sse_head(out, event);
    write_json(out, data);
    out.extend_from_slice(b"\n\n");
}

fn sse_head(out: &mut BytesMut, event: Option<&str>) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
}

/// `data` as JSON at the end of `out`. The wire structs serialize with
/// string keys only, so this cannot fail; were it to, the event is left
/// empty and logged rather than the stream torn down.
pub fn write_json(out: &mut BytesMut, data: &impl Serialize) {
    if let Err(e) = serde_json::to_writer(out.writer(), data) {
        tracing::error!(error = %e, "a wire struct did not serialize");
    }
}

/// Tool-call arguments (JSON text, as the IR keeps them) as the object the
/// formats that send structured arguments want (Anthropic `input`, Gemini
/// `args`). Empty arguments are `{}`.
pub fn arguments_object(arguments: &str, at: &str) -> Result<Value, Unsupported> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Unsupported::invalid(
            at,
            "tool call arguments must be a JSON object",
        )),
        Err(e) => Err(Unsupported::invalid(
            at,
            format!("tool call arguments are not valid JSON: {e}"),
        )),
    }
}

/// A provider's arguments that cannot be an object (malformed upstream
/// output) become `{}` in an answer: the app still gets the call.
pub fn arguments_or_empty(arguments: &str) -> Value {
    arguments_object(arguments, "arguments")
        .unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
}

/// Whether a call of an answer that stopped for `stop` was cut off by the
/// token cap: the answer stopped at `max_tokens` and the call's arguments
/// are not a whole JSON object (blank ones included: the cap may come
/// before the first of them). Apps that take arguments as an object
/// (Gemini, Anthropic) would get it as `{}`, and Gemini CLI runs such a
/// call without its parameters; it is left out instead, and the finish
/// reason still says why the answer ended. OpenAI's formats carry the
/// text as it is, as OpenAI does with `finish_reason: "length"`.
pub fn cut_by_cap(stop: Option<StopReason>, arguments: &str) -> bool {
    stop == Some(StopReason::MaxTokens)
        && (arguments.trim().is_empty() || arguments_object(arguments, "arguments").is_err())
}

/// Structured arguments (`input`, `args`) as the IR's JSON text; absent or
/// null is `{}`.
pub fn arguments_text(v: Option<&Value>) -> String {
    v.filter(|v| !v.is_null())
        .map_or_else(|| "{}".to_string(), Value::to_string)
}

/// Plain text, or a list of parts: message content in every format, and a
/// few other fields shaped alike (`stop`, `system`, a tool result).
#[derive(Debug, Clone, PartialEq)]
pub enum TextOr<P> {
    Text(String),
    Parts(Vec<P>),
}

impl<'de, P: Deserialize<'de>> Deserialize<'de> for TextOr<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read in one pass (an untagged enum would buffer the whole value
        // first, and lose the failing part's path).
        struct V<P>(PhantomData<P>);
        impl<'de, P: Deserialize<'de>> Visitor<'de> for V<P> {
            type Value = TextOr<P>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(TextOr::Parts(parts))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<P> TextOr<P> {
    /// The text of a string, or of a list of text parts joined (`text` says
    /// which parts are text, and what they hold); another part is `field`'s
    /// error. Absent is empty.
    pub fn joined(
        v: Option<Self>,
        field: &str,
        text: impl Fn(&P) -> Option<&str>,
    ) -> Result<String, Unsupported> {
        match v {
            None => Ok(String::new()),
            Some(TextOr::Text(s)) => Ok(s),
            Some(TextOr::Parts(parts)) => {
                let mut out = String::new();
                for p in &parts {
                    let t = text(p).ok_or_else(|| {
                        Unsupported::invalid(field, "only text parts are allowed here")
                    })?;
                    out.push_str(t);
                }
                Ok(out)
            }
        }
    }
}

impl<P> TextOr<P> {
    /// The texts of a string, or of a list of text parts, each apart (`text`
    /// says which parts are text, and what they hold); another part is
    /// `field`'s error. Absent, and empty texts, are none.
    pub fn texts(
        v: Option<Self>,
        field: &str,
        text: impl Fn(&P) -> Option<&str>,
    ) -> Result<Vec<String>, Unsupported> {
        let all = match v {
            None => vec![],
            Some(TextOr::Text(s)) => vec![s],
            Some(TextOr::Parts(parts)) => parts
                .iter()
                .map(|p| {
                    text(p).map(str::to_string).ok_or_else(|| {
                        Unsupported::invalid(field, "only text parts are allowed here")
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(all.into_iter().filter(|t| !t.is_empty()).collect())
    }
}

impl<P: Serialize> Serialize for TextOr<P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TextOr::Text(t) => s.serialize_str(t),
            TextOr::Parts(p) => p.serialize(s),
        }
    }
}

/// The rest of a lenient visitor: booleans, floats, strings, null and
/// arrays (skipped whole) are `$none`.
macro_rules! lenient_scalars_and_seq {
    ($none:expr) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
        lenient_rest!($none);
    };
}

/// Booleans, nulls and arrays read as `$none`.
macro_rules! lenient_rest {
    ($none:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

/// A token count as a provider reports it: a non-negative integer, also
/// written as a whole float (`1000.0`) or a string (`"1000"`), as some
/// OpenAI-compatible vendors do (read as 0, they would make a billed
/// answer look unreported, and be charged a guess). Anything else counts
/// as 0: a vendor's odd usage field must not cost the app its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    /// Read in place (every answer's usage holds several): a `Value` first
    /// cost a few hundred instructions a count.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
                Ok(Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(n).unwrap_or(0)))
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Count, E> {
                Ok(Count(u64::try_from(n).unwrap_or(0)))
            }
            fn visit_i128<E: de::Error>(self, n: i128) -> Result<Count, E> {
                Ok(Count(u64::try_from(n).unwrap_or(0)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Count, E> {
                let whole = n.is_finite() && n >= 0.0 && n.fract() == 0.0;
                Ok(Count(if whole {
                    n.min(u64::MAX as f64) as u64
                } else {
                    0
                }))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Count, E> {
                let s = s.trim();
                match s.parse() {
                    Ok(n) => Ok(Count(n)),
                    Err(_) => self.visit_f64(s.parse().unwrap_or(f64::NAN)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
            lenient_rest!(Count(0));
        }
        d.deserialize_any(CountVisitor)
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A whole, non-negative number as a JSON number: `40`, or `40.0` as loosely
/// typed clients write one (providers accept both).
pub fn whole_number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f.min(u64::MAX as f64) as u64)
    })
}

/// A provider's usage object (`U`, the format's shape) → IR usage;
/// anything else counts nothing.
pub fn usage_of<U: DeserializeOwned + Into<Usage>>(v: &Value) -> Usage {
    U::deserialize(v).map(Into::into).unwrap_or_default()
}

/// A map whose reader knows whether the last key's value is still unread
/// (so a reader that stopped at a key can skip exactly that value: asking
/// for a value no key announced panics in some of serde's readers).
struct Tracked<A> {
    map: A,
    pending: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Tracked<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = self.map.next_key_seed(seed)?;
        self.pending = key.is_some();
        Ok(key)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.pending = false;
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A part of a provider's answer read only if it has the expected shape;
/// `None` when absent, null or shaped otherwise (usage reported as `[]`, say),
/// so one odd field does not cost the rest of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Lenient(T::deserialize(v).ok()))
    }
}

/// An object of a provider's answer (usage, say) read only if it is a JSON
/// object of the expected shape; `None` otherwise, as if absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<T>(pub Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    /// Read in place, not through a `Value` (an `IndexMap` built and
    /// dropped for every usage object of every answer). `T` is read from
    /// the object's entries as they come; if it fails at a key (a
    /// duplicate: the old reader kept the last one, this one drops the
    /// object), that key's value and the rest of the object are skipped,
    /// so the answer around it still reads. `T`'s fields must not fail
    /// within a value (the parser could not go on from there): every `T`
    /// here holds only lenient counts and objects.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                let mut map = Tracked {
                    map,
                    pending: false,
                };
                let read = T::deserialize(MapAccessDeserializer::new(&mut map)).ok();
                if read.is_none() && map.pending {
                    // `T` stopped after a key: its value is next.
                    map.map.next_value::<IgnoredAny>()?;
                }
                while map.map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Object(read))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Object<T>, E> {
                Ok(Object(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Object<T>, E> {
                Ok(Object(None))
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Object<T>, E> {
                Ok(Object(None))
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Object<T>, E> {
                Ok(Object(None))
            }
            lenient_scalars_and_seq!(Object(None));
        }
        d.deserialize_any(ObjectVisitor(PhantomData))
    }
}

/// A body the gateway writes: sent as bytes, or read as JSON by tests and
/// tools. Every wire struct is one.
pub trait Body: Serialize {
    /// The bytes sent. The wire structs serialize with string keys only, so
    /// this does not fail in practice.
    fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// [`Body::to_bytes`] for a request, a failure reported as the body's.
    fn request_bytes(&self) -> Result<Vec<u8>, Unsupported> {
        self.to_bytes().map_err(|e| Unsupported::invalid("body", e))
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl<T: Serialize> Body for T {}

/// `skip_serializing_if` for flags written only when set.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// `skip_serializing_if` for counts written only when non-zero.
pub fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[allow(dead_code)]
        model: Option<String>,
        #[allow(dead_code)]
        messages: Option<Vec<Msg>>,
    }
    #[derive(Debug, Deserialize)]
    struct Msg {
        #[allow(dead_code)]
        content: Option<TextOr<Part>>,
    }
    #[derive(Debug, Deserialize)]
    struct Part {
        #[allow(dead_code)]
        text: Option<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Body>(
            br#"{"model":"m","messages":[{"content":[{"text":3}]}]}"#,
            "body",
        )
        .unwrap_err();
        assert_eq!(e.field, "messages[0].content[0].text");
        assert!(!e.message.contains("line"), "{}", e.message);
        assert_eq!(parse::<Body>(b"{", "body").unwrap_err().field, "body");
        assert_eq!(parse::<Body>(b"[1]", "body").unwrap_err().field, "body");
        let e = parse::<Body>(br#"{"messages":[{"content":5}]}"#, "body").unwrap_err();
        assert_eq!(e.field, "messages[0].content");
    }

    #[test]
    fn counts_and_lenient_parts_tolerate_odd_values() {
        #[derive(Deserialize)]
        struct U {
            a: Count,
            b: Count,
        }
        let u: U = serde_json::from_str(r#"{"a": -1, "b": 7}"#).unwrap();
        assert_eq!((u.a.0, u.b.0), (0, 7));
        let l: Lenient<U> = serde_json::from_str("[]").unwrap();
        assert!(l.0.is_none());
        // Nested and odd values count 0 and are skipped whole, from text
        // and from a `Value` alike; whole numbers written as floats or
        // strings are read.
        let odd = r#"{"a": {"x": [1, {"y": 2}]}, "b": [1, {"c": 2}], "c": " 12", "d": 1000.0,
                      "e": 18446744073709551615, "f": null, "g": true, "h": 1.5, "i": "x1",
                      "j": "-3", "k": -2.0, "l": "1000.0"}"#;
        #[derive(Deserialize)]
        struct Odd {
            a: Count,
            b: Count,
            c: Count,
            d: Count,
            e: Count,
            f: Count,
            g: Count,
            h: Count,
            i: Count,
            j: Count,
            k: Count,
            l: Count,
        }
        let from_text: Odd = serde_json::from_str(odd).unwrap();
        let v: Value = serde_json::from_str(odd).unwrap();
        let from_value = Odd::deserialize(&v).unwrap();
        for o in [from_text, from_value] {
            let got = [o.a, o.b, o.c, o.d, o.e, o.f, o.g, o.h, o.i, o.j, o.k, o.l].map(|c| c.0);
            assert_eq!(got, [0, 0, 12, 1000, u64::MAX, 0, 0, 0, 0, 0, 0, 1000]);
        }
    }

    /// A usage detail object that is not an object, or not of its shape,
    /// is none, and the usage around it still reads (before and after it).
    #[test]
    fn an_odd_detail_object_is_none_and_the_rest_reads() {
        #[derive(Deserialize)]
        struct Details {
            #[serde(default)]
            n: Count,
        }
        #[derive(Deserialize)]
        struct U {
            #[serde(default)]
            before: Count,
            #[serde(default)]
            details: Object<Details>,
            #[serde(default)]
            after: Count,
        }
        let read = |details: &str| {
            let text = format!(r#"{{"before": 3, "details": {details}, "after": 4}}"#);
            let from_text: U = serde_json::from_str(&text).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            let from_value = U::deserialize(&v).unwrap();
            for u in [&from_text, &from_value] {
                assert_eq!((u.before.0, u.after.0), (3, 4), "{details}");
            }
            assert_eq!(
                from_text.details.0.as_ref().map(|d| d.n.0),
                from_value.details.0.as_ref().map(|d| d.n.0),
                "{details}"
            );
            from_text.details.0.map(|d| d.n.0)
        };
        assert_eq!(read(r#"{"n": 5, "other": {"deep": [1]}}"#), Some(5));
        assert_eq!(read("{}"), Some(0));
        for odd in ["[]", "[1, {}]", r#""x""#, "3", "-3", "1.5", "true", "null"] {
            assert_eq!(read(odd), None, "{odd}");
        }
        // A duplicate key: `Details` refuses it; the object is skipped.
        let text = r#"{"before": 3, "details": {"n": 1, "n": 2, "m": [3]}, "after": 4}"#;
        let u: U = serde_json::from_str(text).unwrap();
        assert!(u.details.0.is_none());
        assert_eq!((u.before.0, u.after.0), (3, 4));
        // Read through serde's buffer (a tagged enum), a `T` that fails
        // once the object is over (a missing field) is none, not a panic.
        #[derive(Deserialize)]
        struct Required {
            #[allow(dead_code)]
            n: Count,
        }
        #[derive(Deserialize)]
        #[serde(tag = "type")]
        enum Tagged {
            A {
                details: Object<Required>,
                #[serde(default)]
                after: Count,
            },
        }
        for details in ["{}", r#"{"m": {"deep": [1]}}"#, r#"{"n": 1, "n": 2}"#] {
            let text = format!(r#"{{"type": "A", "details": {details}, "after": 4}}"#);
            let Tagged::A { details, after } = serde_json::from_str(&text).unwrap();
            assert!(details.0.is_none(), "{text}");
            assert_eq!(after.0, 4);
        }
    }
}
