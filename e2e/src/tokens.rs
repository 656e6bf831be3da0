//! The mock's deterministic "model": what it replies and how many tokens it
//! reports, from a format-neutral view of the conversation. Every wire format
//! (OpenAI chat and Responses, Anthropic, Gemini) turns its request into
//! [`Message`]s and [`ToolDecl`]s and its response out of an [`Exchange`], so
//! the e2e tests can predict the answer and the usage of a request whatever
//! the format, and whatever translation happened on the way.
//!
//! The rules (identical in every format):
//! - a token is a whitespace-separated word;
//! - prompt tokens = the words of every text in the request: the system
//!   instructions, and the text parts of every message/content/input item,
//!   tool results included (their text: a string, text parts, or for
//!   Gemini's `functionResponse.response` the string values it holds). Tool
//!   declarations, tool calls made by the assistant and non-text parts count
//!   nothing;
//! - cached tokens = the words of the system instructions (OpenAI
//!   `system`/`developer` messages and Responses `instructions`, Anthropic
//!   `system`, Gemini `systemInstruction`); the prompt tokens include them;
//! - the reply:
//!   1. when the conversation ends with tool results: the text
//!      `mock reply: tool said <the results' texts joined with a space>`;
//!   2. else when the request declares tools: ONE tool call. When the last
//!      user message says `mock-tool: NAME {JSON}`, a call of the declared
//!      tool NAME with those arguments (the way a test makes a coding CLI run
//!      one of its own tools; an undeclared NAME gets the text `mock reply:
//!      no tool NAME is declared`). Otherwise a call of the first declared
//!      tool, its arguments a JSON object giving each `required` property of
//!      the tool's schema a value (the first `enum` value if any, else by
//!      type: string `"Paris"`, number/integer `1`, boolean `true`, object:
//!      its own required properties, array `[]`);
//!   3. else the text `mock reply: <the last user message's text>`;
//! - completion tokens = the words of the reply text, or for a tool call the
//!   words of its arguments serialized as compact JSON (`{"city":"Paris"}`
//!   is 1 token).

use serde_json::{Map, Value, json};

/// Who said a message; only the distinctions the rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// System instructions (`system`, `developer`, Anthropic's `system`,
    /// Gemini's `systemInstruction`): counted as cached prompt tokens.
    System,
    User,
    /// A tool's result given back to the model.
    Tool,
    /// Assistant/model or anything else.
    Other,
}

impl Role {
    /// Maps a wire role name (`system`, `developer`, `user`, `assistant`,
    /// `tool`, `function`, `model`, ...).
    pub fn from_wire(role: &str) -> Self {
        match role {
            "system" | "developer" => Self::System,
            "user" => Self::User,
            "tool" | "function" => Self::Tool,
            _ => Self::Other,
        }
    }
}

/// One message of the conversation, its text parts already joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
        }
    }
}

/// A tool the request declares: its name and the JSON schema of its
/// arguments (`Value::Null` when it has none).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDecl {
    pub name: String,
    pub parameters: Value,
}

/// The one tool call the mock makes.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// A JSON object.
    pub arguments: Value,
}

impl ToolCall {
    /// The arguments as compact JSON, as every format sends them.
    pub fn arguments_json(&self) -> String {
        self.arguments.to_string()
    }
}

/// The reply to a conversation and the usage the mock reports for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The reply text; empty when the reply is a tool call.
    pub reply: String,
    pub tool_call: Option<ToolCall>,
    /// Includes the cached tokens.
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the cache (Anthropic only; see
    /// `anthropic::MessagesRequest`), and of those the 1-hour writes.
    pub cache_write_tokens: u64,
    pub cache_write_1h_tokens: u64,
    pub completion_tokens: u64,
}

/// Prefix of every text reply.
pub const REPLY_PREFIX: &str = "mock reply: ";
/// Follows the prefix when the reply is about tool results.
pub const TOOL_REPLY: &str = "tool said ";

