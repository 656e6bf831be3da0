//! Structured output as Anthropic takes it: `output_config.format` with a
//! JSON schema (generally available, no beta header), for the models that
//! have it, the app's schema fitted to the subset Anthropic's constrained
//! decoding accepts.
//!
//! The fitting, node by node:
//! - every object schema (typed `object`, or untyped with `properties`) is
//!   closed with `additionalProperties: false`, which Anthropic requires.
//!   An explicit `additionalProperties: true` is the JSON Schema default
//!   spelt out, fitted the same way: extra keys were allowed, never
//!   required, so the answer still matches the app's schema. A schema-valued
//!   `additionalProperties` (a map: `Dict[str, int]`), `patternProperties`
//!   or a schema-valued `unevaluatedProperties` declares keys the answer
//!   should carry and a closed object cannot: refused, naming the field.
//! - constraints Anthropic refuses (numeric bounds, string lengths and
//!   `pattern`, `minItems` above 1, `maxItems`, `uniqueItems`, formats it
//!   does not know, `not`, …: anything not listed below) are removed and
//!   appended to the node's `description` ("Constraints: minLength 3,
//!   maximum 10."), as Anthropic's SDKs do: the answer keeps the schema's
//!   shape, the model is told the bounds, the app still validates them.
//!   `pattern` goes too: Anthropic takes a regex subset only, and a pattern
//!   outside it is a 400 for the whole request.
//! - kept: `type`, `title`, `description`, `enum`, `const`, `default`,
//!   `required`, `format` (Anthropic's string formats), `minItems` 0 or 1;
//!   walked: `properties`, `items`, `anyOf`, `allOf`, `oneOf` (sent as
//!   `anyOf`, which Anthropic takes), `$defs`/`definitions`; local `$ref`s
//!   (`#/$defs/Name`, `#/definitions/Name`) kept as they are. A recursive
//!   definition (Anthropic has none), another `$ref`, tuple `items` and
//!   other `$` keywords are refused; annotations (`$schema`, `$id`,
//!   `$comment`, `examples`, …) are dropped.
//! - the walk is bounded ([`MAX_DEPTH`] levels, and a [`SchemaBudget`] of
//!   nodes and bytes of paths and notes), as the Gemini codec's is.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::TARGET;
use crate::translate::ir::{ChatRequest, ResponseFormat, Role, Unsupported};
use crate::translate::schema_budget::SchemaBudget;

