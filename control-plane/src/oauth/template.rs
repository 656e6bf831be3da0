//! OAuth client settings as data: what it takes to connect an account of
//! one OAuth provider and to send requests with its access token. Three
//! are built in (the account kinds the original api-proxy supports); an
//! admin adds more, or overrides a built-in, through the Admin API, so a
//! new OAuth provider needs no code.

use std::collections::BTreeMap;

use aigw_proto::model::{ProviderKind, check_key_header};
use aigw_proto::pb::admin::OAuthTemplateSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::validate;
use crate::crypto::MasterKey;
use crate::db::oauth::TemplateRow;
use crate::error::{Error, Result};

/// How a token endpoint takes its parameters.
pub const FORMATS: [&str; 2] = ["form", "json"];
const MAX_SCOPES: usize = 32;
const MAX_PARAMS: usize = 16;
const MAX_TEXT: usize = 2048;
/// Authorize parameters the flow sets itself.
const RESERVED_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// A template's settings, as stored (JSON) and served. The client secret
/// is kept apart, sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Template {
    pub description: String,
    pub authorize_url: String,
    pub token_url: String,
    pub device_authorization_url: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub authorize_params: BTreeMap<String, String>,
    pub token_format: String,
    pub request_headers: BTreeMap<String, String>,
    pub api_base_url: String,
    pub provider_kind: String,
    pub notes: String,
}

/// A template ready to use: its settings, its client secret opened.
/// No `Debug`: it holds the client secret.
#[derive(Clone)]
pub struct Resolved {
    pub name: String,
    pub spec: Template,
    pub client_secret: Option<String>,
    pub builtin: bool,
    pub overrides_builtin: bool,
}

