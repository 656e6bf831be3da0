//! What official SDKs read besides the answer itself: `models.retrieve` in
//! each SDK's shape, Anthropic's `request-id`, and upstream errors that
//! reach the app in its own format and with statuses its SDK knows, however
//! the upstream (or a proxy in front of it) wrote them.

use aigw_e2e::Fault;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::json;

use aigw_proto::pb::config as pb;

use crate::harness::*;

/// GETs `path` with `headers`, as an SDK does; reads the whole answer.
async fn get(gw: &Gw, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut r = Request::get(path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let req: Request<Full<Bytes>> = r.body(Full::new(Bytes::new())).expect("request");
    read(gw.send(req).await).await
}

#[tokio::test]
async fn models_retrieve_answers_in_each_sdks_shape() {
    let gw = Gw::start(&[]).await;
    let bearer = format!("Bearer {APP_KEY}");

    // OpenAI's SDK: `client.models.retrieve("gpt-4o-mini")`.
    let a = get(&gw, "/v1/models/gpt-4o-mini", &[("authorization", &bearer)]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let m = a.json();
    assert_eq!(m["id"], "gpt-4o-mini");
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "openai-pool");

    // Anthropic's SDK: `client.models.retrieve("claude-sonnet-4-5")`.
    let anthropic = [("x-api-key", APP_KEY), ("anthropic-version", "2023-06-01")];
    let a = get(&gw, "/v1/models/claude-sonnet-4-5", &anthropic).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let m = a.json();
    assert_eq!(m["type"], "model");
    assert_eq!(m["id"], "claude-sonnet-4-5");
    assert!(m["display_name"].is_string() && m["created_at"].is_string());
    assert_eq!(a.header("request-id"), Some(a.request_id().as_str()));

    // A model nothing routes: 404 in the caller's shape, not Gemini's.
    let a = get(
        &gw,
        "/v1/models/ft:gpt-4o:org::x1",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(a.status, 404);
    let e = a.json();
    assert!(
        e["error"]["message"].is_string() && e["error"].get("status").is_none(),
        "{e}"
    );
    let a = get(&gw, "/v1/models/mistral-large", &anthropic).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["type"], "error");
}

/// An alias is checked against the key's allow-list as the model it is
/// served as, in the listing as on the request: a model picker is never
/// offered a model the key is then refused. And an id with a slash, which
/// the SDKs escape as one path segment, is found.
#[tokio::test]
async fn listings_offer_only_what_the_allow_list_lets_the_key_use() {
    let gw = Gw::bare(&[]).await;
    let mut snap = snapshot(&gw.mock.base_url(), "v-allow");
    snap.client_keys[0].models = vec!["gpt-*".into(), "via-*".into(), "team/*".into()];
    let alias = |model: &str, target: &str| pb::Route {
        model: model.into(),
        alias_of: target.into(),
        ..Default::default()
    };
    snap.routes = vec![
        alias("via-claude", "claude-sonnet-4-5"),
        alias("via-gpt", "gpt-4o-mini"),
        alias("team/mini", "gpt-4o-mini"),
    ];
    gw.node
        .watcher
        .apply_whole(&prost::Message::encode_to_vec(&snap), None)
        .expect("snapshot applies");
    let bearer = format!("Bearer {APP_KEY}");
    let auth = [("authorization", bearer.as_str())];
    let listed = get(&gw, "/v1/models", &auth).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let ids: Vec<String> = listed.json()["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(ids.contains(&"via-gpt".to_string()), "{ids:?}");
    assert!(ids.contains(&"team/mini".to_string()), "{ids:?}");
    assert!(!ids.contains(&"via-claude".to_string()), "{ids:?}");
    // What is listed is served; what is not is refused both ways.
    for (model, status) in [("via-gpt", 200), ("via-claude", 403)] {
        let mut body = chat("hi");
        body["model"] = model.into();
        let a = gw.post("/v1/chat/completions", body).await;
        assert_eq!(a.status, status, "{model}: {:?}", a.body);
    }
    assert_eq!(get(&gw, "/v1/models/via-claude", &auth).await.status, 404);
    let one = get(&gw, "/v1/models/team%2Fmini", &auth).await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.json()["id"], "team/mini");
}

/// Codex first tries a WebSocket at `/v1/responses`; a 405 made it retry
/// the handshake six times (seconds per session) before falling back to
/// HTTP. A handshake gets 426 in OpenAI's error shape; a plain GET is still
/// 405 with `Allow`.
#[tokio::test]
async fn a_websocket_handshake_at_responses_is_told_to_use_http() {
    let gw = Gw::start(&[]).await;
    let bearer = format!("Bearer {APP_KEY}");
    let handshake = [
        ("authorization", bearer.as_str()),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let a = get(&gw, "/v1/responses", &handshake).await;
    assert_eq!(a.status, 426, "{:?}", a.body);
    let e = a.json();
    let message = e["error"]["message"].as_str().expect("an OpenAI error");
    assert!(message.contains("HTTP POST"), "{message}");
    assert!(a.header("x-request-id").is_some());
    let a = get(&gw, "/v1/responses", &[("authorization", bearer.as_str())]).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
}

/// A proxy in front of the gateway adds its own `Authorization: Bearer`
/// to an Anthropic SDK's request, whose key is in `x-api-key`: the key the
/// snapshot knows is the app's. Neither known: 401.
#[tokio::test]
async fn a_proxys_bearer_token_does_not_hide_the_sdks_api_key() {
    let gw = Gw::start(&[]).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]});
    // Behind the proxy: the SDK's own key, then an unknown one.
    let behind_proxy = |api_key: Option<&'static str>| {
        let mut req = anthropic_post(&body);
        let h = req.headers_mut();
        h.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer corporate-proxy-token"),
        );
        if let Some(k) = api_key {
            h.insert("x-api-key", http::HeaderValue::from_static(k));
        }
        req
    };
    let a = read(gw.send(behind_proxy(None)).await).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = read(gw.send(behind_proxy(Some("sk-unknown-0000"))).await).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.json()["error"]["type"], "authentication_error");
}

