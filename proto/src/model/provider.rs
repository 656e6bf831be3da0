//! Upstream providers as a snapshot describes them: their kind (the wire
//! format they speak), pool strategy, credentials and the headers a
//! credential may add.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::Glob;
use super::snapshot::InvalidSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Gemini,
    OpenAiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::OpenAiCompatible => "openai-compatible",
        }
    }

    /// Where the kind's public API lives when no base_url is given.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::OpenAiCompatible => None,
        }
    }
}

impl FromStr for ProviderKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "openai" => Self::OpenAi,
            "anthropic" => Self::Anthropic,
            "gemini" => Self::Gemini,
            "openai-compatible" => Self::OpenAiCompatible,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    RoundRobin,
    Weighted,
    LeastLatency,
    FillFirst,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::Weighted => "weighted",
            Self::LeastLatency => "least-latency",
            Self::FillFirst => "fill-first",
        }
    }
}

impl FromStr for Strategy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "" | "round-robin" => Self::RoundRobin,
            "weighted" => Self::Weighted,
            "least-latency" => Self::LeastLatency,
            "fill-first" => Self::FillFirst,
            _ => return Err(()),
        })
    }
}

#[derive(Clone)]
pub struct ProviderKey {
    pub name: String,
    pub secret: String,
    pub weight: u32,
    /// Set while the control plane's health check finds the key unusable.
    pub health: Option<KeyHealth>,
    /// An OAuth account (the secret is an access token, sent as Bearer).
    pub oauth: bool,
    /// Extra headers sent with this key (lower-case names, checked values).
    pub headers: Vec<(String, String)>,
}

/// Why the control plane took a key out of use, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHealth {
    pub status: String,
    /// Milliseconds since the epoch; 0: until a check clears it.
    pub retry_at_ms: i64,
    pub detail: String,
}

/// How a provider's pool places requests that share a prompt cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Affinity {
    /// The pool's strategy alone.
    #[default]
    Off,
    /// The same cache key (or session, or prompt prefix) to the same key.
    PromptCache,
}

impl Affinity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "",
            Self::PromptCache => "prompt-cache",
        }
    }
}

impl FromStr for Affinity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "" | "off" | "none" => Ok(Self::Off),
            "prompt-cache" => Ok(Self::PromptCache),
            _ => Err(()),
        }
    }
}

/// Most extra headers on one key, and their longest value.
pub const MAX_KEY_HEADERS: usize = 16;
const MAX_HEADER_VALUE: usize = 1024;

/// Headers a key may not set: the gateway owns these.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
];

pub(crate) fn check_key_headers(
    provider: &str,
    key: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, InvalidSnapshot> {
    let bad = |header: &str| InvalidSnapshot::BadKeyHeader {
        provider: provider.into(),
        key: key.into(),
        header: header.chars().take(64).collect(),
    };
    if headers.len() > MAX_KEY_HEADERS {
        return Err(bad("(too many)"));
    }
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if !check_key_header(name, value) {
            return Err(bad(name));
        }
        out.push((name.clone(), value.clone()));
    }
    Ok(out)
}

/// Whether a key may send `name: value`: a lower-case name the gateway does
/// not own, a value of visible ASCII and spaces (no line breaks), bounded.
/// The control plane checks OAuth templates' headers with it too.
pub fn check_key_header(name: &str, value: &str) -> bool {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !RESERVED_HEADERS.contains(&name);
    let value_ok =
        value.len() <= MAX_HEADER_VALUE && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    name_ok && value_ok
}

/// Never prints the secret, whoever logs a snapshot.
impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKey")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Scheme and authority plus any path prefix, without a trailing `/` or
    /// `/v1`: request paths such as `/v1/chat/completions` are appended.
    pub base_url: String,
    pub models: Vec<Glob>,
    pub strategy: Strategy,
    pub keys: Vec<ProviderKey>,
    /// The app's model name → the upstream's.
    pub model_map: HashMap<String, String>,
    pub affinity: Affinity,
}

impl Provider {
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|g| g.matches(model))
    }

    /// The model name to send upstream for the app's `model`.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_map.get(model).map_or(model, String::as_str)
    }
}
