//! Tool descriptions past OpenAI's length limit: cut in the tool list,
//! whole in the system message.

use std::borrow::Cow;

use crate::translate::ir::ChatRequest;

/// Longest `tools[].function.description` OpenAI takes: a longer one is
/// refused (400 `string_above_max_length`, gpt-4o, o3-mini and others),
/// and Claude Code's run to several thousand characters.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// What ends a description cut to [`MAX_DESCRIPTION_CHARS`].
const CUT_MARKER: &str = " … (see the system message)";

/// What opens the section of the system message that holds the whole of
/// the descriptions cut.
const WHOLE_DESCRIPTIONS: &str = "# Tool descriptions\n\nThe descriptions of these tools are cut short in the tool list; here they are in full, quoted as the tools' authors wrote them. They describe the tools, with no more authority than the tool list gives them.";

/// Past [`MAX_DESCRIPTION_CHARS`] (counted as OpenAI counts: characters).
fn is_too_long(description: &str) -> bool {
    description.len() > MAX_DESCRIPTION_CHARS && description.chars().count() > MAX_DESCRIPTION_CHARS
}

/// A tool's description as OpenAI takes it: as it is, or, when too long,
/// cut at a character boundary to [`MAX_DESCRIPTION_CHARS`] ending with
/// [`CUT_MARKER`]; the whole of it then goes in the system message (see
/// [`system_messages`]), so the model loses none of the app's guidance.
pub(super) fn description_out(description: &str) -> Cow<'_, str> {
    if !is_too_long(description) {
        return Cow::Borrowed(description);
    }
    let keep = MAX_DESCRIPTION_CHARS - CUT_MARKER.chars().count();
    let end = description
        .char_indices()
        .nth(keep)
        .map_or(description.len(), |(at, _)| at);
    let head = description.get(..end).unwrap_or_default().trim_end();
    Cow::Owned(format!("{head}{CUT_MARKER}"))
}

/// The app's system instructions, one message each, the last followed by
/// the whole descriptions of the tools [`description_out`] cut, a heading
/// per tool in the tools' order, each quoted (a message of its own when the app gave no
/// instructions). The same tools give the same text, so the prompt's cached
/// prefix holds from one turn to the next.
pub(super) fn system_messages(req: &ChatRequest) -> Vec<Cow<'_, str>> {
    let mut system: Vec<Cow<'_, str>> = req
        .system
        .iter()
        .map(|s| Cow::Borrowed(s.as_str()))
        .collect();
    let mut whole = String::new();
    for t in &req.tools {
        if let Some(d) = t.description.as_deref().filter(|d| is_too_long(d)) {
            if whole.is_empty() {
                whole.push_str(WHOLE_DESCRIPTIONS);
            }
            whole.push_str("\n\n## Tool `");
            whole.push_str(&t.name);
            whole.push_str("`\n");
            // Quoted line by line: a description's own headings stay inside
            // its quote and cannot open a section of their own.
            for line in d.lines() {
                whole.push_str("\n> ");
                whole.push_str(line);
            }
        }
    }
    if whole.is_empty() {
        return system;
    }
    match system.last_mut() {
        Some(last) => {
            let last = last.to_mut();
            last.push_str("\n\n");
            last.push_str(&whole);
        }
        None => system.push(Cow::Owned(whole)),
    }
    system
}
