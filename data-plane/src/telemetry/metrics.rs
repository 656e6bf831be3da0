//! The data plane's Prometheus metrics: every name is here, described once,
//! so `/metrics` carries HELP for each and the dashboard
//! (`deploy/grafana-dashboard.json`) has one place to look.
//!
//! Labels are bounded by configuration, never by what an app sends:
//! `endpoint` is one of the gateway's paths, `provider` a configured
//! provider, `kind` an error kind from a fixed list. Model names are left
//! out on purpose: an app chooses them, and a label per model would let it
//! grow the series without bound.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, SystemTime};

use aigw_proto::pb::trace::TraceRecord;
use aigw_proto::prometheus::Families;
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};

use crate::state::AppState;

pub const REQUESTS: &str = "aigw_requests_total";
pub const REQUEST_ERRORS: &str = "aigw_request_errors_total";
pub const TOKENS: &str = "aigw_tokens_total";
pub const COST: &str = "aigw_cost_usd_total";
pub const REQUEST_DURATION: &str = "aigw_request_duration_seconds";
pub const TTFB: &str = "aigw_time_to_first_byte_seconds";
pub const RESPONSE_HEADERS: &str = "aigw_response_headers_seconds";
pub const UPSTREAM_ATTEMPTS: &str = "aigw_upstream_attempts_total";
pub const UPSTREAM_ATTEMPT_DURATION: &str = "aigw_upstream_attempt_duration_seconds";
pub const UPSTREAM_COOLDOWNS: &str = "aigw_upstream_cooldowns_total";
/// Set by `ratelimit::shared` when the limit store stops or starts answering.
pub const REDIS_DEGRADED: &str = "aigw_ratelimit_store_degraded";
pub const CONTROL_PLANE_CONNECTED: &str = "aigw_control_plane_connected";

/// Every `kind` of `aigw_request_errors_total`: [`GatewayError::kind`]'s
/// and the stream endings' ([`stream_error_kind`]). Each is served at 0
/// from the start (an alert on one kind has data before its first error),
/// spans' `error.type` uses the same strings, and docs/observability.md
/// lists them all (tests check all three).
///
/// [`GatewayError::kind`]: crate::error::GatewayError::kind
pub const ERROR_KINDS: &[&str] = &[
    // The app's fault.
    "missing_key",
    "invalid_key",
    "expired_key",
    "bad_json",
    "invalid_request",
    "unknown_model",
    "model_not_allowed",
    "model_not_priced",
    "body_too_large",
    "body_timeout",
    "not_found",
    "method_not_allowed",
    "websocket_not_served",
    "rate_limited",
    "untranslatable",
    // Not ready or out of capacity.
    "not_ready",
    "busy",
    "pool_exhausted",
    "pool_unusable",
    // The upstream's fault.
    "upstream_timeout",
    "upstream_error",
    "upstream_status",
    // Streams that ended badly, and apps that left.
    "stream_cut",
    "stream_stalled",
    "stream_event_too_large",
    "stream_too_large",
    "stream_upstream_error",
    "client_closed",
    "shutdown",
    "stream_error",
    // Ours.
    "internal",
];

/// The kind of a trace record's error (a kind already, or the message of
/// a stream's end, an app that left, a panic); `_OTHER` (the OTel
/// conventions' fallback for `error.type`) for anything else, so a span
/// attribute never carries free text.
pub fn error_kind(trace_error: &str) -> &'static str {
    if let Some(kind) = ERROR_KINDS.iter().find(|k| **k == trace_error) {
        return kind;
    }
    match trace_error {
        // context.rs: the app left before its answer (counted so there).
        "client closed the connection early" => "client_closed",
        crate::context::PANICKED => "internal",
        other => match stream_error_kind(other) {
            "stream_error" => "_OTHER",
            kind => kind,
        },
    }
}

