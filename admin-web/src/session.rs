//! Who is calling, and on whose behalf admin-web calls the control plane.
//! A browser holds the control plane's session token in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` behind HTTPS); automation sends
//! `Authorization: Bearer` with an API token. admin-web keeps no session
//! state: the token goes with every Admin API call, so the control plane
//! decides every permission and a logout or revocation ends it at once.
//!
//! CSRF: a change made with the cookie must carry `x-aigw-csrf: 1` (which
//! a cross-site form cannot send, and a cross-site script cannot send
//! without a CORS preflight we never grant) and, when the browser says where
//! it comes from (`Origin`, `Sec-Fetch-Site`), come from this origin.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use tonic::metadata::MetadataValue;

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "aigw_session";
pub const OIDC_STATE_COOKIE: &str = "aigw_oidc_state";
pub const CSRF_HEADER: &str = "x-aigw-csrf";
/// Sessions last 12 hours on the control plane; the cookie no longer.
pub const SESSION_MAX_AGE_SECS: i64 = 12 * 3600;

/// The name a cookie of ours goes by. Where cookies are `Secure` (over
/// HTTPS, or with secure cookies forced) it carries the `__Host-` prefix,
/// which browsers accept only from this host itself, over HTTPS, with
/// `Path=/` and no `Domain`: a sibling subdomain (or a page on plain HTTP)
/// can then plant no session, sign-on state or page to go on to of its own
/// ("login CSRF": the admin signed into the attacker's account). Over
/// plain HTTP (a laptop, the tests) the plain name.
pub fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A cookie's value from the request's `Cookie` headers; none when the
/// name comes with two different values. A page on another port of this
/// host, or on a sibling subdomain, can set a cookie of the same name
/// (with a longer path, so browsers send it first): taking the first would
/// let it sign the admin into the attacker's session ("cookie tossing").
/// Refused, the admin is signed out instead, and told why at sign-in.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = cookie_values(headers, name);
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    Some(first.to_string())
}

/// Whether the request carries two different values for the cookie.
pub fn cookie_is_ambiguous(headers: &HeaderMap, name: &str) -> bool {
    let mut values = cookie_values(headers, name);
    values
        .next()
        .is_some_and(|first| values.any(|v| v != first))
}

/// Every value the request's `Cookie` headers give `name`, in order.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether cookies set for this request are `Secure` (and so named
/// `__Host-…`): forced by configuration, or the request came over HTTPS.
pub fn secure(s: &AppState, headers: &HeaderMap) -> bool {
    s.secure_cookies || is_https(headers)
}

