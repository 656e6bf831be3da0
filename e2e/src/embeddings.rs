//! OpenAI's embeddings (`POST /v1/embeddings`) and the deterministic vectors
//! every format's embeddings use.
//!
//! `input` is a string, an array of strings, an array of token ids or an
//! array of such arrays; each string's tokens are its words, each token
//! array's its length. `usage` is `{prompt_tokens, total_tokens}` (equal).
//! Vectors have `dimensions` (default 8) components of unit length, derived
//! from the text alone; `encoding_format: "base64"` (which the `openai` SDK
//! asks for by default) sends them as little-endian f32 bytes in base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::app::{Answer, Ready};
use crate::error::MockError;
use crate::tokens::word_count;

/// Default vector size.
pub const DEFAULT_DIMS: usize = 8;

/// A unit vector of `dims` components derived from `text` alone.
pub fn vector(text: &str, dims: usize) -> Vec<f32> {
    // FNV-1a of the text seeds a SplitMix64 stream.
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let raw: Vec<f64> = (0..dims)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // In [-1, 1).
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

/// `vector` as base64 of little-endian f32s.
pub fn to_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// One input to embed: its text (token ids are rendered as a string) and
/// its token count.
fn inputs(input: &Value) -> Result<Vec<(String, u64)>, MockError> {
    let invalid = || MockError::InvalidType {
        param: "input",
        expected: "a string, an array of strings or an array of token arrays",
    };
    let tokens = |ids: &[Value]| -> Result<(String, u64), MockError> {
        if ids.iter().all(Value::is_u64) {
            Ok((Value::Array(ids.to_vec()).to_string(), ids.len() as u64))
        } else {
            Err(invalid())
        }
    };
    match input {
        Value::String(s) => Ok(vec![(s.clone(), word_count(s))]),
        Value::Array(items) if items.is_empty() => Err(invalid()),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| (s.to_owned(), word_count(s)))
            .collect()),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(vec![tokens(items)?]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_array().ok_or_else(invalid).and_then(|a| tokens(a)))
            .collect(),
        _ => Err(invalid()),
    }
}

/// The answer to `POST /v1/embeddings`.
pub fn answer(body: &[u8]) -> Result<Ready, MockError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| MockError::BadJson(e.to_string()))?;
    let model = match v.get("model") {
        None | Some(Value::Null) => return Err(MockError::MissingParam("model")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(MockError::InvalidType {
                param: "model",
                expected: "a non-empty string",
            });
        }
    };
    let input = match v.get("input") {
        None | Some(Value::Null) => return Err(MockError::MissingParam("input")),
        Some(i) => inputs(i)?,
    };
    let dims = v
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| (1..=4096).contains(d))
        .unwrap_or(DEFAULT_DIMS);
    let base64 = match v.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(MockError::InvalidType {
                param: "encoding_format",
                expected: "'float' or 'base64'",
            });
        }
    };
    let tokens: u64 = input.iter().map(|(_, n)| n).sum();
    let data: Vec<Value> = input
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            let vec = vector(text, dims);
            let embedding = if base64 {
                json!(to_base64(&vec))
            } else {
                json!(vec)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    Ok(Ready {
        answer: Answer::Json {
            body: json!({"object": "list", "data": data, "model": model, "usage": usage}),
            usage: Some(usage),
        },
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(v: Value) -> Result<(Value, Value), MockError> {
        let ready = answer(v.to_string().as_bytes())?;
        match ready.answer {
            Answer::Json { body, usage } => Ok((body, usage.unwrap_or(Value::Null))),
            Answer::Sse { .. } => panic!("json expected"),
        }
    }

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = vector("hello world", 8);
        assert_eq!(a.len(), 8);
        assert_eq!(a, vector("hello world", 8));
        assert_ne!(a, vector("hello there", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(vector("", 3).len(), 3);
    }

    #[test]
    fn float_and_base64() {
        let (b, usage) = body_of(
            json!({"model": "e", "input": ["one two", "three"], "encoding_format": "float"}),
        )
        .expect("valid");
        assert_eq!(b["object"], "list");
        assert_eq!(b["data"][1]["index"], 1);
        assert_eq!(
            b["data"][0]["embedding"].as_array().map(Vec::len),
            Some(DEFAULT_DIMS)
        );
        assert_eq!(usage, json!({"prompt_tokens": 3, "total_tokens": 3}));
        assert_eq!(b["usage"], usage);

        let (b, _) = body_of(
            json!({"model": "e", "input": "one two", "encoding_format": "base64", "dimensions": 4}),
        )
        .expect("valid");
        let bytes = STANDARD
            .decode(b["data"][0]["embedding"].as_str().expect("a string"))
            .expect("base64");
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(floats, vector("one two", 4));
    }

    #[test]
    fn token_arrays_count_their_length() {
        let (_, usage) = body_of(json!({"model": "e", "input": [1, 2, 3]})).expect("valid");
        assert_eq!(usage["prompt_tokens"], 3);
        let (b, usage) = body_of(json!({"model": "e", "input": [[1, 2], [3]]})).expect("valid");
        assert_eq!(usage["prompt_tokens"], 3);
        assert_eq!(b["data"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(matches!(
            body_of(json!({"input": "x"})),
            Err(MockError::MissingParam("model"))
        ));
        assert!(matches!(
            body_of(json!({"model": "e"})),
            Err(MockError::MissingParam("input"))
        ));
        assert!(matches!(
            body_of(json!({"model": "e", "input": [{"x": 1}]})),
            Err(MockError::InvalidType { param: "input", .. })
        ));
        assert!(matches!(
            body_of(json!({"model": "e", "input": "x", "encoding_format": "hex"})),
            Err(MockError::InvalidType {
                param: "encoding_format",
                ..
            })
        ));
    }
}
