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
    let resp = client.send(req, true).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn connections_are_reused_after_a_whole_answer() {
    let (url, accepted) = server(false).await;
    let client = UpstreamClient::new(None).unwrap();
    for _ in 0..3 {
        assert_eq!(&get(&client, &url).await[..], b"data: a\n\ndata: b\n\n");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Each serving thread reuses only the connections it opened (a socket
/// answers to the runtime that registered it); threads that are not
/// serving threads share one set.
#[tokio::test]
async fn a_serving_thread_reuses_only_its_own_connections() {
    let (url, accepted) = server(false).await;
    let client = UpstreamClient::new(None).unwrap();
    // Each "core" is a thread with its own single-threaded runtime for
    // the whole test, as in the binary; it makes three requests each
    // time it is told to.
    let start_core = |core: usize| {
        let (client, url) = (client.clone(), url.clone());
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<()>>();
        std::thread::spawn(move || {
            crate::cores::enter(core);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                while let Some(done) = rx.recv().await {
                    for _ in 0..3 {
                        assert_eq!(&get(&client, &url).await[..], b"data: a\n\ndata: b\n\n");
                    }
                    let _ = done.send(());
                }
            });
        });
        tx
    };
    let run = |core: &tokio::sync::mpsc::UnboundedSender<_>| {
        let (done, finished) = tokio::sync::oneshot::channel();
        core.send(done).unwrap();
        finished
    };
    let (one, two) = (start_core(1), start_core(2));
    run(&one).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    run(&two).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "core 2 opened its own");
    run(&one).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "core 1 reused its own");
}

#[tokio::test]
async fn a_connection_the_server_closes_is_not_reused() {
    let (url, accepted) = server(true).await;
    let client = UpstreamClient::new(None).unwrap();
    for _ in 0..3 {
        assert_eq!(&get(&client, &url).await[..], b"data: a\n\ndata: b\n\n");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_without_an_error() {
    let (url, accepted) = answers_once(None).await;
    let client = UpstreamClient::new(None).unwrap();
    for _ in 0..3 {
        assert_eq!(&get(&client, &url).await[..], b"ok");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// Answers the first request of each connection, keep-alive promised,
/// then closes it without a word: at once (`next: None`, as servers
/// with a short idle timeout do), or once the next request is read and
/// `next` has passed (zero: a server whose idle timeout runs out just
/// as the request arrives; longer: one that worked on it, then died).
async fn answers_once(next: Option<Duration>) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                if let Some(linger) = next {
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(linger).await;
                }
            });
        }
    });
    (format!("http://{addr}/"), accepted)
}

#[tokio::test]
async fn a_request_crossing_the_servers_idle_close_is_told_apart() {
    let (url, accepted) = answers_once(Some(Duration::ZERO)).await;
    let client = UpstreamClient::new(None).unwrap();
    assert_eq!(&get(&client, &url).await[..], b"ok");
    // Reused, read by the server and closed unanswered.
    let req = Request::post(&url).body(Full::new(Bytes::new())).unwrap();
    let Err(err) = client.send(req, true).await else {
        panic!("the server closed without answering")
    };
    assert!(err.closed_idle(), "{err}");
    // Sent again, it goes out on a fresh connection.
    assert_eq!(&get(&client, &url).await[..], b"ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A resend goes on a new connection though pooled ones wait.
#[tokio::test]
async fn send_unpooled_opens_a_new_connection() {
    let (url, accepted) = server(false).await;
    let client = UpstreamClient::new(None).unwrap();
    get(&client, &url).await;
    let req = Request::post(&url).body(Full::new(Bytes::new())).unwrap();
    let resp = client.send(req, false).await.unwrap();
    resp.into_body().collect().await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // Both are pooled now; the next request reuses one.
    get(&client, &url).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A server that reads the request and closes the connection only after
/// a while may have worked on it: an error, not a close to send again on.
#[tokio::test]
async fn a_close_long_after_the_request_is_not_an_idle_close() {
    let linger = CLOSED_IDLE_WINDOW + Duration::from_millis(200);
    let (url, _) = answers_once(Some(linger)).await;
    let client = UpstreamClient::new(None).unwrap();
    assert_eq!(&get(&client, &url).await[..], b"ok");
    let req = Request::post(&url).body(Full::new(Bytes::new())).unwrap();
    let Err(err) = client.send(req, true).await else {
        panic!("the server closed without answering")
    };
    assert!(!err.closed_idle() && !err.is_connect(), "{err}");
}

/// A front end that accepts and never completes the TLS handshake is a
/// connection failure after the connect timeout.
#[tokio::test]
async fn a_handshake_that_never_ends_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut client = UpstreamClient::new(None).unwrap();
    client.connect_timeout = Duration::from_millis(200);
    let req = Request::post(format!("https://{addr}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let Err(err) = client.send(req, true).await else {
        panic!("a silent server must not answer")
    };
    assert!(err.is_connect(), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = UpstreamClient::new(None).unwrap();
    let req = Request::post(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let Err(err) = client.send(req, true).await else {
        panic!("a closed port must not answer")
    };
    assert!(err.is_connect(), "{err}");
}

/// Reads one request head off a raw socket, answers 200, returns the head.
async fn raw_head(s: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin)) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the head ended");
        head.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .await
        .unwrap();
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn requests_leave_in_origin_form_with_a_host_header() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        raw_head(&mut s).await
    });
    let client = UpstreamClient::new(None).unwrap();
    let url = format!("http://{addr}/v1beta/models/m:generateContent?alt=sse");
    assert_eq!(&get(&client, &url).await[..], b"ok");
    let head = server.await.unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("POST /v1beta/models/m:generateContent?alt=sse HTTP/1.1")
    );
    let hosts: Vec<_> = lines
        .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
        .collect();
    assert_eq!(hosts, [format!("host: {addr}")]);
}

