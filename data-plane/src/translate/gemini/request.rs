//! Gemini request bodies → IR requests (and back, in `contents`).

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::camel;
use super::schema::decode_schema;
use crate::translate::ir::{
    self, ChatRequest, Drops, Image, Message, Named, Part, ResponseFormat, Role, Thinking,
    ThinkingAmount, Tool, ToolChoice, Unsupported,
};
use crate::translate::policy::Policy;
use crate::translate::wire::{self, Extra};

#[cfg(test)]
pub(super) use super::contents::needs_signature;
pub(super) use super::contents::request_body;

/// Request fields that carry no content: dropped when translating, on every
/// route. Google's own safety thresholds (the target provider applies its
/// policy) and Vertex billing labels.
const ADVISORY: &[&str] = &["safetySettings", "labels"];

/// What a Gemini request may lose in translation (by JSON name).
const POLICY: Policy = Policy {
    hints: &[],
    advisory: &[ADVISORY],
};

/// Keys of a part that accompany its data without being content.
const PART_ANNOTATIONS: &[&str] = &["thought", "thoughtSignature", "partMetadata"];

// ------------------------------------------------------------------ the wire, as apps send it
// JSON names, with the proto names the API also accepts as aliases.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    contents: Option<Vec<ContentIn>>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<SystemIn>,
    tools: Option<Vec<ToolIn>>,
    #[serde(alias = "tool_config")]
    tool_config: Option<ToolConfigIn>,
    #[serde(alias = "generation_config")]
    generation_config: Option<GenerationConfigIn>,
    /// The URL already names it.
    #[allow(dead_code)]
    model: Option<IgnoredAny>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a content")]
enum SystemIn {
    Text(String),
    Content { parts: Option<Vec<TextPartIn>> },
}

#[derive(Deserialize)]
struct TextPartIn {
    text: Option<String>,
}

#[derive(Deserialize)]
struct ContentIn {
    role: Option<String>,
    parts: Option<Vec<PartIn>>,
}

