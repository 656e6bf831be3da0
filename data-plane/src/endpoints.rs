//! Which API the app is calling, from method, path and headers: the
//! providers' own paths, so official SDKs work by changing only the base URL.

use http::{HeaderMap, Method};

use crate::translate::Format;

/// What a generation-style call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Generate,
    Embed,
    CountTokens,
}

/// A call to a model, in the app's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCall {
    pub format: Format,
    pub op: Op,
    /// Trace label, e.g. `chat.completions`.
    pub endpoint: &'static str,
    /// Gemini carries the model in the path.
    pub path_model: Option<String>,
    /// Gemini `:streamGenerateContent`.
    pub path_stream: bool,
    /// Gemini `?alt=sse`.
    pub alt_sse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Call(AppCall),
    ListModels(Format),
    /// One model: Gemini's `GET /v1beta/models/{model}`, and OpenAI's and
    /// Anthropic's `GET /v1/models/{model}` (`models.retrieve` in their
    /// SDKs), each answered in its caller's shape.
    GetModel(Format, String),
    Healthz,
    Readyz,
    Metrics,
    NotFound(Format),
    /// A known path called with a method it does not take: 405 with
    /// `Allow` (the value here).
    MethodNotAllowed(Format, &'static str),
}

impl AppCall {
    fn new(format: Format, op: Op, endpoint: &'static str) -> Self {
        Self {
            format,
            op,
            endpoint,
            path_model: None,
            path_stream: false,
            alt_sse: false,
        }
    }

    /// The format the gateway's own errors are written in: the app's.
    pub fn error_format(&self) -> Format {
        self.format
    }
}

impl Endpoint {
    pub fn error_format(&self) -> Format {
        match self {
            Endpoint::Call(c) => c.error_format(),
            Endpoint::ListModels(f)
            | Endpoint::NotFound(f)
            | Endpoint::MethodNotAllowed(f, _)
            | Endpoint::GetModel(f, _) => *f,
            _ => Format::OpenAiChat,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Endpoint::Call(c) => c.endpoint,
            Endpoint::ListModels(_) | Endpoint::GetModel(..) => "models",
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics => "ops",
            Endpoint::NotFound(_) | Endpoint::MethodNotAllowed(..) => "other",
        }
    }
}

/// The format an SDK speaks, guessed from its headers (for listings and
/// errors on paths several SDKs share; OpenAI's SDKs read chat's shapes).
fn sdk_format(h: &HeaderMap, query: Option<&str>) -> Format {
    if h.contains_key("anthropic-version") {
        Format::Anthropic
    } else if h.contains_key("x-goog-api-key")
        || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")))
    {
        Format::Gemini
    } else {
        Format::OpenAiChat
    }
}

/// `Allow` values.
const POST: &str = "POST";
const GET: &str = "GET, HEAD";

