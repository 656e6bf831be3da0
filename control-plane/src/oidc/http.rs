//! Calls to the identity provider: HTTPS (plain HTTP only to a loopback
//! host, for local and test providers), bounded in time; JSON answers.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{Error, Result};
use crate::outbound::Outbound;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `url` may be called: https, or http to a loopback address.
pub fn check_url(what: &str, raw: &str) -> Result<Url> {
    let url = Url::parse(raw).map_err(|e| Error::invalid(format!("{what} {raw:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(Error::invalid(format!(
            "{what} {raw:?} must be an https:// URL (http:// only for a loopback host)"
        ))),
    }
}

/// JSON calls to the identity provider over the control plane's own HTTP
/// client (`crate::outbound`: the upstreams' roots, bounded in bytes).
#[derive(Clone)]
pub struct HttpClient {
    outbound: Outbound,
}

impl HttpClient {
    pub fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }

    /// GETs JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        self.call(Method::GET, url, None, None).await
    }

    /// POSTs a form, with HTTP Basic credentials when given.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<String>,
    ) -> Result<T> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.call(Method::POST, url, Some(body), basic).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        form: Option<String>,
        basic: Option<String>,
    ) -> Result<T> {
        let target = check_url("identity provider URL", url)?;
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::SignIn(format!(
                "the identity provider at {} did not answer usably: {e}",
                target.origin().ascii_serialization()
            ))
        };
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("aigw-control-plane/", env!("CARGO_PKG_VERSION")),
            );
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(b) = basic {
            req = req.header(header::AUTHORIZATION, format!("Basic {b}"));
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| Error::invalid(format!("identity provider URL {url:?}: {e}")))?;
        let answer = self
            .outbound
            .call(req, TIMEOUT)
            .await
            .map_err(|e| unreachable(&e))?;
        if !answer.status.is_success() {
            // The provider's error text (e.g. invalid_grant) helps the admin;
            // it never holds our secret.
            let text: String = String::from_utf8_lossy(&answer.body)
                .chars()
                .take(300)
                .collect();
            return Err(Error::SignIn(format!(
                "the identity provider answered {}: {text}",
                answer.status
            )));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| unreachable(&format!("answered with unexpected JSON: {e}")))
    }
}
