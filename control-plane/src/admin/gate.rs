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
                    inner.call(req).await
                }
                Err(e) => Ok(Status::from(e).into_http()),
            }
        })
    }
}
