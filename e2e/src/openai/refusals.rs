//! What the real API refuses of a chat request, in its words: a reasoning
//! model's settings, caps past the model's output limit, strings past their
//! length, schema types JSON Schema lacks.

use serde_json::Value;

use crate::error::MockError;
use crate::tokens::{ToolDecl, invalid_schema_type};

/// OpenAI's reasoning models by name: the o-series and the gpt-5 family,
/// but for its chat models (`gpt-5-chat-latest`), which take what gpt-4o
/// takes. A fine-tune (`ft:o4-mini-…`) is its base model.
fn is_reasoning_model(model: &str) -> bool {
    let m = model
        .strip_prefix("ft:")
        .unwrap_or(model)
        .to_ascii_lowercase();
    if m.starts_with("gpt-5") {
        return !m.starts_with("gpt-5-chat");
    }
    ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
}

/// How the real API's refusal of a parameter a model does not take begins.
const UNSUPPORTED_PARAMETER: &str = "Unsupported parameter: ";
/// How the real API's refusal of a value a model does not take begins.
const UNSUPPORTED_VALUE: &str = "Unsupported value: ";

/// What the real API refuses a reasoning model, in its words: `max_tokens`
/// (deprecated; `max_completion_tokens` also counts the reasoning) and
/// sampling settings other than the default 1. A gateway translating an
/// app's request for such a model must not send them.
pub(super) fn check_reasoning_model(
    model: &str,
    obj: &serde_json::Map<String, Value>,
) -> Result<(), MockError> {
    if !is_reasoning_model(model) {
        return Ok(());
    }
    if obj.get("max_tokens").is_some_and(|v| !v.is_null()) {
        return Err(MockError::Invalid(format!(
            "{UNSUPPORTED_PARAMETER}'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
        )));
    }
    for name in ["temperature", "top_p"] {
        if let Some(v) = obj
            .get(name)
            .filter(|v| v.as_f64().is_some_and(|f| f != 1.0))
        {
            return Err(MockError::Invalid(format!(
                "{UNSUPPORTED_VALUE}'{name}' does not support {v} with this model. Only the default (1) value is supported."
            )));
        }
    }
    // The o-series takes no `parallel_tool_calls` (gpt-5 does).
    let m = model.strip_prefix("ft:").unwrap_or(model);
    if ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
        && obj.get("parallel_tool_calls").is_some_and(|v| !v.is_null())
    {
        return Err(MockError::Invalid(format!(
            "{UNSUPPORTED_PARAMETER}'parallel_tool_calls' is not supported with this model."
        )));
    }
    Ok(())
}

/// How the real API's refusal of a string past its length begins.
const TOO_LONG: &str = "': string too long.";

/// Strings the real API refuses past a length (400
/// `string_above_max_length`): the end-user id past 64 characters (Claude
/// Code's `metadata.user_id` is longer), a tool's description past 1024
/// (Claude Code's run to several thousand).
pub(super) fn check_lengths(obj: &serde_json::Map<String, Value>) -> Result<(), MockError> {
    let too_long = |param: String, s: &str, max: usize| {
        let len = s.chars().count();
        (len > max).then(|| {
            MockError::Invalid(format!(
                "Invalid '{param}{TOO_LONG} Expected a string with maximum length {max}, but got a string with length {len} instead."
            ))
        })
    };
    if let Some(e) = obj
        .get("user")
        .and_then(Value::as_str)
        .and_then(|u| too_long("user".into(), u, 64))
    {
        return Err(e);
    }
    let tools = obj.get("tools").and_then(Value::as_array);
    for (i, t) in tools.into_iter().flatten().enumerate() {
        let description = t.pointer("/function/description").and_then(Value::as_str);
        if let Some(e) =
            description.and_then(|d| too_long(format!("tools[{i}].function.description"), d, 1024))
        {
            return Err(e);
        }
    }
    Ok(())
}

/// JSON mode (`response_format: {type: json_object}`) needs the word
/// "json" somewhere in the messages, or the real API answers 400.
pub(super) fn check_json_mode(obj: &serde_json::Map<String, Value>) -> Result<(), MockError> {
    let json_mode = obj
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        == Some("json_object");
    let said = obj
        .get("messages")
        .is_some_and(|m| m.to_string().to_ascii_lowercase().contains("json"));
    if json_mode && !said {
        return Err(MockError::Invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.".into(),
        ));
    }
    Ok(())
}

/// Output limits of a few of OpenAI's chat models (the ones the suites use),
/// by name prefix, most specific first.
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("gpt-4o", 16_384),
    ("gpt-4.1", 32_768),
    ("gpt-5-chat", 16_384),
];

