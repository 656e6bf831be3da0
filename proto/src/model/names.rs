//! Bounds on the names apps and admins send, shared by both planes so the
//! control plane refuses at commit what a data plane would refuse, and a data
//! plane refuses from an app what could steer an upstream path.

/// Longest model name an app may send, or an admin may configure.
pub const MAX_MODEL_NAME: usize = 256;
/// Longest model glob (in provider, route, key and pricing tables).
pub const MAX_GLOB: usize = 256;

/// Why a model name is refused (the message the caller reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadModelName {
    #[error("the model name is empty")]
    Empty,
    #[error("the model name is longer than 256 characters")]
    TooLong,
    #[error(
        "the model name may only contain letters, digits and `-._:/@+` (and no `..` path segment)"
    )]
    Charset,
}

/// Model names as providers spell them: `gpt-4o-2024-08-06`,
/// `ft:gpt-4o-mini:org::id`, `claude-3-5-sonnet@20240620`,
/// `meta-llama/Llama-3.1-8B-Instruct`, `anthropic.claude-v2:1`. Nothing
/// else: no `%`, `?`, `#`, `\`, whitespace or control characters, and no
/// `.`/`..` segment, so a name can never reshape a URL it is put into.
pub fn check_model_name(name: &str) -> Result<(), BadModelName> {
    if name.is_empty() {
        return Err(BadModelName::Empty);
    }
    if name.len() > MAX_MODEL_NAME {
        return Err(BadModelName::TooLong);
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._:/@+".contains(&b);
    if !name.bytes().all(allowed) || name.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(BadModelName::Charset);
    }
    Ok(())
}

/// A model glob: a model name that may also hold `*` and `?`.
pub fn check_glob(glob: &str) -> Result<(), BadModelName> {
    if glob.len() > MAX_GLOB {
        return Err(BadModelName::TooLong);
    }
    // Wildcards stand for name characters; what is left must be a name.
    let literal: String = glob
        .chars()
        .map(|c| if c == '*' || c == '?' { 'x' } else { c })
        .collect();
    check_model_name(&literal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_pass() {
        for n in [
            "gpt-4o-2024-08-06",
            "ft:gpt-4o-mini:org::abc123",
            "claude-3-5-sonnet@20240620",
            "meta-llama/Llama-3.1-8B-Instruct",
            "anthropic.claude-v2:1",
            "models/gemini-2.0-flash",
            "llama3:8b",
        ] {
            assert_eq!(check_model_name(n), Ok(()), "{n}");
        }
        assert_eq!(check_glob("gpt-4o*"), Ok(()));
        assert_eq!(check_glob("*"), Ok(()));
        assert_eq!(check_glob("claude-?-opus"), Ok(()));
    }

    #[test]
    fn path_steering_names_fail() {
        for n in [
            "x:batchGenerateContent#",
            "../../v1/files",
            "a/../b",
            "gemini%2F..",
            "m?key=1",
            "a b",
            "a\nb",
            "é",
            ".",
        ] {
            assert_eq!(check_model_name(n), Err(BadModelName::Charset), "{n:?}");
        }
        assert_eq!(check_model_name(""), Err(BadModelName::Empty));
        assert_eq!(
            check_model_name(&"a".repeat(257)),
            Err(BadModelName::TooLong)
        );
        assert_eq!(check_model_name(&"a".repeat(256)), Ok(()));
        assert_eq!(check_glob(&"*".repeat(257)), Err(BadModelName::TooLong));
        assert_eq!(check_glob("gpt *"), Err(BadModelName::Charset));
    }
}
