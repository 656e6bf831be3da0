//! Sign-in (password or OpenID Connect), sign-out, and who the caller is.
//! A successful sign-in sets the session cookie; its token is never in a
//! response body, so page scripts never hold it.

use super::answer;
use aigw_proto::pb::admin::{
    BeginOidcLoginRequest, Caller as CallerInfo, CompleteOidcLoginRequest, LoginRequest,
    LogoutRequest, LogoutResult, SignInOptions, SignInOptionsRequest, UserInfo, WhoAmIRequest,
};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiResult, Errors};
use crate::extract::{Body, Params};
use crate::session::{
    Caller, OIDC_STATE_COOKIE, SESSION_COOKIE, SESSION_MAX_AGE_SECS, check_csrf, cookie,
    cookie_is_ambiguous, cookie_name, secure, set_cookie,
};

/// How people may sign in.
#[utoipa::path(get, path = "/auth/options", tag = "auth", security(()),
    responses((status = 200, body = SignInOptions), Errors))]
pub async fn options(State(s): State<AppState>) -> ApiResult<Json<SignInOptions>> {
    answer(
        s.grpc
            .sign_in()
            .get_sign_in_options(SignInOptionsRequest {}),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub user: UserInfo,
    pub expires_at_ms: i64,
}

/// The CSRF rule for sign-in, which has no session yet: a cross-site page
/// must not sign a browser in to an account of its choosing.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        check_csrf(parts)?;
        Ok(SameOrigin)
    }
}

/// Why signing in is refused while the browser sends two session cookies.
const AMBIGUOUS_SESSION: &str = "your browser sends two different session cookies for this site \
    (one was set by another page on this host); clear this site's cookies, then sign in again";

fn session_cookie(
    s: &AppState,
    headers: &HeaderMap,
    token: &str,
    expires_at_ms: i64,
) -> HeaderValue {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let max_age = ((expires_at_ms - now_ms) / 1000).clamp(0, SESSION_MAX_AGE_SECS);
    set_cookie(
        SESSION_COOKIE,
        token,
        "/",
        "Strict",
        max_age,
        secure(s, headers),
    )
}

/// Sets (or clears) the session cookie. Where cookies are `Secure` the
/// plain-named one a browser may still hold from before they were
/// `__Host-` named (or one planted) is cleared beside it: it is no longer
/// read, and would otherwise linger with its token for its 12 hours.
fn with_session_cookie(h: &mut HeaderMap, cookie: HeaderValue, secure: bool) {
    h.append(header::SET_COOKIE, cookie);
    if secure {
        h.append(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", "/", "Strict", 0, false),
        );
    }
}

/// Signs in with a username and password; sets the session cookie.
/// The control plane throttles failures per source, so the browser's
/// address goes with the call: a stranger's guesses then lock out only the
/// stranger, not everyone who signs in through admin-web.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()),
    request_body = LoginBody,
    responses((status = 200, body = Session), Errors))]
pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    client: ClientIp,
    _: SameOrigin,
    Body(body): Body<LoginBody>,
) -> ApiResult<Response> {
    if cookie_is_ambiguous(&headers, &cookie_name(SESSION_COOKIE, secure(&s, &headers))) {
        // The cookie set below would be sent beside the other one, and
        // the session refused: say why instead.
        return Err(ApiError::BadRequest(AMBIGUOUS_SESSION.into()));
    }
    let r = s
        .grpc
        .identity()
        .login(client.tag(tonic::Request::new(LoginRequest {
            username: body.username,
            password: body.password,
        })))
        .await?
        .into_inner();
    let cookie = session_cookie(&s, &headers, &r.session_token, r.expires_at_ms);
    let session = Session {
        user: r.user.unwrap_or_default(),
        expires_at_ms: r.expires_at_ms,
    };
    let mut resp = Json(session).into_response();
    with_session_cookie(resp.headers_mut(), cookie, secure(&s, &headers));
    Ok(resp)
}

/// Ends the session (on the control plane, not only in this browser).
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 200, body = LogoutResult), Errors))]
pub async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    c: Caller,
) -> ApiResult<Response> {
    let r = s
        .grpc
        .identity()
        .logout(c.req(LogoutRequest {}))
        .await?
        .into_inner();
    let clear = set_cookie(SESSION_COOKIE, "", "/", "Strict", 0, secure(&s, &headers));
    let mut resp = Json(r).into_response();
    with_session_cookie(resp.headers_mut(), clear, secure(&s, &headers));
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeParams {
    /// `true`: a request with no session cookie and no token at all gets
    /// 200 and `null` instead of 401 (the UI's first load, signed out). A
    /// session that ended is still 401.
    pub optional: Option<bool>,
}

/// The caller as the control plane sees it, with the calls it may make.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    params(MeParams),
    responses((status = 200, body = Option<CallerInfo>), Errors))]
