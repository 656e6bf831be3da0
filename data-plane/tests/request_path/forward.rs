//! `forward`'s retry and cool-down matrix, seen from the app (status, body,
//! headers) and from the trace (which credentials were tried, and how each
//! attempt ended).

use aigw_e2e::{Fault, KeyState};
use aigw_proto::pb::trace::TraceRecord;

use crate::harness::*;

fn attempts(t: &TraceRecord) -> Vec<(String, u32)> {
    t.attempts
        .iter()
        .map(|a| (a.provider_key.clone(), a.status))
        .collect()
}

fn fault_on(key: &str) -> Fault {
    Fault {
        key: Some(key.into()),
        ..Fault::default()
    }
}

#[tokio::test]
async fn an_answer_is_metered_and_priced() {
    let gw = Gw::start(&[]).await;
    let a = gw.post("/v1/chat/completions", chat("say hello")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(a.json()["choices"][0]["message"]["content"].is_string());
    let (prompt, completion) = mock_usage(&gw);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.status, 200);
    assert_eq!(
        (t.provider.as_str(), t.provider_key.as_str()),
        ("openai-pool", "one")
    );
    assert_eq!(attempts(&t), [("one".into(), 200)]);
    assert_eq!((t.input_tokens, t.output_tokens), (prompt, completion));
    assert!(
        (t.cost - cost(prompt, completion)).abs() < 1e-12,
        "{}",
        t.cost
    );
    assert_eq!(t.client_key_id, "key-1");
    assert_eq!(
        (t.model.as_str(), t.api_format.as_str()),
        ("gpt-4o-mini", "openai")
    );
    assert!(t.error.is_empty());
}

#[tokio::test]
async fn a_429_cools_its_credential_for_retry_after_and_the_next_answers() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(429),
        retry_after: Some(30),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("first")).await;
    assert_eq!(a.status, 200);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 429), ("two".into(), 200)]);
    assert_eq!(t.provider_key, "two");

    // Credential one is cooling down: the next request does not try it.
    let b = gw.post("/v1/chat/completions", chat("second")).await;
    assert_eq!(b.status, 200);
    let t = gw.cp.trace(&b.request_id()).await;
    assert_eq!(attempts(&t), [("two".into(), 200)]);
}

/// Gemini says its wait only in the body (`RetryInfo.retryDelay`), and per
/// model: the app is told it, but the credential rests no longer than after
/// an unsaid wait (a second), so one model over its quota does not bench
/// the credential for every other model.
#[tokio::test]
async fn a_wait_said_only_in_the_body_is_told_but_cools_for_a_second() {
    let gw = Gw::start(&[]).await;
    let body = r#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]}}"#;
    for key in [KEY_ONE, KEY_TWO] {
        gw.mock.mock().add_fault(Fault {
            status: Some(429),
            error_body: Some(body.into()),
            ..fault_on(key)
        });
    }
    let a = gw.post("/v1/chat/completions", chat("first")).await;
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert_eq!(a.header("retry-after"), Some("30"));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 429), ("two".into(), 429)]);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let b = gw.post("/v1/chat/completions", chat("second")).await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    let t = gw.cp.trace(&b.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 200)]);
}

#[tokio::test]
async fn a_5xx_moves_on_without_benching_the_credential() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(503),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("first")).await;
    assert_eq!(a.status, 200);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 503), ("two".into(), 200)]);
    let b = gw.post("/v1/chat/completions", chat("second")).await;
    let t = gw.cp.trace(&b.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 200)]);
}

