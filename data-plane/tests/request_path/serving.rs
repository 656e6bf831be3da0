//! The binary's way of serving: one single-threaded runtime per listener,
//! all on one port (`SO_REUSEPORT`), over real sockets.

use std::time::Duration;

use bytes::Bytes;
use data_plane::listener;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::harness::{APP_KEY, Gw, chat};

/// Opens a keep-alive connection and sends `n` chat completions on it.
async fn chats_on_one_connection(port: u16, n: usize) -> Vec<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut contents = Vec::new();
    for i in 0..n {
        let req = http::Request::post("/v1/chat/completions")
            .header("host", format!("127.0.0.1:{port}"))
            .header("authorization", format!("Bearer {APP_KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                chat(&format!("hello {i}")).to_string(),
            )))
            .expect("request");
        let resp = send.send_request(req).await.expect("answered");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        contents.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .expect("an answer")
                .to_string(),
        );
    }
    contents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_serving_thread_answers_on_one_port_and_stops_on_shutdown() {
    let gw = Gw::start(&[]).await;
    let listeners =
        listener::bind_per_core("127.0.0.1:0".parse().expect("addr"), 3).expect("binds");
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect();
    assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    let port = ports[0];

    let Gw { node, mock, .. } = gw;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve_per_core(listeners, async {
        let _ = stopped.await;
    }));

    // Many connections at once: the kernel spreads them over the threads,
    // and every one is answered in full.
    let clients: Vec<_> = (0..24)
        .map(|_| tokio::spawn(chats_on_one_connection(port, 4)))
        .collect();
    let mut answered = 0;
    for c in clients {
        let contents = c.await.expect("client");
        assert!(contents.iter().all(|c| !c.is_empty()));
        answered += contents.len();
    }
    assert_eq!(answered, 96);
    assert_eq!(
        mock.mock()
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .count(),
        96
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("stops within the drain time")
        .expect("task")
        .expect("served");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "no thread listens after shutdown"
    );
}

/// A serving thread that dies (here: tokio refuses a blocking socket, a
/// debug-build check) ends the whole server with an error naming it, instead
/// of leaving the port half served.
#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_thread_that_dies_stops_the_server_with_an_error() {
    let gw = Gw::start(&[]).await;
    let listeners =
        listener::bind_per_core("127.0.0.1:0".parse().expect("addr"), 2).expect("binds");
    listeners[1].set_nonblocking(false).expect("blocking");
    let Gw { node, .. } = gw;
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        node.serve_per_core(listeners, std::future::pending()),
    )
    .await
    .expect("returns without a shutdown signal");
    let err = served.expect_err("the dead thread is reported");
    assert!(err.to_string().contains("serving thread 2"), "{err}");
}

/// An app that stops reading a long streamed answer (its socket stays
/// full) is cut off after the idle timeout, and the stream is traced as
/// abandoned: a paused stream cannot hold its connection, and its budget
/// reservation, for as long as the app likes.
#[tokio::test]
async fn an_app_that_stops_reading_is_cut_off_and_its_stream_traced() {
    let gw = Gw::start(&["--idle-timeout-secs", "1"]).await;
    // About 8 MB of events: more than the app's and the gateway's socket
    // buffers hold.
    let chunk = serde_json::json!({
        "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "x".repeat(200)}}],
    });
    let event = format!("data: {chunk}\n\n");
    let mut body = event.repeat(8 * 1024 * 1024 / event.len());
    body.push_str("data: [DONE]\n\n");
    gw.mock.mock().add_fault(aigw_e2e::Fault {
        stream_body: Some(body),
        ..aigw_e2e::Fault::default()
    });
    let listeners =
        listener::bind_per_core("127.0.0.1:0".parse().expect("addr"), 1).expect("binds");
    let port = listeners[0].local_addr().expect("bound").port();
    let Gw { node, cp, .. } = gw;
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.serve_per_core(listeners, async {
        let _ = stopped.await;
    }));

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut app = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connects");
    send_stream_request(&mut app, port).await;
    // ... and never reads.
    let t = record_with_error(&cp, "client closed the stream early").await;
    assert_eq!(t.status, 200);
    // The stream reports no usage: what it carried is estimated, whether
    // the gateway read its rest after the app was cut off or not.
    assert!(t.usage_source.starts_with("estimated_"), "{t:?}");
    assert!(t.output_tokens > 0, "{t:?}");
    drop(app);
}

/// Writes a streamed chat request on `app`, as an SDK sends it.
async fn send_stream_request(app: &mut TcpStream, port: u16) {
    use tokio::io::AsyncWriteExt;
    let req = crate::harness::chat_stream("a long one").to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
         authorization: Bearer {APP_KEY}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        req.len()
    );
    app.write_all(head.as_bytes()).await.expect("head");
    app.write_all(req.as_bytes()).await.expect("body");
}