/// Describes every metric (HELP lines). Call once, after the recorder is installed.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "App requests answered, by endpoint and status class."
    );
    describe_counter!(
        REQUEST_ERRORS,
        "App requests that failed, by error kind (auth, limits, upstream, stream cut, ...)."
    );
    describe_counter!(
        TOKENS,
        "Tokens metered, by provider and type (input includes cached_input)."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Whole request time, to the last byte of a streamed answer, by endpoint."
    );
    describe_histogram!(
        TTFB,
        Unit::Seconds,
        "Time to the first answer byte from the upstream, by endpoint."
    );
    describe_histogram!(
        RESPONSE_HEADERS,
        Unit::Seconds,
        "Time until the app got response headers, by endpoint."
    );
    describe_counter!(
        UPSTREAM_ATTEMPTS,
        "Upstream attempts, by provider and outcome."
    );
    describe_histogram!(
        UPSTREAM_ATTEMPT_DURATION,
        Unit::Seconds,
        "Time until an upstream attempt's response head (or its failure), by provider."
    );
    describe_counter!(
        UPSTREAM_COOLDOWNS,
        "Pool credentials put to cool down, by provider and reason."
    );
    describe_gauge!(
        REDIS_DEGRADED,
        "1 while the limit store (Redis) is not answering and budgets follow their when_store_down policy."
    );
    describe_gauge!(
        CONTROL_PLANE_CONNECTED,
        "1 while the snapshot stream to the control plane is open."
    );
    describe_counter!(
        "aigw_ratelimit_degraded_total",
        "Budget checks made without the limit store, by the budget's policy (local: counted in process; refuse)."
    );
    describe_counter!(
        "aigw_snapshot_rejected_total",
        "Snapshots refused (NACKed) by this node."
    );
    describe_gauge!("aigw_snapshot_loaded", "1 once a snapshot is served.");
    describe_gauge!(
        "aigw_snapshot_client_keys",
        "Client keys in the snapshot served."
    );
    describe_counter!(
        "aigw_snapshot_applied_total",
        "Snapshots applied, by kind (whole: from the control plane or the disk copy; delta)."
    );
    describe_counter!(
        "aigw_snapshot_deltas_total",
        "Snapshot deltas applied (only what changed since the version served)."
    );
    describe_counter!(
        "aigw_snapshot_disk_writes_total",
        "Writes of the snapshot's disk copy (debounced: one per burst of changes)."
    );
    describe_gauge!("aigw_open_connections", "App connections open.");
    describe_gauge!(
        "aigw_trace_spool_bytes",
        "Bytes of traces on disk not yet acknowledged by the control plane."
    );
    describe_counter!(
        "aigw_traces_dropped_total",
        "Traces dropped, by reason: spool_full (oldest segments evicted), spool_error (no spool segment could be made), spool_corrupt (records damaged on disk), refused (the control plane refused their batch), too_large (a record over 1 MiB), shutdown (came after the spool closed)."
    );
    describe_counter!(
        "aigw_trace_segments_set_aside_total",
        "Spool segments renamed .bad and not shipped, by reason (refused, spool_corrupt, bad_name)."
    );
    describe_counter!(
        "aigw_trace_ship_errors_total",
        "Trace stream failures (each is followed by a resend)."
    );
    describe_counter!(
        "aigw_traces_delivered_total",
        "Traces the control plane acknowledged (stored or duplicates)."
    );
    describe_counter!(
        super::export::SPANS_EXPORTED,
        "Spans the OTLP collector accepted."
    );
    describe_counter!(
        super::export::SPANS_DROPPED,
        "Spans lost because their OTLP export failed (collector down or refusing, timeout); logged at most once a minute."
    );
    // Present from the start at 0, so a rate() over them is defined before
    // the first event (Prometheus's advice on missing series).
    gauge!(CONTROL_PLANE_CONNECTED).set(0.0);
    gauge!(REDIS_DEGRADED).set(0.0);
    gauge!("aigw_snapshot_loaded").set(0.0);
    for policy in ["local", "refuse"] {
        counter!("aigw_ratelimit_degraded_total", "policy" => policy).increment(0);
    }
    counter!("aigw_snapshot_rejected_total").increment(0);
    counter!("aigw_snapshot_deltas_total").increment(0);
    counter!("aigw_snapshot_disk_writes_total").increment(0);
    for kind in ["whole", "delta"] {
        counter!("aigw_snapshot_applied_total", "kind" => kind).increment(0);
    }
    for kind in ERROR_KINDS {
        counter!(REQUEST_ERRORS, "kind" => *kind).increment(0);
    }
    counter!(super::export::SPANS_EXPORTED).increment(0);
    counter!(super::export::SPANS_DROPPED).increment(0);
    counter!("aigw_trace_ship_errors_total").increment(0);
    counter!("aigw_traces_delivered_total").increment(0);
    for reason in [
        "spool_full",
        "spool_error",
        "spool_corrupt",
        "refused",
        "too_large",
        "shutdown",
    ] {
        counter!("aigw_traces_dropped_total", "reason" => reason).increment(0);
    }
    for reason in ["refused", "spool_corrupt", "bad_name"] {
        counter!("aigw_trace_segments_set_aside_total", "reason" => reason).increment(0);
    }
}

