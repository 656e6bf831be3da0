//! What estimating a request's prompt costs: `demand::prompt_tokens`, run
//! on every request (the reservation, and the charge of a stream stopped
//! before its usage came), scans the body once for inline images. A ~1 KB
//! chat request, 64 KB of text, and a 1 MB photo as a data URL.
//! `cargo bench -p data-plane --bench demand`; figures in
//! `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use data_plane::demand::prompt_tokens;

fn chat(content: &str) -> Vec<u8> {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": content},
        ],
        "max_tokens": 256,
    })
    .to_string()
    .into_bytes()
}

fn photo() -> Vec<u8> {
    let data = format!("/9j/{}", "Qk1Q".repeat(256 * 1024));
    serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{data}")}},
        ]}],
    })
    .to_string()
    .into_bytes()
}

fn estimate(c: &mut Criterion) {
    let mut g = c.benchmark_group("prompt_tokens");
    for (name, body) in [
        (
            "chat 1 KB",
            chat(&"How do I make a sourdough starter? ".repeat(25)),
        ),
        (
            "text 64 KB",
            chat(&"lorem ipsum dolor sit amet ".repeat(2400)),
        ),
        ("photo 1 MB", photo()),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| prompt_tokens(black_box(&body))));
    }
    g.finish();
}

criterion_group!(benches, estimate);
criterion_main!(benches);