/// A part: exactly one kind of data, and annotations.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartIn {
    text: Option<String>,
    #[serde(alias = "inline_data")]
    inline_data: Option<BlobIn>,
    #[serde(alias = "file_data")]
    file_data: Option<FileIn>,
    #[serde(alias = "function_call")]
    function_call: Option<CallIn>,
    #[serde(alias = "function_response")]
    function_response: Option<CallResultIn>,
    thought: Option<Value>,
    /// Other data (`executableCode`…), and annotations of the part.
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlobIn {
    #[serde(alias = "mime_type")]
    mime_type: Option<String>,
    data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileIn {
    #[serde(alias = "mime_type")]
    mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    file_uri: Option<String>,
}

/// A `functionCall`, in requests and answers.
#[derive(Deserialize)]
pub(super) struct CallIn {
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: Option<Value>,
}

#[derive(Deserialize)]
struct CallResultIn {
    id: Option<String>,
    name: Option<String>,
    response: Option<Value>,
    /// Gemini 3's multimodal function results (Gemini CLI puts a tool's
    /// images here for such models): kept with the result.
    #[serde(default)]
    parts: Vec<CallResultPartIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallResultPartIn {
    #[serde(alias = "inline_data")]
    inline_data: Option<BlobIn>,
    #[serde(alias = "file_data")]
    file_data: Option<FileIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolIn {
    #[serde(alias = "function_declarations")]
    function_declarations: Option<Vec<DeclarationIn>>,
    /// Tools Google runs itself.
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeclarationIn {
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
    #[serde(alias = "parameters_json_schema")]
    parameters_json_schema: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfigIn {
    #[serde(alias = "function_calling_config")]
    function_calling_config: Option<FunctionCallingIn>,
    #[serde(flatten)]
    extra: Extra,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingIn {
    mode: Option<String>,
    #[serde(alias = "allowed_function_names")]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfigIn {
    #[serde(default, alias = "max_output_tokens", deserialize_with = "int")]
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    #[serde(alias = "top_p")]
    top_p: Option<f64>,
    #[serde(default, alias = "top_k", deserialize_with = "int")]
    top_k: Option<u64>,
    #[serde(alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(alias = "response_schema")]
    response_schema: Option<Value>,
    #[serde(alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    /// Defaults spelled out, hints, or what cannot be translated (seed,
    /// penalties, logprobs, speech, media…).
    #[serde(flatten)]
    extra: Extra,
}

/// Gemini's int32 fields sometimes arrive as `40.0` from loosely typed clients.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    wire::whole_number(&v)
        .filter(|n| v.is_u64() || *n <= u64::from(u32::MAX))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("expected a non-negative integer"))
}

/// A path as the API names it: `generation_config.top_k` → `generationConfig.topK`.
fn json_path(path: &str) -> String {
    camel(path)
}

// ------------------------------------------------------------------ decode

/// `model` and `stream` come from the URL (`models/{model}:streamGenerateContent`).
pub fn decode_request(body: &[u8], model: &str, stream: bool) -> Result<ChatRequest, Unsupported> {
    let b: RequestIn = wire::parse_named(body, "body", json_path)?;
    let mut req = ChatRequest {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        stream,
        ..Default::default()
    };
    if let Some(s) = b.system_instruction {
        req.system = decode_system(s)?;
    }
    if let Some(contents) = b.contents {
        decode_contents(contents, &mut req)?;
    }
    if let Some(tools) = b.tools {
        req.tools = decode_tools(tools, &mut req.dropped)?;
    }
    if let Some(gc) = b.generation_config {
        decode_generation_config(gc, &mut req)?;
    }
    for (k, _) in b.extra.iter().filter(|(_, v)| !v.is_null()) {
        POLICY.field(&camel(k), &mut req.dropped)?;
    }
    // Read once the tools are known (ANY over all of them = Required).
    if let Some(tc) = b.tool_config {
        req.tool_choice = decode_tool_config(tc, &req.tools)?;
    }
    req.checked("the path names no model")
}

fn decode_system(s: SystemIn) -> Result<Vec<String>, Unsupported> {
    let parts = match s {
        SystemIn::Text(s) => return Ok(vec![s]),
        SystemIn::Content { parts } => parts.unwrap_or_default(),
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.text.ok_or_else(|| {
                Unsupported::new(
                    format!("systemInstruction.parts[{i}] (non-text)"),
                    "translated",
                )
            })
        })
        .collect()
}

fn decode_contents(contents: Vec<ContentIn>, req: &mut ChatRequest) -> Result<(), Unsupported> {
    let mut calls = Calls::default();
    for (i, c) in contents.into_iter().enumerate() {
        let at = format!("contents[{i}]");
        let role = match c.role.as_deref() {
            // A single-turn request may leave the role out.
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(Unsupported::invalid(
                    format!("{at}.role"),
                    format!("expected user or model, got {other:?}"),
                ));
            }
        };
        if role == Role::Assistant {
            // A new model turn: calls left unanswered before it stay so.
            calls.pending.clear();
        }
        let mut content = Vec::new();
        for (j, p) in c.parts.into_iter().flatten().enumerate() {
            if let Some(part) = decode_part(p, role, &format!("{at}.parts[{j}]"), &mut calls)? {
                content.push(part);
            }
        }
        req.messages.push(Message { role, content });
    }
    Ok(())
}

/// Function calls seen so far in a request: the count names synthesized ids,
/// `pending` pairs responses with calls by name, `ids` are every call's.
#[derive(Default)]
struct Calls {
    count: usize,
    pending: Vec<(String, String)>,
    ids: std::collections::HashSet<String>,
}

impl Calls {
    /// The id of the first unanswered call named `name` in the turn before.
    fn pending_named(&self, name: &str) -> Option<String> {
        self.pending
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id.clone())
    }

    /// The call a `functionResponse` named `name` answers. Its id, when it
    /// is a call's; an id no call has is the app's own making (Gemini CLI
    /// names an id-less call `name-timestamp-random`, and sends that back,
    /// where the call itself was given `call_N` here): it answers the
    /// pending call of its name, as a response without id does, or the
    /// target refuses a result for no call (Anthropic: 400 "unexpected
    /// `tool_use_id`"). An unknown id with no such call stays as it is.
    fn answered(&self, id: Option<String>, name: &str) -> Option<String> {
        match id.filter(|id| !id.is_empty()) {
            Some(id) if self.ids.contains(&id) => Some(id),
            Some(id) => Some(self.pending_named(name).unwrap_or(id)),
            None => self.pending_named(name),
        }
    }
}

fn decode_part(
    p: PartIn,
    role: Role,
    at: &str,
    calls: &mut Calls,
) -> Result<Option<Part>, Unsupported> {
    let other_data: Vec<&String> = p
        .extra
        .iter()
        .filter(|(k, v)| !v.is_null() && !PART_ANNOTATIONS.contains(&camel(k).as_str()))
        .map(|(k, _)| k)
        .collect();
    let modelled = [
        p.text.is_some(),
        p.inline_data.is_some(),
        p.file_data.is_some(),
        p.function_call.is_some(),
        p.function_response.is_some(),
    ];
    if modelled.iter().filter(|x| **x).count() + other_data.len() != 1 {
        return Err(Unsupported::invalid(
            at,
            "a part holds exactly one of text, inlineData, fileData, functionCall, functionResponse",
        ));
    }
    if let Some(k) = other_data.first() {
        return Err(Unsupported::new(format!("{at}.{}", camel(k)), "translated"));
    }
    if let Some(t) = p.text {
        // A replayed thought summary is the model's reasoning, not the conversation.
        let thought = p.thought.and_then(|t| t.as_bool()) == Some(true);
        return Ok((!thought).then_some(Part::Text(t)));
    }
    if let Some(blob) = p.inline_data {
        return blob_image(blob, &format!("{at}.inlineData")).map(Some);
    }
    if let Some(file) = p.file_data {
        return file_image(file, &format!("{at}.fileData")).map(Some);
    }
    if let Some(fc) = p.function_call {
        let here = format!("{at}.functionCall");
        if role != Role::Assistant {
            return Err(Unsupported::invalid(
                here,
                "only a model turn can call a function",
            ));
        }
        let name = required(fc.name, &here, "name")?;
        let id = match fc.id {
            Some(id) if !id.is_empty() => id,
            _ => format!("call_{}", calls.count),
        };
        calls.count += 1;
        calls.ids.insert(id.clone());
        calls.pending.push((id.clone(), name.clone()));
        return Ok(Some(Part::ToolCall {
            id,
            name,
            arguments: wire::arguments_text(fc.args.as_ref()),
        }));
    }
    let Some(fr) = p.function_response else {
        return Ok(None);
    };
    let here = format!("{at}.functionResponse");
    if role != Role::User {
        return Err(Unsupported::invalid(
            here,
            "only a user turn can answer a function call",
        ));
    }
    let name = required(fr.name, &here, "name")?;
    let id = calls.answered(fr.id, &name).ok_or_else(|| {
        Unsupported::invalid(
            here.clone(),
            format!("no earlier functionCall named {name:?} to answer"),
        )
    })?;
    calls.pending.retain(|(p, _)| *p != id);
    let (mut content, is_error) = result_from(fr.response.as_ref().unwrap_or(&Value::Null));
    for (j, part) in fr.parts.into_iter().enumerate() {
        let at = format!("{here}.parts[{j}]");
        content.push(match (part.inline_data, part.file_data) {
            (Some(blob), None) => blob_image(blob, &format!("{at}.inlineData"))?,
            (None, Some(file)) => file_image(file, &format!("{at}.fileData"))?,
            _ => {
                return Err(Unsupported::invalid(
                    at,
                    "a function result's part holds exactly one of inlineData, fileData",
                ));
            }
        });
    }
    Ok(Some(Part::ToolResult {
        id,
        name: Some(name),
        content,
        is_error,
    }))
}

/// An `inlineData` image (`here` names it); other media are refused.
fn blob_image(blob: BlobIn, here: &str) -> Result<Part, Unsupported> {
    let mime = required(blob.mime_type, here, "mimeType")?;
    if !mime.starts_with("image/") {
        return Err(Unsupported::new(
            format!("{here}.mimeType ({mime})"),
            "translated",
        ));
    }
    Ok(Part::Image(Image::Base64 {
        media_type: mime,
        data: standard_base64(required(blob.data, here, "data")?),
    }))
}

/// `inlineData.data` in standard base64 (`+`, `/`, padded), as OpenAI's
/// `data:` URLs and Anthropic's `source.data` require. Gemini also takes
/// the URL-safe alphabet (`-`, `_`) without padding, which the Python
/// google-genai SDK sends for every `Part.from_bytes`; Gemini itself takes
/// the standard form just as well.
fn standard_base64(data: String) -> String {
    let urlsafe = data.contains(['-', '_']);
    let missing = match data.len() % 4 {
        2 => 2,
        3 => 1,
        _ => 0,
    };
    if !urlsafe && missing == 0 {
        return data;
    }
    let mut out: String = data
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    // Only where the data is not already padded (`=` ends a padded one).
    if !out.ends_with('=') {
        out.extend(std::iter::repeat_n('=', missing));
    }
    out
}

/// A `fileData` image, by its URI (`here` names it); other media are
/// refused.
fn file_image(file: FileIn, here: &str) -> Result<Part, Unsupported> {
    if let Some(m) = file.mime_type.filter(|m| !m.starts_with("image/")) {
        return Err(Unsupported::new(
            format!("{here}.mimeType ({m})"),
            "translated",
        ));
    }
    Ok(Part::Image(Image::Url(required(
        file.file_uri,
        here,
        "fileUri",
    )?)))
}

/// A required string field of the object at `at`.
fn required(v: Option<String>, at: &str, key: &str) -> Result<String, Unsupported> {
    v.ok_or_else(|| Unsupported::invalid(format!("{at}.{key}"), "expected a string"))
}

/// `response` → result text: the `output` (or `error`) string alone when that
/// is all there is, else the whole object as JSON.
fn result_from(resp: &Value) -> (Vec<Part>, bool) {
    let is_error = resp.get("error").is_some_and(|e| !e.is_null());
    let text = match resp.as_object() {
        None if resp.is_null() => return (vec![], false),
        Some(o) if o.len() == 1 => match o.iter().next() {
            Some((k, Value::String(s))) if k == "output" || k == "error" => s.clone(),
            _ => resp.to_string(),
        },
        _ => resp.to_string(),
    };
    (vec![Part::Text(text)], is_error)
}

/// Function declarations. Tools Google runs itself (`googleSearch`,
/// `codeExecution`, `urlContext`, …) have no equivalent at another provider:
/// they are dropped as hints, and the target's model is offered the app's
/// own functions.
fn decode_tools(tools: Vec<ToolIn>, drops: &mut Drops) -> Result<Vec<Tool>, Unsupported> {
    let mut out = Vec::new();
    for (i, t) in tools.into_iter().enumerate() {
        for k in t.extra.keys() {
            drops.hint(&format!("tools[{i}].{}", camel(k)));
        }
        for (j, d) in t.function_declarations.into_iter().flatten().enumerate() {
            out.push(decode_declaration(
                d,
                &format!("tools[{i}].functionDeclarations[{j}]"),
                drops,
            )?);
        }
    }
    Ok(out)
}

/// What a declaration may say of its function beyond how it is called: the
/// shape of its result (`response`, `responseJsonSchema`: google-genai
/// derives one from every typed function's return annotation) and whether
/// the Live API waits for it (`behavior`). None changes what the model is
/// asked, so each is dropped as a hint; anything else unknown is refused.
const DECLARATION_HINTS: [&str; 3] = ["response", "responseJsonSchema", "behavior"];

fn decode_declaration(d: DeclarationIn, at: &str, drops: &mut Drops) -> Result<Tool, Unsupported> {
    for (k, _) in d.extra.iter().filter(|(_, v)| !v.is_null()) {
        let key = camel(k);
        if !DECLARATION_HINTS.contains(&key.as_str()) {
            return Err(Unsupported::new(format!("{at}.{key}"), "translated"));
        }
        drops.hint(&format!("{at}.{key}"));
    }
    let name = d
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Unsupported::invalid(format!("{at}.name"), "missing"))?;
    let (parameters, key) = match (d.parameters_json_schema, d.parameters) {
        (Some(s), _) => (s, "parametersJsonSchema"),
        (None, Some(p)) => (decode_schema(&p), "parameters"),
        (None, None) => (ir::no_arguments(), "parameters"),
    };
    Ok(Tool {
        name,
        description: d.description,
        parameters,
        strict: None,
        schema_field: format!("{at}.{key}"),
    })
}