/// The real API's refusal of a cap above the model's output limit.
const TOO_LARGE: &str = " is too large: ";

/// Refuses a cap above the model's output limit, in the real API's words
/// (Claude Code asks for 32,000; gpt-4o gives at most 16,384).
pub(super) fn check_output_cap(
    model: &str,
    obj: &serde_json::Map<String, Value>,
) -> Result<(), MockError> {
    let m = model.strip_prefix("ft:").unwrap_or(model);
    let Some((_, most)) = MAX_OUTPUT.iter().find(|(p, _)| m.starts_with(p)) else {
        return Ok(());
    };
    for name in ["max_completion_tokens", "max_tokens"] {
        if let Some(asked) = obj.get(name).and_then(Value::as_u64).filter(|a| a > most) {
            return Err(MockError::Invalid(format!(
                "{name}{TOO_LARGE}{asked}. This model supports at most {most} completion tokens, whereas you provided {asked}."
            )));
        }
    }
    Ok(())
}

/// The `param` and `code` the real API gives its refusals of what a model
/// does not take (`unsupported_parameter`, `unsupported_value`): read back
/// from the message [`check_reasoning_model`] wrote, the one place the mock
/// writes them.
pub(super) fn unsupported(err: &MockError) -> Option<(&str, &'static str)> {
    let MockError::Invalid(m) = err else {
        return None;
    };
    if let Some((param, _)) = m
        .strip_prefix("Invalid '")
        .and_then(|rest| rest.split_once(TOO_LONG))
    {
        return Some((param, "string_above_max_length"));
    }
    if let Some((param, _)) = m.split_once(TOO_LARGE)
        && matches!(param, "max_tokens" | "max_completion_tokens")
    {
        return Some((param, "invalid_value"));
    }
    let (rest, code) = if let Some(rest) = m.strip_prefix(UNSUPPORTED_PARAMETER) {
        (rest, "unsupported_parameter")
    } else {
        (m.strip_prefix(UNSUPPORTED_VALUE)?, "unsupported_value")
    };
    let param = rest.strip_prefix('\'')?.split('\'').next()?;
    Some((param, code))
}

