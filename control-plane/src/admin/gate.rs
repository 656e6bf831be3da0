//! Authentication before decoding. tonic reads and decodes a unary call's
//! whole message (up to the 16 MiB limit) before the handler runs, so a
//! stranger could make the control plane buffer and parse large messages
//! only to be told their token is wrong. The services whose every method
//! needs a caller are wrapped in [`Gated`]: the bearer token is checked from
//! the headers alone, and an unauthenticated call is answered
//! `UNAUTHENTICATED` without its body ever being read. The principal found
//! rides in the request's extensions, so [`AdminSvc::caller`] does not look
//! it up twice.
//!
//! (The services with public methods, Login and the SSO sign-in, have a
//! small decoding limit instead; see `server.rs`.)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;

use super::authn;
use super::rbac::Principal;
use crate::db::Db;

/// The caller [`Gated`] authenticated, for the handler.
#[derive(Clone)]
pub struct Authenticated(pub Principal);

/// What a gate needs to authenticate a call.
#[derive(Clone)]
pub struct Gate {
    pub db: Db,
    pub bootstrap_tokens: Arc<[[u8; 32]]>,
}

impl Gate {
    pub fn wrap<S>(&self, inner: S) -> Gated<S> {
        Gated {
            inner,
            gate: self.clone(),
        }
    }
}

/// A gRPC service whose calls are authenticated before their body is read.
#[derive(Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S: NamedService> NamedService for Gated<S> {
    const NAME: &'static str = S::NAME;
}

type Answer = http::Response<Body>;

impl<S> Service<http::Request<Body>> for Gated<S>
where
    S: Service<http::Request<Body>, Response = Answer, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // The service made ready is the one that serves this call; a clone
        // takes its place for the next (tower's usual swap).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let gate = self.gate.clone();
        Box::pin(async move {
            let meta = MetadataMap::from_headers(req.headers().clone());
            match authn::authenticate(&gate.db, &gate.bootstrap_tokens, &meta).await {
                Ok(p) => {
                    req.extensions_mut().insert(Authenticated(p));
                    inner.call(req).await.map(malformed_is_invalid)
                }
                Err(e) => Ok(Status::from(e).into_http()),
            }
        })
    }
}

/// tonic answers a message it cannot decode (bad varint, a string that is
/// not UTF-8) with `INTERNAL`, which says the server failed; the caller's
/// message did: `INVALID_ARGUMENT`.
fn malformed_is_invalid(mut resp: Answer) -> Answer {
    let h = resp.headers_mut();
    let undecodable = h.get("grpc-status").is_some_and(|v| v == "13")
        && h.get("grpc-message").is_some_and(|m| {
            let m = m.as_bytes();
            m.starts_with(b"failed to decode Protobuf message")
                || m.starts_with(b"failed%20to%20decode%20Protobuf%20message")
        });
    if undecodable {
        h.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tonic's own answer to an undecodable message (as a gRPC client
    /// sees it: `INTERNAL: failed to decode Protobuf message: invalid
    /// varint`) becomes `INVALID_ARGUMENT`; a handler's own `INTERNAL`
    /// stays.
    #[test]
    fn an_undecodable_message_is_the_callers_error() {
        let undecodable = Status::internal("failed to decode Protobuf message: invalid varint")
            .into_http::<Body>();
        let out = malformed_is_invalid(undecodable);
        assert_eq!(out.headers()["grpc-status"], "3");
        let ours = Status::internal("database unavailable").into_http::<Body>();
        assert_eq!(malformed_is_invalid(ours).headers()["grpc-status"], "13");
    }
}