pub async fn me(
    State(s): State<AppState>,
    Params(p): Params<MeParams>,
    c: Result<Caller, ApiError>,
) -> ApiResult<Json<Option<CallerInfo>>> {
    let c = match c {
        Ok(c) => c,
        Err(ApiError::NoCredentials) if p.optional == Some(true) => return Ok(Json(None)),
        Err(e) => return Err(e),
    };
    let Json(info) = answer(s.grpc.identity().who_am_i(c.req(WhoAmIRequest {}))).await?;
    Ok(Json(Some(info)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// The page of this site to go on to once signed in (a path, e.g.
    /// `/requests?model=gpt-4o`); anything else goes to the start page.
    pub next: Option<String>,
}

/// Where the page to go on to waits during a single sign-on (with the
/// state, for the callback only).
const OIDC_NEXT_COOKIE: &str = "aigw_oidc_next";

/// `next` if it is a page of this site to go on to after signing in: a
/// path (never `//host`, another origin), with no control character
/// (browsers drop tabs and newlines, so `/<tab>/host` is `//host`) and no
/// backslash (`/\host`), no `.` or `..` segment (`/./api` is `/api`), not
/// the sign-in page or the API. The UI checks the same (`pageOfThisSite`).
fn page_after_sign_in(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let dots = |segment: &str| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    let page = next.len() <= 2048
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !path.split('/').any(dots)
        && !path.starts_with("/login")
        && path != "/api"
        && !path.starts_with("/api/");
    page.then_some(next)
}

/// Starts signing in with the identity provider: redirects there. The
/// page asked for (`next`) is kept for the callback, which goes on to it.
#[utoipa::path(get, path = "/auth/oidc/start", tag = "auth", security(()),
    params(StartParams),
    responses((status = 303, description = "To the identity provider"),
        (status = 200, content_type = "text/html", body = String,
         description = "Back to the sign-in page, the reason in a cookie (the identity provider is not usable)"),
        Errors))]
pub async fn oidc_start(
    State(s): State<AppState>,
    headers: HeaderMap,
    client: ClientIp,
    Params(p): Params<StartParams>,
) -> ApiResult<Response> {
    // A browser navigated here: a failure goes back to the sign-in page
    // with the reason, as the callback's do, not to a page of raw JSON.
    let https = secure(&s, &headers);
    // Sign-ins in progress are bounded per source: the browser's address
    // goes with the call.
    let r = match s
        .grpc
        .sign_in()
        .begin_oidc_login(client.tag(tonic::Request::new(BeginOidcLoginRequest {})))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => {
            return Ok(sign_in_failed(
                &ApiError::from(status).parts().2,
                https,
                &[],
            ));
        }
    };
    let Ok(location) = HeaderValue::from_str(&r.authorization_url) else {
        return Ok(sign_in_failed(
            "the identity provider's sign-in URL is not usable",
            https,
            &[],
        ));
    };
    // Lax: the identity provider sends the browser back with a top-level
    // cross-site navigation, which Strict cookies do not ride on.
    let state = set_cookie(
        OIDC_STATE_COOKIE,
        &r.state,
        "/api/auth/oidc",
        "Lax",
        600,
        secure(&s, &headers),
    );
    let next = p
        .next
        .as_deref()
        .and_then(page_after_sign_in)
        .unwrap_or("/");
    let next = set_cookie(
        OIDC_NEXT_COOKIE,
        &URL_SAFE_NO_PAD.encode(next),
        "/api/auth/oidc",
        "Lax",
        600,
        secure(&s, &headers),
    );
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    // Appended: a header array inserts, so a second cookie would replace the first.
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, state);
    h.append(header::SET_COOKIE, next);
    Ok(resp)
}

/// The page the sign-in that this browser started asked to go on to.
fn page_asked_for(headers: &HeaderMap, secure: bool) -> String {
    cookie(headers, &cookie_name(OIDC_NEXT_COOKIE, secure))
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|p| page_after_sign_in(p).is_some())
        .unwrap_or_else(|| "/".to_string())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A page that sends the browser on to `to` (a same-origin navigation, so
/// the new Strict session cookie goes with it).
fn onward(to: &str) -> Html<String> {
    let to = to
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta http-equiv=\"refresh\" content=\"0;url={to}\"><title>Signing in</title></head>\
         <body><p><a href=\"{to}\">Continue</a></p></body></html>"
    ))
}

