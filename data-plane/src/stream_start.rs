//! A stream that fails before its first word. Providers answer `200` and
//! then send an error as the stream's first event when they are overloaded
//! (Anthropic's `overloaded_error`, common at busy hours), out of capacity
//! or rate limited. Passed on, the app's SDK sees a stream that broke,
//! which it does not retry. Seen before the answer's head leaves, it is the
//! same failure as a `529`, `500` or `429` status: the credential cools
//! down, the next one is tried, and if none serves, the app gets that
//! status in its own format, which its SDK retries.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::sse::SseParser;

/// How long the head waits for a stream's first chunk. Such errors come at
/// once; a stream whose first event takes longer (a model thinking) goes
/// on to the app as before, and the app waits for that event either way.
pub const WAIT: Duration = Duration::from_secs(1);

/// Anthropic's `{"type":"error","error":{"type":…}}`, OpenAI's
/// `{"error":{"type"|"code":…}}`, Gemini's `{"error":{"code":503,
/// "status":"UNAVAILABLE"}}` and the Responses API's `{"type":"error",
/// "code":…}`.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    error: Option<Detail>,
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<serde_json::Value>,
    status: Option<String>,
}

/// The status a stream that opens with `chunk` failed with, and the error
/// body for the app: only for failures another credential or a retry may
/// cure (an error about the request itself goes on to the app as it came).
pub fn failure(chunk: &[u8]) -> Option<(StatusCode, Bytes)> {
    let mut parser = SseParser::new();
    parser.push(chunk);
    let event = parser.next_event()?;
    let data = event.data.trim();
    // Every streamed answer passes here: an ordinary first event (no
    // `"error"` in it) is not parsed at all.
    if !data.starts_with('{') || memchr::memmem::find(data.as_bytes(), b"\"error\"").is_none() {
        return None;
    }
    let ev: Event = serde_json::from_str(data).ok()?;
    if ev.kind.as_deref().is_some_and(|k| k != "error") {
        return None;
    }
    let status = match &ev.error {
        Some(d) => [d.kind.as_deref(), code_str(&d.code), d.status.as_deref()]
            .into_iter()
            .flatten()
            .find_map(status_of)
            .or_else(|| code_num(&d.code)),
        None if ev.kind.is_some() => code_str(&ev.code).and_then(status_of),
        None => None,
    }?;
    Some((status, Bytes::copy_from_slice(data.as_bytes())))
}

fn code_str(code: &Option<serde_json::Value>) -> Option<&str> {
    code.as_ref().and_then(|c| c.as_str())
}

/// Gemini's numeric code, for the statuses that may pass.
fn code_num(code: &Option<serde_json::Value>) -> Option<StatusCode> {
    let n = code.as_ref()?.as_u64()?;
    matches!(n, 429 | 500 | 502 | 503 | 504)
        .then(|| StatusCode::from_u16(n as u16).ok())
        .flatten()
}

fn status_of(kind: &str) -> Option<StatusCode> {
    match kind {
        "overloaded_error" => StatusCode::from_u16(529).ok(),
        "rate_limit_error" | "rate_limit_exceeded" | "RESOURCE_EXHAUSTED" => {
            Some(StatusCode::TOO_MANY_REQUESTS)
        }
        "api_error" | "server_error" | "INTERNAL" => Some(StatusCode::INTERNAL_SERVER_ERROR),
        "UNAVAILABLE" | "service_unavailable" => Some(StatusCode::SERVICE_UNAVAILABLE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(chunk: &str) -> Option<u16> {
        failure(chunk.as_bytes()).map(|(s, _)| s.as_u16())
    }

    #[test]
    fn transient_errors_that_open_a_stream_are_failures() {
        let anthropic = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(status(anthropic), Some(529));
        let (_, body) = failure(anthropic.as_bytes()).unwrap();
        assert!(body.starts_with(b"{\"type\":\"error\""));
        assert_eq!(
            status("data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n"),
            Some(500)
        );
        assert_eq!(
            status(
                "data: {\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n"
            ),
            Some(429)
        );
        assert_eq!(
            status(
                "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n"
            ),
            Some(503)
        );
        assert_eq!(
            status(
                "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"x\",\"sequence_number\":0}\n\n"
            ),
            Some(500)
        );
    }

    #[test]
    fn anything_else_goes_on_to_the_app() {
        for chunk in [
            // The request's own fault: another credential would not help.
            "data: {\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\"}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\"}}\n\n",
            // Ordinary first events.
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            // An event not yet whole, and bytes that are not events.
            "data: {\"error\":{\"type\":\"server_error\"",
            "[{\"candidates\": []}",
            "",
        ] {
            assert_eq!(status(chunk), None, "{chunk}");
        }
    }
}