impl Exchange {
    /// A conversation without tools.
    #[cfg(test)]
    pub fn for_messages(messages: &[Message]) -> Self {
        Self::new(messages, &[])
    }

    /// Applies the rules in the module's documentation.
    pub fn new(messages: &[Message], tools: &[ToolDecl]) -> Self {
        let prompt_tokens = messages.iter().map(|m| word_count(&m.text)).sum();
        let cached_tokens = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| word_count(&m.text))
            .sum();
        let trailing_results: Vec<&str> = {
            let mut r: Vec<&str> = messages
                .iter()
                .rev()
                .take_while(|m| m.role == Role::Tool)
                .map(|m| m.text.as_str())
                .collect();
            r.reverse();
            r
        };
        let (reply, tool_call) = if !trailing_results.is_empty() {
            (
                format!("{REPLY_PREFIX}{TOOL_REPLY}{}", join_parts(trailing_results)),
                None,
            )
        } else if !tools.is_empty() {
            match choose_call(messages, tools) {
                Ok(call) => (String::new(), Some(call)),
                Err(why) => (format!("{REPLY_PREFIX}{why}"), None),
            }
        } else {
            let last_user = messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map_or("", |m| m.text.as_str());
            (format!("{REPLY_PREFIX}{last_user}"), None)
        };
        let completion_tokens = match &tool_call {
            Some(call) => word_count(&call.arguments_json()),
            None => word_count(&reply),
        };
        Self {
            reply,
            tool_call,
            prompt_tokens,
            cached_tokens,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            completion_tokens,
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Prompt tokens neither read from the cache nor written to it.
    pub fn uncached_tokens(&self) -> u64 {
        self.prompt_tokens - self.cached_tokens - self.cache_write_tokens
    }

    /// The reply text as streamed: one piece per word, every word after the
    /// first with a leading space.
    pub fn reply_pieces(&self) -> Vec<String> {
        self.reply
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_owned()
                } else {
                    format!(" {w}")
                }
            })
            .collect()
    }
}

/// Says which tool to call, and with what, in a user message.
pub const TOOL_DIRECTIVE: &str = "mock-tool:";

/// The call rule 2 makes: the one the last user message directs, else the
/// first tool with its required arguments filled in.
fn choose_call(messages: &[Message], tools: &[ToolDecl]) -> Result<ToolCall, String> {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.text.as_str());
    let Some((name, args)) = directive(last_user) else {
        let tool = &tools[0];
        return Ok(ToolCall {
            name: tool.name.clone(),
            arguments: fill_required(&tool.parameters),
        });
    };
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("no tool {name} is declared"))?;
    Ok(ToolCall {
        name: tool.name.clone(),
        arguments: args.unwrap_or_else(|| fill_required(&tool.parameters)),
    })
}

/// `mock-tool: NAME {JSON}` (the last one in `text`): the name and, when a
/// JSON object follows, the arguments.
fn directive(text: &str) -> Option<(&str, Option<Value>)> {
    let at = text.rfind(TOOL_DIRECTIVE)?;
    let rest = text[at + TOOL_DIRECTIVE.len()..].trim_start();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, rest) = rest.split_at(end);
    if name.is_empty() {
        return None;
    }
    let args = serde_json::Deserializer::from_str(rest.trim_start())
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .filter(Value::is_object);
    Some((name, args))
}

/// The arguments the mock passes for a tool with this JSON schema: each
/// `required` property with a sample value.
pub fn fill_required(schema: &Value) -> Value {
    let mut out = Map::new();
    let props = schema.get("properties");
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            let prop = props.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
            out.insert(name.to_owned(), sample_value(prop));
        }
    }
    Value::Object(out)
}

fn sample_value(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match schema_type(schema).as_deref() {
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("object") => fill_required(schema),
        Some("array") => json!([]),
        _ => json!("Paris"),
    }
}