/// `output_config`: the answer's format.
#[derive(Serialize)]
pub(super) struct OutputConfigOut {
    format: FormatOut,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatOut {
    JsonSchema { schema: Value },
}

/// The IR's field, whichever format the app used (OpenAI's
/// `response_format`, Responses' `text.format`, Gemini's `responseSchema`).
const FIELD: &str = "response_format";

/// Where refusals inside the schema point.
const AT: &str = "response_format.json_schema.schema";

/// `output_config` for the IR's response format: none for text; Anthropic
/// has no schemaless JSON mode (`json_object`), nor structured outputs on
/// older models, nor with an assistant prefill (the last turn the
/// assistant's): refused, naming `response_format`.
pub(super) fn output_config(req: &ChatRequest) -> Result<Option<OutputConfigOut>, Unsupported> {
    let schema = match &req.response_format {
        None | Some(ResponseFormat::Text) => return Ok(None),
        Some(ResponseFormat::JsonObject) => {
            return Err(refused(
                "json_object has no Anthropic counterpart (it takes a JSON schema: use json_schema)",
            ));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => schema,
    };
    if !structured_outputs(&req.model) {
        return Err(refused(&format!(
            "model {} has no structured outputs (Claude Opus 4.5, Sonnet 4.5, Haiku 4.5 and later have them)",
            req.model
        )));
    }
    if req
        .messages
        .last()
        .is_some_and(|m| m.role == Role::Assistant)
    {
        return Err(refused(
            "structured outputs cannot continue an assistant turn (prefill)",
        ));
    }
    Ok(Some(OutputConfigOut {
        format: FormatOut::JsonSchema {
            schema: fit_schema(schema)?,
        },
    }))
}

fn refused(why: &str) -> Unsupported {
    Unsupported {
        field: FIELD.into(),
        message: format!(
            "`{FIELD}` cannot be expressed for an {TARGET} provider: {why}; remove it or route this model to a provider that supports it"
        ),
    }
}

/// Whether Anthropic's `model` takes `output_config.format`: Claude Opus
/// 4.5, Sonnet 4.5, Haiku 4.5 and every later model; not Claude 3.x and
/// older, Sonnet 4, Opus 4 or Opus 4.1. Read from the name's `claude-`
/// (platform decorations around it, `anthropic.…-v1:0` or `…@20250514`,
/// are skipped): `claude-{family}-{major}[-{minor}]` or the older
/// `claude-{major}[-{minor}]-{family}`, a date not being a minor version.
/// A `claude-` name without a version is taken to be newer; a name without
/// `claude-` (an Anthropic-compatible vendor's model) is sent the format,
/// for the vendor to take or refuse.
pub(super) fn structured_outputs(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let Some(at) = m.find("claude-") else {
        return true;
    };
    let name = m[at + "claude-".len()..]
        .split(['@', ':'])
        .next()
        .unwrap_or_default();
    let words: Vec<&str> = name.split('-').collect();
    // A version word: one or two leading digits (`4`, `5`, `2.1`), so a
    // date (`20250514`) is none.
    let number = |w: Option<&&str>| {
        let w = w?;
        let digits = w.bytes().take_while(u8::is_ascii_digit).count();
        (1..=2)
            .contains(&digits)
            .then(|| w[..digits].parse::<u32>().ok())?
    };
    let major_at = if number(words.first()).is_some() {
        0
    } else {
        1
    };
    let Some(major) = number(words.get(major_at)) else {
        return true;
    };
    // `4.5` in one word, or `4-5`.
    let dotted = words
        .get(major_at)
        .and_then(|w| w.split_once('.'))
        .map(|(_, after)| after);
    let minor = match dotted {
        Some(after) => number(Some(&after)),
        None => number(words.get(major_at + 1)),
    }
    .unwrap_or(0);
    (major, minor) >= (4, 5)
}

// ------------------------------------------------------------------ the schema

/// Most levels of nesting walked.
const MAX_DEPTH: usize = 32;

/// Keywords Anthropic takes as they are.
const KEPT: &[&str] = &[
    "type",
    "title",
    "description",
    "enum",
    "const",
    "default",
    "required",
];

/// Annotations: they neither shape nor bound a value.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The string formats Anthropic takes.
const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "uri",
    "ipv4",
    "ipv6",
    "uuid",
];

/// The app's JSON schema as Anthropic takes it (see the module's doc).
pub(super) fn fit_schema(schema: &Value) -> Result<Value, Unsupported> {
    let mut walk = Walk {
        budget: SchemaBudget::new("the response schema and its definitions"),
        owner: None,
        refs: Vec::new(),
    };
    let fitted = walk.node(schema, AT, 0)?;
    walk.check_refs(&fitted)?;
    Ok(fitted)
}

/// One `$ref`: the definition it is in (`None`: outside the root's
/// definitions), the one it names (`$defs/Name`), and where it is.
struct Ref {
    from: Option<String>,
    to: String,
    at: String,
}

struct Walk {
    budget: SchemaBudget,
    /// The root's definition being walked.
    owner: Option<String>,
    refs: Vec<Ref>,
}

impl Walk {
    /// One node and those below it.
    fn node(&mut self, v: &Value, at: &str, depth: usize) -> Result<Value, Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported::new(
                format!("{at} (nested beyond {MAX_DEPTH} levels)"),
                TARGET,
            ));
        }
        self.budget.spend(1, at.len(), at)?;
        let obj = match v {
            Value::Object(o) => o,
            // `true` (anything) and `false` (nothing) are schemas too.
            Value::Bool(_) => return Ok(v.clone()),
            _ => return Err(Unsupported::invalid(at, "expected a schema object")),
        };
        let mut out = Map::new();
        let mut notes = Vec::new();
        for (k, val) in obj {
            // Built only where used (see the Gemini codec's walk).
            let here = || format!("{at}.{k}");
            match k.as_str() {
                "properties" | "$defs" | "definitions" => {
                    let map = val
                        .as_object()
                        .ok_or_else(|| Unsupported::invalid(here(), "expected an object"))?;
                    let defines = depth == 0 && k != "properties";
                    let mut fitted = Map::new();
                    for (name, s) in map {
                        if defines {
                            self.owner = Some(format!("{k}/{name}"));
                        }
                        let s = self.node(s, &format!("{}.{name}", here()), depth + 1)?;
                        fitted.insert(name.clone(), s);
                    }
                    if defines {
                        self.owner = None;
                    }
                    out.insert(k.clone(), Value::Object(fitted));
                }
                // The tuple form (an array of schemas) has no Anthropic spelling.
                "items" if !val.is_array() => {
                    let s = self.node(val, &here(), depth + 1)?;
                    out.insert(k.clone(), s);
                }
                "items" => return Err(Unsupported::new(here(), TARGET)),
                "anyOf" | "oneOf" | "allOf" => {
                    let all = val
                        .as_array()
                        .ok_or_else(|| Unsupported::invalid(here(), "expected an array"))?;
                    let fitted = all
                        .iter()
                        .enumerate()
                        .map(|(j, s)| self.node(s, &format!("{}[{j}]", here()), depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    // One branch of `allOf` is that branch, as `anyOf` says
                    // it (pydantic's and zod's wrapper around a `$ref`, which
                    // Anthropic refuses as `allOf`); several beside a `$ref`
                    // cannot be sent.
                    let key = match (k.as_str(), fitted.len()) {
                        ("allOf", 1) => "anyOf",
                        // Beside a `$ref`, or several objects each closed on
                        // its own (no answer but `{}` would meet them all).
                        ("allOf", _)
                            if fitted.iter().any(|f| f.get("$ref").is_some())
                                || fitted
                                    .iter()
                                    .filter(|f| f.as_object().is_some_and(is_object))
                                    .count()
                                    > 1 =>
                        {
                            return Err(Unsupported::new(here(), TARGET));
                        }
                        ("allOf", _) => "allOf",
                        _ => "anyOf",
                    };
                    // `anyOf` beside `oneOf`: both must hold, one list cannot say so.
                    if out.insert(key.into(), Value::Array(fitted)).is_some() {
                        return Err(Unsupported::new(here(), TARGET));
                    }
                }
                "$ref" => {
                    let Some(to) = val.as_str().and_then(local_definition) else {
                        return Err(Unsupported::new(here(), TARGET));
                    };
                    self.refs.push(Ref {
                        from: self.owner.clone(),
                        to,
                        at: here(),
                    });
                    out.insert(k.clone(), val.clone());
                }
                "additionalProperties" if *val == Value::Bool(false) => {
                    out.insert(k.clone(), val.clone());
                }
                // `true` as if absent: objects are closed below.
                "additionalProperties" | "unevaluatedProperties" if val.is_boolean() => {}
                "additionalProperties" | "unevaluatedProperties" | "patternProperties" => {
                    return Err(Unsupported::new(here(), TARGET));
                }
                "format" if val.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
                    out.insert(k.clone(), val.clone());
                }
                "minItems" if matches!(val.as_u64(), Some(0 | 1)) => {
                    out.insert(k.clone(), val.clone());
                }
                k if KEPT.contains(&k) => {
                    out.insert(k.to_owned(), val.clone());
                }
                k if DROPPED.contains(&k) => {}
                // `$dynamicRef`, `$recursiveRef`, …: references it cannot follow.
                k if k.starts_with('$') => return Err(Unsupported::new(here(), TARGET)),
                _ => notes.push(format!("{k} {val}")),
            }
        }
        if is_object(&out) {
            // Closing an object that names no properties would leave only
            // `{}` as its answer: a free-form object cannot be sent.
            let named = out
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty());
            let closed_by_app = ["additionalProperties", "unevaluatedProperties"]
                .iter()
                .any(|k| obj.get(*k) == Some(&Value::Bool(false)));
            if !named && !closed_by_app {
                return Err(Unsupported::invalid(
                    at,
                    "an object without `properties` (free-form) cannot be expressed for Anthropic's structured outputs, which close every object; name its properties",
                ));
            }
            out.insert("additionalProperties".into(), Value::Bool(false));
        }
        if !notes.is_empty() {
            // In key order, whatever order the app's keys came in.
            notes.sort_unstable();
            let note = format!("Constraints: {}.", notes.join(", "));
            self.budget.spend(0, note.len(), at)?;
            let described = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.trim().is_empty() => format!("{} {note}", d.trim_end()),
                _ => note,
            };
            out.insert("description".into(), Value::String(described));
        }
        Ok(Value::Object(out))
    }

    /// Every `$ref` names a definition of the root, and none is recursive
    /// (Anthropic refuses recursive schemas).
    fn check_refs(&self, root: &Value) -> Result<(), Unsupported> {
        let mut edges: BTreeMap<&str, Vec<&Ref>> = BTreeMap::new();
        for r in &self.refs {
            let (defs, name) = r.to.split_once('/').unwrap_or_default();
            if root.get(defs).and_then(|d| d.get(name)).is_none() {
                return Err(Unsupported::invalid(&r.at, "no such definition"));
            }
            if let Some(from) = &r.from {
                edges.entry(from.as_str()).or_default().push(r);
            }
        }
        // Depth-first, without recursion: 1 on the path, 2 done.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        for start in edges.keys() {
            if state.contains_key(start) {
                continue;
            }
            state.insert(*start, 1);
            let mut path: Vec<(&str, usize)> = vec![(*start, 0)];
            while let Some(&(node, i)) = path.last() {
                let Some(r) = edges.get(node).and_then(|out| out.get(i)) else {
                    state.insert(node, 2);
                    path.pop();
                    continue;
                };
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                match state.get(r.to.as_str()) {
                    Some(1) => {
                        return Err(Unsupported::new(format!("{} (recursive)", r.at), TARGET));
                    }
                    Some(_) => {}
                    None => {
                        state.insert(r.to.as_str(), 1);
                        path.push((r.to.as_str(), 0));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a fitted node describes an object: typed so (alone or among
/// other types), or untyped with `properties`.
fn is_object(node: &Map<String, Value>) -> bool {
    match node.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
        _ => node.contains_key("properties"),
    }
}

/// `$defs/Name` for `#/$defs/Name` (or `#/definitions/Name`, the name's
/// JSON-pointer escapes undone): a definition of the root, the only
/// references followed.
fn local_definition(r: &str) -> Option<String> {
    let (defs, name) = r.strip_prefix("#/")?.split_once('/')?;
    (matches!(defs, "$defs" | "definitions") && !name.is_empty() && !name.contains('/'))
        .then(|| format!("{defs}/{}", name.replace("~1", "/").replace("~0", "~")))
}
