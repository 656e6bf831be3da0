//! Which requests share a provider's prompt cache, for pools with
//! prompt-cache affinity: such requests go to the same credential, so the
//! provider's cache (kept per account or organisation) stays warm across a
//! pool. In order of what the app says explicitly:
//!
//! 1. a session header coding CLIs and SDKs send (`session_id`,
//!    `x-session-id`, `x-claude-code-session-id`, `conversation_id`);
//! 2. OpenAI's `prompt_cache_key`, Anthropic's `metadata.user_id` (Claude
//!    Code puts its session there), Gemini's `cachedContent`;
//! 3. otherwise the prompt's prefix, which is what providers cache: the
//!    system prompt, the tools and the first message (each at most 16 KiB).

use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::schedule::stable_hash;

const SESSION_HEADERS: &[&str] = &[
    "session_id",
    "x-session-id",
    "x-claude-code-session-id",
    "conversation_id",
];

/// Most bytes of each prefix part hashed.
const MAX_PART: usize = 16 * 1024;

#[derive(Deserialize)]
struct Hints<'a> {
    #[serde(borrow, default)]
    prompt_cache_key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow, default, rename = "cachedContent", alias = "cached_content")]
    cached_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    instructions: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "systemInstruction",
        alias = "system_instruction"
    )]
    system_instruction: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    contents: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Option<&'a RawValue>,
}

fn part(raw: Option<&RawValue>) -> &[u8] {
    let b = raw.map_or(&b""[..], |r| r.get().as_bytes());
    &b[..b.len().min(MAX_PART)]
}

/// The affinity hash of a request (None: the body could not be read, which
/// the pipeline has refused before this runs anyway).
pub fn key(body: &[u8], headers: &HeaderMap) -> Option<u64> {
    for h in SESSION_HEADERS {
        if let Some(v) = headers.get(*h).filter(|v| !v.is_empty()) {
            return Some(stable_hash(&[b"session", v.as_bytes()]));
        }
    }
    let hints: Hints<'_> = serde_json::from_slice(body).ok()?;
    let explicit = hints
        .prompt_cache_key
        .or(hints.metadata.and_then(|m| m.user_id))
        .or(hints.cached_content)
        .filter(|v| v.get() != "null");
    if let Some(v) = explicit {
        return Some(stable_hash(&[b"explicit", part(Some(v))]));
    }
    let first = hints
        .messages
        .as_deref()
        .or(hints.contents.as_deref())
        .and_then(|m| m.first().copied())
        .or(hints.input);
    Some(stable_hash(&[
        b"prefix",
        part(
            hints
                .system
                .or(hints.instructions)
                .or(hints.system_instruction),
        ),
        part(hints.tools),
        part(first),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn k(body: &str) -> u64 {
        key(body.as_bytes(), &HeaderMap::new()).unwrap()
    }

    #[test]
    fn explicit_keys_win_and_agree_across_bodies() {
        let a = k(
            r#"{"model":"m","prompt_cache_key":"tenant-7","messages":[{"role":"user","content":"a"}]}"#,
        );
        let b = k(
            r#"{"model":"m","prompt_cache_key":"tenant-7","messages":[{"role":"user","content":"b"}]}"#,
        );
        assert_eq!(a, b);
        let c = k(r#"{"model":"m","metadata":{"user_id":"user_x_session_1"},"messages":[]}"#);
        assert_ne!(a, c);
        let mut h = HeaderMap::new();
        h.insert("session_id", HeaderValue::from_static("s-1"));
        let s1 = key(br#"{"prompt_cache_key":"x"}"#, &h).unwrap();
        let s2 = key(br#"{"prompt_cache_key":"y"}"#, &h).unwrap();
        assert_eq!(s1, s2, "the session header comes first");
    }

    #[test]
    fn without_a_key_the_prompt_prefix_decides() {
        let sys = r#""system":"You are terse.","messages":[{"role":"user","content":"hi"}"#;
        let a = k(&format!(
            r#"{{"model":"m",{sys},{{"role":"assistant","content":"1"}}]}}"#
        ));
        let b = k(&format!(
            r#"{{"model":"m",{sys},{{"role":"assistant","content":"2"}}]}}"#
        ));
        assert_eq!(a, b, "later turns do not move the key");
        let c = k(
            r#"{"model":"m","system":"You are verbose.","messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_ne!(a, c);
    }
}