pub fn classify(method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> Endpoint {
    let post = method == Method::POST;
    // HEAD is GET without the body (hyper leaves it out): load balancers
    // and uptime checks probe with it.
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/v1/chat/completions" if post => {
            return Endpoint::Call(AppCall::new(
                Format::OpenAiChat,
                Op::Generate,
                "chat.completions",
            ));
        }
        "/v1/responses" if post => {
            return Endpoint::Call(AppCall::new(Format::Responses, Op::Generate, "responses"));
        }
        "/v1/embeddings" if post => {
            return Endpoint::Call(AppCall::new(Format::OpenAiChat, Op::Embed, "embeddings"));
        }
        "/v1/messages" if post => {
            return Endpoint::Call(AppCall::new(Format::Anthropic, Op::Generate, "messages"));
        }
        "/v1/messages/count_tokens" if post => {
            return Endpoint::Call(AppCall::new(
                Format::Anthropic,
                Op::CountTokens,
                "messages.count_tokens",
            ));
        }
        "/v1/models" if get => return Endpoint::ListModels(sdk_format(headers, query)),
        "/v1beta/models" if get => return Endpoint::ListModels(Format::Gemini),
        "/healthz" if get => return Endpoint::Healthz,
        "/readyz" if get => return Endpoint::Readyz,
        "/metrics" if get => return Endpoint::Metrics,
        _ => {}
    }
    let fixed = match path {
        "/v1/chat/completions" | "/v1/responses" | "/v1/embeddings" => {
            Some((Format::OpenAiChat, POST))
        }
        "/v1/messages" | "/v1/messages/count_tokens" => Some((Format::Anthropic, POST)),
        "/v1/models" => Some((sdk_format(headers, query), GET)),
        "/v1beta/models" => Some((Format::Gemini, GET)),
        "/healthz" | "/readyz" | "/metrics" => Some((Format::OpenAiChat, GET)),
        _ => None,
    };
    if let Some((format, allow)) = fixed {
        return Endpoint::MethodNotAllowed(format, allow);
    }
    let beta = path.strip_prefix("/v1beta/models/");
    let v1 = path.strip_prefix("/v1/models/");
    if let Some(rest) = beta.or(v1) {
        // `/v1/models/{id}` is OpenAI's and Anthropic's `models.retrieve` too;
        // their ids may hold colons (`ft:gpt-4o:org::id`), so the caller's
        // SDK decides, not the shape of the id.
        let caller = if beta.is_some() {
            Format::Gemini
        } else {
            sdk_format(headers, query)
        };
        if get && !rest.is_empty() && (caller != Format::Gemini || !rest.contains(':')) {
            // SDKs escape the id as one path segment: `team/my-model`, a
            // usual name at OpenAI-compatible vendors, arrives as
            // `team%2Fmy-model`. Only looked up in the snapshot: nothing is
            // sent upstream.
            return match segment(rest) {
                Some(id) => Endpoint::GetModel(caller, id),
                None => Endpoint::NotFound(caller),
            };
        }
        if let Some((model, method_name)) = rest.rsplit_once(':') {
            let op = match method_name {
                "generateContent" | "streamGenerateContent" => {
                    Some((Op::Generate, "generateContent"))
                }
                "countTokens" => Some((Op::CountTokens, "countTokens")),
                "embedContent" => Some((Op::Embed, "embedContent")),
                "batchEmbedContents" => Some((Op::Embed, "batchEmbedContents")),
                _ => None,
            };
            if let (false, Some(_), false) = (post, op, model.is_empty()) {
                return Endpoint::MethodNotAllowed(caller, POST);
            }
            if let (true, Some((op, endpoint)), false) = (post, op, model.is_empty()) {
                // Kept as sent: an escape in a model that is called is
                // refused (`Probe::parse`), never decoded into a `/` or `:`
                // an upstream could read as another path.
                let mut call = AppCall::new(Format::Gemini, op, endpoint);
                call.path_model = Some(model.to_string());
                call.path_stream = method_name == "streamGenerateContent";
                call.alt_sse = query.is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
                if call.path_stream {
                    call.endpoint = "streamGenerateContent";
                }
                return Endpoint::Call(call);
            }
        }
        return Endpoint::NotFound(caller);
    }
    let fmt = if path.starts_with("/v1beta/") {
        Format::Gemini
    } else if path.starts_with("/v1/messages") {
        Format::Anthropic
    } else {
        sdk_format(headers, query)
    };
    Endpoint::NotFound(fmt)
}

