//! Structured output to Anthropic: `output_config.format` for the models
//! that have it, the schema fitted to what Anthropic takes.

use super::*;
use crate::translate::Format;
use crate::translate::anthropic::schema::{fit_schema, structured_outputs};
use crate::translate::responses;

/// The body the codec sends upstream for `req`.
fn sent(req: &mut ChatRequest) -> Value {
    let body = crate::translate::encode_request(Format::Anthropic, req).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn with_format(model: &str, format: ResponseFormat) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Text("Weather in Paris?".into())],
        }],
        response_format: Some(format),
        ..Default::default()
    }
}

fn json_schema(schema: Value) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "report".into(),
        schema,
        strict: true,
    }
}

/// An OpenAI SDK's `response_format` (a pydantic model with a nested one,
/// `strict: true`, every object closed already) reaches Anthropic as
/// `output_config.format`, the name (OpenAI's alone) left out.
#[test]
fn openai_json_schema_is_sent_as_output_config_format() {
    let schema = json!({
        "type": "object",
        "title": "Report",
        "properties": {
            "city": {"type": "string", "description": "The city"},
            "when": {"type": "string", "format": "date-time"},
            "temps": {"type": "array", "items": {"type": "number"}, "minItems": 1},
            "wind": {"$ref": "#/$defs/Wind"}
        },
        "required": ["city", "when", "temps", "wind"],
        "additionalProperties": false,
        "$defs": {"Wind": {"type": "object", "properties": {
            "kmh": {"type": "integer"}, "dir": {"enum": ["N", "E", "S", "W"]}
        }, "required": ["kmh", "dir"], "additionalProperties": false}}
    });
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "Report", "strict": true, "schema": schema}}
    });
    let mut req = openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    let out = sent(&mut req);
    assert_eq!(
        out["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}}),
        "a schema Anthropic takes goes as it is"
    );
    assert!(out.get("response_format").is_none(), "{out}");
    assert!(req.dropped.is_empty());
}

/// Gemini's `responseSchema` (OpenAPI style, upper-case types,
/// `nullable`, `propertyOrdering`) arrives as JSON Schema, objects closed.
#[test]
fn gemini_response_schema_is_sent_closed() {
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "List two cities"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {
                "cities": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {
                    "name": {"type": "STRING"},
                    "country": {"type": "STRING", "nullable": true}
                }, "required": ["name"]}}
            }, "required": ["cities"], "propertyOrdering": ["cities"]}
        }
    });
    let mut req =
        gemini::decode_request(body.to_string().as_bytes(), "claude-haiku-4-5", false).unwrap();
    let out = sent(&mut req);
    assert_eq!(
        out["output_config"]["format"],
        json!({"type": "json_schema", "schema": {
            "type": "object",
            "properties": {"cities": {"type": "array", "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "country": {"type": ["string", "null"]}},
                "required": ["name"],
                "additionalProperties": false
            }}},
            "required": ["cities"],
            "additionalProperties": false
        }})
    );
}

/// A Responses app's `text.format` goes the same way.
#[test]
fn responses_text_format_is_sent_as_output_config_format() {
    let body = json!({
        "model": "claude-opus-4-6",
        "input": "Weather?",
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {
            "type": "object", "properties": {"t": {"type": "integer"}}
        }}}
    });
    let mut req = responses::decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        sent(&mut req)["output_config"]["format"]["schema"],
        json!({"type": "object", "properties": {"t": {"type": "integer"}}, "additionalProperties": false})
    );
}

/// Claude 3.x, Sonnet 4, Opus 4 and 4.1 have no structured outputs: the
/// request is refused, naming `response_format` and saying why.
#[test]
fn models_without_structured_outputs_are_refused() {
    for model in [
        "claude-3-5-sonnet-20241022",
        "claude-3-7-sonnet-latest",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-0",
        "claude-opus-4-1",
        "anthropic.claude-opus-4-20250514-v1:0",
    ] {
        let mut req = with_format(
            model,
            json_schema(json!({"type": "object", "properties": {"a": {"type": "string"}}})),
        );
        let err = encode_request(&mut req).unwrap_err();
        assert_eq!(err.field, "response_format", "{model}");
        assert!(
            err.message.contains("has no structured outputs"),
            "{model}: {}",
            err.message
        );
    }
}

