//! The token endpoint: the requests a client makes of it (code exchange,
//! refresh, device code polling, device authorization) and what its
//! answers mean. Pure: requests are built and answers read without I/O.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Request;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::pkce::clip;
use super::template::Resolved;
use crate::outbound::{Answer, CallError};

/// A token endpoint call gets this long.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Lifetime assumed when the server does not say (`expires_in` is optional).
const DEFAULT_LIFETIME_SECS: i64 = 3600;
/// Lifetimes are clamped to this range, so a bogus answer cannot make the
/// refresher spin or sleep for years.
const MIN_LIFETIME_SECS: i64 = 5;
const MAX_LIFETIME_SECS: i64 = 366 * 86_400;

/// What is asked of the token endpoint. No `Debug`: it holds secrets.
pub enum Grant<'a> {
    Code {
        code: &'a str,
        verifier: &'a str,
        redirect_uri: &'a str,
        state: &'a str,
    },
    Refresh {
        refresh_token: &'a str,
    },
    Device {
        device_code: &'a str,
    },
}

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Why the token endpoint gave no tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// An OAuth error answer (RFC 6749 §5.2, RFC 8628 §3.5): `error` is
    /// its code (`invalid_grant`, `authorization_pending`, …).
    #[error("{error}{}", if .description.is_empty() { String::new() } else { format!(": {}", .description) })]
    Refused {
        error: String,
        description: String,
        status: u16,
    },
    /// Anything else: no answer, a server error, an unreadable answer.
    /// Worth retrying.
    #[error("{0}")]
    Failed(String),
}

impl TokenError {
    pub fn code(&self) -> &str {
        match self {
            Self::Refused { error, .. } => error,
            Self::Failed(_) => "",
        }
    }
}

/// Tokens the endpoint issued. No `Debug`: they are secrets.
pub struct Tokens {
    pub access_token: String,
    /// A new refresh token (rotation), or the first one.
    pub refresh_token: Option<String>,
    pub lifetime_secs: i64,
    /// The non-secret fields of the answer (scope, token_type, account ids
    /// some servers add), for request headers.
    pub fields: Value,
    /// The ID token's claims, when one came.
    pub id_token_claims: Value,
}

fn post(url: &str, t: &Resolved, params: Vec<(&str, &str)>) -> Option<Request<Full<Bytes>>> {
    let mut params = params;
    params.push(("client_id", t.spec.client_id.as_str()));
    if let Some(s) = &t.client_secret {
        params.push(("client_secret", s.as_str()));
    }
    let (content_type, body) = if t.spec.token_format == "json" {
        let obj: Map<String, Value> = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        ("application/json", Value::Object(obj).to_string())
    } else {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            s.append_pair(k, v);
        }
        ("application/x-www-form-urlencoded", s.finish())
    };
    Request::post(url)
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("aigw-oauth/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .ok()
}

/// The token request for `grant`, or None when the template's URL is unusable.
pub fn request(t: &Resolved, grant: &Grant<'_>) -> Option<Request<Full<Bytes>>> {
    let params = match grant {
        Grant::Code {
            code,
            verifier,
            redirect_uri,
            state,
        } => {
            let mut p = vec![
                ("grant_type", "authorization_code"),
                ("code", *code),
                ("redirect_uri", *redirect_uri),
                ("code_verifier", *verifier),
            ];
            // Anthropic's endpoint (JSON) wants the state back as well.
            if t.spec.token_format == "json" {
                p.push(("state", *state));
            }
            p
        }
        Grant::Refresh { refresh_token } => vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", *refresh_token),
        ],
        Grant::Device { device_code } => {
            vec![("grant_type", DEVICE_GRANT), ("device_code", *device_code)]
        }
    };
    post(&t.spec.token_url, t, params)
}

/// The device authorization request (RFC 8628 §3.1).
pub fn device_request(t: &Resolved) -> Option<Request<Full<Bytes>>> {
    let scope = t.spec.scopes.join(" ");
    let mut params = Vec::new();
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    post(&t.spec.device_authorization_url, t, params)
}

