//! A prompt too long for the model's context window, told in the words each
//! format's clients act on. Coding CLIs compact their conversation when the
//! provider says it overflowed, and each looks for its own provider's
//! signal: Codex for OpenAI's `code: "context_length_exceeded"`, Claude
//! Code for Anthropic's "prompt is too long", Gemini CLI for Google's
//! "exceeds the maximum number of tokens". Translated, the upstream's
//! signal would reach them in another provider's words and no compaction
//! would start: the session would stay stuck on the same error.

use crate::error::UpstreamError;
use crate::translate::Format;

/// An upstream's context-window refusal: the prompt's tokens and the
/// window, when its message says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    pub tokens: Option<u64>,
    pub limit: Option<u64>,
}

/// The overflow an upstream error reports, in any provider's words.
pub fn detect(e: &UpstreamError) -> Option<Overflow> {
    let m = e.message.as_str();
    let openai_code = e.code.as_deref() == Some("context_length_exceeded");
    if openai_code || m.contains("maximum context length") {
        // "This model's maximum context length is 128000 tokens. However,
        // your messages resulted in 130000 tokens…", or, when the cap
        // counted too (OpenAI, vLLM), "However, you requested 130000 tokens
        // (114000 in the messages, 16000 in the completion)": the request's
        // total, which shortening the conversation brings under.
        return Some(Overflow {
            limit: number_after(m, "maximum context length is "),
            tokens: number_after(m, "resulted in ").or_else(|| number_after(m, "requested ")),
        });
    }
    if let Some(rest) = m.strip_prefix("prompt is too long: ") {
        // "prompt is too long: 210000 tokens > 200000 maximum"
        return Some(Overflow {
            tokens: number_after(rest, ""),
            limit: number_after(rest, "> "),
        });
    }
    if m.contains("exceeds the maximum number of tokens allowed") {
        // "The input token count (1200000) exceeds the maximum number of
        // tokens allowed (1048576)."
        return Some(Overflow {
            tokens: number_after(m, "input token count ("),
            limit: number_after(m, "tokens allowed ("),
        });
    }
    None
}

/// The message `app`'s clients recognise for `o` (without counts when the
/// upstream gave none: clients read the numbers when present).
pub fn message(app: Format, o: Overflow) -> String {
    let (Some(tokens), Some(limit)) = (o.tokens, o.limit) else {
        return match app {
            Format::OpenAiChat | Format::Responses => {
                "This model's maximum context length was exceeded. Please reduce the length \
                 of the messages."
            }
            Format::Anthropic => "prompt is too long",
            Format::Gemini => "The input token count exceeds the maximum number of tokens allowed.",
        }
        .to_string();
    };
    match app {
        Format::OpenAiChat | Format::Responses => format!(
            "This model's maximum context length is {limit} tokens. However, your messages \
             resulted in {tokens} tokens. Please reduce the length of the messages."
        ),
        Format::Anthropic => format!("prompt is too long: {tokens} tokens > {limit} maximum"),
        Format::Gemini => format!(
            "The input token count ({tokens}) exceeds the maximum number of tokens allowed \
             ({limit})."
        ),
    }
}

/// The first whole number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the pipeline does with a body: read once, then looked at.
    fn detect(body: &[u8]) -> Option<Overflow> {
        super::detect(&crate::error::upstream_error(body))
    }

    #[test]
    fn each_providers_words_are_read() {
        let openai = br#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210433 tokens > 200000 maximum"}}"#;
        let gemini = br#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        let o = |tokens, limit| {
            Some(Overflow {
                tokens: Some(tokens),
                limit: Some(limit),
            })
        };
        assert_eq!(detect(openai), o(130_512, 128_000));
        assert_eq!(detect(anthropic), o(210_433, 200_000));
        assert_eq!(detect(gemini), o(1_200_000, 1_048_576));
        // OpenAI's code alone is enough; other errors are not overflows.
        assert_eq!(
            detect(br#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#),
            Some(Overflow {
                tokens: None,
                limit: None
            })
        );
        assert_eq!(detect(br#"{"error":{"message":"bad model"}}"#), None);
        // The cap counted too (OpenAI, vLLM): the request's total.
        let vllm = br#"{"object":"error","error":{"message":"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (8000 in the messages, 32000 in the completion). Please reduce the length of the messages or completion."}}"#;
        assert_eq!(detect(vllm), o(40_000, 32_768));
        assert_eq!(detect(b"<html>502</html>"), None);
    }

    #[test]
    fn each_format_is_told_in_its_clients_words() {
        let o = Overflow {
            tokens: Some(210_433),
            limit: Some(200_000),
        };
        assert_eq!(
            message(Format::Anthropic, o),
            "prompt is too long: 210433 tokens > 200000 maximum"
        );
        assert!(message(Format::OpenAiChat, o).starts_with(
            "This model's maximum context length is 200000 tokens. However, your messages resulted in 210433 tokens."
        ));
        assert_eq!(
            message(Format::Gemini, o),
            "The input token count (210433) exceeds the maximum number of tokens allowed (200000)."
        );
        // Counts unknown: none made up.
        let unknown = Overflow {
            tokens: None,
            limit: Some(8),
        };
        assert_eq!(message(Format::Anthropic, unknown), "prompt is too long");
        assert!(!message(Format::Gemini, unknown).contains('('));
        // Whatever the words, each reads its own back.
        for f in [Format::OpenAiChat, Format::Anthropic, Format::Gemini] {
            let body = serde_json::json!({"error": {"message": message(f, o)}}).to_string();
            assert_eq!(detect(body.as_bytes()), Some(o), "{f:?}");
        }
    }
}