/// The (lowercased) type of a schema: `type` as a string (Gemini writes
/// `STRING`), or the first non-null one of a list, or that of the first
/// `anyOf`/`oneOf` alternative.
fn schema_type(schema: &Value) -> Option<String> {
    match schema.get("type") {
        Some(Value::String(t)) => return Some(t.to_ascii_lowercase()),
        Some(Value::Array(ts)) => {
            return ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| !t.eq_ignore_ascii_case("null"))
                .map(str::to_ascii_lowercase);
        }
        _ => {}
    }
    ["anyOf", "oneOf"].iter().find_map(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .and_then(|alts| alts.iter().find_map(schema_type))
    })
}

/// The JSON Schema types OpenAI and Anthropic accept (lowercase: Gemini's
/// `STRING`/`OBJECT` are refused, as the real APIs refuse them).
const JSON_SCHEMA_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// The first `type` in a JSON schema (at any depth) that is not a JSON
/// Schema type, if any.
pub fn invalid_schema_type(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(map) => {
            let own = match map.get("type") {
                Some(Value::String(t)) if !JSON_SCHEMA_TYPES.contains(&t.as_str()) => {
                    Some(t.clone())
                }
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|t| !JSON_SCHEMA_TYPES.contains(t))
                    .map(str::to_owned),
                _ => None,
            };
            own.or_else(|| {
                map.iter()
                    // `properties` maps names to schemas: a property may be
                    // called "type".
                    .filter(|(k, _)| k.as_str() != "type" && k.as_str() != "enum")
                    .find_map(|(_, v)| invalid_schema_type(v))
            })
        }
        Value::Array(items) => items.iter().find_map(invalid_schema_type),
        _ => None,
    }
}

/// Whitespace-separated words, the mock's notion of a token.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Joins texts with a single space.
pub fn join_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts.into_iter().collect::<Vec<_>>().join(" ")
}

