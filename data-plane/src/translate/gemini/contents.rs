//! IR requests → Gemini request bodies, and the parts answers are made of.

use serde::Serialize;
use serde_json::Value;

use super::TARGET;
use super::schema::{encode_schema_within, tool_schema_budget};
use crate::translate::ir::{
    self, ChatRequest, Effort, Image, Part, ResponseFormat, Role, ThinkingAmount, ToolChoice,
    Unsupported,
};
use crate::translate::wire::{self, Body};

/// Google's documented stand-in for a thought signature the history lacks.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestOut<'a> {
    contents: Vec<ContentOut<'a>>,
    system_instruction: Option<SystemOut<'a>>,
    tools: Option<[ToolsOut<'a>; 1]>,
    tool_config: Option<ToolConfigOut<'a>>,
    generation_config: Option<GenerationConfigOut<'a>>,
}

/// A content: a turn, in requests and answers.
#[derive(Serialize)]
pub(super) struct ContentOut<'a> {
    pub parts: Vec<PartOut<'a>>,
    pub role: &'static str,
}

/// A part: one kind of data (the field set says which), and a thought
/// signature beside a function call.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PartOut<'a> {
    pub text: Option<&'a str>,
    inline_data: Option<BlobOut<'a>>,
    file_data: Option<FileOut<'a>>,
    pub function_call: Option<CallOut<'a>>,
    function_response: Option<CallResultOut<'a>>,
    thought_signature: Option<&'static str>,
}

impl<'a> PartOut<'a> {
    pub fn text(text: &'a str) -> Self {
        Self {
            text: Some(text),
            ..Default::default()
        }
    }

    /// A call; an upstream's malformed arguments cannot be an `args` object,
    /// so they are `{}` in an answer.
    pub fn call(id: &'a str, name: &'a str, args: Value) -> Self {
        Self {
            function_call: Some(CallOut { id, name, args }),
            ..Default::default()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlobOut<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileOut<'a> {
    /// Unsaid when the URL does not say it (see [`image_mime`]).
    mime_type: Option<&'static str>,
    file_uri: &'a str,
}

#[derive(Serialize)]
pub(super) struct CallOut<'a> {
    id: &'a str,
    name: &'a str,
    args: Value,
}

#[derive(Serialize)]
struct CallResultOut<'a> {
    id: &'a str,
    name: &'a str,
    response: Value,
}

#[derive(Serialize)]
struct SystemOut<'a> {
    parts: Vec<PartOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolsOut<'a> {
    function_declarations: Vec<DeclarationOut<'a>>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct DeclarationOut<'a> {
    name: &'a str,
    description: Option<&'a str>,
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfigOut<'a> {
    function_calling_config: FunctionCallingOut<'a>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingOut<'a> {
    mode: &'static str,
    allowed_function_names: Option<[&'a str; 1]>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfigOut<'a> {
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    response_mime_type: Option<&'static str>,
    response_schema: Option<Value>,
    thinking_config: Option<ThinkingConfigOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfigOut {
    thinking_budget: u64,
}

impl GenerationConfigOut<'_> {
    fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.stop_sequences.is_empty()
            && self.response_mime_type.is_none()
            && self.thinking_config.is_none()
    }
}

/// Most stop sequences Gemini takes (400 beyond).
const MAX_STOP_SEQUENCES: usize = 5;

/// Output limits of Gemini models, by exact model id (matched from the
/// name's `gemini-`; the id may add a version, `-001`, or `-latest`: see
/// [`max_output_tokens`]), from Google's model pages. Not by family prefix:
/// a newer model of a family may give more, and a cap lowered to the
/// family's would cut its answers short unsaid. A model not listed (a
/// preview, an experiment, a version-less alias) is sent the app's cap as
/// it is.
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("gemini-3.1-pro-preview", 65_536),
    ("gemini-3-pro-preview", 65_536),
    ("gemini-2.5-pro", 65_536),
    ("gemini-2.5-flash", 65_536),
    ("gemini-2.5-flash-lite", 65_536),
    ("gemini-2.0-flash", 8_192),
    ("gemini-2.0-flash-lite", 8_192),
    ("gemini-1.5-pro", 8_192),
    ("gemini-1.5-flash", 8_192),
    ("gemini-1.5-flash-8b", 8_192),
];

/// The most output tokens Gemini's `model` gives, if known exactly: its id
/// in [`MAX_OUTPUT`], or that id with a version (`-001`) or `-latest` after
/// it.
fn max_output_tokens(model: &str) -> Option<u64> {
    let m = model.to_ascii_lowercase();
    let at = m.find("gemini-")?;
    let mut name = &m[at..];
    loop {
        if let Some((_, max)) = MAX_OUTPUT.iter().find(|(id, _)| *id == name) {
            return Some(*max);
        }
        name = match name.strip_suffix("-latest") {
            Some(head) => head,
            None => {
                let (head, word) = name.rsplit_once('-')?;
                let version = word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit());
                version.then_some(head)?
            }
        };
    }
}

