//! What both OpenAI formats (chat and Responses) spell alike: the fields
//! that carry nothing for another provider, the tool-choice modes and the
//! JSON-schema output format, and the end-user id.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::translate::ir::{ResponseFormat, ToolChoice, Unsupported};

/// Request fields of both formats that carry no content: dropped when
/// translating, on every route. Chat reads `parallel_tool_calls` itself
/// (`false` is kept as `ChatRequest::serial_tool_calls`); Responses, which
/// is never a translation's target, drops it.
pub(crate) const ADVISORY: &[&str] = &[
    "metadata",
    "store",
    "parallel_tool_calls",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// Longest end-user id (`user`, `safety_identifier`) OpenAI takes: a longer
/// one is refused (400 `string_above_max_length`).
const MAX_USER_CHARS: usize = 64;

/// The end-user id as OpenAI takes it. Claude Code's `metadata.user_id` (a
/// JSON object of ids, 120 to 150 characters) is longer than OpenAI allows:
/// such an id is sent as its SHA-256 in hex (64 characters), so one user
/// stays one identifier, and one no other user shares. OpenAI counts
/// characters, as here.
pub(crate) fn end_user_id(user: &str) -> Cow<'_, str> {
    if user.len() <= MAX_USER_CHARS || user.chars().count() <= MAX_USER_CHARS {
        return Cow::Borrowed(user);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, user.as_bytes());
    Cow::Owned(hex::encode(digest.as_ref()))
}

/// The error OpenAI gives a request without a model.
pub(crate) const MISSING_MODEL: &str = "you must provide a model parameter";

/// `tool_choice` as a string: `auto`, `none` or `required`.
pub(crate) fn tool_choice_mode(s: &str) -> Result<ToolChoice, Unsupported> {
    match s {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Required),
        other => Err(Unsupported::invalid(
            "tool_choice",
            format!("unknown value {other:?}"),
        )),
    }
}

/// A JSON-schema output format: under `json_schema` in chat, inline in
/// Responses' `text.format`.
#[derive(Deserialize, Default)]
pub(crate) struct JsonSchemaIn {
    name: Option<String>,
    schema: Option<Value>,
    strict: Option<bool>,
}

/// The output format of type `ty`; `schema` is read for `json_schema` only,
/// and `field` names the type when it is none of the three.
pub(crate) fn response_format(
    ty: Option<&str>,
    schema: impl FnOnce() -> Result<JsonSchemaIn, Unsupported>,
    field: &str,
) -> Result<ResponseFormat, Unsupported> {
    match ty {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let s = schema()?;
            Ok(ResponseFormat::JsonSchema {
                name: s.name.unwrap_or_else(|| "response".to_string()),
                schema: s.schema.unwrap_or(Value::Null),
                strict: s.strict.unwrap_or(false),
            })
        }
        _ => Err(Unsupported::invalid(
            field,
            "expected text, json_object or json_schema",
        )),
    }
}

/// The output format the gateway asks for, in either format's place for it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum FormatOut<S> {
    Text,
    JsonObject,
    JsonSchema(S),
}

#[derive(Serialize)]
pub(crate) struct JsonSchemaOut<'a> {
    name: &'a str,
    schema: &'a Value,
    strict: bool,
}

impl<'a, S> FormatOut<S> {
    /// The IR's format; `wrap` places the schema as the format wants it.
    pub fn new(rf: Option<&'a ResponseFormat>, wrap: impl FnOnce(JsonSchemaOut<'a>) -> S) -> Self {
        match rf {
            None | Some(ResponseFormat::Text) => Self::Text,
            Some(ResponseFormat::JsonObject) => Self::JsonObject,
            Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            }) => Self::JsonSchema(wrap(JsonSchemaOut {
                name,
                schema,
                strict: *strict,
            })),
        }
    }
}
