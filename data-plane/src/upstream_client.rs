//! The HTTP/1.1 client to upstreams, with its own connection pool. Unlike
//! hyper-util's pooled client, which runs each connection in a task of its own
//! and hands a response body over one HTTP chunk per turn of that task, the
//! connection here is driven by whoever reads the body: a burst of events that
//! arrived in one `recv` is decoded at once and can leave in one write. It
//! also saves two task wake-ups per chunk. HTTP/1.1 only: every provider
//! API speaks it, and streams gain nothing from h2 multiplexing here.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::Service;

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
type Conn = Connection<Io, Full<Bytes>>;

/// Idle connections kept per upstream, and for how long.
const MAX_IDLE_PER_HOST: usize = 256;
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("the upstream URL has no host")]
    NoHost,
}

impl ClientError {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

struct Idle {
    send: SendRequest<Full<Bytes>>,
    conn: Conn,
    since: Instant,
}

#[derive(Clone)]
pub struct UpstreamClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
}

impl UpstreamClient {
    pub fn new() -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            connector,
            idle: Arc::default(),
        })
    }

    /// Sends `req`; the response body keeps driving the connection and
    /// returns it to the pool when it has been read to the end.
    pub async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let key = pool_key(req.uri())?;
        // A pooled connection the server closed while idle fails before the
        // request leaves; hyper then hands the request back and it goes out
        // once on a fresh connection. A request that may have reached the
        // upstream is never sent twice (it could be billed twice).
        if let Some((send, conn)) = self.checkout(&key) {
            match self.send_on(&key, send, conn, req).await {
                Ok(r) => return Ok(r),
                Err(SendError {
                    unsent: Some(req), ..
                }) => return self.fresh(&key, req).await,
                Err(e) => return Err(e.error),
            }
        }
        self.fresh(&key, req).await
    }

    async fn fresh(
        &self,
        key: &str,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let (send, conn) = self.connect(req.uri()).await?;
        self.send_on(key, send, conn, req)
            .await
            .map_err(|e| e.error)
    }

    async fn connect(&self, uri: &Uri) -> Result<(SendRequest<Full<Bytes>>, Conn), ClientError> {
        let mut connector = self.connector.clone();
        let io = connector
            .call(uri.clone())
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (send, conn) = http1::Builder::new().handshake(io).await?;
        Ok((send, conn))
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
        };
        Ok(Response::from_parts(parts, driven))
    }

    fn checkout(&self, key: &str) -> Option<(SendRequest<Full<Bytes>>, Conn)> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
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

struct SendError {
    error: ClientError,
    /// The request, when it never left (safe to send elsewhere).
    unsent: Option<Request<Full<Bytes>>>,
}

fn pool_key(uri: &Uri) -> Result<String, ClientError> {
    let auth = uri.authority().ok_or(ClientError::NoHost)?;
    Ok(format!("{}://{}", uri.scheme_str().unwrap_or("http"), auth))
}

/// A response body that drives its own connection while it is read.
pub struct UpstreamBody {
    body: Incoming,
    conn: Option<Conn>,
    send: Option<SendRequest<Full<Bytes>>>,
    key: String,
    pool: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
    done: bool,
}

impl UpstreamBody {
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
        let mut idle = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(self.key.clone()).or_default();
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
        self.done || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// A server that counts connections; with `close` set it drops each
    /// connection right after answering, without saying so.
    async fn server(close: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        let body = Full::new(Bytes::from_static(b"data: a\n\ndata: b\n\n"));
                        Ok::<_, std::convert::Infallible>(Response::new(body))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(!close)
                        .serve_connection(TokioIo::new(stream), svc);
                    let _ = conn.await;
                });
            }
        });
        (format!("http://{addr}/v1/x"), accepted)
    }

    async fn get(client: &UpstreamClient, url: &str) -> Bytes {
        let req = Request::post(url).body(Full::new(Bytes::new())).unwrap();
        let resp = client.request(req).await.unwrap();
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn connections_are_reused_after_a_whole_answer() {
        let (url, accepted) = server(false).await;
        let client = UpstreamClient::new().unwrap();
        for _ in 0..3 {
            assert_eq!(&get(&client, &url).await[..], b"data: a\n\ndata: b\n\n");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_reused() {
        let (url, accepted) = server(true).await;
        let client = UpstreamClient::new().unwrap();
        for _ in 0..3 {
            assert_eq!(&get(&client, &url).await[..], b"data: a\n\ndata: b\n\n");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// Answers each connection once, keep-alive promised, then closes it
    /// without a word, as servers with a short idle timeout do.
    async fn silent_closer() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                drop(s);
            }
        });
        (format!("http://{addr}/"), accepted)
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_without_an_error() {
        let (url, accepted) = silent_closer().await;
        let client = UpstreamClient::new().unwrap();
        for _ in 0..3 {
            assert_eq!(&get(&client, &url).await[..], b"ok");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = UpstreamClient::new().unwrap();
        let req = Request::post(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let Err(err) = client.request(req).await else {
            panic!("a closed port must not answer")
        };
        assert!(err.is_connect(), "{err}");
    }
}