/// The sealing context of a template's client secret.
pub fn secret_context(name: &str) -> String {
    format!("oauth_template:{name}")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// The built-in templates, by name. Their client ids are the public ones
/// the providers' own CLIs ship in their open-source code.
pub fn builtins() -> Vec<(&'static str, Template, Option<&'static str>)> {
    vec![
        (
            "claude",
            Template {
                description: "Claude Pro/Max account (Claude Code's OAuth client)".into(),
                authorize_url: "https://claude.ai/oauth/authorize".into(),
                token_url: "https://console.anthropic.com/v1/oauth/token".into(),
                client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".into(),
                scopes: strings(&["org:create_api_key", "user:profile", "user:inference"]),
                redirect_uri: "https://console.anthropic.com/oauth/code/callback".into(),
                authorize_params: map(&[("code", "true")]),
                token_format: "json".into(),
                request_headers: map(&[("anthropic-beta", "oauth-2025-04-20")]),
                api_base_url: "https://api.anthropic.com".into(),
                provider_kind: "anthropic".into(),
                notes: "The callback page shows `code#state`: paste it whole. Requests: \
                        POST /v1/messages with Authorization: Bearer and anthropic-beta: \
                        oauth-2025-04-20. Anthropic serves these tokens only for requests \
                        shaped like Claude Code's (its system prompt first)."
                    .into(),
                ..Template::default()
            },
            None,
        ),
        (
            "openai-codex",
            Template {
                description: "ChatGPT account for OpenAI Codex (Codex CLI's OAuth client)".into(),
                authorize_url: "https://auth.openai.com/oauth/authorize".into(),
                token_url: "https://auth.openai.com/oauth/token".into(),
                client_id: "app_EMoamEEZ73f0CkXaXp7hrann".into(),
                scopes: strings(&["openid", "profile", "email", "offline_access"]),
                redirect_uri: "http://localhost:1455/auth/callback".into(),
                authorize_params: map(&[
                    ("id_token_add_organizations", "true"),
                    ("codex_cli_simplified_flow", "true"),
                    ("originator", "codex_cli_rs"),
                ]),
                token_format: "form".into(),
                request_headers: map(&[
                    (
                        "chatgpt-account-id",
                        "{id_token:/https:~1~1api.openai.com~1auth/chatgpt_account_id}",
                    ),
                    ("openai-beta", "responses=experimental"),
                    ("originator", "codex_cli_rs"),
                ]),
                api_base_url: "https://chatgpt.com/backend-api/codex".into(),
                provider_kind: "openai".into(),
                notes: "The browser ends on http://localhost:1455/auth/callback?code=…&state=… \
                        (nothing needs to listen there): paste that URL. Requests carry the \
                        ChatGPT account id from the ID token (chatgpt-account-id); the backend \
                        serves the Responses API at {api_base_url}/responses."
                    .into(),
                ..Template::default()
            },
            None,
        ),
        (
            "gemini-code-assist",
            Template {
                description: "Google account for Gemini Code Assist (Gemini CLI's OAuth client)"
                    .into(),
                authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                client_id:
                    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
                        .into(),
                scopes: strings(&[
                    "https://www.googleapis.com/auth/cloud-platform",
                    "https://www.googleapis.com/auth/userinfo.email",
                    "https://www.googleapis.com/auth/userinfo.profile",
                ]),
                redirect_uri: "https://codeassist.google.com/authcode".into(),
                authorize_params: map(&[("access_type", "offline"), ("prompt", "consent")]),
                token_format: "form".into(),
                api_base_url: "https://cloudcode-pa.googleapis.com".into(),
                provider_kind: "gemini".into(),
                notes: "The page at codeassist.google.com shows the code: paste it. Requests go \
                        to the Code Assist API ({api_base_url}/v1internal:generateContent, \
                        :streamGenerateContent?alt=sse) with the Gemini request wrapped as \
                        {model, project, request}; the project is the account's \
                        cloudaicompanionProject (v1internal:loadCodeAssist)."
                    .into(),
                ..Template::default()
            },
            // Gemini CLI's installed-app client secret, public in its source:
            // Google does not treat an installed application's secret as one.
            Some("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"),
        ),
    ]
}

/// The template named `name`: a stored one (which may override a built-in),
/// else a built-in.
pub fn find(rows: &[TemplateRow], master: &MasterKey, name: &str) -> Result<Option<Resolved>> {
    let builtin = builtins().into_iter().find(|(n, _, _)| *n == name);
    if let Some(row) = rows.iter().find(|r| r.name == name) {
        return from_row(row, master, builtin.is_some()).map(Some);
    }
    Ok(builtin.map(|(n, spec, secret)| Resolved {
        name: n.into(),
        spec,
        client_secret: secret.map(str::to_string),
        builtin: true,
        overrides_builtin: false,
    }))
}

fn from_row(row: &TemplateRow, master: &MasterKey, overrides: bool) -> Result<Resolved> {
    let spec: Template = serde_json::from_str(&row.spec).map_err(|e| {
        Error::internal(format!(
            "stored OAuth template {:?} is corrupt: {e}",
            row.name
        ))
    })?;
    let client_secret = match row.client_secret_enc.as_str() {
        "" => None,
        sealed => Some(master.decrypt(sealed, &secret_context(&row.name))?),
    };
    Ok(Resolved {
        name: row.name.clone(),
        spec,
        client_secret,
        builtin: false,
        overrides_builtin: overrides,
    })
}

/// Every template: the stored ones and the built-ins they do not override.
pub fn all(rows: &[TemplateRow], master: &MasterKey) -> Result<Vec<Resolved>> {
    let mut out = Vec::new();
    for (name, _, _) in builtins() {
        if !rows.iter().any(|r| r.name == name) {
            out.extend(find(rows, master, name)?);
        }
    }
    for r in rows {
        let overrides = builtins().iter().any(|(n, _, _)| *n == r.name);
        out.push(from_row(r, master, overrides)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The Admin API's view (never the client secret).
pub fn info(t: &Resolved) -> OAuthTemplateSpec {
    let s = &t.spec;
    OAuthTemplateSpec {
        name: t.name.clone(),
        description: s.description.clone(),
        authorize_url: s.authorize_url.clone(),
        token_url: s.token_url.clone(),
        device_authorization_url: s.device_authorization_url.clone(),
        client_id: s.client_id.clone(),
        client_secret: String::new(),
        scopes: s.scopes.clone(),
        redirect_uri: s.redirect_uri.clone(),
        authorize_params: s.authorize_params.clone(),
        token_format: s.token_format.clone(),
        request_headers: s.request_headers.clone(),
        api_base_url: s.api_base_url.clone(),
        provider_kind: s.provider_kind.clone(),
        builtin: t.builtin,
        has_client_secret: t.client_secret.is_some(),
        overrides_builtin: t.overrides_builtin,
        notes: s.notes.clone(),
    }
}

/// What an upsert asks for the client secret.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretChange {
    Keep,
    Remove,
    Set(String),
}

/// A checked template spec. No `Debug`: it may hold a client secret.
#[derive(Clone)]
pub struct TemplateInput {
    pub name: String,
    pub spec: Template,
    pub secret: SecretChange,
}

fn url(what: &str, field: &str, value: &str, required: bool) -> Result<()> {
    if value.is_empty() {
        return if required {
            Err(Error::invalid(format!("{what}: {field} is required")))
        } else {
            Ok(())
        };
    }
    validate::upstream_url(what, field, value)
}

fn text(what: &str, field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what}: {field} must be at most {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks an OAuthTemplateSpec with the rules every template obeys.
pub fn validate(spec: OAuthTemplateSpec) -> Result<TemplateInput> {
    validate::name("oauth template", &spec.name)?;
    let what = format!("oauth template {:?}", spec.name);
    url(&what, "authorize_url", &spec.authorize_url, false)?;
    url(&what, "token_url", &spec.token_url, true)?;
    url(
        &what,
        "device_authorization_url",
        &spec.device_authorization_url,
        false,
    )?;
    if spec.authorize_url.is_empty() && spec.device_authorization_url.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: needs an authorize_url or a device_authorization_url to connect accounts"
        )));
    }
    if spec.client_id.is_empty() {
        return Err(Error::invalid(format!("{what}: client_id is required")));
    }
    text(&what, "client_id", &spec.client_id, 512)?;
    text(&what, "client_secret", &spec.client_secret, 1024)?;
    text(&what, "description", &spec.description, MAX_TEXT)?;
    text(&what, "notes", &spec.notes, MAX_TEXT)?;
    text(&what, "redirect_uri", &spec.redirect_uri, MAX_TEXT)?;
    if !spec.authorize_url.is_empty() && spec.redirect_uri.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: redirect_uri is required with an authorize_url"
        )));
    }
    if !spec.redirect_uri.is_empty() {
        url::Url::parse(&spec.redirect_uri)
            .map_err(|e| Error::invalid(format!("{what}: redirect_uri is not a URL: {e}")))?;
    }
    if spec.scopes.len() > MAX_SCOPES
        || spec
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_SCOPES} scopes, each 1 to 256 visible ASCII characters"
        )));
    }
    if spec.authorize_params.len() > MAX_PARAMS {
        return Err(Error::invalid(format!(
            "{what}: at most {MAX_PARAMS} authorize_params"
        )));
    }
    for (k, v) in &spec.authorize_params {
        if k.is_empty() || RESERVED_PARAMS.contains(&k.as_str()) {
            return Err(Error::invalid(format!(
                "{what}: authorize_params may not set {k:?} (the flow sets it)"
            )));
        }
        text(&what, &format!("authorize_params[{k:?}]"), k, 128)?;
        text(&what, &format!("authorize_params[{k:?}]"), v, 1024)?;
    }
    let token_format = match spec.token_format.as_str() {
        "" => "form".to_string(),
        f if FORMATS.contains(&f) => f.to_string(),
        f => {
            return Err(Error::invalid(format!(
                "{what}: token_format {f:?} (expected form or json)"
            )));
        }
    };
    if spec.request_headers.len() > aigw_proto::model::MAX_KEY_HEADERS {
        return Err(Error::invalid(format!(
            "{what}: at most {} request_headers",
            aigw_proto::model::MAX_KEY_HEADERS
        )));
    }
    for (name, value) in &spec.request_headers {
        placeholders(value)
            .map_err(|e| Error::invalid(format!("{what}: request_headers[{name:?}]: {e}")))?;
        if !check_key_header(name, value) {
            return Err(Error::invalid(format!(
                "{what}: request header {name:?} is not allowed (lower-case name, not one the gateway sets) or its value is not a valid header value"
            )));
        }
    }
    url(&what, "api_base_url", &spec.api_base_url, false)?;
    if !spec.provider_kind.is_empty() && spec.provider_kind.parse::<ProviderKind>().is_err() {
        return Err(Error::invalid(format!(
            "{what}: unknown provider_kind {:?}",
            spec.provider_kind
        )));
    }
    let secret = match spec.client_secret.as_str() {
        "" => SecretChange::Keep,
        "-" => SecretChange::Remove,
        s => SecretChange::Set(s.to_string()),
    };
    Ok(TemplateInput {
        name: spec.name,
        secret,
        spec: Template {
            description: spec.description,
            authorize_url: spec.authorize_url,
            token_url: spec.token_url,
            device_authorization_url: spec.device_authorization_url,
            client_id: spec.client_id,
            scopes: spec.scopes,
            redirect_uri: spec.redirect_uri,
            authorize_params: spec.authorize_params,
            token_format,
            request_headers: spec.request_headers,
            api_base_url: spec.api_base_url,
            provider_kind: spec.provider_kind,
            notes: spec.notes,
        },
    })
}

