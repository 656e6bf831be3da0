//! The control plane's HTTP client for the identity provider: HTTPS with
//! the webpki roots (plain HTTP only to a loopback host, for local and test
//! providers), bounded in time and in the size of what it reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{Error, Result};

/// Largest response read from the identity provider.
const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

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

impl HttpClient {
    pub fn new() -> Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| Error::internal(format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        })
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
            Error::Unreachable(format!(
                "identity provider at {}: {e}",
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
        let exchange = async {
            let resp = self.inner.request(req).await.map_err(|e| unreachable(&e))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| unreachable(&e))?
                .to_bytes();
            Ok::<_, Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))??;
        if !status.is_success() {
            // The provider's error text (e.g. invalid_grant) helps the admin;
            // it never holds our secret.
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(Error::SignIn(format!(
                "the identity provider answered {status}: {text}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| unreachable(&format!("answered with unexpected JSON: {e}")))
    }
}
