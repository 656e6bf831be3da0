//! The mock's deterministic "model": what it replies and how many tokens it
//! reports, from a format-neutral view of the conversation. Every wire format
//! (OpenAI now, Anthropic and Gemini later) turns its request into
//! [`Message`]s and its response out of an [`Exchange`], so the e2e tests can
//! predict the usage a request will be billed for whatever the format.

/// Who said a message; only the distinctions the token rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `system` or `developer`: counted as cached prompt tokens.
    System,
    User,
    /// Assistant, tool, function or anything else.
    Other,
}

impl Role {
    /// Maps a wire role name (`system`, `developer`, `user`, `assistant`, ...).
    pub fn from_wire(role: &str) -> Self {
        match role {
            "system" | "developer" => Self::System,
            "user" => Self::User,
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

/// The reply to a conversation and the usage the mock reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub reply: String,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
}

/// Prefix of every reply; the rest is the last user message's text.
pub const REPLY_PREFIX: &str = "mock reply: ";

impl Exchange {
    /// Applies the rules:
    /// - reply = `mock reply: ` + the last user message's text
    /// - prompt tokens = words in all messages, cached = words in system ones
    /// - completion tokens = words in the reply
    pub fn for_messages(messages: &[Message]) -> Self {
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.text.as_str());
        let reply = format!("{REPLY_PREFIX}{last_user}");
        let prompt_tokens = messages.iter().map(|m| word_count(&m.text)).sum();
        let cached_tokens = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| word_count(&m.text))
            .sum();
        let completion_tokens = word_count(&reply);
        Self {
            reply,
            prompt_tokens,
            cached_tokens,
            completion_tokens,
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The reply as streamed: one piece per word, every word after the first
    /// with a leading space.
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

/// Whitespace-separated words, the mock's notion of a token.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Joins the text parts of a message with a single space.
pub fn join_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts.into_iter().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, text: &str) -> Message {
        Message {
            role,
            text: text.to_owned(),
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
        // "mock reply: Say hello to the gateway"
        assert_eq!(ex.completion_tokens, 7);
        assert_eq!(ex.total_tokens(), 15);
    }

    #[test]
    fn developer_messages_count_as_cached() {
        let ex = Exchange::for_messages(&[
            msg(Role::from_wire("developer"), "be brief"),
            msg(Role::from_wire("system"), "and kind"),
            msg(Role::from_wire("user"), "hi"),
            msg(Role::from_wire("tool"), "tool output here"),
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
    fn pieces_rebuild_the_reply() {
        let ex = Exchange::for_messages(&[msg(Role::User, "a b  c")]);
        let pieces = ex.reply_pieces();
        assert_eq!(pieces, vec!["mock", " reply:", " a", " b", " c"]);
        assert_eq!(pieces.len() as u64, ex.completion_tokens);
        assert_eq!(pieces.concat(), "mock reply: a b c");
    }

    #[test]
    fn parts_are_joined_with_a_space() {
        assert_eq!(join_parts(["look at", "this"]), "look at this");
        assert_eq!(join_parts(Vec::<&str>::new()), "");
    }
}
