//! The Responses API codec (`translate::responses`) against fixtures of real
//! payload shapes (see `fixtures/responses/README.md`): request and response
//! round trips, what a chat-only provider receives, stream decoding at every
//! split, and the event stream an app's SDK receives when the provider only
//! speaks chat completions.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers too: a panic is the failure report (allow-unwrap-in-tests covers only #[test] fns)"
)]

use std::collections::BTreeMap;

use bytes::BytesMut;
use data_plane::sse::{Event, SseParser};
use data_plane::translate::ir::{
    ChatRequest, ChatResponse, Image, Message, Part, ResponseFormat, Role, StopReason, Tool,
    ToolChoice,
};
use data_plane::translate::{StreamDecoder, StreamEncoder, StreamEvent, openai_chat, responses};
use data_plane::usage::Usage;
use serde_json::{Value, json};

const REQUEST: &str = include_str!("../fixtures/responses/request.json");
const REQUEST_SDK_TOOLS: &str = include_str!("../fixtures/responses/request_sdk_tools.json");
const REQUEST_SDK_PARSE: &str = include_str!("../fixtures/responses/request_sdk_parse.json");
const RESPONSE_TEXT: &str = include_str!("../fixtures/responses/response_text.json");
const RESPONSE_CALL: &str = include_str!("../fixtures/responses/response_function_call.json");
const STREAM_TEXT: &str = include_str!("../fixtures/responses/stream_text.sse");
const STREAM_CALL: &str = include_str!("../fixtures/responses/stream_function_call.sse");
const CHAT_UPSTREAM: &str = include_str!("../fixtures/responses/chat_upstream.sse");

const CALL_ARGS: &str = r#"{"city":"Lyon","unit":"c"}"#;

mod request;
mod response;
mod robustness;
mod stream;

// ------------------------------------------------------------------ helpers

/// Feeds `input` to a parser in the given pieces; returns every event.
fn sse_events(pieces: &[&[u8]]) -> Vec<Event> {
    let mut p = SseParser::new();
    let mut out = vec![];
    for piece in pieces {
        p.push(piece);
        while let Some(e) = p.next_event() {
            out.push(e);
        }
    }
    out.extend(p.finish());
    out
}

fn decode_with(mut d: impl StreamDecoder, events: &[Event]) -> Vec<StreamEvent> {
    let mut out = vec![];
    for e in events {
        d.event(e, &mut out);
    }
    d.end(&mut out);
    out
}

fn decode(sse: &[u8]) -> Vec<StreamEvent> {
    decode_with(responses::Decoder::default(), &sse_events(&[sse]))
}

fn encode(req: &ChatRequest, events: &[StreamEvent]) -> String {
    let mut enc = responses::Encoder::new(req);
    let mut out = BytesMut::new();
    for e in events {
        enc.event(e, &mut out);
    }
    enc.end(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn args_of(events: &[StreamEvent], index: u32) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta {
                index: i,
                arguments,
            } if *i == index => Some(arguments.as_str()),
            _ => None,
        })
        .collect()
}

