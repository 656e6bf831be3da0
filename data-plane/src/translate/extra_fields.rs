//! Wire structs that keep the fields they do not model, read in one pass.
//!
//! Every request codec keeps a wire object's unknown fields (`extra`), so the
//! dropped-field policy can drop, name or refuse each one. serde's
//! `#[serde(flatten)]` does that by first buffering the whole object, with
//! every nested value, into serde's private `Content` tree and then reading
//! the struct out of that copy: a second walk and an allocation per node,
//! paid by every request on every nesting level that has an `extra` (and a
//! value buffered so cannot be read as a `RawValue`).
//!
//! Here the derived visitor reads the deserializer's own map instead, through
//! a filter that knows the struct's field names (serde passes them to
//! `deserialize_struct`, aliases included) and takes every other key, with
//! its value, into `extra`. A struct opts in with
//! `#[serde(remote = "Self")]` (the derive then writes an inherent
//! `deserialize`), a `#[serde(skip)] extra: Extra` field, and
//! [`keeps_extra_fields!`], which writes the `Deserialize` impl.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::wire::Extra;

/// `Deserialize` for wire structs declared with `#[serde(remote = "Self")]`
/// and a `#[serde(skip)] extra: Extra` field: the derived reading, with the
/// keys it does not name collected into `extra` in the same pass.
macro_rules! keeps_extra_fields {
    ($($ty:ident),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let mut extra = $crate::translate::wire::Extra::new();
                let mut v = $ty::deserialize($crate::translate::extra_fields::Collect::new(d, &mut extra))?;
                v.extra = extra;
                Ok(v)
            }
        }
    )+};
}
pub(crate) use keeps_extra_fields;

/// A deserializer that hands a struct's visitor only the keys the struct
/// names; the rest go to `extra`.
pub struct Collect<'a, D> {
    inner: D,
    extra: &'a mut Extra,
}

impl<'a, D> Collect<'a, D> {
    pub fn new(inner: D, extra: &'a mut Extra) -> Self {
        Self { inner, extra }
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Collect<'_, D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let filter = Filtered {
            visitor,
            fields,
            extra: self.extra,
        };
        self.inner.deserialize_struct(name, fields, filter)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(visitor)
    }

    // A derived struct asks for a struct; anything else is read as it is.
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The struct's visitor, given a map that skips (and keeps) unknown keys.
struct Filtered<'a, V> {
    visitor: V,
    fields: &'static [&'static str],
    extra: &'a mut Extra,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Filtered<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(FilteredMap {
            map,
            fields: self.fields,
            extra: self.extra,
        })
    }

    /// A wire object is an object: the derived visitor would also read an
    /// array field by field in declaration order, which `flatten` refused.
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

struct FilteredMap<'a, A> {
    map: A,
    fields: &'static [&'static str],
    extra: &'a mut Extra,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilteredMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key_seed(KeySeed)? {
            if self.fields.contains(&key.as_str()) {
                let key = de::value::StrDeserializer::<A::Error>::new(key.as_str());
                return seed.deserialize(key).map(Some);
            }
            let value: Value = self.map.next_value()?;
            self.extra.insert(key.into_string(), value);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A key as the body holds it: borrowed when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_string(),
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(remote = "Self")]
    struct Outer {
        model: Option<String>,
        #[serde(rename = "type", alias = "kind")]
        ty: Option<String>,
        inner: Option<Vec<Inner>>,
        #[serde(skip)]
        extra: Extra,
    }

    #[derive(Deserialize, Debug)]
    #[serde(remote = "Self")]
    struct Inner {
        name: Option<String>,
        #[serde(skip)]
        extra: Extra,
    }

    keeps_extra_fields!(Outer, Inner);

    #[test]
    fn unknown_keys_at_every_level_are_kept_with_their_values() {
        let o: Outer = serde_json::from_str(
            r#"{"model":"m","odd\u0020key":[1,{"a":2}],"kind":"k",
                "inner":[{"name":"n","cache_control":{"type":"ephemeral"}},{}],"z":null}"#,
        )
        .unwrap();
        assert_eq!(o.model.as_deref(), Some("m"));
        assert_eq!(o.ty.as_deref(), Some("k"), "an alias is a known field");
        assert_eq!(
            serde_json::to_value(&o.extra).unwrap(),
            serde_json::json!({"odd key": [1, {"a": 2}], "z": null})
        );
        let inner = o.inner.unwrap();
        assert_eq!(inner[0].name.as_deref(), Some("n"));
        assert_eq!(
            serde_json::to_value(&inner[0].extra).unwrap(),
            serde_json::json!({"cache_control": {"type": "ephemeral"}})
        );
        assert!(inner[1].extra.is_empty());
    }

    #[test]
    fn errors_still_name_the_struct_and_known_fields_still_type_check() {
        let e = serde_json::from_str::<Outer>(r#"{"model":3}"#).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        let e = serde_json::from_str::<Outer>(r#""text""#).unwrap_err();
        assert!(e.to_string().contains("struct Outer"), "{e}");
        let e = serde_json::from_str::<Outer>(r#"{"model":"a","model":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
        let e = serde_json::from_str::<Outer>(r#"["m", "t", null]"#).unwrap_err();
        assert!(e.to_string().contains("invalid type: sequence"), "{e}");
    }
}
