//! What a request's trace context and spans cost: W3C propagation alone
//! (always on: the ids an upstream gets), and with spans recorded (a
//! request span, one attempt span, GenAI attributes) into the SDK's batch
//! processor, whose exporter here drops them (the network is the
//! collector's cost, paid on the exporter's thread).
//! `cargo bench -p data-plane --bench telemetry`.

use std::hint::black_box;

use aigw_proto::model::{Glob, Provider, ProviderKind, Strategy};
use aigw_proto::pb::trace::TraceRecord;
use criterion::{Criterion, criterion_group, criterion_main};
use data_plane::runtime::Upstream;
use data_plane::schedule::Pool;
use data_plane::telemetry::Otel;
use http::{HeaderMap, HeaderValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn upstream() -> Upstream {
    Upstream {
        provider: Provider {
            name: "openai-main".into(),
            kind: ProviderKind::OpenAi,
            base_url: "https://api.openai.com".into(),
            models: vec![Glob::new("*")],
            strategy: Strategy::RoundRobin,
            keys: vec![],
            model_map: Default::default(),
            affinity: Default::default(),
        },
        pool: Pool::new(vec![], Strategy::RoundRobin),
    }
}

fn record() -> TraceRecord {
    TraceRecord {
        request_id: "req_0123456789abcdef0000000001".into(),
        model: "gpt-4o-mini".into(),
        provider: "openai-main".into(),
        client_key_name: "checkout".into(),
        endpoint: "chat.completions".into(),
        api_format: "openai".into(),
        status: 200,
        input_tokens: 80,
        output_tokens: 60,
        cost: 0.0008,
        ..Default::default()
    }
}

fn one_request(otel: &Otel, headers: &HeaderMap, up: &Upstream, rec: &TraceRecord) {
    let mut span = otel.request(headers, "chat.completions");
    black_box(span.start_attempt(up, "gpt-4o-mini"));
    span.attempt_done("team-a", 200, "");
    span.finish(rec, "gpt-4o-mini-2024-07-18", Some(ProviderKind::OpenAi));
}

fn spans(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let up = upstream();
    let rec = record();
    let mut with_parent = HeaderMap::new();
    with_parent.insert(
        "traceparent",
        HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    let none = HeaderMap::new();
    let off = Otel::off();
    c.bench_function("propagate only, app sent traceparent", |b| {
        b.iter(|| one_request(&off, &with_parent, &up, &rec))
    });
    c.bench_function("propagate only, new trace", |b| {
        b.iter(|| one_request(&off, &none, &up, &rec))
    });
    let recording = Otel::with_provider(
        SdkTracerProvider::builder()
            .with_batch_exporter(Discard)
            .build(),
    );
    c.bench_function("request + attempt spans recorded", |b| {
        b.iter(|| one_request(&recording, &with_parent, &up, &rec))
    });
    recording.shutdown();
}

criterion_group!(benches, spans);
criterion_main!(benches);