fn decode_generation_config(
    gc: GenerationConfigIn,
    req: &mut ChatRequest,
) -> Result<(), Unsupported> {
    req.max_tokens = gc.max_output_tokens;
    req.temperature = gc.temperature;
    req.top_p = gc.top_p;
    req.top_k = gc.top_k;
    req.stop = gc.stop_sequences.unwrap_or_default();
    req.stop_field = "generationConfig.stopSequences";
    for (k, v) in &gc.extra {
        let name = camel(k);
        let at = format!("generationConfig.{name}");
        match name.as_str() {
            _ if v.is_null() => {}
            "candidateCount" if v.as_u64() == Some(1) => {}
            // Defaults spelled out: nothing asked.
            "responseLogprobs" | "audioTimestamp" | "enableEnhancedCivicAnswers"
                if v == &Value::Bool(false) => {}
            // How finely images are read: a hint the target sets itself.
            "mediaResolution" => req.dropped.hint(&at),
            "responseModalities" if v.as_array().is_some_and(|m| m.iter().all(|x| x == "TEXT")) => {
            }
            "thinkingConfig" => req.thinking = decode_thinking(v, &mut req.dropped),
            "seed" => {
                let value = v
                    .as_i64()
                    .ok_or_else(|| Unsupported::invalid(at, "expected an integer"))?;
                req.seed = Some(Named {
                    field: "generationConfig.seed",
                    value,
                });
            }
            "presencePenalty" | "frequencyPenalty" => {
                let value = v
                    .as_f64()
                    .ok_or_else(|| Unsupported::invalid(&at, "expected a number"))?;
                let (field, slot) = if name == "presencePenalty" {
                    (
                        "generationConfig.presencePenalty",
                        &mut req.presence_penalty,
                    )
                } else {
                    (
                        "generationConfig.frequencyPenalty",
                        &mut req.frequency_penalty,
                    )
                };
                // 0 is the default: nothing to say.
                *slot = (value != 0.0).then_some(Named { field, value });
            }
            _ => return Err(Unsupported::new(at, "translated")),
        }
    }
    let schema = match (gc.response_schema, gc.response_json_schema) {
        (Some(s), _) => Some(decode_schema(&s)),
        (None, s) => s,
    };
    req.response_format = match (gc.response_mime_type.as_deref(), schema) {
        (None, None) => None,
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        // Gemini constrains decoding to the schema, but `strict` would make
        // OpenAI refuse any schema outside its strict subset.
        (Some("application/json"), Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema,
            strict: false,
        }),
        (None, Some(_)) => {
            return Err(Unsupported::invalid(
                "generationConfig.responseSchema",
                "requires responseMimeType application/json",
            ));
        }
        // text/x.enum and friends.
        (Some(_), _) => {
            return Err(Unsupported::new(
                "generationConfig.responseMimeType",
                "translated",
            ));
        }
    };
    Ok(())
}

