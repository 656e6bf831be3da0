use super::*;

fn req(v: Value) -> GenerateRequest {
    GenerateRequest::from_value(&v).expect("valid")
}

fn tools() -> Value {
    json!([{"functionDeclarations": [{"name": "get_weather", "description": "weather",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}])
}

fn json_of(ready: Ready) -> (Value, Option<Value>) {
    match ready.answer {
        Answer::Json { body, usage } => (body, usage),
        Answer::Sse { .. } => panic!("json expected"),
    }
}

#[test]
fn text_and_usage() {
    let body = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hello"}, {"text": "there"}]}]
    });
    let ready = answer(
        "gemini-2.5-flash:generateContent",
        "",
        body.to_string().as_bytes(),
    )
    .expect("valid");
    assert_eq!(ready.model, "gemini-2.5-flash");
    let (body, usage) = json_of(ready);
    let cand = &body["candidates"][0];
    assert_eq!(
        cand["content"]["parts"][0]["text"],
        "mock reply: hello there"
    );
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["finishReason"], "STOP");
    let u = &body["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 4);
    assert_eq!(u["cachedContentTokenCount"], 2);
    assert_eq!(u["candidatesTokenCount"], 4);
    assert_eq!(u["totalTokenCount"], 8);
    assert_eq!(usage, Some(u.clone()));
}

#[test]
fn no_cached_count_without_system_instruction() {
    let ex = req(json!({"contents": [{"parts": [{"text": "hi"}]}]})).exchange();
    assert!(usage(&ex).get("cachedContentTokenCount").is_none());
}

#[test]
fn function_call_then_function_response() {
    let r = req(json!({
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "tools": tools()
    }));
    let ex = r.exchange();
    let body = response("g", &ex);
    let part = &body["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "get_weather");
    assert_eq!(part["functionCall"]["args"], json!({"city": "Paris"}));
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 1);

    let ex = req(json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "Sunny, 21 C"}}}]}
            ],
            "tools": tools()
        }))
        .exchange();
    assert_eq!(ex.reply, "mock reply: tool said Sunny, 21 C");
    assert_eq!((ex.prompt_tokens, ex.cached_tokens), (8, 2));
}

#[test]
fn sse_stream_is_cumulative_and_crlf_framed() {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi you"}]}]});
    let ready = answer(
        "g:streamGenerateContent",
        "alt=sse",
        body.to_string().as_bytes(),
    )
    .expect("valid");
    let Answer::Sse {
        frames,
        usage,
        usage_index,
    } = ready.answer
    else {
        panic!("sse expected")
    };
    assert_eq!(frames.len(), 4);
    assert_eq!(usage_index, Some(3));
    let mut text = String::new();
    for (i, f) in frames.iter().enumerate() {
        let s = std::str::from_utf8(f).expect("utf8");
        let data = s
            .strip_prefix("data: ")
            .and_then(|d| d.strip_suffix("\r\n\r\n"))
            .expect("crlf frame");
        let c: Value = serde_json::from_str(data).expect("json");
        text.push_str(
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("?"),
        );
        assert_eq!(c["usageMetadata"]["promptTokenCount"], 2);
        assert_eq!(c["usageMetadata"]["candidatesTokenCount"], i + 1);
        assert_eq!(c["candidates"][0].get("finishReason").is_some(), i == 3);
    }
    assert_eq!(text, "mock reply: hi you");
    assert_eq!(usage.expect("usage")["candidatesTokenCount"], 4);
}

#[test]
fn stream_without_sse_is_a_json_array() {
    let body = json!({"contents": [{"parts": [{"text": "a"}]}]});
    let ready = answer("g:streamGenerateContent", "", body.to_string().as_bytes()).expect("valid");
    let Answer::Sse { frames, usage, .. } = ready.answer else {
        panic!("a stream expected")
    };
    // Sent in pieces that together are one JSON array.
    assert!(frames.len() > 2);
    let joined: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let v: Value = serde_json::from_slice(&joined).expect("one JSON array");
    assert_eq!(v.as_array().map(Vec::len), Some(frames.len() - 1));
    assert!(usage.is_some());
}

