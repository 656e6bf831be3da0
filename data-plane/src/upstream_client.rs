//! The HTTP/1.1 client to upstreams, with its own connection pool. Unlike
//! hyper-util's pooled client, which runs each connection in a task of its own
//! and hands a response body over one HTTP chunk per turn of that task, the
//! connection here is driven by whoever reads the body: a burst of events that
//! arrived in one `recv` is decoded at once and can leave in one write. It
//! also saves two task wake-ups per chunk. HTTP/1.1 only: every provider
//! API speaks it, and streams gain nothing from h2 multiplexing here.
//!
//! Requests leave as an origin server expects them, exactly as curl sends
//! them: the request line in origin form (`POST /v1/chat/completions`), a
//! `Host` header naming the authority (the port only when it is not the
//! scheme's default), and the same host as TLS SNI. Strict front ends such
//! as nginx answer anything else with 400.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::Service;

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
/// Boxed: hyper's connection state (buffers, and the TLS session on HTTPS)
/// is about 1.7 KB, and it travels inside every response body and future
/// that holds it; a box makes each of those moves one pointer.
type Conn = Box<Connection<Io, Full<Bytes>>>;

/// Idle connections kept per upstream, and for how long: under the idle
/// timeouts of common front ends (an AWS load balancer's 60 s, nginx's
/// 75 s), so the server rarely closes a connection as it is reused.
const MAX_IDLE_PER_HOST: usize = 256;
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// How soon after a request went out on a pooled connection its close
/// still reads as the server's idle close crossing it (the close was on its
/// way before the request arrived: within a round trip), not as a server
/// that read the request, worked on it and died. Only the first is sent
/// again: hyper cannot tell them apart otherwise, and the second may have
/// been billed.
const CLOSED_IDLE_WINDOW: Duration = Duration::from_secs(1);
/// DNS, TCP connect and TLS handshake, together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// A pooled connection ended without a byte of answer as the request
    /// went out: the server closed it idle, without reading the request.
    #[error("the pooled connection was closed as the request went out: {0}")]
    ClosedIdle(hyper::Error),
    #[error("the upstream URL has no host")]
    NoHost,
    #[error("upstream TLS setup: {0}")]
    Tls(String),
}

impl ClientError {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }

    /// See [`ClientError::ClosedIdle`]: safe to send once more.
    pub fn closed_idle(&self) -> bool {
        matches!(self, Self::ClosedIdle(_))
    }
}

struct Idle {
    send: SendRequest<Full<Bytes>>,
    conn: Conn,
    since: Instant,
}

/// Idle connections by upstream, one shard per serving thread: a socket is
/// registered with the runtime that opened it, so a connection made on one
/// core's runtime is only reused there (reused elsewhere, every read would
/// be a wake-up across threads). Threads that are not serving threads share
/// shard 0.
struct Pool {
    shards: Box<[Mutex<Shard>]>,
}

/// One thread's idle connections, by upstream (`scheme://authority`).
type Shard = HashMap<String, Vec<Idle>>;

/// Shards kept; serving threads past this many share them.
const POOL_SHARDS: usize = 64;