/// A path segment as the app meant it: percent-escapes decoded, `None`
/// when they do not decode to UTF-8.
fn segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(m: Method, p: &str, q: Option<&str>, h: &[(&'static str, &'static str)]) -> Endpoint {
        let mut hm = HeaderMap::new();
        for (k, v) in h {
            hm.insert(*k, http::HeaderValue::from_static(v));
        }
        classify(&m, p, q, &hm)
    }

    #[test]
    fn paths() {
        assert!(matches!(
            c(Method::POST, "/v1/chat/completions", None, &[]),
            Endpoint::Call(AppCall {
                format: Format::OpenAiChat,
                op: Op::Generate,
                ..
            })
        ));
        let Endpoint::Call(g) = c(
            Method::POST,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            Some("alt=sse"),
            &[],
        ) else {
            panic!("not a call")
        };
        assert_eq!(g.path_model.as_deref(), Some("gemini-2.0-flash"));
        assert!(g.path_stream && g.alt_sse);
        assert!(matches!(
            c(Method::POST, "/v1/models/gemini-pro:countTokens", None, &[]),
            Endpoint::Call(AppCall {
                op: Op::CountTokens,
                ..
            })
        ));
        assert_eq!(
            c(
                Method::GET,
                "/v1/models",
                None,
                &[("anthropic-version", "2023-06-01")]
            ),
            Endpoint::ListModels(Format::Anthropic)
        );
        assert_eq!(
            c(Method::GET, "/v1/models", Some("key=x"), &[]),
            Endpoint::ListModels(Format::Gemini)
        );
        assert_eq!(
            c(Method::GET, "/v1/models", None, &[]),
            Endpoint::ListModels(Format::OpenAiChat)
        );
        assert_eq!(
            c(Method::GET, "/v1beta/models/gemini-pro", None, &[]),
            Endpoint::GetModel(Format::Gemini, "gemini-pro".into())
        );
        // `models.retrieve` of OpenAI's and Anthropic's SDKs, colons and all.
        assert_eq!(
            c(Method::GET, "/v1/models/ft:gpt-4o:org::x1", None, &[]),
            Endpoint::GetModel(Format::OpenAiChat, "ft:gpt-4o:org::x1".into())
        );
        assert_eq!(
            c(
                Method::GET,
                "/v1/models/claude-sonnet-4-5",
                None,
                &[("anthropic-version", "2023-06-01")]
            ),
            Endpoint::GetModel(Format::Anthropic, "claude-sonnet-4-5".into())
        );
        assert_eq!(
            c(Method::GET, "/v1/models/gemini-pro", Some("key=x"), &[]),
            Endpoint::GetModel(Format::Gemini, "gemini-pro".into())
        );
        // The SDKs escape an id as one segment: decoded as they meant it.
        assert_eq!(
            c(Method::GET, "/v1/models/team%2Fmy-model", None, &[]),
            Endpoint::GetModel(Format::OpenAiChat, "team/my-model".into())
        );
        assert_eq!(
            c(Method::GET, "/v1/models/bad%FF", None, &[]),
            Endpoint::NotFound(Format::OpenAiChat)
        );
        // A model that is called keeps its escapes (and is refused later).
        assert!(matches!(
            c(Method::POST, "/v1beta/models/org%2Fgem:generateContent", None, &[]),
            Endpoint::Call(AppCall { path_model: Some(m), .. }) if m == "org%2Fgem"
        ));

        assert_eq!(
            c(Method::GET, "/v1/nothing", None, &[]),
            Endpoint::NotFound(Format::OpenAiChat)
        );
    }

    #[test]
    fn a_known_path_with_another_method_is_405_with_allow() {
        assert_eq!(
            c(Method::GET, "/v1/chat/completions", None, &[]),
            Endpoint::MethodNotAllowed(Format::OpenAiChat, "POST")
        );
        assert_eq!(
            c(Method::OPTIONS, "/v1/messages", None, &[]),
            Endpoint::MethodNotAllowed(Format::Anthropic, "POST")
        );
        assert_eq!(
            c(Method::POST, "/v1beta/models", None, &[]),
            Endpoint::MethodNotAllowed(Format::Gemini, "GET, HEAD")
        );
        assert_eq!(
            c(
                Method::GET,
                "/v1beta/models/gemini-pro:generateContent",
                None,
                &[]
            ),
            Endpoint::MethodNotAllowed(Format::Gemini, "POST")
        );
        // HEAD is answered as GET (hyper leaves the body out).
        assert_eq!(c(Method::HEAD, "/healthz", None, &[]), Endpoint::Healthz);
        assert_eq!(
            c(Method::HEAD, "/v1beta/models", None, &[]),
            Endpoint::ListModels(Format::Gemini)
        );
        // An unknown method on an unknown path is still 404.
        assert_eq!(
            c(Method::DELETE, "/v1/nothing", None, &[]),
            Endpoint::NotFound(Format::OpenAiChat)
        );
    }
}