/// What the thinking budget of a Gemini model may be.
struct BudgetRange {
    /// 0 (no thinking) is taken: 2.5 Flash and Flash-Lite; 2.5 Pro and
    /// later Pro models think whatever they are told (400 "Budget 0 is
    /// invalid. This model only works in thinking mode").
    off: bool,
    /// The least budget above 0 (Flash-Lite 512, Pro 128; 128 for the
    /// others, as the least a model that always thinks may take).
    min: u64,
    /// The most (Pro 32,768, Flash and Flash-Lite 24,576).
    max: u64,
}

impl BudgetRange {
    /// The range of `model`, if it thinks at all (2.5 and later, and the
    /// version-less aliases such as `gemini-flash-latest`; 2.0 and 1.5
    /// models refuse a thinking config).
    fn of(model: &str) -> Option<Self> {
        let (_, rest) = model.split_once("gemini-")?;
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().ok());
        let thinks = match (numbers.next().flatten(), numbers.next().flatten()) {
            (None, _) => true,
            (Some(major), minor) => major >= 3 || (major == 2 && minor.is_some_and(|m| m >= 5)),
        };
        if !thinks {
            return None;
        }
        let flash = rest.contains("flash");
        Some(Self {
            off: rest.starts_with("2.5-flash"),
            min: if rest.contains("flash-lite") {
                512
            } else {
                128
            },
            max: if flash { 24_576 } else { 32_768 },
        })
    }

    /// The budget closest to `budget` that the model takes; 0 (none) is
    /// the least it takes where it cannot be off.
    fn fit(&self, budget: u64) -> u64 {
        if budget == 0 && self.off {
            return 0;
        }
        budget.clamp(self.min, self.max)
    }
}

/// The budgets OpenAI's efforts stand for: low, medium and high as Google
/// documents its own levels' budgets.
fn effort_budget(effort: Effort) -> u64 {
    match effort {
        Effort::Off | Effort::Minimal => 0,
        Effort::Low => 1_024,
        Effort::Medium => 8_192,
        Effort::High => 24_576,
    }
}

/// The app's thinking (a budget, or OpenAI's effort) as `thinkingConfig`,
/// fitted to the model ([`BudgetRange`]); left out for a model that does
/// not think, named as a hint.
fn thinking_config(req: &mut ChatRequest) -> Option<ThinkingConfigOut> {
    let t = req.thinking.take()?;
    let Some(range) = BudgetRange::of(&req.model) else {
        req.dropped.hint(t.field);
        return None;
    };
    let mut budget = match t.amount {
        ThinkingAmount::Budget(b) => b,
        ThinkingAmount::Effort(e) => effort_budget(e),
    };
    // Thinking is counted in `maxOutputTokens`: a budget that fills the cap
    // leaves no room for the answer (`reasoning_effort: high`, 24,576, with
    // a cap of 2,000, say). Half the cap is left for thinking then.
    if let Some(cap) = req.max_tokens
        && budget >= cap
    {
        budget = cap / 2;
    }
    Some(ThinkingConfigOut {
        thinking_budget: range.fit(budget),
    })
}

/// IR → a Gemini body (as JSON, for tests and tools; the codec's
/// `encode_request` also records what it leaves out).
pub fn encode_request(req: &ChatRequest) -> Result<Value, Unsupported> {
    let mut req = req.clone();
    request_body(&mut req).map(|b| b.to_json())
}