/// Refuses a tool whose schema has a type JSON Schema does not know (such
/// as Gemini's `STRING`), with the real API's message.
pub(crate) fn check_tool_schemas(tools: &[ToolDecl]) -> Result<(), MockError> {
    for (i, t) in tools.iter().enumerate() {
        // OpenAI takes `^[a-zA-Z0-9_-]+$`, at most 64 long (Gemini's dotted
        // names are refused).
        if !tool_name_fits(&t.name, 64) {
            return Err(MockError::Invalid(format!(
                "Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            )));
        }
        if let Some(bad) = invalid_schema_type(&t.parameters) {
            return Err(MockError::Invalid(format!(
                "Invalid schema for function '{}': '{bad}' is not valid under any of the given schemas.",
                t.name
            )));
        }
    }
    Ok(())
}

/// `^[a-zA-Z0-9_-]{1,max}$`, OpenAI's and Anthropic's rule for a tool's name.
pub(crate) fn tool_name_fits(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::openai::tests::parse;
    use crate::openai::{error_body, error_parts};

    #[test]
    fn tool_names_follow_the_apis_pattern() {
        let tools = |name: &str| json!([{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}]);
        for bad in ["files.read", "ns:get", "", &"x".repeat(65)] {
            let err = parse(json!({"model": "gpt-4o", "tools": tools(bad),
                "messages": [{"role": "user", "content": "hi"}]}));
            assert!(
                matches!(&err, Err(MockError::Invalid(m)) if m.contains("'tools[0].function.name'")),
                "{bad:?}: {err:?}"
            );
        }
        assert!(
            parse(json!({"model": "gpt-4o", "tools": tools("files_read-2"),
            "messages": [{"role": "user", "content": "hi"}]}))
            .is_ok()
        );
    }

    #[test]
    fn json_mode_needs_the_word_json() {
        let format = json!({"type": "json_object"});
        let err = parse(json!({"model": "gpt-4o", "response_format": format,
            "messages": [{"role": "user", "content": "hi"}]}));
        assert!(
            matches!(err, Err(MockError::Invalid(m)) if m.contains("must contain the word 'json'"))
        );
        let ok = parse(json!({"model": "gpt-4o", "response_format": format,
            "messages": [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "hi"}]}));
        assert!(ok.is_ok());
    }

    #[test]
    fn gemini_schema_types_are_refused() {
        let err = parse(
            json!({"model": "m", "messages": [], "tools": [{"type": "function",
            "function": {"name": "f", "parameters": {"type": "OBJECT"}}}]}),
        );
        assert!(matches!(err, Err(MockError::Invalid(m)) if m.contains("'OBJECT'")));
    }

    #[test]
    fn a_cap_above_the_models_output_limit_is_refused() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for field in ["max_tokens", "max_completion_tokens"] {
            let err = parse(json!({"model": "gpt-4o-mini", "messages": msgs, field: 32000}))
                .expect_err(field);
            let body = error_body(&err);
            assert_eq!(
                body["error"]["message"],
                format!(
                    "{field} is too large: 32000. This model supports at most 16384 completion tokens, whereas you provided 32000."
                )
            );
            assert_eq!(
                (&body["error"]["param"], &body["error"]["code"]),
                (&json!(field), &json!("invalid_value"))
            );
            parse(json!({"model": "gpt-4o-mini", "messages": msgs, field: 16384})).expect(field);
        }
    }

    #[test]
    fn reasoning_models_refuse_what_the_real_api_refuses() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for model in [
            "o1",
            "o3",
            "o3-mini",
            "o4-mini-2025-04-16",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.1",
            "ft:o4-mini-2025-04-16:org::x",
        ] {
            let err = parse(json!({"model": model, "messages": msgs, "max_tokens": 10}))
                .expect_err(model);
            let (status, body) = error_parts(&err);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(
                body,
                json!({"error": {
                    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": "unsupported_parameter"
                }}),
                "{model}"
            );
            let err = parse(json!({"model": model, "messages": msgs, "temperature": 0.2}))
                .expect_err(model);
            let body = error_body(&err);
            assert_eq!(
                body["error"]["message"],
                "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported."
            );
            assert_eq!(
                (&body["error"]["param"], &body["error"]["code"]),
                (&json!("temperature"), &json!("unsupported_value"))
            );
            let err =
                parse(json!({"model": model, "messages": msgs, "top_p": 0.9})).expect_err(model);
            assert_eq!(error_body(&err)["error"]["param"], "top_p");
            // What they take: the cap as `max_completion_tokens`, the
            // default sampling, `max_tokens: null`.
            parse(
                json!({"model": model, "messages": msgs, "max_completion_tokens": 10,
                "temperature": 1, "top_p": 1.0, "max_tokens": null}),
            )
            .expect(model);
        }
        // Chat models take both, whatever their name looks like.
        for model in [
            "gpt-4o",
            "gpt-4.1-mini",
            "gpt-5-chat-latest",
            "mock-model",
            "omni",
        ] {
            parse(json!({"model": model, "messages": msgs, "max_tokens": 10, "temperature": 0.2, "top_p": 0.5}))
                .expect(model);
        }
    }

    /// What Claude Code sends, untranslated: an end-user id and a tool
    /// description longer than the real API takes.
    #[test]
    fn strings_past_their_length_are_refused() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let err = parse(json!({"model": "gpt-4o", "messages": msgs, "user": "u".repeat(65)}))
            .expect_err("a long user");
        assert_eq!(
            error_body(&err),
            json!({"error": {
                "message": "Invalid 'user': string too long. Expected a string with maximum length 64, but got a string with length 65 instead.",
                "type": "invalid_request_error",
                "param": "user",
                "code": "string_above_max_length"
            }})
        );
        let tool = |d: String| json!([{"type": "function", "function": {"name": "f", "description": d, "parameters": {"type": "object"}}}]);
        let err =
            parse(json!({"model": "gpt-4o", "messages": msgs, "tools": tool("é".repeat(1025))}))
                .expect_err("a long description");
        assert_eq!(
            (
                &error_body(&err)["error"]["param"],
                &error_body(&err)["error"]["code"]
            ),
            (
                &json!("tools[0].function.description"),
                &json!("string_above_max_length")
            )
        );
        parse(json!({"model": "gpt-4o", "messages": msgs, "user": "é".repeat(64), "tools": tool("é".repeat(1024))}))
            .expect("at the limits");
    }

    #[test]
    fn the_o_series_refuses_parallel_tool_calls() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let err =
            parse(json!({"model": "o3-mini", "messages": msgs, "parallel_tool_calls": false}))
                .expect_err("o3-mini");
        assert_eq!(
            (
                &error_body(&err)["error"]["param"],
                &error_body(&err)["error"]["code"]
            ),
            (
                &json!("parallel_tool_calls"),
                &json!("unsupported_parameter")
            )
        );
        for model in ["gpt-4o", "gpt-5"] {
            parse(json!({"model": model, "messages": msgs, "parallel_tool_calls": false}))
                .expect(model);
        }
    }
}
