//! Budgets are charged in the logging phase with what the trace records:
//! the reservation made before forwarding is settled with the real usage,
//! whether the answer came whole or streamed.

use aigw_proto::pb::config as pb;
use serde_json::Value;

use crate::harness::*;

async fn with_limits(limits: pb::Limits) -> Gw {
    let gw = Gw::bare(&[]).await;
    let mut snap = snapshot(&gw.mock.base_url(), "v1");
    snap.client_keys[0].limits = Some(limits);
    gw.node
        .watcher
        .apply_whole(&prost::Message::encode_to_vec(&snap), None)
        .expect("snapshot applies");
    gw
}

fn remaining_tokens(a: &Answer) -> u64 {
    a.header("x-ratelimit-remaining-tokens")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no token headroom in {:?}", a.headers))
}

/// Two identical requests reserve the same estimate, so the headroom the
/// second sees is the first's less exactly what the first was charged.
async fn charged_for(gw: &Gw, body: Value) {
    let first = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(first.status, 200);
    let t = gw.cp.trace(&first.request_id()).await;
    let second = gw.post("/v1/chat/completions", body).await;
    assert_eq!(second.status, 200);
    let charged = remaining_tokens(&first) - remaining_tokens(&second);
    assert!(t.input_tokens + t.output_tokens > 0);
    assert_eq!(charged, t.input_tokens + t.output_tokens);
}

#[tokio::test]
async fn a_whole_answer_is_charged_what_its_trace_records() {
    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    charged_for(&gw, chat("count my tokens")).await;
}

#[tokio::test]
async fn a_stream_is_charged_when_it_ends() {
    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    charged_for(&gw, chat_stream("count my streamed tokens")).await;
}

#[tokio::test]
async fn a_refusal_names_the_limit_in_the_answer_and_the_trace() {
    let gw = with_limits(pb::Limits {
        rpm: Some(1),
        ..Default::default()
    })
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", chat("one")).await.status,
        200
    );
    let refused = gw.post("/v1/chat/completions", chat("two")).await;
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(refused.header("x-ratelimit-limit-requests"), Some("1"));
    let msg = refused.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("rpm") && msg.contains("key request-path app"),
        "{msg}"
    );
    let t = gw.cp.trace(&refused.request_id()).await;
    assert_eq!((t.status, t.error.as_str()), (429, "rate_limited"));
    assert_eq!(t.refused_by, "key:key-1/rpm");
    assert!(t.attempts.is_empty());
}

/// A body that never arrives: what a client trickling (or withholding) a
/// large body looks like to the gateway.
struct Withheld;

impl http_body::Body for Withheld {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// A key past its request rate is refused before its body is read: the
/// refusal does not wait for (or buffer) a body the gateway would not use.
#[tokio::test]
async fn a_key_past_its_rate_is_refused_before_its_body_is_read() {
    use tower::ServiceExt;

    let gw = with_limits(pb::Limits {
        rpm: Some(1),
        ..Default::default()
    })
    .await;
    let first = gw
        .post("/v1/chat/completions", chat("the one allowed"))
        .await;
    assert_eq!(first.status, 200);
    let req = http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {APP_KEY}"))
        .header("content-type", "application/json")
        .header("content-length", "1000000")
        .body(Withheld)
        .expect("request");
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        gw.svc.clone().oneshot(req),
    )
    .await
    .expect("refused without waiting for the body")
    .unwrap_or_else(|never| match never {});
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let a = read(resp).await;
    assert_eq!(
        a.json()["error"]["code"],
        "rate_limit_exceeded",
        "{:?}",
        a.json()
    );
}