/// The string values inside a JSON value, depth first, in order (Gemini's
/// `functionResponse.response` is an object such as `{"result": "..."}`).
pub fn strings_in(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    collect_strings(value, &mut out);
    out
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Splits `s` into `n` pieces of about the same number of characters (fewer
/// when `s` is shorter), for streamed tool arguments.
pub fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    let pieces: Vec<String> = chars
        .chunks(size)
        .map(|c| c.iter().collect::<String>())
        .collect();
    if pieces.is_empty() {
        vec![String::new()]
    } else {
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, text: &str) -> Message {
        Message::new(role, text)
    }

    fn weather_tool() -> ToolDecl {
        ToolDecl {
            name: "get_weather".into(),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"]
            }),
        }
    }

    #[test]
    fn counts_words_not_characters() {
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("   "), 0);
        assert_eq!(word_count("hello"), 1);
        assert_eq!(word_count("  hello \n\t world  "), 2);
    }

    #[test]
    fn reply_echoes_the_last_user_message() {
        let ex = Exchange::for_messages(&[
            msg(Role::User, "first question"),
            msg(Role::Other, "an answer"),
            msg(Role::User, "Say hello"),
        ]);
        assert_eq!(ex.reply, "mock reply: Say hello");
        assert_eq!(ex.tool_call, None);
    }

    #[test]
    fn usage_follows_the_rules() {
        let ex = Exchange::for_messages(&[
            msg(Role::System, "You are terse."),
            msg(Role::User, "Say hello to the gateway"),
        ]);
        // 3 system words + 5 user words.
        assert_eq!(ex.prompt_tokens, 8);
        assert_eq!(ex.cached_tokens, 3);
        assert_eq!(ex.uncached_tokens(), 5);
        // "mock reply: Say hello to the gateway"
        assert_eq!(ex.completion_tokens, 7);
        assert_eq!(ex.total_tokens(), 15);
    }

    #[test]
    fn wire_roles() {
        assert_eq!(Role::from_wire("developer"), Role::System);
        assert_eq!(Role::from_wire("system"), Role::System);
        assert_eq!(Role::from_wire("user"), Role::User);
        assert_eq!(Role::from_wire("tool"), Role::Tool);
        assert_eq!(Role::from_wire("function"), Role::Tool);
        assert_eq!(Role::from_wire("assistant"), Role::Other);
        assert_eq!(Role::from_wire("model"), Role::Other);
    }

    #[test]
    fn developer_messages_count_as_cached() {
        let ex = Exchange::for_messages(&[
            msg(Role::from_wire("developer"), "be brief"),
            msg(Role::from_wire("system"), "and kind"),
            msg(Role::from_wire("user"), "hi"),
            msg(Role::from_wire("assistant"), "tool output here"),
        ]);
        assert_eq!(ex.cached_tokens, 4);
        assert_eq!(ex.prompt_tokens, 8);
    }

    #[test]
    fn no_user_message_gives_the_bare_prefix() {
        let ex = Exchange::for_messages(&[msg(Role::System, "sys")]);
        assert_eq!(ex.reply, "mock reply: ");
        assert_eq!(ex.completion_tokens, 2);
        assert_eq!(ex.prompt_tokens, 1);
    }

    #[test]
    fn declared_tools_get_called_with_the_required_arguments() {
        let ex = Exchange::new(
            &[
                msg(Role::System, "be brief"),
                msg(Role::User, "weather in Paris?"),
            ],
            &[weather_tool()],
        );
        let call = ex.tool_call.clone().expect("a tool call");
        assert_eq!(call.name, "get_weather");
        assert_eq!(call.arguments, json!({"city": "Paris"}));
        assert_eq!(call.arguments_json(), r#"{"city":"Paris"}"#);
        assert_eq!(ex.reply, "");
        // Words of the compact JSON arguments.
        assert_eq!(ex.completion_tokens, 1);
        assert_eq!((ex.prompt_tokens, ex.cached_tokens), (5, 2));
    }

    #[test]
    fn only_the_first_tool_is_called() {
        let other = ToolDecl {
            name: "other".into(),
            parameters: Value::Null,
        };
        let ex = Exchange::new(&[msg(Role::User, "hi")], &[other, weather_tool()]);
        let call = ex.tool_call.expect("a tool call");
        assert_eq!(call.name, "other");
        assert_eq!(call.arguments, json!({}));
        assert_eq!(ex.completion_tokens, 1);
    }

    #[test]
    fn the_user_can_direct_which_tool_is_called_and_how() {
        let other = ToolDecl {
            name: "Read".into(),
            parameters: json!({"type": "object", "required": ["file_path"]}),
        };
        let tools = [weather_tool(), other];
        let ask = |text: &str| Exchange::new(&[msg(Role::User, text)], &tools);
        let ex = ask("Read it. mock-tool: Read {\"file_path\": \"/tmp/a b.txt\"} please");
        let call = ex.tool_call.expect("a tool call");
        assert_eq!(
            (call.name.as_str(), call.arguments),
            ("Read", json!({"file_path": "/tmp/a b.txt"}))
        );
        // No arguments given: the required ones are filled in.
        let call = ask("mock-tool: Read").tool_call.expect("a tool call");
        assert_eq!(call.arguments, json!({"file_path": "Paris"}));
        let ex = ask("mock-tool: Bash {}");
        assert!(ex.tool_call.is_none());
        assert_eq!(ex.reply, "mock reply: no tool Bash is declared");
    }

    #[test]
    fn a_tool_result_last_gets_a_text_reply_even_with_tools() {
        let ex = Exchange::new(
            &[
                msg(Role::System, "be brief"),
                msg(Role::User, "weather in Paris?"),
                msg(Role::Other, ""),
                msg(Role::Tool, "Sunny, 21 C"),
            ],
            &[weather_tool()],
        );
        assert_eq!(ex.tool_call, None);
        assert_eq!(ex.reply, "mock reply: tool said Sunny, 21 C");
        assert_eq!(ex.completion_tokens, 7);
        // 2 + 3 + 0 + 3: the tool result's words count.
        assert_eq!(ex.prompt_tokens, 8);
        assert_eq!(ex.cached_tokens, 2);
    }

    #[test]
    fn several_trailing_results_are_joined() {
        let ex = Exchange::for_messages(&[
            msg(Role::User, "q"),
            msg(Role::Tool, "one"),
            msg(Role::Tool, "two"),
        ]);
        assert_eq!(ex.reply, "mock reply: tool said one two");
    }

    #[test]
    fn a_tool_result_followed_by_a_user_message_is_not_last() {
        let ex = Exchange::new(
            &[
                msg(Role::User, "q"),
                msg(Role::Tool, "one"),
                msg(Role::User, "and now?"),
            ],
            &[weather_tool()],
        );
        assert!(ex.tool_call.is_some());
        let ex = Exchange::for_messages(&[
            msg(Role::User, "q"),
            msg(Role::Tool, "one"),
            msg(Role::User, "and now?"),
        ]);
        assert_eq!(ex.reply, "mock reply: and now?");
    }

    #[test]
    fn sample_values_by_type() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "s": {"type": "STRING"},
                "n": {"type": "number"},
                "i": {"type": "integer"},
                "b": {"type": "boolean"},
                "e": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "o": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                "a": {"type": "array", "items": {"type": "string"}},
                "nullable": {"type": ["null", "boolean"]},
                "any": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "optional": {"type": "string"}
            },
            "required": ["s", "n", "i", "b", "e", "o", "a", "nullable", "any", "untyped"]
        });
        assert_eq!(
            fill_required(&schema),
            json!({
                "s": "Paris", "n": 1, "i": 1, "b": true, "e": "celsius",
                "o": {"x": 1}, "a": [], "nullable": true, "any": 1, "untyped": "Paris"
            })
        );
        assert_eq!(fill_required(&json!({"type": "object"})), json!({}));
        assert_eq!(fill_required(&Value::Null), json!({}));
    }

    #[test]
    fn pieces_rebuild_the_reply() {
        let ex = Exchange::for_messages(&[msg(Role::User, "a b  c")]);
        let pieces = ex.reply_pieces();
        assert_eq!(pieces, vec!["mock", " reply:", " a", " b", " c"]);
        assert_eq!(pieces.len() as u64, ex.completion_tokens);
        assert_eq!(pieces.concat(), "mock reply: a b c");
    }

    #[test]
    fn schema_types_are_checked() {
        let ok = json!({"type": "object", "properties": {
            "type": {"type": "string"}, "x": {"type": ["null", "integer"]},
            "l": {"type": "array", "items": {"type": "number"}}}});
        assert_eq!(invalid_schema_type(&ok), None);
        let gemini = json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}});
        assert_eq!(invalid_schema_type(&gemini), Some("OBJECT".into()));
        let nested = json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "STRING"}}}});
        assert_eq!(invalid_schema_type(&nested), Some("STRING".into()));
    }

    #[test]
    fn split_pieces_rebuild_the_string() {
        let s = r#"{"city":"Paris"}"#;
        let p = split_pieces(s, 3);
        assert_eq!(p.len(), 3);
        assert_eq!(p.concat(), s);
        assert_eq!(split_pieces("{}", 2), vec!["{", "}"]);
        assert_eq!(split_pieces("x", 2), vec!["x"]);
        assert_eq!(split_pieces("", 2), vec![""]);
        assert_eq!(split_pieces("é漢字", 2).concat(), "é漢字");
    }

    #[test]
    fn strings_in_json() {
        let v = json!({"result": "Sunny", "more": [1, "and", {"x": "warm"}], "n": 3});
        let mut got = strings_in(&v);
        got.sort_unstable();
        assert_eq!(got, vec!["Sunny", "and", "warm"]);
        assert_eq!(strings_in(&json!("plain")), vec!["plain"]);
    }

    #[test]
    fn parts_are_joined_with_a_space() {
        assert_eq!(join_parts(["look at", "this"]), "look at this");
        assert_eq!(join_parts(Vec::<&str>::new()), "");
    }
}
