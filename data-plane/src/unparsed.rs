//! Answers to requests hyper could not parse.
//!
//! hyper answers a request line or headers it cannot parse itself, before
//! any service sees the request: `400`, `414` (URL too long) or `431`
//! (headers too large or too many), as a bare head with no body and no
//! request id. The gateway promises an `x-request-id` and an error body on
//! every answer, and hyper offers no hook for these, so the connection's
//! writer ([`crate::listener`]) recognises such a head as it is written and
//! writes a whole answer in its place: same status, an OpenAI-shaped error
//! body (the request's format is unknown; OpenAI's shape is what the
//! gateway answers on paths no SDK claims), the request id, and
//! `connection: close` (hyper closes the connection after it).

use crate::error::GatewayError;
use crate::translate::Format;

/// The statuses hyper writes for an unparsable request, with what the app
/// reads.
const ANSWERS: [(&[u8; 3], &str); 3] = [
    (
        b"400",
        "The request could not be parsed as HTTP: check its request line and headers.",
    ),
    (b"414", "The request URL is too long."),
    (
        b"431",
        "The request's headers are too large or too many: send fewer or shorter headers.",
    ),
];

/// hyper's own error heads are this short (status line, `content-length`,
/// `date`); anything longer is not one.
const MAX_HEAD: usize = 256;

/// Whether `buf` could be such a head (a cheap look, for every write).
pub fn might_be(buf: &[u8]) -> bool {
    buf.len() <= MAX_HEAD
        && buf.starts_with(b"HTTP/1.")
        && buf.ends_with(b"\r\n\r\n")
        && buf
            .get(9..12)
            .is_some_and(|s| ANSWERS.iter().any(|(a, _)| &a[..] == s))
}

/// If `buf` is a bare error head hyper wrote for an unparsable request, the
/// whole answer to write instead, with the request id `next_id` gives.
pub fn rewrite(buf: &[u8], next_id: impl FnOnce() -> String) -> Option<Vec<u8>> {
    if !might_be(buf) {
        return None;
    }
    let status = buf.get(9..12)?;
    let message = ANSWERS.iter().find(|(s, _)| &s[..] == status)?.1;
    let head = std::str::from_utf8(&buf[..buf.len() - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut kept = Vec::new();
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("x-request-id") {
            // An answer the service wrote: it is whole already.
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        kept.push(line);
    }
    // Only hyper's heads are bare of a body: anything with a content type
    // or a transfer coding came from the service.
    if kept.iter().any(|l| l.contains(':') && !is_date(l)) {
        return None;
    }
    let error = GatewayError::InvalidRequest {
        message: message.to_string(),
        param: None,
    };
    crate::telemetry::metrics::request_error(error.kind());
    let body = error.body(Format::OpenAiChat);
    let id = next_id();
    let mut out = Vec::with_capacity(MAX_HEAD + body.len());
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in kept {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(format!("x-request-id: {id}\r\n").as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

fn is_date(line: &str) -> bool {
    line.split(':')
        .next()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case("date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> String {
        "req_test".to_string()
    }

    #[test]
    fn hypers_bare_heads_become_whole_answers() {
        for (status, reason) in [
            ("431", "Request Header Fields Too Large"),
            ("414", "URI Too Long"),
            ("400", "Bad Request"),
        ] {
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 16:00:00 GMT\r\n\r\n"
            );
            let out = rewrite(head.as_bytes(), id).expect(status);
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} {reason}\r\n")));
            assert!(head.contains("\r\nx-request-id: req_test\r\n"), "{head}");
            assert!(head.contains("\r\ndate: Wed, 02 Dec 2026"), "{head}");
            assert!(head.contains("\r\nconnection: close"), "{head}");
            assert!(!head.contains("content-length: 0"), "{head}");
            assert!(head.contains(&format!("content-length: {}", body.len())));
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
            assert!(v["error"]["message"].as_str().unwrap().len() > 10);
        }
    }

    #[test]
    fn the_services_own_answers_are_left_alone() {
        let ours = [
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: req_1\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nx-request-id: req_1\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\nbody",
            "data: HTTP/1.1 431\r\n\r\n",
        ];
        for head in ours {
            assert!(rewrite(head.as_bytes(), id).is_none(), "{head}");
        }
    }
}
