//! Tool schemas into Gemini's OpenAPI subset: the `format`s and `enum`s it
//! refuses (400 INVALID_ARGUMENT for the whole request) are fitted.

use super::*;

fn gemini(schema: Value) -> Value {
    encode_schema(&schema, "tools[0].parameters").unwrap()
}

/// Claude Code's WebFetch declares `url` with `format: "uri"`; Gemini
/// takes `enum`/`date-time` on strings, `int32`/`int64` on integers,
/// `float`/`double` on numbers, and nothing else.
#[test]
fn unsupported_formats_are_dropped_supported_ones_kept() {
    let web_fetch = json!({
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "The URL to fetch content from"},
            "prompt": {"type": "string"}
        },
        "required": ["url", "prompt"],
        "additionalProperties": false,
        "$schema": "http://json-schema.org/draft-07/schema#"
    });
    assert_eq!(
        gemini(web_fetch),
        json!({"type": "OBJECT", "required": ["url", "prompt"], "properties": {
            "url": {"type": "STRING", "description": "The URL to fetch content from"},
            "prompt": {"type": "STRING"}
        }, "propertyOrdering": ["url", "prompt"]})
    );
    for (ty, format, kept) in [
        ("string", "date-time", true),
        ("string", "enum", true),
        ("string", "date", false),
        ("string", "email", false),
        ("string", "uuid", false),
        ("integer", "int32", true),
        ("integer", "int64", true),
        ("integer", "uint32", false),
        ("number", "float", true),
        ("number", "double", true),
        ("number", "int32", false),
        ("boolean", "int32", false),
        ("array", "date-time", false),
    ] {
        let out = gemini(json!({"type": ty, "format": format}));
        assert_eq!(out.get("format").is_some(), kept, "{ty} {format}: {out}");
    }
    // The type may come after the format, or be nullable.
    assert_eq!(
        gemini(json!({"format": "date-time", "type": ["string", "null"]})),
        json!({"type": "STRING", "nullable": true, "format": "date-time"})
    );
    // Nested, in items and anyOf branches too; untyped nodes keep none.
    assert_eq!(
        gemini(json!({"type": "array", "items": {"anyOf": [
            {"type": "string", "format": "uri"}, {"type": "integer", "format": "int64"}
        ]}})),
        json!({"type": "ARRAY", "items": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER", "format": "int64"}]}})
    );
    assert_eq!(gemini(json!({"format": "date-time"})), json!({}));
    // Beside a `$ref`, judged with the type of its target.
    let with_ref = json!({
        "$defs": {"When": {"type": "string"}, "Level": {"type": "integer"}},
        "type": "object",
        "properties": {
            "w": {"$ref": "#/$defs/When", "format": "date-time"},
            "u": {"$ref": "#/$defs/When", "format": "uri"},
            "l": {"$ref": "#/$defs/Level", "enum": [1, 2]}
        }
    });
    assert_eq!(
        gemini(with_ref)["properties"],
        json!({
            "w": {"type": "STRING", "format": "date-time"},
            "u": {"type": "STRING"},
            "l": {"type": "INTEGER", "description": "Allowed values: 1, 2."}
        })
    );
}

/// Gemini's enums are strings on `STRING` nodes: values of string nodes are
/// sent as text, untyped string enums get their type, and other enums are
/// dropped to the description (a string would not pass the app's check
/// for a number).
#[test]
fn enums_are_strings_on_string_nodes() {
    assert_eq!(
        gemini(json!({"type": "string", "enum": ["a", 1, 2.5, true, null]})),
        json!({"type": "STRING", "enum": ["a", "1", "2.5", "true"]})
    );
    assert_eq!(
        gemini(json!({"type": ["string", "null"], "enum": ["C", "F", null]})),
        json!({"type": "STRING", "nullable": true, "enum": ["C", "F"]})
    );
    assert_eq!(
        gemini(json!({"type": "string", "enum": [null]})),
        json!({"type": "STRING"})
    );
    // No type: typed STRING (Gemini refuses an enum without), a null
    // member as `nullable`; a string `const` likewise.
    assert_eq!(
        gemini(json!({"enum": ["fast", "slow", null]})),
        json!({"type": "STRING", "enum": ["fast", "slow"], "nullable": true})
    );
    assert_eq!(
        gemini(json!({"const": "only"})),
        json!({"type": "STRING", "enum": ["only"]})
    );
    // Numbers stay numbers: the values move to the description.
    assert_eq!(
        gemini(json!({"type": "integer", "enum": [1, 2, 3], "description": "Level."})),
        json!({"type": "INTEGER", "description": "Level. Allowed values: 1, 2, 3."})
    );
    assert_eq!(
        gemini(json!({"type": "boolean", "enum": [true]})),
        json!({"type": "BOOLEAN", "description": "Allowed values: true."})
    );
    assert_eq!(
        gemini(json!({"enum": ["a", 1]})),
        json!({"description": "Allowed values: \"a\", 1."})
    );
    assert_eq!(
        gemini(json!({"type": ["string", "integer"], "enum": ["a", 1]}))["description"],
        "Allowed values: \"a\", 1."
    );
    // Not an enum at all.
    assert_eq!(
        encode_schema(&json!({"type": "string", "enum": "a"}), "p")
            .unwrap_err()
            .field,
        "p.enum"
    );
}

/// Through a whole request: an OpenAI tool with a `uri` and a numeric enum.
#[test]
fn openai_tools_reach_gemini_without_what_it_refuses() {
    let body = json!({
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": "fetch"}],
        "tools": [{"type": "function", "function": {"name": "fetch", "parameters": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "retries": {"type": "integer", "enum": [0, 1, 2]},
                "mode": {"type": "string", "enum": ["a", "b"]}
            }
        }}}]
    });
    let req = openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    let g = encode_request(&req).unwrap();
    assert_eq!(
        g["tools"][0]["functionDeclarations"][0]["parameters"]["properties"],
        json!({
            "url": {"type": "STRING"},
            "retries": {"type": "INTEGER", "description": "Allowed values: 0, 1, 2."},
            "mode": {"type": "STRING", "enum": ["a", "b"]}
        })
    );
}
