//! What translation and stream metering cost per request: a typical chat
//! request with a tool, translated across formats into the bytes sent
//! upstream, and a 60-event stream decoded and re-encoded.
//! `cargo bench -p data-plane --bench translate`; figures in
//! `docs/benchmarks.md`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use data_plane::sse::SseParser;
use data_plane::translate::{self, Format, StreamEvent};

const REQUEST: &[u8] = br#"{
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are a helpful assistant that answers briefly."},
    {"role": "user", "content": "What is the weather like in Paris today, and should I bring an umbrella?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 14, \"rain_probability\": 0.7}"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "max_tokens": 256, "temperature": 0.2, "stream": true
}"#;

fn openai_stream() -> String {
    let mut s = String::from(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    );
    for i in 0..60 {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":60,\"total_tokens\":140}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

fn request(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(REQUEST.len() as u64));
    for target in [Format::OpenAiChat, Format::Anthropic, Format::Gemini] {
        // Skip targets whose codec is not built in.
        let Ok(mut ir) = translate::decode_request(Format::OpenAiChat, REQUEST, None, false) else {
            continue;
        };
        if translate::encode_request(target, &mut ir).is_err() {
            continue;
        }
        g.bench_function(format!("openai->{}", target.as_str()), |b| {
            b.iter(|| {
                let ir =
                    translate::decode_request(Format::OpenAiChat, black_box(REQUEST), None, false)
                        .ok();
                // The body sent upstream, serialized.
                black_box(ir.and_then(|mut ir| translate::encode_request(target, &mut ir).ok()))
            })
        });
    }
    g.finish();
}

fn stream(c: &mut Criterion) {
    let upstream = openai_stream();
    let ir = translate::decode_request(Format::OpenAiChat, REQUEST, None, false).ok();
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(upstream.len() as u64));
    for app in [
        Format::OpenAiChat,
        Format::Anthropic,
        Format::Gemini,
        Format::Responses,
    ] {
        let Some(ir) = &ir else { continue };
        g.bench_function(format!("openai->{}", app.as_str()), |b| {
            b.iter(|| {
                let mut dec = translate::decoder(Format::OpenAiChat);
                let mut enc = translate::encoder(app, ir);
                let mut parser = SseParser::new();
                let mut events: Vec<StreamEvent> = Vec::new();
                let mut out = BytesMut::new();
                // Upstream frames of ~64 bytes, as a network would cut them.
                for chunk in upstream.as_bytes().chunks(64) {
                    parser.push(chunk);
                    while let Some(ev) = parser.next_event() {
                        dec.event(&ev, &mut events);
                        for e in events.drain(..) {
                            enc.event(&e, &mut out);
                        }
                    }
                }
                enc.end(&mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request, stream);
criterion_main!(benches);
