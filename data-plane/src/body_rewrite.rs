//! The app's body passed through with its top-level `model` renamed (a
//! provider's name for the model) and/or `stream_options.include_usage`
//! set (the trace needs a stream's counts), everything else as it came.
//!
//! Only the top level is read: every other value is copied as its text
//! (`RawValue`), so a 100 KB conversation costs one scan and one copy
//! rather than a tree of `Value`s built and written out again, and its
//! bytes (numbers, escapes, spacing inside values) reach the provider as
//! the app wrote them. A key that repeats keeps its first place and its
//! last value, as the `Map` this replaced did.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// `body` (a JSON object) with `model` set to `model` and, when asked,
/// `stream_options.include_usage` set to `true`; keys the body lacks are
/// added at its end. `stream_options` is written out whole again either
/// way, each of its keys once (the value the gateway read), so a provider
/// that takes a repeated key's first value cannot read another.
///
/// Checks only the top level: the body must have passed
/// `validate::json_body` (UTF-8, nesting depth) first, as every request's
/// does in `plan::Probe::parse`.
pub fn rewrite(
    body: &[u8],
    model: Option<&str>,
    include_usage: bool,
) -> Result<Bytes, GatewayError> {
    let Top(entries) =
        serde_json::from_slice(body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 64);
    out.push(b'{');
    let (mut has_model, mut has_options) = (false, false);
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, key)?;
        out.push(b':');
        match (key.as_ref(), model) {
            ("model", Some(m)) => {
                has_model = true;
                write_json(&mut out, m)?;
            }
            ("stream_options", _) => {
                has_options = true;
                write_options(&mut out, value, include_usage)?;
            }
            _ => out.extend_from_slice(value.get().as_bytes()),
        }
    }
    if let Some(m) = model.filter(|_| !has_model) {
        append(&mut out, "model", m)?;
    }
    if include_usage && !has_options {
        append(&mut out, "stream_options", &options_with_usage(Map::new()))?;
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The app's `stream_options` as the gateway read it (each key once), with
/// `include_usage: true` when asked (then anything but an object becomes
/// one). Options that do not parse (a number out of range) are refused
/// when they must be changed, passed on as they came otherwise.
fn write_options(
    out: &mut Vec<u8>,
    value: &RawValue,
    include_usage: bool,
) -> Result<(), GatewayError> {
    match serde_json::from_str::<Value>(value.get()) {
        Ok(Value::Object(o)) if include_usage => write_json(out, &options_with_usage(o)),
        Ok(_) if include_usage => write_json(out, &options_with_usage(Map::new())),
        Ok(v) => write_json(out, &v),
        Err(e) if include_usage => Err(GatewayError::BadJson(e.to_string())),
        Err(_) => {
            out.extend_from_slice(value.get().as_bytes());
            Ok(())
        }
    }
}

fn options_with_usage(mut o: Map<String, Value>) -> Map<String, Value> {
    o.insert("include_usage".into(), Value::Bool(true));
    o
}

/// One more `"key":value` after what `out` holds (`{` and entries).
fn append<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    key: &str,
    value: &T,
) -> Result<(), GatewayError> {
    if out.len() > 1 {
        out.push(b',');
    }
    write_json(out, key)?;
    out.push(b':');
    write_json(out, value)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), GatewayError> {
    serde_json::to_writer(out, v).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The top level's entries in order, each key once (first place, last
/// value), values as their text.
struct Top<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                let mut at: HashMap<Cow<'de, str>, usize> = HashMap::new();
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match at.get(&key) {
                        Some(&i) => entries[i].1 = value,
                        None => {
                            at.insert(key.clone(), entries.len());
                            entries.push((key, value));
                        }
                    }
                }
                Ok(Top(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// A key, borrowed from the body unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `Map` rewrite this replaced gave, for comparison.
    fn by_map(body: &[u8], model: Option<&str>, include_usage: bool) -> Value {
        let mut v: Map<String, Value> = serde_json::from_slice(body).unwrap();
        if let Some(m) = model {
            v.insert("model".into(), Value::String(m.to_string()));
        }
        if include_usage {
            let opts = v
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if !opts.is_object() {
                *opts = Value::Object(Map::new());
            }
            if let Value::Object(o) = opts {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        Value::Object(v)
    }

    /// Same keys, order and values as the `Map` rewrite, in every case of
    /// renaming and asking for usage (the top level's order compared too).
    #[test]
    fn agrees_with_the_map_rewrite() {
        let bodies = [
            r#"{"model":"a","messages":[{"role":"user","content":"hi \"there\" \u00e9"}],"stream":true}"#,
            r#"{"messages":[],"stream_options":{"include_usage":false,"x":1},"model":"a"}"#,
            r#"{"stream_options":null,"messages":[]}"#,
            r#"{"stream_options":[1],"model":"a","model":"b"}"#,
            r#"{"model":"a","stream_options":{"include_usage":false,"include_usage":true}}"#,
            r#"{"m\u006fdel":"a","temperature":0.5}"#,
            r#"{}"#,
            r#" { "model" : "a" , "n" : 1 } "#,
        ];
        for body in bodies {
            for (model, usage) in [(Some("x/y"), false), (None, true), (Some("z"), true)] {
                let got = rewrite(body.as_bytes(), model, usage).unwrap();
                let got: Value = serde_json::from_slice(&got).unwrap();
                let want = by_map(body.as_bytes(), model, usage);
                let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
                assert_eq!(got, want, "{body} {model:?} {usage}");
                assert_eq!(keys(&got), keys(&want), "{body} {model:?} {usage}");
            }
        }
    }

    /// Values the rewrite does not touch reach the provider byte for byte.
    #[test]
    fn other_values_keep_their_text() {
        let body = br#"{"model":"a","temperature":1.0e0,"messages":[ {"content":"\u00e9\/"} ]}"#;
        let got = rewrite(body, Some("b"), false).unwrap();
        assert_eq!(
            &got[..],
            br#"{"model":"b","temperature":1.0e0,"messages":[ {"content":"\u00e9\/"} ]}"#
        );
    }

    #[test]
    fn not_an_object_is_bad_json() {
        for body in [&b"[1]"[..], b"{\"a\":", b"{} x", b"{\"a\":1,}"] {
            let e = rewrite(body, Some("m"), true).unwrap_err();
            assert!(matches!(e, GatewayError::BadJson(_)), "{e}");
        }
    }
}