/// A gzipped body is named as such, in the caller's shape, not taken for
/// broken JSON.
#[tokio::test]
async fn a_compressed_body_is_refused_by_its_encoding() {
    let gw = Gw::start(&[]).await;
    let mut req = post("/v1/chat/completions", &chat("hi"));
    req.headers_mut()
        .insert("content-encoding", http::HeaderValue::from_static("gzip"));
    let a = read(gw.send(req).await).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    let message = a.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("Content-Encoding `gzip`"), "{message}");
    let mut req = post("/v1/chat/completions", &chat("hi"));
    req.headers_mut().insert(
        "content-encoding",
        http::HeaderValue::from_static("identity"),
    );
    assert_eq!(read(gw.send(req).await).await.status, 200);
}

/// Gemini CLI keeps dots in MCP tools' names; OpenAI refuses them (the
/// mock as the API does). Translated, the name is sent fitted and the
/// model's call reaches the Gemini app under the name it declared, whole
/// and streamed.
#[tokio::test]
async fn a_dotted_tool_name_reaches_openai_fitted_and_comes_back_as_declared() {
    let gw = Gw::start(&[]).await;
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "read the notes"}]}],
        "tools": [{"functionDeclarations": [{
            "name": "files.read",
            "description": "Reads a file.",
            "parameters": {"type": "OBJECT", "properties": {"path": {"type": "STRING"}},
                           "required": ["path"]}
        }]}],
    });
    for (path, streamed) in [
        ("/v1beta/models/gpt-4o-mini:generateContent", false),
        (
            "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse",
            true,
        ),
    ] {
        let req: Request<Full<Bytes>> = Request::post(path)
            .header("x-goog-api-key", APP_KEY)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let a = read(gw.send(req).await).await;
        assert_eq!(a.status, 200, "{path}: {:?}", a.body);
        let text = String::from_utf8_lossy(&a.body).into_owned();
        assert!(text.contains(r#""name":"files.read""#), "{path}: {text}");
        assert!(!text.contains("files_read"), "{path}: {text}");
        let sent = gw.mock.mock().requests();
        let last = sent.last().expect("the provider was called");
        let name = &last.body["tools"][0]["function"]["name"];
        assert!(
            name.as_str().is_some_and(|n| n.starts_with("files_read")),
            "{streamed}: {name}"
        );
    }
}

/// A proxy's HTML page (or an empty body) in front of the provider is not
/// relayed as if it were JSON: the app gets its own format's error.
#[tokio::test]
async fn an_html_error_page_reaches_the_app_as_its_formats_error() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(502),
        error_body: Some("<html><body><h1>502 Bad Gateway</h1></body></html>".into()),
        times: 10,
        ..Fault::default()
    });
    let a = gw
        .post("/v1/chat/completions", chat("behind a proxy"))
        .await;
    assert_eq!(a.status, 502);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let e = a.json();
    let message = e["error"]["message"].as_str().expect("an OpenAI error");
    assert!(!message.contains('<'), "{message}");

    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(503),
        error_body: Some(String::new()),
        times: 10,
        ..Fault::default()
    });
    let mut body = chat("empty");
    body["max_tokens"] = 16.into();
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 503);
    let e = a.json();
    assert_eq!(e["type"], "error", "{e}");
    assert!(e["error"]["message"].is_string());
}