/// IR → the body sent upstream (after [`thinking_config`], which records in
/// `req.dropped` what it leaves out).
pub(super) fn request_body(req: &mut ChatRequest) -> Result<RequestOut<'_>, Unsupported> {
    req.check_stop_count(MAX_STOP_SEQUENCES, TARGET)?;
    // Gemini caches prefixes by itself (implicit caching): breakpoints
    // carry nothing for it.
    if !req.cache.is_empty() {
        req.dropped
            .advisory("messages[*].content[*].cache_control");
    }
    // A cap above the model's output limit is refused (400, "the supported
    // range is from 1 (inclusive) to 65537 (exclusive)"): the app asked for
    // at most that many, and the model gives no more. Lowered only for a
    // model known exactly (`MAX_OUTPUT`); any other gets the app's cap.
    if let (Some(asked), Some(most)) = (req.max_tokens, max_output_tokens(&req.model)) {
        req.max_tokens = Some(asked.min(most));
    }
    // Gemini's seed is an int32 (a larger one is a 400 there).
    if let Some(seed) = req.seed
        && i32::try_from(seed.value).is_err()
    {
        return Err(Unsupported::invalid(
            seed.field,
            "a Gemini provider takes a seed of 32 bits (-2147483648 to 2147483647)",
        ));
    }
    // Gemini has no strict function calling: a hint.
    if req.tools.iter().any(|t| t.strict == Some(true)) {
        req.dropped.hint("tools[*].strict");
    }
    let thinking_config = thinking_config(req);
    req.fit_call_arguments();
    let req: &ChatRequest = req;
    // One budget for every schema of the request ($ref inlining).
    let mut budget = tool_schema_budget();
    let system_instruction = (!req.system.is_empty()).then(|| SystemOut {
        parts: req.system.iter().map(|s| PartOut::text(s)).collect(),
    });
    let tools = if req.tools.is_empty() {
        None
    } else {
        let decls = req
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // Gemini refuses an OBJECT without properties: no arguments
                // is said by leaving `parameters` out.
                let no_args = t.parameters.is_null()
                    || (t.parameters.get("type").is_some_and(|ty| ty == "object")
                        && t.parameters
                            .get("properties")
                            .and_then(Value::as_object)
                            .is_none_or(serde_json::Map::is_empty));
                let parameters = if no_args {
                    None
                } else {
                    let at = if t.schema_field.is_empty() {
                        format!("tools[{i}].parameters")
                    } else {
                        t.schema_field.clone()
                    };
                    Some(encode_schema_within(&t.parameters, &at, &mut budget)?)
                };
                Ok(DeclarationOut {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters,
                })
            })
            .collect::<Result<Vec<_>, Unsupported>>()?;
        Some([ToolsOut {
            function_declarations: decls,
        }])
    };
    let tool_config = match &req.tool_choice {
        Some(ToolChoice::Auto | ToolChoice::None) if req.tools.is_empty() => None,
        None => None,
        Some(tc) => {
            let (mode, allowed) = match tc {
                ToolChoice::Auto => ("AUTO", None),
                ToolChoice::None => ("NONE", None),
                ToolChoice::Required => ("ANY", None),
                ToolChoice::Tool(n) => ("ANY", Some([n.as_str()])),
            };
            Some(ToolConfigOut {
                function_calling_config: FunctionCallingOut {
                    mode,
                    allowed_function_names: allowed,
                },
            })
        }
    };
    let mut gc = GenerationConfigOut {
        max_output_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        seed: req.seed.map(|s| s.value),
        presence_penalty: req.presence_penalty.map(|p| p.value),
        frequency_penalty: req.frequency_penalty.map(|p| p.value),
        stop_sequences: &req.stop,
        thinking_config,
        ..Default::default()
    };
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => gc.response_mime_type = Some("text/plain"),
        Some(ResponseFormat::JsonObject) => gc.response_mime_type = Some("application/json"),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            gc.response_mime_type = Some("application/json");
            gc.response_schema = Some(encode_schema_within(
                schema,
                "response_format.json_schema.schema",
                &mut budget,
            )?);
        }
    }
    Ok(RequestOut {
        contents: encode_contents(req)?,
        system_instruction,
        tools,
        tool_config,
        generation_config: (!gc.is_empty()).then_some(gc),
    })
}