#[test]
fn count_tokens_and_embeddings() {
    let body = json!({"contents": [{"parts": [{"text": "one two three"}]}]});
    let (v, _) = json_of(answer("g:countTokens", "", body.to_string().as_bytes()).expect("valid"));
    assert_eq!(v["totalTokens"], 3);
    let body = json!({"generateContentRequest": {"model": "models/g",
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "contents": [{"parts": [{"text": "one two"}]}]}});
    let (v, _) = json_of(answer("g:countTokens", "", body.to_string().as_bytes()).expect("valid"));
    assert_eq!(v["totalTokens"], 3);

    let body = json!({"content": {"parts": [{"text": "embed me"}]}, "outputDimensionality": 4});
    let (v, usage) =
        json_of(answer("e:embedContent", "", body.to_string().as_bytes()).expect("valid"));
    assert_eq!(v["embedding"]["values"].as_array().map(Vec::len), Some(4));
    // As the real API: the vector only, no usage.
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    assert!(usage.is_none());
    let again =
        json_of(answer("e:embedContent", "", body.to_string().as_bytes()).expect("valid")).0;
    assert_eq!(v, again, "deterministic");

    let body = json!({"requests": [
        {"model": "models/e", "content": {"parts": [{"text": "a b"}]}},
        {"model": "models/e", "content": {"parts": [{"text": "c"}]}}
    ]});
    let (v, usage) =
        json_of(answer("e:batchEmbedContents", "", body.to_string().as_bytes()).expect("valid"));
    assert_eq!(v["embeddings"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["embeddings"][0]["values"].as_array().map(Vec::len),
        Some(EMBEDDING_DIMS)
    );
    assert!(v.get("usageMetadata").is_none() && usage.is_none());
}

#[test]
fn refuses_parameters_gemini_refuses() {
    let with = |parameters: Value| {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "fetch"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": parameters}]}]
        });
        answer("g:generateContent", "", body.to_string().as_bytes())
    };
    let obj = |props: Value| json!({"type": "OBJECT", "properties": props});
    // Claude Code's WebFetch `url`, as JSON Schema has it.
    let err = with(obj(json!({"url": {"type": "STRING", "format": "uri"}}))).expect_err("uri");
    let (status, body) = error_parts(&err);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[url].format: only 'enum' and 'date-time' are supported for STRING type\n"
    );
    for bad in [
        obj(json!({"n": {"type": "INTEGER", "format": "uint8"}})),
        obj(json!({"n": {"type": "NUMBER", "format": "int32"}})),
        obj(json!({"b": {"type": "BOOLEAN", "format": "bool"}})),
        obj(json!({"l": {"type": "ARRAY", "items": {"type": "STRING", "format": "email"}}})),
        obj(json!({"a": {"anyOf": [{"type": "STRING", "format": "date"}]}})),
        obj(json!({"n": {"type": "STRING", "enum": ["a", 1]}})),
        obj(json!({"n": {"type": "INTEGER", "enum": ["1", "2"]}})),
        obj(json!({"n": {"enum": ["a"]}})),
    ] {
        let err = with(bad.clone()).expect_err("refused");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    for good in [
        obj(json!({
            "when": {"type": "STRING", "format": "date-time"},
            "kind": {"type": "string", "format": "enum", "enum": ["a", "b"]},
            "n": {"type": "INTEGER", "format": "int64"},
            "x": {"type": "NUMBER", "format": "double"},
            "l": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["c"]}}
        })),
        // JSON Schema is taken as such there.
        json!(null),
    ] {
        assert!(with(good.clone()).is_ok(), "{good}");
    }
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "fetch"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema":
            {"type": "object", "properties": {"url": {"type": "string", "format": "uri"}}}}]}]
    });
    assert!(answer("g:generateContent", "", body.to_string().as_bytes()).is_ok());
}

#[test]
fn errors() {
    assert!(matches!(
        answer("g:generateContent", "", b"{}"),
        Err(MockError::Invalid(m)) if m.contains("contents")
    ));
    assert!(matches!(
        answer("g:fly", "", b"{}"),
        Err(MockError::UnknownPath { .. })
    ));
    assert!(matches!(
        answer("g", "", b"{}"),
        Err(MockError::UnknownPath { .. })
    ));
    let (status, body) = error_parts(&MockError::MissingKey);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["code"], 403);
    let (_, body) = error_parts(&MockError::Injected {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: "slow".into(),
    });
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["message"], "slow");
}

#[test]
fn models() {
    let list = models_list();
    assert_eq!(list["models"][0]["name"], "models/gemini-2.5-flash");
    assert!(model("models/gemini-2.5-pro").is_some());
    assert!(model("gemini-2.5-pro").is_some());
    assert!(model("nope").is_none());
}