#[test]
fn structured_outputs_by_model_name() {
    for (model, has) in [
        ("claude-sonnet-4-5", true),
        ("claude-sonnet-4-5-20250929", true),
        ("claude-sonnet-4-6", true),
        ("claude-opus-4-5-20251101", true),
        ("claude-opus-4-7", true),
        ("claude-haiku-4-5", true),
        ("claude-haiku-4-5@20251001", true),
        ("claude-sonnet-4.5", true),
        ("claude-sonnet-4.0", false),
        ("us.anthropic.claude-opus-4-6-v1", true),
        // Newer than any known: taken to have them.
        ("claude-sonnet-5", true),
        ("claude-opus-5-1-20270101", true),
        ("claude-next", true),
        // Not a Claude name: the vendor decides.
        ("deepseek-chat", true),
        ("claude-3-5-haiku-latest", false),
        ("claude-3-opus-20240229", false),
        ("claude-3-7-sonnet-20250219", false),
        ("claude-sonnet-4", false),
        ("claude-sonnet-4-20250514", false),
        ("claude-opus-4-0", false),
        ("claude-opus-4-1-20250805", false),
        ("Claude-Opus-4-1", false),
        ("claude-2.1", false),
        ("claude-instant-1.2", false),
    ] {
        assert_eq!(structured_outputs(model), has, "{model}");
    }
}

/// JSON mode without a schema has no Anthropic counterpart; nor do
/// structured outputs continue an assistant prefill.
#[test]
fn json_object_and_prefill_are_refused() {
    let mut req = with_format("claude-sonnet-4-5", ResponseFormat::JsonObject);
    let err = encode_request(&mut req).unwrap_err();
    assert_eq!(err.field, "response_format");
    assert!(err.message.contains("json_object"), "{}", err.message);

    let mut req = with_format(
        "claude-sonnet-4-5",
        json_schema(json!({"type": "object", "properties": {"a": {"type": "string"}}})),
    );
    req.messages.push(Message {
        role: Role::Assistant,
        content: vec![Part::Text("{".into())],
    });
    let err = encode_request(&mut req).unwrap_err();
    assert_eq!(err.field, "response_format");
    assert!(err.message.contains("prefill"), "{}", err.message);

    let mut text = with_format("claude-3-5-sonnet-20241022", ResponseFormat::Text);
    assert!(sent(&mut text).get("output_config").is_none());
}

/// Constraints Anthropic refuses leave the node for its description;
/// those it takes (`minItems` 0 or 1, its formats) stay.
#[test]
fn constraints_are_moved_into_descriptions() {
    let fitted = fit_schema(&json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 20, "pattern": "^[A-Z]"},
            "age": {"type": "integer", "description": "Years.", "minimum": 0, "exclusiveMaximum": 150},
            "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2, "maxItems": 5, "uniqueItems": true},
            "ids": {"type": "array", "items": {"type": "string", "format": "uri-reference"}, "minItems": 1},
            "step": {"type": "number", "multipleOf": 0.5, "description": "  "}
        }
    }))
    .unwrap();
    assert_eq!(
        fitted,
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Constraints: maxLength 20, minLength 3, pattern \"^[A-Z]\"."},
                "age": {"type": "integer", "description": "Years. Constraints: exclusiveMaximum 150, minimum 0."},
                "tags": {"type": "array", "items": {"type": "string", "format": "email"},
                    "description": "Constraints: maxItems 5, minItems 2, uniqueItems true."},
                "ids": {"type": "array", "minItems": 1, "items": {"type": "string",
                    "description": "Constraints: format \"uri-reference\"."}},
                "step": {"type": "number", "description": "Constraints: multipleOf 0.5."}
            },
            "additionalProperties": false
        })
    );
}