/// Metric handles registered once per label values. `counter!` with
/// labels builds, allocates and hashes its key on every call, a few per cent
/// of a request's CPU under load; the handles of the per-request metrics are
/// looked up here instead. Label values are configured (providers) or fixed
/// (endpoints, outcomes), and the map is capped anyway: past the cap the
/// registry is asked as before.
struct Handles<V> {
    map: LazyLock<RwLock<HashMap<Box<str>, V>>>,
}

/// Most label-value combinations a map caches.
const MAX_CACHED: usize = 4096;

impl<V: Clone> Handles<V> {
    const fn new() -> Self {
        Self {
            map: LazyLock::new(|| RwLock::new(HashMap::new())),
        }
    }

    fn get(&self, labels: &[&str], register: impl FnOnce() -> V) -> V {
        // The key is the label values joined by a unit separator, built on
        // the stack; values too long for it are not cached.
        let mut buf = [0u8; 160];
        let mut n = 0;
        for l in labels {
            if n + l.len() + 1 > buf.len() {
                return register();
            }
            buf[n..n + l.len()].copy_from_slice(l.as_bytes());
            buf[n + l.len()] = 0x1f;
            n += l.len() + 1;
        }
        let Ok(key) = std::str::from_utf8(&buf[..n]) else {
            return register();
        };
        if let Some(v) = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
        {
            return v.clone();
        }
        let v = register();
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() < MAX_CACHED {
            map.insert(key.into(), v.clone());
        }
        v
    }
}

static REQUEST_COUNTERS: Handles<Counter> = Handles::new();
static RESPONSE_HEADER_TIMES: Handles<Histogram> = Handles::new();
static DURATIONS: Handles<Histogram> = Handles::new();
static TTFBS: Handles<Histogram> = Handles::new();
static TOKEN_COUNTERS: Handles<Counter> = Handles::new();
static ATTEMPT_COUNTERS: Handles<Counter> = Handles::new();
static ATTEMPT_DURATIONS: Handles<Histogram> = Handles::new();

/// One answered app request: its status class and the time to its head.
pub fn answered(endpoint: &'static str, status: &'static str, took: Duration) {
    REQUEST_COUNTERS
        .get(
            &[endpoint, status],
            || counter!(REQUESTS, "endpoint" => endpoint, "status" => status),
        )
        .increment(1);
    RESPONSE_HEADER_TIMES
        .get(
            &[endpoint],
            || histogram!(RESPONSE_HEADERS, "endpoint" => endpoint),
        )
        .record(took.as_secs_f64());
}

/// A finished request's tokens, cost and times.
pub fn finished(rec: &TraceRecord) {
    let endpoint = rec.endpoint.as_str();
    DURATIONS
        .get(
            &[endpoint],
            || histogram!(REQUEST_DURATION, "endpoint" => endpoint.to_string()),
        )
        .record(rec.latency_us as f64 / 1e6);
    if rec.ttfb_us > 0 {
        TTFBS
            .get(
                &[endpoint],
                || histogram!(TTFB, "endpoint" => endpoint.to_string()),
            )
            .record(rec.ttfb_us as f64 / 1e6);
    }
    if rec.provider.is_empty() {
        return;
    }
    let provider = rec.provider.as_str();
    for (kind, n) in [
        ("input", rec.input_tokens),
        ("output", rec.output_tokens),
        ("cached_input", rec.cached_tokens),
        ("reasoning", rec.reasoning_tokens),
    ] {
        if n > 0 {
            TOKEN_COUNTERS
                .get(
                    &[provider, kind],
                    || counter!(TOKENS, "provider" => provider.to_string(), "type" => kind),
                )
                .increment(n);
        }
    }
    if rec.cost > 0.0 && rec.cost.is_finite() {
        COST_SUM.add(&rec.provider, rec.cost);
    }
}

