//! The IR names fields several formats share after OpenAI (`top_k`,
//! `user`, `tool_choice`…); what a translation drops or refuses is named
//! as the app's own format spells it, so the app can find it in its
//! request (a Gemini app sent `generationConfig.topK`, not `top_k`).

use super::Format;
use super::ir::{Drops, Unsupported};

/// `ir`'s name in `format`, where it differs.
fn spelled(format: Format, ir: &str) -> Option<&'static str> {
    Some(match (format, ir) {
        (Format::Gemini, "top_k") => "generationConfig.topK",
        (Format::Gemini, "top_p") => "generationConfig.topP",
        (Format::Gemini, "temperature") => "generationConfig.temperature",
        (Format::Gemini, "tool_choice") => "toolConfig.functionCallingConfig",
        (Format::Anthropic, "user") => "metadata.user_id",
        (Format::Anthropic, "parallel_tool_calls") => "tool_choice.disable_parallel_tool_use",
        _ => return None,
    })
}

/// Names the dropped fields as `format` spells them.
pub fn name_drops(format: Format, drops: &mut Drops) {
    drops.rename(|f| spelled(format, f));
}

/// Names a refused field as `format` spells it, in its message too.
pub fn name_refusal(format: Format, mut e: Unsupported) -> Unsupported {
    if let Some(name) = spelled(format, &e.field) {
        e.message = e
            .message
            .replacen(&format!("`{}`", e.field), &format!("`{name}`"), 1);
        e.field = name.to_string();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{decode_request, encode_request};

    /// A Gemini CLI request (it always sends `topK`) to an OpenAI model,
    /// and an Anthropic app's end-user id to Gemini.
    #[test]
    fn refusals_and_drops_name_the_apps_own_field() {
        let gemini = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"topK":40}}"#;
        let mut req = decode_request(Format::Gemini, gemini, Some("gpt-4o"), false).unwrap();
        encode_request(Format::OpenAiChat, &mut req).unwrap();
        name_drops(Format::Gemini, &mut req.dropped);
        let named: Vec<&str> = req.dropped.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(named, ["generationConfig.topK"]);
        let e = name_refusal(Format::Gemini, Unsupported::new("top_k", "OpenAI"));
        assert_eq!(e.field, "generationConfig.topK");
        assert!(
            e.message
                .starts_with("`generationConfig.topK` cannot be expressed"),
            "{}",
            e.message
        );

        let anthropic = br#"{"model":"gemini-2.5-pro","max_tokens":9,"metadata":{"user_id":"u1"},"messages":[{"role":"user","content":"hi"}]}"#;
        let mut req = decode_request(Format::Anthropic, anthropic, None, false).unwrap();
        encode_request(Format::Gemini, &mut req).unwrap();
        name_drops(Format::Anthropic, &mut req.dropped);
        let named: Vec<&str> = req.dropped.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(named, ["metadata.user_id"]);
        // Names the app's format shares are left as they are.
        assert_eq!(
            name_refusal(Format::OpenAiChat, Unsupported::new("top_k", "x")).field,
            "top_k"
        );
    }
}