/// Anthropic's 529 is a status OpenAI's and Google's SDKs do not know (nor
/// retry): their apps get 503, in their format; Anthropic's apps keep 529.
#[tokio::test]
async fn anthropics_overloaded_is_a_503_for_other_formats() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        status: Some(529),
        times: 10,
        ..Fault::default()
    });
    let mut body = chat("busy?");
    body["model"] = "claude-sonnet-4-5".into();
    let a = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.json()["error"]["message"].is_string());

    body["max_tokens"] = 16.into();
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 529);
    assert_eq!(a.json()["error"]["type"], "overloaded_error");
}

/// Anthropic's SDK takes `_request_id` from `request-id`, translated or not.
#[tokio::test]
async fn anthropic_answers_carry_a_request_id() {
    let gw = Gw::start(&[]).await;
    let mut body = chat("which id?");
    body["max_tokens"] = 16.into();
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.header("request-id"), Some(a.request_id().as_str()));
    // Not for the other formats, whose SDKs read `x-request-id`.
    let a = gw.post("/v1/chat/completions", chat("which id?")).await;
    assert_eq!(a.header("request-id"), None);
}

/// `event: error` in the middle of an Anthropic stream ends the answer even
/// when the connection then closes cleanly: the trace says so, and the text
/// streamed before it is charged (the closing usage never came).
#[tokio::test]
async fn an_anthropic_stream_that_errors_midway_is_traced_as_broken() {
    let gw = Gw::start(&[]).await;
    let start = json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 1}}});
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    let delta = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": "word ".repeat(200)}});
    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let stream = format!(
        "event: message_start\ndata: {start}\n\nevent: content_block_start\ndata: {block}\n\n\
         event: content_block_delta\ndata: {delta}\n\nevent: error\ndata: {error}\n\n"
    );
    gw.mock.mock().add_fault(Fault {
        stream_body: Some(stream),
        ..Fault::default()
    });
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true,
        "messages": [{"role": "user", "content": "write"}]});
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.contains("event: error"), "{text}");
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.error, "upstream sent an error mid-stream");
    assert_eq!(t.usage_source, "estimated_broken");
    assert_eq!(t.input_tokens, 12, "the reported prompt is kept");
    assert_eq!(
        t.output_tokens, 250,
        "1,000 characters streamed: about 250 tokens"
    );
}

/// An embedding answer without usage (Gemini's never has one) is charged
/// the prompt's estimate, not nothing.
#[tokio::test]
async fn an_embedding_without_usage_is_charged_an_estimate() {
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(Fault {
        omit_usage: true,
        ..Fault::default()
    });
    let body = json!({"model": "gpt-embed-small", "input": "a sentence to embed ".repeat(20)});
    let a = gw.post("/v1/embeddings", body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(
        a.json().get("usage").is_none(),
        "the mock left the usage out"
    );
    let t = gw.cp.trace(&a.request_id()).await;
    assert_eq!(t.usage_source, "estimated_unreported");
    assert!(t.input_tokens > 50, "{t:?}");
    assert_eq!(t.output_tokens, 0);
}

/// A prompt too long for the model, translated: each app hears it in the
/// words its clients act on (Codex compacts on OpenAI's
/// `context_length_exceeded`, Claude Code on "prompt is too long", Gemini
/// CLI on Google's "exceeds the maximum number of tokens"), with the counts.
#[tokio::test]
async fn a_context_overflow_is_told_in_each_apps_own_words() {
    let anthropic_says = json!({"type": "error", "error": {"type": "invalid_request_error",
        "message": "prompt is too long: 210433 tokens > 200000 maximum"}});
    let openai_says = json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
    let overflow = |body: &serde_json::Value| Fault {
        status: Some(400),
        error_body: Some(body.to_string()),
        ..Fault::default()
    };

    // OpenAI's SDK (Codex's kind of client) in front of Claude.
    let gw = Gw::start(&[]).await;
    gw.mock.mock().add_fault(overflow(&anthropic_says));
    let mut body = chat("a very long conversation");
    body["model"] = "claude-sonnet-4-5".into();
    let a = gw.post("/v1/chat/completions", body).await;
    assert_eq!(a.status, 400);
    let e = a.json();
    assert_eq!(e["error"]["code"], "context_length_exceeded", "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    let m = e["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with("This model's maximum context length is 200000 tokens. However, your messages resulted in 210433 tokens."),
        "{m}"
    );

    // Anthropic's SDK (Claude Code's) in front of OpenAI.
    gw.mock.mock().add_fault(overflow(&openai_says));
    let mut body = chat("a very long conversation");
    body["max_tokens"] = 64.into();
    let a = read(gw.send(anthropic_post(&body)).await).await;
    assert_eq!(a.status, 400);
    let e = a.json();
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert_eq!(
        e["error"]["message"],
        "prompt is too long: 130512 tokens > 128000 maximum"
    );

    // Google's SDK (Gemini CLI's) in front of OpenAI.
    gw.mock.mock().add_fault(overflow(&openai_says));
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "long"}]}]});
    let req = http::Request::post("/v1beta/models/gpt-4o-mini:generateContent")
        .header("x-goog-api-key", APP_KEY)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(gemini.to_string())))
        .expect("request");
    let a = read(gw.send(req).await).await;
    assert_eq!(a.status, 400);
    let e = a.json();
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT", "{e}");
    assert_eq!(
        e["error"]["message"],
        "The input token count (130512) exceeds the maximum number of tokens allowed (128000)."
    );

    // Passed through, the provider's own words reach its own SDK untouched.
    gw.mock.mock().add_fault(overflow(&openai_says));
    let a = gw
        .post("/v1/chat/completions", chat("a very long conversation"))
        .await;
    assert_eq!(a.json(), openai_says);
}

