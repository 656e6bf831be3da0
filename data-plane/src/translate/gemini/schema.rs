//! Tool and response schemas: JSON Schema (the IR's) ⇄ Gemini's OpenAPI subset.

use serde_json::{Map, Value, json};

use super::{TARGET, camel};
use crate::translate::ir::Unsupported;
use crate::translate::schema_budget::SchemaBudget;

/// Gemini's OpenAPI-style schema → JSON Schema: lower-case `type`s,
/// `nullable` as a `"null"` type; `propertyOrdering` (output order only) dropped.
pub(super) fn decode_schema(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
    let mut out = Map::new();
    for (k, val) in obj {
        match k.as_str() {
            "nullable" | "propertyOrdering" | "property_ordering" => {}
            "type" => {
                let t = val
                    .as_str()
                    .map(str::to_ascii_lowercase)
                    .map_or_else(|| val.clone(), Value::String);
                out.insert(k.clone(), if nullable { json!([t, "null"]) } else { t });
            }
            "properties" => {
                let props = val.as_object().map(|p| {
                    p.iter()
                        .map(|(n, s)| (n.clone(), decode_schema(s)))
                        .collect()
                });
                out.insert(k.clone(), props.map_or_else(|| val.clone(), Value::Object));
            }
            "items" => {
                out.insert(k.clone(), decode_schema(val));
            }
            "anyOf" | "any_of" => {
                let all = val
                    .as_array()
                    .map(|a| a.iter().map(decode_schema).collect());
                out.insert(
                    "anyOf".into(),
                    all.map_or_else(|| val.clone(), Value::Array),
                );
            }
            _ => {
                out.insert(camel(k), val.clone());
            }
        }
    }
    Value::Object(out)
}

/// Schema keywords Gemini's OpenAPI subset accepts as they are (`format`
/// and `enum` then fitted by [`fit_format_and_enum`]).
const SCHEMA_KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// JSON-Schema keywords Gemini rejects that only annotate or tighten
/// validation; dropped, the shape of the arguments is unchanged.
const SCHEMA_DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "strict",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "uniqueItems",
    "minContains",
    "maxContains",
    "contentEncoding",
    "contentMediaType",
    "dependentRequired",
    "$defs",
    "definitions",
    // JSON keys are always strings: a `propertyNames` schema constrains at
    // most their spelling (Claude Code's TaskCreate/TaskUpdate `metadata`:
    // `{"type": "string"}`, which says nothing at all).
    "propertyNames",
];

/// JSON Schema → Gemini's schema. Kept: [`SCHEMA_KEPT`]. Rewritten: `type`
/// arrays (`["string","null"]` → `STRING` + `nullable`; several types →
/// `anyOf`), `oneOf` → `anyOf`, a string `const` → one-value `enum`, local
/// `$ref`s (`#/$defs/…`, `#/definitions/…`) inlined, `format` and `enum` as
/// Gemini allows them ([`fit_format_and_enum`]). Dropped:
/// [`SCHEMA_DROPPED`]. Anything else (`allOf`, `not`, `if`,
/// `patternProperties`, recursive `$ref`s, …) is refused, naming the keyword.
pub fn encode_schema(schema: &Value, at: &str) -> Result<Value, Unsupported> {
    encode_schema_within(schema, at, &mut tool_schema_budget())
}

/// What inlining `$ref`s for Gemini may produce for one request (see
/// [`SchemaBudget`]).
pub fn tool_schema_budget() -> SchemaBudget {
    SchemaBudget::new("the tool schemas, with their $refs inlined for Gemini,")
}

/// Bytes a JSON value takes, roughly (what cloning it costs).
fn approx_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(approx_size).sum::<usize>() + 2,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() + 3 + approx_size(v))
                .sum::<usize>()
                + 2
        }
        _ => 8,
    }
}

/// [`encode_schema`], charging what it produces to `budget`.
pub fn encode_schema_within(
    schema: &Value,
    at: &str,
    budget: &mut SchemaBudget,
) -> Result<Value, Unsupported> {
    convert_schema(schema, schema, at, 0, budget)
}

/// One node and those below it, `format` and `enum` fitted once the node
/// is whole (its `type` may come after them, or from a `$ref` target).
fn convert_schema(
    v: &Value,
    root: &Value,
    at: &str,
    depth: usize,
    budget: &mut SchemaBudget,
) -> Result<Value, Unsupported> {
    let mut out = convert_node(v, root, at, depth, budget)?;
    if let Value::Object(o) = &mut out {
        fit_format_and_enum(o, at, budget)?;
    }
    Ok(out)
}