/// IR turns → Gemini contents: consecutive turns of one role are merged.
///
/// A tool result's images go as `inlineData`/`fileData` parts right behind
/// its `functionResponse`, in the same user content: `response` is a JSON
/// object, and the `parts` a `functionResponse` may hold for images are
/// taken by some models only, while sibling parts are taken by every one
/// (Gemini CLI sends its own tools' images so). The function responses stay
/// in the one content that answers the model's calls.
fn encode_contents(req: &ChatRequest) -> Result<Vec<ContentOut<'_>>, Unsupported> {
    let mut turns: Vec<(Role, Vec<PartOut<'_>>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let mut parts = Vec::new();
        for p in &m.content {
            let part = match (p, m.role) {
                (Part::Text(t) | Part::Refusal(t), _) if t.is_empty() => continue,
                (Part::Text(t) | Part::Refusal(t), _) => PartOut::text(t),
                (Part::Image(img), _) => image_part(img),
                (
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    },
                    Role::Assistant,
                ) => {
                    let at = format!("messages[{i}].tool_calls.{name}.arguments");
                    PartOut::call(id, name, wire::arguments_object(arguments, &at)?)
                }
                (
                    Part::ToolResult {
                        id,
                        name,
                        content,
                        is_error,
                    },
                    Role::User,
                ) => {
                    let name = name.as_deref().ok_or_else(|| {
                        Unsupported::invalid(
                            format!("messages[{i}].tool_result"),
                            format!("no earlier tool call has the id {id:?}, so the function's name is unknown"),
                        )
                    })?;
                    let result = ir::result_content(content, i, TARGET)?;
                    parts.push(PartOut {
                        function_response: Some(CallResultOut {
                            id,
                            name,
                            response: response_for(&result.text, *is_error),
                        }),
                        ..Default::default()
                    });
                    // Its images right behind it (see above).
                    parts.extend(result.images.into_iter().map(image_part));
                    continue;
                }
                (Part::ToolCall { .. }, Role::User) => {
                    return Err(Unsupported::misplaced(i, ir::USER_CALL));
                }
                (Part::ToolResult { .. }, Role::Assistant) => {
                    return Err(Unsupported::misplaced(i, ir::ASSISTANT_RESULT));
                }
            };
            parts.push(part);
        }
        ir::push_turn(&mut turns, m.role, parts);
    }
    let sign = needs_signature(&req.model);
    Ok(turns
        .into_iter()
        .map(|(role, mut parts)| {
            if sign
                && role == Role::Assistant
                && let Some(first_call) = parts.iter_mut().find(|p| p.function_call.is_some())
            {
                first_call.thought_signature = Some(SKIP_SIGNATURE);
            }
            ContentOut {
                parts,
                role: if role == Role::User { "user" } else { "model" },
            }
        })
        .collect())
}

/// An image part: inline images as `inlineData`, URLs as `fileData`.
fn image_part(img: &Image) -> PartOut<'_> {
    match img {
        Image::Base64 { media_type, data } => PartOut {
            inline_data: Some(BlobOut {
                mime_type: media_type,
                data,
            }),
            ..Default::default()
        },
        Image::Url(url) => PartOut {
            file_data: Some(FileOut {
                mime_type: image_mime(url),
                file_uri: url,
            }),
            ..Default::default()
        },
    }
}

/// Result text → `response`: a JSON object as is, else under `output`/`error`.
fn response_for(text: &str, is_error: bool) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) if !is_error || o.contains_key("error") => Value::Object(o),
        _ if is_error => serde_json::json!({"error": text}),
        _ => serde_json::json!({"output": text}),
    }
}

/// Gemini 3 and later validate thought signatures on replayed calls; the
/// version-less aliases (`gemini-flash-latest`) may point at one.
pub fn needs_signature(model: &str) -> bool {
    let Some((_, rest)) = model.split_once("gemini-") else {
        return false;
    };
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().map_or(true, |m| m >= 3)
}

/// `fileData`'s MIME type, as a URL says it: only by its extension. A URL
/// without a known one (`https://…/photo?id=3`) is sent without (the
/// Gemini API's `mimeType` is optional, and it reads the type of what it
/// fetches) rather than labelled `image/jpeg`, which a PNG or WebP is not.
fn image_mime(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let file = path.rsplit('/').next().unwrap_or_default();
    Some(match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("jpg" | "jpeg" | "jpe" | "jfif") => "image/jpeg",
        _ => return None,
    })
}
