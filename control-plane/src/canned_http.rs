//! Upstreams for tests that answer every request alike.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Serves on a new loopback port: reads each request's head and answers it
/// `HTTP/1.1 {status}` with `headers` (each `name: value`) and `body`, then
/// closes. Returns its base URL.
pub async fn answering(
    status: &'static str,
    headers: &'static [&'static str],
    body: &'static str,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}
