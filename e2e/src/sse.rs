//! Server-sent-event framing, as each provider writes it.

use axum::body::Bytes;
use serde_json::Value;

/// `data: DATA\n\n` (OpenAI chat).
pub fn data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// `event: NAME\ndata: JSON\n\n` (Anthropic, OpenAI Responses).
pub fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data: JSON\r\n\r\n` (Gemini's `alt=sse`).
pub fn crlf_data(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}