/// Every object is closed, wherever it is; `true` is closed the same way;
/// an object whose extra keys have a schema (a map) is refused.
#[test]
fn objects_are_closed() {
    let fitted = fit_schema(&json!({
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": ["object", "null"], "properties": {"c": {}}}}},
            "list": {"type": "array", "items": {"type": "object", "properties": {"x": {}}, "additionalProperties": true}},
            "either": {"oneOf": [{"type": "object", "properties": {"y": {}}}, {"type": "string"}]},
            "both": {"allOf": [{"$ref": "#/definitions/D"}]}
        },
        "definitions": {"D": {"type": "object", "unevaluatedProperties": false}},
        "$schema": "http://json-schema.org/draft-07/schema#",
        "examples": [{}]
    }))
    .unwrap();
    let closed = |v: &Value| v["additionalProperties"] == json!(false);
    assert!(closed(&fitted), "untyped with properties: {fitted}");
    let p = &fitted["properties"];
    assert!(closed(&p["a"]) && closed(&p["a"]["properties"]["b"]), "{p}");
    assert!(closed(&p["list"]["items"]), "{p}");
    assert!(p["either"].get("oneOf").is_none(), "oneOf goes as anyOf");
    assert!(closed(&p["either"]["anyOf"][0]), "{p}");
    assert!(
        p["either"]["anyOf"][1]
            .get("additionalProperties")
            .is_none()
    );
    // One `allOf` branch is that branch, as `anyOf` (Anthropic refuses
    // `allOf` around a `$ref`).
    assert!(p["both"].get("allOf").is_none(), "{p}");
    assert_eq!(p["both"]["anyOf"][0], json!({"$ref": "#/definitions/D"}));
    assert_eq!(
        fitted["definitions"]["D"],
        json!({"type": "object", "additionalProperties": false})
    );
    assert!(fitted.get("$schema").is_none() && fitted.get("examples").is_none());

    for (schema, field) in [
        (
            json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "integer"}}}}),
            "response_format.json_schema.schema.properties.m.additionalProperties",
        ),
        (
            json!({"type": "object", "patternProperties": {"^x": {}}}),
            "response_format.json_schema.schema.patternProperties",
        ),
        (
            json!({"type": "array", "items": [{"type": "string"}]}),
            "response_format.json_schema.schema.items",
        ),
        (
            json!({"anyOf": [{}], "oneOf": [{}]}),
            "response_format.json_schema.schema.oneOf",
        ),
        // Free-form: closed, it could only be `{}`.
        (
            json!({"type": "object", "properties": {"meta": {"type": "object"}}}),
            "response_format.json_schema.schema.properties.meta",
        ),
        (
            json!({"type": "object", "additionalProperties": true}),
            "response_format.json_schema.schema",
        ),
        // Several objects in `allOf`, each closed: only `{}` meets them all.
        (
            json!({"allOf": [{"type": "object", "properties": {"a": {}}}, {"type": "object", "properties": {"b": {}}}]}),
            "response_format.json_schema.schema.allOf",
        ),
        // Several `allOf` branches beside a `$ref`.
        (
            json!({"allOf": [{"$ref": "#/$defs/A"}, {"properties": {"b": {}}}], "$defs": {"A": {"type": "object", "properties": {"a": {}}}}}),
            "response_format.json_schema.schema.allOf",
        ),
    ] {
        assert_eq!(fit_schema(&schema).unwrap_err().field, field, "{schema}");
    }
}

/// Local `$ref`s to the root's definitions stay; recursive ones, others
/// and ones to nothing are refused.
#[test]
fn refs_must_be_local_and_not_recursive() {
    let tree = json!({
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "$defs": {
            "Node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Kid"}}}},
            "Kid": {"type": "object", "properties": {"parent": {"$ref": "#/$defs/Node"}}}
        }
    });
    let err = fit_schema(&tree).unwrap_err();
    assert!(err.field.ends_with("(recursive)"), "{}", err.field);
    assert!(err.message.contains("Anthropic"), "{}", err.message);

    let shared = json!({
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/P"}, "b": {"$ref": "#/$defs/P"}},
        "$defs": {"P": {"type": "object", "properties": {"q": {"$ref": "#/$defs/Q"}}}, "Q": {"type": "string"}}
    });
    assert!(fit_schema(&shared).is_ok(), "shared, not recursive");

    for (schema, field) in [
        (
            json!({"type": "object", "properties": {"me": {"$ref": "#"}}}),
            "response_format.json_schema.schema.properties.me.$ref",
        ),
        (
            json!({"$ref": "https://example.com/s.json"}),
            "response_format.json_schema.schema.$ref",
        ),
        (
            json!({"$ref": "#/$defs/Nope"}),
            "response_format.json_schema.schema.$ref",
        ),
        (
            json!({"$dynamicRef": "#meta"}),
            "response_format.json_schema.schema.$dynamicRef",
        ),
    ] {
        assert_eq!(fit_schema(&schema).unwrap_err().field, field, "{schema}");
    }
}

/// The walk is bounded: deep nesting and huge schemas are refused, not
/// walked without end.
#[test]
fn the_walk_is_bounded() {
    let mut deep = json!({"type": "string"});
    for _ in 0..40 {
        deep = json!({"type": "array", "items": deep});
    }
    let err = fit_schema(&deep).unwrap_err();
    assert!(
        err.field.contains("nested beyond 32 levels"),
        "{}",
        err.field
    );

    let props: serde_json::Map<String, Value> = (0..20_001)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let wide = json!({"type": "object", "properties": props});
    let err = fit_schema(&wide).unwrap_err();
    assert!(err.message.contains("20,000 nodes"), "{}", err.message);

    assert!(fit_schema(&Value::Null).is_err(), "no schema");
}

/// The schema counts towards the prompt when the output cap is chosen:
/// Anthropic hands it to the model.
#[test]
fn the_schema_counts_in_the_prompt_bound() {
    let plain = with_format("claude-sonnet-4-5", ResponseFormat::Text);
    let big = json!({"type": "object", "description": "x".repeat(150_000)});
    let schema = with_format("claude-sonnet-4-5", json_schema(big));
    assert!(default_max_tokens(&schema) < default_max_tokens(&plain));
}