#[tokio::test]
async fn a_revoked_credential_is_benched_and_its_error_never_reaches_the_app() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().set_key(KEY_ONE, KeyState::Revoked);
    let a = gw.post("/v1/chat/completions", chat("first")).await;
    assert_eq!(a.status, 200);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 401), ("two".into(), 200)]);
    let b = gw.post("/v1/chat/completions", chat("second")).await;
    assert_eq!(
        attempts(&gw.cp.trace(&b.request_id()).await),
        [("two".into(), 200)]
    );

    // With both revoked the app hears the gateway's words, not the
    // provider's (which may quote the credential).
    gw.mock.mock().set_key(KEY_TWO, KeyState::Revoked);
    let c = gw.post("/v1/chat/completions", chat("third")).await;
    assert_eq!(c.status, 502, "{:?}", c.body);
    let msg = c.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("rejected the gateway's credential"), "{msg}");
    assert!(!String::from_utf8_lossy(&c.body).contains(KEY_TWO));
    let t = gw.cp.trace(&c.request_id()).await;
    assert_eq!(t.status, 502);
    assert_eq!(t.error, "upstream_error");

    // Both benched as rejected: not "cooling down, retry after 60 s" (a
    // rate limit's words, which SDKs would retry for nothing), but a 503
    // that says an operator must act, with no Retry-After.
    let d = gw.post("/v1/chat/completions", chat("fourth")).await;
    assert_eq!(d.status, 503, "{:?}", d.body);
    assert_eq!(d.header("retry-after"), None);
    let msg = d.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("an operator must fix"), "{msg}");
    let t = gw.cp.trace(&d.request_id()).await;
    assert!(t.attempts.is_empty());
    assert_eq!(t.error, "pool_unusable");
}

#[tokio::test]
async fn a_timeout_moves_on_and_is_recorded_as_one() {
    let gw = Gw::start(&["--upstream-timeout-secs", "1"]).await;
    gw.mock.mock().add_fault(Fault {
        delay_ms: Some(1_300),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("slow")).await;
    assert_eq!(a.status, 200);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 0), ("two".into(), 200)]);
    assert_eq!(t.attempts[0].error, "timeout");
}

#[tokio::test]
async fn every_credential_rate_limited_relays_429_with_retry_after_then_the_pool_is_exhausted() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(429),
        retry_after: Some(7),
        times: 2,
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat("first")).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), Some("7"));
    // The provider's own error body, in the app's (same) format.
    assert!(a.json()["error"]["message"].is_string());
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 429), ("two".into(), 429)]);
    assert_eq!((t.status, t.error.as_str()), (429, "upstream_status"));

    // Both cool down: the gateway refuses at once, saying when to retry.
    let b = gw.post("/v1/chat/completions", chat("second")).await;
    assert_eq!(b.status, 429);
    let retry: u64 = b
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=7).contains(&retry), "retry-after {retry}");
    let t = gw.cp.trace(&b.request_id()).await;
    assert!(t.attempts.is_empty());
    assert_eq!(t.error, "pool_exhausted");
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(400),
        message: Some("bad thing".into()),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("x")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["message"], "bad thing");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 400)]);
}

/// An upstream's 400 that quotes what the app sent (here the word Gemini
/// uses for a bad key) is the app's error: relayed, and no credential is
/// benched for it.
#[tokio::test]
async fn an_echoed_api_key_invalid_does_not_bench_the_credential() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(400),
        message: Some(
            "Invalid value: 'API_KEY_INVALID'. Supported values are: 'low' and 'high'.".into(),
        ),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("x")).await;
    assert_eq!(a.status, 400);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 400)]);
    assert_eq!(t.attempts[0].cooldown_ms, 0);
    let b = gw.post("/v1/chat/completions", chat("y")).await;
    assert_eq!(
        attempts(&gw.cp.trace(&b.request_id()).await),
        [("one".into(), 200)]
    );
}

/// A status the app's SDK cannot act on (a redirect, which is never
/// followed, or a code HTTP does not define) is the gateway's 502, not
/// relayed as it came.
#[tokio::test]
async fn a_redirect_or_an_undefined_status_is_a_bad_gateway() {
    let gw = Gw::start(&[]).await;
    for status in [302, 799] {
        gw.mock.mock().add_fault(Fault {
            status: Some(status),
            ..fault_on(KEY_ONE)
        });
        let a = gw.post("/v1/chat/completions", chat("x")).await;
        assert_eq!(a.status, 502, "upstream {status}");
        let t = gw.cp.trace(&a.request_id()).await;
        assert_eq!((t.status, t.error.as_str()), (502, "upstream_error"));
        assert_eq!(t.attempts[0].error, "unreadable answer");
    }
}