/// `text` without `secrets` (an endpoint may echo what it refused), then
/// clipped: clipped first, a secret across the cut would keep its first
/// part, which no longer matches to be scrubbed.
fn scrub(text: &str, secrets: &[&str]) -> String {
    clip(&crate::redact::scrub(text, secrets))
}

/// `secrets` and the template's client secret, which every token request
/// carries: what an error text must not show.
fn with_client_secret<'a>(t: &'a Resolved, secrets: &[&'a str]) -> Vec<&'a str> {
    let mut all = secrets.to_vec();
    if let Some(c) = &t.client_secret {
        all.push(c.as_str());
    }
    all
}

/// The JSON body of an answer, or why there is none usable.
fn body(result: &Result<Answer, CallError>, secrets: &[&str]) -> Result<Value, TokenError> {
    let a = match result {
        Ok(a) => a,
        Err(e) => return Err(TokenError::Failed(scrub(&e.to_string(), secrets))),
    };
    let code = a.status.as_u16();
    let json: Option<Value> = serde_json::from_slice(&a.body).ok();
    if a.status.is_success() {
        return json.filter(Value::is_object).ok_or_else(|| {
            TokenError::Failed(format!("HTTP {code}: the answer is not a JSON object"))
        });
    }
    // RFC 6749 §5.2: 400 (or 401) with {"error": "..."}; some servers
    // (Anthropic) nest it as {"error": {"type"|"code": ..., "message": ...}}.
    let error = json.as_ref().and_then(|j| match j.get("error") {
        Some(Value::String(s)) => Some((
            s.clone(),
            j.get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )),
        Some(Value::Object(o)) => o
            .get("type")
            .or_else(|| o.get("code"))
            .and_then(Value::as_str)
            .map(|t| {
                (
                    t.to_string(),
                    o.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            }),
        _ => None,
    });
    match error {
        Some((error, description)) if code < 500 && code != 429 => Err(TokenError::Refused {
            error: scrub(&error, secrets),
            description: scrub(&description, secrets),
            status: code,
        }),
        _ => Err(TokenError::Failed(format!(
            "HTTP {code}: {}",
            scrub(&String::from_utf8_lossy(&a.body), secrets)
        ))),
    }
}

fn seconds(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The claims of a JWT, read without checking its signature: it came
/// straight from the token endpoint over a verified TLS connection, which
/// OpenID Connect Core §3.1.3.7 accepts in place of the signature.
pub fn jwt_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// A token that can go into an HTTP header as the data planes send it.
fn header_safe(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= aigw_proto::model::MAX_SECRET
        && t.bytes().all(|b| b.is_ascii_graphic())
}

/// Reads a token answer to a request made with template `t`. `secrets`
/// (and the template's client secret) are scrubbed from any error text.
pub fn parse(
    result: &Result<Answer, CallError>,
    t: &Resolved,
    secrets: &[&str],
) -> Result<Tokens, TokenError> {
    let mut obj = match body(result, &with_client_secret(t, secrets))? {
        Value::Object(o) => o,
        _ => return Err(TokenError::Failed("the answer is not a JSON object".into())),
    };
    let take = |o: &mut Map<String, Value>, k: &str| match o.remove(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let access_token = take(&mut obj, "access_token")
        .ok_or_else(|| TokenError::Failed("the answer has no access_token".into()))?;
    let refresh_token = take(&mut obj, "refresh_token");
    let id_token = take(&mut obj, "id_token");
    if !header_safe(&access_token) || refresh_token.as_deref().is_some_and(|r| !header_safe(r)) {
        return Err(TokenError::Failed(
            "the tokens are not what an HTTP header can carry (visible ASCII, at most 8 KiB)"
                .into(),
        ));
    }
    let lifetime_secs = seconds(obj.get("expires_in"))
        .unwrap_or(DEFAULT_LIFETIME_SECS)
        .clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS);
    Ok(Tokens {
        access_token,
        refresh_token,
        lifetime_secs,
        id_token_claims: id_token
            .as_deref()
            .and_then(jwt_claims)
            .unwrap_or(Value::Object(Map::new())),
        fields: Value::Object(obj),
    })
}

/// A device authorization answer (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in_secs: i64,
    pub interval_secs: i64,
}

/// Reads a device authorization answer. Google names the URI
/// `verification_url`; both are accepted.
pub fn parse_device(
    result: &Result<Answer, CallError>,
    t: &Resolved,
) -> Result<DeviceStart, TokenError> {
    let v = body(result, &with_client_secret(t, &[]))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let start = DeviceStart {
        device_code: s("device_code"),
        user_code: s("user_code"),
        verification_uri: Some(s("verification_uri"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| s("verification_url")),
        verification_uri_complete: s("verification_uri_complete"),
        expires_in_secs: seconds(v.get("expires_in")).unwrap_or(600).clamp(10, 3600),
        interval_secs: seconds(v.get("interval")).unwrap_or(5).clamp(1, 60),
    };
    if start.device_code.is_empty()
        || start.user_code.is_empty()
        || start.verification_uri.is_empty()
    {
        return Err(TokenError::Failed(
            "the device authorization answer lacks device_code, user_code or verification_uri"
                .into(),
        ));
    }
    if start.device_code.len() > 4096
        || start.user_code.len() > 256
        || start.verification_uri.len() > 2048
    {
        return Err(TokenError::Failed(
            "the device authorization answer is oversized".into(),
        ));
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::template::Template;
    use http::StatusCode;
    use http_body_util::BodyExt as _;

    fn answer(status: u16, body: &str) -> Result<Answer, CallError> {
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        })
    }

    fn template(format: &str, secret: Option<&str>) -> Resolved {
        Resolved {
            name: "t".into(),
            spec: Template {
                token_url: "https://id.test/token".into(),
                device_authorization_url: "https://id.test/device".into(),
                client_id: "cid".into(),
                scopes: vec!["a".into(), "b".into()],
                token_format: format.into(),
                ..Template::default()
            },
            client_secret: secret.map(str::to_string),
            builtin: false,
            overrides_builtin: false,
        }
    }

    async fn body_of(r: Request<Full<Bytes>>) -> (String, String) {
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
        let b = r.into_body().collect().await.unwrap().to_bytes();
        (ct, String::from_utf8(b.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn requests_in_form_and_json() {
        let grant = Grant::Code {
            code: "c o",
            verifier: "v",
            redirect_uri: "http://localhost:1/cb",
            state: "s",
        };
        let (ct, b) = body_of(request(&template("form", Some("shh")), &grant).unwrap()).await;
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert_eq!(
            b,
            "grant_type=authorization_code&code=c+o&redirect_uri=http%3A%2F%2Flocalhost%3A1%2Fcb&code_verifier=v&client_id=cid&client_secret=shh"
        );
        let (ct, b) = body_of(request(&template("json", None), &grant).unwrap()).await;
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["code_verifier"], "v");
        assert_eq!(v["state"], "s");
        assert!(v.get("client_secret").is_none());
        let (_, b) = body_of(
            request(
                &template("form", None),
                &Grant::Refresh { refresh_token: "r" },
            )
            .unwrap(),
        )
        .await;
        assert_eq!(b, "grant_type=refresh_token&refresh_token=r&client_id=cid");
        let (_, b) = body_of(device_request(&template("form", None)).unwrap()).await;
        assert_eq!(b, "scope=a+b&client_id=cid");
    }

    #[test]
    fn token_answers_are_read_and_errors_classified() {
        let tpl = template("form", None);
        let id = format!(
            "h.{}.s",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"u1","acct":{"id":"a-9"}}"#)
        );
        let t = parse(
            &answer(
                200,
                &format!(
                    r#"{{"access_token":"at-1","refresh_token":"rt-2","expires_in":"120","id_token":"{id}","scope":"x"}}"#
                ),
            ),
            &tpl,
            &[],
        )
        .unwrap();
        assert_eq!(
            (t.access_token.as_str(), t.refresh_token.as_deref()),
            ("at-1", Some("rt-2"))
        );
        assert_eq!(t.lifetime_secs, 120);
        assert_eq!(t.id_token_claims.pointer("/acct/id").unwrap(), "a-9");
        assert_eq!(
            t.fields,
            serde_json::json!({"expires_in": "120", "scope": "x"})
        );
        let t = parse(
            &answer(200, r#"{"access_token":"a","expires_in":0}"#),
            &tpl,
            &[],
        )
        .unwrap();
        assert_eq!(
            (t.lifetime_secs, t.refresh_token.is_none()),
            (MIN_LIFETIME_SECS, true)
        );

        let e = parse(
            &answer(
                400,
                r#"{"error":"invalid_grant","error_description":"rt-secret-123 is revoked"}"#,
            ),
            &tpl,
            &["rt-secret-123"],
        )
        .err()
        .unwrap();
        assert_eq!(e.code(), "invalid_grant");
        assert!(!e.to_string().contains("rt-secret-123"), "{e}");
        let e = parse(
            &answer(400, r#"{"type":"error","error":{"type":"invalid_grant","message":"Refresh token not found"}}"#),
            &tpl,
            &[],
        )
        .err()
        .unwrap();
        assert_eq!(e.code(), "invalid_grant");
        for (status, body) in [
            (500, "oops"),
            (503, r#"{"error":"temporarily_unavailable"}"#),
            (200, "[]"),
            (200, "{}"),
        ] {
            assert!(
                matches!(
                    parse(&answer(status, body), &tpl, &[]),
                    Err(TokenError::Failed(_))
                ),
                "{status} {body}"
            );
        }
        assert!(matches!(
            parse(&answer(200, r#"{"access_token":"a b"}"#), &tpl, &[]),
            Err(TokenError::Failed(_))
        ));
        assert!(matches!(
            parse(&Err(CallError::Timeout(TIMEOUT)), &tpl, &[]),
            Err(TokenError::Failed(_))
        ));
    }

    #[test]
    fn device_answers() {
        let tpl = template("form", None);
        let d = parse_device(
            &answer(
                200,
                r#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_url":"https://id.test/device","expires_in":1800,"interval":5}"#,
            ),
            &tpl,
        )
        .unwrap();
        assert_eq!(
            (d.user_code.as_str(), d.verification_uri.as_str()),
            ("ABCD-EFGH", "https://id.test/device")
        );
        assert_eq!(
            (d.expires_in_secs, d.interval_secs, d.device_code.as_str()),
            (1800, 5, "dc")
        );
        assert!(parse_device(&answer(200, r#"{"user_code":"x"}"#), &tpl).is_err());
        assert!(parse_device(&answer(400, r#"{"error":"invalid_client"}"#), &tpl).is_err());
    }

    /// An error text is cut at 300 characters: a refresh token echoed
    /// across the cut is scrubbed whole before, not left with its first
    /// part showing in the account's error, the log and the database.
    #[test]
    fn a_refresh_token_echoed_across_the_cut_never_shows_its_first_part() {
        let rt = "rt-SECRETPREFIX-0123456789abcdefghijklmnopqrstuvwxyz";
        let body = format!("{}refresh_token={rt}", "x".repeat(250));
        let e = parse(&answer(500, &body), &template("form", None), &[rt])
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(!text.contains("rt-SECRET"), "{text}");
    }

    /// A token endpoint that echoes the request it refused (in its error
    /// text, form-encoded or not) does not get the template's client
    /// secret into the error an admin, a viewer or the log sees.
    #[test]
    fn an_echoed_client_secret_is_scrubbed() {
        let tpl = template("form", Some("tmpl-SECRET/mark+clientsecret"));
        for echoed in [
            "client_id=cid&client_secret=tmpl-SECRET%2Fmark%2Bclientsecret",
            "bad client tmpl-SECRET/mark+clientsecret",
        ] {
            let body = serde_json::json!({"error": "invalid_client", "error_description": echoed});
            let e = parse(&answer(401, &body.to_string()), &tpl, &[])
                .err()
                .unwrap();
            let text = e.to_string();
            assert!(!text.contains("SECRET"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
            let e = parse_device(&answer(400, &body.to_string()), &tpl)
                .err()
                .unwrap();
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
    }
}