/// Whether the request reached us over HTTPS (directly or at a proxy).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the cookie `base` (its name from
/// [`cookie_name`]). `path` holds over plain HTTP; a `Secure` cookie's is
/// `/`, which its `__Host-` name requires.
pub fn set_cookie(
    base: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
    secure: bool,
) -> HeaderValue {
    let name = cookie_name(base, secure);
    let (path, secure) = if secure {
        ("/", "; Secure")
    } else {
        (path, "")
    };
    let v = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The caller's token, checked for CSRF when it came in a cookie.
#[derive(Clone)]
pub struct Caller {
    token: String,
}

impl Caller {
    /// `msg` as an Admin API request made as the caller.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = MetadataValue::try_from(format!("Bearer {}", self.token)) {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF rule for a request authenticated by cookie (or about to get
/// one: login).
pub fn check_csrf(parts: &Parts) -> Result<(), ApiError> {
    if safe(&parts.method) {
        return Ok(());
    }
    let h = &parts.headers;
    if h.get(CSRF_HEADER).is_none() {
        return Err(ApiError::Csrf(
            "changes made with the session cookie, and signing in, need the x-aigw-csrf header (any value)",
        ));
    }
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // The browser's own word (no script can set this header): behind a
        // proxy that rewrites `Host` (nginx does by default) the `Origin`
        // cannot be matched to it, and need not be.
        return if matches!(site, "same-origin" | "none") {
            Ok(())
        } else {
            Err(ApiError::Csrf("cross-site requests are refused"))
        };
    }
    // Older browsers: the `Origin` must name this host, as the browser
    // reached it (`Host`, or the proxy's `X-Forwarded-Host`).
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let named = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        let ok = origin.split_once("://").is_some_and(|(scheme, authority)| {
            matches!(scheme, "http" | "https")
                && [named(header::HOST.as_str()), named("x-forwarded-host")]
                    .contains(&Some(authority))
        });
        if !ok {
            return Err(ApiError::Csrf(
                "requests from another origin are refused (behind a proxy, pass the browser's Host on)",
            ));
        }
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer(&parts.headers) {
            return Ok(Caller { token });
        }
        let name = cookie_name(SESSION_COOKIE, secure(s, &parts.headers));
        let token = cookie(&parts.headers, &name)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::NoCredentials)?;
        check_csrf(parts)?;
        Ok(Caller { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn state(secure_cookies: bool) -> AppState {
        use clap::Parser as _;
        let cfg = crate::config::Config::try_parse_from([
            "admin-web",
            "--control-plane",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        AppState::new(crate::grpc::Grpc::new(&cfg).unwrap(), secure_cookies, &[])
    }

    /// Where cookies are `Secure` the session is read only from the
    /// `__Host-` cookie, which no sibling subdomain or plain-HTTP page can
    /// set; the plain name another site could plant signs no one in.
    #[tokio::test]
    async fn over_https_only_the_host_prefixed_session_counts() {
        for (forced, headers) in [
            (false, vec![("x-forwarded-proto", "https")]),
            (true, vec![]),
        ] {
            let with = |cookie: &'static str| {
                let mut h = headers.clone();
                h.push(("cookie", cookie));
                parts("GET", &h)
            };
            let mut p = with("aigw_session=planted");
            assert!(matches!(
                Caller::from_request_parts(&mut p, &state(forced)).await,
                Err(ApiError::NoCredentials)
            ));
            let mut p = with("aigw_session=planted; __Host-aigw_session=mine");
            assert_eq!(
                Caller::from_request_parts(&mut p, &state(forced))
                    .await
                    .unwrap()
                    .token,
                "mine"
            );
        }
        // Over plain HTTP the plain name, as before.
        let mut p = parts(
            "GET",
            &[("cookie", "__Host-aigw_session=x; aigw_session=y")],
        );
        assert_eq!(
            Caller::from_request_parts(&mut p, &state(false))
                .await
                .unwrap()
                .token,
            "y"
        );
    }

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri("/api/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn bearer_then_cookie_with_csrf_rules() {
        let mut p = parts("POST", &[("authorization", "Bearer aigw-t-1")]);
        assert_eq!(
            Caller::from_request_parts(&mut p, &state(false))
                .await
                .unwrap()
                .token,
            "aigw-t-1"
        );
        let mut p = parts("GET", &[("cookie", "a=b; aigw_session=aigw-s-1")]);
        assert_eq!(
            Caller::from_request_parts(&mut p, &state(false))
                .await
                .unwrap()
                .token,
            "aigw-s-1"
        );
        let mut p = parts("GET", &[]);
        assert!(matches!(
            Caller::from_request_parts(&mut p, &state(false)).await,
            Err(ApiError::NoCredentials)
        ));
        // A cookie change without the header, or from elsewhere, is refused.
        for headers in [
            vec![("cookie", "aigw_session=s")],
            vec![
                ("cookie", "aigw_session=s"),
                (CSRF_HEADER, "1"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![
                ("cookie", "aigw_session=s"),
                (CSRF_HEADER, "1"),
                ("host", "admin.example:9090"),
                ("origin", "https://evil.example"),
            ],
        ] {
            let mut p = parts("DELETE", &headers);
            assert!(matches!(
                Caller::from_request_parts(&mut p, &state(false)).await,
                Err(ApiError::Csrf(_))
            ));
        }
        let mut p = parts(
            "DELETE",
            &[
                ("cookie", "aigw_session=s"),
                (CSRF_HEADER, "1"),
                ("host", "admin.example:9090"),
                ("origin", "http://admin.example:9090"),
                ("sec-fetch-site", "same-origin"),
            ],
        );
        assert!(
            Caller::from_request_parts(&mut p, &state(false))
                .await
                .is_ok()
        );
    }

    #[test]
    fn a_cookie_sent_twice_with_different_values_counts_as_none() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; aigw_session=evil"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("aigw_session=mine"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        assert!(cookie_is_ambiguous(&h, SESSION_COOKIE));
        assert_eq!(cookie(&h, "a").as_deref(), Some("1"));
        let mut same = HeaderMap::new();
        same.append(
            header::COOKIE,
            HeaderValue::from_static("aigw_session=t; aigw_session=t"),
        );
        assert_eq!(cookie(&same, SESSION_COOKIE).as_deref(), Some("t"));
        assert!(!cookie_is_ambiguous(&same, SESSION_COOKIE));
        assert!(!cookie_is_ambiguous(&HeaderMap::new(), SESSION_COOKIE));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let v = set_cookie(OIDC_STATE_COOKIE, "st", "/api/auth/oidc", "Lax", 60, true);
        let v = v.to_str().unwrap();
        assert!(
            v.starts_with("__Host-aigw_oidc_state=st; Path=/;") && v.ends_with("; Secure"),
            "{v}"
        );
        let v = set_cookie(OIDC_STATE_COOKIE, "st", "/api/auth/oidc", "Lax", 60, false);
        assert!(
            v.to_str()
                .unwrap()
                .starts_with("aigw_oidc_state=st; Path=/api/auth/oidc;")
        );
        let v = set_cookie(SESSION_COOKIE, "tok", "/", "Strict", 60, true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Secure"));
        assert!(
            !set_cookie("a", "b", "/", "Lax", 0, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    /// Behind a proxy that rewrites `Host` (nginx's default), a browser's
    /// same-origin change passes on its `Sec-Fetch-Site`; without that
    /// header the `Origin` must name `Host` or the proxy's
    /// `X-Forwarded-Host`; a cross-site one never passes.
    #[test]
    fn the_same_origin_check_holds_behind_a_proxy() {
        let check = |headers: &[(&str, &str)]| {
            let mut r = Request::post("/api/auth/login").header(CSRF_HEADER, "1");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            check_csrf(&r.body(()).unwrap().into_parts().0).is_ok()
        };
        let public = ("origin", "https://admin.example");
        let host = ("host", "127.0.0.1:9090");
        assert!(check(&[public, host, ("sec-fetch-site", "same-origin")]));
        assert!(!check(&[public, host, ("sec-fetch-site", "cross-site")]));
        assert!(!check(&[public, host, ("sec-fetch-site", "same-site")]));
        // Older browsers: Origin against Host or X-Forwarded-Host.
        assert!(!check(&[public, host]));
        assert!(check(&[
            public,
            host,
            ("x-forwarded-host", "admin.example")
        ]));
        assert!(check(&[("origin", "http://127.0.0.1:9090"), host]));
        assert!(!check(&[
            ("origin", "evil://admin.example"),
            host,
            ("x-forwarded-host", "admin.example")
        ]));
        // The CSRF header is needed whatever the browser says.
        let bare = Request::post("/api/auth/login")
            .header("sec-fetch-site", "same-origin")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(check_csrf(&bare).is_err());
    }
}