/// One failed app request.
pub fn request_error(kind: &'static str) {
    counter!(REQUEST_ERRORS, "kind" => kind).increment(1);
}

/// The error kind of a stream that ended badly (`stream.rs` messages).
pub fn stream_error_kind(message: &str) -> &'static str {
    match message {
        // Cut by an error, or closed before its finish: cut either way.
        "upstream stream cut" | "upstream stream ended before its finish" => "stream_cut",
        "upstream stream stalled" => "stream_stalled",
        "upstream event too large" => "stream_event_too_large",
        "upstream stream too large" => "stream_too_large",
        "upstream sent an error mid-stream" => "stream_upstream_error",
        "client closed the stream early" => "client_closed",
        "data plane shut down before the stream ended" => "shutdown",
        _ => "stream_error",
    }
}

/// One upstream attempt's outcome.
pub fn attempt(provider: &str, outcome: &'static str, took: Duration) {
    ATTEMPT_COUNTERS
        .get(&[provider, outcome], || {
            counter!(UPSTREAM_ATTEMPTS, "provider" => provider.to_string(), "outcome" => outcome)
        })
        .increment(1);
    ATTEMPT_DURATIONS
        .get(
            &[provider],
            || histogram!(UPSTREAM_ATTEMPT_DURATION, "provider" => provider.to_string()),
        )
        .record(took.as_secs_f64());
}

/// A pool credential was put to cool down.
pub fn cooldown(provider: &str, reason: &'static str) {
    counter!(UPSTREAM_COOLDOWNS, "provider" => provider.to_string(), "reason" => reason)
        .increment(1);
}

/// Cost is a float sum; `metrics` counters count integers, so the dollars
/// are summed here and rendered as a counter family at scrape time.
static COST_SUM: CostSum = CostSum::new();

struct CostSum {
    by_provider: std::sync::Mutex<Vec<(String, f64)>>,
}

