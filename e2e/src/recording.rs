//! What the mock received, for the tests to inspect (`GET /_mock/requests`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, Method, Uri};
use serde::Serialize;
use serde_json::Value;

/// One request as received, and what the mock answered.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    #[serde(skip)]
    seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lowercased names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The body as JSON when it parses, else as (lossy UTF-8) text.
    pub body: Value,
    /// Null until the mock has decided its answer.
    pub response_status: Option<u16>,
    /// The usage object the mock actually sent (null when it sent none,
    /// e.g. a stream without `include_usage`, or cut before the usage).
    pub response_usage: Option<Value>,
}

/// A handle on a recorded entry, to fill in the answer later.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

/// Keeps every request when enabled; does nothing in `--fast` mode.
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    next_seq: AtomicU64,
    entries: Mutex<Vec<Recorded>>,
}

impl Recorder {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            next_seq: AtomicU64::new(0),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Records a request as it arrives (before any delay, so a request whose
    /// caller gave up is still seen).
    pub fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Ticket {
        if !self.enabled {
            return Ticket(None);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let entry = Recorded {
            seq,
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            headers: header_map(headers),
            body: body_value(body),
            response_status: None,
            response_usage: None,
        };
        self.lock().push(entry);
        Ticket(Some(seq))
    }

    /// Notes the answer given to a recorded request.
    pub fn answer(&self, ticket: Ticket, status: u16, usage: Option<Value>) {
        let Ticket(Some(seq)) = ticket else { return };
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().rev().find(|e| e.seq == seq) {
            e.response_status = Some(status);
            e.response_usage = usage;
        }
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        // Entries are plain data: a poisoned lock leaves them usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn uri(s: &str) -> Uri {
        s.parse().expect("valid uri")
    }

    #[test]
    fn records_headers_lowercased_and_joined() {
        let rec = Recorder::new(true);
        let mut h = HeaderMap::new();
        h.append("X-Thing", HeaderValue::from_static("a"));
        h.append("x-thing", HeaderValue::from_static("b"));
        h.append("Authorization", HeaderValue::from_static("Bearer k"));
        let t = rec.record(&Method::POST, &uri("/v1/x?a=1"), &h, br#"{"model":"m"}"#);
        rec.answer(t, 200, Some(serde_json::json!({"total_tokens": 3})));
        let all = rec.all();
        assert_eq!(all.len(), 1);
        let e = &all[0];
        assert_eq!(e.path, "/v1/x");
        assert_eq!(e.query, "a=1");
        assert_eq!(e.headers["x-thing"], "a, b");
        assert_eq!(e.headers["authorization"], "Bearer k");
        assert_eq!(e.body["model"], "m");
        assert_eq!(e.response_status, Some(200));
        assert_eq!(
            e.response_usage,
            Some(serde_json::json!({"total_tokens": 3}))
        );
    }

    #[test]
    fn non_json_body_is_kept_as_text() {
        let rec = Recorder::new(true);
        rec.record(&Method::POST, &uri("/"), &HeaderMap::new(), b"{not json");
        assert_eq!(rec.all()[0].body, Value::String("{not json".into()));
    }

    #[test]
    fn answer_after_clear_is_ignored() {
        let rec = Recorder::new(true);
        let t = rec.record(&Method::GET, &uri("/"), &HeaderMap::new(), b"");
        rec.clear();
        rec.answer(t, 200, None);
        assert!(rec.all().is_empty());
    }

    #[test]
    fn disabled_recorder_keeps_nothing() {
        let rec = Recorder::new(false);
        let t = rec.record(&Method::GET, &uri("/"), &HeaderMap::new(), b"");
        rec.answer(t, 200, None);
        assert!(rec.all().is_empty());
    }
}