/// [`convert_schema`] but for fitting this node's `format` and `enum`.
fn convert_node(
    v: &Value,
    root: &Value,
    at: &str,
    depth: usize,
    budget: &mut SchemaBudget,
) -> Result<Value, Unsupported> {
    if depth > 32 {
        return Err(Unsupported::new(
            format!("{at} (nested or recursive beyond 32 levels)"),
            TARGET,
        ));
    }
    // The path names the node in errors; a long one is charged like kept
    // bytes, or names a million bytes long could be copied per node.
    budget.spend(1, at.len(), at)?;
    let Some(obj) = v.as_object() else {
        // `true` (anything) has no Gemini spelling but an empty schema.
        return match v {
            Value::Bool(true) => Ok(json!({})),
            _ => Err(Unsupported::invalid(at, "expected a schema object")),
        };
    };
    if let Some(r) = obj.get("$ref") {
        let Some(target) = r.as_str().and_then(|r| local_ref(root, r)) else {
            return Err(Unsupported::new(format!("{at}.$ref"), TARGET));
        };
        let mut inlined = convert_schema(target, root, at, depth + 1, budget)?;
        // Siblings of `$ref` (a description, say) refine the target.
        let siblings: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| *k != "$ref")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let (Value::Object(base), Value::Object(extra)) = (
            &mut inlined,
            convert_node(&Value::Object(siblings), root, at, depth + 1, budget)?,
        ) {
            base.extend(extra);
        }
        return Ok(inlined);
    }
    let mut out = Map::new();
    for (k, val) in obj {
        // Built only where used: paths of deep schemas with long names
        // would otherwise be copied for every key.
        let here = || format!("{at}.{k}");
        match k.as_str() {
            "type" => match val {
                Value::String(t) => {
                    out.insert("type".into(), json!(t.to_ascii_uppercase()));
                }
                Value::Array(types) => {
                    let named: Vec<&str> = types
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|t| *t != "null")
                        .collect();
                    if types.len() != named.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    match named.as_slice() {
                        [] => {}
                        [one] => {
                            out.insert("type".into(), json!(one.to_ascii_uppercase()));
                        }
                        many => {
                            let any: Vec<Value> = many
                                .iter()
                                .map(|t| json!({"type": t.to_ascii_uppercase()}))
                                .collect();
                            out.insert("anyOf".into(), Value::Array(any));
                        }
                    }
                }
                _ => {
                    return Err(Unsupported::invalid(
                        here(),
                        "expected a string or an array of strings",
                    ));
                }
            },
            "properties" => {
                let props = val
                    .as_object()
                    .ok_or_else(|| Unsupported::invalid(here(), "expected an object"))?;
                let mut conv = Map::new();
                for (name, s) in props {
                    conv.insert(
                        name.clone(),
                        convert_schema(s, root, &format!("{}.{name}", here()), depth + 1, budget)?,
                    );
                }
                // Gemini answers structured output in `propertyOrdering`'s
                // order, else alphabetically: the app's order is what it
                // wrote (a reasoning field before the answer, say).
                let ordering = (conv.len() > 1 && !obj.contains_key("propertyOrdering"))
                    .then(|| conv.keys().map(|n| json!(n)).collect::<Vec<_>>());
                out.insert(k.clone(), Value::Object(conv));
                if let Some(ordering) = ordering {
                    budget.spend(0, props.keys().map(String::len).sum(), &here())?;
                    out.insert("propertyOrdering".into(), Value::Array(ordering));
                }
            }
            "items" => {
                out.insert(
                    k.clone(),
                    convert_schema(val, root, &here(), depth + 1, budget)?,
                );
            }
            "anyOf" | "oneOf" => {
                let all = val
                    .as_array()
                    .ok_or_else(|| Unsupported::invalid(here(), "expected an array"))?;
                let conv = all
                    .iter()
                    .enumerate()
                    .map(|(j, s)| {
                        convert_schema(s, root, &format!("{}[{j}]", here()), depth + 1, budget)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert("anyOf".into(), Value::Array(conv));
            }
            "const" => match val {
                Value::String(_) => {
                    out.insert("enum".into(), json!([val]));
                }
                _ => return Err(Unsupported::new(here(), TARGET)),
            },
            k if SCHEMA_KEPT.contains(&k) => {
                budget.spend(0, k.len() + approx_size(val), &here())?;
                out.insert(k.to_string(), val.clone());
            }
            k if SCHEMA_DROPPED.contains(&k) => {}
            _ => return Err(Unsupported::new(here(), TARGET)),
        }
    }
    Ok(Value::Object(out))
}