/// Where a failed single sign-on goes: the sign-in page with only a code
/// in its address (anyone can link to `/login?error=…` with words of their
/// own, so the page shows no text from its address).
const LOGIN_ERROR_PAGE: &str = "/login?error=sso";
/// The reason travels in a cookie instead: readable by the page's script
/// (it shows and clears it), gone after a minute. Over HTTPS its name has
/// the `__Host-` prefix, which browsers accept only from this host itself
/// (never from a sibling subdomain's `Domain=` cookie); the UI reads only
/// that one there (`ui/src/nav.ts`).
fn login_error_cookie(message: &str, secure: bool) -> HeaderValue {
    let message: String = message.chars().take(300).collect();
    let (name, attrs) = if secure {
        ("__Host-aigw_login_error", "; Path=/; Secure")
    } else {
        ("aigw_login_error", "; Path=/login")
    };
    let v = format!(
        "{name}={}; SameSite=Strict; Max-Age=60{attrs}",
        url_encode(&message)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sign-in page, with `why` in its one-minute cookie (and `cookies`
/// set beside it).
fn sign_in_failed(why: &str, https: bool, cookies: &[HeaderValue]) -> Response {
    let mut resp = onward(LOGIN_ERROR_PAGE).into_response();
    let h = resp.headers_mut();
    for c in cookies {
        h.append(header::SET_COOKIE, c.clone());
    }
    h.append(header::SET_COOKIE, login_error_cookie(why, https));
    resp
}

/// Where the identity provider sends the browser back: completes the
/// sign-in (the state must match this browser's), sets the session cookie
/// and goes on to the UI, or to the sign-in page with the reason.
#[utoipa::path(get, path = "/auth/oidc/callback", tag = "auth", security(()),
    params(CallbackParams),
    responses((status = 200, content_type = "text/html", body = String), Errors))]
pub async fn oidc_callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Params(p): Params<CallbackParams>,
) -> Response {
    let https = secure(&s, &headers);
    let clear_state = set_cookie(OIDC_STATE_COOKIE, "", "/api/auth/oidc", "Lax", 0, https);
    // The state this browser was given when it started, under the name it
    // was given (only the `__Host-` one where cookies are `Secure`).
    let own_state = cookie(&headers, &cookie_name(OIDC_STATE_COOKIE, https));
    let clear_next = set_cookie(OIDC_NEXT_COOKIE, "", "/api/auth/oidc", "Lax", 0, https);
    let fail = |why: &str| sign_in_failed(why, https, &[clear_state.clone(), clear_next.clone()]);
    let started_here = p
        .state
        .as_deref()
        .is_some_and(|state| own_state.as_deref() == Some(state));
    if p.error.is_some() && !started_here {
        // Anyone can link here with an `error_description` of their own
        // ("your account is locked, call …"): the provider's words are
        // shown only for a sign-in this browser started.
        return fail("single sign-on failed; start again");
    }
    if let Some(e) = p.error {
        let d = p.error_description.unwrap_or_default();
        return fail(
            &format!("the identity provider refused: {e} {d}")
                .chars()
                .take(300)
                .collect::<String>(),
        );
    }
    let (Some(code), Some(state)) = (p.code, p.state) else {
        return fail("the identity provider sent no code");
    };
    if own_state.as_deref() != Some(state.as_str()) {
        return fail("this sign-in was not started in this browser; start again");
    }
    let r = match s
        .grpc
        .sign_in()
        .complete_oidc_login(CompleteOidcLoginRequest { state, code })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return fail(&ApiError::from(status).parts().2),
    };
    let session = session_cookie(&s, &headers, &r.session_token, r.expires_at_ms);
    let mut resp = onward(&page_asked_for(&headers, https)).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, clear_state);
    h.append(header::SET_COOKIE, clear_next);
    with_session_cookie(h, session, https);
    resp
}

#[cfg(test)]
mod tests {
    use super::page_after_sign_in;

    /// A single sign-on goes on only to a page of this site: never to
    /// another origin (an open redirect), the sign-in page or the API.
    #[test]
    fn only_a_page_of_this_site_is_gone_on_to() {
        for page in ["/requests?model=gpt-4o&range=24h", "/people/audit", "/"] {
            assert_eq!(page_after_sign_in(page), Some(page));
        }
        for not in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil",
            "",
            "/login?next=/x",
            "/api/auth/logout",
            "/requests\r\nSet-Cookie: x=1",
            "/\t/evil.example",
            "/\n\\evil.example",
            "/x\\y",
            "/./api/auth/me",
            "/%2e/api/auth/me",
            "/x/../api/auth/me",
            "/x/%2E%2e/login",
            "/./login",
            "/api",
            &format!("/{}", "a".repeat(2048)),
        ] {
            assert_eq!(page_after_sign_in(not), None, "{not}");
        }
    }
}