/// An upstream that sends a whole answer's head and then stalls is given
/// up after the upstream timeout (before, the app waited as long as the
/// upstream held the connection open).
#[tokio::test]
async fn a_body_that_stalls_after_the_head_times_out() {
    let gw = Gw::start(&["--upstream-timeout-secs", "1"]).await;
    gw.mock.mock().add_fault(Fault {
        cut_after_chunks: Some(1),
        chunk_delay_ms: Some(2_500),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("stall")).await;
    assert_eq!(a.status, 504, "{:?}", String::from_utf8_lossy(&a.body));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!((t.status, t.error.as_str()), (504, "upstream_timeout"));
    // The head said 200: the provider made (and bills) the whole answer.
    assert_eq!(t.usage_source, "estimated_broken");
    assert!(t.input_tokens > 0, "{t:?}");
    assert_eq!(t.output_tokens, 4096, "the default output cap: {t:?}");
    assert!(t.cost > 0.0);
}

/// A whole answer whose body breaks off after a success head was made, and
/// billed, before its head was sent: it is charged as an answer the app
/// left is (the prompt's estimate and the output cap), not as free.
#[tokio::test]
async fn a_whole_answer_cut_after_its_head_is_charged_an_estimate() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        cut_after_chunks: Some(1),
        ..Fault::default()
    });
    let mut body = chat("cut me");
    body["max_tokens"] = 300.into();
    let a = gw.post("/v1/chat/completions", body).await;
    assert_eq!(a.status, 502, "{:?}", String::from_utf8_lossy(&a.body));
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!((t.status, t.error.as_str()), (502, "upstream_error"));
    assert_eq!(t.usage_source, "estimated_broken");
    assert!(t.input_tokens > 0, "{t:?}");
    assert_eq!(t.output_tokens, 300, "{t:?}");
    assert!(t.cost > 0.0);
}

/// A whole answer without a usage report is charged an estimate (the
/// prompt, and the answer's size), and the trace says so.
#[tokio::test]
async fn an_answer_without_usage_is_charged_an_estimate() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        omit_usage: true,
        ..Fault::default()
    });
    let a = gw.post("/v1/chat/completions", chat("no usage")).await;
    assert_eq!(a.status, 200);
    assert!(a.json().get("usage").is_none(), "{:?}", a.json());
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.usage_source, "estimated_unreported");
    assert!(t.input_tokens > 0, "{t:?}");
    assert_eq!(t.output_tokens, (a.body.len() as u64).div_ceil(4));
    assert!(t.cost > 0.0);
}

#[tokio::test]
async fn max_attempts_bounds_the_retries() {
    let gw = Gw::start(&["--max-attempts", "1"]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(500),
        ..fault_on(KEY_ONE)
    });
    let a = gw.post("/v1/chat/completions", chat("x")).await;
    assert_eq!(a.status, 500);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("one".into(), 500)]);
}

#[tokio::test]
async fn an_upstream_error_in_another_format_is_rendered_in_the_apps() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(400),
        message: Some("no such thing".into()),
        ..Fault::default()
    });
    // An Anthropic app asking for an OpenAI model: translated both ways.
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 400);
    let v = a.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["message"], "no such thing");
}

/// A one-credential pool whose host refused a connection is probed by the
/// next request (one at a time) instead of refusing apps with "cooling
/// down" until the bench ends: once the host is back, the next request is
/// served.
#[tokio::test]
async fn a_single_credential_pool_serves_again_at_the_next_request_once_its_host_is_back() {
    let gw = Gw::start(&[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let apply = |base_url: &str, version: &str| {
        let mut snap = snapshot(&gw.mock.base_url(), version);
        snap.providers[1].base_url = base_url.into();
        gw.node
            .watcher
            .apply_whole(&prost::Message::encode_to_vec(&snap), None)
            .expect("snapshot applies");
    };
    let mut body = chat("anyone there?");
    body["model"] = "claude-sonnet-4-5".into();
    body["max_tokens"] = 16.into();

    apply(&down, "v2");
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 502, "{:?}", a.body);
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(attempts(&t), [("main".into(), 0)]);
    // Still down: the next request probes it and fails as fast, with the
    // provider's failure rather than "cooling down".
    let b = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(b.status, 502, "{:?}", b.body);

    // The host is back (the credential keeps its bench across the swap).
    apply(&gw.mock.base_url(), "v3");
    let c = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    let t = gw.cp.trace(&c.request_id()).await;
    assert_eq!(attempts(&t), [("main".into(), 200)]);
}