/// How long the model deliberates: a budget of tokens (0: none) is kept,
/// for the targets that take one (Anthropic's `thinking`). The rest is a
/// hint, dropped and named as ever: the model deciding (`-1`), a
/// `thinkingLevel`, thought summaries (`includeThoughts`: thought parts are
/// private state no other provider returns).
fn decode_thinking(v: &Value, drops: &mut Drops) -> Option<Thinking> {
    const FIELD: &str = "generationConfig.thinkingConfig";
    let mut budget = None;
    let mut lost = !v.is_object();
    for (k, v) in v.as_object().into_iter().flatten() {
        match camel(k).as_str() {
            _ if v.is_null() => {}
            "thinkingBudget" => match wire::whole_number(v) {
                Some(b) => budget = Some(b),
                None => lost = true,
            },
            "includeThoughts" if v.as_bool() == Some(false) => {}
            _ => lost = true,
        }
    }
    if lost {
        drops.hint(FIELD);
    }
    budget.map(|b| Thinking {
        field: FIELD,
        amount: ThinkingAmount::Budget(b),
    })
}

fn decode_tool_config(tc: ToolConfigIn, tools: &[Tool]) -> Result<Option<ToolChoice>, Unsupported> {
    const AT: &str = "toolConfig.functionCallingConfig";
    if let Some((k, _)) = tc.extra.iter().find(|(_, v)| !v.is_null()) {
        return Err(Unsupported::new(
            format!("toolConfig.{}", camel(k)),
            "translated",
        ));
    }
    let Some(fcc) = tc.function_calling_config else {
        return Ok(None);
    };
    let allowed = fcc.allowed_function_names.unwrap_or_default();
    let refuse_subset = || Unsupported::new(format!("{AT}.allowedFunctionNames"), "translated");
    Ok(Some(match fcc.mode.as_deref() {
        None | Some("AUTO" | "MODE_UNSPECIFIED") if allowed.is_empty() => ToolChoice::Auto,
        Some("NONE") => ToolChoice::None,
        Some("ANY") => match allowed.as_slice() {
            [] => ToolChoice::Required,
            [one] => ToolChoice::Tool(one.clone()),
            many if tools.iter().all(|t| many.contains(&t.name)) => ToolChoice::Required,
            // A subset of the tools: the IR names one tool or all.
            _ => return Err(refuse_subset()),
        },
        None | Some("AUTO" | "MODE_UNSPECIFIED") => return Err(refuse_subset()),
        Some("VALIDATED") => return Err(Unsupported::new(format!("{AT}.mode"), "translated")),
        Some(other) => {
            return Err(Unsupported::invalid(
                format!("{AT}.mode"),
                format!("unknown mode {other:?}"),
            ));
        }
    }))
}
