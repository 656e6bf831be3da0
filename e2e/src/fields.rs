//! The top-level request fields each real API knows. A real provider refuses
//! any other (OpenAI: `Unrecognized request argument supplied`, Anthropic:
//! `Extra inputs are not permitted`, Gemini: `Unknown name`), so the mock
//! does too: a field the gateway should have dropped or translated, leaking
//! into a provider's request, fails the test that sent it.

use serde_json::{Map, Value};

use crate::error::MockError;

/// `POST /v1/chat/completions`.
pub const OPENAI_CHAT: &[&str] = &[
    "model",
    "messages",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

/// `POST /v1/responses` (Codex's `client_metadata` included: OpenAI takes it).
pub const RESPONSES: &[&str] = &[
    "model",
    "input",
    "instructions",
    "background",
    "client_metadata",
    "context_management",
    "conversation",
    "include",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];

/// `POST /v1/messages` and `/v1/messages/count_tokens` (beta fields included:
/// the real API takes them with their `anthropic-beta` header).
pub const ANTHROPIC: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "context_management",
    "mcp_servers",
    "output_config",
    "output_format",
    "inference_geo",
    "speed",
];

/// `:generateContent`, `:streamGenerateContent`, `:countTokens` (JSON and
/// proto field names both: the API takes either).
pub const GEMINI: &[&str] = &[
    "model",
    "contents",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "systemInstruction",
    "system_instruction",
    "generationConfig",
    "generation_config",
    "cachedContent",
    "cached_content",
    "labels",
    "generateContentRequest",
    "generate_content_request",
];

/// Which API's words the refusal uses.
#[derive(Debug, Clone, Copy)]
pub enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

/// Refuses the first field of `obj` not in `known`, in `api`'s words.
pub fn check(obj: &Map<String, Value>, known: &[&str], api: Api) -> Result<(), MockError> {
    let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    Err(MockError::Invalid(match api {
        Api::OpenAi => format!("Unrecognized request argument supplied: {unknown}"),
        Api::Anthropic => format!("{unknown}: Extra inputs are not permitted"),
        Api::Gemini => {
            format!("Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field.")
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_refused_in_each_apis_words() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        assert!(
            check(
                &obj(json!({"model": "m", "messages": []})),
                OPENAI_CHAT,
                Api::OpenAi
            )
            .is_ok()
        );
        let e = check(
            &obj(json!({"model": "m", "context_management": {}})),
            OPENAI_CHAT,
            Api::OpenAi,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unrecognized request argument supplied: context_management"
        );
        let e = check(
            &obj(json!({"client_metadata": {}})),
            ANTHROPIC,
            Api::Anthropic,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "client_metadata: Extra inputs are not permitted"
        );
        let e = check(&obj(json!({"thinking": {}})), GEMINI, Api::Gemini).unwrap_err();
        assert!(e.to_string().contains("Unknown name \"thinking\""));
    }
}