impl Pool {
    fn new() -> Self {
        Self {
            shards: (0..POOL_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The calling thread's shard.
    fn here(&self) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[crate::cores::current() % POOL_SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The data plane's outbound connector (upstreams, the OTLP/HTTP
/// exporter): HTTP/1.1 over TCP or TLS, trusting the system's roots,
/// Mozilla's and, when given, every certificate in the PEM file
/// `extra_ca`; connections are given up after 5 s.
pub(crate) fn https_connector(
    extra_ca: Option<&Path>,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let tls = aigw_proto::tls::upstream_client_config(extra_ca)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[derive(Clone)]
pub struct UpstreamClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Arc<Pool>,
    connect_timeout: Duration,
}

impl UpstreamClient {
    /// A client trusting the system's roots, Mozilla's (webpki-roots) and,
    /// when given, every certificate in the PEM file `extra_ca`
    /// (`AIGW_UPSTREAM_CA_FILE`: a private CA in front of a self-hosted model).
    pub fn new(extra_ca: Option<&Path>) -> Result<Self, ClientError> {
        Ok(Self {
            connector: https_connector(extra_ca).map_err(ClientError::Tls)?,
            idle: Arc::new(Pool::new()),
            connect_timeout: CONNECT_TIMEOUT,
        })
    }

    /// Sends `req`, on a pooled connection when `pooled` and one is idle;
    /// the response body keeps driving the connection and returns it to the
    /// pool when it has been read to the end. Not pooled: the resend of a
    /// request a pooled connection's idle close crossed goes on a new one
    /// (its neighbours in the pool, idle as long, may be closing too).
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        pooled: bool,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let key = pool_key(req.uri())?;
        let (target, req) = origin_form(req)?;
        // A pooled connection the server closed while idle fails before the
        // request leaves; hyper then hands the request back and it goes out
        // once on a fresh connection. When the close crosses the request on
        // the wire (the server's keep-alive timeout ran out as it was sent),
        // the connection ends without a byte of answer: that is
        // [`ClientError::ClosedIdle`], which the caller may send again
        // (`forward` does, once, as no failure of the credential).
        if pooled && let Some((send, conn)) = self.checkout(&key) {
            let sent = Instant::now();
            match self.send_on(&key, send, conn, req).await {
                Ok(r) => return Ok(r),
                Err(SendError {
                    unsent: Some(req), ..
                }) => return Box::pin(self.fresh(&key, &target, req)).await,
                Err(SendError {
                    error: ClientError::Http(e),
                    ..
                }) if closed_unanswered(&e) && sent.elapsed() < CLOSED_IDLE_WINDOW => {
                    return Err(ClientError::ClosedIdle(e));
                }
                Err(e) => return Err(e.error),
            }
        }
        // Boxed: connecting (DNS, TCP, TLS) is a large future, and rare
        // once the pool is warm; inline it would widen every request's.
        Box::pin(self.fresh(&key, &target, req)).await
    }

    async fn fresh(
        &self,
        key: &str,
        target: &Uri,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let (send, conn) = self.connect(target).await?;
        self.send_on(key, send, conn, req)
            .await
            .map_err(|e| e.error)
    }

    async fn connect(&self, uri: &Uri) -> Result<(SendRequest<Full<Bytes>>, Conn), ClientError> {
        let mut connector = self.connector.clone();
        // DNS, TCP and the TLS handshake together: a front end that accepts
        // and never answers the ClientHello is a connection failure, not a
        // wait as long as the whole answer's.
        let io = tokio::time::timeout(self.connect_timeout, connector.call(uri.clone()))
            .await
            .map_err(|_| {
                ClientError::Connect(format!("no connection within {:?}", self.connect_timeout))
            })?
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (send, conn) = http1::Builder::new().handshake(io).await?;
        Ok((send, Box::new(conn)))
    }

    async fn send_on(
        &self,
        key: &str,
        mut send: SendRequest<Full<Bytes>>,
        mut conn: Conn,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let mut fut = std::pin::pin!(send.try_send_request(req));
        let mut conn_done: Option<Result<(), hyper::Error>> = None;
        let resp = poll_fn(|cx| {
            if conn_done.is_none()
                && let Poll::Ready(r) = Pin::new(&mut conn).poll(cx)
            {
                conn_done = Some(r);
            }
            fut.as_mut().poll(cx)
        })
        .await;
        let resp = match resp {
            Ok(r) => r,
            Err(mut e) => {
                let unsent = e.take_message();
                return Err(SendError {
                    error: e.into_error().into(),
                    unsent,
                });
            }
        };
        let (parts, body) = resp.into_parts();
        let driven = UpstreamBody {
            body,
            conn: match conn_done {
                Some(_) => None,
                None => Some(conn),
            },
            send: Some(send),
            key: key.to_string(),
            pool: self.idle.clone(),
            done: false,
            ahead: None,
        };
        Ok(Response::from_parts(parts, driven))
    }

    fn checkout(&self, key: &str) -> Option<(SendRequest<Full<Bytes>>, Conn)> {
        let mut idle = self.idle.here();
        let list = idle.get_mut(key)?;
        while let Some(mut c) = list.pop() {
            if c.since.elapsed() > IDLE_TIMEOUT || c.send.is_closed() {
                continue;
            }
            // Let the connection notice a close that happened while idle.
            let mut cx = Context::from_waker(Waker::noop());
            if Pin::new(&mut c.conn).poll(&mut cx).is_ready() || !c.send.is_ready() {
                continue;
            }
            return Some((c.send, c.conn));
        }
        None
    }
}

/// A connection that ended before any answer: closed cleanly (hyper's
/// incomplete message) or reset, as a server closing an idle connection
/// does.
fn closed_unanswered(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // A TLS server closing without `close_notify` reads as an
            // unexpected end of file.
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

struct SendError {
    error: ClientError,
    /// The request, when it never left (safe to send elsewhere).
    unsent: Option<Request<Full<Bytes>>>,
}

fn pool_key(uri: &Uri) -> Result<String, ClientError> {
    let auth = uri.authority().ok_or(ClientError::NoHost)?;
    Ok(format!("{}://{}", uri.scheme_str().unwrap_or("http"), auth))
}

/// Splits an absolute-form request into where to connect (scheme and
/// authority, kept for the connector and SNI) and the request as it goes on
/// the wire: origin-form target and a `Host` header.
fn origin_form(req: Request<Full<Bytes>>) -> Result<(Uri, Request<Full<Bytes>>), ClientError> {
    let (mut parts, body) = req.into_parts();
    let target = parts.uri.clone();
    let authority = target.authority().ok_or(ClientError::NoHost)?;
    let default_port = match target.scheme() {
        Some(s) if *s == Scheme::HTTPS => 443,
        _ => 80,
    };
    let host = match authority.port_u16() {
        Some(p) if p != default_port => authority.as_str().to_string(),
        _ => authority.host().to_string(),
    };
    let host = HeaderValue::from_str(&host).map_err(|_| ClientError::NoHost)?;
    parts.headers.insert(HOST, host);
    parts.uri = Uri::from(
        target
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Ok((target, Request::from_parts(parts, body)))
}

/// A response body that drives its own connection while it is read.
pub struct UpstreamBody {
    body: Incoming,
    conn: Option<Conn>,
    send: Option<SendRequest<Full<Bytes>>>,
    key: String,
    pool: Arc<Pool>,
    done: bool,
    /// A frame read ahead (see [`Self::read_ahead`]), handed out first: a
    /// chunk, trailers, or the error that ended the body.
    ahead: Option<Result<Frame<Bytes>, hyper::Error>>,
}

impl UpstreamBody {
    /// The first chunk, if one comes within `wait`, read and kept: the
    /// body still yields it first. Lets the gateway look at how a stream
    /// starts before it commits the app to a `200`.
    pub async fn read_ahead(&mut self, wait: std::time::Duration) -> Option<&Bytes> {
        if self.ahead.is_none() {
            let next = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx));
            // Whatever comes is kept, an error too: the body hands it out
            // as it would have.
            self.ahead = Some(tokio::time::timeout(wait, next).await.ok()??);
        }
        match &self.ahead {
            Some(Ok(frame)) => frame.data_ref(),
            _ => None,
        }
    }

    /// Lets the connection make progress (read, decode); drops it once done.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = &mut self.conn
            && let Poll::Ready(r) = Pin::new(conn).poll(cx)
        {
            self.conn = None;
            if let Err(e) = r {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        }
    }

    /// Back to the pool once the answer was read whole and the connection
    /// can take another request.
    fn release(&mut self) {
        let (Some(send), Some(mut conn)) = (self.send.take(), self.conn.take()) else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        // One more turn lets the connection finish the message it just read.
        if Pin::new(&mut conn).poll(&mut cx).is_ready() || !send.is_ready() {
            return;
        }
        let mut idle = self.pool.here();
        let list = idle.entry(self.key.clone()).or_default();
        // Reuse takes the newest; the oldest, at the front, would never be
        // looked at again after a burst, and are dropped here when expired.
        let expired = list
            .iter()
            .take_while(|c| c.since.elapsed() > IDLE_TIMEOUT)
            .count();
        list.drain(..expired);
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(Idle {
                send,
                conn,
                since: Instant::now(),
            });
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.ahead.take() {
            return Poll::Ready(Some(frame));
        }
        if this.done {
            return Poll::Ready(None);
        }
        // Drive the connection first: it reads and decodes the next chunk
        // into the body; its own errors surface through the body.
        this.drive(cx);
        let mut r = Pin::new(&mut this.body).poll_frame(cx);
        if r.is_pending() && this.conn.is_some() {
            // Polling the body just told the connection it may hand over
            // the next chunk: give it that chance now instead of a wake-up.
            this.drive(cx);
            r = Pin::new(&mut this.body).poll_frame(cx);
        }
        if let Poll::Ready(None) = r {
            this.done = true;
            this.release();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_none() && (self.done || self.body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.body.size_hint();
        if let Some(b) = self
            .ahead
            .as_ref()
            .and_then(|f| f.as_ref().ok()?.data_ref())
        {
            let n = b.len() as u64;
            // Upper first: a lower bound above the upper one panics.
            if let Some(u) = hint.upper() {
                hint.set_upper(u + n);
            }
            hint.set_lower(hint.lower() + n);
        }
        hint
    }
}

#[cfg(test)]
pub(crate) mod tests;
