//! No input makes the codec panic.

use super::*;

const ODD_VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e400",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[null]",
    "[1]",
    "[{}]",
    "[[]]",
    "{\"type\":1}",
    "{\"type\":\"function\"}",
    "{\"type\":\"message\"}",
    "[{\"type\":\"message\",\"role\":\"user\",\"content\":[{}]}]",
    "[{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":[{\"type\":\"input_image\"}]}]",
];

/// Every value at `path` replaced by each odd value, one at a time.
fn mutations(v: &Value, out: &mut Vec<Value>) {
    fn walk(root: &Value, at: &mut Vec<Value>, v: &Value, out: &mut Vec<Value>) {
        for odd in ODD_VALUES {
            let Ok(odd) = serde_json::from_str::<Value>(odd) else {
                continue;
            };
            let mut copy = root.clone();
            let mut slot = &mut copy;
            for k in at.iter() {
                slot = match k {
                    Value::String(s) => &mut slot[s.as_str()],
                    Value::Number(n) => &mut slot[n.as_u64().unwrap() as usize],
                    _ => unreachable!(),
                };
            }
            *slot = odd;
            out.push(copy);
        }
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    at.push(json!(k));
                    walk(root, at, child, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(json!(i));
                    walk(root, at, child, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut vec![], v, out);
}

#[test]
fn never_panics_on_odd_bodies() {
    for fixture in [
        REQUEST,
        REQUEST_SDK_TOOLS,
        REQUEST_SDK_PARSE,
        RESPONSE_TEXT,
        RESPONSE_CALL,
    ] {
        let bytes = fixture.as_bytes();
        for i in 0..bytes.len() {
            let _ = responses::decode_request(&bytes[..i]);
            let _ = responses::decode_response(&bytes[..i]);
        }
        let mut bodies = vec![];
        mutations(&serde_json::from_str(fixture).unwrap(), &mut bodies);
        assert!(bodies.len() > 100);
        for b in &bodies {
            let s = b.to_string();
            if let Ok(req) = responses::decode_request(s.as_bytes()) {
                let _ = responses::encode_request(&req);
                let _ = openai_chat::encode_request(&req);
            }
            if let Ok(resp) = responses::decode_response(s.as_bytes()) {
                let _ = responses::encode_response(&resp);
            }
        }
    }
}

#[test]
fn never_panics_on_odd_streams() {
    for fixture in [STREAM_TEXT, STREAM_CALL] {
        // Cut anywhere.
        let bytes = fixture.as_bytes();
        for i in (0..bytes.len()).step_by(7) {
            let _ = decode(&bytes[..i]);
        }
        // Each event's data mutated everywhere, in the middle of the real stream.
        let events = sse_events(&[bytes]);
        for (k, ev) in events.iter().enumerate() {
            let mut bodies = vec![];
            mutations(&serde_json::from_str(&ev.data).unwrap(), &mut bodies);
            for b in bodies {
                let odd = Event {
                    raw: ev.raw.clone(),
                    event: ev.event.clone(),
                    data: b.to_string(),
                };
                let mut stream = events.clone();
                stream.insert(k, odd);
                let _ = decode_with(responses::Decoder::default(), &stream);
            }
        }
    }
}

/// Arbitrary IR event sequences (a fixed pseudo-random walk) always encode to
/// parseable events numbered 0, 1, 2, … ending in one terminal event.
#[test]
fn encoder_survives_any_event_order() {
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let req = ChatRequest {
        model: "m".into(),
        tools: vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({}),
            strict: None,
            schema_field: String::new(),
        }],
        ..Default::default()
    };
    for _ in 0..500 {
        let len = next(20);
        let evs: Vec<StreamEvent> = (0..len)
            .map(|_| match next(8) {
                0 => StreamEvent::Start {
                    id: ["", "x", "resp_y"][next(3) as usize].into(),
                    model: "m".into(),
                },
                1 | 2 => StreamEvent::TextDelta(["", "a", "é"][next(3) as usize].into()),
                3 => StreamEvent::ToolCallStart {
                    index: next(3) as u32,
                    id: ["", "call_1"][next(2) as usize].into(),
                    name: "f".into(),
                },
                4 => StreamEvent::ToolCallDelta {
                    index: next(3) as u32,
                    arguments: ["", "{", "}"][next(3) as usize].into(),
                },
                5 => StreamEvent::Usage(Usage {
                    input: next(100),
                    output: next(100),
                    cached: 0,
                    reasoning: 0,
                    ..Default::default()
                }),
                6 => StreamEvent::Finish(
                    [
                        StopReason::EndTurn,
                        StopReason::MaxTokens,
                        StopReason::ToolUse,
                    ][next(3) as usize],
                ),
                _ => StreamEvent::Error {
                    message: "e".into(),
                },
            })
            .collect();
        let sse = encode(&req, &evs);
        let events = sse_events(&[sse.as_bytes()]);
        let terminal = [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ];
        for (i, e) in events.iter().enumerate() {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["sequence_number"], json!(i));
            assert_eq!(e.event.as_deref(), v["type"].as_str());
            assert_eq!(
                terminal.contains(&v["type"].as_str().unwrap()),
                i == events.len() - 1,
                "{sse}"
            );
        }
        // Round trip through our own decoder never panics either.
        let _ = decode(sse.as_bytes());
    }
}