/// Reads an encoded stream the way the official SDK's `ResponseStream` does
/// (openai-python `lib/streaming/responses/_responses.py`) and checks every
/// invariant it relies on. Returns the event types and the final Response.
fn check_well_formed(sse: &str) -> (Vec<String>, Value) {
    let events = sse_events(&[sse.as_bytes()]);
    assert!(events.len() >= 3, "too few events: {sse}");
    let mut types = vec![];
    // output index → the item as accumulated from added + deltas.
    let mut items: BTreeMap<u64, Value> = BTreeMap::new();
    let mut done: BTreeMap<u64, Value> = BTreeMap::new();
    let mut last = None;
    for (i, e) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(&e.data)
            .unwrap_or_else(|err| panic!("event {i} is not JSON ({err}): {}", e.data));
        let ty = v["type"].as_str().unwrap().to_string();
        assert_eq!(
            e.event.as_deref(),
            Some(ty.as_str()),
            "event: line must match type"
        );
        assert_eq!(v["sequence_number"], json!(i), "sequence_number of {ty}");
        assert!(last.is_none(), "{ty} after the terminal event");
        match (i, ty.as_str()) {
            (0, t) => assert_eq!(t, "response.created"),
            (1, t) => assert_eq!(t, "response.in_progress"),
            (_, "response.output_item.added") => {
                let oi = v["output_index"].as_u64().unwrap();
                assert_eq!(oi as usize, items.len(), "items are added in order");
                assert_eq!(v["item"]["status"], "in_progress");
                items.insert(oi, v["item"].clone());
            }
            (_, "response.content_part.added") => {
                let item = items
                    .get_mut(&v["output_index"].as_u64().unwrap())
                    .expect("part before its item");
                assert_eq!(item["type"], "message");
                assert_eq!(item["id"], v["item_id"]);
                item["content"]
                    .as_array_mut()
                    .unwrap()
                    .push(v["part"].clone());
                assert_eq!(
                    v["content_index"],
                    json!(item["content"].as_array().unwrap().len() - 1)
                );
            }
            (_, "response.output_text.delta") => {
                let item = items
                    .get_mut(&v["output_index"].as_u64().unwrap())
                    .expect("delta before its item");
                assert_eq!(item["id"], v["item_id"]);
                let part = &mut item["content"][v["content_index"].as_u64().unwrap() as usize];
                assert_eq!(part["type"], "output_text", "delta before its content part");
                part["text"] = json!(format!(
                    "{}{}",
                    part["text"].as_str().unwrap(),
                    v["delta"].as_str().unwrap()
                ));
            }
            (_, "response.output_text.done") => {
                let item = &items[&v["output_index"].as_u64().unwrap()];
                assert_eq!(
                    item["content"][v["content_index"].as_u64().unwrap() as usize]["text"],
                    v["text"]
                );
            }
            (_, "response.content_part.done") => {
                let item = &items[&v["output_index"].as_u64().unwrap()];
                assert_eq!(
                    item["content"][v["content_index"].as_u64().unwrap() as usize]["text"],
                    v["part"]["text"]
                );
                assert_eq!(v["part"]["annotations"], json!([]));
            }
            (_, "response.function_call_arguments.delta") => {
                let item = items
                    .get_mut(&v["output_index"].as_u64().unwrap())
                    .expect("delta before its item");
                assert_eq!(item["type"], "function_call");
                assert_eq!(item["id"], v["item_id"]);
                item["arguments"] = json!(format!(
                    "{}{}",
                    item["arguments"].as_str().unwrap(),
                    v["delta"].as_str().unwrap()
                ));
            }
            (_, "response.function_call_arguments.done") => {
                let item = &items[&v["output_index"].as_u64().unwrap()];
                assert_eq!(item["arguments"], v["arguments"]);
            }
            (_, "response.output_item.done") => {
                let oi = v["output_index"].as_u64().unwrap();
                let acc = &items[&oi];
                let item = &v["item"];
                assert_eq!(item["id"], acc["id"]);
                assert_eq!(item["type"], acc["type"]);
                if item["type"] == "message" {
                    assert_eq!(item["content"], acc["content"]);
                    assert_eq!(item["role"], "assistant");
                } else {
                    assert_eq!(item["arguments"], acc["arguments"]);
                    assert_eq!(item["call_id"], acc["call_id"]);
                    assert_eq!(item["name"], acc["name"]);
                }
                assert_ne!(item["status"], "in_progress");
                assert!(
                    done.insert(oi, item.clone()).is_none(),
                    "item {oi} done twice"
                );
            }
            (_, "response.completed" | "response.incomplete" | "response.failed") => {
                last = Some(v["response"].clone())
            }
            (_, "error") => assert!(v["message"].is_string() && v["error"]["message"].is_string()),
            (_, other) => panic!("unexpected event {other}"),
        }
        types.push(ty);
    }
    let resp = last.expect("the stream must end with response.completed/.incomplete/.failed");
    assert_eq!(resp["object"], "response");
    assert!(resp["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(items.len(), done.len(), "every added item is done");
    assert_eq!(
        resp["output"],
        Value::Array(done.into_values().collect()),
        "final output = the done items"
    );
    (types, resp)
}

/// What the SDK's `response.output_text` gives.
fn output_text(resp: &Value) -> String {
    let mut s = String::new();
    for item in resp["output"].as_array().unwrap() {
        if item["type"] == "message" {
            for c in item["content"].as_array().unwrap() {
                if c["type"] == "output_text" {
                    s.push_str(c["text"].as_str().unwrap());
                }
            }
        }
    }
    s
}
