//! What OpenAI itself takes beyond the chat format's common ground, by
//! model name: the cap's field, fixed sampling, output limits.

use aigw_proto::model::ProviderKind;

use crate::translate::ir::ChatRequest;

/// What a provider of the chat format takes beyond the ground every vendor
/// shares. OpenAI and the compatible vendors speak one format, but OpenAI
/// has moved on where the vendors have not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Dialect {
    /// The cap goes as `max_completion_tokens`: OpenAI refuses `max_tokens`
    /// for its reasoning models (400 `unsupported_parameter`) and takes
    /// `max_completion_tokens` for every chat model, while vLLM, DeepSeek,
    /// Mistral and most other vendors know only `max_tokens`.
    pub(super) completion_tokens: bool,
    /// `temperature` and `top_p` are left out: OpenAI's reasoning models take
    /// only the default 1 (400 `unsupported_value` for anything else), and
    /// apps such as Gemini CLI always send both.
    fixed_sampling: bool,
    /// The model's most output tokens, where known: OpenAI refuses a larger
    /// cap (400 `invalid_value`, "max_tokens is too large") where Anthropic
    /// and Gemini take their own models' larger ones, and Claude Code always
    /// asks for 32,000. The cap sent is the smaller of the two: the app asked
    /// for at most that many, and the model can give no more.
    pub(super) max_output: Option<u64>,
    /// `parallel_tool_calls` is left out: OpenAI's o-series refuses it (400
    /// `unsupported_parameter`, "'parallel_tool_calls' is not supported with
    /// this model"), so one call at a time is a hint there.
    no_parallel_setting: bool,
    /// Most stop sequences taken: OpenAI takes 4 (400 beyond), where
    /// Anthropic apps may send more; more are refused, naming the app's
    /// field, rather than some left out unsaid.
    pub(super) max_stop: Option<usize>,
}

impl Dialect {
    /// The dialect of a provider of `kind` serving `model` (the provider's
    /// name for it).
    pub fn of(kind: ProviderKind, model: &str) -> Self {
        match kind {
            ProviderKind::OpenAi => Self {
                completion_tokens: true,
                fixed_sampling: is_reasoning_model(model),
                max_output: max_output_tokens(model),
                no_parallel_setting: is_o_series(model),
                max_stop: Some(4),
            },
            _ => Self::default(),
        }
    }

    /// Leaves out of `req` what the dialect refuses: a sampling setting
    /// other than the default, and one call at a time where there are tools
    /// to call, are hints (dropped on lenient routes, refused on strict
    /// ones); the default itself goes unsaid.
    pub fn leave_out(self, req: &mut ChatRequest) {
        if self.no_parallel_setting
            && std::mem::take(&mut req.serial_tool_calls)
            && !req.tools.is_empty()
        {
            req.dropped.hint("parallel_tool_calls");
        }
        if !self.fixed_sampling {
            return;
        }
        for (field, value) in [
            ("temperature", &mut req.temperature),
            ("top_p", &mut req.top_p),
        ] {
            if value.take().is_some_and(|v| v != 1.0) {
                req.dropped.hint(field);
            }
        }
    }
}

/// Output limits of OpenAI's chat models, by exact model id (an id may add
/// a date or `-latest`: see [`max_output_tokens`]), from OpenAI's model
/// pages. Not by family prefix: a newer model of a family may give more
/// (`gpt-4.5-preview` is no `gpt-4`, `gpt-5-pro` no `gpt-5`), and a cap
/// lowered to the family's would cut its answers short unsaid. A model not
/// listed is sent the app's cap as it is (OpenAI refuses one too large, a
/// 400 the app sees in its own format).
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("gpt-5", 128_000),
    ("gpt-5-mini", 128_000),
    ("gpt-5-nano", 128_000),
    ("gpt-5-chat", 16_384),
    ("gpt-4.5-preview", 16_384),
    ("gpt-4.1", 32_768),
    ("gpt-4.1-mini", 32_768),
    ("gpt-4.1-nano", 32_768),
    ("gpt-4o-2024-05-13", 4_096),
    ("gpt-4o", 16_384),
    ("gpt-4o-mini", 16_384),
    ("chatgpt-4o", 16_384),
    ("gpt-4-turbo", 4_096),
    ("gpt-4-turbo-preview", 4_096),
    ("gpt-4-1106-preview", 4_096),
    ("gpt-4-0125-preview", 4_096),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 4_096),
    ("o1-mini", 65_536),
    ("o1", 100_000),
    ("o3", 100_000),
    ("o3-mini", 100_000),
    ("o4-mini", 100_000),
];

/// The most output tokens OpenAI's `model` gives, if known exactly: its id
/// in [`MAX_OUTPUT`], or that id with a date (`-2024-08-06`, `-0613`) or
/// `-latest` after it. A fine-tune (`ft:gpt-4o-mini-2024-07-18:org::id`)
/// is its base model.
fn max_output_tokens(model: &str) -> Option<u64> {
    let m = base_model(model);
    let mut name = m.split(':').next().unwrap_or_default();
    loop {
        if let Some((_, max)) = MAX_OUTPUT.iter().find(|(id, _)| *id == name) {
            return Some(*max);
        }
        name = without_date(name)?;
    }
}

/// `name` without its last date (`-2024-08-06`, `-0613`) or `-latest`;
/// `None` when it ends in neither.
fn without_date(name: &str) -> Option<&str> {
    if let Some(head) = name.strip_suffix("-latest") {
        return Some(head);
    }
    let digits = |w: &str| w.bytes().all(|b| b.is_ascii_digit());
    // `-YYYY-MM-DD`: 11 bytes.
    let long = name.len().checked_sub(11).and_then(|at| {
        let tail = name.get(at..)?.as_bytes();
        let shape = tail.iter().enumerate().all(|(i, b)| match i {
            0 | 5 | 8 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
        shape.then(|| &name[..at])
    });
    long.or_else(|| {
        let (head, word) = name.rsplit_once('-')?;
        (word.len() == 4 && digits(word)).then_some(head)
    })
}

/// OpenAI's reasoning models by name: the o-series and the gpt-5 family,
/// but for its chat models (`gpt-5-chat-latest`), which sample like
/// gpt-4o. A fine-tune (`ft:o4-mini-…:org::id`) is its base model.
fn is_reasoning_model(model: &str) -> bool {
    let m = base_model(model);
    if m.starts_with("gpt-5") {
        return !m.starts_with("gpt-5-chat");
    }
    is_o_series(&m)
}

/// OpenAI's o-series (o1, o3, o4-mini…) by name.
fn is_o_series(model: &str) -> bool {
    let m = base_model(model);
    ["o1", "o3", "o4"].iter().any(|p| m.starts_with(p))
}

/// The model's name, lowercase, a fine-tune's (`ft:o4-mini-…:org::id`) as
/// its base model's.
fn base_model(model: &str) -> String {
    model
        .strip_prefix("ft:")
        .unwrap_or(model)
        .to_ascii_lowercase()
}
