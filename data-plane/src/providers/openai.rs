//! OpenAI's chat completions format, spoken by OpenAI and every
//! OpenAI-compatible vendor.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::error::GatewayError;
use crate::sse::Event;
use crate::usage::Usage;

/// What the gateway needs from a chat request before forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The app asked for `stream_options.include_usage`.
    pub include_usage: bool,
}

#[derive(Deserialize)]
struct Probe {
    model: Option<Value>,
    stream: Option<Value>,
    stream_options: Option<Value>,
}

impl ChatRequest {
    /// Validates the body as JSON (all of it) and reads the routing fields.
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(if first.is_none() {
                GatewayError::invalid("The request body is empty; send a JSON object.", None)
            } else {
                GatewayError::BadJson("the body must be a JSON object".into())
            });
        }
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
        })
    }

    /// The body to send upstream. A stream the app did not ask usage for is
    /// asked for it anyway (the trace needs the counts); the returned flag
    /// says the extra usage chunk must be taken out again.
    pub fn upstream_body(&self, body: Bytes) -> Result<(Bytes, bool), GatewayError> {
        if !self.stream || self.include_usage {
            return Ok((body, false));
        }
        let mut v: serde_json::Map<String, Value> =
            serde_json::from_slice(&body).map_err(|e| GatewayError::BadJson(e.to_string()))?;
        let opts = v
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Default::default()));
        if !opts.is_object() {
            *opts = Value::Object(Default::default());
        }
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        let out = serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))?;
        Ok((Bytes::from(out), true))
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input: u.prompt_tokens,
            output: u.completion_tokens,
            cached: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// Usage of a non-streaming response body.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
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
    let Ok(chunk) = serde_json::from_str::<WithUsage>(&ev.data) else {
        return ChunkAction::Forward;
    };
    let Some(u) = chunk.usage else {
        return ChunkAction::Forward;
    };
    *usage = u.into();
    if strip_usage_chunk && chunk.choices.is_none_or(|c| c.is_empty()) {
        ChunkAction::Drop
    } else {
        ChunkAction::Forward
    }
}

/// True when a `"usage"` key is followed by an object, without parsing.
fn has_usage_object(data: &str) -> bool {
    let mut rest = data;
    while let Some(i) = rest.find("\"usage\"") {
        rest = &rest[i + 7..];
        let after = rest.trim_start();
        if let Some(v) = after.strip_prefix(':')
            && v.trim_start().starts_with('{')
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
    }

    #[test]
    fn parse_request() {
        let r = ChatRequest::parse(br#"{"model":"gpt-4o","messages":[],"stream":true}"#).unwrap();
        assert_eq!(
            r,
            ChatRequest {
                model: "gpt-4o".into(),
                stream: true,
                include_usage: false
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
    fn injects_include_usage_only_when_missing() {
        let body = Bytes::from_static(br#"{"model":"m","stream":true,"stream_options":{"x":1}}"#);
        let r = ChatRequest::parse(&body).unwrap();
        let (out, strip) = r.upstream_body(body).unwrap();
        assert!(strip);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);

        let body = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let r = ChatRequest::parse(&body).unwrap();
        let (out, strip) = r.upstream_body(body.clone()).unwrap();
        assert!(!strip);
        assert_eq!(out, body);
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
                reasoning: 0
            }
        );
        assert_eq!(scan_chunk(&second, &mut usage, false), ChunkAction::Forward);
    }

    #[test]
    fn body_usage() {
        let u = usage_from_body(br#"{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":7,"completion_tokens_details":{"reasoning_tokens":3}}}"#).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 5,
                output: 7,
                cached: 0,
                reasoning: 3
            }
        );
        assert!(usage_from_body(b"{}").is_none());
    }
}
