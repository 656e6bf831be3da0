//! Tool names a provider's format refuses, fitted to it and given back.
//!
//! Gemini takes `.` and `:` in a function's name (Gemini CLI keeps dots in
//! MCP tools' names: `files.read`); OpenAI and Anthropic take only
//! `[A-Za-z0-9_-]` and refuse the whole request otherwise; all three cap a
//! name's length. A translated request's names that its target would refuse
//! are sent fitted (each unfit character `_`, a long or colliding name cut
//! and ended with a digest of the original), and the calls the model makes
//! reach the app under the names the app declared.

use std::collections::HashSet;

use super::Format;
use super::ir::{ChatRequest, ChatResponse, Part, StreamEvent, ToolChoice};

/// The longest name any of the three formats takes.
const MAX_NAME: usize = 64;

/// The names changed in one request: (as sent, as the app declared it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(Vec<(String, String)>);

/// Whether `target` takes `name` as a tool's name.
fn fits(target: Format, name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME {
        return false;
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    match target {
        Format::Gemini => {
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| plain(c) || c == '.' || c == ':')
        }
        _ => name.chars().all(plain),
    }
}

/// `name` made to fit `target`, unlike every name in `taken`.
fn fitted(target: Format, name: &str, taken: &HashSet<String>) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if target == Format::Gemini && !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    if out.len() <= MAX_NAME && !out.is_empty() && !taken.contains(&out) {
        return out;
    }
    // Cut, and ended with a digest of the original (and of a counter, in
    // the unlikely case that one is taken too).
    let stem = &out[..out.len().min(MAX_NAME - 9)];
    (0u32..)
        .map(|n| {
            let mut seed = name.as_bytes().to_vec();
            if n > 0 {
                seed.extend_from_slice(&n.to_be_bytes());
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, &seed);
            let tag: String = digest.as_ref()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{stem}_{tag}")
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_default()
}

/// Every place a request names a tool: the declarations, the forced
/// choice, and the history's calls and results.
fn names_in(req: &ChatRequest) -> impl Iterator<Item = &String> {
    let choice = match &req.tool_choice {
        Some(ToolChoice::Tool(n)) => Some(n),
        _ => None,
    };
    let history = req
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolCall { name, .. }
            | Part::ToolResult {
                name: Some(name), ..
            } => Some(name),
            _ => None,
        });
    req.tools
        .iter()
        .map(|t| &t.name)
        .chain(choice)
        .chain(history)
}

impl ToolNames {
    /// Renames, in `req`, every tool name `target` would refuse: in the
    /// declarations, the forced choice, and the history's calls and results.
    /// `None` when every name fits (the usual case: nothing is allocated).
    pub fn fit(req: &mut ChatRequest, target: Format) -> Option<ToolNames> {
        if names_in(req).all(|n| fits(target, n)) {
            return None;
        }
        // Every name that is sent as it is, wherever it is: a fitted name
        // must be none of them.
        let mut taken: HashSet<String> =
            names_in(req).filter(|n| fits(target, n)).cloned().collect();
        let mut names = ToolNames::default();
        let mut rename = |n: &mut String| {
            if fits(target, n) {
                return;
            }
            let sent = match names.0.iter().find(|(_, app)| app == n) {
                Some((sent, _)) => sent.clone(),
                None => {
                    let sent = fitted(target, n, &taken);
                    taken.insert(sent.clone());
                    names.0.push((sent.clone(), n.clone()));
                    sent
                }
            };
            *n = sent;
        };
        for t in &mut req.tools {
            rename(&mut t.name);
        }
        if let Some(ToolChoice::Tool(n)) = &mut req.tool_choice {
            rename(n);
        }
        for p in req.messages.iter_mut().flat_map(|m| &mut m.content) {
            if let Part::ToolCall { name, .. }
            | Part::ToolResult {
                name: Some(name), ..
            } = p
            {
                rename(name);
            }
        }
        Some(names)
    }

    /// The app's name for a name as sent (itself when it was not changed).
    fn restore(&self, name: &mut String) {
        if let Some((_, app)) = self.0.iter().find(|(sent, _)| sent == name) {
            name.clone_from(app);
        }
    }

    /// A whole answer's calls, under the app's names.
    pub fn restore_response(&self, answer: &mut ChatResponse) {
        for p in &mut answer.content {
            if let Part::ToolCall { name, .. } = p {
                self.restore(name);
            }
        }
    }

