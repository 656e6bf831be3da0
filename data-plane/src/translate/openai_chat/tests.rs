//! The reference codec against hand-written payloads of each shape.

use super::*;
use crate::sse::SseParser;

#[test]
fn request_roundtrip_with_tools() {
    let body = br#"{
      "model": "gpt-4o",
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type":"text","text":"Weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
      ],
      "tools": [{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
      "tool_choice": "auto", "max_tokens": 100, "stream": true
    }"#;
    let req = decode_request(body).unwrap();
    assert_eq!(req.system, vec!["Be brief."]);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(
        req.messages[1].content[0],
        Part::ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into()
        }
    );
    assert_eq!(
        req.messages[2].content[0],
        Part::ToolResult {
            id: "call_1".into(),
            name: Some("get_weather".into()),
            content: vec![Part::Text("18C".into())],
            is_error: false
        }
    );
    assert!(
        matches!(&req.messages[0].content[1], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
    );
    let back = encode_request(&req).unwrap();
    assert_eq!(back["messages"][3]["role"], "tool");
    assert_eq!(
        back["messages"][2]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(back["stream_options"]["include_usage"], true);
    assert_eq!(
        decode_request(back.to_string().as_bytes())
            .unwrap()
            .messages,
        req.messages
    );
}

#[test]
fn unknown_fields_are_named() {
    let e = decode_request(br#"{"model":"m","messages":[],"logprobs":true}"#).unwrap_err();
    assert_eq!(e.field, "logprobs");
    let r = ChatRequest {
        top_k: Some(3),
        model: "m".into(),
        ..Default::default()
    };
    assert_eq!(encode_request(&r).unwrap_err().field, "top_k");
}

#[test]
fn stream_decode_encode() {
    let upstream = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );
    let mut p = SseParser::new();
    p.push(upstream.as_bytes());
    let mut d = Decoder::default();
    let mut evs = vec![];
    while let Some(e) = p.next_event() {
        d.event(&e, &mut evs);
    }
    assert_eq!(
        evs,
        vec![
            StreamEvent::Start {
                id: "chatcmpl-1".into(),
                model: "gpt-4o".into()
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_9".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":1}".into()
            },
            StreamEvent::Finish(StopReason::ToolUse),
            StreamEvent::Usage(Usage {
                input: 5,
                output: 3,
                cached: 0,
                reasoning: 0,
                ..Default::default()
            }),
        ]
    );
    let mut enc = Encoder::new(&ChatRequest {
        model: "gpt-4o".into(),
        stream_usage: true,
        ..Default::default()
    });
    let mut out = BytesMut::new();
    for e in &evs {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(text.contains("\"finish_reason\":\"tool_calls\""));
    assert!(text.contains("\"prompt_tokens\":5"));
}