impl CostSum {
    const fn new() -> Self {
        Self {
            by_provider: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn add(&self, provider: &str, usd: f64) {
        let mut v = self
            .by_provider
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match v.iter_mut().find(|(p, _)| p == provider) {
            Some((_, sum)) => *sum += usd,
            None => v.push((provider.to_string(), usd)),
        }
    }

    fn snapshot(&self) -> Vec<(String, f64)> {
        self.by_provider
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// `/metrics`: the recorder's metrics and the families computed now.
pub fn render(state: &AppState) -> String {
    let mut f = Families::new();
    let costs = COST_SUM.snapshot();
    if !costs.is_empty() {
        f.counter(
            COST,
            "Cost of answered requests in US dollars, by provider.",
        );
        for (provider, usd) in &costs {
            f.sample(COST, &[("provider", provider)], *usd);
        }
    }
    let now = SystemTime::now();
    if let Some(rt) = state.live.load_full() {
        f.gauge(
            "aigw_snapshot_info",
            "The configuration snapshot served (its version label), 1.",
        )
        .sample("aigw_snapshot_info", &[("version", rt.version())], 1.0);
        let age = now.duration_since(rt.applied_at).unwrap_or_default();
        f.gauge(
            "aigw_snapshot_age_seconds",
            "Seconds since the snapshot served was applied (received, or loaded from disk).",
        )
        .sample("aigw_snapshot_age_seconds", &[], age.as_secs_f64());
        let now_ms = crate::schedule::now_ms();
        f.gauge(
            "aigw_upstream_credentials",
            "Pool credentials, by provider.",
        );
        for up in &rt.upstreams {
            f.sample(
                "aigw_upstream_credentials",
                &[("provider", &up.provider.name)],
                up.pool.keys.len() as f64,
            );
        }
        f.gauge(
            "aigw_upstream_credentials_cooling",
            "Pool credentials cooling down now (skipped by the scheduler), by provider.",
        );
        for up in &rt.upstreams {
            let cooling = up
                .pool
                .keys
                .iter()
                .filter(|k| k.health.is_cooling(now_ms))
                .count();
            f.sample(
                "aigw_upstream_credentials_cooling",
                &[("provider", &up.provider.name)],
                cooling as f64,
            );
        }
    }
    let spool = spool_stats(&state.cfg.state_dir.join("traces"), now);
    f.gauge(
        "aigw_trace_spool_segments",
        "Sealed trace segments on disk waiting for the control plane's acknowledgement.",
    )
    .sample("aigw_trace_spool_segments", &[], spool.segments as f64);
    f.gauge(
        "aigw_trace_spool_oldest_age_seconds",
        "Age of the oldest undelivered trace segment (0 when none).",
    )
    .sample(
        "aigw_trace_spool_oldest_age_seconds",
        &[],
        spool.oldest_age.as_secs_f64(),
    );
    f.render_after(state.prometheus.as_ref())
}

struct SpoolStats {
    segments: usize,
    oldest_age: Duration,
}

/// Counts the spool's segments and the age of the oldest (by its last
/// write), from the directory itself: right after a restart too.
fn spool_stats(dir: &Path, now: SystemTime) -> SpoolStats {
    let mut stats = SpoolStats {
        segments: 0,
        oldest_age: Duration::ZERO,
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return stats;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        // Sealed segments only: the open one is made ahead of need at its
        // reserved size, and is sealed within 100 ms of its first record.
        if !name.ends_with(".seg") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        stats.segments += 1;
        if let Ok(modified) = meta.modified() {
            let age = now.duration_since(modified).unwrap_or_default();
            stats.oldest_age = stats.oldest_age.max(age);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_stats_count_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000000000000001.seg"), b"x").unwrap();
        std::fs::write(dir.path().join("00000000000000000002.open"), b"y").unwrap();
        std::fs::write(dir.path().join("00000000000000000003.open"), b"").unwrap();
        std::fs::write(dir.path().join("junk"), b"z").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        let s = spool_stats(dir.path(), later);
        assert_eq!(s.segments, 1);
        assert!(s.oldest_age >= Duration::from_secs(4), "{:?}", s.oldest_age);
        let none = spool_stats(&dir.path().join("missing"), later);
        assert_eq!((none.segments, none.oldest_age), (0, Duration::ZERO));
    }

    #[test]
    fn stream_errors_have_bounded_kinds() {
        assert_eq!(stream_error_kind("upstream stream cut"), "stream_cut");
        assert_eq!(
            stream_error_kind("upstream stream ended before its finish"),
            "stream_cut"
        );
        assert_eq!(
            stream_error_kind("upstream event too large"),
            "stream_event_too_large"
        );
        assert_eq!(
            stream_error_kind("upstream stream too large"),
            "stream_too_large"
        );
        assert_eq!(stream_error_kind("anything else"), "stream_error");
    }

    /// Every kind a request can fail with is in `ERROR_KINDS` (so served
    /// at 0 and documented): each `GatewayError`'s and each stream end's.
    #[test]
    fn every_error_kind_is_listed() {
        use crate::error::{Failure, GatewayError};
        use http::StatusCode;
        let s = String::new;
        let errors = [
            GatewayError::MissingKey,
            GatewayError::InvalidKey,
            GatewayError::ExpiredKey,
            GatewayError::BadJson(s()),
            GatewayError::invalid(s(), None),
            GatewayError::UnknownModel(s()),
            GatewayError::ModelNotAllowed(s()),
            GatewayError::Unpriced(s()),
            GatewayError::BodyTooLarge { limit: 1 },
            GatewayError::BodyTimeout { secs: 1 },
            GatewayError::NotFound {
                method: s(),
                path: s(),
            },
            GatewayError::NotProxied {
                method: s(),
                path: s(),
            },
            GatewayError::MethodNotAllowed {
                method: s(),
                path: s(),
                allow: "POST",
            },
            GatewayError::WebSocketNotServed { path: s() },
            GatewayError::RateLimited {
                limit: "rpm",
                budget: s(),
                budget_id: s(),
                retry_after_secs: 1,
                value: 1.0,
                requested: None,
            },
            GatewayError::NotReady,
            GatewayError::Busy {
                retry_after_secs: 1,
            },
            GatewayError::PoolExhausted {
                provider: s(),
                retry_after_secs: 1,
            },
            GatewayError::PoolUnusable { provider: s() },
            GatewayError::upstream("p", Failure::Timeout(1)),
            GatewayError::upstream("p", Failure::Connect),
            GatewayError::UpstreamResponse {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: None,
                body: Default::default(),
            },
            GatewayError::UpstreamStatus {
                status: StatusCode::BAD_REQUEST,
                retry_after: None,
                message: s(),
                context_overflow: false,
            },
            GatewayError::Unsupported {
                message: s(),
                param: None,
            },
            GatewayError::Internal(s()),
        ];
        for e in &errors {
            assert!(ERROR_KINDS.contains(&e.kind()), "{} not listed", e.kind());
            assert_eq!(error_kind(e.kind()), e.kind());
        }
        for message in [
            "upstream stream cut",
            "upstream stream ended before its finish",
            "upstream stream stalled",
            "upstream event too large",
            "upstream stream too large",
            "upstream sent an error mid-stream",
            "client closed the stream early",
            "data plane shut down before the stream ended",
            "something new",
        ] {
            let kind = stream_error_kind(message);
            assert!(ERROR_KINDS.contains(&kind), "{kind} not listed");
        }
        assert_eq!(
            error_kind("client closed the connection early"),
            "client_closed"
        );
        assert_eq!(error_kind("upstream stream cut"), "stream_cut");
        assert_eq!(error_kind("free text nobody maps"), "_OTHER");
    }

    /// `/metrics` before anything happened: the counters an alert's rate()
    /// reads are there at 0.
    #[test]
    fn counters_are_served_at_zero_from_the_start() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe);
        let text = handle.render();
        for series in [
            "aigw_otlp_spans_exported_total 0",
            "aigw_otlp_spans_dropped_total 0",
            "aigw_request_errors_total{kind=\"missing_key\"} 0",
            "aigw_request_errors_total{kind=\"stream_cut\"} 0",
            "aigw_snapshot_applied_total{kind=\"whole\"} 0",
            "aigw_snapshot_applied_total{kind=\"delta\"} 0",
            "aigw_snapshot_deltas_total 0",
            "aigw_snapshot_disk_writes_total 0",
            "aigw_snapshot_loaded 0",
        ] {
            assert!(text.contains(&format!("{series}\n")), "{series}:\n{text}");
        }
        for kind in ERROR_KINDS {
            assert!(
                text.contains(&format!("aigw_request_errors_total{{kind=\"{kind}\"}} 0\n")),
                "{kind}"
            );
        }
        assert!(
            text.contains("# HELP aigw_otlp_spans_dropped_total "),
            "{text}"
        );
    }

    /// docs/observability.md names every kind (and no kind that is not one).
    #[test]
    fn the_docs_list_every_error_kind() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/observability.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let row = doc
            .lines()
            .find(|l| l.starts_with("| `aigw_request_errors_total`"))
            .expect("the aigw_request_errors_total row");
        for kind in ERROR_KINDS {
            assert!(
                row.contains(&format!("`{kind}`")),
                "{kind} is not in the docs"
            );
        }
        let listed = row
            .split('`')
            .skip(3)
            .step_by(2)
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        for word in listed {
            assert!(
                ERROR_KINDS.contains(&word),
                "the docs list {word}, not a kind"
            );
        }
        assert!(
            !doc.contains("kind=\n\"invalid_key\""),
            "a missing key is missing_key"
        );
    }
}
