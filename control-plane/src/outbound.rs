//! The control plane's own HTTP client, for what it asks of upstreams
//! itself: health checks (model listings) and, for OAuth accounts, token
//! endpoints. The same roots as the data planes' (`aigw_proto::tls`), every
//! call bounded in time and in the bytes read back.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, Result, with_causes};

/// Most bytes of an answer read (the rest is not needed to classify it).
const MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// An answer, read whole (up to `MAX_BODY`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

impl Outbound {
    pub fn new(extra_ca: Option<&Path>) -> Result<Self> {
        let tls = aigw_proto::tls::upstream_client_config(extra_ca).map_err(Error::Settings)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Ok(Self { client })
    }

    /// Sends `req` and reads the answer, all within `timeout`.
    pub async fn call(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> std::result::Result<Answer, CallError> {
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| CallError::Failed(with_causes(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = match Limited::new(body, MAX_BODY).collect().await {
                Ok(c) => c.to_bytes(),
                // Too long or cut: what came is enough to classify.
                Err(_) => Bytes::new(),
            };
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }
}