/// A Responses job run in the background goes on at the provider after
/// its answer (even streamed, when the app goes away): a token or cost
/// budget could not charge it, so such a key is refused it, clearly,
/// before anything is sent.
#[tokio::test]
async fn a_background_response_is_refused_under_a_token_budget() {
    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    let body = serde_json::json!({
        "model": "gpt-4o-mini", "input": "later", "background": true, "stream": true,
    });
    let a = gw.post("/v1/responses", body).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    let e = a.json();
    assert_eq!(e["error"]["param"], "background", "{e}");
    let m = e["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains("cannot be metered"), "{m}");
    assert!(
        gw.mock.mock().requests().is_empty(),
        "nothing went upstream"
    );
}

/// Translated for Anthropic, a request that sets no cap is sent the model's
/// own output limit (64,000 for Sonnet 4.5), so that is what it reserves,
/// not the 4,096 of a request passed through.
#[tokio::test]
async fn a_request_translated_for_claude_reserves_the_cap_it_is_sent() {
    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    let mut body = chat("no cap");
    body["model"] = "claude-sonnet-4-5".into();
    let a = gw.post("/v1/chat/completions", body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let sent = gw.mock.mock().requests()[0].body.clone();
    assert_eq!(sent["max_tokens"], 64_000, "{sent}");
    let reserved = 1_000_000 - remaining_tokens(&a);
    assert!(reserved > 64_000, "reserved {reserved}");

    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    let a = gw.post("/v1/chat/completions", chat("no cap")).await;
    let reserved = 1_000_000 - remaining_tokens(&a);
    assert!(reserved > 4_096 && reserved < 8_000, "reserved {reserved}");
}

/// Input a request only refers to (a previous response, a file by id) is
/// reserved as `AIGW_UNSEEN_INPUT_TOKENS` each, not as the few bytes of its
/// id: counted by bytes, parallel requests each adding a long history would
/// overrun the budget many times. A budget too small for it refuses the
/// request, saying why, and tells the SDK not to retry.
#[tokio::test]
async fn input_referred_to_by_id_is_reserved_as_unseen_input() {
    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(1_000_000),
        ..Default::default()
    })
    .await;
    let body = |previous: bool| {
        let mut b = serde_json::json!({"model": "gpt-4o-mini", "input": "and then?",
                                       "max_output_tokens": 16});
        if previous {
            b["previous_response_id"] = "resp_abc123".into();
        }
        b
    };
    let a = gw.post("/v1/responses", body(false)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let plain = 1_000_000 - remaining_tokens(&a);
    assert!(plain < 1_000, "reserved {plain}");
    let a = gw.post("/v1/responses", body(true)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // What the first one used is settled by now; this one's reservation is
    // on top: its unseen history, 32,768 by default.
    let reserved = 1_000_000 - remaining_tokens(&a);
    assert!(reserved >= 32_768 + 16, "reserved {reserved}");

    let gw = with_limits(pb::Limits {
        tokens_per_day: Some(5_000),
        ..Default::default()
    })
    .await;
    let a = gw.post("/v1/responses", body(true)).await;
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert_eq!(a.header("x-should-retry"), Some("false"));
    let m = a.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(m.contains("previous_response_id"), "{m}");
    assert!(
        gw.mock.mock().requests().is_empty(),
        "nothing went upstream"
    );
    let a = gw.post("/v1/responses", body(false)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// A global budget admits in a region up to the region's lease, which the
/// control plane grows a grain (a twentieth of the limit) at a time. A
/// request whose reservation is bigger than what the lease has free (a long
/// prompt, no `max_tokens`) reserves at most half a grain there, so it is
/// served rather than refused for the rest of the day with nothing spent;
/// what it used is counted in full.
#[tokio::test]
async fn a_request_bigger_than_a_global_budgets_lease_is_served() {
    let gw = Gw::bare(&[]).await;
    let mut snap = snapshot(&gw.mock.base_url(), "v1");
    snap.client_keys[0].limits = Some(pb::Limits {
        tokens_per_day: Some(100_000),
        ..Default::default()
    });
    snap.client_keys[0].global = true;
    let budget = format!("key:{}", snap.client_keys[0].id);
    let period = aigw_proto::model::budget::day_period(data_plane::schedule::now_ms());
    snap.leases.push(pb::Lease {
        budget,
        region: "test-region".into(),
        period,
        tokens: Some(5_000),
        cost: None,
    });
    gw.node
        .watcher
        .apply_whole(&prost::Message::encode_to_vec(&snap), None)
        .expect("snapshot applies");
    // About 2,000 tokens of prompt and the default cap of 4,096: a
    // reservation past the lease's 5,000.
    let long = "word ".repeat(800);
    let a = gw.post("/v1/chat/completions", chat(&long)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let t = gw.cp.trace(&a.request_id()).await;
    let used = t.input_tokens + t.output_tokens;
    assert!(used > 0);
    assert_eq!(remaining_tokens(&a) + 2_500, 5_000, "half a grain reserved");
    // Settled in full: the next request sees the lease less what was used.
    let b = gw.post("/v1/chat/completions", chat("short")).await;
    assert_eq!(b.status, 200);
    assert!(remaining_tokens(&b) <= 5_000 - used, "{:?}", b.headers);
}

/// A request that alone asks for more than a limit (here no `max_tokens`,
/// so the default cap of 4,096 counts, against 1,000 tokens a minute) can
/// never be admitted: the 429 says so and what to change, instead of
/// "reached, retry after 59 s" with nothing used. A smaller one is served.
#[tokio::test]
async fn a_request_larger_than_a_limit_is_told_so() {
    let gw = with_limits(pb::Limits {
        tokens_per_minute: Some(1_000),
        ..Default::default()
    })
    .await;
    let a = gw.post("/v1/chat/completions", chat("hi")).await;
    assert_eq!(a.status, 429, "{:?}", a.body);
    assert!(a.header("retry-after").is_some());
    // The SDKs' own retries would fail alike: they are told not to.
    assert_eq!(a.header("x-should-retry"), Some("false"));
    let m = a.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        m.starts_with("Request too large for the tokens_per_minute limit"),
        "{m}"
    );
    assert!(m.contains("limit 1000") && m.contains("max_tokens"), "{m}");
    assert!(
        gw.mock.mock().requests().is_empty(),
        "nothing went upstream"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.refused_by, "key:key-1/tokens_per_minute");

    let mut small = chat("hi");
    small["max_tokens"] = serde_json::json!(100);
    let b = gw.post("/v1/chat/completions", small).await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    assert_eq!(b.header("x-should-retry"), None);
}