/// A piece of a header value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// A value of the ID token (`id_token`), token response (`token`) or
    /// connect parameters (`param`), by JSON pointer (a name for `param`).
    Value {
        source: &'a str,
        path: &'a str,
    },
}

/// Splits a header value into literal text and `{source:path}` values.
pub fn placeholders(value: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let body = &rest[open + 1..];
        let close = body
            .find('}')
            .ok_or_else(|| format!("unterminated {{ in {value:?}"))?;
        let inner = &body[..close];
        let (source, path) = inner.split_once(':').ok_or_else(|| {
            format!("{{{inner}}}: expected {{id_token:/…}}, {{token:/…}} or {{param:NAME}}")
        })?;
        match source {
            "id_token" | "token" if path.starts_with('/') => {}
            "param" if !path.is_empty() && !path.contains('/') => {}
            _ => {
                return Err(format!(
                    "{{{inner}}}: expected {{id_token:/…}}, {{token:/…}} or {{param:NAME}}"
                ));
            }
        }
        out.push(Piece::Value { source, path });
        rest = &body[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The request headers of `spec` with their values filled from `claims`
/// (`{"token": …, "id_token": …, "param": …}`). A header whose value names
/// something missing, or does not make a valid header, is an error naming
/// it (at connect time), never a secret.
pub fn resolve_headers(
    spec: &Template,
    claims: &Value,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in &spec.request_headers {
        let mut v = String::new();
        for piece in placeholders(value)? {
            match piece {
                Piece::Text(t) => v.push_str(t),
                Piece::Value { source, path } => {
                    let found = match source {
                        "param" => claims.get("param").and_then(|p| p.get(path)),
                        _ => claims.get(source).and_then(|c| c.pointer(path)),
                    };
                    match found {
                        Some(Value::String(s)) => v.push_str(s),
                        Some(n @ (Value::Number(_) | Value::Bool(_))) => v.push_str(&n.to_string()),
                        _ => {
                            return Err(format!(
                                "header {name:?} needs {source}:{path}, which the account does not have"
                            ));
                        }
                    }
                }
            }
        }
        if !check_key_header(name, &v) {
            return Err(format!(
                "header {name:?}: the value is not a valid header value"
            ));
        }
        out.insert(name.clone(), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_obey_the_rules_admins_do() {
        for (name, t, secret) in builtins() {
            let spec = OAuthTemplateSpec {
                name: name.into(),
                client_secret: secret.unwrap_or_default().into(),
                ..info(&Resolved {
                    name: name.into(),
                    spec: t.clone(),
                    client_secret: None,
                    builtin: true,
                    overrides_builtin: false,
                })
            };
            let checked = validate(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(checked.spec, t, "{name}");
        }
    }

    #[test]
    fn headers_are_filled_from_the_id_token_token_and_params() {
        let (_, codex, _) = builtins()
            .into_iter()
            .find(|(n, _, _)| *n == "openai-codex")
            .unwrap();
        let claims = json!({
            "id_token": {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-42"}},
            "token": {}, "param": {}
        });
        let h = resolve_headers(&codex, &claims).unwrap();
        assert_eq!(h["chatgpt-account-id"], "acct-42");
        assert_eq!(h["openai-beta"], "responses=experimental");
        let e = resolve_headers(&codex, &json!({})).unwrap_err();
        assert!(e.contains("chatgpt-account-id"), "{e}");

        let t = Template {
            request_headers: map(&[("x-goog-user-project", "p-{param:project}-{token:/n}")]),
            ..Template::default()
        };
        let h = resolve_headers(
            &t,
            &json!({"param": {"project": "alpha"}, "token": {"n": 7}}),
        )
        .unwrap();
        assert_eq!(h["x-goog-user-project"], "p-alpha-7");
        // A value that would break a header line is refused.
        let bad = json!({"param": {"project": "a\r\nx-evil: 1"}, "token": {"n": 1}});
        assert!(resolve_headers(&t, &bad).is_err());
    }

    #[test]
    fn bad_templates_are_refused_with_the_field_named() {
        let good = || OAuthTemplateSpec {
            name: "acme".into(),
            authorize_url: "https://id.acme.test/authorize".into(),
            token_url: "https://id.acme.test/token".into(),
            client_id: "cli".into(),
            redirect_uri: "http://localhost:1/cb".into(),
            ..Default::default()
        };
        assert!(validate(good()).is_ok());
        let cases: Vec<(OAuthTemplateSpec, &str)> = vec![
            (
                OAuthTemplateSpec {
                    token_url: String::new(),
                    ..good()
                },
                "token_url",
            ),
            (
                OAuthTemplateSpec {
                    token_url: "ftp://x".into(),
                    ..good()
                },
                "token_url",
            ),
            (
                OAuthTemplateSpec {
                    client_id: String::new(),
                    ..good()
                },
                "client_id",
            ),
            (
                OAuthTemplateSpec {
                    token_format: "xml".into(),
                    ..good()
                },
                "token_format",
            ),
            (
                OAuthTemplateSpec {
                    redirect_uri: String::new(),
                    ..good()
                },
                "redirect_uri",
            ),
            (
                OAuthTemplateSpec {
                    authorize_params: map(&[("state", "x")]),
                    ..good()
                },
                "state",
            ),
            (
                OAuthTemplateSpec {
                    request_headers: map(&[("authorization", "x")]),
                    ..good()
                },
                "authorization",
            ),
            (
                OAuthTemplateSpec {
                    request_headers: map(&[("x-a", "{nope}")]),
                    ..good()
                },
                "x-a",
            ),
            (
                OAuthTemplateSpec {
                    provider_kind: "x".into(),
                    ..good()
                },
                "provider_kind",
            ),
            (
                OAuthTemplateSpec {
                    scopes: vec!["a b".into()],
                    ..good()
                },
                "scopes",
            ),
        ];
        for (spec, field) in cases {
            let e = validate(spec).err().expect(field).to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        assert!(matches!(
            validate(OAuthTemplateSpec {
                client_secret: "-".into(),
                ..good()
            })
            .unwrap()
            .secret,
            SecretChange::Remove
        ));
    }
}