/// The first trace the control plane received with `error`, waited for up
/// to 8 s.
async fn record_with_error(
    cp: &crate::control_plane::ControlPlane,
    error: &str,
) -> aigw_proto::pb::trace::TraceRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        if let Some(t) = cp.records().into_iter().find(|r| r.error == error) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no trace with error {error:?}: {:?}",
            cp.records()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `raw` on a new connection and reads until the gateway closes it.
async fn raw_exchange(port: u16, raw: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut app = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    // The gateway may answer (and close) before it has read all of it.
    let _ = app.write_all(raw).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), app.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// The head and parsed JSON body of the last answer in `text`.
fn last_answer(text: &str) -> (String, serde_json::Value) {
    let at = text.rfind("HTTP/1.1 ").expect("an answer");
    let (head, body) = text[at..].split_once("\r\n\r\n").expect("a head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a length")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(body.len(), len, "the body is framed exactly: {text}");
    (
        head.to_string(),
        serde_json::from_str(body).expect("a JSON error body"),
    )
}

/// A request hyper cannot parse (headers too large, a URL too long, a
/// broken request line) is answered before the service sees it; that
/// answer too carries an `x-request-id` and an error body, as every answer
/// does, also after a good request on the same connection.
#[tokio::test]
async fn requests_too_broken_to_parse_get_a_request_id_and_an_error_body() {
    let gw = Gw::start(&[]).await;
    let listeners =
        listener::bind_per_core("127.0.0.1:0".parse().expect("addr"), 1).expect("binds");
    let port = listeners[0].local_addr().expect("bound").port();
    let Gw { node, .. } = gw;
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.serve_per_core(listeners, async {
        let _ = stopped.await;
    }));

    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let long_url = format!(
        "GET /v1/models?{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "q".repeat(70_000)
    );
    let good = format!("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n");
    let cases = [
        (big_header, "431"),
        (many_headers, "431"),
        (long_url, "414"),
        ("GET / HTTP/1.1\r\nho st: x\r\n\r\n".to_string(), "400"),
        (format!("{good}BREW /pot\0 HTTP/1.1\r\n\r\n"), "400"),
    ];
    for (raw, status) in cases {
        let text = raw_exchange(port, raw.as_bytes()).await;
        let (head, body) = last_answer(&text);
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("\r\nx-request-id: req_"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json"),
            "{head}"
        );
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    // The good request before the broken one was answered in full.
    let text = raw_exchange(
        port,
        format!("{good}BREW /pot\0 HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(text.matches("x-request-id: req_").count(), 2, "{text}");
}

/// SIGTERM with a stream longer than the drain time
/// (`AIGW_SHUTDOWN_DRAIN_SECS`): the connection is closed when it runs
/// out, and the stream's trace (what it used so far, and why it ended)
/// reaches the spool before it is sealed, so the next start ships it.
#[tokio::test]
async fn a_stream_cut_by_the_shutdown_drain_is_traced() {
    use tokio::io::AsyncReadExt;

    let gw = Gw::start(&["--shutdown-drain-secs", "1"]).await;
    let chunk = serde_json::json!({
        "id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "word "}}],
    });
    let event = format!("data: {chunk}\n\n");
    gw.mock.mock().add_fault(aigw_e2e::Fault {
        stream_chunks: Some(vec![event; 40]),
        chunk_delay_ms: Some(250),
        ..aigw_e2e::Fault::default()
    });
    let listeners =
        listener::bind_per_core("127.0.0.1:0".parse().expect("addr"), 1).expect("binds");
    let port = listeners[0].local_addr().expect("bound").port();
    let Gw {
        node,
        cp,
        dir,
        mock,
        ..
    } = gw;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve_per_core(listeners, async {
        let _ = stopped.await;
    }));

    let mut app = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    send_stream_request(&mut app, port).await;
    let mut got = vec![0; 4096];
    let n = app.read(&mut got).await.expect("the answer starts");
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("stops after the drain time")
        .expect("joins")
        .expect("serves");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), app.read_to_end(&mut rest)).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("[DONE]"),
        "the stream was cut, not finished"
    );

    let _node = crate::harness::restart(dir.path(), &cp.url());
    let t = record_with_error(&cp, "data plane shut down before the stream ended").await;
    assert_eq!(t.status, 200);
    assert_eq!(t.usage_source, "estimated_broken");
    assert!(t.output_tokens > 0, "what was streamed is counted: {t:?}");
    drop(mock);
}
