//! What estimating a request's prompt costs: `demand::prompt_tokens`, run
//! on every request (the reservation, and the charge of a stream stopped
//! before its usage came), scans the body once for inline images. A ~1 KB
//! chat request, 64 KB of text, and a 1 MB photo as a data URL.
//! The checks every request's body passes first (`validate::json_body`:
//! UTF-8 and nesting depth, then the routing fields read by
//! `ChatRequest::parse`) on the same bodies: coding CLIs send 50–200 KB;
//! and the rewrite of a body passed through to a provider that names the
//! model otherwise and must be asked for a stream's usage.
//! `cargo bench -p data-plane --bench demand`; figures in
//! `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use data_plane::demand::prompt_tokens;
use data_plane::providers::openai::ChatRequest;
use data_plane::validate::json_body;

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

fn bodies() -> [(&'static str, Vec<u8>); 3] {
    [
        (
            "chat 1 KB",
            chat(&"How do I make a sourdough starter? ".repeat(25)),
        ),
        (
            "text 64 KB",
            chat(&"lorem ipsum dolor sit amet ".repeat(2400)),
        ),
        ("photo 1 MB", photo()),
    ]
}

fn estimate(c: &mut Criterion) {
    let mut g = c.benchmark_group("prompt_tokens");
    for (name, body) in bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| prompt_tokens(black_box(&body))));
    }
    g.finish();
}

fn check(c: &mut Criterion) {
    let mut g = c.benchmark_group("body_checks");
    for (name, body) in bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                json_body(black_box(&body)).is_ok() && ChatRequest::parse(black_box(&body)).is_ok()
            })
        });
    }
    g.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("body_rewrite");
    for (name, body) in bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                data_plane::body_rewrite::rewrite(black_box(&body), Some("gpt-4o-2024-08-06"), true)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, estimate, check, rewrite);
criterion_main!(benches);
