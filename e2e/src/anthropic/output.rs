//! Structured outputs (`output_config.format`), checked as the real API
//! checks them: a 400 `invalid_request_error` for a model without them
//! (Claude 3.x and older, Sonnet 4, Opus 4 and 4.1), for a format other
//! than `json_schema` or without a schema, and for a schema outside the
//! subset Anthropic's constrained decoding takes: an object schema whose
//! `additionalProperties` is not `false`, `patternProperties`, numeric and
//! string constraints, `minItems` above 1, `maxItems`, `uniqueItems`.
//!
//! The answer to a valid one is JSON text: the schema's required properties
//! with sample values (`tokens::fill_required`), `{}` when it requires
//! none, counted as any reply (its words).

use serde_json::{Map, Value};

use crate::error::MockError;

/// Keywords the real API refuses in a schema (beside `minItems` above 1).
const REFUSED: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "patternProperties",
];

/// The schema of the answer, when the request asks for one.
pub fn schema(obj: &Map<String, Value>, model: &str) -> Result<Option<Value>, MockError> {
    let format = match obj.get("output_config") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(c)) => match c.get("format") {
            None | Some(Value::Null) => return Ok(None),
            Some(f) => f,
        },
        Some(_) => {
            return Err(MockError::InvalidType {
                param: "output_config",
                expected: "a valid dictionary",
            });
        }
    };
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return Err(MockError::Invalid(
            "output_config.format.type: Input should be 'json_schema'".to_owned(),
        ));
    }
    let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
        return Err(MockError::MissingParam("output_config.format.schema"));
    };
    if !has_structured_outputs(model) {
        return Err(MockError::Invalid(format!(
            "output_config.format: structured outputs are not supported for the model '{model}'"
        )));
    }
    check(schema, "output_config.format.schema", 0)?;
    Ok(Some(schema.clone()))
}

/// Every model but those Anthropic lists without structured outputs (the
/// mock serves any other name as a current model).
fn has_structured_outputs(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let Some(at) = m.find("claude-") else {
        return true;
    };
    let name = &m[at..];
    let older = [
        "claude-3",
        "claude-2",
        "claude-instant",
        "claude-sonnet-4-0",
        "claude-sonnet-4-2025",
        "claude-opus-4-0",
        "claude-opus-4-1",
        "claude-opus-4-2025",
    ];
    !(older.iter().any(|p| name.starts_with(p))
        || ["claude-sonnet-4", "claude-opus-4"].contains(&name))
}

/// One schema node and those below it.
fn check(s: &Value, at: &str, depth: usize) -> Result<(), MockError> {
    let Some(node) = s.as_object() else {
        return Ok(());
    };
    if depth > 64 {
        return Err(MockError::Invalid(format!("{at}: Schema is too complex")));
    }
    let refused = |why: String| Err(MockError::Invalid(format!("{at}: {why}")));
    let object = match node.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => node.contains_key("properties"),
    };
    if object && node.get("additionalProperties") != Some(&Value::Bool(false)) {
        return refused(
            "For 'object' type, 'additionalProperties' must be explicitly set to false".to_owned(),
        );
    }
    if let Some(k) = node.keys().find(|k| REFUSED.contains(&k.as_str())) {
        return refused(format!("'{k}' is not supported"));
    }
    if node.get("minItems").and_then(Value::as_u64).unwrap_or(0) > 1 {
        return refused("'minItems' values other than 0 or 1 are not supported".to_owned());
    }
    for key in ["properties", "$defs", "definitions"] {
        for (name, sub) in node
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            check(sub, &format!("{at}.{key}.{name}"), depth + 1)?;
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for (i, sub) in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check(sub, &format!("{at}.{key}.{i}"), depth + 1)?;
        }
    }
    if let Some(items) = node.get("items") {
        check(items, &format!("{at}.items"), depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use super::super::{MessagesRequest, answer, error_parts};
    use crate::app::Answer;
    use crate::error::MockError;

    fn parse(model: &str, schema: Value) -> Result<MessagesRequest, MockError> {
        let body = json!({
            "model": model, "max_tokens": 100,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": schema}}
        });
        MessagesRequest::parse(body.to_string().as_bytes(), false)
    }

    fn weather() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "temp": {"type": "number", "description": "C. Constraints: minimum -90."},
                "wind": {"type": "object", "properties": {"kmh": {"type": "integer"}},
                    "required": ["kmh"], "additionalProperties": false}
            },
            "required": ["city", "wind"],
            "additionalProperties": false
        })
    }

    fn refusal(err: &MockError) -> String {
        let (status, body) = error_parts(err);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn a_valid_schema_is_answered_with_json() {
        let req = parse("claude-sonnet-4-5", weather()).expect("valid");
        let Answer::Json { body, .. } = answer(&req).answer else {
            panic!("json expected")
        };
        let text = body["content"][0]["text"].as_str().expect("text");
        let reply: Value = serde_json::from_str(text).expect("JSON text");
        assert_eq!(reply, json!({"city": "Paris", "wind": {"kmh": 1}}));
        assert_eq!(body["usage"]["output_tokens"], 1);
    }

    #[test]
    fn models_without_structured_outputs_are_refused() {
        for model in [
            "claude-3-5-sonnet-20241022",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4",
            "claude-opus-4-1-20250805",
        ] {
            let err = parse(model, weather()).expect_err(model);
            assert!(
                refusal(&err).contains("not supported for the model"),
                "{model}"
            );
        }
        for model in ["claude-haiku-4-5", "claude-opus-4-6", "claude-x", "c"] {
            assert!(parse(model, weather()).is_ok(), "{model}");
        }
    }

    #[test]
    fn schemas_outside_the_subset_are_refused() {
        let mut open = weather();
        open["properties"]["wind"]
            .as_object_mut()
            .expect("object")
            .remove("additionalProperties");
        let msg = refusal(&parse("claude-sonnet-4-5", open).expect_err("open object"));
        assert!(
            msg.starts_with("output_config.format.schema.properties.wind: For 'object' type"),
            "{msg}"
        );
        let mut map = weather();
        map["additionalProperties"] = json!({"type": "string"});
        assert!(parse("claude-sonnet-4-5", map).is_err());
        let mut bounded = weather();
        bounded["properties"]["city"]["minLength"] = json!(2);
        let msg = refusal(&parse("claude-sonnet-4-5", bounded).expect_err("minLength"));
        assert!(msg.contains("'minLength' is not supported"), "{msg}");
        let many = json!({"type": "object", "additionalProperties": false, "properties": {
            "l": {"type": "array", "items": {"type": "string"}, "minItems": 2}}});
        assert!(parse("claude-sonnet-4-5", many).is_err());
        let text = json!({"model": "claude-sonnet-4-5", "max_tokens": 1, "messages": [],
            "output_config": {"format": {"type": "text"}}});
        assert!(MessagesRequest::parse(text.to_string().as_bytes(), false).is_err());
    }
}