    /// A streamed call's start, under the app's name.
    pub fn restore_event(&self, ev: &mut StreamEvent) {
        if let StreamEvent::ToolCallStart { name, .. } = ev {
            self.restore(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::ir::{Message, Role, Tool};

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.into(),
            description: None,
            parameters: serde_json::json!({"type": "object"}),
            strict: None,
            schema_field: String::new(),
        }
    }

    #[test]
    fn names_each_format_refuses_are_fitted_and_given_back() {
        let long = format!("mcp__{}", "very_long_server_name_".repeat(5));
        let mut req = ChatRequest {
            tools: vec![
                tool("files.read"),
                tool("files_read"),
                tool(&long),
                tool("ok-1"),
            ],
            tool_choice: Some(ToolChoice::Tool("files.read".into())),
            messages: vec![
                Message {
                    role: Role::Assistant,
                    content: vec![Part::ToolCall {
                        id: "c1".into(),
                        name: "files.read".into(),
                        arguments: "{}".into(),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![Part::ToolResult {
                        id: "c1".into(),
                        name: Some("files.read".into()),
                        content: vec![Part::Text("x".into())],
                        is_error: false,
                    }],
                },
            ],
            ..Default::default()
        };
        let names = ToolNames::fit(&mut req, Format::OpenAiChat).expect("renamed");
        let sent: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
        // `files_read` is taken by the app's own tool: the dotted one gets a
        // digest instead of colliding with it.
        assert!(
            sent[0].starts_with("files_read_") && sent[0].len() == 19,
            "{sent:?}"
        );
        assert_eq!(sent[1], "files_read");
        assert!(
            sent[2].len() <= MAX_NAME && sent[2].starts_with("mcp__very"),
            "{sent:?}"
        );
        assert_eq!(sent[3], "ok-1");
        assert!(sent.iter().all(|n| fits(Format::Anthropic, n)));
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool(sent[0].to_string())));
        assert!(
            matches!(&req.messages[0].content[0], Part::ToolCall { name, .. } if name == sent[0])
        );
        assert!(
            matches!(&req.messages[1].content[0], Part::ToolResult { name: Some(n), .. } if n == sent[0])
        );
        let mut answer = ChatResponse {
            content: vec![Part::ToolCall {
                id: "c2".into(),
                name: sent[0].to_string(),
                arguments: "{}".into(),
            }],
            ..Default::default()
        };
        names.restore_response(&mut answer);
        assert!(matches!(&answer.content[0], Part::ToolCall { name, .. } if name == "files.read"));
        let mut ev = StreamEvent::ToolCallStart {
            index: 0,
            id: "c3".into(),
            name: sent[2].to_string(),
        };
        names.restore_event(&mut ev);
        assert!(matches!(ev, StreamEvent::ToolCallStart { name, .. } if name == long));
    }

    /// A fitted name is none of the names sent as they are: not a
    /// declared tool's, not one only the history names.
    #[test]
    fn a_fitted_name_collides_with_nothing_sent() {
        let mut req = ChatRequest {
            tools: vec![tool("a.b")],
            messages: vec![Message {
                role: Role::Assistant,
                content: vec![Part::ToolCall {
                    id: "c0".into(),
                    name: "a_b".into(),
                    arguments: "{}".into(),
                }],
            }],
            ..Default::default()
        };
        ToolNames::fit(&mut req, Format::Anthropic).expect("renamed");
        assert_ne!(req.tools[0].name, "a_b");
        assert!(fits(Format::Anthropic, &req.tools[0].name));
        // Even a name equal to the digest form is avoided.
        let first = fitted(
            Format::OpenAiChat,
            "x.y",
            &HashSet::from(["x_y".to_string()]),
        );
        let taken = HashSet::from(["x_y".to_string(), first.clone()]);
        let second = fitted(Format::OpenAiChat, "x.y", &taken);
        assert!(
            second != first && !taken.contains(&second),
            "{first} {second}"
        );
    }

    #[test]
    fn names_that_fit_are_left_alone() {
        let mut req = ChatRequest {
            tools: vec![tool("get_weather"), tool("files.read")],
            ..Default::default()
        };
        // Gemini takes dots; a name opening with a digit it does not.
        assert_eq!(ToolNames::fit(&mut req, Format::Gemini), None);
        let mut req = ChatRequest {
            tools: vec![tool("1st")],
            ..Default::default()
        };
        ToolNames::fit(&mut req, Format::Gemini).expect("renamed");
        assert_eq!(req.tools[0].name, "_1st");
    }
}