#[test]
fn the_default_port_is_left_out_of_host() {
    for (url, host) in [
        ("https://api.example.com:443/v1/x", "api.example.com"),
        ("http://api.example.com:80/v1/x", "api.example.com"),
        ("https://api.example.com/v1/x", "api.example.com"),
        ("https://api.example.com:8443/v1/x", "api.example.com:8443"),
        ("http://10.0.0.1:8080", "10.0.0.1:8080"),
    ] {
        let req = Request::post(url).body(Full::new(Bytes::new())).unwrap();
        let (target, req) = origin_form(req).unwrap();
        assert_eq!(
            target.to_string().trim_end_matches('/'),
            url.trim_end_matches('/')
        );
        assert_eq!(req.headers()[HOST], host, "{url}");
        assert!(req.uri().authority().is_none(), "{url}");
        assert!(req.uri().path().starts_with('/'));
    }
}

/// A TLS origin whose certificate a test CA signed, for `name`: the CA's
/// PEM (written under `dir`) and the origin's server settings.
pub(crate) fn test_ca(dir: &Path, name: &str) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    (ca_path, Arc::new(cfg))
}

#[tokio::test]
async fn tls_upstreams_are_verified_against_the_extra_ca_with_sni() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server_cfg) = test_ca(dir.path(), "localhost");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_cfg);
    let server = tokio::spawn(async move {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (s, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(s).await else {
                heads.push(None);
                continue;
            };
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            heads.push(Some((sni, raw_head(&mut tls).await)));
        }
        heads
    });
    let url = format!("https://localhost:{port}/v1/chat/completions");
    // Without the CA the certificate is refused: a connect error.
    let plain = UpstreamClient::new(None).unwrap();
    let req = Request::post(&url).body(Full::new(Bytes::new())).unwrap();
    let err = plain
        .send(req, true)
        .await
        .err()
        .expect("unknown CA must fail");
    assert!(err.is_connect(), "{err}");
    let trusting = UpstreamClient::new(Some(&ca)).unwrap();
    assert_eq!(&get(&trusting, &url).await[..], b"ok");
    let heads = server.await.unwrap();
    assert!(heads[0].is_none());
    let (sni, head) = heads[1].clone().unwrap();
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(
        head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("host: localhost:{port}\r\n")),
        "{head}"
    );
}

#[test]
fn a_bad_ca_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = UpstreamClient::new(Some(&missing)).err().unwrap();
    assert!(e.to_string().contains("nope.pem"), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let e = UpstreamClient::new(Some(&empty)).err().unwrap();
    assert!(e.to_string().contains("no certificate"), "{e}");
}