/// Whether Gemini accepts `format` on a node of Gemini type `ty`.
fn format_supported(ty: &str, format: &str) -> bool {
    matches!(
        (ty, format),
        ("STRING", "enum" | "date-time")
            | ("INTEGER", "int32" | "int64")
            | ("NUMBER", "float" | "double")
    )
}

/// Gemini's rules for `format` and `enum`, narrower than JSON Schema's:
/// anything else is a 400 INVALID_ARGUMENT for the whole request
/// ("format: only 'enum' and 'date-time' are supported for STRING type").
/// - `format`: kept where Gemini accepts it ([`format_supported`]), else
///   dropped. Formats only annotate a value (`uri`, `email`, `date`, …):
///   the arguments keep their shape, and Claude Code's WebFetch (`url` is a
///   `uri`) and many MCP tools declare them.
/// - `enum`: Gemini takes string values, on `STRING` nodes only.
///   - On a string node, other values are sent as their JSON text (`1` →
///     `"1"`): nothing but a string can match a string node, so a number
///     listed there can only mean its text (JSON `null`s are dropped: they
///     cannot match either, and `nullable` says null when it may be).
///   - On an untyped node whose values are all strings (or `null`), the
///     node is typed `STRING` (Gemini refuses an enum without it), with
///     `nullable` for a `null` value: the same values, spelt Gemini's way.
///   - Anywhere else (integers, numbers, booleans, several types) the enum
///     is dropped and its values appended to the description. Turning them
///     into strings would make the model send `"2"` where the app's tool
///     checks for `2`; the description keeps the model to the same values,
///     and the app's tool still validates them.
fn fit_format_and_enum(
    out: &mut Map<String, Value>,
    at: &str,
    budget: &mut SchemaBudget,
) -> Result<(), Unsupported> {
    let ty = out.get("type").and_then(Value::as_str).map(str::to_owned);
    let format_kept = match (ty.as_deref(), out.get("format").map(Value::as_str)) {
        (_, None) => true,
        (Some(t), Some(Some(f))) => format_supported(t, f),
        _ => false,
    };
    if !format_kept {
        out.remove("format");
    }
    let values = match out.get("enum") {
        None => return Ok(()),
        Some(Value::Array(values)) => values,
        Some(_) => {
            return Err(Unsupported::invalid(
                format!("{at}.enum"),
                "expected an array",
            ));
        }
    };
    let has_null = values.iter().any(Value::is_null);
    let strings = || -> Vec<Value> {
        values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(_) => v.clone(),
                other => Value::String(other.to_string()),
            })
            .collect()
    };
    let untyped_strings = ty.is_none()
        && !out.contains_key("anyOf")
        && values.iter().all(|v| v.is_string() || v.is_null())
        && values.iter().any(Value::is_string);
    if ty.as_deref() == Some("STRING") || untyped_strings {
        let fitted = strings();
        if fitted.is_empty() {
            out.remove("enum");
        } else {
            out.insert("enum".into(), Value::Array(fitted));
        }
        if untyped_strings {
            out.insert("type".into(), json!("STRING"));
            if has_null {
                out.insert("nullable".into(), json!(true));
            }
        }
        return Ok(());
    }
    let listed: Vec<String> = values.iter().map(Value::to_string).collect();
    let note = format!("Allowed values: {}.", listed.join(", "));
    budget.spend(0, note.len(), at)?;
    out.remove("enum");
    let described = match out.get("description").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() => format!("{} {note}", d.trim_end()),
        _ => note,
    };
    out.insert("description".into(), Value::String(described));
    Ok(())
}

/// The schema a local `$ref` (`#/$defs/Name`, `#/definitions/Name`) points at.
fn local_ref<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let (defs, name) = match r.strip_prefix("#/$defs/") {
        Some(name) => ("$defs", name),
        None => ("definitions", r.strip_prefix("#/definitions/")?),
    };
    root.get(defs)?.get(name)
}