/// A known path called with the wrong method is 405 with `Allow`, in the
/// caller's format; HEAD is answered as GET (load balancers probe with it).
#[tokio::test]
async fn a_wrong_method_is_405_with_allow_and_head_is_get() {
    let gw = Gw::start(&[]).await;
    let a = get(
        &gw,
        "/v1/chat/completions",
        &[("authorization", "Bearer x")],
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.headers["allow"], "POST");
    assert!(!a.request_id().is_empty());
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
    let a = get(&gw, "/v1/messages", &[("anthropic-version", "2023-06-01")]).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.json()["type"], "error");
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");

    let req: Request<Full<Bytes>> = Request::head("/healthz")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let a = read(gw.send(req).await).await;
    assert_eq!(a.status, 200);
}

/// A background response is fetched later with `GET /v1/responses/{id}`,
/// which the gateway does not proxy: one not streamed is refused before
/// anything runs (it would run, and cost, with no way to get its result);
/// streamed, it is served as it runs; and the retrieval paths say why
/// they are not served, in OpenAI's shape.
#[tokio::test]
async fn background_responses_are_served_streamed_and_never_left_unfetchable() {
    let gw = Gw::start(&[]).await;
    let body = json!({"model": "gpt-4o-mini", "input": "later", "background": true});
    let a = gw.post("/v1/responses", body.clone()).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    let e = a.json();
    assert_eq!(e["error"]["param"], "background", "{e}");
    assert!(
        gw.mock.mock().requests().is_empty(),
        "nothing went upstream"
    );

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let a = gw.post("/v1/responses", streamed).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(
        String::from_utf8_lossy(&a.body).contains("response.completed"),
        "{:?}",
        a.body
    );

    let bearer = format!("Bearer {APP_KEY}");
    for (method, path) in [
        ("GET", "/v1/responses/resp_123"),
        ("DELETE", "/v1/responses/resp_123"),
        ("POST", "/v1/responses/resp_123/cancel"),
        ("GET", "/v1/responses/resp_123/input_items"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", &bearer)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let a = read(gw.send(req).await).await;
        assert_eq!(a.status, 404, "{method} {path}");
        let m = a.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(m.contains("does not fetch stored responses"), "{m}");
        a.request_id();
    }
}

/// A field the target cannot express is refused before anything is sent,
/// and OpenAI's error names it in `param`, as OpenAI's own 400s do.
#[tokio::test]
async fn an_untranslatable_field_is_named_in_param() {
    let gw = Gw::start(&[]).await;
    let mut body = chat("hi");
    body["model"] = "claude-sonnet-4-5".into();
    body["logprobs"] = true.into();
    let a = gw.post("/v1/chat/completions", body).await;
    assert_eq!(a.status, 400, "{:?}", a.json());
    assert_eq!(a.json()["error"]["param"], "logprobs", "{:?}", a.json());
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`logprobs`")),
        "{:?}",
        a.json()
    );
    assert!(gw.mock.mock().requests().is_empty());
}
