//! Answers to requests hyper could not parse.
//!
//! hyper answers a request line or headers it cannot parse itself, before
//! any service sees the request: `400`, `414` (URL too long) or `431`
//! (headers too large or too many), as a bare head with no body and no
//! request id. The gateway promises an `x-request-id` and an error body on
//! every answer, and hyper offers no hook for these, so the connection's
//! writer ([`crate::listener`]) recognises such a head as it is written and
//! writes a whole answer in its place: same status, an error body in the
//! shape of the format the request's path claims (the reader notes it from
//! the request line as the bytes come, [`format_of`]: hyper parsed no
//! headers to read it from; OpenAI's shape where no SDK's path is), the
//! request id, and `connection: close` (hyper closes the connection after
//! it).

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

/// The format a read that starts a request claims by its path, if the read
/// starts with a request line: Anthropic's `/v1/messages`, Gemini's
/// `/v1beta/…` and `/v1/models/{model}:method` posts, OpenAI's Responses,
/// and OpenAI's chat shape for anything else. Only the line's first bytes
/// are looked at (a request line may be megabytes long).
pub fn format_of(read: &[u8]) -> Option<Format> {
    let head = &read[..read.len().min(512)];
    let sp = head.iter().take(8).position(|b| *b == b' ')?;
    let (method, path) = (&head[..sp], &head[sp + 1..]);
    if !matches!(
        method,
        b"GET" | b"POST" | b"PUT" | b"DELETE" | b"PATCH" | b"HEAD" | b"OPTIONS"
    ) || !path.starts_with(b"/")
    {
        return None;
    }
    let path = path
        .split(|b| matches!(b, b' ' | b'?'))
        .next()
        .unwrap_or(path);
    Some(if path.starts_with(b"/v1/messages") {
        Format::Anthropic
    } else if path.starts_with(b"/v1beta/")
        || (method == b"POST" && path.starts_with(b"/v1/models/") && path.contains(&b':'))
    {
        Format::Gemini
    } else if path.starts_with(b"/v1/responses") {
        Format::Responses
    } else {
        Format::OpenAiChat
    })
}

/// If `buf` is a bare error head hyper wrote for an unparsable request, the
/// whole answer to write instead, in `format`'s error shape, with the
/// request id `next_id` gives.
pub fn rewrite(buf: &[u8], format: Format, next_id: impl FnOnce() -> String) -> Option<Vec<u8>> {
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
    let body = error.body(format);
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
            let out = rewrite(head.as_bytes(), Format::OpenAiChat, id).expect(status);
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
            assert!(
                rewrite(head.as_bytes(), Format::OpenAiChat, id).is_none(),
                "{head}"
            );
        }
    }

    #[test]
    fn the_request_line_says_whose_error_shape_to_answer_in() {
        let f = |line: &str| format_of(line.as_bytes());
        assert_eq!(
            f("POST /v1/messages?beta=true HTTP/1.1\r\n"),
            Some(Format::Anthropic)
        );
        assert_eq!(
            f("POST /v1beta/models/gemini-2.5-pro:generateContent"),
            Some(Format::Gemini)
        );
        assert_eq!(
            f("POST /v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
            Some(Format::Gemini)
        );
        assert_eq!(f("POST /v1/responses HTTP/1.1"), Some(Format::Responses));
        assert_eq!(
            f("POST /v1/chat/completions HTTP/1.1"),
            Some(Format::OpenAiChat)
        );
        assert_eq!(
            f("GET /v1/models/ft:gpt-4o:org::id HTTP/1.1"),
            Some(Format::OpenAiChat)
        );
        // Not a request line: a body, or the middle of a long URL.
        assert_eq!(f("{\"model\":\"x\"}"), None);
        assert_eq!(f("aaaaaaaaaaaaaaaa"), None);
        assert_eq!(f("POST"), None);
        // A 414 to an Anthropic app is in Anthropic's shape.
        let head = "HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        let out =
            String::from_utf8(rewrite(head.as_bytes(), Format::Anthropic, id).unwrap()).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
}
