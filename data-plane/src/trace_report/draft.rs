//! A trace being filled in while its request runs.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aigw_proto::model::{Price, ProviderKind};
use aigw_proto::pb::trace::{Attempt, TraceRecord};

use crate::telemetry::{self, RequestSpan};
use crate::usage::Usage;

#[derive(Debug)]
pub struct TraceDraft {
    pub rec: TraceRecord,
    started: Instant,
    pub usage: Usage,
    pub price: Option<Price>,
    /// What the prompt is charged as when the provider never reported it
    /// (a stream the app abandoned early).
    pub prompt_estimate: u64,
    /// What the answer may use at most (the cap times the answers asked
    /// for): charged for a whole answer the app left before it came.
    pub output_estimate: u64,
    /// The request's OpenTelemetry span and its attempts' (ended with the record).
    pub span: RequestSpan,
    /// The kind of the provider that served it (for `gen_ai.system`).
    pub provider_kind: Option<ProviderKind>,
    /// The model that answered, as the upstream named it (read only when
    /// the span is recorded).
    pub response_model: String,
}

impl TraceDraft {
    pub fn new(
        request_id: &str,
        endpoint: &str,
        api_format: &str,
        region: &str,
        node_id: &str,
    ) -> Self {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self {
            rec: TraceRecord {
                request_id: request_id.to_string(),
                started_at_ms,
                endpoint: endpoint.to_string(),
                api_format: api_format.to_string(),
                region: region.to_string(),
                node_id: node_id.to_string(),
                ..Default::default()
            },
            started: Instant::now(),
            usage: Usage::default(),
            price: None,
            prompt_estimate: 0,
            output_estimate: 0,
            span: RequestSpan::default(),
            provider_kind: None,
            response_model: String::new(),
        }
    }

    /// Reads the answering model from an answer (a whole body or one
    /// streamed event), once, when the span is recorded.
    pub fn observe_answer(&mut self, json: &[u8]) {
        if self.response_model.is_empty()
            && self.span.is_recording()
            && let Some(m) = telemetry::response_model_of(json)
        {
            self.response_model = m;
        }
    }

    pub fn elapsed_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Marks the first response byte, once.
    pub fn first_byte(&mut self) {
        if self.rec.ttfb_us == 0 {
            self.rec.ttfb_us = self.elapsed_us().max(1);
        }
    }

    pub fn attempt(
        &mut self,
        provider: &str,
        key: &str,
        status: u16,
        latency_us: u64,
        error: &str,
    ) {
        self.span.attempt_done(key, status, error);
        self.rec.attempts.push(Attempt {
            provider: provider.to_string(),
            provider_key: key.to_string(),
            status: u32::from(status),
            latency_us,
            error: error.to_string(),
            cooldown_ms: 0,
        });
    }

    /// Records that the credential of the last attempt was taken out of
    /// the pool for `ms`, so the admin UI can show the cool-down.
    pub fn cooled_down(&mut self, ms: u64) {
        if let Some(a) = self.rec.attempts.last_mut() {
            a.cooldown_ms = ms;
        }
    }

    pub fn set_error(&mut self, error: &str) {
        if self.rec.error.is_empty() {
            self.rec.error = error.to_string();
        }
    }

    /// A stream that ended before the provider reported (all of) its usage,
    /// because the app left (`estimated_abandoned`) or the stream broke off
    /// (`estimated_broken`): charged what the prompt is estimated at (unless
    /// the provider reported it) and the tokens seen streamed, as providers
    /// bill what they generated before the connection was cut. The trace
    /// says so when an estimate was used.
    pub fn charge_unreported(&mut self, streamed_tokens: u64, source: &str) {
        let before = self.usage;
        if self.usage.input == 0 {
            self.usage.input = self.prompt_estimate;
        }
        self.usage.output = self.usage.output.max(streamed_tokens);
        if self.usage != before {
            self.rec.usage_source = source.into();
        }
    }

    /// An answer or stream that ended without any usage report (a vendor
    /// that leaves it out, or ignores `include_usage`; a job answered before
    /// it ran): charged the prompt's estimate and `seen_tokens`, not nothing.
    pub fn charge_if_unreported(&mut self, seen_tokens: u64) {
        if self.usage == Usage::default() {
            self.charge_unreported(seen_tokens, "estimated_unreported");
        }
    }

    /// What this request's record would say were its stream cut now, as
    /// fields over [`Self::rec`] (protobuf merges a record's encoding with
    /// these encoded after it, a later field's value winning, so the record
    /// need not be copied): the status, charged as a cut stream is (the
    /// prompt's estimate unless reported, and what was reported of the
    /// answer), the error (see `inflight.rs`, which charges what streams
    /// after at the draft's price).
    pub fn if_cut_now(&self, status: u16, error: &str) -> TraceRecord {
        let mut usage = self.usage;
        if usage.input == 0 {
            usage.input = self.prompt_estimate;
        }
        TraceRecord {
            status: u32::from(status),
            latency_us: self.elapsed_us(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            cached_tokens: usage.cached,
            reasoning_tokens: usage.reasoning,
            cost: usage.cost(self.price),
            usage_source: "estimated_broken".into(),
            error: if self.rec.error.is_empty() {
                error.into()
            } else {
                String::new()
            },
            ..Default::default()
        }
    }

    /// The finished record, with the status the app got (taken out: the
    /// draft is spent).
    pub fn finish(&mut self, status: u16) -> TraceRecord {
        aigw_proto::trace_bounds::clip(&mut self.rec);
        self.rec.status = u32::from(status);
        self.rec.latency_us = self.elapsed_us();
        self.rec.input_tokens = self.usage.input;
        self.rec.output_tokens = self.usage.output;
        self.rec.cached_tokens = self.usage.cached;
        self.rec.reasoning_tokens = self.usage.reasoning;
        self.rec.cost = self.usage.cost(self.price);
        telemetry::metrics::finished(&self.rec);
        // As the upstream named it: bounded before it becomes an attribute.
        aigw_proto::trace_bounds::clip_str(&mut self.response_model, 256);
        self.span
            .finish(&self.rec, &self.response_model, self.provider_kind);
        std::mem::take(&mut self.rec)
    }
}
