//! The fault queue: tests ask the mock to misbehave on the next requests.
//!
//! `POST /_mock/faults` appends a [`Fault`]; each provider request (chat,
//! Responses, embeddings, Anthropic messages and count_tokens, every Gemini
//! model action; not the model lists) takes the first queued fault that
//! matches it and decrements its `times`. Several faults can be queued; they
//! are used in order. Error bodies come in the wire format of the endpoint.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One way to misbehave. Fields combine: a delay, then an error status or a
/// stream cut after some chunks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Answer with this HTTP status and an error body in the wire format.
    #[serde(default)]
    pub status: Option<u16>,
    /// Seconds for the `Retry-After` header (with `status`, usually 429).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The error message (a default one per status otherwise).
    #[serde(default)]
    pub message: Option<String>,
    /// With `status`: this whole body instead of the wire format's error
    /// (an empty body, a proxy's HTML page in front of the provider, or a
    /// provider's exact error), sent as `text/html` when it starts with
    /// `<`, as JSON when it starts with `{`.
    #[serde(default)]
    pub error_body: Option<String>,
    /// Close the connection after this many body chunks (SSE frames when
    /// streaming), without the end of the stream.
    #[serde(default)]
    pub cut_after_chunks: Option<usize>,
    /// Streaming: after `cut_after_chunks` chunks (the first one if unset),
    /// one event that never ends: `data: ` and this many bytes, sent in
    /// 64 KiB pieces (a broken or hostile upstream).
    #[serde(default)]
    pub endless_event_bytes: Option<usize>,
    /// Streaming: send this as the whole body instead of the model's
    /// answer (a stream the mock's model would never produce).
    #[serde(default)]
    pub stream_body: Option<String>,
    /// Streaming: like `stream_body`, but these pieces, each its own body
    /// chunk (with `chunk_delay_ms` between them they reach the gateway in
    /// separate reads, cut wherever the test chose).
    #[serde(default)]
    pub stream_chunks: Option<Vec<String>>,
    /// Streaming: this `Content-Type` instead of the event stream's (a
    /// vendor that answers a stream request with one JSON body).
    #[serde(default)]
    pub stream_content_type: Option<String>,
    /// Leave the usage report out (the stream's usage frame, or the
    /// answer's `usage`/`usageMetadata`), as OpenAI-compatible vendors that
    /// ignore `stream_options` do, or an answer made in the background.
    #[serde(default)]
    pub omit_usage: bool,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Wait this long before each streamed chunk (a slow stream).
    #[serde(default)]
    pub chunk_delay_ms: Option<u64>,
    /// Only requests made with this upstream credential (the bearer token,
    /// `x-api-key` or Gemini's key).
    #[serde(default)]
    pub key: Option<String>,
    /// Only requests to this URL path (e.g. `/v1/messages`, or
    /// `/v1beta/models/gemini-2.0-flash:streamGenerateContent`).
    #[serde(default)]
    pub path: Option<String>,
    /// Only requests for this model.
    #[serde(default)]
    pub model: Option<String>,
    /// How many requests misbehave this way (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// No misbehaviour, once (as `{}` posted to `/_mock/faults` reads).
impl Default for Fault {
    fn default() -> Self {
        Self {
            status: None,
            retry_after: None,
            message: None,
            error_body: None,
            cut_after_chunks: None,
            endless_event_bytes: None,
            omit_usage: false,
            stream_body: None,
            stream_chunks: None,
            stream_content_type: None,
            delay_ms: None,
            chunk_delay_ms: None,
            key: None,
            path: None,
            model: None,
            times: one(),
        }
    }
}

impl Fault {
    fn matches(&self, key: &str, model: &str, path: &str) -> bool {
        self.key.as_deref().is_none_or(|k| k == key)
            && self.model.as_deref().is_none_or(|m| m == model)
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}

#[derive(Debug, Default)]
pub struct FaultQueue {
    queue: Mutex<Vec<Fault>>,
}

impl FaultQueue {
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().push(fault);
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn pending(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Takes one use of the first fault matching a request made with `key`
    /// for `model` at `path`.
    pub fn take(&self, key: &str, model: &str, path: &str) -> Option<Fault> {
        let mut queue = self.lock();
        let idx = queue.iter().position(|f| f.matches(key, model, path))?;
        let fault = &mut queue[idx];
        fault.times -= 1;
        let taken = fault.clone();
        if fault.times == 0 {
            queue.remove(idx);
        }
        Some(taken)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Fault {
        serde_json::from_str(json).expect("valid fault")
    }

    #[test]
    fn times_defaults_to_one() {
        let f = parse(r#"{"status":429,"retry_after":2}"#);
        assert_eq!(f.times, 1);
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after, Some(2));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Fault>(r#"{"stauts":500}"#).is_err());
    }

    #[test]
    fn faults_are_used_in_order_and_counted() {
        let q = FaultQueue::default();
        q.push(parse(r#"{"status":500,"times":2}"#));
        q.push(parse(r#"{"delay_ms":10}"#));
        assert_eq!(
            q.take("k", "m", "/v1/chat/completions")
                .and_then(|f| f.status),
            Some(500)
        );
        assert_eq!(
            q.take("k", "m", "/v1/chat/completions")
                .and_then(|f| f.status),
            Some(500)
        );
        assert_eq!(
            q.take("k", "m", "/v1/chat/completions")
                .and_then(|f| f.delay_ms),
            Some(10)
        );
        assert_eq!(q.take("k", "m", "/v1/chat/completions"), None);
    }

    #[test]
    fn filters_select_requests() {
        let q = FaultQueue::default();
        q.push(parse(r#"{"status":429,"key":"sk-a"}"#));
        q.push(parse(r#"{"status":503,"model":"m2"}"#));
        assert_eq!(q.take("sk-b", "m1", "/v1/chat/completions"), None);
        assert_eq!(
            q.take("sk-b", "m2", "/v1/chat/completions")
                .and_then(|f| f.status),
            Some(503)
        );
        assert_eq!(
            q.take("sk-a", "m1", "/v1/chat/completions")
                .and_then(|f| f.status),
            Some(429)
        );
        assert!(q.pending().is_empty());
    }

    #[test]
    fn path_filter() {
        let q = FaultQueue::default();
        q.push(parse(r#"{"status":500,"path":"/v1/messages"}"#));
        assert_eq!(q.take("k", "m", "/v1/chat/completions"), None);
        assert_eq!(
            q.take("k", "m", "/v1/messages").and_then(|f| f.status),
            Some(500)
        );
    }

    #[test]
    fn zero_times_queues_nothing_and_clear_empties() {
        let q = FaultQueue::default();
        q.push(parse(r#"{"status":500,"times":0}"#));
        assert!(q.pending().is_empty());
        q.push(parse(r#"{"status":500,"times":3}"#));
        q.clear();
        assert_eq!(q.take("k", "m", "/v1/chat/completions"), None);
    }
}
